"""Several parts of one layer run: ``out, h_n, c_n = LSTM(...)(x)`` and ``out, weights =
MultiheadAttention(...)(q, k, v)``, and the ``.weights`` selector. The checker's shapes, the
emitted module's values (one call of the module) and the ONNX export, each against torch."""

from __future__ import annotations

import pytest
import torch
from onnx_support import export_and_verify
from torch import nn

import nndsl
from nndsl.api import check_source


def _model(inputs: str, body: str, outputs: str) -> str:
    lines = "\n".join(f"    {line}" for line in body.splitlines())
    return f"model M({inputs}) {{\n{lines}\n    return {outputs}\n}}\n"


def _declared(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _exported(spec: str):
    """The ONNX export of the spec's model, verified against torch; its graph."""
    exported, verified = export_and_verify(spec)
    assert verified.reference == "torch" and verified.cases
    assert verified.max_diff <= verified.limit
    return exported.proto.graph


def _checked_dims(model) -> list[list[int]]:
    return [[int(str(d)) for d in t.shape.dims] for t in model.outputs]


def _built_and_reference(spec: str, ctor: str):
    """The module nndsl builds from ``spec`` (one layer, ``ctor``) and torch's own layer with its weights."""
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    reference = eval("nn." + ctor, {"nn": nn}).eval()  # noqa: S307 - the constructor of the spec
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    return built, reference


RECURRENT = [
    ("LSTM(6, 8, num_layers=2, bidirectional=True, batch_first=True)", (2, 5, 6)),
    ("LSTM(6, 8, proj_size=3, num_layers=2)", (5, 2, 6)),
    ("LSTM(6, 8)", (5, 6)),
    ("GRU(6, 8, num_layers=2, bidirectional=True)", (5, 2, 6)),
    ("GRU(6, 8, batch_first=True)", (5, 6)),
    ("RNN(6, 8, nonlinearity='relu', num_layers=3)", (4, 3, 6)),
]


def _recurrent_spec(ctor: str, shape: tuple[int, ...]) -> tuple[str, list[str]]:
    names = ["out", "h", "c"] if ctor.startswith("LSTM") else ["out", "h"]
    return _model(f"x: {_declared(shape)}", f"{', '.join(names)} = {ctor}(x)", ", ".join(names)), names


@pytest.mark.parametrize("ctor, shape", RECURRENT)
def test_recurrent_parts_equal_torch_from_one_run(ctor, shape):
    spec, names = _recurrent_spec(ctor, shape)
    result = check_source(spec)
    assert result.ok, result.errors
    model = result.program.models[0]
    built, reference = _built_and_reference(spec, ctor)
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    x = torch.randn(shape)
    with torch.no_grad():
        got = built(x)
        out, state = reference(x)
    want = (out, *state) if isinstance(state, tuple) else (out, state)
    assert [list(t.shape) for t in got] == _checked_dims(model) == [list(t.shape) for t in want]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    source = nndsl.compile_spec(spec)
    final = "(h, c)" if len(names) == 3 else "h"
    (line,) = [line.strip() for line in source.splitlines() if "= self." in line and "forward" not in line]
    assert line.startswith(f"out, {final} = self.") and line.count("self.") == 1  # one run of the module


@pytest.mark.parametrize("ctor, shape", RECURRENT)
def test_recurrent_parts_export_to_onnx(ctor, shape):
    spec, _ = _recurrent_spec(ctor, shape)
    ops = [node.op_type for node in _exported(spec).node]
    layers = int(ctor.split("num_layers=")[1][0]) if "num_layers=" in ctor else 1
    assert ops.count(ctor[: ctor.index("(")]) == layers  # one ONNX op per layer gives every part


def test_initial_state_and_unpacked_final_state():
    spec = _model(
        "x: [2, 5, 6], h0: [1, 2, 8], c0: [1, 2, 8]",
        "out, h, c = LSTM(6, 8, batch_first=True)(x, (h0, c0))",
        "out, h, c",
    )
    built, reference = _built_and_reference(spec, "LSTM(6, 8, batch_first=True)")
    x, h0, c0 = torch.randn(2, 5, 6), torch.randn(1, 2, 8), torch.randn(1, 2, 8)
    with torch.no_grad():
        got = built(x, h0, c0)
        out, (h, c) = reference(x, (h0, c0))
    for g, w in zip(got, (out, h, c)):
        torch.testing.assert_close(g, w)
    assert "out, (h, c) = self.lstm(x, (h0, c0))" in nndsl.compile_spec(spec)
    _exported(spec)


def test_named_layer_unpacked_at_one_use_and_chained_at_another_is_one_module():
    spec = _model(
        "a: [2, 5, 6], b: [2, 3, 6]",
        "encoder = GRU(6, 8, batch_first=True)\nout, h = encoder(a)\ny = b -> encoder",
        "out, h, y",
    )
    result = check_source(spec)
    assert result.ok, result.errors
    model = result.program.models[0]
    reference = nn.GRU(6, 8, batch_first=True)
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    (weights,) = {k.split(".", 1)[0] for k in built.state_dict()}
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items()})
    a, b = torch.randn(2, 5, 6), torch.randn(2, 3, 6)
    with torch.no_grad():
        out, h, y = built(a, b)
        torch.testing.assert_close(out, reference(a)[0])
        torch.testing.assert_close(h, reference(a)[1])
        torch.testing.assert_close(y, reference(b)[0])
    assert f"out, h = self.{weights}(a)" in nndsl.compile_spec(spec)
    _exported(spec)


