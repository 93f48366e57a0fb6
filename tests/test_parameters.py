"""Learned tensors (``name = Parameter(shape, init=...)``): checked sizes and diagnostics, exact
parameter counts against torch, state_dict names, the emitted initialisations, blocks used
with different sizes, ONNX initializers verified against torch, and ``x (op) p`` against torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_ruff_clean
from hypothesis import given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.backends.torch_build import build_model
from nndsl.backends.torch_module import emit_program
from nndsl.ir import walk

torch = pytest.importorskip("torch")

LAYER_SCALE = """\
block Scale(x: [N, C, H, W], init_value=1e-6) {
    gamma = Parameter([C, 1, 1], init="constant", value=init_value)
    beta = Parameter([C, 1, 1])
    x * gamma + beta
}
model Net(x: [N, 3, 16, 16]) {
    x -> Conv2d(3, 8, 3) -> Scale() -> Conv2d(8, 4, 3) -> Scale(0.5) -> Scale() * 2
}
"""


def _checked(text: str):
    result = nndsl.check_source(text, "<parameters>")
    assert result.ok, [d.message for d in result.diagnostics]
    return result.program


def _built(text: str, path):
    spec = path / "spec.nn"
    spec.write_text(text)
    return nndsl.build(spec)


def _simple_vit() -> str:
    return """\
