"""Block bodies checked once per distinct use: a later use of a block with the same arguments,
input types and symbol bindings gets a copy of the first use's checked body, its values and
nodes numbered on from where the model has got to, instead of a second check.

ResNet-50 uses its Bottleneck sixteen times with eight distinct argument sets; the copy is
what checking the body again would build, value for value and id for id (a test compares the
two on every spec). Only a use whose check left no trace but its nodes is kept: one that
reported a diagnostic, bound a symbol, made a fresh one, applied a named or shared module, a
sub-network argument or a weight tie, or reached a work limit is checked again every time.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from nndsl.check.values import MAX_APPLIED, MAX_LAYERS, ModelState, Tensor, is_fn
from nndsl.ir import BlockNode, Graph, LayerNode, OpNode, ParamNode, ResidualNode, SeqNode, Visitor, walk

#: off in tests that compare a memoised check with a full one
ENABLED = True


class Body(NamedTuple):
    """One use's checked body and what its check added to the model's state."""

    nodes: tuple
    output: Tensor
    first_value: int  # the first value number the body defined
    values: int  # how many values it defined
    inputs: tuple[int, ...]  # the value numbers of its inputs in that use
    first_id: int  # its first node id
    ids: int  # how many node ids it took
    first_index: int  # its first layer index
    indices: int  # how many layer indices it took
    layers: int  # the layers it counted towards the model's limit
    steps: int  # the sub-networks it applied
    used: frozenset[int]  # the values it marked used
    names: tuple[tuple[int, str], ...]  # the values it named
    locals: dict  # the block scope's computed constants (BlockNode.locals)
    exprs: dict  # the body's constants, name -> value (BlockNode.constants)


def _tagged(value: Any) -> Any:
    """``value`` with its type alongside (1, 1.0 and True differ in a block's arguments); None
    for a value that cannot key a use (a tensor, a sub-network, something unhashable)."""
    if isinstance(value, (tuple, list)):
        parts = tuple(_tagged(v) for v in value)
        return None if any(p is None for p in parts) else (type(value), parts)
    if isinstance(value, Tensor) or is_fn(value):
        return None
    try:
        hash(value)
    except TypeError:
        return None
    return (type(value), value)


def key(block: object, params: dict[str, Any], inputs: list[Tensor], state: ModelState, bindings: dict) -> Any:
    """What a use's body check depends on, or None when the use is not kept."""
    if not ENABLED or state.arguments or state.exhausted:
        return None
    args = []
    for name in sorted(params):
        tagged = _tagged(params[name])
        if tagged is None:
            return None
        args.append((name, tagged))
    k = (id(block), tuple(args), tuple(t.type for t in inputs), frozenset(bindings.items()), state.repeats)
    try:
        hash(k)
    except TypeError:
        return None
    return k


class Mark(NamedTuple):
    """The model's state before a body is checked, to tell what the check added."""

    values: int
    allocated: int
    index: int
    layers: int
    steps: int
    used: frozenset[int]
    names: int
    sizes: tuple[int, ...]  # the state's tables a kept check must leave unchanged
    diagnostics: int
    bindings: int
    fresh: int


def _sizes(state: ModelState) -> tuple[int, ...]:
    return (
        len(state.applied),
        len(state.named),
        len(state.named_applied),
        len(state.arguments_applied),
        len(state.modules),
        len(state.ties),
    )


def mark(state: ModelState, diagnostics: int, bindings: int, fresh: int) -> Mark:
    return Mark(
        len(state.types),
        state.allocated,
        state.layer_index,
        state.layers,
        state.steps,
        frozenset(state.used),
        len(state.names),
        _sizes(state),
        diagnostics,
        bindings,
        fresh,
    )


def record(
    before: Mark,
    state: ModelState,
    diagnostics: int,
    bindings: int,
    fresh: int,
    nodes: list,
    output: Tensor,
    inputs: list[Tensor],
    locals: dict | None,
    exprs: dict,
) -> Body | None:
    """The body just checked, if nothing but its nodes came of it; else None."""
    if (
        state.poisoned
        or state.exhausted
        or output.type is None
        or (diagnostics, bindings, fresh) != (before.diagnostics, before.bindings, before.fresh)
        or _sizes(state) != before.sizes
    ):
        return None
    ids = state.allocated - before.allocated
    inside = range(before.values, len(state.types))
    outside = {t.id for t in inputs}
    for node in walk(Graph((), tuple(nodes), ())):
        for v in (*node.reads, *node.writes):
            if v not in inside and v not in outside:
                return None  # it reads a value of the caller that is not an input: not kept
    names = list(state.names.items())[before.names :]
    return Body(
        tuple(nodes),
        output,
        before.values,
        len(inside),
        tuple(t.id for t in inputs),
        state.last_id - ids + 1 if ids else 0,
        ids,
        before.index,
        state.layer_index - before.index,
        state.layers - before.layers,
        state.steps - before.steps,
        frozenset(state.used - before.used),
        tuple(names),
        dict(locals) if locals is not None else {},
        exprs,
    )


def replay(body: Body, state: ModelState, inputs: list[Tensor]) -> tuple[list, Tensor] | None:
    """The kept body numbered on from the model's state, as checking it again would number it;
    None when the copy would pass a work limit (a real check then reports it)."""
    if state.layers + body.layers > MAX_LAYERS or state.steps + body.steps > MAX_APPLIED:
        return None
    shift = len(state.types) - body.first_value
    mapping = dict(zip(body.inputs, (t.id for t in inputs)))
    for v in range(body.first_value, body.first_value + body.values):
        new = v + shift
        mapping[v] = new
        state.types[new] = state.types[v]
    first_id = None
    for _ in range(body.ids):
        allocated = state.node_id()
        first_id = allocated if first_id is None else first_id
    renumber = _Renumber(mapping, (first_id or 0) - body.first_id, state.layer_index - body.first_index)
    state.layer_index += body.indices
    state.layers += body.layers
    state.steps += body.steps
    state.used.update(mapping[v] for v in body.used)
    for v, name in body.names:
        state.names[mapping[v]] = name
    out = body.output
    return [renumber.visit(n) for n in body.nodes], out._replace(id=mapping[out.id])


class _Renumber(Visitor):
    """A checked body's nodes with new value numbers, node ids and layer indices: ``visit``
    returns a node's copy, one method per kind of node."""

    def __init__(self, values: dict[int, int], ids: int, indices: int) -> None:
        self.values = values
        self.ids = ids
        self.indices = indices

    def _v(self, values: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self.values[v] for v in values)

    def graph(self, g: Graph) -> Graph:
        return Graph(self._v(g.inputs), tuple(self.visit(n) for n in g.nodes), self._v(g.outputs))

    def generic(self, node):
        raise TypeError(f"no renumbering for {type(node).__name__}")

    def layer(self, n: LayerNode) -> LayerNode:
        m = self.values
        extra = tuple((name, m[v]) for name, v in n.extra)
        return n._replace(
            src=m[n.src],
            dst=m[n.dst],
            extra=extra,
            unpacked=self._v(n.unpacked),
            index=n.index + self.indices,
            id=n.id + self.ids,
        )

    def op(self, n: OpNode) -> OpNode:
        return n._replace(inputs=self._v(n.inputs), outputs=self._v(n.outputs), id=n.id + self.ids)

    def block(self, n: BlockNode) -> BlockNode:
        m = self.values
        return n._replace(inputs=self._v(n.inputs), output=m[n.output], body=self.graph(n.body), id=n.id + self.ids)

    def residual(self, n: ResidualNode) -> ResidualNode:
        m = self.values
        shortcut = None if n.shortcut is None else self.graph(n.shortcut)
        return n._replace(
            input=m[n.input], output=m[n.output], body=self.graph(n.body), shortcut=shortcut, id=n.id + self.ids
        )

    def seq(self, n: SeqNode) -> SeqNode:
        m = self.values
        return n._replace(input=m[n.input], output=m[n.output], body=self.graph(n.body), id=n.id + self.ids)

    def param(self, n: ParamNode) -> ParamNode:
        return n._replace(output=self.values[n.output], id=n.id + self.ids)
