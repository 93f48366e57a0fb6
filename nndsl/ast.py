"""Surface syntax of a spec: frozen dataclasses, each node carrying the Span it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from nndsl.diagnostics import Span


@dataclass(frozen=True)
class Name:
    text: str
    span: Span


@dataclass(frozen=True)
class IntLit:
    value: int
    span: Span


@dataclass(frozen=True)
class FloatLit:
    value: float
    span: Span


@dataclass(frozen=True)
class StrLit:
    value: str
    span: Span


@dataclass(frozen=True)
class NameRef:
    """A bare name in an expression: a constant, ``True``/``False``/``None`` or a symbolic dim."""

    name: str
    span: Span


@dataclass(frozen=True)
class TupleExpr:
    items: tuple[Expr, ...]
    span: Span
    is_list: bool = False


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * // / %
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


Expr = Union[IntLit, FloatLit, StrLit, NameRef, TupleExpr, BinOp, Neg]


@dataclass(frozen=True)
class Arg:
    """One argument of a call; ``keyword`` is None for a positional one."""

    keyword: Name | None
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """A layer in a chain: ``Linear(784, 512)``, ``ReLU``, ``LSTM(10, 20).last``."""

    name: Name
    args: tuple[Arg, ...]
    selector: Name | None
    span: Span


@dataclass(frozen=True)
class Chain:
    calls: tuple[Call, ...]
    span: Span


@dataclass(frozen=True)
class InputDecl:
    """``x: [N, 1, 28, 28]`` or ``tokens: long[N, T]``."""

    name: Name
    dtype: Name | None
    dims: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Let:
    name: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class Model:
    name: Name
    inputs: tuple[InputDecl, ...]
    body: Chain
    span: Span


Item = Union[Let, Model, Chain]


@dataclass(frozen=True)
class Module:
    """A whole spec file."""

    items: tuple[Item, ...]
    span: Span