model TinyViT(x: [N, 3, 32, 32]) {
    cls_token = Parameter([1, 1, 16])
    pos_embedding = Parameter([1, 16, 16], init="normal", std=0.02)
    t = x -> Conv2d(3, 16, 8, stride=8) -> Flatten(2) -> Transpose(1, 2)
    t = t + pos_embedding
    t = t * cls_token
    t -> Flatten -> Linear(256, 10)
}
"""


# ---------------------------------------------------------------- counts, names, emission


def test_count_names_and_forward_agree_with_torch(tmp_path):
    text = _simple_vit()
    model = _checked(text).models[0]
    module = _built(text, tmp_path)
    assert model.param_count == sum(p.numel() for p in module.parameters()) == 16 + 256 + 3088 + 2570
    state = module.state_dict()
    assert list(state)[:2] == ["cls_token", "pos_embedding"]
    assert tuple(state["cls_token"].shape) == (1, 1, 16)
    assert isinstance(module.cls_token, torch.nn.Parameter)
    for n in (1, 3):
        assert tuple(module(torch.randn(n, 3, 32, 32)).shape) == (n, 10)


def test_emitted_code_is_what_a_person_writes(tmp_path):
    source = emit_program(_checked(_simple_vit()))
    assert "self.cls_token = nn.Parameter(torch.zeros(1, 1, 16))" in source
    assert "self.pos_embedding = nn.Parameter(torch.empty(1, 16, 16).normal_(std=0.02))" in source
    assert "t = t + self.pos_embedding" in source
    assert "t = t * self.cls_token" in source
    (tmp_path / "vit.py").write_text(source)
    assert_ruff_clean(tmp_path)


@pytest.mark.parametrize(
    ("call", "emitted"),
    [
        ('Parameter([2, 3], init="ones")', "nn.Parameter(torch.ones(2, 3))"),
        ('Parameter([3], init="constant", value=0.5)', "nn.Parameter(torch.full((3,), 0.5))"),
        ('Parameter([2, 3], init="normal", mean=1.0)', "nn.Parameter(torch.empty(2, 3).normal_(mean=1.0))"),
        (
            'Parameter([2, 3], init="trunc_normal", std=0.02)',
            "nn.Parameter(nn.init.trunc_normal_(torch.empty(2, 3), std=0.02))",
        ),
        ('Parameter([2, 3], init="uniform", a=-0.1, b=0.1)', "nn.Parameter(torch.empty(2, 3).uniform_(-0.1, 0.1))"),
        ("Parameter([])", "nn.Parameter(torch.zeros(()))"),
    ],
)
def test_each_init_is_emitted_as_torch_writes_it(call, emitted):
    source = emit_program(_checked(f"model M(x: [N, 3]) {{\n    p = {call}\n    x * p\n}}\n"))
    assert f"self.p = {emitted}" in source


def _values(init: str, size: int = 20000) -> np.ndarray:
    program = _checked(f"model M(x: [N, {size}]) {{\n    p = Parameter([{size}], {init})\n    x + p\n}}\n")
    from nndsl.backends.torch_build import fresh_module

    return fresh_module(program, program.models[0]).p.detach().numpy()


def test_initial_values_follow_the_init():
    assert np.all(_values('init="zeros"') == 0) and np.all(_values('init="ones"') == 1)
    assert np.all(_values('init="constant", value=1e-6') == np.float32(1e-6))
    normal = _values('init="normal", mean=3.0, std=0.02')
    assert abs(normal.mean() - 3.0) < 0.002 and abs(normal.std() - 0.02) < 0.002
    trunc = _values('init="trunc_normal", std=1.0, a=-0.5, b=0.5')
    assert trunc.min() >= -0.5 and trunc.max() <= 0.5 and trunc.std() > 0.2
    uniform = _values('init="uniform", a=2.0, b=3.0')
    assert uniform.min() >= 2.0 and uniform.max() <= 3.0 and abs(uniform.mean() - 2.5) < 0.02


def test_reserved_names_are_renamed_only_where_nn_module_needs_it(tmp_path):
    text = "model M(x: [N, 3]) {\n    training = Parameter([3])\n    weight = Parameter([3])\n    x * training + weight\n}\n"
    module = _built(text, tmp_path)
    assert list(module.state_dict()) == ["training_", "weight"]
    assert module.eval().training is False  # nn.Module's own attribute still works


def test_a_parameter_keeps_its_name_ahead_of_a_module(tmp_path):
    text = "model M(x: [N, 3]) {\n    y = x -> Linear(3, 3)\n    fc = Parameter([3])\n    y + fc\n}\n"
    module = _built(text, tmp_path)
    assert list(module.state_dict()) == ["fc", "fc_.weight", "fc_.bias"]


# ---------------------------------------------------------------- blocks


def test_a_block_used_with_different_sizes_is_one_class(tmp_path):
    program = _checked(LAYER_SCALE)
    source = emit_program(program)
    assert source.count("class Scale(nn.Module)") == 1 and "class Scale2" not in source
    assert "self.gamma = nn.Parameter(torch.full((C, 1, 1), init_value))" in source
    assert "self.beta = nn.Parameter(torch.zeros(C, 1, 1))" in source
    module = _built(LAYER_SCALE, tmp_path)
    state = module.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items() if "gamma" in k} == {
        "scale1.gamma": (8, 1, 1),
        "scale2.gamma": (4, 1, 1),
        "blocks.0.gamma": (4, 1, 1),
        "blocks.1.gamma": (4, 1, 1),
    }
    assert torch.all(state["scale2.gamma"] == 0.5) and torch.all(state["scale1.gamma"] == np.float32(1e-6))
    assert program.models[0].param_count == sum(p.numel() for p in module.parameters())
    assert tuple(module(torch.randn(2, 3, 16, 16)).shape) == (2, 4, 12, 12)
    (tmp_path / "scale.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_a_block_computing_its_shape_from_parameters(tmp_path):
    text = """\
