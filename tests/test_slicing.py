"""Tensor slicing and indexing (``x[:, 0]``, ``x[..., :-2]``, ``mask[:, None]``) against torch: the
checker's shapes and refusals, the emitted subscripts and their values, the ONNX export, and
random index expressions drawn by hypothesis, each compared with torch on random tensors."""

from __future__ import annotations

import re

import pytest
from conftest import assert_ruff_clean
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.backends.torch_module import emit_program, load_module

torch = pytest.importorskip("torch")


def _check(text: str):
    return nndsl.check_source(text, "<slicing>")


def _codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def _model(shape: list[int], index: str, name: str = "x") -> str:
    dims = ", ".join(map(str, shape))
    return f"model M({name}: [{dims}]) {{\n    return {name}[{index}]\n}}\n"


def _torch_index(x, index: str):
    """``x[index]`` evaluated by Python and torch themselves."""
    return eval(f"x[{index}]", {"__builtins__": {}}, {"x": x})  # an index this file wrote


# ---------------------------------------------------------------- fixed cases

CASES = [
    ([2, 3], ":, 0"),
    ([2, 3, 5], "..., :-2"),
    ([2, 3], ":, None"),
    ([2, 3, 4], "None, ..., None, 1"),
    ([4, 5], "-1"),
    ([4, 5], "1:3, ::2"),
    ([4, 5], "-10:10, 4:1"),
    ([4, 5], "3:, -2:"),
    ([6], "::4"),
    ([6], "5:0:1"),
    ([2, 3, 4], "..., 0, :"),
    ([2, 3, 4], "1, ..."),
    ([2, 3, 4], "...,"),
    ([3], "None, None"),
    ([2, 3], "0, 0"),
]


@pytest.mark.parametrize(("shape", "index"), CASES, ids=[f"x{s}[{i}]" for s, i in CASES])
def test_shape_and_values_as_torch(shape, index):
    result = _check(_model(shape, index))
    assert result.ok, [d.message for d in result.diagnostics]
    x = torch.randn(shape)
    want = _torch_index(x, index)
    (out,) = result.program.models[0].outputs
    assert out.shape.to_json() == list(want.shape)
    got = load_module(result.program)["M"]()(x)
    assert torch.equal(got, want)


REFUSED = [
    ([3, 2], "3", "E210", "index 3 is out of bounds for dimension 0 with size 3"),
    ([3, 2], ":, -3", "E210", "index -3 is out of bounds for dimension 1 with size 2"),
    ([3, 2], "0, 0, 0", "E210", "too many indices"),
    ([3, 2], "..., 0, ...", "E210", "single ellipsis"),
    ([3, 2], "::0", "E210", "greater than zero"),
    ([3, 2], "::-1", "E210", "greater than zero"),
    ([3, 2], "0.5", "E210", "got a float"),
]


@pytest.mark.parametrize(("shape", "index", "code", "message"), REFUSED, ids=[r[1] for r in REFUSED])
def test_refused_at_the_item_with_torchs_reason(shape, index, code, message):
    text = _model(shape, index)
    result = _check(text)
    (error,) = result.errors
    assert error.code == code and message in error.message
    if "indices" not in message:  # the item at fault is underlined, not the whole subscript
        assert text[error.span.start : error.span.end] in index and error.span.end - error.span.start < len(index) + 1


def test_torch_refuses_what_the_checker_refuses():
    for shape, index, _, _ in REFUSED:
        if index in ("..., 0, ...", "0.5"):
            continue  # torch reads a second '...' oddly; nndsl allows one, as Python's sequences do
        with pytest.raises((IndexError, ValueError, TypeError)):
            _torch_index(torch.randn(shape), index)


def test_symbolic_bounds_follow_the_sizes_and_run_as_sizes_of_the_tensor():
    text = """model M(x: [N, T, 16]) {
    a = x[:, : T - 2]
    b = x[:, -T + 1:, 1:9:3]
    c = x[:, T - 1]
    d = x[..., None, -1]
    return a, b, c, d
}
"""
    result = _check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert [str(t.shape) for t in result.program.models[0].outputs] == [
        "[N, T - 2, 16]",
        "[N, T - 1, 3]",
        "[N, 16]",
        "[N, T, 1]",
    ]
    assert _codes(result) == ["W301", "W301"]  # T - 2 >= 0 and 1 - T < 0 are the user's to ensure
    assert [text[d.span.start : d.span.end] for d in result.diagnostics] == [": T - 2", "-T + 1:"]  # at the item
    source = emit_program(result.program)
    assert "x[:, : x.size(1) - 2]" in source and "x[:, -x.size(1) + 1 :, 1:9:3]" in source
    assert "x[:, x.size(1) - 1]" in source and "x[..., None, -1]" in source
    module = load_module(result.program)["M"]()
    for t in (3, 7):
        x = torch.randn(2, t, 16)
        got = module(x)
        want = (x[:, : t - 2], x[:, -t + 1 :, 1:9:3], x[:, t - 1], x[..., None, -1])
        assert all(torch.equal(g, w) for g, w in zip(got, want))


