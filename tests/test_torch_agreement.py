"""Smaller rules settled by what torch 2.13 does: Squeeze of symbolic sizes, norms' arguments,
zero sizes and the dtypes each layer accepts."""

from __future__ import annotations

import pytest

import nndsl

torch = pytest.importorskip("torch")


def codes(text: str) -> list[str]:
    return [d.code for d in nndsl.check_source(text, "<agree>").diagnostics]


def test_squeeze_keeps_a_symbolic_size_as_torch_keeps_every_size_but_1():
    text = "model M(x: [2, W, C, 11]) { Squeeze(dim=(0, 2)) -> BatchNorm2d(3) }"
    result = nndsl.check_source(text, "<agree>")
    assert result.ok, [(d.code, d.message) for d in result.diagnostics]
    assert [d.code for d in result.diagnostics] == ["W308", "W303"]  # C kept (W308); W fixed to 3 by BatchNorm2d
    assert str(result.program.models[0].output.shape) == "[2, 3, C, 11]"
    y = torch.nn.BatchNorm2d(3)(torch.randn(2, 3, 5, 11).squeeze((0, 2)))
    assert tuple(y.shape) == (2, 3, 5, 11)
    # with C = 1 torch removes the dim (and BatchNorm2d then refuses the 3-D result): the
    # checker's shapes hold for C != 1, as W308 says
    assert torch.randn(2, 3, 1, 11).squeeze((0, 2)).shape == (2, 3, 11)


def test_squeeze_removes_a_size_known_to_be_1():
    result = nndsl.check_source("model M(x: [N, 1, 4]) { Squeeze(1) }", "<agree>")
    assert result.ok and not result.diagnostics
    assert str(result.program.models[0].output.shape) == "[N, 4]"
    assert torch.randn(3, 1, 4).squeeze(1).shape == (3, 4)


def test_norms_take_torchs_keyword_only_bias():
    for call, module in [
        ("BatchNorm2d(3, bias=False)", torch.nn.BatchNorm2d(3, bias=False)),
        ("GroupNorm(1, 3, bias=False)", torch.nn.GroupNorm(1, 3, bias=False)),
        ("InstanceNorm2d(3, affine=True, bias=False)", torch.nn.InstanceNorm2d(3, affine=True, bias=False)),
        ("BatchNorm2d(3, affine=False, bias=False)", torch.nn.BatchNorm2d(3, affine=False, bias=False)),
    ]:
        built = nndsl.build(f"model M(x: [N, 3, 4, 4]) {{ {call} }}")
        assert [k.split(".", 1)[1] for k in built.state_dict()] == list(module.state_dict()), call
        result = nndsl.check_source(f"model M(x: [N, 3, 4, 4]) {{ {call} }}", "<agree>")
        assert result.program.models[0].param_count == sum(p.numel() for p in module.parameters())
    # torch's bias comes after device and dtype: by name only, as the checker has it
    assert "E104" in codes("model M(x: [N, 3, 4, 4]) { BatchNorm2d(3, 1e-5, 0.1, True, True, False) }")


def _raises(fn) -> bool:
    try:
        fn()
    except (RuntimeError, ValueError):
        return True
    return False


@pytest.mark.parametrize(
    ("call", "shape", "module"),
    [
        ("BatchNorm1d(3)", [1, 3], lambda: torch.nn.BatchNorm1d(3)),
        ("BatchNorm1d(3, eps=0.0)", [4, 3], lambda: torch.nn.BatchNorm1d(3, eps=0.0)),
        ("BatchNorm2d(3, eps=-1.0)", [2, 3, 2, 2], lambda: torch.nn.BatchNorm2d(3, eps=-1.0)),
        (
            "BatchNorm1d(3, track_running_stats=False)",
            [1, 3],
            lambda: torch.nn.BatchNorm1d(3, track_running_stats=False),
        ),
        (
            "BatchNorm1d(3, eps=0.0, track_running_stats=False)",
            [4, 3],
            lambda: torch.nn.BatchNorm1d(3, eps=0.0, track_running_stats=False),
        ),
        ("BatchNorm1d(3)", [4, 3], lambda: torch.nn.BatchNorm1d(3)),
    ],
)
def test_batch_norm_problems_of_training_only_are_warnings(call, shape, module):
    """W309 where torch raises in training mode and runs in eval mode; E207 where it raises in both."""
    x = torch.randn(*shape)
    in_training = _raises(lambda: module().train()(x))
    in_eval = _raises(lambda: module().eval()(x))
    found = codes(f"model M(x: [{', '.join(map(str, shape))}]) {{ {call} }}")
    if in_eval:
        assert "E207" in found or "E107" in found
    elif in_training:
        assert found == ["W309"]
    else:
        assert found == []


def test_a_train_section_refuses_what_torch_cannot_train(tmp_path):
    model = "model M(x: [1, 4]) { Linear(4, 3) -> BatchNorm1d(3) }\n"
    train = 'train M {\n    data = csv("d.csv", target="y")\n    loss = CrossEntropyLoss()\n}\n'
    assert codes(model) == ["W309"]
    found = codes(model + train)
    assert "E207" in found and "W309" in found
    # an ONNX export (eval mode) of the batch-1 declaration goes ahead
    spec = tmp_path / "m.nn"
    spec.write_text(model)
    out = tmp_path / "m.onnx"
    pytest.importorskip("onnxruntime")
    nndsl.export_onnx(spec, out)
    assert out.exists()


