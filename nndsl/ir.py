"""The checked program: each model a graph of layers, tensor operations and block instances,
with every argument's final value and every value's shape.

This is the only input of the backends. Values are numbered per model; a node reads values and
defines new ones. Graphs nest: a block instance, a residual, a repetition holds a sub-graph
whose nodes read and define values of the same numbering.

Every node has one interface: ``tag`` (its class's name for it), ``id`` (unique in the
program, stable from run to run: side tables are keyed by it), ``reads`` and ``writes`` (value
numbers), ``graphs`` (its sub-graphs) and ``own_params`` (the weights it holds itself).
``Visitor`` dispatches on ``tag``: a pass states what it does per kind of node in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Union

from nndsl.diagnostics import Span
from nndsl.expr import Expr
from nndsl.shapes import TensorType
from nndsl.source import Source

# the parts of the node interface that several kinds of node share
_reads_input = property(lambda node: (node.input,), doc="the one value the node reads")
_writes_output = property(lambda node: (node.output,), doc="the one value the node defines")
_body_graph = property(lambda node: (node.body,), doc="the node's one sub-graph")


class LayerNode(NamedTuple):
    """One layer call, checked: the concrete layer class, every argument's final value, shapes."""

    index: int
    layer: type  # the registered Layer subclass (after alias resolution, e.g. BatchNorm -> BatchNorm2d)
    written: str  # the layer name as written in the spec
    args: Mapping[str, Any]  # every parameter's final value (a read-only view)
    selector: str | None
    input: TensorType
    output: TensorType
    params: int
    span: Span
    line: int
    text: str  # the call as written, whitespace collapsed
    given: frozenset = frozenset()  # parameters the spec wrote out
    n_positional: int = 0  # how many of them it wrote positionally
    src: int = 0  # the value it reads
    dst: int = 0  # the value it defines
    #: inside a block: parameter -> its value as an expression of the block's own parameters
    #: (``planes * 4``), for the arguments the spec wrote
    sources: Mapping[str, Expr] | None = None
    id: int = 0
    #: the forward's extra tensor inputs the call gave: (forward name, value id), in torch's order
    extra: tuple[tuple[str, int], ...] = ()
    #: the forward's non-tensor arguments the call gave (need_weights=False, is_causal=True)
    forward: Mapping[str, Any] = MappingProxyType({})
    #: the extra inputs' types, by forward name
    extra_types: Mapping[str, TensorType] = MappingProxyType({})
    name: str | None = None  # the spec's name for the module (``wpe = Embedding(...)``), applied once
    #: the call's result unpacked (``out, h_n, c_n = encoder(x)``): a value for each of the
    #: layer's ``parts``, in their order, the first ``dst``; empty for one result
    unpacked: tuple[int, ...] = ()

    tag = "layer"

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.src, *(value for _, value in self.extra))

    @property
    def writes(self) -> tuple[int, ...]:
        return self.unpacked or (self.dst,)

    @property
    def graphs(self) -> tuple[Graph, ...]:
        return ()

    @property
    def own_params(self) -> int:
        return self.params


class OpNode(NamedTuple):
    """A tensor operation with no parameters: ``add``, ``sub``, ``mul``, ``div``, ``cat``,
    ``stack``, ``chunk``, ``split``; ``scalar`` holds the number of a tensor-number operation."""

    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    types: tuple[TensorType, ...]  # of the outputs
    args: Mapping[str, Any]
    span: Span
    line: int
    text: str
    scalar: Any = None
    scalar_first: bool = False  # ``2 * x`` rather than ``x * 2``
    id: int = 0
    #: inside a block: an argument the operator lets uses differ in (``Operator.slot_values``)
    #: -> the expression the spec wrote for it, in terms of the block's parameters
    sources: Mapping[str, Expr] | None = None

    tag = "op"
    own_params = 0
    graphs = ()

    @property
    def reads(self) -> tuple[int, ...]:
        return self.inputs

    @property
    def writes(self) -> tuple[int, ...]:
        return self.outputs


class Graph(NamedTuple):
    """Nodes in execution order; ``inputs`` and ``outputs`` are value numbers."""

    inputs: tuple[int, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]


class SubNetwork(NamedTuple):
    """A block argument that is a sub-network: it is applied inside the body as ``SeqNode(param=...)``."""

    param: str


