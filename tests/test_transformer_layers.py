"""TransformerDecoderLayer called with the target and the memory: the checker's shapes, errors and
parameter counts against torch's own module, the emitted module's values on copied weights, and
the refusals (a chain without memory, ONNX export)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nndsl
from nndsl.api import check_source


def _spec(inputs: dict, body: str) -> str:
    declared = ", ".join(
        f"{name}: {'bool' if dtype == 'bool' else ''}[{', '.join(map(str, shape))}]"
        for name, (dtype, shape) in inputs.items()
    )
    return f"model M({declared}) {{\n    {body}\n    return y\n}}\n"


def _tensor(shape, dtype: str) -> torch.Tensor:
    if dtype == "bool":
        return torch.rand(shape) > 0.6
    return torch.randn(shape)


def _values(inputs: dict, call: str) -> dict:
    values = {name: _tensor(shape, dtype) for name, (dtype, shape) in inputs.items()}
    if "tgt_is_causal" in call:  # the hint must be true of the mask given
        size = inputs["t"][1][-2] if len(inputs["t"][1]) == 3 else inputs["t"][1][0]
        values["tm"] = nn.Transformer.generate_square_subsequent_mask(size)
    return values


# (constructor, inputs, call): each runs in torch and in the emitted module on copied weights
CASES = [
    (
        "TransformerDecoderLayer(16, 4, 32, batch_first=True)",
        {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16))},
        "t, m",
    ),
    ("TransformerDecoderLayer(16, 4, 32)", {"t": ("float32", (5, 2, 16)), "m": ("float32", (7, 2, 16))}, "t, m"),
    (
        "TransformerDecoderLayer(16, 2, 24, norm_first=True, activation='gelu')",
        {"t": ("float32", (5, 16)), "m": ("float32", (3, 16))},
        "t, memory=m",
    ),
    (
        "TransformerDecoderLayer(8, 2, 16, bias=False, batch_first=True)",
        {"t": ("float32", (2, 5, 8)), "m": ("float32", (2, 4, 8))},
        "t, m",
    ),
    (
        "TransformerDecoderLayer(16, 4, 32, batch_first=True)",
        {
            "t": ("float32", (2, 5, 16)),
            "m": ("float32", (2, 7, 16)),
            "tm": ("float32", (5, 5)),
            "pad": ("bool", (2, 7)),
        },
        "t, m, tgt_mask=tm, memory_key_padding_mask=pad, tgt_is_causal=True",
    ),
    (
        "TransformerDecoderLayer(16, 4, 32, batch_first=True, norm_first=True)",
        {
            "t": ("float32", (2, 5, 16)),
            "m": ("float32", (2, 7, 16)),
            "tm": ("bool", (8, 5, 5)),
            "mm": ("bool", (5, 7)),
            "tp": ("bool", (2, 5)),
        },
        "t, m, tm, mm, tp",
    ),
    (
        "TransformerDecoderLayer(8, 2, 16)",
        {"t": ("float32", (5, 8)), "m": ("float32", (3, 8)), "mm": ("float32", (2, 5, 3)), "mp": ("bool", (3,))},
        "t, m, memory_mask=mm, memory_key_padding_mask=mp",
    ),
]


@pytest.mark.parametrize("ctor, inputs, call", CASES)
def test_emitted_module_equals_torch(ctor, inputs, call):
    spec = _spec(inputs, f"y = {ctor}({call})")
    result = check_source(spec)
    assert result.ok, result.errors
    model = result.program.models[0]
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    reference = eval("nn." + ctor, {"nn": nn}).eval()  # noqa: S307 - the constructor of the spec
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    values = _values(inputs, call)
    if "mp" in values:
        values["mp"][0] = False  # a fully padded memory gives NaN in torch's two paths alike, not a test
    with torch.no_grad():
        got = built(*values.values())
        want = eval(f"reference({call})", {"reference": reference, **values})  # noqa: S307
    assert list(got.shape) == [int(str(d)) for d in model.output.shape.dims]
    torch.testing.assert_close(got, want, equal_nan=True)


def _torch_raises(ctor: str, values: dict, call: str) -> bool:
    module = eval("nn." + ctor, {"nn": nn})  # noqa: S307
    try:
        eval(f"module({call})", {"module": module, **values})  # noqa: S307
    except (RuntimeError, AssertionError, ValueError):
        return True
    return False


# (target, memory, tgt mask, memory mask, tgt padding, memory padding), batch_first
SHAPES = [
    ((2, 5, 16), (2, 7, 16), None, None, None, None),
    ((2, 5, 16), (7, 16), None, None, None, None),
    ((5, 16), (2, 7, 16), None, None, None, None),
    ((5, 16), (7, 16), None, None, None, None),
    ((2, 5, 16), (3, 7, 16), None, None, None, None),
    ((2, 5, 16), (2, 7, 8), None, None, None, None),
    ((2, 5, 16), (2, 0, 16), None, None, None, None),
    ((2, 0, 16), (2, 7, 16), None, None, None, None),
    ((2, 5, 16), (2, 7, 16), (5, 5), (5, 7), (2, 5), (2, 7)),
    ((2, 5, 16), (2, 7, 16), (5, 7), None, None, None),
    ((2, 5, 16), (2, 7, 16), None, (7, 5), None, None),
    ((2, 5, 16), (2, 7, 16), None, (5, 5), None, None),
    ((2, 5, 16), (2, 7, 16), (8, 5, 5), (8, 5, 7), None, None),
    ((2, 5, 16), (2, 7, 16), (4, 5, 5), None, None, None),
    ((2, 5, 16), (2, 7, 16), None, (2, 5, 7), None, None),
    ((2, 5, 16), (2, 7, 16), None, None, (2, 7), None),
    ((2, 5, 16), (2, 7, 16), None, None, None, (2, 5)),
    ((2, 5, 16), (2, 7, 16), None, None, None, (7,)),
    ((5, 16), (7, 16), (4, 5, 5), (4, 5, 7), (5,), (7,)),
    ((5, 16), (7, 16), None, (8, 5, 7), None, None),
    ((5, 16), (7, 16), None, None, None, (1, 7)),
]


@pytest.mark.parametrize("tgt, memory, tm, mm, tp, mp", SHAPES)
@pytest.mark.parametrize("dtype", ["bool", "float32"])
def test_shapes_agree_with_torch(tgt, memory, tm, mm, tp, mp, dtype):
    ctor = "TransformerDecoderLayer(16, 4, 32, batch_first=True)"
    inputs = {"t": ("float32", tgt), "m": ("float32", memory)}
    call = "t, m"
    for name, keyword, shape in (
        ("tm", "tgt_mask", tm),
        ("mm", "memory_mask", mm),
        ("tp", "tgt_key_padding_mask", tp),
        ("mp", "memory_key_padding_mask", mp),
    ):
        if shape is not None:
            inputs[name] = (dtype, shape)
            call += f", {keyword}={name}"
    spec = _spec(inputs, f"y = {ctor}({call})")
    result = check_source(spec)
    values = {name: _tensor(shape, t) for name, (t, shape) in inputs.items()}
    assert result.ok != _torch_raises(ctor, values, call), result.errors
    if result.ok:
        model = eval("nn." + ctor, {"nn": nn}).eval()  # noqa: S307
        with torch.no_grad():
            out = eval(f"model({call})", {"model": model, **values})  # noqa: S307
        assert list(out.shape) == [int(str(d)) for d in result.program.models[0].output.shape.dims]


@pytest.mark.parametrize(
    "inputs, call, code, at",
    [
        (
            {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16))},
            "t, m, tgt_is_causal=True",
            "E207",
            "tgt_is_causal=True",
        ),
        (
            {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16))},
            "t, m, memory_is_causal=True",
            "E207",
            "memory_is_causal=True",
        ),
        (
            {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16)), "mp": ("bool", (2, 5))},
            "t, m, memory_key_padding_mask=mp",
            "E201",
            "memory_key_padding_mask=mp",
        ),
        ({"t": ("float32", (2, 5, 16)), "m": ("float32", (7, 16))}, "t, memory=m", "E202", "memory=m"),
        ({"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16))}, "t, m, src_mask=m", "E216", "src_mask"),
        ({"t": ("float32", (2, 5, 16))}, "t", "E216", None),
    ],
)
def test_errors_are_positioned(inputs, call, code, at):
    spec = _spec(inputs, f"y = TransformerDecoderLayer(16, 4, 32, batch_first=True)({call})")
    errors = check_source(spec).errors
    assert [d.code for d in errors] == [code]
    if at is not None:
        assert spec[errors[0].span.start : errors[0].span.end] == at


def test_causal_without_mask_raises_in_torch_training():
    layer = nn.TransformerDecoderLayer(16, 4, 32, batch_first=True)
    for flag in ("tgt_is_causal", "memory_is_causal"):
        with pytest.raises(RuntimeError, match="Need attn_mask"):
            layer(torch.randn(2, 5, 16), torch.randn(2, 7, 16), **{flag: True})


def test_integer_and_double_inputs_are_refused_as_torch_refuses_them():
    cases = [
        (
            {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16)), "tm": ("long", (5, 5))},
            "t, m, tgt_mask=tm",
            "E204",
        ),
    ]
    for inputs, call, code in cases:
        spec = _spec(inputs, f"y = TransformerDecoderLayer(16, 4, 32, batch_first=True)({call})").replace(
            "[5, 5]", "long[5, 5]"
        )
        assert [d.code for d in check_source(spec).errors] == [code]
    spec = "model M(t: [2, 5, 16], m: double[2, 7, 16]) {\n    y = TransformerDecoderLayer(16, 4, 32, batch_first=True)(t, m)\n    return y\n}\n"
    assert [d.code for d in check_source(spec).errors] == ["E204"]
    layer = nn.TransformerDecoderLayer(16, 4, 32, batch_first=True)
    with pytest.raises(RuntimeError):
        layer(torch.randn(2, 5, 16), torch.randn(2, 7, 16, dtype=torch.float64))
    with pytest.raises(AssertionError, match="only bool and floating"):
        layer(torch.randn(2, 5, 16), torch.randn(2, 7, 16), tgt_mask=torch.zeros(5, 5).long())


def test_a_chain_is_refused_for_want_of_memory():
    spec = "model M(x: [N, T, 16]) {\n    y = x -> TransformerDecoderLayer(16, 4)\n    return y\n}\n"
    (error,) = check_source(spec).errors
    assert error.code == "E216" and "memory" in error.message
    assert "(tgt, memory)" in error.help


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("d_model, nhead, ff", [(16, 4, 32), (512, 8, 2048), (12, 3, 7)])
def test_param_count_equals_torch(d_model, nhead, ff, bias):
    spec = _spec(
        {"t": ("float32", (5, 2, d_model)), "m": ("float32", (7, 2, d_model))},
        f"y = TransformerDecoderLayer({d_model}, {nhead}, {ff}, bias={bias})(t, m)",
    )
    result = check_source(spec)
    assert result.ok, result.errors
    reference = nn.TransformerDecoderLayer(d_model, nhead, ff, bias=bias)
    assert result.program.models[0].param_count == sum(p.numel() for p in reference.parameters())


def test_emitted_call_is_torchs():
    inputs = {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16)), "causal": ("bool", (5, 5))}
    spec = _spec(
        inputs, "y = TransformerDecoderLayer(16, 4, batch_first=True)(t, m, tgt_mask=causal, tgt_is_causal=True)"
    )
    compact = "".join(nndsl.compile_spec(spec).split()).replace(",)", ")")  # the layout aside
    assert "=nn.TransformerDecoderLayer(16,4,batch_first=True)" in compact
    assert "y=self.transformer_decoder_layer(t,m,tgt_mask=causal,tgt_is_causal=True)" in compact


def test_named_layer_is_one_module():
    spec = (
        "model M(t: [2, 5, 16], m: [2, 7, 16]) {\n"
        "    dec = TransformerDecoderLayer(16, 4, 32, batch_first=True)\n"
        "    y = dec(dec(t, m), m)\n"
        "    return y\n"
        "}\n"
    )
    result = check_source(spec)
    assert result.ok, result.errors
    assert result.program.models[0].param_count == sum(
        p.numel() for p in nn.TransformerDecoderLayer(16, 4, 32).parameters()
    )


def test_onnx_export_with_the_memory_verifies():
    from onnx_support import export_and_verify

    spec = _spec(
        {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16))},
        "y = TransformerDecoderLayer(16, 4, 32, batch_first=True)(t, m)",
    )
    _, verified = export_and_verify(spec)
    assert verified.reference == "torch" and verified.max_diff <= verified.limit


def test_d_model_is_inferred_from_the_target():
    inputs = {"t": ("float32", (2, 5, 12)), "m": ("float32", (2, 7, 12))}
    spec = _spec(inputs, "y = TransformerDecoderLayer(nhead=3, dim_feedforward=8, batch_first=True)(t, m)")
    result = check_source(spec)
    assert result.ok, result.errors
    reference = nn.TransformerDecoderLayer(12, 3, 8, batch_first=True)
    assert result.program.models[0].param_count == sum(p.numel() for p in reference.parameters())
    built = nndsl.build(spec).eval()
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    t, m = torch.randn(2, 5, 12), torch.randn(2, 7, 12)
    with torch.no_grad():
        torch.testing.assert_close(built(t, m), reference.eval()(t, m))


# ---------------------------------------------------------------- stacks: TransformerEncoder, TransformerDecoder

STACKS = [
    (
        "TransformerEncoder(TransformerEncoderLayer(16, 4, 32, batch_first=True), 3)",
        {"x": ("float32", (2, 5, 16))},
        "x",
    ),
    (
        "TransformerEncoder(TransformerEncoderLayer(16, 4, 32, norm_first=True), 2, norm=LayerNorm(16))",
        {"x": ("float32", (5, 2, 16)), "m": ("float32", (5, 5))},
        "x, mask=m",
    ),
    # the nested-tensor fast path of eval mode: padded positions come out as zeros, in both
    (
        "TransformerEncoder(TransformerEncoderLayer(16, 4, 32, batch_first=True), 2)",
        {"x": ("float32", (2, 5, 16)), "pad": ("bool", (2, 5))},
        "x, src_key_padding_mask=pad",
    ),
    (
        "TransformerEncoder(TransformerEncoderLayer(16, 4, 32, batch_first=True), 2, enable_nested_tensor=False)",
        {"x": ("float32", (2, 5, 16)), "pad": ("bool", (2, 5))},
        "x, src_key_padding_mask=pad",
    ),
    (
        "TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2)",
        {"x": ("float32", (5, 8)), "m": ("bool", (5, 5))},
        "x, m, is_causal=True",
    ),
    (
        "TransformerDecoder(TransformerDecoderLayer(16, 4, 32, batch_first=True), 2, norm=LayerNorm(16))",
        {"t": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16)), "tm": ("float32", (5, 5)), "mp": ("bool", (2, 7))},
        "t, m, tgt_mask=tm, memory_key_padding_mask=mp",
    ),
    (
        "TransformerDecoder(TransformerDecoderLayer(8, 2, 16), 3)",
        {"t": ("float32", (5, 2, 8)), "m": ("float32", (7, 2, 8)), "tm": ("bool", (5, 5))},
        "t, m, tgt_mask=tm, tgt_is_causal=True",
    ),
]


def _stack_values(inputs: dict, call: str) -> dict:
    values = {name: _tensor(shape, dtype) for name, (dtype, shape) in inputs.items()}
    if "pad" in values:  # left-aligned padding, the nested path's case: the last positions padded
        values["pad"] = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    if "mp" in values:
        values["mp"][:, 0] = False  # a fully padded memory row is NaN, not a test
    if "is_causal=True" in call or "tgt_is_causal=True" in call:
        name = "m" if "is_causal=True" in call and "tgt_" not in call else "tm"
        values[name] = nn.Transformer.generate_square_subsequent_mask(5).bool()
    return values


@pytest.mark.parametrize("ctor, inputs, call", STACKS)
def test_stack_equals_torch(ctor, inputs, call):
    spec = _spec(inputs, f"y = {ctor}({call})")
    result = check_source(spec)
    assert result.ok, result.errors
    model = result.program.models[0]
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    reference = eval(
        "nn." + ctor.replace("(Transformer", "(nn.Transformer").replace("=LayerNorm", "=nn.LayerNorm"), {"nn": nn}
    )  # noqa: S307
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    reference.eval()
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    values = _stack_values(inputs, call)
    with torch.no_grad():
        got = built(*values.values())
        want = eval(f"reference({call})", {"reference": reference, **values})  # noqa: S307
    assert list(got.shape) == [int(str(d)) for d in model.output.shape.dims]
    torch.testing.assert_close(got, want, equal_nan=True)
    if "pad" in values and "enable_nested_tensor=False" not in ctor:
        assert (got[1, 3:] == 0).all()  # torch's nested fast path, documented


def test_stack_of_a_named_layer_emits_torchs_constructor():
    spec = (
        "model M(x: [N, S, 16], pad: bool[N, S]) {\n"
        "    layer = TransformerEncoderLayer(16, 4, 32, batch_first=True)\n"
        "    y = TransformerEncoder(layer, 6, norm=LayerNorm(16))(x, src_key_padding_mask=pad)\n"
        "    return y\n"
        "}\n"
    )
    result = check_source(spec)
    assert result.ok, result.errors
    reference = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32), 6, norm=nn.LayerNorm(16))
    assert result.program.models[0].param_count == sum(p.numel() for p in reference.parameters())
    compact = "".join(nndsl.compile_spec(spec).split()).replace(",)", ")")
    assert (
        "nn.TransformerEncoder(nn.TransformerEncoderLayer(16,4,32,batch_first=True),6,norm=nn.LayerNorm(16))" in compact
    )
    assert "self.transformer_encoder(x,src_key_padding_mask=pad)" in compact


@pytest.mark.parametrize(
    "body, code, at",
    [
        ("y = x -> TransformerEncoder(Linear(16, 16), 2)", "E106", "Linear(16, 16)"),
        (
            "y = x -> TransformerEncoder(TransformerEncoderLayer(nhead=4), 2)",
            "E107",
            "TransformerEncoderLayer(nhead=4)",
        ),
        ("y = x -> TransformerEncoder(TransformerEncoderLayer(16, 4), 0)", "E107", "0"),
        ("y = x -> TransformerEncoder(TransformerEncoderLayer(16, 4), 2, norm=ReLU())", "E106", "ReLU()"),
        ("y = x -> TransformerEncoder(TransformerEncoderLayer(8, 4), 2)", "E201", None),
        ("y = TransformerEncoder(TransformerEncoderLayer(16, 4), 2)(x, is_causal=True)", "E207", "is_causal=True"),
        ("y = TransformerEncoder(TransformerEncoderLayer(16, 4), 2)(x, src_mask=x)", "E216", "src_mask"),
        ("y = x -> TransformerDecoder(TransformerDecoderLayer(16, 4), 2)", "E216", None),
        ("y = TransformerDecoder(TransformerDecoderLayer(16, 4), 2)(x, x, memory_is_causal=True)", "E207", None),
    ],
)
def test_stack_errors_are_positioned(body, code, at):
    spec = _spec({"x": ("float32", (5, 2, 16))}, body)
    errors = check_source(spec).errors
    assert [d.code for d in errors] == [code]
    if at is not None:
        assert spec[errors[0].span.start : errors[0].span.end] == at


def test_stack_torch_refusals_match():
    """The refusals above are torch's: no layers, a causal hint without its mask (training mode)."""
    with pytest.raises(IndexError):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4), 0)(torch.randn(5, 2, 16))
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4), 2)(torch.randn(5, 2, 16), is_causal=True)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 4), 2)
        decoder(torch.randn(5, 2, 16), torch.randn(5, 2, 16), memory_is_causal=True)


