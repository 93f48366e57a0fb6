"""In-process parse + check (``nndsl.check_source``) of generated chains of 1,000 and 10,000 layers.

Two chain shapes, each a bare chain with one repeating unit per line:

* ``mlp``: ``Linear(64, 64) -> ReLU`` on ``[N, 64]``;
* ``conv``: ``Conv2d(16, 16, 3, 1, 1) -> BatchNorm2d(16) -> ReLU`` on ``[N, 16, 32, 32]``
  (padding 1 keeps the shape, so the chain can be any length).

The sizes are timed interleaved (1k, 10k, 10k, 1k, ...), with a ``gc.collect()`` before each
untimed; the parser is loaded by a warm-up call first. Each round times the 1k chain ten times
back to back (their mean is the round's 1k time) beside one 10k run. Figures: median seconds per
size, and the median over rounds of each round's t(10k)/t(1k) (10x is linear); also the share of each check spent in the
cyclic GC (timed through ``gc.callbacks``) and the figures with that time taken out. When a
target is missed, the 10k case is run under cProfile: the phase split and top functions print.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import time

from _common import Figure, ensure_importable, fmt_s, median, print_table

ensure_importable()

import nndsl  # noqa: E402

CHAINS = {
    "mlp": (["Linear(64, 64)", "ReLU"], "[N, 64]"),
    "conv": (["Conv2d(16, 16, 3, 1, 1)", "BatchNorm2d(16)", "ReLU"], "[N, 16, 32, 32]"),
}
SIZES = (1_000, 10_000)
TARGET_10K_S = 1.0
TARGET_RATIO = 12.0


def chain_text(kind: str, n: int) -> str:
    """A bare chain of exactly ``n`` layers, one repeating unit per line."""
    unit, _ = CHAINS[kind]
    layers = [unit[i % len(unit)] for i in range(n)]
    lines = [" -> ".join(layers[i : i + len(unit)]) for i in range(0, n, len(unit))]
    return "\n-> ".join(lines) + "\n"


def chain_spec(n: int) -> str:
    """The ``mlp`` chain of ``n`` layers as the body of a model, as an editor's file holds it."""
    body = chain_text("mlp", n).replace("\n", "\n    ")
    return "model Chain(x: [N, 64]) {\n    " + body.rstrip() + "\n}\n"


class GcTimer:
    """Wall time spent inside the cyclic garbage collector, via ``gc.callbacks``."""

    def __init__(self) -> None:
        self.total = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start
            self.collections[info["generation"]] += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)


def check_once(text: str, shape: str, n: int) -> tuple[float, float]:
    """Seconds for one ``check_source`` of the text, and the part of them spent in the GC."""
    gc.collect()
    with GcTimer() as gc_time:
        start = time.perf_counter()
        result = nndsl.check_source(text, name="<bench>", input=shape)
        elapsed = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"generated chain failed to check: {result.errors[:3]}")
    layers = len(result.program.models[0].layers)
    if layers != n:
        raise RuntimeError(f"expected {n} layers, the checker saw {layers}")
    return elapsed, gc_time.total