class BlockNode(NamedTuple):
    """One use of a block: its arguments, the sizes its input pattern matched, its checked body."""

    block: str
    args: Mapping[str, Any]  # parameter -> value; a sub-network argument is a SubNetwork
    dims: Mapping[str, Any]  # input-pattern name -> the size it matched
    inputs: tuple[int, ...]
    output: int
    types: tuple[TensorType, ...]  # input types..., output type
    body: Graph
    span: Span
    line: int
    text: str
    defined_in: str = ""  # the file that defines it
    defined_line: int = 0
    input_names: tuple[str, ...] = ("x",)
    defaults: Mapping[str, Any] = MappingProxyType({})  # parameter -> default value, for those with one
    #: inside another block: parameter -> the argument as written, an expression of the
    #: enclosing block's parameters
    sources: Mapping[str, Expr] | None = None
    #: constants the body computes (``hidden = C * expand``) -> their expressions, for a class to compute
    locals: Mapping[str, Expr] = MappingProxyType({})
    constants: Mapping[str, Any] = MappingProxyType({})  # every body constant's value in this use
    id: int = 0
    name: str | None = None  # the spec's name for the module (``stem = Stem(64)``), applied once

    tag = "block"
    own_params = 0

    @property
    def reads(self) -> tuple[int, ...]:
        return self.inputs

    writes = _writes_output

    graphs = _body_graph


class ResidualNode(NamedTuple):
    """``Residual(body, shortcut)``: ``body(x) + shortcut(x)``, the shortcut the identity when None.

    ``shortcut_param`` names the block parameter the shortcut came from, if any.
    """

    input: int
    output: int
    type: TensorType
    body: Graph
    shortcut: Graph | None
    span: Span
    line: int
    text: str
    shortcut_param: str | None = None
    #: in a block, ``shortcut=S if cond else None``: the condition, an expression of the block's
    #: parameters (uses of the block may differ in whether they have the shortcut)
    shortcut_if: Expr | None = None
    #: in a block, ``Residual(f) if cond else f``: the condition; where it is
    #: false in this use, ``active`` is False and the node is just ``f`` (no sum)
    residual_if: Expr | None = None
    active: bool = True
    id: int = 0

    tag = "residual"
    own_params = 0

    reads = _reads_input
    writes = _writes_output

    @property
    def graphs(self) -> tuple[Graph, ...]:
        return (self.body,) if self.shortcut is None else (self.body, self.shortcut)


class SeqNode(NamedTuple):
    """A repetition (``Block(64) * 2``), a ``for`` loop, a block's sub-network parameter
    applied (``param`` names it), or one use of a named module applied more than once (kind
    "shared"): a sub-graph from one value to one value.

    The uses of one shared module have the same ``group`` (a number unique in the model) and
    ``name`` (the spec's); each use's sub-graph is that use checked with its own input, and the
    first use (``again`` False) holds the weights: later uses hold none of their own. A shared
    use's ``line`` and ``text`` are the module's definition (``tower = ...``), its ``span`` the use."""

    kind: str  # "repeat", "for", "param", "shared"
    input: int
    output: int
    type: TensorType
    body: Graph
    span: Span
    line: int
    text: str
    param: str | None = None
    id: int = 0
    name: str | None = None  # a shared module's name in the spec (a repetition's, applied once)
    group: int = 0  # a shared module's number, the same for each of its uses
    again: bool = False  # a later use of a shared module: its weights are the first use's
    times: int = 0  # a repetition's count
    #: inside a block: a repetition's count as an expression of the block's parameters (``layers``)
    times_source: Expr | None = None

    tag = "seq"
    own_params = 0

    reads = _reads_input
    writes = _writes_output

    graphs = _body_graph


class ParamNode(NamedTuple):
    """A learned tensor, ``cls_token = Parameter([1, 1, 768], init="normal", std=0.02)``: its
    value name (its state_dict name), its sizes, how it is initialised; it reads no value."""

    name: str  # the spec's value name
    shape: tuple[int, ...]
    init: str  # "zeros", "ones", "constant", "normal", "trunc_normal" or "uniform"
    args: Mapping[str, float]  # the init's arguments (value; mean, std; a, b), all of them
    output: int
    type: TensorType
    span: Span
    line: int
    text: str
    #: inside a block: ``size0``, ``size1``, ... and init arguments -> their expressions of the
    #: block's own parameters, for those the spec wrote so
    sources: Mapping[str, Expr] | None = None
    id: int = 0

    tag = "param"
    reads = ()
    graphs = ()
    writes = _writes_output

    @property
    def own_params(self) -> int:
        total = 1
        for size in self.shape:
            total *= size
        return total


Node = Union[LayerNode, OpNode, BlockNode, ResidualNode, SeqNode, ParamNode]