def test_a_bound_offset_from_a_size_is_computed_from_that_size():
    """A block's chomp ``x[..., : L - k]`` after a padded convolution: ``L - k`` is the model's
    ``T``, which the tensor does not have, but ``L`` is its last size."""
    text = """block Chomp(x: [N, C, L], k) {
    x[..., : L - k]
}
model TCN(x: [N, 8, T]) {
    x -> Conv1d(8, 8, 3, padding=2) -> Chomp(2)
}
"""
    result = _check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert str(result.program.models[0].outputs[0].shape) == "[N, 8, T]"
    assert "x[..., : x.size(2) - 2]" in emit_program(result.program)
    module = load_module(result.program)["TCN"]()
    x = torch.randn(2, 8, 11)
    conv = module.conv1 if hasattr(module, "conv1") else module.conv
    assert torch.equal(module(x), conv(x)[..., :-2])


def test_a_bound_the_tensor_cannot_give_is_refused():
    result = _check("model M(x: [N, T], y: [N, S]) {\n    return x[:, :S]\n}\n")
    assert _codes(result) == ["E211"]
    assert "cannot be computed at run time" in result.errors[0].message


GATHERS = [
    ("table[index]", [9, 4], [3, 3]),
    ("x[:, index]", [2, 5, 3], [4]),
    ("x[..., index]", [2, 5, 3], [2, 2]),
    ("x[:, :, index]", [2, 5, 3], [1]),
]


@pytest.mark.parametrize(("call", "shape", "index_shape"), GATHERS, ids=[g[0] for g in GATHERS])
@pytest.mark.parametrize("dtype", ["long", "int32"])
def test_a_tensor_of_integers_gathers_along_its_dim_as_torch_does(call, shape, index_shape, dtype):
    """``table[index]`` (Swin's relative position bias): the dim replaced by the index's dims."""
    base = call.split("[")[0]
    dims = lambda s: ", ".join(map(str, s))  # noqa: E731
    text = f"model M({base}: [{dims(shape)}], index: {dtype}[{dims(index_shape)}]) {{\n    return {call}\n}}\n"
    result = _check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    x = torch.randn(shape)
    axis = {"table[index]": 0, "x[:, index]": 1, "x[..., index]": len(shape) - 1, "x[:, :, index]": 2}[call]
    index = torch.randint(-shape[axis], shape[axis], index_shape).to(torch.int64 if dtype == "long" else torch.int32)
    want = eval(call, {"__builtins__": {}}, {base: x, "index": index})
    assert result.program.models[0].outputs[0].shape.to_json() == list(want.shape)
    assert f"= {call}  #" in emit_program(result.program)
    assert torch.equal(load_module(result.program)["M"]()(x, index), want)


def test_onnx_export_of_a_gather_agrees_with_torch():
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    export_and_verify("model M(x: [N, 5, 3], index: long[4]) {\n    return x[:, index] -> Linear(3, 2)\n}\n")


@pytest.mark.parametrize(
    ("index", "code", "message"),
    [
        ("mask", "E211", "bool mask"),
        ("where", "E210", "must be long, int"),
        ("index, index", "E211", "several tensors"),
        ("0, index", "E211", "only with ':' and '...'"),
        (":1, index", "E211", "only with ':' and '...'"),
        ("index:", "E211", "not tensors"),
    ],
)
def test_tensor_indices_nndsl_does_not_follow_are_refused_clearly(index, code, message):
    text = f"model M(x: [N, 8], index: long[N], mask: bool[N], where: [N]) {{\n    return x[{index}]\n}}\n"
    result = _check(text)
    errors = [d for d in result.errors]
    assert errors and errors[0].code == code and message in errors[0].message, [d.message for d in errors]


