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