# (layer, input shape): where the checker is stricter than torch on purpose or torch fails inside
ZERO_SIZE_EXCEPTIONS = {
    "BatchNorm",  # 0 channels against num_features=C: a spec mistake, though torch's empty batch norm runs
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "TransformerEncoderLayer",  # 0 features against d_model: likewise
}


def _registry_rows(exclude=frozenset()):
    import re

    from nndsl.layers import REGISTRY

    for name, layer in sorted(REGISTRY.items()):
        for call, given, expected in layer.examples:
            match = re.fullmatch(r"\[([\w, ]*)\]", given)
            if expected.startswith(("E", "W")) or not match or name in exclude:
                continue
            sizes = [s.strip() for s in match.group(1).split(",") if s.strip()]
            dims = [int(s) if s.isdigit() else (2 if s == "N" else 6) for s in sizes]
            yield pytest.param(call, dims, id=f"{call} on {given}")


@pytest.mark.parametrize(("call", "dims"), list(_registry_rows(ZERO_SIZE_EXCEPTIONS)))
def test_zero_sizes_are_accepted_exactly_where_torch_runs(call, dims):
    """Each dim of each layer's accepted rows set to 0 in turn: the checker accepts the input
    exactly where torch's module runs on it (eval mode)."""
    declared = ", ".join(map(str, dims))
    if not nndsl.check_source(f"model M(x: [{declared}]) {{ {call} }}", "<agree>").ok:
        return  # the row needs its symbolic sizes
    module = nndsl.build(f"model M(x: [{declared}]) {{ {call} }}").eval()
    for i in range(len(dims)):
        zeroed = dims[:i] + [0] + dims[i + 1 :]
        result = nndsl.check_source(f"model M(x: [{', '.join(map(str, zeroed))}]) {{ {call} }}", "<agree>")
        try:
            with torch.no_grad():
                module(torch.randn(*zeroed))
            runs = True
        except (RuntimeError, ValueError, IndexError, AssertionError):
            runs = False
        assert result.ok == runs, (zeroed, [(d.code, d.message) for d in result.diagnostics])


DTYPES = ["bool", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _outcome(module, x) -> str:
    """torch's result dtype for ``x`` in training and in eval mode, or "raises" if either fails."""
    dtypes = set()
    for training in (True, False):
        module.train(training)
        try:
            with torch.no_grad():
                y = module(x)
        except (RuntimeError, ValueError, AssertionError, IndexError, NotImplementedError):
            return "raises"
        dtypes.add(str(y.dtype).removeprefix("torch."))
    return dtypes.pop() if len(dtypes) == 1 else "raises"


# TransformerEncoder is float32 only on purpose (E204): its layer argument is emitted in float32
@pytest.mark.parametrize(("call", "dims"), list(_registry_rows(exclude={"TransformerEncoder"})))
def test_each_dtype_is_accepted_exactly_where_torch_runs(call, dims):
    """Each layer's rows on every dtype a spec can declare: the checker accepts the input where
    torch's module (its parameters in that dtype, for a floating-point input) runs in training
    and in eval mode, with torch's result dtype."""
    import copy

    declared = ", ".join(map(str, dims))
    if not nndsl.check_source(f"model M(x: [{declared}]) {{ {call} }}", "<agree>").ok:
        return  # the row needs its symbolic sizes
    module = nndsl.build(f"model M(x: [{declared}]) {{ {call} }}")
    for dtype in DTYPES:
        torch_dtype = getattr(torch, dtype)
        result = nndsl.check_source(f"model M(x: {dtype}[{declared}]) {{ {call} }}", "<agree>")
        floating = torch_dtype.is_floating_point
        torch_module = copy.deepcopy(module).to(torch_dtype) if floating else module
        x = (torch.rand(dims) * 4).to(torch_dtype)  # indices 0..3 for an Embedding
        want = _outcome(torch_module, x)
        got = result.program.models[0].output.dtype if result.ok else "raises"
        assert got == want, (dtype, [(d.code, d.message) for d in result.diagnostics])


@pytest.mark.parametrize("pool", ["MaxPool1d", "AvgPool1d"])
@pytest.mark.parametrize(
    "args",
    ["2, padding=1", "3, 2, padding=1", "2", "3, 2", "4, 3, padding=2", "5, 4, padding=1", "3, 1, padding=1"],
)
def test_ceil_mode_on_a_symbolic_size_is_torchs_count_for_every_size(pool, args):
    """The output size with ceil_mode is one expression in D that gives torch's size for each D
    (torch drops a last window that would start in the right padding), with no warning."""
    from nndsl.shapes import Sym, substitute

    result = nndsl.check_source(f"model M(x: [N, C, D]) {{ {pool}({args}, ceil_mode=True) }}", "<agree>")
    assert result.ok and not result.diagnostics, [(d.code, d.message) for d in result.diagnostics]
    size = result.program.models[0].output.shape.dims[-1]
    module = eval(f"torch.nn.{pool}({args}, ceil_mode=True)", {"torch": torch})  # noqa: S307 - fixed texts
    for d in range(4, 30):
        try:
            want = module(torch.zeros(1, 1, d)).shape[-1]
        except RuntimeError:
            continue
        assert substitute(size, {Sym("D"): d}) == want, (d, str(size))
