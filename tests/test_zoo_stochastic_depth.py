"""EfficientNet-B0's stochastic depth (specs/zoo/efficientnet_b0.nn): torchvision's drop rates, and
random only in training mode. Counts, outputs against the twin and ONNX: tests/test_zoo.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import nndsl  # noqa: E402

HERE = Path(__file__).parent


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
