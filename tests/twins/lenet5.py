"""LeNet-5 (LeCun et al., 1998) on 32x32 grey images, as specs/zoo/lenet5.nn writes it."""

from __future__ import annotations

from torch import nn

REFERENCE = 61_706


def build() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Tanh(),
        nn.Linear(120, 84), nn.Tanh(),
        nn.Linear(84, 10),
    )  # fmt: skip
