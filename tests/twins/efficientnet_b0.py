"""EfficientNet-B0 written by hand after torchvision's efficientnet.py (1000 classes, stochastic
depth 0.2): the torch twin of specs/zoo/efficientnet_b0.nn, its parameters registered in the spec's
order. torchvision.ops.StochasticDepth is written out (torchvision is no dependency of the tests)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

REFERENCE = 5_288_548  # torchvision.models.efficientnet_b0

#: expand ratio, kernel, stride, input channels, output channels, layers
SETTINGS = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]


class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.SiLU(inplace=True))


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(nn.functional.silu(self.fc1(scale))))


class MBConv(nn.Module):
    def __init__(self, expand: int, kernel: int, stride: int, cin: int, out: int, drop: float) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if hidden != cin:
            layers.append(conv_bn(cin, hidden))
        layers.append(conv_bn(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(SqueezeExcitation(hidden, max(1, cin // 4)))
        layers += [nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(drop, "row")
        self.residual = stride == 1 and cin == out

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return x + self.stochastic_depth(y) if self.residual else y


class EfficientNetB0(nn.Module):
    def __init__(self, stochastic_depth: float = 0.2) -> None:
        super().__init__()
        blocks: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
        total, index = sum(s[-1] for s in SETTINGS), 0
        for expand, kernel, stride, cin, out, layers in SETTINGS:
            for i in range(layers):
                drop = stochastic_depth * index / total
                blocks.append(MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else out, out, drop))
                index += 1
        blocks.append(conv_bn(320, 1280))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(0.2, inplace=True), nn.Linear(1280, 1000))

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


def build() -> nn.Module:
    return EfficientNetB0()
