"""Permute, Reshape and View take their sizes one by one, as torch's ``x.permute(0, 2, 1)`` and
``x.reshape(-1, 16)`` do, or as one tuple: both forms check, lower and emit alike, misuse of the
two together is one diagnostic at its position, and the emitted module computes what torch does."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.backends.torch_module import emit_program, load_module

torch = pytest.importorskip("torch")

# (layers one by one, the same as tuples, input shape, torch's own computation)
PAIRS = [
    (
        "Permute(0, 2, 3, 1) -> Reshape(-1, 192)",
        "Permute((0, 2, 3, 1)) -> Reshape((-1, 192))",
        (2, 3, 8, 8),
        lambda x: x.permute(0, 2, 3, 1).reshape(-1, 192),
    ),
    ("Permute(2, 0, 1)", "Permute((2, 0, 1))", (2, 3, 4), lambda x: x.permute(2, 0, 1)),
    ("Permute(-1, 0)", "Permute((-1, 0))", (3, 5), lambda x: x.permute(-1, 0)),
    ("Permute(0)", "Permute((0,))", (5,), lambda x: x.permute(0)),
    ("View(-1, 4, 2)", "View((-1, 4, 2))", (2, 3, 8), lambda x: x.view(-1, 4, 2)),
    ("Reshape(4, -1)", "Reshape((4, -1))", (2, 6), lambda x: x.reshape(4, -1)),
    ("Reshape(3, 2, 2)", "Reshape((3, 2, 2))", (3, 4), lambda x: x.reshape(3, 2, 2)),
]


def _model(layers: str, shape: tuple[int, ...]) -> str:
    return f"model M(x: [{', '.join(map(str, shape))}]) {{\n    x -> {layers}\n}}\n"


def _check(text: str):
    return nndsl.check_source(text, "<varargs>")


def _layer_args(result) -> list[tuple[str, dict]]:
    return [(n.layer.dsl_name(), dict(n.args)) for n in result.program.models[0].graph.nodes]


@pytest.mark.parametrize(("loose", "packed", "shape", "reference"), PAIRS, ids=[p[0] for p in PAIRS])
def test_sizes_one_by_one_are_the_tuple_form(loose, packed, shape, reference):
    a, b = _check(_model(loose, shape)), _check(_model(packed, shape))
    assert not a.diagnostics and not b.diagnostics
    assert _layer_args(a) == _layer_args(b)
    assert a.program.models[0].graph.nodes[-1].output == b.program.models[0].graph.nodes[-1].output
    assert emit_program(a.program) == emit_program(b.program)
    x = torch.randn(*shape)
    got = load_module(a.program)["M"]()(x)
    want = reference(x)
    assert got.shape == want.shape and torch.equal(got, want)


@pytest.mark.parametrize(
    ("loose", "packed", "shape"),
    [
        ("Permute(0, 1)", "Permute((0, 1))", (2, 3, 4)),
        ("Permute(0, 0, 1)", "Permute((0, 0, 1))", (2, 3, 4)),
        ("Reshape(5, 5)", "Reshape((5, 5))", (2, 3, 4)),
        ("Reshape(-1, -1)", "Reshape((-1, -1))", (2, 3, 4)),
        ("Reshape(-1, 2.5)", "Reshape((-1, 2.5))", (2, 3, 4)),
        ("View(0, 4)", "View((0, 4))", (2, 3, 4)),
    ],
)
def test_bad_sizes_one_by_one_get_the_tuple_forms_errors(loose, packed, shape):
    a, b = _check(_model(loose, shape)), _check(_model(packed, shape))
    # at the same place: the sizes one by one start where the tuple's "(" does
    got = [(d.code, d.message, d.span.start) for d in a.diagnostics]
    want = [(d.code, d.message, d.span.start) for d in b.diagnostics]
    assert len(got) == 1 and got == want


@pytest.mark.parametrize(
    ("layers", "code", "marked"),
    [
        ("Permute((0, 2), 3, 1)", "E106", "(0, 2)"),
        ("Permute(0, 3, (1, 2))", "E106", "(1, 2)"),
        ("Permute(0, 2, 3, 1, dims=(0, 1, 2, 3))", "E103", "dims=(0, 1, 2, 3)"),
        ("Reshape(-1, 192, shape=(-1,))", "E103", "shape=(-1,)"),
        ("Reshape(-1, 192, size=3)", "E102", "size"),
    ],
)
def test_mixing_the_forms_is_one_diagnostic_at_its_position(layers, code, marked):
    text = _model(layers, (2, 3, 8, 8))
    result = _check(text)
    assert [d.code for d in result.diagnostics] == [code]
    span = result.diagnostics[0].span
    assert text[span.start : span.end] == marked


def test_the_signature_shows_the_sizes_as_varargs():
    result = _check(_model("Permute(dims=(0, 1), 2)", (2, 3, 4)))
    assert [d.code for d in result.diagnostics] == ["E001"]
    result = _check(_model("Permute(0, 2, 1, order=1)", (2, 3, 4)))
    assert [d.code for d in result.diagnostics] == ["E102"]
    assert "Permute(*dims)" in (result.diagnostics[0].help or "")


def test_a_blocks_parameter_among_the_sizes():
    text = (
        "block B(x: [N, C, H, W], c) {\n    x -> Permute(0, 2, 3, 1) -> Reshape(-1, c)\n}\n"
        "model M(x: [N, 3, 8, 8]) {\n    x -> B(3)\n}\n"
    )
    result = _check(text)
    assert not result.diagnostics
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(load_module(result.program)["M"]()(x), x.permute(0, 2, 3, 1).reshape(-1, 3))
