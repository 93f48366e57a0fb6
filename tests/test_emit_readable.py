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