def test_unpacking_inside_a_block_body():
    spec = (
        "block Encode(x: [N, L, F], hidden) {\n"
        "    out, h = GRU(F, hidden, batch_first=True)(x)\n"
        "    return h\n"
        "}\n" + _model("x: [2, 5, 6]", "y = x -> Encode(8) -> Encode(8)", "y")
    )
    result = check_source(spec)
    assert result.errors and result.errors[0].code == "E202" or result.ok, result.errors
    spec = spec.replace("Encode(8) -> Encode(8)", "Encode(8)")
    result = check_source(spec)
    assert result.ok, result.errors
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    reference = nn.GRU(6, 8, batch_first=True)
    reference.load_state_dict({k.rsplit(".", 2)[-1]: v for k, v in built.state_dict().items()})
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(built(x), reference(x)[1])
    assert [list(t.shape) for t in [built(x)]] == _checked_dims(result.program.models[0])
    _exported(spec)


# -- attention weights

ATTENTION = [
    ("MultiheadAttention(16, 4, batch_first=True)", (2, 5, 16), (2, 7, 16), ""),
    ("MultiheadAttention(16, 4, batch_first=True)", (2, 5, 16), (2, 7, 16), ", average_attn_weights=False"),
    ("MultiheadAttention(16, 2)", (5, 2, 16), (7, 2, 16), ""),
    ("MultiheadAttention(16, 2)", (5, 2, 16), (7, 2, 16), ", average_attn_weights=False"),
    ("MultiheadAttention(8, 2)", (5, 8), (7, 8), ""),
    ("MultiheadAttention(8, 2, batch_first=True)", (5, 8), (7, 8), ", average_attn_weights=False"),
    ("MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True)", (5, 2, 8), (7, 2, 8), ""),
    (
        "MultiheadAttention(8, 2, add_zero_attn=True, batch_first=True)",
        (2, 5, 8),
        (2, 7, 8),
        ", average_attn_weights=False",
    ),
]


@pytest.mark.parametrize("ctor, query, key, flags", ATTENTION)
def test_attention_output_and_weights_equal_torch(ctor, query, key, flags):
    spec = _model(
        f"q: {_declared(query)}, m: {_declared(key)}",
        f"out, weights = {ctor}(q, m, m{flags})",
        "out, weights",
    )
    result = check_source(spec)
    assert result.ok, result.errors
    model = result.program.models[0]
    built, reference = _built_and_reference(spec, ctor)
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    q, m = torch.randn(query), torch.randn(key)
    average = "False" not in flags
    with torch.no_grad():
        got = built(q, m)
        want = reference(q, m, m, average_attn_weights=average)
    assert [list(t.shape) for t in got] == _checked_dims(model) == [list(t.shape) for t in want]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    source = nndsl.compile_spec(spec)
    assert "need_weights" not in source and source.count("= self.attn(") == 1
    _exported(spec)


