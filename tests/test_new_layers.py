"""Rules of the padding, shuffling, stochastic-depth and other newer layers, against torch itself
on grids of shapes and arguments the example rows and the drawn cases leave out."""

from __future__ import annotations

import itertools

import pytest

import nndsl

torch = pytest.importorskip("torch")
F = torch.nn.functional


def checked(call: str, shape: tuple[int, ...], dtype: str = "float32"):
    result = nndsl.check_source(f"model M(x: {dtype}[{', '.join(map(str, shape))}]) {{ {call} }}", "<new>")
    return tuple(result.program.models[0].output.shape.dims) if result.ok else None


def torch_shape(fn, shape):
    try:
        return tuple(fn(torch.zeros(shape)).shape)
    except (RuntimeError, ValueError, NotImplementedError, IndexError):
        return None


_STEMS = {
    "constant": "ConstantPad",
    "reflect": "ReflectionPad",
    "replicate": "ReplicationPad",
    "circular": "CircularPad",
}


@pytest.mark.parametrize("mode", sorted(_STEMS))
def test_padding_agrees_with_torch_on_every_small_shape(mode):
    """Every padding in {-3, -1, 0, 1, 3} of one dim on inputs of rank 1 to 3 with sizes 0 to 3
    (circular padding: no crops, which nndsl refuses)."""
    seen = 0
    for rank in (1, 2, 3):
        for shape in itertools.product(range(4), repeat=rank):
            for pad in itertools.product((-3, -1, 0, 1, 3), repeat=2):
                if mode == "circular" and min(pad) < 0:
                    continue
                extra = (0.5,) if mode == "constant" else ()
                module = getattr(torch.nn, f"{_STEMS[mode]}1d")(pad, *extra)
                want = torch_shape(module, shape)
                call = f"{_STEMS[mode]}1d({pad}{', 0.5' if extra else ''})"
                assert checked(call, shape) == want, (mode, shape, pad)
                seen += want is not None
    assert seen > 50


def test_circular_padding_refuses_a_crop():
    result = nndsl.check_source("model M(x: [2, 3, 5]) { CircularPad1d((-1, 2)) }", "<new>")
    (error,) = result.errors
    assert error.code == "E203" and "negative padding" in error.message


def test_pixel_unshuffle_undoes_pixel_shuffle_on_five_dims():
    assert checked("PixelUnshuffle(2)", (7, 2, 3, 4, 6)) == tuple(
        torch.nn.PixelUnshuffle(2)(torch.zeros(7, 2, 3, 4, 6)).shape
    )
    assert checked("PixelUnshuffle(2) -> PixelShuffle(2)", (2, 3, 4, 6)) == (2, 3, 4, 6)


def test_stochastic_depth_drops_whole_rows_and_scales_the_rest():
    module = nndsl.build("model M(x: [N, 4, 3]) { StochasticDepth(0.5, 'row') }")
    torch.manual_seed(0)
    x = torch.ones(400, 4, 3)
    y = module.train()(x)
    per_row = y.flatten(1)
    assert set(per_row.unique().tolist()) == {0.0, 2.0}  # kept rows scaled by 1 / (1 - p)
    assert all(len(set(row.tolist())) == 1 for row in per_row)  # a row is dropped whole
    assert 0.35 < (per_row[:, 0] == 0).float().mean() < 0.65
    assert torch.equal(module.eval()(x), x)


def test_batch_mode_drops_the_whole_batch_at_once():
    module = nndsl.build("model M(x: [N, 4]) { StochasticDepth(0.5, mode='batch') }").train()
    torch.manual_seed(1)
    outcomes = {tuple(module(torch.ones(8, 4)).unique().tolist()) for _ in range(40)}
    assert outcomes == {(0.0,), (2.0,)}


def test_drop_path_is_stochastic_depth_by_row_in_the_emitted_module():
    from nndsl.backends.torch_module import emit_program

    result = nndsl.check_source("model M(x: [N, 8]) { DropPath(0.1) -> DropPath(0.2, mode='batch') }", "m.nn")
    source = emit_program(result.program)
    assert 'StochasticDepth(0.1, "row")' in source and 'StochasticDepth(0.2, "batch")' in source
    assert source.count("class StochasticDepth(nn.Module):") == 1
    assert "torchvision" not in source.split('"""')[-1]  # no import of it


def test_a_model_named_like_the_helper_keeps_both_classes_apart():
    module = nndsl.build("model StochasticDepth(x: [N, 8]) { StochasticDepth(0.1, 'row') -> Linear(8, 2) }")
    assert module(torch.ones(3, 8)).shape == (3, 2)


@pytest.mark.parametrize(
    ("call", "shape"),
    [("GLU(1)", (2, 6, 3)), ("GLU", (4, 8)), ("Softmin(dim=0)", (3, 2)), ("Hardtanh(-0.5, 2.0)", (4,))],
)
def test_the_emitted_activations_compute_torchs_values(call, shape):
    module = nndsl.build(f"model M(x: [{', '.join(map(str, shape))}]) {{ {call} }}")
    x = torch.randn(shape)
    name, _, rest = call.partition("(")
    args = eval(f"({rest[:-1]},)") if rest[:-1] and "=" not in rest else ()
    kwargs = {"dim": 0} if "dim=0" in call else {}
    torch.testing.assert_close(module(x), getattr(torch.nn, name)(*args, **kwargs)(x))
