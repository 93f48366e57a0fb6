"""Time to check ResNets in nndsl, against torch building the same network on the meta device.

Two parts, both in process, torch on one thread, a warm-up before timing, ``gc.collect()``
(untimed) before every timed call:

* **ResNet-50** (``specs/zoo/resnet50.nn``). Each round times, in an order that rotates from
  round to round: nndsl check (``check_file``: parse + shape check, the imported blocks file
  included) and check + compile (``compile_spec``: the same plus emitting the Python source), each
  the mean of several back-to-back runs as they are short; the reference, a hand-written
  torchvision-style ResNet-50 built and run once forward under ``torch.device("meta")`` (no weights
  are allocated); and, for information, the class nndsl emitted, built and run the same way.
  Figures: median times, and the medians over rounds of the per-round ratios torch / nndsl.
* **Check time as the network deepens**: ResNet-18, 34, 50, 101 and 152 written as specs that
  import ``specs/zoo/resnet_blocks.nn`` (a ``for`` over the stages with a repetition count, as
  ``resnet50.nn`` does) and checked with ``check_source``; depths interleaved, the order reversed
  every round, each timed often enough to cover about as many layers as ResNet-152. Figures: time
  and time per layer (the checker's layer count) at each depth, the median over rounds of
  (time per layer at 152) / (time per layer at 18), which is 1 when the time is proportional to
  the layer count and below 1 when a fixed cost is spread over more layers, and a least-squares
  fit time = a + b * layers with its R^2.
"""

from __future__ import annotations

import argparse
import warnings

from _common import SPECS, Figure, ensure_importable, fmt_s, median, print_table, timed

ensure_importable()

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch's "Failed to initialize NumPy" when numpy is absent
    import torch  # noqa: E402
from torch import nn  # noqa: E402

import nndsl  # noqa: E402

ZOO = SPECS / "zoo"
RESNET50_SPEC = ZOO / "resnet50.nn"
RESNET50_PARAMS = 25_557_032
TARGET_CHECK_RATIO = 10.0
TARGET_COMPILE_RATIO = 5.0
TARGET_PER_LAYER_RATIO = 1.5
SHORT_RUNS = 5  # back-to-back runs of each nndsl call per round

# depth -> (block, blocks per stage, expansion, torchvision's parameter count)
RESNETS = {
    18: ("BasicBlock", (2, 2, 2, 2), 1, 11_689_512),
    34: ("BasicBlock", (3, 4, 6, 3), 1, 21_797_672),
    50: ("Bottleneck", (3, 4, 6, 3), 4, 25_557_032),
    101: ("Bottleneck", (3, 4, 23, 3), 4, 44_549_160),
    152: ("Bottleneck", (3, 8, 36, 3), 4, 60_192_808),
}


