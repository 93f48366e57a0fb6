"""Masks built as torch users build them: ones/zeros/full of symbolic sizes and triu/tril, used as
an attention mask; the per-operator rows live in tests/test_operator_table.py."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.backends.torch_module import load_module

torch = pytest.importorskip("torch")

CAUSAL = """model Causal(q: [N, T, 16], k: [N, T, 16]) {
    causal = triu(ones(T, T, dtype="bool"), 1)
    scores = masked_fill(q @ transpose(k, 1, 2), causal, -1e9)
    return softmax(scores, dim=-1), causal
}
"""


def test_causal_mask_is_torchs_attention_mask():
    """The mask computed by the emitted module is the bool mask torch's attention takes (True = not
    allowed): MultiheadAttention given it computes what it computes with is_causal's own mask."""
    result = nndsl.check_source(CAUSAL, "causal.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    assert [str(t) for t in result.program.models[0].outputs] == ["[N, T, T]", "bool[T, T]"]
    q, k = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    weights, mask = load_module(result.program)["Causal"]()(q, k)
    assert mask.dtype == torch.bool and torch.equal(mask, torch.ones(5, 5, dtype=torch.bool).triu(1))
    reference = torch.softmax((q @ k.transpose(1, 2)).masked_fill(mask, float("-inf")), dim=-1)
    torch.testing.assert_close(weights, reference)
    attention = torch.nn.MultiheadAttention(16, 2, batch_first=True).eval()
    square = torch.nn.Transformer.generate_square_subsequent_mask(5)
    with torch.no_grad():
        torch.testing.assert_close(attention(q, q, q, attn_mask=mask)[0], attention(q, q, q, attn_mask=square)[0])


def test_causal_mask_exports_with_symbolic_sizes():
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    exported, _ = export_and_verify(CAUSAL)
    ops = {n.op_type for n in exported.proto.graph.node}
    assert {"Trilu", "ConstantOfShape", "Shape"} <= ops


def test_emitted_mask_reads_the_length_from_an_input():
    from nndsl.backends.torch_module import emit_program

    source = emit_program(nndsl.check_source(CAUSAL, "causal.nn").program)
    assert "torch.ones(q.size(1), q.size(1), dtype=torch.bool, device=q.device)" in source
    assert "torch.triu(x, 1)" in source


@pytest.mark.parametrize(
    ("line", "code", "column"),
    [
        ('m = ones(T, dtype="complex")', "E106", 17),
        ("m = triu(x[0, 0])", "E208", 9),
        ("m = ones(T, 2.5)", "E106", 14),
        ("m = full((T, T))", "E105", 9),
        ("m = zeros(M, 2)", "E108", 15),
    ],
)
def test_mask_errors_are_positioned(line, code, column):
    text = f"model M(x: [N, T]) {{\n    {line}\n    return m\n}}\n"
    errors = nndsl.check_source(text, "m.nn").errors
    assert [(e.code, e.line_col) for e in errors][:1] == [(code, (2, column))]


PADDING = """model Padded(tokens: long[N, T], scores: [N, T, T]) {
    pad = tokens == 0
    keep = scores > 0.5
    return masked_fill(scores, pad[:, None, :], -1e9), keep, 0 < tokens
}
"""


def test_comparisons_make_bool_masks():
    result = nndsl.check_source(PADDING, "padded.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    assert [str(t) for t in result.program.models[0].outputs] == ["[N, T, T]", "bool[N, T, T]", "bool[N, T]"]
    from nndsl.backends.torch_module import emit_program

    source = emit_program(result.program)
    assert "pad = tokens == 0" in source and "0 < tokens" in source
    tokens, scores = torch.randint(0, 3, (2, 5)), torch.rand(2, 5, 5)
    filled, keep, positive = load_module(result.program)["Padded"]()(tokens, scores)
    assert torch.equal(filled, scores.masked_fill((tokens == 0)[:, None, :], -1e9))
    assert torch.equal(keep, scores > 0.5) and torch.equal(positive, tokens > 0)


def test_comparisons_export_to_onnx():
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    exported, _ = export_and_verify(PADDING.replace("tokens: long[N, T]", "tokens: [N, T]"))
    assert {"Equal", "Greater", "Less"} <= {n.op_type for n in exported.proto.graph.node}


def test_a_tensor_compared_with_a_layer_is_refused():
    text = "model M(x: [N, 4]) {\n    return x > ReLU\n}\n"
    assert [e.code for e in nndsl.check_source(text, "m.nn").errors] == ["E114"]
