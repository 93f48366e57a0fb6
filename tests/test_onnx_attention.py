"""ONNX exports of layers called with several tensors, verified against torch: MultiheadAttention
with separate key and value and its masks, TransformerEncoderLayer with its masks, recurrent
layers from a given initial state, and the two-tensor layers."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_support import export_and_verify, run_both

from nndsl.backends.onnx_verify import random_inputs


def _spec(inputs: str, body: str) -> str:
    return f"model M({inputs}) {{\n    y = {body}\n    return y\n}}\n"


ATTENTION = [
    # cross-attention, kdim/vdim: separate q/k/v projections; M is a key length other than L
    (
        "q: [N, L, 8], m: [N, M, 6], pad: bool[N, M]",
        "MultiheadAttention(8, 2, batch_first=True, kdim=6, vdim=6)(q, m, m, key_padding_mask=pad)",
    ),
    # separate key and value tensors of embed_dim features: the packed projection's rows
    ("q: [L, N, 8], k: [M, N, 8], v: [M, N, 8]", "MultiheadAttention(8, 4)(q, k, v)"),
    ("q: [L, N, 8], k: [M, N, 4], v: [M, N, 6]", "MultiheadAttention(8, 2, bias=False, kdim=4, vdim=6)(q, k, v)"),
    # both masks, float attn_mask and bool padding (torch warns of the mix, and adds both)
    (
        "x: [L, N, 8], pad: bool[N, L], m: [L, L]",
        "MultiheadAttention(8, 2)(x, x, x, key_padding_mask=pad, attn_mask=m)",
    ),
    (
        "x: [N, L, 8], pad: [N, L], m: bool[L, L]",
        "MultiheadAttention(8, 2, batch_first=True)(x, x, x, key_padding_mask=pad, attn_mask=m)",
    ),
    # a per-head mask [N * heads, L, S], bool and float
    ("x: [N, L, 8], m: bool[N * 2, L, L]", "MultiheadAttention(8, 2, batch_first=True)(x, x, x, attn_mask=m)"),
    ("q: [L, N, 8], k: [M, N, 8], m: [N * 4, L, M]", "MultiheadAttention(8, 4)(q, k, k, attn_mask=m)"),
    # the masks padded for the appended bias key and zero key
    (
        "x: [L, N, 8], k: [M, N, 8], pad: bool[N, M], m: bool[N * 2, L, M]",
        "MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True)(x, k, k, key_padding_mask=pad, attn_mask=m)",
    ),
    (
        "x: [N, L, 8], pad: bool[N, L]",
        "MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True)(x, key_padding_mask=pad)",
    ),
    # unbatched: [S] padding, [heads, L, S] mask
    (
        "x: [L, 8], k: [M, 8], pad: bool[M], m: [2, L, M]",
        "MultiheadAttention(8, 2, add_zero_attn=True)(x, k, k, key_padding_mask=pad, attn_mask=m)",
    ),
    ("x: [L, 8], m: bool[L, L]", "MultiheadAttention(8, 2)(x, x, x, attn_mask=m)"),
    (
        "x: [N, L, 8], m: bool[L, L]",
        "MultiheadAttention(8, 2, batch_first=True)(x, x, x, attn_mask=m, need_weights=True)",
    ),
]

ENCODER = [
    (
        "x: [N, S, 8], pad: bool[N, S]",
        "TransformerEncoderLayer(8, 2, 16, batch_first=True)(x, src_key_padding_mask=pad)",
    ),
    (
        "x: [N, S, 8], pad: bool[N, S], m: bool[S, S]",
        "TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True)(x, src_key_padding_mask=pad, src_mask=m)",
    ),
    (
        "x: [S, N, 8], pad: [N, S], m: [N * 2, S, S]",
        "TransformerEncoderLayer(8, 2, 16, activation='gelu')(x, src_mask=m, src_key_padding_mask=pad)",
    ),
    ("x: [S, 8], m: [S, S]", "TransformerEncoderLayer(8, 2, 16)(x, src_mask=m)"),
]


@pytest.mark.parametrize(("inputs", "call"), ATTENTION + ENCODER)
def test_attention_with_masks_exports_and_verifies(inputs, call):
    _, verified = export_and_verify(_spec(inputs, call))
    assert verified.reference == "torch" and len(verified.cases) == 2
    assert verified.max_diff <= verified.limit


CAUSAL = [
    (
        "x: [N, L, 8], causal: bool[L, L]",
        "MultiheadAttention(8, 2, batch_first=True)(x, x, x, attn_mask=causal, is_causal=True)",
    ),
    ("x: [L, N, 8], causal: bool[L, L]", "MultiheadAttention(8, 2)(x, x, x, attn_mask=causal, is_causal=True)"),
    (
        "x: [L, N, 8], causal: [L, L]",
        "TransformerEncoderLayer(8, 2, 16, norm_first=True)(x, src_mask=causal, is_causal=True)",
    ),
    (
        "x: [N, L, 8], causal: bool[L, L], pad: bool[N, L]",
        "TransformerEncoderLayer(8, 2, 16, batch_first=True)(x, src_mask=causal, src_key_padding_mask=pad, is_causal=True)",
    ),
]


@pytest.mark.parametrize(("inputs", "call"), CAUSAL)
@pytest.mark.parametrize("length", [5, 9])
def test_is_causal_with_a_causal_mask_matches_torch(inputs, call, length):
    """is_causal is torch's hint that the mask is causal (its slow path then ignores the mask and
    applies its own triangle): with a causal mask, the export agrees with either path."""
    from onnx_support import varied

    import nndsl
    from nndsl.backends.onnx_export import export_model
    from nndsl.backends.torch_build import fresh_weights

    result = nndsl.check_source(_spec(inputs, call), "<test>")
    assert result.ok, result.errors
    program, model = result.program, result.program.models[0]
    weights = varied(fresh_weights(program, model, 0))
    exported = export_model(program, model, weights)
    feeds = random_inputs(model, {"N": 2, "L": length}, seed=3)
    upper = np.triu(np.ones((length, length), bool), 1)
    feeds["causal"] = upper if "bool[L, L]" in inputs else np.where(upper, -np.inf, 0).astype(np.float32)
    got, want = run_both(program, model, weights, exported, feeds)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


RECURRENT = [
    ("x: [N, T, 3], h: [2, N, 4], c: [2, N, 4]", "LSTM(3, 4, batch_first=True, bidirectional=True)(x, (h, c))"),
    ("x: [T, N, 3], h: [4, N, 4], c: [4, N, 4]", "LSTM(3, 4, num_layers=2, bidirectional=True)(x, (h, c)).h_n"),
    ("x: [T, 3], h: [2, 4], c: [2, 4]", "LSTM(3, 4, num_layers=2, bias=False)(x, (h, c)).c_n"),
    ("x: [N, T, 3], h: [3, N, 4]", "GRU(3, 4, num_layers=3, batch_first=True)(x, h)"),
    ("x: [T, 3], h: [4, 4]", "GRU(3, 4, num_layers=2, bidirectional=True)(x, h).hidden"),
    ("x: [T, N, 3], h: [2, N, 4]", "RNN(3, 4, bidirectional=True, nonlinearity='relu')(x, h).last"),
    ("x: [N, T, 3], h: [2, N, 4]", "RNN(3, 4, num_layers=2, batch_first=True, bias=False)(x, h).h_n"),
]


@pytest.mark.parametrize(("inputs", "call"), RECURRENT)
def test_recurrent_from_a_given_state_exports_and_verifies(inputs, call):
    _, verified = export_and_verify(_spec(inputs, call))
    assert verified.reference == "torch" and len(verified.cases) == 2
    assert verified.max_diff <= verified.limit


def test_projected_lstm_from_a_given_state_is_refused(tmp_path):
    import nndsl

    spec = _spec("x: [N, T, 3], h: [1, N, 2], c: [1, N, 4]", "LSTM(3, 4, proj_size=2, batch_first=True)(x, (h, c))")
    with pytest.raises(nndsl.SpecError) as info:
        nndsl.export_onnx(spec, tmp_path / "m.onnx")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E601" and "proj_size" in diagnostic.message
    assert not (tmp_path / "m.onnx").exists()


TWO_TENSORS = [
    ("a: [N, 16], b: [N, 16]", "CosineSimilarity(dim=1)(a, b)"),
    ("a: [N, 5, 16], b: [1, 16]", "CosineSimilarity(dim=-1, eps=0.5)(a, b)"),
    ("a: [N, 1, 7], b: [N, 4, 1]", "CosineSimilarity(dim=1)(a, b)"),  # the norms of the expanded inputs
    ("a: [N, 16], b: [N, 16]", "PairwiseDistance()(a, b)"),
    ("a: [N, 3, 16], b: [16]", "PairwiseDistance(p=1.0, keepdim=True)(a, b)"),
    ("a: [N, 16], b: [N, 16]", "PairwiseDistance(p=3.0, eps=0.1)(a, b)"),
    ("a: [N, 16], b: [N, 1]", "PairwiseDistance(p=-1.5)(a, b)"),
    ("a: [N, 16], b: [N, 16]", "PairwiseDistance(p=0.0)(a, b)"),
    ("a: [N, 5], b: [N, 6]", "Bilinear(5, 6, 7)(a, b)"),
    ("a: [N, T, 5], b: [N, T, 6]", "Bilinear(5, 6, 3, bias=False)(a, b)"),
]


@pytest.mark.parametrize(("inputs", "call"), TWO_TENSORS)
def test_two_tensor_layers_export_and_verify(inputs, call):
    _, verified = export_and_verify(_spec(inputs, call))
    assert verified.reference == "torch" and len(verified.cases) == 2
    assert verified.max_diff <= verified.limit


def test_unbatched_bilinear_exports_and_verifies():
    _, verified = export_and_verify(_spec("a: [5], b: [6]", "Bilinear(5, 6, 3)(a, b)"))
    assert len(verified.cases) == 1 and verified.max_diff <= verified.limit


def test_two_tensor_layer_of_scalars_is_refused(tmp_path):
    import nndsl

    spec = _spec("a: [], b: []", "PairwiseDistance()(a, b)")
    assert nndsl.check_source(spec).ok
    with pytest.raises(nndsl.SpecError) as info:
        nndsl.export_onnx(spec, tmp_path / "m.onnx")
    assert [d.code for d in info.value.diagnostics] == ["E601"]
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("opset", [17, 23])
@pytest.mark.parametrize(
    ("inputs", "call"),
    [ATTENTION[7], RECURRENT[1], TWO_TENSORS[2], TWO_TENSORS[4], TWO_TENSORS[7], TWO_TENSORS[9]],
)
def test_exports_at_the_oldest_and_newest_opsets(inputs, call, opset):
    _, verified = export_and_verify(_spec(inputs, call), opset=opset)
    assert verified.max_diff <= verified.limit


def test_padded_encoder_stack_exports_and_verifies():
    """A BERT-shaped encoder: token embedding, two post-norm layers reading one padding mask."""
    spec = (
        "model Encoder(ids: long[N, S], pad: bool[N, S]) {\n"
        "    x = ids -> Embedding(50, 16)\n"
        "    x = TransformerEncoderLayer(16, 4, 32, batch_first=True, activation='gelu')(x, src_key_padding_mask=pad)\n"
        "    x = TransformerEncoderLayer(16, 4, 32, batch_first=True, activation='gelu')(x, src_key_padding_mask=pad)\n"
        "    return x -> Linear(16, 3)\n"
        "}\n"
    )
    _, verified = export_and_verify(spec)
    assert len(verified.cases) == 2 and verified.max_diff <= verified.limit


def test_a_bool_input_and_output_are_bool_in_the_graph(tmp_path):
    """A mask is declared bool in the ONNX file (held as float32 0 and 1 inside) and runs from
    the command's own export and verification."""
    import onnx

    import nndsl

    spec = (
        "model M(x: [N, L, 8], pad: bool[N, L]) {\n"
        "    y = MultiheadAttention(8, 2, batch_first=True)(x, x, x, key_padding_mask=pad)\n"
        "    return y, pad\n"
        "}\n"
    )
    nndsl.export_onnx(spec, tmp_path / "m.onnx")
    graph = onnx.load(tmp_path / "m.onnx").graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    assert types["pad"] == onnx.TensorProto.BOOL and types["x"] == onnx.TensorProto.FLOAT
    assert [types[v.name] for v in graph.output] == [onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL]
