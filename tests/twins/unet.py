"""The small U-Net of specs/zoo/unet.nn (Ronneberger et al., 2015): four encoder scales, three
decoder steps joining the encoder's features by concatenation, a 1x1 convolution to 2 classes."""

from __future__ import annotations

import torch
from torch import nn

# double convolutions (bias-free weights and BatchNorm's affine): 1->16 2,512; 16->32 13,952;
# 32->64 55,552; 64->128 221,696; up steps (transposed + double): 32,832 + 110,848, 8,224 + 27,776,
# 2,064 + 6,976; head 34
REFERENCE = 482_466


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
    )  # fmt: skip


class Up(nn.Module):
    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(channels, channels // 2, 2, stride=2)
        self.mix = double_conv(channels, out)

    def forward(self, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.cat([self.up(low), skip], dim=1))


class UNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.ModuleList([double_conv(1, 16), double_conv(16, 32), double_conv(32, 64), double_conv(64, 128)])
        self.ups = nn.ModuleList([Up(128, 64), Up(64, 32), Up(32, 16)])
        self.head = nn.Conv2d(16, 2, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        e1 = self.down[0](image)
        e2 = self.down[1](self.pool(e1))
        e3 = self.down[2](self.pool(e2))
        x = self.down[3](self.pool(e3))
        for up, skip in zip(self.ups, (e3, e2, e1)):
            x = up(x, skip)
        return self.head(x)


def build() -> nn.Module:
    return UNet()
