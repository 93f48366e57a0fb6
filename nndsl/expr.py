"""The IR's expressions: how a block computes a value from its parameters (``planes * 4``,
``stride != 1 or C != planes``), as a typed tree that each backend prints in its own language.

Names are the spec's own (a backend maps them to names it can use); a name is a block
parameter, a size the block's input pattern matched, or a constant the block body computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Union


class Const(NamedTuple):
    """A plain value: int, float, str, bool, None, or a tuple or list of them."""

    value: Any


class Ref(NamedTuple):
    """A name of the enclosing block: a parameter, an input-pattern size or a body constant."""

    name: str


class Neg(NamedTuple):
    operand: Expr


class Binary(NamedTuple):
    op: str  # + - * / // % **
    left: Expr
    right: Expr


class Compare(NamedTuple):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr


class BoolOp(NamedTuple):
    op: str  # "and" / "or"
    left: Expr
    right: Expr


class Not(NamedTuple):
    operand: Expr


class Cond(NamedTuple):
    """``then if test else otherwise``."""

    then: Expr
    test: Expr
    otherwise: Expr


class Call(NamedTuple):
    """A call of a constant function: ``min``, ``max``, ``len``."""

    func: str
    args: tuple[Expr, ...]


class TupleOf(NamedTuple):
    items: tuple[Expr, ...]


Expr = Union[Const, Ref, Neg, Binary, Compare, BoolOp, Not, Cond, Call, TupleOf]

#: the types a Const may hold, recursively
PLAIN = (type(None), bool, int, float, str)

#: the opposite of each comparison, for a negated condition
OPPOSITE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def is_plain(value) -> bool:
    """Whether a value can be a Const: plain data, nested in tuples and lists only."""
    if isinstance(value, (tuple, list)) and type(value) in (tuple, list):
        return all(is_plain(v) for v in value)
    return type(value) in PLAIN


def children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, (Const, Ref)):
        return ()
    if isinstance(expr, (Neg, Not)):
        return (expr.operand,)
    if isinstance(expr, (Binary, Compare, BoolOp)):
        return (expr.left, expr.right)
    if isinstance(expr, Cond):
        return (expr.then, expr.test, expr.otherwise)
    if isinstance(expr, Call):
        return expr.args
    return expr.items


def walk(expr: Expr) -> Iterator[Expr]:
    yield expr
    for child in children(expr):
        yield from walk(child)


def free_names(expr: Expr) -> set[str]:
    """The names an expression reads."""
    return {e.name for e in walk(expr) if isinstance(e, Ref)}


def negate(test: Expr) -> Expr:
    """``not test``, as a person writes it: ``D != out`` rather than ``not D == out``."""
    if isinstance(test, Compare):
        return test._replace(op=OPPOSITE[test.op])
    if isinstance(test, Not):
        return test.operand
    return Not(test)
