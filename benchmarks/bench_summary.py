"""``nndsl summary`` against ``torchinfo.summary`` on ResNet-50 and ViT-B/16, in process and as a
cold process; with ``--compare``, the two tools' figures side by side on the whole zoo.

In process, nndsl's side is the whole command's work from the spec file: check it, compute the
table, render the text. torchinfo's side is ``torchinfo.summary`` of an already built module (the
module nndsl builds for ResNet-50, the hand-written twin tests/twins/vit_b_16.py for ViT-B/16) at
batch 1: its forward pass on the CPU, which is what it needs to learn shapes. torch runs on one
thread. Each round times both sides in an order that rotates; the figure is the median over
rounds of the per-round ratio (target: at least 20).

Cold, each side is a fresh process: ``python -m nndsl summary SPEC`` against ``python -c
"import torch, torchinfo; <build the module>; torchinfo.summary(...)"``.

    python benchmarks/bench_summary.py [--rounds 5] [--cold-rounds 3] [--compare]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings

from _common import REPO, SPECS, Figure, child_env, ensure_importable, fmt_s, median, print_table, timed

ensure_importable()

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch's "Failed to initialize NumPy" when numpy is absent
    import torch  # noqa: E402
    import torchinfo  # noqa: E402

import nndsl  # noqa: E402
from nndsl.backends.summary_table import bindings_for, render_text, summarize  # noqa: E402

TARGET_RATIO = 20.0
TWINS = REPO / "tests" / "twins"

#: spec stem -> Python code (run in the cold process too) that builds the module torchinfo reads
BUILDERS = {
    "resnet50": "import nndsl; module = nndsl.build({spec!r})",
    "vit_b_16": (
        "import importlib.util; s = importlib.util.spec_from_file_location('twin', {twin!r}); "
        "t = importlib.util.module_from_spec(s); s.loader.exec_module(t); module = t.build()"
    ),
}
INPUT_SIZE = (1, 3, 224, 224)


def _builder(stem: str) -> str:
    return BUILDERS[stem].format(spec=str(SPECS / "zoo" / f"{stem}.nn"), twin=str(TWINS / f"{stem}.py"))


def _module(stem: str) -> torch.nn.Module:
    scope: dict = {}
    exec(_builder(stem), scope)
    return scope["module"].eval()


def nndsl_summary(spec) -> str:
    """What ``nndsl summary SPEC`` does in process: check, table, text."""
    result = nndsl.check_file(spec)
    model = result.program.models[0]
    return render_text(summarize(model, result.source, 3, bindings_for(model, None, None)), str(spec))


def in_process(stem: str, rounds: int) -> list[Figure]:
    spec = SPECS / "zoo" / f"{stem}.nn"
    module = _module(stem)
    calls = {
        "nndsl": (lambda: nndsl_summary(spec), 5),
        "torchinfo": (lambda: torchinfo.summary(module, input_size=INPUT_SIZE, verbose=0), 1),
    }
    for fn, _ in calls.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            fn, runs = calls[name]
            times[name].append(timed(fn, runs))
    ratio = median([t / n for t, n in zip(times["torchinfo"], times["nndsl"])])
    what = f"(median of {rounds})"
    return [
        Figure(f"summary {stem}: nndsl in process {what}", fmt_s(median(times["nndsl"]))),
        Figure(f"summary {stem}: torchinfo.summary {what}", fmt_s(median(times["torchinfo"]))),
        Figure(f"summary {stem}: torchinfo / nndsl", f"{ratio:.1f}", f">= {TARGET_RATIO:g}", ratio >= TARGET_RATIO),
    ]


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=child_env(OMP_NUM_THREADS="1"), check=True, capture_output=True)
    return time.perf_counter() - start


def cold(stem: str, rounds: int) -> list[Figure]:
    spec = str(SPECS / "zoo" / f"{stem}.nn")
    torchinfo_code = (
        "import torch, torchinfo; torch.set_num_threads(1); "
        + _builder(stem)
        + f"; torchinfo.summary(module.eval(), input_size={INPUT_SIZE!r}, verbose=0)"
    )
    commands = {
        "nndsl": [sys.executable, "-m", "nndsl", "summary", spec],
        "torchinfo": [sys.executable, "-c", torchinfo_code],
    }
    for command in commands.values():  # warm the file cache and the bytecode
        _wall(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for r in range(rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            times[name].append(_wall(commands[name]))
    ratio = median([t / n for t, n in zip(times["torchinfo"], times["nndsl"])])
    what = f"(median of {rounds})"
    return [
        Figure(f"summary {stem}: `nndsl summary` cold process {what}", fmt_s(median(times["nndsl"]))),
        Figure(f"summary {stem}: torch + torchinfo cold process {what}", fmt_s(median(times["torchinfo"]))),
        Figure(f"summary {stem}: cold torchinfo / nndsl", f"{ratio:.1f}"),
    ]


def compare_zoo() -> str:
    """A Markdown table: nndsl's MACs and activation bytes against torchinfo's on every zoo model
    at batch 1 (T=9, S=7 for the sequence models)."""
    from nndsl.shapes import Sym, substitute

    bound = {Sym("N"): 1, Sym("T"): 9, Sym("S"): 7}
    dtypes = {"int64": torch.long, "bool": torch.bool}
    lines = [
        "| model | nndsl matrix-product MACs | nndsl all MACs | torchinfo Mult-Adds "
        "| nndsl forward activations (bytes) | torchinfo forward/backward pass size (bytes) |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for spec in sorted((SPECS / "zoo").glob("*.nn")):
        result = nndsl.check_file(spec)
        if not result.program.models:
            continue
        model = result.program.models[0]
        totals = summarize(model, result.source, 3, bound).totals
        inputs = []
        for t in model.input_types:
            dims = tuple(substitute(d, bound) for d in t.shape.dims)
            dtype = dtypes.get(t.dtype, torch.float32)
            inputs.append(torch.randint(0, 100, dims) if dtype == torch.long else torch.zeros(dims, dtype=dtype))
        stats = torchinfo.summary(nndsl.build(spec).eval(), input_data=inputs, verbose=0, depth=9)
        lines.append(
            f"| {spec.stem} | {substitute(totals['matmul_macs'], bound):,} | {substitute(totals['macs'], bound):,} "
            f"| {stats.total_mult_adds:,} | {substitute(totals['activation_bytes'], bound):,} "
            f"| {stats.total_output_bytes:,} |"
        )
    return "\n".join(lines)


def run(rounds: int = 5, cold_rounds: int = 3) -> list[Figure]:
    torch.set_num_threads(1)
    figures: list[Figure] = []
    for stem in BUILDERS:
        figures += in_process(stem, rounds)
    for stem in BUILDERS:
        figures += cold(stem, cold_rounds)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="also print the zoo table against torchinfo")
    args = parser.parse_args()
    print_table(run(args.rounds, args.cold_rounds), "nndsl summary vs torchinfo.summary")
    if args.compare:
        torch.set_num_threads(1)
        print()
        print(compare_zoo())


if __name__ == "__main__":
    main()
