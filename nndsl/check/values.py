"""What expressions evaluate to while a body is checked: tensors in the graph being built,
sub-networks not yet applied (layers, blocks, compositions, repetitions, loops, residuals),
and the scopes that name them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from nndsl import ast, shapes
from nndsl.check.common import Bound
from nndsl.diagnostics import Span
from nndsl.expr import Expr
from nndsl.layers.base import type_name
from nndsl.shapes import TensorType
from nndsl.source import Source


class Tensor(NamedTuple):
    """A tensor in the graph: value number, type (None after an error upstream), where it came from."""

    id: int
    type: TensorType | None
    span: Span
    role: str  # "input" or "output", for labels
    source: Source


class LayerFn(NamedTuple):
    bound: Bound
    scope: Scope
    span: Span


class BlockFn(NamedTuple):
    block: BlockDef
    args: dict  # parameter -> value (constants, sub-networks, tensors for extra inputs)
    call: ast.Call
    span: Span
    sources: dict | None = None  # inside a block: parameter -> the argument as an IR expression


class ComposeFn(NamedTuple):
    parts: tuple
    span: Span


class RepeatFn(NamedTuple):
    fn: Any
    times: int
    span: Span
    source: Any = None  # inside a block: the count as an IR expression of the block's parameters


class ForFn(NamedTuple):
    loop: ast.ForLoop
    items: tuple  # one tuple of loop-variable values per iteration
    scope: Scope
    span: Span


class ResidualFn(NamedTuple):
    body: Any
    shortcut: Any  # a sub-network or None
    span: Span
    shortcut_param: str | None
    shortcut_if: Expr | None = None
    #: ``Residual(f) if cond else f`` in a block: the condition, and whether it holds here
    residual_if: Expr | None = None
    active: bool = True


class ParamFn(NamedTuple):
    """A block's sub-network parameter, as the block body sees it."""

    name: str
    fn: Any
    span: Span


class PoisonFn(NamedTuple):
    """A layer whose call had an error (already reported): applying it gives an unknown tensor."""

    span: Span


SUB_NETWORKS = (LayerFn, BlockFn, ComposeFn, RepeatFn, ForFn, ResidualFn, ParamFn, PoisonFn)


def is_fn(value) -> bool:
    return isinstance(value, SUB_NETWORKS)


def is_sequence(value) -> bool:
    """A tuple or list the spec wrote (or chunk/split gave), not a tensor or sub-network, which
    are named tuples too."""
    return type(value) is tuple


def kind_name(value) -> str:
    """How a value is named in messages."""
    if isinstance(value, Tensor):
        return "a tensor"
    if is_fn(value):
        return "a layer or sub-network"
    if isinstance(value, shapes.Poly):
        return "a symbolic size"
    if is_sequence(value) and any(isinstance(v, Tensor) for v in value):
        return "several tensors"
    return type_name(value)


class BlockBodies(Protocol):
    """What a block's use needs of the file that defines it (nndsl.check.blocks.Blocks)."""

    def instantiate_body(self, fn: BlockFn, x: Tensor, caller: Any) -> Tensor: ...


class BlockDef(NamedTuple):
    node: ast.Block
    checker: BlockBodies  # checks its body in the file that defines it (its constants and blocks)


class Scope:
    """Names defined in a model or block body (and in a loop iteration, as a child scope)."""

    def __init__(self, parent: Scope | None = None, block: set[str] | None = None):
        self.parent = parent
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}
        self.exprs: dict[str, ast.Expr] = {}  # how a constant defined in the body was written
        self.later: dict[str, Span] = {}  # names the body defines further down, for a use before them
        #: a block's top scope: its body constants a block's class computes, as IR expressions
        self.locals: dict[str, Expr] | None = {} if block is not None else None
        self.used: set[str] = set()
        #: in a block: the names of its parameters and input-pattern sizes
        self.block = block if block is not None else (parent.block if parent else None)

    def find(self, name: str) -> Scope | None:
        scope = self
        while scope is not None:
            if name in scope.values:
                return scope
            scope = scope.parent
        return None

    def names(self) -> list[str]:
        out, scope = [], self
        while scope is not None:
            out += list(scope.values)
            scope = scope.parent
        return out