def test_unmasked_encoder_stack_exports_to_onnx():
    from onnx_support import export_and_verify

    spec = _spec(
        {"x": ("float32", (2, 5, 16))},
        "y = x -> TransformerEncoder(TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=True), 3, "
        "norm=LayerNorm(16))",
    )
    _, verified = export_and_verify(spec)
    assert verified.reference == "torch" and verified.max_diff <= 1e-5


@pytest.mark.parametrize(
    "inputs, body",
    [
        (
            {"x": ("float32", (5, 2, 16)), "pad": ("bool", (2, 5))},
            "y = TransformerEncoder(TransformerEncoderLayer(16, 4, 32), 2)(x, src_key_padding_mask=pad)",
        ),
        (
            {"x": ("float32", (5, 2, 16)), "m": ("float32", (7, 2, 16))},
            "y = TransformerDecoder(TransformerDecoderLayer(16, 4, 32), 2)(x, m)",
        ),
    ],
)
def test_masked_and_decoder_stacks_export_to_onnx(inputs, body):
    from onnx_support import export_and_verify

    _, verified = export_and_verify(_spec(inputs, body))
    assert verified.reference == "torch" and verified.max_diff <= verified.limit


# (input, mask, src_key_padding_mask) for a batch_first encoder stack
ENCODER_SHAPES = [
    ((2, 5, 16), None, None),
    ((2, 5, 16), (5, 5), (2, 5)),
    ((2, 5, 16), (8, 5, 5), None),
    ((2, 5, 16), (4, 5, 5), None),
    ((2, 5, 16), (5, 4), None),
    ((2, 5, 16), None, (2, 4)),
    ((2, 5, 16), None, (5,)),
    ((5, 16), (5, 5), (5,)),
    ((5, 16), (4, 5, 5), None),
    ((5, 16), None, (1, 5)),
    ((2, 5, 12), None, None),
    ((2, 0, 16), None, None),
]


@pytest.mark.parametrize("x, mask, pad", ENCODER_SHAPES)
def test_encoder_stack_shapes_agree_with_torch(x, mask, pad):
    ctor = "TransformerEncoder(TransformerEncoderLayer(16, 4, 32, batch_first=True), 2)"
    inputs, call = {"x": ("float32", x)}, "x"
    if mask is not None:
        inputs["m"] = ("float32", mask)
        call += ", mask=m"
    if pad is not None:
        inputs["pad"] = ("float32", pad)
        call += ", src_key_padding_mask=pad"
    result = check_source(_spec(inputs, f"y = {ctor}({call})"))
    values = {name: _tensor(shape, dtype) for name, (dtype, shape) in inputs.items()}
    torch_ctor = ctor.replace("(TransformerEncoderLayer", "(nn.TransformerEncoderLayer")
    assert result.ok != _torch_raises(torch_ctor, values, call), result.errors


def test_stack_of_another_dtype_is_refused():
    spec = "model M(x: double[5, 2, 16]) {\n    y = x -> TransformerEncoder(TransformerEncoderLayer(16, 4, 32), 2)\n    return y\n}\n"
    assert [d.code for d in check_source(spec).errors] == ["E204"]
