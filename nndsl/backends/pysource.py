"""Python source for constants and names: shared by the checker, which writes a block's
arguments in terms of its parameters, and the backends, which write everything else."""

from __future__ import annotations

import keyword
import re

#: names a spec name must not take in emitted Python: keywords and soft keywords, and the names
#: the generated methods themselves use (``self``, the modules, the builtins they call or annotate
#: with); static, so that the output does not depend on the Python version
RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | {
        "match",  # soft keywords of some Python versions only: the same output on every version
        "case",
        "type",
        "self",
        "nn",
        "torch",
        "super",
        "float",
        "int",
        "bool",
        "str",
        "tuple",
        "object",
    }
)


def python_name(name: str) -> str:
    """The name a spec name (a block parameter, an input size, a body constant) has in emitted
    Python: ``class`` -> ``class_``, ``class_`` -> ``class__``; a name Python treats specially for
    its leading ``__`` (``__class__``, which breaks ``super()``, or one a class would mangle) gets
    a ``p`` in front. The mapping is one-to-one, so distinct spec names stay distinct."""
    if re.match(r"p*__", name):
        return "p" + name
    if name.rstrip("_") in RESERVED:
        return name + "_"
    return name


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