#: the most a repetition or a loop runs, and the most layers one model may have (an RNN's
#: num_layers counted): a spec beyond these is a mistake (a count of 10**10), and checking it
#: would never end. Nested repetitions multiply: their product is bounded by MAX_LAYERS too,
#: checked before any of the work is done.
MAX_REPEAT = 10_000
#: (the checker handles some 15,000 layers a second here: the largest model checks in seconds)
MAX_LAYERS = 50_000
#: the most sub-networks applied while checking one model (layers, blocks, compositions, each
#: use counted), which bounds the work of uses that multiply without a repetition count
MAX_APPLIED = 125_000
#: how deeply sub-networks may be applied inside one another (a block using a block, a loop
#: in a loop, a repetition of a repetition): well within Python's stack
MAX_APPLY_DEPTH = 100


def value_name(scope: Scope, t: Tensor) -> str | None:
    for name, value in scope.values.items():
        if isinstance(value, Tensor) and value.id == t.id:
            return name
    return None


class ModelState:
    """Per-model numbering of values, their types, and the graphs being built."""

    def __init__(self, ids: Iterator[int] | None = None):
        self.ids = ids if ids is not None else itertools.count()  # node ids, unique in the program
        self.types: dict[int, TensorType] = {}
        self.stack: list[list] = []
        self.used: set[int] = set()
        self.poisoned = False
        self.layer_index = 0
        self.names: dict[int, str] = {}
        #: the sub-network arguments applied so far, by identity (kept, so that no id is reused)
        self.applied: dict[int, object] = {}
        #: sub-networks the spec named (``tower = Linear(8, 8) -> ReLU``), by identity: (value, name)
        self.named: dict[int, tuple[object, str]] = {}
        #: the named sub-networks with weights applied so far, by identity; each copy a
        #: repetition or loop makes starts again from what came before it
        self.named_applied: dict[int, Span] = {}
        #: the sub-network arguments of blocks applied so far (by identity): their first application
        self.arguments_applied: dict[int, object] = {}
        #: each named module with weights applied (by identity) -> its group and the nodes its first use built
        self.modules: dict[int, tuple] = {}
        #: the weight-tying statements (flow's _Tie) of the model and of the blocks it uses, resolved when it is finished
        self.ties: list = []
        self.active: list = []  # blocks being instantiated, to refuse recursion
        #: the sub-network arguments being applied in a block's body, and the named modules being
        #: applied again, innermost last: (the first value number it computes, its input's number,
        #: the parameter's or the module's name, where it was given or defined, whether it is a
        #: shared module); one reads no other tensor of the caller (it is a module of its own, with
        #: one input)
        self.arguments: list[tuple[int, int, str, Span, bool]] = []
        self.repeats = 1  # how often the enclosing repetitions and loops run the current body
        self.layers = 0  # layers checked so far (an RNN counts its num_layers)
        self.steps = 0  # sub-networks applied so far
        self.depth = 0  # sub-networks being applied, one inside the other
        self.exhausted = False  # a work limit was reached: the rest of the model is not checked
        self.allocated = 0  # node ids taken so far
        self.last_id = -1  # the last of them
        #: block bodies checked so far that a later use with equal arguments copies (check.replay)
        self.bodies: dict = {}

    @property
    def nodes(self) -> list:
        return self.stack[-1]

    def node_id(self) -> int:
        self.last_id = next(self.ids)
        self.allocated += 1
        return self.last_id

    def new(self, t: TensorType, span: Span, role: str, source: Source) -> Tensor:
        number = len(self.types)
        self.types[number] = t
        return Tensor(number, t, span, role, source)
