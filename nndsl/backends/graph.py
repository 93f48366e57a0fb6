"""The graph backend: a checked model drawn as a diagram, in Mermaid or Graphviz DOT.

Nodes are the model's inputs and outputs, its layers, tensor operations and learned tensors;
edges carry the shape of the value they pass (the checker's shape, as ``nndsl check --shapes``
prints it). A block's use is a cluster of its body, or one node where it is collapsed: below
``depth`` levels of blocks, and (unless ``expand_all``) at every use after the first one of the
same structure and at every use once the diagram has ``EXPAND_BUDGET`` nodes, so that a model built of one block repeated (ResNet, a transformer) shows that
block's inside once and the rest of the model as a chain. Consecutive collapsed uses of one block
with the same arguments are one node, ``Block(...) × k``. A residual's sum is a ``+`` node; its
shortcut edge is drawn as a residual edge, and a named value read again later (U-Net's skip
connections) as a skip edge.

It reads the checked IR only (no torch). ``to_dot`` and ``to_mermaid`` give text; ``render``
runs Graphviz's ``dot`` for SVG and PNG.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any, NamedTuple

from nndsl.ir import BlockNode, Graph, LayerNode, ModelIR, OpNode, ResidualNode, SeqNode, SubNetwork

FORMATS = ("mermaid", "dot", "svg", "png")
#: output suffix -> the format it implies when --format is not given
SUFFIX_FORMATS = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png"}
GRAPHVIZ_MISSING = (
    "Graphviz's dot program is not installed: install the graphviz package (e.g. apt-get install graphviz)"
)
_LABEL_WIDTH = 48
#: a block use of a new structure is expanded only while the model's diagram has fewer nodes than this
EXPAND_BUDGET = 50
#: operations that read only the shape (or dtype) of a tensor, not its values: their edges are dotted
SIZE_ONLY = frozenset(
    {"arange", "ones", "zeros", "full", "empty", "zeros_like", "ones_like", "full_like", "randn_like", "rand_like"}
)  # a node's label is cut beyond this many characters


class DNode(NamedTuple):
    """One node of the diagram; ``kind`` is input, output, layer, op, add, block (collapsed) or param."""

    id: str
    label: str
    kind: str


class DEdge(NamedTuple):
    """An edge; ``style`` is data, residual (a residual's shortcut), skip (a named value read
    again) or size (read for its shape only, by ``arange(T)``, ``ones(T, T)``)."""

    src: str
    dst: str
    label: str
    style: str = "data"
    value: int = -1  # the value it passes (the model's numbering)


class Cluster(NamedTuple):
    """A block's expanded use (or a model, when a file has several): its nodes and inner clusters."""

    id: str
    label: str
    nodes: list
    clusters: list
    kind: str = "block"


class Diagram(NamedTuple):
    nodes: dict  # id -> DNode
    edges: list
    root: Cluster
    #: an IR node's id -> the id of the node drawing it: a layer, an operation, a learned tensor, a
    #: residual's sum, a collapsed block use or shared module's later use
    drawn: dict


#: the most edges Mermaid draws by default (its ``maxEdges``, which GitHub keeps)
MERMAID_MAX_EDGES = 500


class GraphError(Exception):
    """A diagram that cannot be made as asked (Graphviz missing, or it failed): the message says why."""


# ---------------------------------------------------------------- building


def build(models: Iterable[ModelIR], depth: int | None = None, expand_all: bool = False) -> Diagram:
    """The diagram of some checked models: one cluster per model when there are several."""
    models = list(models)
    diagram = Diagram({}, [], Cluster("root", "", [], [], "root"), {})
    for index, model in enumerate(models):
        if len(models) > 1:
            where = Cluster(f"m{index}", model.name, [], [], "model")
            diagram.root.clusters.append(where)
        else:
            where = diagram.root
        _Builder(model, f"m{index}_" if len(models) > 1 else "", diagram, depth, expand_all).run(where)
    return diagram


