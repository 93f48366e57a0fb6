"""The emitted PyTorch reads as a person would write it: a module the spec names keeps that
name as its attribute, floats are written as a person writes them, and a repetition counted by a
block parameter loops over that parameter."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.backends.torch_module import emit_program
from nndsl.lowering import MODULE_MEMBERS, lower


def _emitted(text: str) -> str:
    result = nndsl.check_source(text, "spec.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    return emit_program(result.program)


def _state_prefixes(text: str) -> list[str]:
    program = nndsl.check_source(text, "spec.nn").program
    model = program.complete_models[0]
    prefixes = lower(program).prefixes
    return [prefixes[node.id] for node in model.layers if node.params]


def test_a_module_named_and_applied_once_is_an_attribute_of_that_name():
    text = (
        "block Stem(x: [N, C], out) {\n    Linear(C, out) -> ReLU\n}\n"
        "model M(a: [N, 8]) {\n    proj = Linear(8, 8)\n    stem = Stem(16)\n"
        "    tower = Linear(16, 16) * 3\n    a -> proj -> Linear(8, 8) -> stem -> tower\n}\n"
    )
    source = _emitted(text)
    assert "self.proj = nn.Linear(8, 8)" in source
    assert "self.fc = nn.Linear(8, 8)" in source  # the one unnamed Linear: no number
    assert "self.stem = Stem(8, 16)" in source
    assert "self.tower = nn.Sequential(" in source
    assert _state_prefixes(text) == ["proj", "fc", "stem.fc", "tower.0", "tower.1", "tower.2"]


def test_an_unnamed_module_does_not_take_a_name_the_spec_gave():
    text = "model M(a: [N, 8]) {\n    fc = Linear(8, 8)\n    a -> Linear(8, 8) -> fc -> Linear(8, 8)\n}\n"
    assert _state_prefixes(text) == ["fc1", "fc", "fc2"]


@pytest.mark.parametrize("name", sorted(n for n in MODULE_MEMBERS if n.islower()) + ["_hidden", "_", "self", "nn"])
def test_a_name_that_would_shadow_something_falls_back_to_the_kind(name):
    result = nndsl.check_source(f"model M(a: [N, 8]) {{\n    {name} = Linear(8, 8)\n    a -> {name}\n}}\n")
    if not result.ok:  # a name the language itself refuses
        return
    (prefix,) = _state_prefixes(f"model M(a: [N, 8]) {{\n    {name} = Linear(8, 8)\n    a -> {name}\n}}\n")
    assert prefix == "fc"


def test_a_named_module_of_several_layers_applied_once_is_spliced_in():
    text = "model M(a: [N, 8]) {\n    head = Linear(8, 4) -> ReLU\n    a -> head\n}\n"
    assert _state_prefixes(text) == ["fc"]


@pytest.mark.parametrize("name", ["input", "sum", "max", "filter", "self_"])
def test_a_name_that_shadows_nothing_as_an_attribute_is_kept(name):
    text = f"model M(a: [N, 8]) {{\n    {name} = Linear(8, 8)\n    a -> {name}\n}}\n"
    if not nndsl.check_source(text).ok:
        pytest.skip(f"the language refuses the name {name}")
    assert _state_prefixes(text) == [name]


def test_floats_are_written_as_a_person_writes_them():
    text = (
        'model M(x: [N, 8, 8]) {\n    causal = triu(ones(8, 8, dtype="bool"), 1)\n'
        '    scale = Parameter([8], init="constant", value=1e-5)\n'
        "    y = masked_fill(x, causal, -1e9) * 1e-6 + 0.02 + scale\n"
        "    return y -> LayerNorm(8, eps=1e-6) -> Dropout(0.1) -> Linear(8, 4)\n}\n"
    )
    source = _emitted(text)
    for written in ("-1e9", "* 1e-6", "+ 0.02", "1e-5", "eps=1e-6", "Dropout(0.1)"):
        assert written in source, written
    assert "1000000000" not in source and "e-0" not in source


@pytest.mark.parametrize(
    "value", [-1e9, 1e-6, 0.02, 0.001, 1e-4, 2.5e-5, 1e5, 123456789.0, 1e16, 12345678901234568.0, -0.0, 5e-324, 1e308]
)
def test_a_float_literal_reads_back_as_the_same_float(value):
    from nndsl.backends.pysource import float_literal

    text = float_literal(value)
    assert type(eval(text)) is float and eval(text) == value and str(eval(text)) == str(value)
    assert "e+" not in text and "e-0" not in text
    assert len(text) <= len(repr(value))


COUNTED = """\
block Unit(x: [N, C]) {
    Linear(C, C) -> ReLU
}
block Stack(x: [N, C], layers) {
    Linear(C, C) * layers -> ReLU
}
block Units(x: [N, C], depth) {
    Unit * (depth - 1)
}
model M(a: [N, 8]) {
    a -> Stack(4) -> Stack(1) -> Stack(3) -> Units(3) -> Units(4)
}
"""


def test_a_repetition_counted_by_a_block_parameter_loops_over_it_in_one_class(tmp_path):
    from conftest import assert_ruff_clean

    source = _emitted(COUNTED)
    assert "nn.Sequential(*(nn.Linear(C, C) for _ in range(layers)))" in source
    assert "nn.Sequential(*(Unit(8) for _ in range(depth - 1)))" in source
    assert source.count("class Stack") == source.count("class Units") == 1  # one class whatever the count
    assert "Stack(8, 4)" in source and "Stack(8, 1)" in source and "Units(4)" in source
    (tmp_path / "counted.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_a_counted_repetition_builds_its_uses_modules_under_the_keys_lowering_gives():
    torch = pytest.importorskip("torch")
    from nndsl.backends.torch_module import class_names, load_module

    program = nndsl.check_source(COUNTED, "spec.nn").program
    model = program.complete_models[0]
    module = load_module(program)[class_names(program)["M"]]()
    keys = list(module.state_dict())
    prefixes = lower(program).prefixes
    assert {k.rsplit(".", 1)[0] for k in keys} == {prefixes[n.id] for n in model.layers if n.params}
    assert [len(getattr(module, name).blocks) for name in ("stack1", "stack2", "stack3")] == [4, 1, 3]
    assert {"units1.blocks.1.fc.weight", "units2.blocks.2.fc.bias"} <= set(keys)
    assert "units1.blocks.2.fc.weight" not in keys
    assert sum(p.numel() for p in module.parameters()) == model.param_count
    with torch.no_grad():
        assert module(torch.randn(2, 8)).shape == (2, 8)


def test_a_literal_count_or_unequal_copies_stay_as_they_were():
    text = (
        "block Down(x: [N, C], out) {\n    Linear(C, out) * 2\n}\n"
        "block Grow(x: [N, C], n) {\n    (Linear(C, C) -> ReLU) * n\n}\n"
        "model M(a: [N, 8]) {\n    a -> Down(8) -> Grow(2)\n}\n"
    )
    source = _emitted(text)
    assert "range(" not in source  # two short copies, and a repetition of two modules, written out
    assert "nn.Sequential(nn.Linear(C, out), nn.Linear(C, out))" in source or "Linear(out, out)" in source


def test_a_counted_repetition_exports_to_onnx_as_torch_computes_it():
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    exported, verified = export_and_verify(COUNTED)
    assert verified.cases and verified.max_diff <= verified.limit


def test_a_counted_repetition_given_as_a_sub_network_argument_keeps_its_keys():
    torch = pytest.importorskip("torch")
    from nndsl.backends.torch_module import class_names, load_module

    text = (
        "block Inner(x: [N, C], body) {\n    body -> ReLU\n}\n"
        "block Outer(x: [N, C], n) {\n    Inner(Linear(C, C) * n)\n}\n"
        "model M(a: [N, 8]) {\n    a -> Outer(3) -> Outer(2)\n}\n"
    )
    source = _emitted(text)
    assert source.count("class Outer") == 1 and "for _ in range(n)" in source
    program = nndsl.check_source(text, "spec.nn").program
    model = program.complete_models[0]
    module = load_module(program)[class_names(program)["M"]]()
    prefixes = lower(program).prefixes
    assert {k.rsplit(".", 1)[0] for k in module.state_dict()} == {prefixes[n.id] for n in model.layers if n.params}
    assert len(module.outer1.inner.body) == 3 and len(module.outer2.inner.body) == 2
    assert module(torch.randn(2, 8)).shape == (2, 8)


def test_a_named_module_a_loop_builds_twice_is_numbered():
    text = (
        "model M(a: [N, 8]) {\n    x = a\n    for i in range(2) {\n        f = Linear(8, 8)\n        x -> f\n    }\n}\n"
    )
    assert sorted(_state_prefixes(text)) == ["f1", "f2"]
