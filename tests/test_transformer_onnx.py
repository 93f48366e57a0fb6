"""ONNX exports of the transformer decoder layer, the TransformerDecoder stack and the masked
TransformerEncoder stack, compared with torch: with onnx_verify's random inputs, and with chosen
masks where torch's eval fast paths read them their own way (a float mask's non-zero entries as
"not attended", the encoder stack's nested tensor of left-aligned padded rows)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_support import export_and_verify, run_both, varied

import nndsl
from nndsl.backends.onnx_verify import TOLERANCE, random_inputs


def _spec(inputs: str, body: str) -> str:
    return f"model M({inputs}) {{\n    y = {body}\n    return y\n}}\n"


DEC = "TransformerDecoderLayer"
DECODER_LAYER = [
    ("t: [N, T, 8], m: [N, S, 8]", f"{DEC}(8, 2, 16, batch_first=True)(t, m)"),
    (
        "t: [T, N, 8], m: [S, N, 8], tm: [T, T], mp: bool[N, S]",
        f"{DEC}(8, 2, 16)(t, m, tgt_mask=tm, memory_key_padding_mask=mp)",
    ),
    (
        "t: [N, T, 8], m: [N, S, 8], tp: bool[N, T], mm: bool[T, S]",
        f"{DEC}(8, 2, 16, batch_first=True, norm_first=True, activation='gelu')"
        "(t, m, tgt_key_padding_mask=tp, memory_mask=mm)",
    ),
    # 3-D (per head) masks, bool and float
    (
        "t: [N, T, 8], m: [N, S, 8], tm: bool[N * 4, T, T], mm: [N * 4, T, S]",
        f"{DEC}(8, 4, 16, batch_first=True)(t, m, tgt_mask=tm, memory_mask=mm)",
    ),
    # every mask at once, float masks and bool padding
    (
        "t: [T, N, 8], m: [S, N, 8], tm: [T, T], mm: [T, S], tp: bool[N, T], mp: bool[N, S]",
        f"{DEC}(8, 2, 16, norm_first=True)(t, m, tgt_mask=tm, memory_mask=mm, tgt_key_padding_mask=tp, "
        "memory_key_padding_mask=mp)",
    ),
    (
        "t: [N, T, 8], m: [N, S, 8], tp: [N, T], mp: [N, S]",
        f"{DEC}(8, 2, 16, batch_first=True, bias=False, layer_norm_eps=0.01)"
        "(t, m, tgt_key_padding_mask=tp, memory_key_padding_mask=mp)",
    ),
    # unbatched: [S] padding, [heads, T, S] masks
    (
        "t: [T, 8], m: [S, 8], tm: bool[T, T], mm: [2, T, S], mp: bool[S]",
        f"{DEC}(8, 2, 16, activation='gelu')(t, m, tgt_mask=tm, memory_mask=mm, memory_key_padding_mask=mp)",
    ),
]

DECODER_STACK = [
    ("t: [T, N, 8], m: [S, N, 8]", "TransformerDecoder(TransformerDecoderLayer(8, 2, 16), 2)(t, m)"),
    (
        "t: [N, T, 8], m: [N, S, 8], tm: bool[T, T], tp: bool[N, T], mp: bool[N, S]",
        "TransformerDecoder(TransformerDecoderLayer(8, 2, 16, batch_first=True), 2, norm=LayerNorm(8))"
        "(t, m, tgt_mask=tm, tgt_key_padding_mask=tp, memory_key_padding_mask=mp)",
    ),
    (
        "t: [T, N, 8], m: [S, N, 8], tm: [N * 2, T, T], mm: [T, S]",
        "TransformerDecoder(TransformerDecoderLayer(8, 2, 16, norm_first=True, activation='gelu'), 3, "
        "norm=LayerNorm(8))(t, m, tgt_mask=tm, memory_mask=mm)",
    ),
]

ENC = "TransformerEncoderLayer"
ENCODER_STACK = [
    # batch_first=False: no fast path, the masks are added
    (
        "x: [S, N, 8], m: [S, S], pad: [N, S]",
        f"TransformerEncoder({ENC}(8, 2, 16), 2)(x, mask=m, src_key_padding_mask=pad)",
    ),
    ("x: [S, N, 8], m: [N * 2, S, S]", f"TransformerEncoder({ENC}(8, 2, 16, activation='gelu'), 2)(x, mask=m)"),
    # the layers' fast path with bool masks; random padding is not left-aligned: no nested tensor
    (
        "x: [N, S, 8], pad: bool[N, S]",
        f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True), 2, norm=LayerNorm(8))(x, src_key_padding_mask=pad)",
    ),
    (
        "x: [N, S, 8], m: bool[S, S], pad: bool[N, S]",
        f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True), 2)(x, mask=m, src_key_padding_mask=pad)",
    ),
    (
        "x: [N, S, 8], m: bool[N * 2, S, S]",
        f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True, norm_first=True), 2)(x, mask=m)",
    ),
    # without mask_check torch packs the first count(kept) positions whatever the mask's layout
    (
        "x: [N, S, 8], pad: bool[N, S]",
        f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True), 2, mask_check=False)(x, src_key_padding_mask=pad)",
    ),
    (
        "x: [N, S, 8], pad: bool[N, S]",
        f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True, norm_first=True), 2, mask_check=False)"
        "(x, src_key_padding_mask=pad)",
    ),
    (
        "x: [S, 8], m: [S, S], pad: bool[S]",
        f"TransformerEncoder({ENC}(8, 2, 16), 2)(x, mask=m, src_key_padding_mask=pad)",
    ),
]


@pytest.mark.parametrize(("inputs", "call"), DECODER_LAYER + DECODER_STACK + ENCODER_STACK)
def test_exports_and_verifies_against_torch(inputs, call):
    _, verified = export_and_verify(_spec(inputs, call))
    assert verified.reference == "torch" and len(verified.cases) == 2
    assert verified.max_diff <= verified.limit


def _compare(inputs: str, call: str, feeds: dict, sizes: dict, spec: str | None = None, opset: int = 0) -> np.ndarray:
    """Export ``call`` (or ``spec``) with varied fresh weights, run it in onnxruntime and the torch
    module on ``feeds`` (random inputs where not given), assert that they agree; returns torch's
    output."""

    from nndsl.backends.onnx_export import export_model
    from nndsl.backends.torch_build import fresh_weights

    result = nndsl.check_source(spec or _spec(inputs, call), "<test>")
    assert result.ok, result.errors
    program, model = result.program, result.program.models[0]
    weights = varied(fresh_weights(program, model, 0))
    exported = export_model(program, model, weights, **({"opset": opset} if opset else {}))
    feeds = {**random_inputs(model, sizes, seed=3), **feeds}
    got, want = run_both(program, model, weights, exported, feeds)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * max(1.0, float(np.abs(want).max())))
    return want


# left-aligned padding: kept positions first (False), then padded ones (True)
ALIGNED = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1]], bool)
RAGGED = np.array([[0, 1, 0, 1, 0, 0], [0, 0, 1, 0, 0, 1], [0, 1, 1, 1, 1, 0]], bool)


def _sparse_float(shape, seed: int = 1) -> np.ndarray:
    """A float mask of zeros and a few other values (never in the first column): torch's fast path
    and its slow path read it differently."""
    rng = np.random.default_rng(seed)
    mask = (rng.standard_normal(shape) * (rng.random(shape) > 0.6)).astype(np.float32)
    mask[..., 0] = 0
    return mask


STACK = f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True), 2, norm=LayerNorm(8))"


@pytest.mark.parametrize("mask_check", [True, False])
@pytest.mark.parametrize("pad", [ALIGNED, RAGGED])
def test_encoder_stack_follows_torchs_nested_tensor_path(mask_check, pad):
    """torch packs the kept positions into a nested tensor (mask_check: only a left-aligned mask)
    and pads the layers' result with zeros, which the norm then sees."""
    call = STACK.replace("norm=", f"mask_check={mask_check}, norm=") + "(x, src_key_padding_mask=pad)"
    want = _compare("x: [N, S, 8], pad: bool[N, S]", call, {"pad": pad}, {"N": 3, "S": 6})
    if mask_check and pad is ALIGNED:  # the padded positions all hold the norm of zeros
        padded = want[pad]
        assert np.allclose(padded, padded[0], atol=1e-6)


