"""MobileNetV3-Large, ShuffleNetV2 x1.0 and EfficientNet-B0 from specs/zoo/ against their hand-written
torch twins (tests/twins/): torchvision's parameter count, weights copied by position, equal
outputs in eval mode, and ONNX export verified against torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import nndsl  # noqa: E402

HERE = Path(__file__).parent
STEMS = ["mobilenet_v3_large", "shufflenet_v2", "efficientnet_b0"]


def twin(stem: str):
    spec = importlib.util.spec_from_file_location(f"twin_{stem}", HERE / "twins" / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copied(stem: str):
    """(nndsl's module, the twin with nndsl's weights), both in eval mode."""
    torch.manual_seed(0)
    built = nndsl.build(HERE.parent / "specs" / "zoo" / f"{stem}.nn").eval()
    for m in built.modules():  # running statistics other than the fresh 0 and 1
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    reference = twin(stem).build().eval()
    ours, theirs = built.state_dict(), reference.state_dict()
    assert len(ours) == len(theirs)
    for (key, value), (their_key, their_value) in zip(ours.items(), theirs.items()):
        assert value.shape == their_value.shape, (key, their_key)
        their_value.copy_(value)
    return built, reference


@pytest.mark.parametrize("stem", STEMS)
def test_the_spec_has_torchvisions_parameter_count(stem):
    result = nndsl.check_file(HERE.parent / "specs" / "zoo" / f"{stem}.nn")
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    module = twin(stem)
    assert result.program.models[0].param_count == module.REFERENCE
    assert sum(p.numel() for p in module.build().parameters()) == module.REFERENCE


@pytest.mark.parametrize("stem", STEMS)
def test_outputs_equal_the_twins_on_copied_weights(stem):
    built, reference = copied(stem)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(built(x), reference(x), rtol=1e-4, atol=1e-4)


def test_efficientnet_drops_its_residual_branches_only_while_training():
    built, _ = copied("efficientnet_b0")
    rates = [m.p for m in built.modules() if type(m).__name__ == "StochasticDepth"]
    # 0.2 * index / 16 for the blocks (of 16) with a residual branch, as torchvision's
    assert rates == pytest.approx([0.2 * i / 16 for i in (2, 4, 6, 7, 9, 10, 12, 13, 14)])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(built(x), built(x))  # eval mode: deterministic
        built.train()
        torch.manual_seed(0)
        first = built(x)
        torch.manual_seed(1)
        assert not torch.equal(first, built(x))


@pytest.mark.parametrize("stem", STEMS)
def test_onnx_export_is_verified_against_torch(stem, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / f"{stem}.onnx"
    result = nndsl.export_onnx(HERE.parent / "specs" / "zoo" / f"{stem}.nn", out)
    assert result.verified is not None and result.verified.reference == "torch"
    assert out.stat().st_size > 1_000_000
