"""Forward+backward of modules from ``nndsl.build`` versus hand-written ``nn.Sequential`` twins.

For each spec, the hand-written twin holds the same layers and gets the built module's weights
(``load_state_dict``, matching parameters and buffers by order). A sanity check first requires
bit-identical outputs and gradients on one batch. Then one training step (zero_grad, forward,
cross-entropy, backward) on a batch of 64 is timed in blocks of several steps; blocks alternate
between the two modules, ABBA-ordered, after a warm-up, for a fixed time budget.
Figures: median seconds per step of each, and the median of the per-round ratios built/hand,
which should be within 3% of 1. torch runs on one thread.
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict

from _common import SPECS, Figure, ensure_importable, fmt_s, median, print_table

ensure_importable()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402, N812
from torch import nn  # noqa: E402

import nndsl  # noqa: E402

BATCH = 64
TOLERANCE = 0.03

CNN_SPEC = """\
model CNN(x: [N, 3, 32, 32]) {
    Conv2d(3, 16, 3, 1, 1) -> ReLU -> MaxPool2d(2, 2)
    -> Flatten
    -> Linear(4096, 120) -> ReLU
    -> Linear(120, 84) -> ReLU
    -> Linear(84, 10)
}
"""


def fashion_mlp_hand() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 10),
    )


def cnn_hand() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(4096, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def cases():
    """(name, built module, hand-written module, input shape) for each benchmarked spec."""
    return [
        (
            "FashionMLP",
            nndsl.build(SPECS / "fashion_mlp.nn", model="FashionMLP"),
            fashion_mlp_hand(),
            (BATCH, 1, 28, 28),
        ),
        ("CNN", nndsl.build(CNN_SPEC, model="CNN"), cnn_hand(), (BATCH, 3, 32, 32)),
    ]


def copy_weights(built: nn.Module, hand: nn.Module) -> None:
    """Give ``hand`` the built module's parameters and buffers, matched by order and shape."""
    source = built.state_dict()
    keys = list(hand.state_dict())
    if len(keys) != len(source):
        raise RuntimeError(f"state dicts differ in length: built {len(source)}, hand {len(keys)}")
    mapped = OrderedDict()
    for key, (built_key, value) in zip(keys, source.items()):
        if hand.state_dict()[key].shape != value.shape:
            raise RuntimeError(f"{built_key} {tuple(value.shape)} does not fit {key}")
        mapped[key] = value
    hand.load_state_dict(mapped)


def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    out = model(x)
    F.cross_entropy(out, y).backward()
    return out


def identical(built: nn.Module, hand: nn.Module, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Same outputs and same gradients, bit for bit, on one batch."""
    out_built = step(built, x, y).detach()
    out_hand = step(hand, x, y).detach()
    grads_built = [p.grad for p in built.parameters()]
    grads_hand = [p.grad for p in hand.parameters()]
    return (
        torch.equal(out_built, out_hand)
        and len(grads_built) == len(grads_hand)
        and all(torch.equal(a, b) for a, b in zip(grads_built, grads_hand))
    )


def block(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Seconds per step over ``steps`` consecutive steps."""
    start = time.perf_counter()
    for _ in range(steps):
        step(model, x, y)
    return (time.perf_counter() - start) / steps


def run(seconds: float = 20.0, block_s: float = 0.04) -> list[Figure]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    figures: list[Figure] = []
    for name, built, hand, shape in cases():
        copy_weights(built, hand)
        x = torch.randn(shape)
        y = torch.randint(0, 10, (BATCH,))
        same = identical(built, hand, x, y)
        figures.append(
            Figure(f"fwd+bwd {name}: built and hand give identical outputs and grads", str(same), "True", same)
        )

        for _ in range(3):  # warm-up: allocator, kernels' first-call setup
            block(built, x, y, 5)
            block(hand, x, y, 5)
        steps = max(1, round(block_s / block(hand, x, y, 5)))
        times = {"built": [], "hand": []}
        ratios = []
        deadline = time.perf_counter() + seconds
        rounds = 0
        while rounds < 20 or time.perf_counter() < deadline:
            order = ("built", "hand") if rounds % 2 == 0 else ("hand", "built")
            this = {which: block(built if which == "built" else hand, x, y, steps) for which in order}
            for which, t in this.items():
                times[which].append(t)
            ratios.append(this["built"] / this["hand"])
            rounds += 1
        ratio = median(ratios)
        ok = abs(ratio - 1) <= TOLERANCE
        figures += [
            Figure(f"fwd+bwd {name}: built, per step (median of {rounds} x {steps})", fmt_s(median(times["built"]))),
            Figure(f"fwd+bwd {name}: hand, per step (median of {rounds} x {steps})", fmt_s(median(times["hand"]))),
            Figure(f"fwd+bwd {name}: built / hand", f"{ratio:.3f}", f"{1 - TOLERANCE:.2f}..{1 + TOLERANCE:.2f}", ok),
        ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timing budget per model (default 20)")
    args = parser.parse_args()
    print_table(run(args.seconds))


if __name__ == "__main__":
    main()