@pytest.mark.parametrize(
    ("pad", "nested"),
    [(np.where(ALIGNED, -2.5, 0).astype(np.float32), True), (_sparse_float((3, 6)), False)],
)
def test_encoder_stack_reads_a_float_padding_mask_as_torch_does(pad, nested):
    """A float padding mask keeps its zeros only: a nested tensor where they form prefixes, else
    each layer's fast path reads the non-zero entries as padded (not as added scores)."""
    _compare("x: [N, S, 8], pad: [N, S]", STACK + "(x, src_key_padding_mask=pad)", {"pad": pad}, {"N": 3, "S": 6})


PAD, MASK, BOTH = "x: [N, S, 8], pad: [N, S]", "x: [N, S, 8], m: [S, S]", "x: [N, S, 8], m: [S, S], pad: [N, S]"
FLOAT_MASKED = [
    # the layer's fast path: non-zero entries are not attended
    (PAD, f"{ENC}(8, 2, 16, batch_first=True)(x, src_key_padding_mask=pad)"),
    (BOTH, f"{ENC}(8, 2, 16, batch_first=True, norm_first=True)(x, src_mask=m, src_key_padding_mask=pad)"),
    (MASK, f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True), 2)(x, mask=m)"),
    (BOTH, f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True), 2)(x, mask=m, src_key_padding_mask=pad)"),
    # no fast path (an odd number of heads, no biases): the entries are added to the scores
    (PAD, f"TransformerEncoder({ENC}(8, 1, 16, batch_first=True), 2)(x, src_key_padding_mask=pad)"),
    (MASK, f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True, bias=False), 2)(x, mask=m)"),
]