# ---------------------------------------------------------------- the reference: torchvision's ResNet-50


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        width = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != width:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes, stages = 64, []
        for planes, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            stage = [Bottleneck(inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            stage += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        # torchvision's initialisation, kept so the reference does what torchvision's resnet50() does
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------- timed calls


def checked(result: nndsl.Result) -> nndsl.Result:
    if not result.ok:
        raise RuntimeError(f"spec failed to check: {result.errors[:3]}")
    return result


def meta_build_and_forward(cls) -> nn.Module:
    with torch.device("meta"):
        model = cls()
        out = model(torch.empty(1, 3, 224, 224))
    if tuple(out.shape) != (1, 1000):
        raise RuntimeError(f"{cls.__name__} gave {tuple(out.shape)}, not (1, 1000)")
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def emitted_class(spec, name: str) -> type:
    """The model class from nndsl's emitted source, loaded once (untimed), as ``nndsl.build`` does."""
    namespace: dict = {}
    exec(compile(nndsl.compile_spec(spec), f"<nndsl {name}>", "exec"), namespace)
    return namespace[name]


# ---------------------------------------------------------------- part 1: ResNet-50 against torch on meta


def run_resnet50(rounds: int) -> list[Figure]:
    emitted = emitted_class(RESNET50_SPEC, "ResNet50")
    for cls in (ResNet50, emitted):  # the reference must be the same network, and so must nndsl's
        count = parameter_count(meta_build_and_forward(cls))
        if count != RESNET50_PARAMS:
            raise RuntimeError(f"{cls.__qualname__} has {count:,} parameters, not {RESNET50_PARAMS:,}")
    calls = {
        "check": (lambda: checked(nndsl.check_file(RESNET50_SPEC)), SHORT_RUNS),
        "check+compile": (lambda: nndsl.compile_spec(RESNET50_SPEC), SHORT_RUNS),
        "torch": (lambda: meta_build_and_forward(ResNet50), 1),
        "emitted": (lambda: meta_build_and_forward(emitted), 1),
    }
    for fn, _ in calls.values():  # warm-up: the parser, torch's meta kernels
        fn()
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, runs = calls[name]
            times[name].append(timed(fn, runs))

    def ratio(a: str, b: str) -> float:
        return median([x / y for x, y in zip(times[a], times[b])])

    check_ratio, compile_ratio = ratio("torch", "check"), ratio("torch", "check+compile")
    what = f"(median of {rounds})"
    return [
        Figure(f"zoo resnet50: nndsl check {what}", fmt_s(median(times["check"]))),
        Figure(f"zoo resnet50: nndsl check + compile {what}", fmt_s(median(times["check+compile"]))),
        Figure(f"zoo resnet50: torch meta build + forward {what}", fmt_s(median(times["torch"]))),
        Figure(f"zoo resnet50: nndsl-emitted, meta build + forward {what}", fmt_s(median(times["emitted"]))),
        Figure(
            "zoo resnet50: torch meta / nndsl check",
            f"{check_ratio:.1f}",
            f">= {TARGET_CHECK_RATIO:g}",
            check_ratio >= TARGET_CHECK_RATIO,
        ),
        Figure(
            "zoo resnet50: torch meta / nndsl check + compile",
            f"{compile_ratio:.1f}",
            f">= {TARGET_COMPILE_RATIO:g}",
            compile_ratio >= TARGET_COMPILE_RATIO,
        ),
        Figure("zoo resnet50: nndsl-emitted / torch, meta build + forward", f"{ratio('emitted', 'torch'):.2f}"),
    ]


# ---------------------------------------------------------------- part 2: check time against depth


def resnet_spec(depth: int) -> str:
    """ResNet-``depth`` for 224x224 images and 1000 classes, in the form of ``resnet50.nn``."""
    block, counts, expansion, _ = RESNETS[depth]
    stages = ", ".join(f"({p}, {n}, {s})" for p, n, s in zip((64, 128, 256, 512), counts, (1, 2, 2, 2)))
    return f"""\
from "resnet_blocks.nn" import {block}

model ResNet{depth}(images: [N, 3, 224, 224]) {{
    Conv2d(3, 64, 7, stride=2, padding=3, bias=False) -> BatchNorm2d(64) -> ReLU
    -> MaxPool2d(3, stride=2, padding=1)
    -> for planes, blocks, stride in [{stages}] {{
        {block}(planes, stride) -> {block}(planes) * (blocks - 1)
    }}
    -> AdaptiveAvgPool2d(1) -> Flatten -> Linear({512 * expansion}, 1000)
}}
"""


def run_depths(rounds: int) -> list[Figure]:
    # a name inside specs/zoo so the spec's relative import finds the blocks file; no file is written
    name = str(ZOO / "_bench_resnet.nn")
    texts = {depth: resnet_spec(depth) for depth in RESNETS}
    layers = {}
    for depth, text in texts.items():  # also the warm-up
        model = checked(nndsl.check_source(text, name)).program.models[0]
        params = sum(layer.params for layer in model.layers)
        if params != RESNETS[depth][3]:
            raise RuntimeError(f"generated ResNet-{depth} has {params:,} parameters, not {RESNETS[depth][3]:,}")
        layers[depth] = len(model.layers)
    depths = list(RESNETS)
    biggest = max(layers.values())
    times: dict[int, list[float]] = {d: [] for d in depths}
    for r in range(rounds):
        for depth in depths if r % 2 == 0 else depths[::-1]:
            # small models are checked several times back to back, so every depth gets about the
            # same timed span and a scheduler hiccup weighs on each alike
            runs = max(1, biggest // layers[depth])
            times[depth].append(timed(lambda text=texts[depth]: nndsl.check_source(text, name), runs))
    small, big = depths[0], depths[-1]
    per_layer_ratio = median([(b / layers[big]) / (s / layers[small]) for s, b in zip(times[small], times[big])])

    # least squares over the medians: time = a + b * layers
    xs = [layers[d] for d in depths]
    ys = [median(times[d]) for d in depths]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    intercept = my - slope * mx
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    r2 = 1 - residual / sum((y - my) ** 2 for y in ys)

    figures = [
        Figure(
            f"zoo check resnet{d}: {layers[d]} layers (median of {rounds})",
            f"{fmt_s(median(times[d]))}, {fmt_s(median(times[d]) / layers[d])}/layer",
        )
        for d in depths
    ]
    return figures + [
        Figure(
            f"zoo check: per-layer time, resnet{big} / resnet{small}",
            f"{per_layer_ratio:.2f}",
            f"<= {TARGET_PER_LAYER_RATIO:g}",
            per_layer_ratio <= TARGET_PER_LAYER_RATIO,
        ),
        Figure(
            "zoo check: fit t = a + b * layers",
            f"a = {fmt_s(intercept)}, b = {fmt_s(slope)}/layer, R^2 = {r2:.3f}",
        ),
    ]


def run(rounds: int = 15) -> list[Figure]:
    torch.set_num_threads(1)
    return run_resnet50(rounds) + run_depths(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds of each part (default 15)")
    args = parser.parse_args()
    print_table(run(args.rounds))


if __name__ == "__main__":
    main()