block Table(x: [N, L, D], window, heads) {
    table = Parameter([(2 * window - 1) * (2 * window - 1), heads], init="trunc_normal", std=0.02)
    x
}
model M(x: [N, 4, 8]) {
    x -> Table(2, 3) -> Table(3, 4)
}
"""
    program = _checked(text)
    module = _built(text, tmp_path)
    assert tuple(module.table1.table.shape) == (9, 3) and tuple(module.table2.table.shape) == (25, 4)
    assert program.models[0].param_count == 27 + 100
    assert "torch.empty((2 * window - 1) * (2 * window - 1), heads)" in emit_program(program)


# ---------------------------------------------------------------- check output


def test_shapes_table_and_json_show_the_tensor(tmp_path):
    spec = tmp_path / "vit.nn"
    spec.write_text(_simple_vit())
    from nndsl.cli import main

    assert main(["check", "--shapes", str(spec)]) == 0
    result = nndsl.check_file(spec)
    from nndsl.backends.summary import file_json, shape_table

    table = shape_table(result.program.models[0], result.source)
    row = next(line for line in table.splitlines() if "pos_embedding" in line)
    assert row.split()[0] == "3:21" and row.split()[-2:] == ["16]", "256"]
    (tensor,) = [t for t in file_json(str(spec), result)["models"][0]["tensors"] if t["name"] == "pos_embedding"]
    assert tensor["module"] == "pos_embedding" and tensor["init_args"] == {"mean": 0.0, "std": 0.02}
    assert tensor["output"]["shape"] == [1, 16, 16] and tensor["params"] == 256
    json.dumps(tensor, allow_nan=False)


# ---------------------------------------------------------------- diagnostics

ERRORS = [
    ("p = Parameter([1, N, 4])", "E107", "2:23", "symbolic size N"),
    ("p = Parameter([0, 4])", "E107", "2:20", "must be positive"),
    ("p = Parameter([-3])", "E107", "2:20", "must be positive"),
    ('p = Parameter([4], init="normall")', "E107", "2:24", "unknown init 'normall'"),
    ('p = Parameter([4], init="constant")', "E105", "2:9", "missing the required argument 'value'"),
    ("p = Parameter([4], std=0.1)", "E102", "2:24", "takes no argument 'std'"),
    ('p = Parameter([4], init="normal", std=-1)', "E107", "2:39", "std must be at least 0"),
    ('p = Parameter([4], init="uniform", a=1, b=0)', "E107", "2:45", "a must not exceed b"),
    ("p = Parameter(4)", "E106", "2:19", "a list of sizes"),
    ("p = Parameter([2.5])", "E106", "2:20", "sizes are integers"),
    ("p = Parameter([4], init=3)", "E106", "2:24", "must be a string"),
    ('p = Parameter([4], init="normal", std="x")', "E106", "2:39", "must be a number"),
    ("p = Parameter()", "E105", "2:9", "missing the required argument 'shape'"),
    ("p = Parameter([4], foo=1)", "E102", "2:24", "no argument 'foo'"),
    ('p = Parameter([4], dtype="int64")', "E107", "2:24", "a floating dtype, got 'int64'"),
    ('p = Parameter([4], dtype="flaot16")', "E107", "2:24", "a floating dtype"),
    ("p = Parameter([4], dtype=2)", "E106", "2:24", "dtype of Parameter must be a string"),
    ("y = x + Parameter([4])", "E117", "2:13", "a statement must name"),
    ("a, b = Parameter([4])", "E117", "2:12", "a statement must name"),
    ("p = Parameter([4])\n    -> ReLU", "E117", "2:9", "a statement must name"),
    ("p = Parameter([1099511627776, 1099511627776])", "E119", "2:9", "more than 2**63 bytes"),
]


@pytest.mark.parametrize(("statement", "code", "where", "message"), ERRORS)
def test_every_mistake_is_a_positioned_diagnostic(statement, code, where, message):
    result = nndsl.check_source(f"model M(x: [N, 4]) {{\n    {statement}\n    x\n}}\n", "e.nn")
    errors = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert errors, statement
    first = errors[0]
    line, col = first.source.line_col(first.span.start)
    assert (first.code, f"{line}:{col}") == (code, where)
    assert message in first.message


def test_parameter_outside_a_body_and_in_a_return():
    result = nndsl.check_source("let p = Parameter([4])\nmodel M(x: [N, 4]) {\n    return Parameter([4])\n}\n")
    assert [d.code for d in result.diagnostics if d.severity.name == "ERROR"] == ["E117", "E117"]


def test_a_symbolic_block_size_is_an_error_at_the_block_with_the_use_labelled():
    text = "block B(x: [N, C]) {\n    g = Parameter([C])\n    x * g\n}\nmodel M(x: [N, D]) {\n    x -> B\n}\n"
    result = nndsl.check_source(text, "b.nn")
    (error,) = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert error.code == "E107" and error.source.line_col(error.span.start) == (2, 20)
    assert any("in this use of B" in label.message for label in error.secondary)


# ---------------------------------------------------------------- ONNX


def test_onnx_export_has_the_tensors_as_initializers_and_verifies(tmp_path):
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    for text in (_simple_vit(), LAYER_SCALE):
        exported, verified = export_and_verify(text)
        names = {t.name for t in exported.proto.graph.initializer}
        assert verified.max_diff <= verified.limit
        wanted = {"cls_token", "pos_embedding"} if "TinyViT" in text else {"scale1.gamma", "blocks.1.beta"}
        assert wanted <= names


def test_weights_file_with_a_wrong_tensor_shape_is_refused_at_the_parameter(tmp_path):
    pytest.importorskip("onnxruntime")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    spec = tmp_path / "vit.nn"
    spec.write_text(_simple_vit())
    module = nndsl.build(spec)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    safetensors_torch.save_file(state, str(tmp_path / "good.safetensors"))
    nndsl.export_onnx(spec, tmp_path / "good.onnx", weights=tmp_path / "good.safetensors")
    state["pos_embedding"] = torch.zeros(1, 17, 16)
    safetensors_torch.save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(nndsl.api.SpecError) as caught:
        nndsl.export_onnx(spec, tmp_path / "bad.onnx", weights=tmp_path / "bad.safetensors")
    (diag,) = caught.value.diagnostics
    assert "'pos_embedding'" in diag.message and diag.source.line_col(diag.span.start)[0] == 3


# ---------------------------------------------------------------- differential against torch

_sizes = st.lists(st.integers(1, 3), min_size=0, max_size=3)  # a 0-D tensor promotes more weakly


_FLOATS = ["float32", "float64", "float16", "bfloat16"]


@given(
    x=_sizes,
    p=_sizes,
    op=st.sampled_from(["+", "*", "-", "/"]),
    xd=st.sampled_from(_FLOATS),
    pd=st.sampled_from(_FLOATS),
)
def test_combining_with_an_input_agrees_with_torch(x, p, op, xd, pd):
    dims, sizes = ", ".join(map(str, x)), ", ".join(map(str, p))
    text = f'model M(x: {xd}[{dims}]) {{\n    p = Parameter([{sizes}], init="ones", dtype="{pd}")\n    x {op} p\n}}\n'
    result = nndsl.check_source(text, "d.nn")
    a, b = torch.ones(x, dtype=getattr(torch, xd)), torch.ones(p, dtype=getattr(torch, pd))
    try:
        expected = eval(f"a {op} b", {"a": a, "b": b})  # noqa: S307
    except RuntimeError:
        expected = None
    if expected is None:
        assert not result.ok
        return
    assert result.ok, [d.message for d in result.diagnostics]
    model = result.program.models[0]
    assert model.output.shape.dims == tuple(expected.shape)
    assert model.output.dtype == str(expected.dtype).removeprefix("torch.")
    module = build_model(result.program, model)
    assert module.p.dtype == getattr(torch, pd)
    out = module(a)
    assert out.shape == expected.shape and out.dtype == expected.dtype


def test_a_tensor_of_another_dtype_is_emitted_so_and_refused_by_onnx_at_its_statement(tmp_path):
    pytest.importorskip("onnxruntime")
    spec = tmp_path / "d.nn"
    spec.write_text(
        'model M(x: [N, 4]) {\n    p = Parameter([4], init="normal", std=0.5, dtype="float64")\n    x * p\n}\n'
    )
    assert "torch.empty(4, dtype=torch.float64).normal_(std=0.5)" in emit_program(nndsl.check_file(spec).program)
    with pytest.raises(nndsl.api.SpecError) as caught:
        nndsl.export_onnx(spec, tmp_path / "d.onnx")
    (diag,) = caught.value.diagnostics
    assert diag.code == "E601" and diag.source.line_col(diag.span.start) == (2, 9)
    assert not (tmp_path / "d.onnx").exists()


def test_a_loop_numbers_the_tensors_it_makes(tmp_path):
    text = """\
