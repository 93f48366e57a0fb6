"""Epoch time of a generated training script against the PyTorch tutorial's loop and the compute floor.

The spec is ``specs/fashion_mlp.nn`` (the 784-512-512-10 MLP), trained with Adam(lr=1e-3) on
batches of 64, on synthetic FashionMNIST-sized data: 60,000 uint8 images of 28 x 28 with
learnable labels 0-9, written as gzipped IDX files with the runtime's ``write_idx``, and a
100-image t10k set, so that the script's final test evaluation costs next to nothing. All in one
process, torch on one thread. Four measurements, each two epochs of a model built afresh with
the round's seed, alternate in rounds (their order rotates from round to round):

* **script**: the generated training script (``load_script``) run through its ``main()`` with
  ``--data 'fashion_mnist("<dir>")' --optimizer 'Adam(lr=0.001)' --batch-size 64 --split 1.0
  --epochs 2 --no-progress --device cpu``; its epoch times are its own ``train_seconds`` in
  ``metrics.jsonl`` (the training pass only: loading, checkpoints, TensorBoard and the plot of the
  curves are outside them).
* **tutorial**: the PyTorch quickstart's loop on the same model class, seeded the same:
  ``DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)``, ``nn.CrossEntropyLoss()``,
  ``torch.optim.Adam(model.parameters(), lr=1e-3)``, ``model.train()``, then forward, loss,
  backward, step and zero_grad for each batch.
* **floor**: the script's forward/backward/step, its optimizer built by the script's own
  ``build_optimizer`` (torch's fused Adam), over batches gathered before the epoch is timed: the
  very batches the script trains on (the runtime's split and epoch permutations), so that its
  final loss equals the script's. What the script spends beyond the floor is data handling and
  bookkeeping.
* **floor, plain Adam**: the floor with the tutorial's ``torch.optim.Adam``, for information:
  its distance from the floor is what the fused optimizer saves.

Epoch 1 carries one-time costs (first allocations, the optimizer's state); the targets are on
epoch 2 and epoch 1 is reported apart. Figures: medians over rounds of the epoch times, the
medians of the per-round ratios script / tutorial (target <= 0.85) and script / floor (target
<= 1.05), and the final training losses (mean over epoch 2's batches), which must agree within
their spread over the rounds' seeds. When the floor target is missed (or with ``--profile``),
blocks of 100 batches of the script's own batch loop, of the floor and of their parts are timed
interleaved, to show where a batch's time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import json
import tempfile
import time
import warnings
from pathlib import Path

from _common import SPECS, Figure, ensure_importable, fmt_s, median, print_table

ensure_importable()

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch's "Failed to initialize NumPy" when numpy is absent
    import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import nndsl  # noqa: E402
from nndsl.backends.train_runtime.data import write_idx  # noqa: E402
from nndsl.backends.train_script import load_script  # noqa: E402

SPEC = SPECS / "fashion_mlp.nn"
N_TRAIN, N_TEST = 60_000, 100
BATCH = 64
EPOCHS = 2  # epoch 1 is warm-up, reported apart; the targets are on epoch 2
LR = 1e-3
THREADS = 1
TARGET_TUTORIAL = 0.85
TARGET_FLOOR = 1.05
KINDS = ("script", "tutorial", "floor", "floor_plain")
NAMES = {
    "script": "script (generated, fused Adam)",
    "tutorial": "tutorial loop (DataLoader, Adam)",
    "floor": "floor (batches made before, fused Adam)",
    "floor_plain": "floor, plain Adam",
}
BLOCK = 100  # batches per timed block in the breakdown


# ---------------------------------------------------------------- data


def synthetic_fashion(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n uint8 images [n, 28, 28] and their labels 0-9 [n] (uint8), learnable but not easily.

    Each class has a template, a random 7x7 field scaled up to 28x28. An image is its class's
    template shifted by up to 3 pixels, blended with the unshifted template of a random class
    (the other's weight uniform in [0, 1)); pixels of the blend at or below 0.5 are background
    (0, as about half of FashionMNIST's are), the others 30% blend and 70% uniform noise. The
    pixels' mean is 0.28 on a 0-1 scale (FashionMNIST's: 0.29). The class lies in which template
    is shifted, so no pixel gives it away: the MLP's mean training loss is about 0.6 over the
    first epoch and about 0.34 over the second.
    """
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(10, 1, 7, 7, generator=g)
    templates = nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    labels = torch.randint(0, 10, (n,), generator=g)
    shifts = torch.randint(-3, 4, (n, 2), generator=g)
    images = torch.empty(n, 28, 28)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            rows = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().squeeze(1)
            images[rows] = templates.roll((dy, dx), dims=(1, 2))[labels[rows]]
    others = torch.randint(0, 10, (n,), generator=g)
    weight = torch.rand(n, 1, 1, generator=g)
    images.mul_(1 - weight).add_(weight * templates[others])
    background = images <= 0.5
    images.mul_(0.3).add_(torch.rand(n, 28, 28, generator=g), alpha=0.7).masked_fill_(background, 0)
    return images.mul_(255).to(torch.uint8), labels.to(torch.uint8)


