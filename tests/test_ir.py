"""The IR's node interface: every node has an id unique in its program, the values it reads and
writes, its sub-graphs and its own weights; a Visitor dispatches on the node's tag."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

import nndsl
from nndsl import shapes
from nndsl.diagnostics import Span
from nndsl.ir import BlockNode, Graph, LayerNode, ModelIR, OpNode, ParamNode, ResidualNode, SeqNode, Visitor, walk
from nndsl.shapes import Shape, TensorType
from nndsl.source import Source

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.nn") if "bad" not in p.parts)


def programs():
    for path in SPECS:
        result = nndsl.check_file(path)
        if result.program is not None and result.program.complete_models:
            yield path, result.program


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_node_has_an_id_unique_in_its_program(path):
    program = nndsl.check_file(path).program
    if program is None:
        pytest.skip("no program")
    ids = [node.id for model in program.models for node in walk(model.graph)]
    assert len(ids) == len(set(ids))


def test_ids_are_stable_from_run_to_run():
    path = ROOT / "specs" / "zoo" / "resnet50.nn"
    first, second = (nndsl.check_file(path).program for _ in range(2))
    assert [(n.tag, n.id) for n in walk(first.models[0].graph)] == [(n.tag, n.id) for n in walk(second.models[0].graph)]


def test_reads_and_writes_follow_the_data():
    """Within a graph, every node reads values defined before it: the graph's inputs or what an
    earlier node wrote (a node's sub-graphs read from the same numbering)."""
    for _, program in programs():
        for model in program.complete_models:
            defined = set(model.graph.inputs)

            def check(graph, defined):
                defined = set(defined) | set(graph.inputs)
                for node in graph.nodes:
                    assert set(node.reads) <= defined, node.text
                    for sub in node.graphs:
                        check(sub, defined)
                    defined |= set(node.writes)
                assert set(graph.outputs) <= defined

            check(model.graph, defined)


def test_param_count_sums_every_nodes_own_weights():
    for _, program in programs():
        for model in program.complete_models:
            holders = (LayerNode, ParamNode)  # layers and learned tensors hold weights
            # a shared module's later uses hold the first use's weights, and a tied weight counts once
            again = {id(n) for use in walk(model.graph) if getattr(use, "again", False) for n in walk(use.body)}
            weights = sum(n.own_params for n in walk(model.graph) if isinstance(n, holders) and id(n) not in again)
            assert model.param_count == weights - sum(tie.size for tie in model.ties)
            assert all(n.own_params == 0 for n in walk(model.graph) if not isinstance(n, holders))


class Counter(Visitor):
    def __init__(self):
        self.seen: dict[str, int] = {}

    def generic(self, node):
        self.seen[node.tag] = self.seen.get(node.tag, 0) + 1
        super().generic(node)


def test_the_visitor_reaches_every_node_by_its_tag():
    kinds = {
        LayerNode: "layer",
        OpNode: "op",
        BlockNode: "block",
        ResidualNode: "residual",
        SeqNode: "seq",
        ParamNode: "param",
    }
    for _, program in programs():
        for model in program.complete_models:
            counter = Counter()
            counter.run(model.graph)
            expected: dict[str, int] = {}
            for node in walk(model.graph):
                expected[kinds[type(node)]] = expected.get(kinds[type(node)], 0) + 1
            assert counter.seen == expected


class Learned(NamedTuple):
    """A kind of node no pass knows: the interface alone says what it reads, writes and holds."""

    dst: int
    span: Span
    text: str
    id: int = 0

    tag = "learned"
    reads = ()
    graphs = ()
    own_params = 12

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.dst,)


def test_a_pass_treats_a_kind_it_has_no_method_for_through_the_interface():
    from nndsl.backends.summary import shape_table

    source = Source("t.nn", "model M(x: [N, 3]) {\n    x\n}\n")
    model = ModelIR(
        "M",
        ("x",),
        (TensorType(Shape((shapes.sym("N"), 3))),),
        Graph((0,), (Learned(1, Span(24, 25), "Param([3, 4])", id=7),), (1,)),
        {0: TensorType(Shape((shapes.sym("N"), 3))), 1: TensorType(Shape((3, 4)))},
        Span(0, 10),
    )
    Visitor.learned = lambda self, node: self.generic(node)  # what a new kind adds to the base
    try:
        assert model.param_count == 12
        table = shape_table(model, source)
    finally:
        del Visitor.learned
    assert "Param([3, 4])" in table and "[3, 4]" in table and "12" in table.splitlines()[-1]
