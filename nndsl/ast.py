"""Surface syntax of a spec: immutable nodes, each carrying the Span it came from.

Nodes are typed NamedTuples rather than frozen dataclasses: equally immutable and typed, but
a class costs about a tenth as much to create, which counts on a CLI that must start fast.
Compare nodes by identity (``is``) where identity is meant.
"""

from __future__ import annotations

from typing import NamedTuple, Union

from nndsl.diagnostics import Span


class Name(NamedTuple):
    text: str
    span: Span


class IntLit(NamedTuple):
    value: int | None  # None: a literal too long to convert
    span: Span


class FloatLit(NamedTuple):
    value: float
    span: Span


class StrLit(NamedTuple):
    value: str
    span: Span


class NameRef(NamedTuple):
    """A bare name in an expression: a constant, ``True``/``False``/``None`` or a symbolic dim."""

    name: str
    span: Span


class TupleExpr(NamedTuple):
    items: tuple[Expr, ...]
    span: Span
    is_list: bool = False


class BinOp(NamedTuple):
    op: str  # one of + - * // / %
    left: Expr
    right: Expr
    span: Span


class Neg(NamedTuple):
    operand: Expr
    span: Span


Expr = Union[IntLit, FloatLit, StrLit, NameRef, TupleExpr, BinOp, Neg]


class Arg(NamedTuple):
    """One argument of a call; ``keyword`` is None for a positional one."""

    keyword: Name | None
    value: Expr
    span: Span


class Call(NamedTuple):
    """A layer in a chain: ``Linear(784, 512)``, ``ReLU``, ``LSTM(10, 20).last``."""

    name: Name
    args: tuple[Arg, ...]
    selector: Name | None
    span: Span


class Chain(NamedTuple):
    calls: tuple[Call, ...]
    span: Span


class InputDecl(NamedTuple):
    """``x: [N, 1, 28, 28]`` or ``tokens: long[N, T]``."""

    name: Name
    dtype: Name | None
    dims: tuple[Expr, ...]
    span: Span


class Let(NamedTuple):
    name: Name
    value: Expr
    span: Span


class Model(NamedTuple):
    name: Name
    inputs: tuple[InputDecl, ...]
    body: Chain
    span: Span


Item = Union[Let, Model, Chain]


class Module(NamedTuple):
    """A whole spec file."""

    items: tuple[Item, ...]
    span: Span
    broken_lets: tuple[str, ...] = ()  # constants whose `let` had a syntax error