def profile(kind: str, n: int, top: int = 15) -> str:
    """cProfile one check of the chain; the top functions by own time and by cumulative time."""
    text = chain_text(kind, n)
    _, shape = CHAINS[kind]
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    nndsl.check_source(text, name="<bench>", input=shape)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    out.write(phase_summary(stats, kind, n) + "\n")
    out.write(f"--- cProfile, {kind} chain of {n:,} layers: top {top} by own time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"--- cProfile, {kind} chain of {n:,} layers: top {top} by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(top)
    lines = [
        ln
        for ln in out.getvalue().splitlines()
        if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced"))
    ]
    return "\n".join(lines)


PHASES = (
    ("syntax stage (lexing, LALR parse building the AST, nesting and line checks)", "parser.py", "parse_recovering"),
    ("of which the LALR loop", "driver.py", "parse"),
    ("nndsl shape check", "driver.py", "check"),
)


def phase_summary(stats: pstats.Stats, kind: str, n: int) -> str:
    """Cumulative time of the pipeline's phases, found by (file, function) in the profile."""
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        key = (filename, func)
        cumulative[key] = max(cumulative.get(key, 0.0), ct)
    total = cumulative.get(("api.py", "check_source"), 0.0) or stats.total_tt
    parts = [
        f"{label} {cumulative[(f, fn)]:.2f} s ({cumulative[(f, fn)] / total:.0%})"
        for label, f, fn in PHASES
        if (f, fn) in cumulative
    ]
    return (
        f"--- where the time goes, {kind} chain of {n:,} layers, check_source {total:.2f} s under cProfile: "
        + "; ".join(parts)
    )


def run(reps: int = 5, kinds=tuple(CHAINS), force_profile: bool = False) -> tuple[list[Figure], list[str]]:
    figures: list[Figure] = []
    profiles: list[str] = []
    for kind in kinds:
        _, shape = CHAINS[kind]
        texts = {n: chain_text(kind, n) for n in SIZES}
        check_once(texts[SIZES[0]], shape, SIZES[0])  # warm-up: loads the parser
        times: dict[int, list[float]] = {n: [] for n in SIZES}
        gc_times: dict[int, list[float]] = {n: [] for n in SIZES}
        ratios: list[float] = []
        for r in range(reps):
            # Each round times the small chain several times back to back (its runs are short,
            # so one scheduler hiccup would swing a single one) next to one run of the big chain,
            # and contributes the ratio of the two; the figure is the median over rounds.
            round_times: dict[int, float] = {}
            for n in SIZES if r % 2 == 0 else SIZES[::-1]:
                runs = [check_once(texts[n], shape, n) for _ in range(SIZES[-1] // n if n != SIZES[-1] else 1)]
                round_times[n] = sum(t for t, _ in runs) / len(runs)
                times[n].append(round_times[n])
                gc_times[n].append(sum(g for _, g in runs) / len(runs))
            ratios.append(round_times[SIZES[1]] / round_times[SIZES[0]])
        small, big = (median(times[n]) for n in SIZES)
        ratio = median(ratios)
        # the same runs with the collector's own time taken out: shows how much of any
        # superlinear growth is the cyclic GC walking a heap that grows with the chain
        small_nogc, big_nogc = (median([t - g for t, g in zip(times[n], gc_times[n])]) for n in SIZES)
        gc_share = {n: median([g / t for t, g in zip(times[n], gc_times[n])]) for n in SIZES}
        big_ok = big < TARGET_10K_S
        ratio_ok = ratio <= TARGET_RATIO
        figures += [
            Figure(f"check {kind}: {SIZES[0]:,} layers (median of {reps})", fmt_s(small)),
            Figure(
                f"check {kind}: {SIZES[1]:,} layers (median of {reps})", fmt_s(big), f"< {TARGET_10K_S:g} s", big_ok
            ),
            Figure(f"check {kind}: t(10k) / t(1k)", f"{ratio:.2f}", f"<= {TARGET_RATIO:g}", ratio_ok),
            Figure(
                f"check {kind}: share of time in the GC, 1k / 10k",
                f"{gc_share[SIZES[0]]:.0%} / {gc_share[SIZES[1]]:.0%}",
            ),
            Figure(
                f"check {kind}: 10k and t(10k)/t(1k), GC time excluded",
                f"{fmt_s(big_nogc)}, {big_nogc / small_nogc:.2f}",
            ),
        ]
        if force_profile or not (big_ok and ratio_ok):
            profiles.append(profile(kind, SIZES[1]))
    return figures, profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--kind", choices=sorted(CHAINS), action="append", help="chain shape (default: all)")
    parser.add_argument("--profile", action="store_true", help="print the cProfile report even when targets are met")
    args = parser.parse_args()
    figures, profiles = run(args.reps, tuple(args.kind or CHAINS), args.profile)
    for text in profiles:
        print(text, end="\n\n")
    print_table(figures)


if __name__ == "__main__":
    main()
