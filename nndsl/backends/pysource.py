"""Python source for constants: every literal the backends that write Python emit."""

from __future__ import annotations


def literal(value) -> str:
    """Source for a constant; only plain data types are allowed through."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            return f"float({text!r})"
        return text
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"not a literal type: {type(value).__name__}")


def string_literal(text: str) -> str:
    """A str constant as ``ruff format`` writes it: in double quotes, unless the text holds more
    double quotes than single ones; every character escaped as ``repr()`` escapes it."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = "".join(
        "\\\\" if ch == "\\" else "\\" + ch if ch == quote else ch if ch in "'\"" else repr(ch)[1:-1] for ch in text
    )
    return quote + body + quote