@pytest.mark.parametrize(("inputs", "call"), FLOAT_MASKED)
def test_float_masks_are_read_as_torchs_encoder_fast_path_reads_them(inputs, call):
    feeds = {"m": _sparse_float((6, 6), 2), "pad": _sparse_float((3, 6), 3)}
    given = {name: feeds[name] for name in ("m", "pad") if f" {name}: " in " " + inputs}
    _compare(inputs, call, given, {"N": 3, "S": 6})


@pytest.mark.parametrize("opset", [17, 23])
def test_masked_stacks_export_at_every_opset(opset):
    """The graphs use no operator of a later opset: the nested-tensor condition (ReduceMin of
    opset 17 takes its axes as an attribute), the decoder's two attentions."""
    call = STACK + "(x, src_key_padding_mask=pad)"
    _compare("x: [N, S, 8], pad: bool[N, S]", call, {"pad": ALIGNED}, {"N": 3, "S": 6}, opset=opset)
    _compare("x: [N, S, 8], pad: bool[N, S]", call, {"pad": RAGGED}, {"N": 3, "S": 6}, opset=opset)
    inputs, call = DECODER_STACK[1]
    _, verified = export_and_verify(_spec(inputs, call), opset=opset)
    assert verified.max_diff <= verified.limit


CAUSAL = [
    (
        "t: [N, T, 8], m: [N, S, 8], causal: bool[T, T]",
        f"{DEC}(8, 2, 16, batch_first=True)(t, m, tgt_mask=causal, tgt_is_causal=True)",
    ),
    (
        "t: [T, N, 8], m: [S, N, 8], causal: [T, T], mp: bool[N, S]",
        "TransformerDecoder(TransformerDecoderLayer(8, 2, 16, norm_first=True), 2)"
        "(t, m, tgt_mask=causal, memory_key_padding_mask=mp)",  # tgt_is_causal=None: torch detects it
    ),
    (
        "t: [N, T, 8], m: [N, S, 8], causal: bool[T, T], tp: bool[N, T]",
        "TransformerDecoder(TransformerDecoderLayer(8, 2, 16, batch_first=True), 2, norm=LayerNorm(8))"
        "(t, m, tgt_mask=causal, tgt_key_padding_mask=tp, tgt_is_causal=True)",
    ),
    (
        "t: [N, T, 8], causal: [T, T]",
        f"TransformerEncoder({ENC}(8, 2, 16, batch_first=True), 2)(t, mask=causal, is_causal=True)",
    ),
    ("t: [T, N, 8], causal: bool[T, T]", f"TransformerEncoder({ENC}(8, 2, 16, norm_first=True), 2)(t, mask=causal)"),
]


@pytest.mark.parametrize(("inputs", "call"), CAUSAL)
@pytest.mark.parametrize("length", [5, 9])
def test_causal_target_masks_match_torch(inputs, call, length):
    """is_causal / tgt_is_causal are torch's hints that the mask given is causal (and torch detects a
    causal mask where the hint is None): with a causal mask, the export agrees with every path."""
    upper = np.triu(np.ones((length, length), bool), 1)
    causal = upper if "bool[T, T]" in inputs else np.where(upper, -np.inf, 0).astype(np.float32)
    _compare(inputs, call, {"causal": causal}, {"N": 2, "T": length, "S": 4})


def test_zoo_seq2seq_with_left_aligned_padding_matches_torch():
    """The zoo's encoder-decoder end to end, with source padding at the end of rows (torch's
    encoder then runs on a nested tensor; its decoder skips the padded positions)."""
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[1] / "specs" / "zoo" / "transformer_seq2seq.nn").read_text()
    rng = np.random.default_rng(5)
    source = rng.integers(1, 1000, (3, 7))
    source[0, 4:] = 0
    source[2, 1:] = 0
    target = rng.integers(1, 1000, (3, 5))
    _compare("", "", {"source": source, "target": target}, {"N": 3, "S": 7, "T": 5}, spec=spec)