class _Builder:
    """Walks one model's graph, making its nodes, edges and clusters."""

    def __init__(self, model: ModelIR, prefix: str, diagram: Diagram, depth, expand_all: bool):
        self.model = model
        self.types = model.types
        self.prefix = prefix
        self.nodes = diagram.nodes
        self.edges = diagram.edges
        self.drawn = diagram.drawn
        self.depth = math.inf if depth is None else depth
        self.expand_all = expand_all
        self.producer: dict[int, str] = {}  # value -> the node that defines it
        self.read: set[int] = set()  # values some node has read already
        self.seen: set = set()  # the structures of the block uses drawn expanded
        self.count = 0
        self.repeats: dict[str, list] = {}  # a collapsed node -> [label, times, output value, structure]

    def _new(self, label: str, kind: str, cluster: Cluster, of=None) -> str:
        """A new node (``of``: the IR node it draws)."""
        node_id = f"{self.prefix}n{self.count}"
        self.count += 1
        self.nodes[node_id] = DNode(node_id, label, kind)
        cluster.nodes.append(node_id)
        if of is not None:
            self.drawn[of.id] = node_id
        return node_id

    def _edge(self, value: int, dst: str, name: str = "", style: str | None = None) -> None:
        src = self.producer.get(value)
        if src is None:
            return
        label = f"{name}: {self.types[value]}" if name else str(self.types[value])
        if style is None:
            style = "skip" if value in self.model.names and value in self.read else "data"
        if style != "size":
            self.read.add(value)
        self.edges.append(DEdge(src, dst, label, style, value))

    def run(self, cluster: Cluster) -> None:
        model = self.model
        for name, value in zip(model.input_names, model.graph.inputs):
            self.producer[value] = self._new(name, "input", cluster)
        self.graph(model.graph, cluster, 0)
        names = model.output_names or (None,) * len(model.graph.outputs)
        for i, (value, name) in enumerate(zip(model.graph.outputs, names)):
            shown = name or ("output" if len(model.graph.outputs) == 1 else f"output {i}")
            self._edge(value, self._new(shown, "output", cluster), style="data")
        for node_id, (label, times, _, _) in self.repeats.items():
            if times > 1:
                self.nodes[node_id] = self.nodes[node_id]._replace(label=f"{label} × {times}")

    def graph(self, graph: Graph, cluster: Cluster, level: int) -> None:
        for node in graph.nodes:
            getattr(self, node.tag)(node, cluster, level)

    # one method per kind of IR node

    def layer(self, node: LayerNode, cluster: Cluster, level: int) -> None:
        made = self._new(layer_label(node), "layer", cluster, node)
        self._edge(node.src, made)
        for name, value in node.extra:
            self._edge(value, made, name)
        for value in node.writes:  # the output, or each part of an unpacked call (out, h_n, c_n)
            self.producer[value] = made

    def op(self, node: OpNode, cluster: Cluster, level: int) -> None:
        label = op_label(node)
        made = self._new(label, "add" if len(label) == 1 else "op", cluster, node)
        for value in node.inputs:
            if node.op in SIZE_ONLY:
                style = "size"
            elif node.op == "add" and node.scalar is None and value in self.read:
                style = "residual"  # ``x + f(x)``: a sum with a value read before, a residual written out
            else:
                style = None
            self._edge(value, made, style=style)
        for value in node.outputs:
            self.producer[value] = made

    def param(self, node, cluster: Cluster, level: int) -> None:
        self.producer[node.output] = self._new(f"{node.name} (Parameter)", "param", cluster, node)

    def residual(self, node: ResidualNode, cluster: Cluster, level: int) -> None:
        self.graph(node.body, cluster, level)
        if not node.active:  # ``Residual(f) if cond else f`` where cond is false: just f
            self.producer[node.output] = self.producer[node.body.outputs[0]]
            return
        if node.shortcut is not None:
            self.graph(node.shortcut, cluster, level)
        add = self._new("+", "add", cluster, node)
        self._edge(node.body.outputs[0], add, style="data")
        shortcut = node.shortcut.outputs[0] if node.shortcut is not None else node.input
        self._edge(shortcut, add, style="residual")
        self.producer[node.output] = add

    def seq(self, node: SeqNode, cluster: Cluster, level: int) -> None:
        if node.kind == "shared":
            if node.again:  # a shared module applied again: one node naming it
                made = self._new(f"{node.name} (shared)", "block", cluster, node)
                self._edge(node.input, made)
                self.producer[node.output] = made
                return
        self.graph(node.body, cluster, level)  # a loop or a repetition is the chain it makes
        if node.body.outputs[0] in self.producer:
            self.producer.setdefault(node.output, self.producer[node.body.outputs[0]])

    def block(self, node: BlockNode, cluster: Cluster, level: int) -> None:
        label = block_label(node)
        structure = _structure(node)
        new = structure not in self.seen and self.count < EXPAND_BUDGET
        if level < self.depth and (self.expand_all or new):
            self.seen.add(structure)
            inner = Cluster(f"{self.prefix}c{self.count}", label, [], [])
            self.count += 1
            cluster.clusters.append(inner)
            self.graph(node.body, inner, level + 1)
            self.producer[node.output] = self.producer[node.body.outputs[0]]
            return
        main = node.inputs[0]
        last = self.producer.get(main)
        # the next use of the same block, collapsed like the one before it: one node, × k (named
        # without arguments where they differ)
        if last in self.repeats and self.repeats[last][3] == structure and self.repeats[last][2] == main:
            if self.repeats[last][0] != label:
                self.repeats[last][0] = node.block
            self.repeats[last][1] += 1
            self.repeats[last][2] = node.output
            self.read.update(node.inputs)
            self.producer[node.output] = last
            self.drawn[node.id] = last
            return
        made = self._new(label, "block", cluster, node)
        names = node.input_names if len(node.inputs) > 1 else ("",)
        for name, value in zip(names, node.inputs):
            self._edge(value, made, name if value != main else "")
        if self.types.get(main) == self.types.get(node.output):  # shape-keeping: may repeat
            self.repeats[made] = [label, 1, node.output, structure]
        self.producer[node.output] = made