def write_dataset(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The four FashionMNIST IDX files, gzipped, in root; returns the training set as the script
    makes it: x float32 [n, 1, 28, 28] in [0, 1], y int64."""
    images, labels = synthetic_fashion(N_TRAIN + N_TEST, seed=1234)
    for prefix, part in (("train", slice(0, N_TRAIN)), ("t10k", slice(N_TRAIN, None))):
        write_idx(str(root / f"{prefix}-images-idx3-ubyte.gz"), images[part].numpy())
        write_idx(str(root / f"{prefix}-labels-idx1-ubyte.gz"), labels[part].numpy())
    x = images[:N_TRAIN].float().div_(255.0).unsqueeze(1)
    return x, labels[:N_TRAIN].long()


# ---------------------------------------------------------------- the four measurements


def mean_loss(batch_losses: list) -> float:
    """The epoch's training loss as the script computes it: batch means weighted by their rows."""
    total = sum(loss.double().item() * rows for loss, rows in batch_losses)
    return total / sum(rows for _, rows in batch_losses)


def script_argv(root: Path, out_dir: Path, seed: int) -> list[str]:
    return [
        "--data", f"fashion_mnist({json.dumps(str(root))})",
        "--optimizer", f"Adam(lr={LR})",
        "--batch-size", str(BATCH),
        "--split", "1.0",
        "--epochs", str(EPOCHS),
        "--seed", str(seed),
        "--device", "cpu",
        "--out-dir", str(out_dir),
        "--metrics", "accuracy",
        "--no-progress",
    ]  # fmt: skip


def run_script(script, root: Path, out_dir: Path, seed: int) -> tuple[list[float], float]:
    """Epoch seconds (its own train_seconds) and final training loss of the generated script."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = script.main(script_argv(root, out_dir, seed))
    if code != 0:
        raise RuntimeError(f"the training script exited with {code}:\n{printed.getvalue()}")
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["train_seconds"] for r in records], records[-1]["train_loss"]


def run_tutorial(script, x, y, seed: int) -> tuple[list[float], float]:
    """The PyTorch quickstart's training loop, timed per epoch."""
    torch.manual_seed(seed)
    model = script.FashionMLP()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    dataloader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    seconds, losses = [], []
    for _ in range(EPOCHS):
        gc.collect()
        batch_losses = []
        start = time.perf_counter()
        model.train()
        for inputs, targets in dataloader:
            pred = model(inputs)
            loss = loss_fn(pred, targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            batch_losses.append((loss.detach(), len(targets)))
        seconds.append(time.perf_counter() - start)
        losses.append(mean_loss(batch_losses))
    return seconds, losses[-1]


def script_order(x, y, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The training set as the script holds it and each epoch's sample order, made as the
    runtime makes them: --split 1.0 still shuffles the data once (a generator seeded with the
    seed), then each epoch draws a permutation from a second generator seeded the same."""
    split = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    shuffle = torch.Generator().manual_seed(seed)
    orders = [torch.randperm(len(x), generator=shuffle) for _ in range(EPOCHS)]
    return x[split], y[split], orders


def make_batches(x, y, order: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.index_select(0, index), y.index_select(0, index)) for index in order.split(BATCH)]


def run_floor(script, x, y, seed: int, plain: bool) -> tuple[list[float], float]:
    """Forward, loss, backward and step over the script's batches, made before each epoch is timed."""
    torch.manual_seed(seed)
    model = script.FashionMLP()
    parameters = [p for p in model.parameters() if p.requires_grad]
    if plain:
        optimizer = torch.optim.Adam(parameters, lr=LR)
    else:
        optimizer, _ = script.build_optimizer(f"Adam(lr={LR})", parameters, None, script.parse_call)
    loss_fn = nn.CrossEntropyLoss()
    x, y, orders = script_order(x, y, seed)
    seconds, losses = [], []
    for order in orders:
        batches = make_batches(x, y, order)
        gc.collect()
        batch_losses = []
        start = time.perf_counter()
        model.train()
        for inputs, targets in batches:
            optimizer.zero_grad(set_to_none=True)
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
            loss.backward()
            optimizer.step()
            batch_losses.append((loss.detach(), len(targets)))
        seconds.append(time.perf_counter() - start)
        losses.append(mean_loss(batch_losses))
        del batches
    return seconds, losses[-1]


# ---------------------------------------------------------------- where a batch's time goes


def breakdown(script, root: Path, out_dir: Path, rounds: int = 10) -> str:
    """Where a batch's time goes. Blocks of BLOCK batches, interleaved (the order reversed every
    round), medians per batch: the script's own batch loop (the Trainer that main() builds, its
    run_batches), the floor on the same model and data, the floor's parts, and what the script's
    loop does beyond the floor, each timed alone with the script's own functions."""
    args = script.parse_args(script_argv(root, out_dir, 0))
    script.seed_everything(args.seed, args.deterministic)
    splits = script.load_data(args)
    cpu = torch.device("cpu")
    trainer = script.Trainer(
        args, script.FashionMLP, splits, script.parse_call, cpu, script.DistContext(), script.StopRequest()
    )
    model, optimizer, loss_fn = trainer.model, trainer.optimizer, trainer.loss_fn
    x, y = trainer.train_x, trainer.train_y
    order = torch.randperm(len(x))
    indices = list(order.split(BATCH))
    batches = make_batches(x, y, order)
    # the optimizer steps alone run on a copy, so that the trained model is not disturbed
    twin = copy.deepcopy(model)
    fused, _ = script.build_optimizer(f"Adam(lr={LR})", list(twin.parameters()), None, script.parse_call)
    plain = torch.optim.Adam(twin.parameters(), lr=LR)
    outputs = twin(batches[0][0])
    loss = loss_fn(outputs, batches[0][1])
    loss.backward()
    outputs = outputs.detach()

    def floor(start: int) -> None:
        for inputs, targets in batches[start : start + BLOCK]:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(inputs), targets).backward()
            optimizer.step()

    def forward_backward(start: int) -> None:
        for inputs, targets in batches[start : start + BLOCK]:
            model.zero_grad(set_to_none=True)
            loss_fn(model(inputs), targets).backward()

    def steps(which):
        def run_steps(start: int) -> None:
            for _ in range(BLOCK):
                which.step()

        return run_steps

    def script_loop(start: int) -> None:
        trainer.tally = script.EpochTally(start)
        trainer.run_batches(order, 1, start, start + BLOCK, None)

    def gather(start: int) -> None:
        for index in indices[start : start + BLOCK]:
            x.index_select(0, index)
            y.index_select(0, index)

    def bookkeeping(start: int) -> None:
        losses = []
        for batch in range(start, start + BLOCK):
            losses.append(loss.detach())
            into = trainer.predictions[batch * BATCH : (batch + 1) * BATCH]
            script.record_predictions("classification", outputs, into, 0.0)
            if (batch + 1) % script.DIVERGENCE_CHECK_EVERY == 0:
                script.first_nonfinite(losses[-script.DIVERGENCE_CHECK_EVERY :])

    parts = {
        "floor": floor,
        "script": script_loop,
        "forward_backward": forward_backward,
        "fused_step": steps(fused),
        "plain_step": steps(plain),
        "gather": gather,
        "bookkeeping": bookkeeping,
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    ratios = []
    for r in range(rounds + 1):  # round 0 is warm-up
        start = (r * BLOCK) % (len(indices) - BLOCK)
        this = {}
        for name in list(parts) if r % 2 else list(parts)[::-1]:
            begin = time.perf_counter()
            parts[name](start)
            this[name] = (time.perf_counter() - begin) / BLOCK
        if r:
            for name, seconds in this.items():
                times[name].append(seconds)
            ratios.append(this["script"] / this["floor"])
    t = {name: median(values) for name, values in times.items()}
    extra = t["gather"] + t["bookkeeping"]
    rows = [
        ("floor: zero_grad, forward, loss, backward, fused Adam step", fmt_s(t["floor"])),
        ("  zero_grad, forward, loss, backward", fmt_s(t["forward_backward"])),
        ("  fused Adam step alone", f"{fmt_s(t['fused_step'])}  (plain Adam step alone: {fmt_s(t['plain_step'])})"),
        (
            "the script's batch loop (Trainer.run_batches)",
            f"{fmt_s(t['script'])}  ({median(ratios):.3f} x floor; rounds {min(ratios):.2f}..{max(ratios):.2f})",
        ),
        ("what the script's loop adds, timed alone:", ""),
        ("  gathering the batch (x and y index_select)", fmt_s(t["gather"])),
        ("  loss list, predictions, divergence check", fmt_s(t["bookkeeping"])),
        ("  together, as a share of the floor", f"{extra / t['floor']:.1%}"),
    ]
    width = max(len(label) for label, _ in rows)
    title = f"train: where a batch's time goes (blocks of {BLOCK} batches, {rounds} rounds interleaved, medians)"
    return "\n".join([title, *(f"  {label.ljust(width)}  {value}".rstrip() for label, value in rows)])


# ---------------------------------------------------------------- the rounds


def preload_script_libraries() -> None:
    """Import what the script imports after its first epoch (TensorBoard, matplotlib), so that
    every measurement runs with the same heap, hence the same garbage-collector work."""
    for name in ("torch.utils.tensorboard", "matplotlib.backends.backend_agg", "matplotlib.figure"):
        with contextlib.suppress(ImportError), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            __import__(name)


def run(rounds: int = 5, threads: int = THREADS, force_profile: bool = False) -> tuple[list[Figure], list[str]]:
    torch.set_num_threads(threads)
    result = nndsl.check_file(SPEC)
    if not result.ok:
        raise RuntimeError(f"{SPEC} failed to check: {result.errors[:3]}")
    script = load_script(result.program, result.program.trainings[0])
    preload_script_libraries()
    seconds: dict[str, list[list[float]]] = {kind: [] for kind in KINDS}
    losses: dict[str, list[float]] = {kind: [] for kind in KINDS}
    profiles = []
    with tempfile.TemporaryDirectory(prefix="nndsl-bench-train-") as temp:
        root = Path(temp) / "fashion_mnist"
        root.mkdir()
        x, y = write_dataset(root)
        for r in range(rounds):
            seed = r
            for kind in KINDS[r % len(KINDS) :] + KINDS[: r % len(KINDS)]:
                gc.collect()
                if kind == "script":
                    out = run_script(script, root, Path(temp) / f"run{r}", seed)
                elif kind == "tutorial":
                    out = run_tutorial(script, x, y, seed)
                else:
                    out = run_floor(script, x, y, seed, plain=kind == "floor_plain")
                seconds[kind].append(out[0])
                losses[kind].append(out[1])
            epoch_2 = ", ".join(f"{kind} {seconds[kind][-1][-1]:.2f} s" for kind in KINDS)
            final = ", ".join(f"{losses[kind][-1]:.4f}" for kind in KINDS)
            print(f"  round {r + 1}/{rounds}, epoch 2: {epoch_2}; final loss {final}", flush=True)
        figures = summary(seconds, losses, rounds, threads)
        if force_profile or any(f.passed is False for f in figures):
            gc.collect()
            profiles.append(breakdown(script, root, Path(temp) / "breakdown"))
    return figures, profiles


def summary(seconds: dict, losses: dict, rounds: int, threads: int) -> list[Figure]:
    second = {kind: [s[1] for s in seconds[kind]] for kind in KINDS}
    first = {kind: [s[0] for s in seconds[kind]] for kind in KINDS}

    def ratios(a: dict, top: str, bottom: str) -> list[float]:
        return [p / q for p, q in zip(a[top], a[bottom])]

    vs_tutorial = ratios(second, "script", "tutorial")
    vs_floor = ratios(second, "script", "floor")
    spread = max(max(v) - min(v) for v in losses.values())
    gap = abs(median(losses["script"]) - median(losses["tutorial"]))
    same_batches = all(abs(s - f) <= 1e-9 * abs(f) for s, f in zip(losses["script"], losses["floor"]))
    figures = [
        Figure(
            f"train {NAMES[kind]}: epoch 2 (median of {rounds})",
            f"{fmt_s(median(second[kind]))}  (epoch 1: {fmt_s(median(first[kind]))})",
        )
        for kind in KINDS
    ]
    figures += [
        Figure(
            f"train: script / tutorial, epoch 2, {threads} thread(s)",
            f"{median(vs_tutorial):.3f}  (rounds: {min(vs_tutorial):.2f}..{max(vs_tutorial):.2f})",
            f"<= {TARGET_TUTORIAL:g}",
            median(vs_tutorial) <= TARGET_TUTORIAL,
        ),
        Figure(
            f"train: script / floor, epoch 2, {threads} thread(s)",
            f"{median(vs_floor):.3f}  (rounds: {min(vs_floor):.2f}..{max(vs_floor):.2f})",
            f"<= {TARGET_FLOOR:g}",
            median(vs_floor) <= TARGET_FLOOR,
        ),
        Figure("train: script / tutorial, epoch 1", f"{median(ratios(first, 'script', 'tutorial')):.3f}"),
        Figure("train: script / floor, epoch 1", f"{median(ratios(first, 'script', 'floor')):.3f}"),
        Figure(
            "train: floor plain Adam / floor fused Adam, epoch 2",
            f"{median(ratios(second, 'floor_plain', 'floor')):.3f}",
        ),
    ]
    figures += [
        Figure(
            f"train: final loss, {kind} (median; range over the seeds)",
            f"{median(losses[kind]):.4f}  ({min(losses[kind]):.4f}..{max(losses[kind]):.4f})",
        )
        for kind in KINDS
    ]
    figures += [
        Figure(
            "train: final loss, |script - tutorial| vs widest range",
            f"{gap:.4f} vs {spread:.4f}",
            "<= range",
            gap <= spread,
        ),
        Figure("train: floor's final losses equal the script's", str(same_batches)),
    ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the four measurements (default 5)")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"torch threads (default {THREADS})")
    parser.add_argument("--profile", action="store_true", help="time the parts of a batch even when targets are met")
    args = parser.parse_args()
    figures, profiles = run(args.rounds, args.threads, args.profile)
    for text in profiles:
        print(text, end="\n\n")
    print_table(figures)


if __name__ == "__main__":
    main()