def test_constant_lists_keep_their_index_and_refuse_slices():
    ok = _check("let widths = [4, 8]\nmodel M(x: [N, 2]) {\n    x -> Linear(2, widths[1])\n}\n")
    assert ok.ok and str(ok.program.models[0].outputs[0].shape) == "[N, 8]"
    refused = _check("let widths = [4, 8]\nmodel M(x: [N, 2]) {\n    x -> Linear(2, widths[0:1])\n}\n")
    assert _codes(refused) == ["E114"] and "widths[i]" in refused.errors[0].help


def test_indexing_keeps_the_dtype_and_is_a_view_of_the_memory():
    result = _check("model M(x: long[N, 4, 6]) {\n    return x[:, 0] -> Reshape((-1,))\n}\n")
    assert result.ok and result.program.models[0].outputs[0].dtype == "int64"
    # a column of row-major memory is strided: view would fail where torch's does
    refused = _check("model M(x: [N, 4, 6]) {\n    return x[..., 1:3] -> View((-1,))\n}\n")
    assert "E209" in _codes(refused)
    with pytest.raises(RuntimeError):
        torch.randn(2, 4, 6)[..., 1:3].view(-1)


def test_emitted_subscripts_are_ruff_clean(tmp_path):
    text = """model M(x: [N, T, 16], m: [N, T]) {
    a = x[:, 0]
    b = x[..., :-2]
    c = m[:, None, None, :]
    d = x[:, : T - 2, ::2]
    e = x[T - 1 :: 2]
    return a, b, c, d, e
}
"""
    result = _check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    for written in (
        "x[:, 0]",
        "x[..., :-2]",
        "m[:, None, None, :]",
        "x[:, : x.size(1) - 2, ::2]",
        "x[x.size(1) - 1 :: 2]",
    ):
        assert f"= {written}  #" in source
    (tmp_path / "m.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_onnx_export_of_slices_with_symbolic_bounds_agrees_with_torch():
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    exported, verified = export_and_verify(
        """model M(x: [N, T, 16]) {
    a = x[:, : T - 2]
    b = x[:, -T + 1:, 1:9:3]
    c = x[:, T - 1]
    d = x[:, None, 1, None, -1]
    return a, b, c, d
}"""
    )
    assert len(verified.cases) >= 2  # several sizes of N and T
    import numpy as np
    import onnxruntime

    exported, _ = export_and_verify("model M(x: [N, T, 16]) {\n    return x[:, 1 - T], x[:, -T]\n}\n")
    session = onnxruntime.InferenceSession(exported.proto.SerializeToString())
    x = np.random.default_rng(0).normal(size=(2, 1, 16)).astype(np.float32)  # T = 1: -T + 1 is 0
    got = session.run(None, {session.get_inputs()[0].name: x})[-1]
    assert np.array_equal(got, x[:, -1])


def test_matrix_product_maps_to_the_operator_written_with_its_symbol(monkeypatch):
    """``a @ b`` is the operator whose ``symbol`` is "@" (its own shape rule), or a clear refusal."""
    from nndsl.operators import REGISTRY, Operator
    from nndsl.shapes import Shape, TensorType

    text = "model M(a: [2, 4, 5], b: [5, 3]) {\n    return a @ b\n}\n"
    if not any(op.symbol == "@" for op in REGISTRY.values()):
        result = _check(text)
        assert _codes(result) == ["E114"] and "matmul" in result.errors[0].message

    class Product(Operator):
        name, symbol = "test_product", "@"

        @classmethod
        def output(cls, inputs, args):
            return [TensorType(Shape((*inputs[0].shape.dims[:-1], inputs[1].shape.dims[-1])))]

    for name in [n for n, op in REGISTRY.items() if op.symbol == "@"]:
        monkeypatch.delitem(REGISTRY, name)
    monkeypatch.setitem(REGISTRY, "test_product", Product)
    result = _check(text)
    assert result.ok and str(result.program.models[0].outputs[0].shape) == "[2, 4, 3]"
    assert result.program.models[0].graph.nodes[0].op == "test_product"
    numbers = _check("let k = 2 @ 3\nmodel M(x: [2]) {\n    x\n}\n")
    assert _codes(numbers) == ["E110"]


# ---------------------------------------------------------------- random index expressions


@st.composite
def index_cases(draw) -> tuple[list[int], str]:
    """A shape and an index of integers, slices, one '...' and None, as a spec writes it."""
    shape = draw(st.lists(st.integers(1, 5), min_size=0, max_size=4))
    small = st.integers(-7, 7)
    bound = st.one_of(st.none(), small)

    def item(kind: str) -> str:
        if kind == "int":
            return str(draw(small))
        if kind == "none":
            return "None"
        start, stop = draw(bound), draw(bound)
        step = draw(st.one_of(st.none(), st.integers(1, 3)))
        text = f"{'' if start is None else start}:{'' if stop is None else stop}"
        return text + ("" if step is None else f":{step}")

    kinds = draw(st.lists(st.sampled_from(["int", "slice", "slice", "none"]), min_size=1, max_size=5))
    items = [item(k) for k in kinds]
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), "...")
    return shape, ", ".join(items)