def _structure(node) -> tuple:
    """What a node is made of, without sizes: two block uses of one structure draw alike."""
    if node.tag == "layer":
        return (node.written, node.selector)
    if node.tag == "op":
        return (node.op,)
    if node.tag == "residual":
        return ("residual", node.active, node.shortcut is None, *map(_graph_structure, node.graphs))
    if node.tag == "block":
        return ("block", node.block, _graph_structure(node.body))
    return (node.tag, *map(_graph_structure, node.graphs))


def _graph_structure(graph: Graph) -> tuple:
    return tuple(_structure(n) for n in graph.nodes)


# ---------------------------------------------------------------- labels


def _value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return repr(value) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return _value(value[0])  # torch's (3, 3) for a 3 the spec wrote
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_value(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value) if not hasattr(value, "name") else str(value)


def _cut(text: str) -> str:
    return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 3] + "..."


def layer_label(node: LayerNode) -> str:
    """``Conv2d(64, 256, 1, bias=False)``: the layer as written, with the values its arguments have here."""
    given = [k for k in node.args if k in node.given]
    positional = given[: node.n_positional]
    parts = [_value(node.args[k]) for k in positional]
    parts += [f"{k}={_value(node.args[k])}" for k in given[node.n_positional :]]
    selector = f"[{node.selector}]" if node.selector else ""
    return _cut(f"{node.written}({', '.join(parts)}){selector}" if parts else f"{node.written}{selector}")


_OP_SIGNS = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}


def op_label(node: OpNode) -> str:
    """``+`` for a sum of tensors, ``× 0.5`` with a number, ``cat(dim=1)``, else the operation as written."""
    sign = _OP_SIGNS.get(node.op)
    if sign is not None:
        if node.scalar is None:
            return sign
        return f"{_value(node.scalar)} {sign}" if node.scalar_first else f"{sign} {_value(node.scalar)}"
    if node.op in ("cat", "stack", "chunk", "split"):
        args = ", ".join(f"{k}={_value(v)}" for k, v in node.args.items())
        return _cut(f"{node.op}({args})")
    return _cut(node.text)


def block_label(node: BlockNode) -> str:
    """``Bottleneck(planes=128, stride=2)``: the arguments without their default values."""
    parts = []
    for key, value in node.args.items():
        if isinstance(value, SubNetwork) or (key in node.defaults and node.defaults[key] == value):
            continue
        parts.append(f"{key}={_value(value)}")
    return _cut(f"{node.block}({', '.join(parts)})" if parts else node.block)


# ---------------------------------------------------------------- DOT

