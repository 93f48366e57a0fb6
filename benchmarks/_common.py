"""Shared helpers for the benchmarks: repository paths, medians, result rows, the summary table."""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"


def ensure_importable() -> None:
    """Make ``import nndsl`` find this checkout, installed or not."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: this checkout first on PYTHONPATH, plus ``extra``.

    Python's bytecode cache is switched back on (this machine sets PYTHONDONTWRITEBYTECODE):
    an installed nndsl, like the installed torch it is compared with, runs from compiled
    bytecode, so a checkout that recompiles its sources on every run would misstate both.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    parts = [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.update(extra)
    return env


def timed(fn, runs: int = 1) -> float:
    """Mean seconds of ``runs`` back-to-back calls, after an untimed ``gc.collect()``."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - start) / runs


def median(values) -> float:
    return statistics.median(values)


@dataclass
class Figure:
    """One line of the summary table. ``passed`` is None for an informational figure (no target)."""

    name: str
    value: str
    target: str = ""
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.passed]


def fmt_s(seconds: float) -> str:
    """Seconds with a unit that keeps three significant figures readable."""
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def print_table(figures: list[Figure], title: str = "") -> None:
    headers = ("figure", "value", "target", "result")
    rows = [(f.name, f.value, f.target, f.verdict) for f in figures]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    if title:
        print(title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