@settings(max_examples=300, suppress_health_check=list(HealthCheck))
@given(index_cases())
def test_random_indices_agree_with_torch(case):
    shape, index = case
    result = _check(_model(shape, index))
    x = torch.randn(shape)
    try:
        want = _torch_index(x, index)
    except IndexError:
        assert "E210" in _codes(result), (shape, index, [d.message for d in result.diagnostics])
        return
    assert result.ok, (shape, index, [d.message for d in result.diagnostics])
    assert result.program.models[0].outputs[0].shape.to_json() == list(want.shape)


@settings(max_examples=25, suppress_health_check=list(HealthCheck))
@given(index_cases())
def test_random_indices_emit_modules_computing_torchs_values(case):
    shape, index = case
    result = _check(_model(shape, index))
    if not result.ok:
        return  # refusals are compared with torch above
    x = torch.randn(shape)
    got = load_module(result.program)["M"]()(x)
    assert torch.equal(got, _torch_index(x, index)), (shape, index)


@settings(max_examples=40, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 6), st.integers(-3, 3), st.integers(-3, 3), st.integers(1, 3))
def test_symbolic_bounds_agree_with_torch_for_each_size(t, a, b, step):
    """``x[:, T + a : T + b : step]`` checked with T symbolic, then T given: torch's length wherever
    the checker did not warn that the bounds may leave the size's range."""
    text = f"model M(x: [N, T]) {{\n    return x[:, T + {a} : T + {b} : {step}]\n}}\n"
    result = _check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    want = torch.randn(2, t)[:, t + a : t + b : step].shape[1]
    got = result.program.models[0].outputs[0].shape.dims[1]
    from nndsl import shapes

    value = shapes.substitute(got, {shapes.Sym("T"): t}) if not isinstance(got, int) else got
    if "W301" not in _codes(result):  # decided for every T: exact
        assert value == want, (t, a, b, step, got)
    module = load_module(result.program)["M"]()
    x = torch.randn(2, t)
    assert torch.equal(module(x), x[:, t + a : t + b : step])


def test_the_emitted_forward_reads_like_a_person_wrote_it():
    result = _check("model M(x: [N, 197, 768]) {\n    return x[:, 0] -> LayerNorm(768)\n}\n")
    source = emit_program(result.program)
    assert re.search(r"^\s+x = x\[:, 0\]  # \[N, 768\]$", source, re.MULTILINE)


def test_a_blocks_index_from_its_parameters_is_one_class_reading_attributes(tmp_path):
    """``x[:, first]`` and ``x[..., :-chomp]`` in a block: the uses share a class whose
    constructor computes the bounds, as a tensor method's arguments are computed."""
    text = """block Pick(x: [N, S, E], first=0) {
    x[:, first] -> Linear(E, 4)
}
block Chomp(x: [N, C, L], chomp) {
    x[..., :-chomp]
}
model M(x: [N, 5, 12]) {
    a = x -> Pick()
    b = x -> Pick(3)
    c = x -> Chomp(2) -> Chomp(5)
    return a, b, c
}
"""
    result = _check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    assert source.count("class Pick") == 1 and source.count("class Chomp") == 1
    assert "x[:, self.first]" in source and "self.first = first" in source
    assert "x[..., : self.stop]" in source and "self.stop = -chomp" in source
    (tmp_path / "m.py").write_text(source)
    assert_ruff_clean(tmp_path)
    module = load_module(result.program)["M"]()
    x = torch.randn(2, 5, 12)
    a, b, c = module(x)
    assert torch.equal(a, module.pick1.fc(x[:, 0])) and torch.equal(b, module.pick2.fc(x[:, 3]))
    assert torch.equal(c, x[..., :-2][..., :-5])


def test_the_function_form_takes_integers_and_none():
    result = _check("model M(x: [3, 4]) {\n    return getitem(x, (1, None))\n}\n")
    assert result.ok and str(result.program.models[0].outputs[0].shape) == "[1, 4]"
    assert "x[1, None]" in emit_program(result.program)
    refused = _check("model M(x: [3, 4]) {\n    return getitem(x, 3)\n}\n")
    assert _codes(refused) == ["E210"]
