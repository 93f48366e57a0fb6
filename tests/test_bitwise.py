"""``&``, ``|``, ``^`` and ``~`` on bool and integer tensors (masks combined and inverted) and on
integer constants: precedence as Python's, shapes and dtypes as torch's, emitted as written,
exported to ONNX (verified) and refused where torch or an old opset refuses."""

from __future__ import annotations

import pytest
from onnx_support import export_and_verify

import nndsl
from nndsl.backends.torch_module import emit_program, load_module

torch = pytest.importorskip("torch")

MASKS = """\
model Masks(tokens: long[N, T], scores: [N, T, T]) {
    padding = tokens == 0                                   # bool[N, T]
    causal = triu(ones(T, T, dtype="bool"), 1)              # bool[T, T]
    hidden = causal | padding[:, None, :]                   # bool[N, T, T]
    visible = ~hidden
    both = visible & (scores > 0) ^ padding[:, :, None]
    bits = (tokens & 6) | 1
    return masked_fill(scores, hidden, -1e9), visible, both, bits, ~tokens
}
"""


def _reference(tokens, scores):
    t = tokens.size(1)
    padding = tokens == 0
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
    hidden = causal | padding[:, None, :]
    visible = ~hidden
    both = visible & (scores > 0) ^ padding[:, :, None]
    return scores.masked_fill(hidden, -1e9), visible, both, (tokens & 6) | 1, ~tokens


def _inputs():
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 5, (2, 6), generator=gen)
    return tokens, torch.randn(2, 6, 6, generator=gen)


def test_masks_combine_and_invert_as_torch_does():
    result = nndsl.check_source(MASKS, "m.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    assert [str(t) for t in result.program.models[0].outputs] == [
        "[N, T, T]",
        "bool[N, T, T]",
        "bool[N, T, T]",
        "int64[N, T]",
        "int64[N, T]",
    ]
    source = emit_program(result.program)
    assert "causal | " in source and "~hidden" in source
    got = load_module(result.program)["Masks"]()(*_inputs())
    for ours, theirs in zip(got, _reference(*_inputs()), strict=True):
        assert ours.dtype == theirs.dtype
        assert torch.equal(ours, theirs)


def test_masks_export_to_onnx_verified():
    pytest.importorskip("onnxruntime")
    _, verified = export_and_verify(MASKS)
    assert verified.max_diff <= verified.limit


def test_integer_bitwise_needs_opset_18():
    pytest.importorskip("onnx")
    from nndsl.backends.onnx_export import ExportProblem

    with pytest.raises(ExportProblem, match="opset 18"):
        export_and_verify("model M(a: long[N, 3]) {\n    return a & 3\n}\n", opset=17)
    _, verified = export_and_verify("model M(a: bool[N, 3], b: bool[N, 3]) {\n    return ~a | b\n}\n", opset=17)
    assert verified.max_diff == 0


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("6 & 3", 6 & 3),
        ("6 | 3", 6 | 3),
        ("6 ^ 3", 6 ^ 3),
        ("~5", ~5),
        ("1 | 2 & 3", 1 | 2 & 3),
        ("1 + 2 | 4", 1 + 2 | 4),
    ],
)
def test_bitwise_operators_of_integers_are_pythons(expr, value):
    result = nndsl.check_source(f"let V = {expr}\nmodel M(x: [N, 4]) {{\n    return x * 0 + V\n}}\n", "c.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    out = load_module(result.program)["M"]()(torch.zeros(1, 4, dtype=torch.float64))
    assert out.tolist() == [[value] * 4]


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("let V = 1.5 & 1", "E110", "combines integers"),
        ("let V = ~2.0", "E110", "inverts an integer"),
        ("let V = ~True", "E110", "inverts an integer"),
    ],
)
def test_bitwise_operators_of_other_numbers_are_errors(text, code, words):
    (error,) = nndsl.check_source(f"{text}\nmodel M(x: [N, 4]) {{\n    Linear(4, 2)\n}}\n", "c.nn").errors
    assert error.code == code and words in error.message


@pytest.mark.parametrize("expr", ["x & m", "~x", "x | 1", "m ^ x"])
def test_bitwise_of_floats_is_refused_as_torch_refuses(expr):
    text = f"model M(x: [2, 3], m: bool[2, 3]) {{\n    return {expr}\n}}\n"
    (error,) = nndsl.check_source(text, "f.nn").errors
    assert error.code == "E204" and "integer or bool" in error.message
    x, m = torch.randn(2, 3), torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises((RuntimeError, TypeError)):
        eval(expr, {}, {"x": x, "m": m})


def test_a_chain_after_a_bitwise_operator_applies_to_the_combination():
    text = "model M(a: bool[N, 4], b: bool[N, 4]) {\n    a | b -> Flatten\n}\n"
    result = nndsl.check_source(text, "p.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    assert "a | b" in emit_program(result.program)