model M(x: [N, 4]) {
    for i in range(3) {
        g = Parameter([4], init="constant", value=i)
        y = x * g
        y
    }
}
"""
    module = _built(text, tmp_path)
    keys = [k for k in module.state_dict() if k.startswith("g")]
    assert keys == ["g1", "g2", "g3"]
    assert [float(module.state_dict()[k][0]) for k in keys] == [0.0, 1.0, 2.0]


def test_a_tensor_returned_as_it_is_exports_and_verifies(tmp_path):
    pytest.importorskip("onnxruntime")
    spec = tmp_path / "o.nn"
    spec.write_text('model M(x: [N, 4]) {\n    p = Parameter([4], init="ones")\n    y = x * p\n    return y, p\n}\n')
    module = nndsl.build(spec)
    assert module(torch.ones(2, 4))[1] is module.p
    result = nndsl.export_onnx(spec, tmp_path / "o.onnx")
    assert result.verified.cases and result.outputs[1] == ("p", "[4]")


def test_the_lowering_gives_every_tensor_its_key():
    from test_lowering import _agree

    program = _checked(LAYER_SCALE)
    assert _agree(program) >= 5
    from nndsl.lowering import lower

    keys = {lower(program).prefixes[n.id] for n in walk(program.models[0].graph) if n.tag == "param"}
    assert keys == {f"{m}.{t}" for m in ("scale1", "scale2", "blocks.0", "blocks.1") for t in ("gamma", "beta")}


def test_a_chain_after_a_parameter_continues_from_the_value_before_it(tmp_path):
    text = """\
