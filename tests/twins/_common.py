"""Pieces several twins share."""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: in training, drop the whole residual branch per sample
    ("row") or per batch ("batch") with probability p, scaling survivors by 1/(1-p); identity in eval."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class Permute(nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


def channels_last_norm(channels: int, eps: float = 1e-6) -> nn.Sequential:
    """LayerNorm over the channels of an [N, C, H, W] tensor (torchvision's LayerNorm2d)."""
    return nn.Sequential(Permute(0, 2, 3, 1), nn.LayerNorm(channels, eps=eps), Permute(0, 3, 1, 2))
