"""Python source for constants: every literal the backends that write Python emit."""

from __future__ import annotations

from decimal import Decimal


def literal(value) -> str:
    """Source for a constant; only plain data types are allowed through."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, float):
        return float_literal(value)
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


def float_literal(value: float) -> str:
    """A float as a person writes it: its shortest digits that read back the same value, in
    scientific notation where that is shorter and the value is large or small (``-1e9``,
    ``1e-6``, ``2.5e-5``), else positional (``0.02``, ``1000.0``, ``123456789.0``)."""
    text = repr(value)
    if text in ("inf", "-inf", "nan"):
        return f"float({text!r})"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return text
    number = Decimal(text)
    sign, digits, exponent = number.normalize().as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    scientific = f"{'-' if sign else ''}{mantissa}e{exponent + len(digits) - 1}"
    positional = format(number, "f")
    if "." not in positional:
        positional += ".0"
    return scientific if len(scientific) < len(positional) else positional