block Scale(x: [N, C]) {
    g = Parameter([C], init="ones")
    Linear(C, C)
}
model M(x: [N, 4]) {
    p = Parameter([8])
    Linear(4, 8) -> Scale
}
"""
    program = _checked(text)
    assert str(program.models[0].output) == "[N, 8]"
    module = _built(text, tmp_path)
    assert tuple(module(torch.ones(3, 4)).shape) == (3, 8)
    assert list(module.state_dict())[:1] == ["p"]


@settings(max_examples=15)
@given(widths=st.lists(st.integers(1, 6), min_size=1, max_size=4), scale=st.floats(0.0, 2.0))
def test_blocks_of_any_widths_count_and_build_as_torch_does(widths, scale):
    uses = []
    previous = 3
    for width in widths:
        uses.append(f"Linear({previous}, {width}) -> Gate({scale!r})")
        previous = width
    text = f"""\
block Gate(x: [N, C], s) {{
    g = Parameter([C, 1], init="constant", value=s)
    t = Parameter([1, C], init="trunc_normal", std=0.02)
    x * t
}}
model M(x: [N, 3]) {{
    x -> {" -> ".join(uses)}
}}
"""
    program = _checked(text)
    for share in (True, False):
        namespace = {}
        exec(compile(emit_program(program, share=share), "<emitted>", "exec"), namespace)  # noqa: S102
        module = namespace["M"]()
        assert sum(p.numel() for p in module.parameters()) == program.models[0].param_count
        gates = [v for k, v in module.state_dict().items() if k.endswith(".g")]
        assert [tuple(g.shape) for g in gates] == [(w, 1) for w in widths]
        assert all(torch.all(g == np.float32(scale)) for g in gates)
        assert tuple(module(torch.ones(2, 3)).shape) == (2, widths[-1])
