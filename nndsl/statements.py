"""Statements of generated code as data (targets, a call or an operator expression): what layers
and tensor operators emit, and what the Python writer (``nndsl.backends.pywriter``) alone lays out."""

from __future__ import annotations

from typing import Any, NamedTuple


class Code(str):
    """Source text the backend built itself (a variable, ``self.fc``, ``planes * 4``): written as is."""


class Call(NamedTuple):
    """``func(*args, **kwargs)``: each argument a constant (written through ``repr()``) or ``Code``."""

    func: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


class BinOp(NamedTuple):
    """``left op right`` (``x + y``, ``2 * x``): each side a constant or ``Code``."""

    left: Any
    op: str
    right: Any


class Assign(NamedTuple):
    """``targets = value``; no targets: the value alone, computed for nothing; ``unpack`` with one
    target: ``(x,) = value``, the one element of a sequence."""

    targets: tuple[str, ...]
    value: Call | BinOp | Code
    unpack: bool = False


def assign(target: str, value: Call | BinOp | Code) -> Assign:
    """``target = value``."""
    return Assign((target,), value)
