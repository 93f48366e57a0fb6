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
    """``(a, b)`` or ``[a, b]``: the two mean the same."""

    items: tuple[Expr, ...]
    span: Span


class BinOp(NamedTuple):
    op: str  # one of + - * // / % @
    left: Expr
    right: Expr
    span: Span


class Neg(NamedTuple):
    operand: Expr
    span: Span


class Invert(NamedTuple):
    """``~x``: the bitwise (for bool tensors, logical) not."""

    operand: Expr
    span: Span


class Call(NamedTuple):
    """A call: ``Linear(784, 512)``, ``LSTM(10, 20).last``, ``cat(a, b, dim=1)``, ``BasicBlock(64)``."""

    name: Name
    args: tuple[Arg, ...]
    selector: Name | None
    span: Span


class Apply(NamedTuple):
    """A layer value called with tensors: ``MultiheadAttention(16, 4)(q, k, v)``; the first
    positional tensor is the input as with ``->``, the others are the layer's extra inputs."""

    fn: Expr
    args: tuple[Arg, ...]
    selector: Name | None
    span: Span


class Flow(NamedTuple):
    """``a -> b -> c``: a value sent through layers, or layers composed into a sub-network."""

    steps: tuple[Expr, ...]
    span: Span


class Select(NamedTuple):
    """``value.name`` where the value is not a plain call (calls keep their selector)."""

    base: Expr
    name: Name
    span: Span


class Index(NamedTuple):
    """``widths[i]``, ``x[0]``: one plain item in brackets."""

    base: Expr
    index: Expr
    span: Span


class SliceItem(NamedTuple):
    """``a:b:s`` in a subscript, any part left out (None): ``:``, ``:-2``, ``::2``."""

    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


class EllipsisItem(NamedTuple):
    """``...`` in a subscript: as many whole dims as the other items leave."""

    span: Span


class Subscript(NamedTuple):
    """``x[:, 0]``, ``x[..., :-2]``, ``mask[:, None, None, :]``: several items, or a slice or ``...``
    (a single plain item is an Index); each item an expression, a SliceItem or an EllipsisItem."""

    base: Expr
    items: tuple[Expr | SliceItem | EllipsisItem, ...]
    span: Span


class Compare(NamedTuple):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr
    span: Span


class BoolOp(NamedTuple):
    op: str  # "and" / "or"
    left: Expr
    right: Expr
    span: Span


class Not(NamedTuple):
    operand: Expr
    span: Span


class Cond(NamedTuple):
    """``then if test else otherwise``."""

    then: Expr
    test: Expr
    otherwise: Expr
    span: Span


class ForLoop(NamedTuple):
    """``for w, s in [(64, 1), (128, 2)] { Block(w, s) }``: the body once per item, in sequence."""

    names: tuple[Name, ...]
    iterable: Expr
    body: Body
    span: Span


Expr = Union[
    Apply,
    IntLit,
    FloatLit,
    StrLit,
    NameRef,
    TupleExpr,
    BinOp,
    Neg,
    Invert,
    Call,
    Flow,
    Select,
    Index,
    Subscript,
    Compare,
    BoolOp,
    Not,
    Cond,
    ForLoop,
]


class Arg(NamedTuple):
    """One argument of a call; ``keyword`` is None for a positional one."""

    keyword: Name | None
    value: Expr
    span: Span


class Assign(NamedTuple):
    """``name = expr`` or ``a, b = expr``; with no targets, an expression statement (a chain)."""

    targets: tuple[Name, ...]
    value: Expr
    span: Span


class Tie(NamedTuple):
    """``lm_head.weight = wte.weight``: a named layer's weight made the other's (weight tying)."""

    layer: Expr  # the layer whose weight is replaced (a NameRef when well formed)
    weight: Name
    value: Expr  # the weight it takes (``wte.weight``: a Call of wte with the selector ``weight``)
    span: Span
    targets = ()  # it defines no value


class Return(NamedTuple):
    values: tuple[Expr, ...]
    span: Span


Statement = Union[Assign, Return, Tie]


class Body(NamedTuple):
    statements: tuple[Statement, ...]
    span: Span


class InputDecl(NamedTuple):
    """``x: [N, 1, 28, 28]`` or ``tokens: long[N, T]``: a tensor input and its shape pattern."""

    name: Name
    dtype: Name | None
    dims: tuple[Expr, ...]
    span: Span


class Param(NamedTuple):
    """A block parameter: ``planes`` or ``stride=1``."""

    name: Name
    default: Expr | None
    span: Span


class Let(NamedTuple):
    name: Name
    value: Expr
    span: Span


class Model(NamedTuple):
    name: Name
    params: tuple[InputDecl | Param, ...]
    body: Body
    span: Span

    @property
    def inputs(self) -> tuple[InputDecl, ...]:
        return tuple(p for p in self.params if isinstance(p, InputDecl))


class Block(NamedTuple):
    """``block Name(x: [N, C, H, W], planes, stride=1) { ... }``: a sub-network used like a layer."""

    name: Name
    params: tuple[InputDecl | Param, ...]
    body: Body
    span: Span


class Setting(NamedTuple):
    """One ``name = value`` line of a train section."""

    name: Name
    value: Expr
    span: Span


class Train(NamedTuple):
    """``train Model { loss = CrossEntropyLoss() ... }``: how a model is trained."""

    model: Name | None
    settings: tuple[Setting, ...]
    span: Span
    keyword: Span  # the word ``train``, where a section without a model name is reported


class Import(NamedTuple):
    """``from "blocks.nn" import BasicBlock, Bottleneck``."""

    path: StrLit
    names: tuple[Name, ...]
    span: Span


Item = Union[Let, Import, Model, Block, Train, Assign]


class Module(NamedTuple):
    """A whole spec file; a top-level Assign without targets is a bare chain."""

    items: tuple[Item, ...]
    span: Span
    broken_lets: tuple[str, ...] = ()  # constants and blocks left out for an error in their text
    broken_models: tuple[str, ...] = ()  # models left out for an error in their text
    partial: bool = False  # some item was left out for an error in its text