_DOT_NODE = {
    "input": 'shape=oval, style=filled, fillcolor="#d9f2e3"',
    "output": 'shape=oval, style=filled, fillcolor="#d9f2e3"',
    "layer": 'shape=box, style="rounded,filled", fillcolor="#e8f0fe"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#fef7e0"',
    "add": 'shape=circle, style=filled, fillcolor="#fef7e0", width=0.35, fixedsize=true, fontsize=14',
    "block": 'shape=box3d, style=filled, fillcolor="#fce8d5"',
    "param": 'shape=cylinder, style=filled, fillcolor="#f3e8fd"',
}
_DOT_EDGE = {
    "data": "",
    "residual": ', color="#c5221f", fontcolor="#c5221f", style=dashed, penwidth=1.4',
    "skip": ', color="#1967d2", fontcolor="#1967d2", style=dashed, penwidth=1.4',
    "size": ', color="#9aa0a6", fontcolor="#80868b", style=dotted',
}


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(diagram: Diagram, title: str = "model") -> str:
    """The diagram in Graphviz's DOT: top to bottom, blocks as dashed clusters."""
    lines = [
        f"digraph {_dot_text(title)} {{",
        "    rankdir=TB;",
        "    nodesep=0.3; ranksep=0.35;",
        '    node [fontname="Helvetica", fontsize=10, height=0.3, margin="0.12,0.04"];',
        '    edge [fontname="Helvetica", fontsize=8, color="#5f6368", fontcolor="#3c4043", arrowsize=0.6];',
    ]

    def cluster(c: Cluster, indent: str) -> None:
        for node_id in c.nodes:
            node = diagram.nodes[node_id]
            lines.append(f"{indent}{node_id} [label={_dot_text(node.label)}, {_DOT_NODE[node.kind]}];")
        for inner in c.clusters:
            lines.append(f"{indent}subgraph cluster_{inner.id} {{")
            style = (
                'style="rounded,dashed"; color="#9aa0a6"' if inner.kind == "block" else 'style=rounded; color="#5f6368"'
            )
            lines.append(f'{indent}    label={_dot_text(inner.label)}; fontname="Helvetica"; fontsize=10; {style};')
            cluster(inner, indent + "    ")
            lines.append(f"{indent}}}")

    cluster(diagram.root, "    ")
    for e in diagram.edges:
        lines.append(f"    {e.src} -> {e.dst} [label={_dot_text(' ' + e.label)}{_DOT_EDGE[e.style]}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- Mermaid

_MERMAID_SHAPE = {
    "input": ('(["', '"])'),
    "output": ('(["', '"])'),
    "layer": ('["', '"]'),
    "op": ('["', '"]'),
    "add": ('(("', '"))'),
    "block": ('[["', '"]]'),
    "param": ('[("', '")]'),
}
_MERMAID_CLASSES = {
    "io": "fill:#d9f2e3,stroke:#34a853",
    "layer": "fill:#e8f0fe,stroke:#4285f4",
    "op": "fill:#fef7e0,stroke:#f9ab00",
    "block": "fill:#fce8d5,stroke:#e8710a",
    "param": "fill:#f3e8fd,stroke:#9334e6",
}
_MERMAID_CLASS_OF = {"input": "io", "output": "io", "add": "op"}


def _mermaid_text(text: str) -> str:
    """A label inside Mermaid's quotes: its own quotes and markup characters as entities."""
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("|", "#124;")
    )


def to_mermaid(diagram: Diagram) -> str:
    """The diagram as a Mermaid flowchart (GitHub renders it in a ```mermaid block)."""
    lines = ["flowchart TB"]

    def cluster(c: Cluster, indent: str) -> None:
        for node_id in c.nodes:
            node = diagram.nodes[node_id]
            left, right = _MERMAID_SHAPE[node.kind]
            lines.append(f"{indent}{node_id}{left}{_mermaid_text(node.label)}{right}")
        for inner in c.clusters:
            lines.append(f'{indent}subgraph {inner.id} ["{_mermaid_text(inner.label)}"]')
            lines.append(f"{indent}    direction TB")
            cluster(inner, indent + "    ")
            lines.append(f"{indent}end")

    cluster(diagram.root, "    ")
    arrows = {"data": "-->", "residual": "-.->", "skip": "-.->", "size": "-.->"}
    for e in diagram.edges:
        lines.append(f'    {e.src} {arrows[e.style]}|"{_mermaid_text(e.label)}"| {e.dst}')
    for name, style in _MERMAID_CLASSES.items():
        lines.append(f"    classDef {name} {style}")
    by_class: dict[str, list] = {}
    for node in diagram.nodes.values():
        by_class.setdefault(_MERMAID_CLASS_OF.get(node.kind, node.kind), []).append(node.id)
    for name, ids in by_class.items():
        lines.append(f"    class {','.join(ids)} {name}")
    for style, color in (("residual", "#c5221f"), ("skip", "#1967d2"), ("size", "#9aa0a6")):
        indexes = [str(i) for i, e in enumerate(diagram.edges) if e.style == style]
        if indexes:
            lines.append(f"    linkStyle {','.join(indexes)} stroke:{color},color:{color}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- SVG and PNG


def dot_program() -> str | None:
    """The path of Graphviz's ``dot``, or None where it is not installed."""
    return shutil.which("dot")


def render(dot_text: str, fmt: str, path: str, timeout: float = 120) -> None:
    """Run Graphviz's ``dot`` on some DOT text, writing ``fmt`` (svg or png) to ``path``."""
    program = dot_program()
    if program is None:
        raise GraphError(GRAPHVIZ_MISSING)
    try:
        done = subprocess.run(
            [program, f"-T{fmt}", "-o", path], input=dot_text.encode(), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise GraphError(f"Graphviz's dot took longer than {timeout:g} s") from exc
    except OSError as exc:
        raise GraphError(f"cannot run Graphviz's dot: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip().splitlines()
        raise GraphError(f"Graphviz's dot failed: {problem[0] if problem else f'exit status {done.returncode}'}")


def text(diagram: Diagram, fmt: str, title: str = "model") -> str:
    """The diagram as Mermaid or DOT text."""
    return to_mermaid(diagram) if fmt == "mermaid" else to_dot(diagram, title)
