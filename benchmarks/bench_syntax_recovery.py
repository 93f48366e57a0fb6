"""Syntax-error recovery and input size: checking a spec with one typo against the same spec clean.

A spec of many small models (``--models``, 4,000 by default) is checked clean and with one stray
``)`` in the middle model; after the typo the whole file is parsed again item by item, so the
typo's cost should be a small constant factor (each item is parsed twice), never a factor that
grows with the file. The two are timed interleaved, medians over ``--reps`` rounds; the figure
is the median of the per-round ratio. ``--megabyte`` adds the same comparison on a spec of about
1 MB (the size the issue was reported with), and the peak memory of checking it, measured in a
child process (``ru_maxrss``) against a child that only imports nndsl.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _common import Figure, child_env, ensure_importable, fmt_s, median, print_table

ensure_importable()

import nndsl  # noqa: E402

TARGET_RATIO = 3.0  # parsing twice, plus the item-by-item overhead
MODEL = "model M{i}(x: [N, 16]) {{ Linear(16, 32) -> ReLU -> Linear(32, 4) }}\n"


def spec(models: int, typo: bool) -> str:
    items = [MODEL.format(i=i) for i in range(models)]
    if typo:
        items[models // 2] = items[models // 2].replace("ReLU", "ReLU)")
    return "".join(items)


def check_seconds(text: str, typo: bool) -> float:
    start = time.perf_counter()
    result = nndsl.check_source(text, "<bench>")
    elapsed = time.perf_counter() - start
    errors = [d.code for d in result.errors]
    if errors != (["E001"] if typo else []):
        raise RuntimeError(f"unexpected diagnostics: {errors[:5]}")
    return elapsed


# VmHWM, the peak of this process's own memory (ru_maxrss may start at the parent's peak)
_PEAK = "import nndsl\n{body}\nprint([ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])"


def peak_rss_mb(body: str) -> float:
    """Peak resident memory (MB) of a child that imports nndsl and runs ``body`` (Linux)."""
    code = _PEAK.format(body=body)
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True)
    return int(out.stdout.split()[1]) / 1024  # VmHWM: <n> kB


def compare(models: int, reps: int, label: str) -> list[Figure]:
    clean, broken = spec(models, False), spec(models, True)
    check_seconds(spec(10, False), False)  # warm-up: loads the parser
    times: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for r in range(reps):
        for typo in (False, True) if r % 2 == 0 else (True, False):
            times[typo].append(check_seconds(broken if typo else clean, typo))
        ratios.append(times[True][-1] / times[False][-1])
    ratio = median(ratios)
    return [
        Figure(f"{label}: clean ({len(clean) / 1e6:.2f} MB, {models:,} models)", fmt_s(median(times[False]))),
        Figure(f"{label}: one stray ')'", fmt_s(median(times[True]))),
        Figure(f"{label}: t(typo) / t(clean)", f"{ratio:.2f}", f"<= {TARGET_RATIO:g}", ratio <= TARGET_RATIO),
    ]


def run(models: int = 4000, reps: int = 5, megabyte: bool = False) -> list[Figure]:
    figures = compare(models, reps, "recovery")
    if megabyte and os.path.exists("/proc/self/status"):
        big = 1_000_000 // len(MODEL.format(i=99999))
        figures += compare(big, max(1, reps // 2), "recovery, 1 MB")
        base = peak_rss_mb("")
        used = peak_rss_mb(
            f"text = ''.join({MODEL!r}.format(i=i) for i in range({big}))\nnndsl.check_source(text, '<bench>')"
        )
        figures.append(Figure("memory: checking 1 MB of models, above the import", f"{used - base:.0f} MB"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--megabyte", action="store_true", help="also a 1 MB spec, and its peak memory")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    figures = run(args.models, args.reps, args.megabyte)
    print_table(figures)
    sys.exit(0 if all(f.passed is not False for f in figures) else 1)


if __name__ == "__main__":
    main()
