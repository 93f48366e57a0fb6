"""The module tree of ``nndsl.lowering`` is the emitted module's own: every module torch registers
sits at the path the lowering gives, built from the node it names, and every state_dict key
belongs to the layer the lowering says; for every spec, every zoo model and generated programs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import good_specs, zoo_specs
from hypothesis import given, settings
from test_emit_blocks import SPLIT_HEADS, SUB_NETWORKS, USES
from test_fuzz_flow import _SETTINGS, _check, programs

import nndsl
from nndsl.backends.torch_module import class_names, load_module
from nndsl.expr import Binary, Const, Ref
from nndsl.ir import Program, walk
from nndsl.lowering import Module, lower, typed

torch = pytest.importorskip("torch")

#: conditional shortcuts taken by some uses only, a residual some uses skip, a sub-network
#: argument handed on and applied in a class of its own, names that collide
EDGES = """\
block Opt(x: [N, C], s=1) { Residual(Linear(C, C) -> ReLU, shortcut=Linear(C, C) if s != 1 else None) }
block Maybe(x: [N, C], on) { Residual(Linear(C, C)) if on else Linear(C, C) }
block Wrap(x: [N, C], f, g=None) { f -> ReLU -> Residual(Linear(C, C), shortcut=g) }
block Hand(x: [N, C], f) { Wrap(f -> Tanh) -> Linear(C, C) }
block Pass(x: [N, C], f) { Linear(C, C) -> Wrap(f) }
block Shape(x: [N, C], fc, k) { Reshape(fc) -> Linear(k, k) -> Reshape((-1, C)) }
model Edges(x: [N, 8]) {
    Opt(1) -> Opt(2) -> Maybe(True) -> Maybe(False) -> Wrap(Linear(8, 8), g=Linear(8, 8))
    -> Hand(Linear(8, 8) -> ReLU) -> Pass(Linear(8, 8) -> Tanh) -> Shape((-1, 8), 8) -> Shape((-1, 4), 4) -> Opt(3) * 2
    -> for s in [1, 2] { Opt(s) } -> Linear(8, 8)
}
"""


def _agree(program: Program) -> int:
    """Asserts the lowering's tree is the built module's; returns how many modules it has."""
    lowered = lower(program)
    namespace, classes = load_module(program), class_names(program)
    grouping = lowered.classes
    count = 0
    for model in program.complete_models:
        with torch.device("meta"):
            module = namespace[classes[model.name]]()
        nodes = {node.id: node for node in walk(model.graph)}
        tree: dict[str, Module] = {m.path: m for m in lowered.models[model.name].walk()}
        layers = {path for path, m in tree.items() if m.kind == "layer"}
        # torch's own modules inside a layer (MultiheadAttention's out_proj) are not ours
        registered = {
            name: sub
            for name, sub in module.named_modules(remove_duplicate=False)
            if not any(name.startswith(layer + ".") for layer in layers)
        }
        assert set(registered) == set(tree), sorted(set(registered) ^ set(tree))
        for path, sub in registered.items():
            mine = tree[path]
            if mine.kind == "layer":
                assert type(sub).__name__ == nodes[mine.node].layer.torch_name(), path
                assert lowered.prefixes[mine.node] == path
            elif mine.kind == "block":
                assert type(sub).__name__ == grouping[mine.node].name, path
            elif mine.kind == "sequential":
                assert isinstance(sub, torch.nn.Sequential), path
            if mine.kind != "model":
                assert mine.node in nodes or mine.kind in ("sequential", "sub_network"), path
        tensors = {lowered.prefixes[n.id] for n in nodes.values() if n.tag == "param"}  # learned tensors' keys
        for key in module.state_dict():
            assert key in tensors or any(key.startswith(layer + ".") for layer in layers), key
        count += len(tree)
    return count


@pytest.mark.parametrize("spec", good_specs() + zoo_specs(), ids=lambda p: p.name)
def test_the_tree_is_the_built_modules(spec):
    _agree(nndsl.check_file(spec).program)


@pytest.mark.parametrize(
    "text", [USES, SPLIT_HEADS, SUB_NETWORKS, EDGES], ids=["uses", "split_heads", "sub_networks", "edges"]
)
def test_the_tree_of_blocks_used_differently(text):
    result = nndsl.check_source(text, "edges.nn")
    assert result.ok, [d.message for d in result.errors]
    assert _agree(result.program) >= 3  # the model and two uses, at least


def test_generated_programs(tmp_path):
    counted = []

    @settings(max_examples=40, **_SETTINGS)
    @given(programs())
    def prop(case):
        result, _ = _check(case, tmp_path)
        if result.ok and all(m.param_count < 10**6 for m in result.program.models):
            counted.append(_agree(result.program))

    prop()
    assert len(counted) > 20 and sum(counted) > 100


def test_every_layer_with_a_module_has_a_prefix():
    program = nndsl.check_file(Path(zoo_specs()[0]).parent / "resnet18.nn").program
    lowered = lower(program)
    model = program.models[0]
    with_module = {n.id for n in model.layers if n.layer.has_module}
    assert with_module == set(lowered.prefixes)
    assert lower(program) is lowered  # computed once per program


def test_the_lowering_imports_no_backend():
    """Nothing the lowering imports, directly or not, is a backend (function-level imports count)."""
    import grimp

    graph = grimp.build_graph("nndsl", include_external_packages=False)
    upstream = graph.find_upstream_modules("nndsl.lowering")
    assert not {m for m in upstream if m.startswith("nndsl.backends")}


def test_constants_are_told_apart_by_type():
    """``1 == True == 1.0``, as tuples ``Const(1) == Const(True)``: a class's key must not merge them."""
    keys = {typed(Const(1)), typed(Const(True)), typed(Const(1.0)), typed(Const((1,))), typed(Const((True,)))}
    assert len(keys) == 5
    assert typed(Const(float("nan"))) == typed(Const(float("nan")))
    assert typed(Binary("*", Ref("C"), Const(2))) != typed(Binary("*", Ref("C"), Const(2.0)))


def test_uses_that_differ_in_values_share_a_class_whose_slots_are_expressions():
    text = """\
block Shape(x: [N, C], fc, k) { Reshape(fc) -> Linear(k, k) -> Reshape((-1, C)) }
model M(x: [N, 8]) { Shape((-1, 8), 8) -> Shape((-1, 4), 4) -> Linear(8, 2) }
"""
    result = nndsl.check_source(text, "shape.nn")
    assert result.ok, [d.message for d in result.errors]
    lowered = lower(result.program)
    uses = [node for node in walk(result.program.models[0].graph) if node.tag == "block"]
    classes = {lowered.classes[use.id].name for use in uses}
    assert classes == {"Shape"}
    cls = lowered.classes[uses[0].id]
    assert [p.name for p in cls.params] == ["fc", "k"]
    assert [p.values for p in cls.params] == [((-1, 8), (-1, 4)), (8, 4)]
    assert set(cls.forward_sources.values()) == {Ref("fc")}  # the second Reshape's is the same in both
    # the Linear's sizes, and the dtype it holds its weights in (the same in both uses)
    assert {key[1]: expr for key, expr in cls.slots.items()} == {
        "in_features": Ref("k"),
        "out_features": Ref("k"),
        "dtype": Const("float32"),
    }
