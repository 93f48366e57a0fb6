"""MobileNetV3-Large written by hand after torchvision's mobilenetv3.py (width 1.0, 1000 classes):
the torch twin of specs/zoo/mobilenet_v3_large.nn, its parameters registered in the spec's order."""

from __future__ import annotations

from torch import Tensor, nn

REFERENCE = 5_483_032  # torchvision.models.mobilenet_v3_large

#: kernel, expanded channels, out channels, squeeze channels (0: no squeeze-excitation), hard-swish, stride
SETTINGS = [
    (3, 16, 16, 0, False, 1),
    (3, 64, 24, 0, False, 2),
    (3, 72, 24, 0, False, 1),
    (5, 72, 40, 24, False, 2),
    (5, 120, 40, 32, False, 1),
    (5, 120, 40, 32, False, 1),
    (3, 240, 80, 0, True, 2),
    (3, 200, 80, 0, True, 1),
    (3, 184, 80, 0, True, 1),
    (3, 184, 80, 0, True, 1),
    (3, 480, 112, 120, True, 1),
    (3, 672, 112, 168, True, 1),
    (5, 672, 160, 168, True, 2),
    (5, 960, 160, 240, True, 1),
    (5, 960, 160, 240, True, 1),
]


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=0.001, momentum=0.01)


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, hs: bool = True) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return nn.Sequential(conv, _norm(cout), nn.Hardswish() if hs else nn.ReLU())


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(scale))))
        return x * scale


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, kernel: int, expanded: int, out: int, squeeze: int, hs: bool, stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(conv_bn(cin, expanded, hs=hs))
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, hs=hs))
        if squeeze:
            layers.append(SqueezeExcitation(expanded, squeeze))
        layers += [nn.Conv2d(expanded, out, 1, bias=False), _norm(out)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == out

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3Large(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        blocks: list[nn.Module] = [conv_bn(3, 16, 3, 2)]
        cin = 16
        for kernel, expanded, out, squeeze, hs, stride in SETTINGS:
            blocks.append(InvertedResidual(cin, kernel, expanded, out, squeeze, hs, stride))
            cin = out
        blocks.append(conv_bn(160, 960))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Linear(960, 1280), nn.Hardswish(), nn.Dropout(0.2, inplace=True), nn.Linear(1280, 1000)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


def build() -> nn.Module:
    return MobileNetV3Large()