@pytest.mark.parametrize("ctor, query, key, flags", ATTENTION[:5])
def test_weights_selector_equals_torch(ctor, query, key, flags):
    # a chain's step, or the call form where a forward flag is given
    body = f"y = {ctor}(q{flags}).weights" if flags else f"y = q -> {ctor}.weights"
    spec = _model(f"q: {_declared(query)}", body, "y")
    result = check_source(spec)
    assert result.ok, result.errors
    built, reference = _built_and_reference(spec, ctor)
    q = torch.randn(query)
    with torch.no_grad():
        got = built(q)
        want = reference(q, q, q, average_attn_weights=not flags)[1]
    assert list(got.shape) == _checked_dims(result.program.models[0])[0] == list(want.shape)
    torch.testing.assert_close(got, want)
    _exported(spec)


def test_weights_with_masks_equal_torch():
    spec = _model(
        "q: [2, 5, 16], pad: bool[2, 5], am: bool[5, 5]",
        "out, w = MultiheadAttention(16, 4, batch_first=True)(q, q, q, key_padding_mask=pad, attn_mask=am)",
        "out, w",
    )
    built, reference = _built_and_reference(spec, "MultiheadAttention(16, 4, batch_first=True)")
    q = torch.randn(2, 5, 16)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    am = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
    with torch.no_grad():
        got = built(q, pad, am)
        want = reference(q, q, q, key_padding_mask=pad, attn_mask=am)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


# -- mistakes, at their position


@pytest.mark.parametrize(
    "body, code, at",
    [
        ("out, h = LSTM(6, 8)(x)", "E117", "out, h"),
        ("out, h, c, d = LSTM(6, 8)(x)", "E117", "out, h, c, d"),
        ("out, h, c = GRU(6, 8)(x)", "E117", "out, h, c"),
        ("out, h, c = LSTM(6, 8)(x).h_n", "E111", "h_n"),
        ("out, h, c = x -> LSTM(6, 8).last", "E111", "last"),
        ("a, b = x -> Linear(6, 2)", "E117", "a, b = x -> Linear(6, 2)"),
        ("a, b = x", "E117", "a, b = x"),
        ("y = x -> LSTM(6, 8)\nout, h, c = y", "E117", "out, h, c = y"),
        ("out, w = MultiheadAttention(6, 2)(x, x, x, need_weights=False)", "E111", "need_weights=False"),
        ("w = MultiheadAttention(6, 2)(x, need_weights=False).weights", "E111", "need_weights=False"),
        ("w = x -> MultiheadAttention(6, 2).attention", "E111", "attention"),
        ("out, w, z = MultiheadAttention(6, 2)(x)", "E117", "out, w, z"),
    ],
)
def test_unpacking_mistakes_are_positioned(body, code, at):
    spec = _model("x: [5, 2, 6]", body, "x")
    errors = check_source(spec).errors
    assert errors and errors[0].code == code, errors
    assert spec[errors[0].span.start : errors[0].span.end] == at


def test_arity_help_names_the_parts():
    spec = _model("x: [5, 2, 6]", "out, h = LSTM(6, 8)(x)", "out")
    (error,) = check_source(spec).errors
    assert "output, h_n, c_n" in error.message and "output, h_n, c_n" in error.help


def test_shared_attention_and_recurrent_modules_applied_in_a_chain_run_as_torch():
    """A named module whose forward returns a tuple, applied twice in a chain: each application
    calls it as torch takes it (query, key and value; the output of the tuple)."""
    spec = (
        "model M(x: [5, 2, 16]) {\n    attn = MultiheadAttention(16, 4)\n    rnn = GRU(16, 16)\n"
        "    x -> attn -> rnn -> attn -> rnn\n}\n"
    )
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    attn, rnn = nn.MultiheadAttention(16, 4).eval(), nn.GRU(16, 16)
    attn.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items() if k.startswith("attn.")})
    rnn.load_state_dict({k.split(".", 1)[1]: v for k, v in built.state_dict().items() if k.startswith("rnn.")})
    x = torch.randn(5, 2, 16)
    with torch.no_grad():
        want = x
        for _ in range(2):
            want = rnn(attn(want, want, want)[0])[0]
        torch.testing.assert_close(built(x), want)
    assert check_source(spec).program.models[0].param_count == sum(
        p.numel() for m in (attn, rnn) for p in m.parameters()
    )
