"""Python source for constants and names: shared by the checker, which writes a block's
arguments in terms of its parameters, and the backends, which write everything else."""

from __future__ import annotations

import keyword

_NOT_PARAMETERS = set(keyword.kwlist) | set(keyword.softkwlist) | {"self", "nn", "torch", "super"}


def python_name(name: str) -> str:
    """The name a block parameter has in emitted Python (``class`` -> ``class_``)."""
    return name + "_" if name in _NOT_PARAMETERS else name


def literal(value) -> str:
    """Source for a constant; only plain data types are allowed through."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1] + '"'  # ruff format's quotes; the escapes inside stay valid
        return text
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
