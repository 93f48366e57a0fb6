"""ShuffleNetV2 x1.0 written by hand after torchvision's shufflenetv2.py (1000 classes): the torch
twin of specs/zoo/shufflenet_v2.nn, its parameters registered in the spec's order."""

from __future__ import annotations

import torch
from torch import Tensor, nn

REFERENCE = 2_278_604  # torchvision.models.shufflenet_v2_x1_0


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)


def _branch(cin: int, out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, out, 1, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU(inplace=True),
        nn.Conv2d(out, out, 3, stride, 1, groups=out, bias=False),
        nn.BatchNorm2d(out),
        nn.Conv2d(out, out, 1, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, half, 1, bias=False),
                nn.BatchNorm2d(half),
                nn.ReLU(inplace=True),
            )
        self.branch2 = _branch(cin if stride > 1 else half, half, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], 24
        for out, repeats in [(116, 4), (232, 8), (464, 4)]:
            units = [InvertedResidual(cin, out, 2)] + [InvertedResidual(out, out, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            cin = out
        self.stages = nn.Sequential(*stages)
        self.conv5 = nn.Sequential(nn.Conv2d(464, 1024, 1, bias=False), nn.BatchNorm2d(1024), nn.ReLU(inplace=True))
        self.fc = nn.Linear(1024, 1000)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean([2, 3]))


def build() -> nn.Module:
    return ShuffleNetV2()