class Visitor:
    """A pass over graphs: ``visit`` calls the method named by the node's ``tag`` (``layer``,
    ``op``, ``block``, ``residual``, ``seq``, ``param``); each falls back to ``generic``, which visits the
    node's sub-graphs. A subclass overrides only what it does differently (torch.fx's
    Interpreter works this way)."""

    def run(self, graph: Graph) -> None:
        for node in graph.nodes:
            self.visit(node)

    def visit(self, node: Node):
        return getattr(self, node.tag)(node)

    def generic(self, node: Node):
        for graph in node.graphs:
            self.run(graph)

    def layer(self, node: LayerNode):
        return self.generic(node)

    def op(self, node: OpNode):
        return self.generic(node)

    def block(self, node: BlockNode):
        return self.generic(node)

    def residual(self, node: ResidualNode):
        return self.generic(node)

    def seq(self, node: SeqNode):
        return self.generic(node)

    def param(self, node: ParamNode):
        return self.generic(node)


def walk(graph: Graph, into_blocks: bool = True) -> Iterator[Node]:
    """Every node of a graph and of the graphs nested in it, in execution order."""
    for node in graph.nodes:
        yield node
        for sub in subgraphs(node, into_blocks):
            yield from walk(sub, into_blocks)


def subgraphs(node: Node, into_blocks: bool = True) -> tuple[Graph, ...]:
    """A node's sub-graphs; with ``into_blocks=False``, none for a block's use."""
    return node.graphs if into_blocks or node.tag != "block" else ()


def weights(nodes) -> int:
    """The weights some nodes hold, those nested in them included; a shared module's weights
    count at its first use only."""
    return sum(
        node.own_params + sum(weights(g.nodes) for g in node.graphs)
        for node in nodes
        if not getattr(node, "again", False)
    )


def layers_of(graph: Graph) -> tuple[LayerNode, ...]:
    return tuple(n for n in walk(graph) if n.tag == "layer")


class TiedWeight(NamedTuple):
    """``lm_head.weight = wte.weight``: one layer's weight is another layer's, one tensor that
    counts once. ``layer`` and ``source`` are LayerNode ids."""

    layer: int
    weight: str
    source: int
    source_weight: str
    size: int  # its elements
    span: Span
    line: int
    text: str


class ModelIR(NamedTuple):
    name: str
    input_names: tuple[str, ...]
    input_types: tuple[TensorType, ...]
    graph: Graph
    types: Mapping[int, TensorType]  # every value's type
    span: Span
    complete: bool = True  # False when checking stopped at an error
    output_names: tuple[str | None, ...] = ()
    names: Mapping[int, str] = MappingProxyType({})  # values the spec named
    ties: tuple[TiedWeight, ...] = ()  # weights tied to another layer's, in the spec's order

    @property
    def input_name(self) -> str:
        return self.input_names[0]

    @property
    def input(self) -> TensorType:
        return self.input_types[0]

    @property
    def outputs(self) -> tuple[TensorType, ...]:
        return tuple(self.types[v] for v in self.graph.outputs)

    @property
    def output(self) -> TensorType:
        return self.types[self.graph.outputs[0]] if self.graph.outputs else self.input

    @property
    def layers(self) -> tuple[LayerNode, ...]:
        """Every layer, those inside blocks, residuals and repetitions included, in order."""
        return layers_of(self.graph)

    @property
    def param_count(self) -> int:
        """The weights of every node, nested ones included; a tied weight counts once."""
        return weights(self.graph.nodes) - sum(tie.size for tie in self.ties)


class TrainCall(NamedTuple):
    """A loss, optimizer, schedule, data source or initialisation of a train section, checked."""

    name: str  # torch's name (``Adam``, ``CrossEntropyLoss``) or the data source's (``digits``)
    args: Mapping[str, Any]  # the arguments the spec gave, converted; the rest are torch's defaults
    span: Span | None  # None for a default the spec did not write
    arg_spans: Mapping[str, Span] = MappingProxyType({})


class TrainConfig(NamedTuple):
    """A checked ``train`` section: every setting with its final value."""

    model: str
    settings: Mapping[str, Any]  # setting -> value; call-valued settings are TrainCall (or None)
    spans: Mapping[str, Span]  # where the spec gave each setting
    span: Span
    task: str  # "classification", "binary" or "regression", from the loss


class Program(NamedTuple):
    source: Source
    models: tuple[ModelIR, ...]
    blocks: tuple[str, ...] = ()  # the blocks the file defines (checked where models use them)
    trainings: tuple[TrainConfig, ...] = ()
    imported: tuple[str, ...] = ()  # the real paths of the files read through imports

    @property
    def complete_models(self) -> tuple[ModelIR, ...]:
        return tuple(m for m in self.models if m.complete)

    def model(self, name: str | None = None) -> ModelIR:
        if name is None:
            return self.models[0]
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)
