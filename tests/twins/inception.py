"""The two Inception modules of specs/zoo/inception.nn (GoogLeNet's 3a and 3b, Szegedy et al.,
2014): four parallel branches over one input, concatenated along the channels."""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 562_618  # stem 5,376; block 3a 163,696; block 3b 388,736; Linear 4,810


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool: int) -> None:
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
        self.b3 = nn.Sequential(
            nn.Conv2d(cin, c3_reduce, 1), nn.ReLU(), nn.Conv2d(c3_reduce, c3, 3, padding=1), nn.ReLU()
        )
        self.b5 = nn.Sequential(
            nn.Conv2d(cin, c5_reduce, 1), nn.ReLU(), nn.Conv2d(c5_reduce, c5, 5, padding=2), nn.ReLU()
        )
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(cin, pool, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)


def build() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 192, 3, padding=1), nn.ReLU(),
        Inception(192, 64, 96, 128, 16, 32, 32),
        Inception(256, 128, 128, 192, 32, 96, 64),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(480, 10),
    )  # fmt: skip
