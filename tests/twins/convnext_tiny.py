"""ConvNeXt-Tiny (Liu et al., 2022) for 224x224 RGB images, as torchvision's convnext_tiny: a 4x4
patch stem, four stages of ConvNeXt blocks (7x7 depthwise convolution, LayerNorm, an inverted MLP,
a learned layer scale, stochastic depth rising linearly to 0.1), downsampling between stages.

A block registers its layer scale first (the spec's Parameter statement heads the block), then
its layers, as torchvision's CNBlock does.
"""

from __future__ import annotations

import torch
from torch import nn

from twins._common import Permute, StochasticDepth, channels_last_norm

REFERENCE = 28_589_128  # torchvision.models.convnext_tiny

STAGES = ((96, 3), (192, 3), (384, 9), (768, 3))


class CNBlock(nn.Module):
    def __init__(self, dim: int, drop: float) -> None:
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute(0, 2, 3, 1),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute(0, 3, 1, 2),
        )
        self.stochastic_depth = StochasticDepth(drop, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.stochastic_depth(self.layer_scale * self.block(x))


class ConvNeXt(nn.Module):
    def __init__(self, classes: int = 1000, drop: float = 0.1) -> None:
        super().__init__()
        total = sum(depth for _, depth in STAGES)
        layers: list[nn.Module] = [nn.Conv2d(3, 96, 4, stride=4), channels_last_norm(96)]
        index = 0
        for stage, (dim, depth) in enumerate(STAGES):
            for _ in range(depth):
                layers.append(CNBlock(dim, drop * index / (total - 1)))
                index += 1
            if stage + 1 < len(STAGES):
                layers += [channels_last_norm(dim), nn.Conv2d(dim, 2 * dim, 2, stride=2)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), channels_last_norm(768), nn.Flatten(), nn.Linear(768, classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


def build() -> nn.Module:
    return ConvNeXt()
