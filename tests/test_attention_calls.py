"""Layers called with several tensors (``MultiheadAttention(...)(q, k, v, key_padding_mask=pad)``):
the checker's shapes and errors against torch's, the emitted module's values against torch's own
modules on copied weights, the ONNX export's refusal where no mapping exists."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nndsl
from nndsl.api import check_source

DIMS = {"N": 2, "L": 5, "S": 7}


def _spec(inputs: str, body: str) -> str:
    return f"model M({inputs}) {{\n    {body}\n    return y\n}}\n"


def _errors(text: str) -> list:
    return [(d.code, d.span.start) for d in check_source(text).errors]


def _tensor(shape, dtype: str) -> torch.Tensor:
    if dtype == "bool":
        return torch.rand(shape) > 0.6
    return torch.randn(shape)


# (constructor, spec inputs, call arguments after the query, torch kwargs order) -- each runs in
# torch and in the emitted module on copied weights
CASES = [
    (
        "MultiheadAttention(16, 4, batch_first=True, kdim=8, vdim=6)",
        {"q": ("float32", (2, 5, 16)), "k": ("float32", (2, 7, 8)), "v": ("float32", (2, 7, 6))},
        "q, k, v",
    ),
    (
        "MultiheadAttention(16, 4, batch_first=True)",
        {"q": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16)), "pad": ("bool", (2, 7))},
        "q, m, m, key_padding_mask=pad",
    ),
    (
        "MultiheadAttention(16, 2)",
        {"q": ("float32", (5, 2, 16)), "m": ("float32", (7, 2, 16)), "am": ("float32", (5, 7))},
        "q, m, m, attn_mask=am",
    ),
    (
        "MultiheadAttention(16, 2, batch_first=True)",
        {"q": ("float32", (2, 5, 16)), "m": ("float32", (2, 7, 16)), "am": ("bool", (4, 5, 7))},
        "q, m, m, attn_mask=am",
    ),
    (
        "MultiheadAttention(8, 2)",
        {"q": ("float32", (5, 8)), "m": ("float32", (7, 8)), "pad": ("bool", (7,)), "am": ("bool", (5, 7))},
        "q, m, m, key_padding_mask=pad, attn_mask=am",
    ),
    (
        "MultiheadAttention(8, 2, batch_first=True)",
        {"q": ("float32", (2, 5, 8)), "am": ("bool", (5, 5))},
        "q, q, q, attn_mask=am, is_causal=True",
    ),
]


def _declared(inputs: dict) -> str:
    parts = []
    for name, (dtype, shape) in inputs.items():
        prefix = "bool" if dtype == "bool" else ""
        parts.append(f"{name}: {prefix}[{', '.join(map(str, shape))}]")
    return ", ".join(parts)


@pytest.mark.parametrize("ctor, inputs, call", CASES)
def test_emitted_module_equals_torch(ctor, inputs, call):
    spec = _spec(_declared(inputs), f"y = {ctor}({call})")
    result = check_source(spec)
    assert result.ok, result.errors
    model = result.program.models[0]
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    reference = eval("nn." + ctor, {"nn": nn}).eval()  # noqa: S307 - the constructor of the spec
    state = {k.split(".", 1)[1]: v for k, v in built.state_dict().items()}
    reference.load_state_dict(state)
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    values = {name: _tensor(shape, dtype) for name, (dtype, shape) in inputs.items()}
    if "am" in values and "is_causal" in call:
        values["am"] = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
    with torch.no_grad():
        got = built(*values.values())
        want = eval(  # noqa: S307 - the call of the spec, on the same tensors
            f"reference({call}, need_weights=False)[0]", {"reference": reference, **values}
        )
    assert list(got.shape) == [int(str(d)) for d in model.output.shape.dims]
    torch.testing.assert_close(got, want, equal_nan=True)


def _torch_raises(ctor: str, values: dict, call: str) -> bool:
    module = eval("nn." + ctor, {"nn": nn})  # noqa: S307
    try:
        eval(f"module({call})", {"module": module, **values})  # noqa: S307
    except (RuntimeError, AssertionError, ValueError):
        return True
    return False


# shapes the checker and torch judge alike: (query, key/value, key_padding_mask, attn_mask)
MASKS = [
    ((2, 5, 16), (2, 7, 16), (2, 7), None),
    ((2, 5, 16), (2, 7, 16), (2, 6), None),
    ((2, 5, 16), (2, 7, 16), (7,), None),
    ((5, 16), (7, 16), (7,), None),
    ((5, 16), (7, 16), (1, 7), None),
    ((2, 5, 16), (2, 7, 16), None, (5, 7)),
    ((2, 5, 16), (2, 7, 16), None, (7, 5)),
    ((2, 5, 16), (2, 7, 16), None, (8, 5, 7)),
    ((2, 5, 16), (2, 7, 16), None, (4, 5, 7)),
    ((5, 16), (7, 16), None, (4, 5, 7)),
    ((5, 16), (7, 16), None, (5, 7)),
    ((2, 5, 16), (3, 7, 16), None, None),
    ((2, 5, 16), (7, 16), None, None),
]


@pytest.mark.parametrize("query, key, pad, mask", MASKS)
@pytest.mark.parametrize("dtype", ["bool", "float32"])
def test_mask_shapes_agree_with_torch(query, key, pad, mask, dtype):
    ctor = "MultiheadAttention(16, 4, batch_first=True)"
    inputs = {"q": ("float32", query), "m": ("float32", key)}
    call = "q, m, m"
    if pad is not None:
        inputs["pad"] = (dtype, pad)
        call += ", key_padding_mask=pad"
    if mask is not None:
        inputs["am"] = (dtype, mask)
        call += ", attn_mask=am"
    errors = _errors(_spec(_declared(inputs), f"y = {ctor}({call})"))
    values = {name: _tensor(shape, t) for name, (t, shape) in inputs.items()}
    assert bool(errors) == _torch_raises(ctor, values, call), errors


def test_integer_mask_is_refused_as_torch_does():
    spec = _spec(
        "q: [2, 5, 16], am: long[5, 5]", "y = MultiheadAttention(16, 4, batch_first=True)(q, q, q, attn_mask=am)"
    )
    assert [code for code, _ in _errors(spec)] == ["E204"]
    with pytest.raises(AssertionError, match="only bool and floating"):
        nn.MultiheadAttention(16, 4, batch_first=True)(*[torch.randn(2, 5, 16)] * 3, attn_mask=torch.zeros(5, 5).long())


def test_is_causal_needs_attn_mask_as_in_torch():
    spec = _spec("q: [2, 5, 16]", "y = MultiheadAttention(16, 4, batch_first=True)(q, q, q, is_causal=True)")
    errors = check_source(spec).errors
    assert [d.code for d in errors] == ["E207"]
    assert spec[errors[0].span.start : errors[0].span.end] == "is_causal=True"
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        nn.MultiheadAttention(16, 4, batch_first=True)(*[torch.randn(2, 5, 16)] * 3, is_causal=True)


@pytest.mark.parametrize(
    "call, code, at",
    [
        ("(q, q, q, key_padding_mask=pad)", "E201", "key_padding_mask=pad"),
        ("(q, q, q, key_mask=pad)", "E216", "key_mask"),
        ("(q, q, q, pad, pad, pad)", "E216", "pad"),
        ("(q, q, q, need_weights=3)", "E216", "need_weights=3"),
        ("(q, q)", "E216", None),
        ("(3)", "E114", "3"),
    ],
)
def test_call_errors_are_positioned(call, code, at):
    spec = _spec("q: [2, 5, 16], pad: bool[2, 6]", f"y = MultiheadAttention(16, 4, batch_first=True){call}")
    errors = check_source(spec).errors
    assert errors and errors[0].code == code
    if at is not None:
        assert spec[errors[0].span.start : errors[0].span.end] == at


def test_kdim_without_key_is_refused():
    spec = _spec("q: [2, 5, 16]", "y = MultiheadAttention(16, 4, kdim=8)(q)")
    assert [d.code for d in check_source(spec).errors] == ["E107"]


def test_named_layer_called_with_tensors():
    spec = (
        "model M(q: [2, 5, 16], m: [2, 7, 16]) {\n"
        "    attn = MultiheadAttention(16, 4, batch_first=True)\n"
        "    y = attn(q, m, m)\n"
        "    return y\n"
        "}\n"
    )
    result = check_source(spec)
    assert result.ok, result.errors
    (node,) = [n for n in result.program.models[0].graph.nodes if n.tag == "layer"]
    assert [name for name, _ in node.extra] == ["key", "value"]
    assert len(node.reads) == 3
    source = nndsl.compile_spec(spec)
    assert "(q, m, m, need_weights=False)" in source


def test_onnx_refuses_extra_inputs(tmp_path):
    spec = _spec("q: [2, 5, 16], m: [2, 7, 16]", "y = MultiheadAttention(16, 4, batch_first=True)(q, m, m)")
    with pytest.raises(nndsl.SpecError) as info:
        nndsl.export_onnx(spec, tmp_path / "m.onnx")
    assert [d.code for d in info.value.diagnostics] == ["E601"]
    assert not (tmp_path / "m.onnx").exists()


ENCODER_CASES = [
    ({"x": ("float32", (2, 5, 16)), "pad": ("bool", (2, 5))}, "x, src_key_padding_mask=pad"),
    ({"x": ("float32", (2, 5, 16)), "m": ("float32", (5, 5))}, "x, src_mask=m"),
    ({"x": ("float32", (2, 5, 16)), "m": ("bool", (8, 5, 5)), "pad": ("bool", (2, 5))}, "x, m, pad"),
    ({"x": ("float32", (2, 5, 16)), "m": ("bool", (5, 5))}, "x, src_mask=m, is_causal=True"),
]


@pytest.mark.parametrize("inputs, call", ENCODER_CASES)
def test_encoder_layer_masks_equal_torch(inputs, call):
    ctor = "TransformerEncoderLayer(16, 4, 32, batch_first=True)"
    spec = _spec(_declared(inputs), f"y = {ctor}({call})")
    result = check_source(spec)
    assert result.ok, result.errors
    built = nndsl.build(spec).eval()
    reference = eval("nn." + ctor, {"nn": nn}).eval()  # noqa: S307
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    values = {name: _tensor(shape, dtype) for name, (dtype, shape) in inputs.items()}
    if "is_causal" in call:
        values["m"] = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
    with torch.no_grad():
        got = built(*values.values())
        want = eval(f"reference({call})", {"reference": reference, **values})  # noqa: S307
    torch.testing.assert_close(got, want, equal_nan=True)


@pytest.mark.parametrize(
    "inputs, call",
    [
        ({"x": ("float32", (2, 5, 16)), "pad": ("bool", (2, 4))}, "x, src_key_padding_mask=pad"),
        ({"x": ("float32", (2, 5, 16))}, "x, is_causal=True"),
        ({"x": ("float32", (2, 5, 16)), "m": ("float32", (4, 5, 5))}, "x, src_mask=m"),
        ({"x": ("float32", (5, 16)), "m": ("float32", (4, 5, 5))}, "x, src_mask=m"),
        ({"x": ("float32", (5, 16)), "pad": ("bool", (5,))}, "x, src_key_padding_mask=pad"),
    ],
)
def test_encoder_layer_errors_agree_with_torch(inputs, call):
    ctor = "TransformerEncoderLayer(16, 4, 32, batch_first=True)"
    errors = _errors(_spec(_declared(inputs), f"y = {ctor}({call})"))
    values = {name: _tensor(shape, dtype) for name, (dtype, shape) in inputs.items()}
    assert bool(errors) == _torch_raises(ctor, values, call), errors


RECURRENT_CASES = [
    ("LSTM(8, 6, num_layers=2, batch_first=True)", (4, 5, 8), ((2, 4, 6), (2, 4, 6)), "output"),
    ("LSTM(8, 6, num_layers=2, batch_first=True, proj_size=3)", (4, 5, 8), ((2, 4, 3), (2, 4, 6)), "h_n"),
    ("LSTM(8, 6, bidirectional=True)", (5, 4, 8), ((2, 4, 6), (2, 4, 6)), "c_n"),
    ("LSTM(8, 6)", (5, 8), ((1, 6), (1, 6)), "last"),
    ("GRU(8, 6, batch_first=True, bidirectional=True)", (4, 5, 8), ((2, 4, 6),), "hidden"),
    ("RNN(8, 6, num_layers=3)", (5, 8), ((3, 6),), "output"),
]


def _state_spec(ctor, x, states, selector):
    names = ["h", "c"][: len(states)]
    declared = ", ".join(f"{n}: [{', '.join(map(str, s))}]" for n, s in zip(names, states))
    state = f"({', '.join(names)})" if len(states) == 2 else names[0]
    return _spec(f"x: [{', '.join(map(str, x))}], {declared}", f"y = {ctor}(x, {state}).{selector}")


@pytest.mark.parametrize("ctor, x, states, selector", RECURRENT_CASES)
def test_initial_state_equals_torch(ctor, x, states, selector):
    spec = _state_spec(ctor, x, states, selector)
    result = check_source(spec)
    assert result.ok, result.errors
    built = nndsl.build(spec).eval()
    reference = eval("nn." + ctor, {"nn": nn}).eval()  # noqa: S307
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    values = [torch.randn(x)] + [torch.randn(s) for s in states]
    with torch.no_grad():
        got = built(*values)
        hx = tuple(values[1:]) if len(states) == 2 else values[1]
        output, state = reference(values[0], hx)
    h_n, c_n = state if len(states) == 2 else (state, None)
    batch_first = "batch_first=True" in ctor
    want = {
        "output": lambda: output,
        "h_n": lambda: h_n,
        "c_n": lambda: c_n,
        "last": lambda: output[:, -1] if batch_first and len(x) == 3 else output[-1],
        "hidden": lambda: torch.cat((h_n[-2], h_n[-1]), -1),
    }[selector]()
    assert list(got.shape) == [int(str(d)) for d in result.program.models[0].output.shape.dims]
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    "ctor, x, states",
    [
        ("LSTM(8, 6, num_layers=2, batch_first=True, proj_size=3)", (4, 5, 8), ((2, 4, 6), (2, 4, 6))),
        ("LSTM(8, 6, num_layers=2, batch_first=True, proj_size=3)", (4, 5, 8), ((2, 4, 3), (2, 4, 3))),
        ("LSTM(8, 6, batch_first=True)", (4, 5, 8), ((1, 5, 6), (1, 4, 6))),
        ("LSTM(8, 6)", (5, 4, 8), ((4, 6), (4, 6))),
        ("GRU(8, 6, bidirectional=True)", (5, 4, 8), ((1, 4, 6),)),
        ("GRU(8, 6)", (5, 8), ((1, 6),)),
        ("GRU(8, 6)", (5, 8), ((1, 1, 6),)),
        ("RNN(8, 6, num_layers=2)", (5, 4, 8), ((2, 4, 6),)),
    ],
)
def test_initial_state_errors_agree_with_torch(ctor, x, states):
    spec = _state_spec(ctor, x, states, "output")
    errors = check_source(spec).errors
    module = eval("nn." + ctor, {"nn": nn})  # noqa: S307
    values = [torch.randn(s) for s in states]
    try:
        module(torch.randn(x), tuple(values) if len(values) == 2 else values[0])
        raises = False
    except RuntimeError:
        raises = True
    assert bool(errors) == raises, errors
    if errors:
        assert spec[errors[0].span.start : errors[0].span.end] in ("h", "c", "(h, c)")


def test_lstm_state_must_be_a_pair():
    spec = _spec("x: [5, 4, 8], h: [1, 4, 6]", "y = LSTM(8, 6)(x, h)")
    assert [d.code for d in check_source(spec).errors] == ["E216"]


def test_sdpa_emits_the_functional_call_and_computes_torch_values():
    spec = _spec(
        "q: [2, 4, 5, 8], k: [2, 4, 7, 8], v: [2, 4, 7, 6], m: bool[5, 7]",
        "y = scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.25)",
    )
    source = nndsl.compile_spec(spec)
    assert "from torch.nn import functional as F" in source
    assert "F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.25)" in source
    built = nndsl.build(spec)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 6)
    m = torch.rand(5, 7) > 0.3
    m[:, 0] = True  # every query attends somewhere
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.25)
    torch.testing.assert_close(built(q, k, v, m), want)


def test_sdpa_causal_is_emitted_as_written():
    spec = _spec("q: [2, 5, 8]", "y = scaled_dot_product_attention(q, q, q, is_causal=True)")
    assert "F.scaled_dot_product_attention(q, q, q, is_causal=True)" in nndsl.compile_spec(spec)


def test_sdpa_bool_mask_export_is_refused(tmp_path):
    spec = _spec("q: [2, 5, 8], m: bool[5, 5]", "y = scaled_dot_product_attention(q, q, q, m)")
    with pytest.raises(nndsl.SpecError) as info:
        nndsl.export_onnx(spec, tmp_path / "m.onnx")
    assert [d.code for d in info.value.diagnostics] == ["E601"]
    assert not (tmp_path / "m.onnx").exists()


PAIR_CASES = [
    ("CosineSimilarity(dim=1)", (4, 8), (4, 8)),
    ("CosineSimilarity(dim=1)", (4, 8), (1, 8)),
    ("CosineSimilarity(dim=-1)", (8,), (8,)),
    ("CosineSimilarity(dim=1)", (8,), (8,)),
    ("CosineSimilarity(dim=0)", (3, 1, 8), (5, 8)),
    ("CosineSimilarity(dim=1)", (4, 8), (4, 7)),
    ("PairwiseDistance()", (4, 8), (4, 8)),
    ("PairwiseDistance(keepdim=True)", (4, 8), (4, 8)),
    ("PairwiseDistance(p=1.0)", (8,), (8,)),
    ("PairwiseDistance(keepdim=True)", (8,), (8,)),
    ("PairwiseDistance()", (3, 4, 8), (4, 8)),
    ("PairwiseDistance()", (4, 8), (4, 1)),
    ("PairwiseDistance()", (3, 4, 8), (3, 4, 7)),
    ("Bilinear(5, 6, 7)", (4, 5), (4, 6)),
    ("Bilinear(5, 6, 7)", (2, 4, 5), (2, 4, 6)),
    ("Bilinear(5, 6, 7, bias=False)", (5,), (6,)),
    ("Bilinear(5, 6, 7)", (4, 5), (1, 6)),
    ("Bilinear(5, 6, 7)", (4, 5), (4, 7)),
]


@pytest.mark.parametrize("ctor, a, b", PAIR_CASES)
def test_two_input_layers_agree_with_torch(ctor, a, b):
    spec = _spec(f"a: [{', '.join(map(str, a))}], b: [{', '.join(map(str, b))}]", f"y = {ctor}(a, b)")
    result = check_source(spec)
    reference = eval("nn." + ctor, {"nn": nn}).eval()  # noqa: S307
    ta, tb = torch.randn(a), torch.randn(b)
    try:
        want = reference(ta, tb)
    except (RuntimeError, IndexError):
        assert not result.ok
        return
    assert result.ok, result.errors
    model = result.program.models[0]
    assert [int(str(d)) for d in model.output.shape.dims] == list(want.shape)
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    built = nndsl.build(spec).eval()
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(built(ta, tb), reference(ta, tb))


def test_two_input_layer_in_a_chain_is_refused():
    spec = _spec("a: [4, 8]", "y = a -> CosineSimilarity()")
    assert [d.code for d in check_source(spec).errors] == ["E216"]


def test_two_input_layer_export_is_refused(tmp_path):
    spec = _spec("a: [4, 8], b: [4, 8]", "y = CosineSimilarity(dim=1)(a, b)")
    with pytest.raises(nndsl.SpecError) as info:
        nndsl.export_onnx(spec, tmp_path / "m.onnx")
    assert [d.code for d in info.value.diagnostics] == ["E601"]
