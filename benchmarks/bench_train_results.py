"""The results the tutorials promise, as a user gets them: each train spec's generated script run
in a fresh process (imports included), its final metric from results.json, and its wall time.

    python benchmarks/bench_train_results.py [--rounds 3]

Targets: XOR trains to 100% accuracy; the sum-of-three regressor reaches MSE below 0.1; the
digits MLP reaches at least 95% test accuracy within 30 s on this CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SPECS, Figure, child_env, ensure_importable, fmt_s, median, print_table

#: spec, the metric results.json reports, its target, and a time limit in seconds (None: none)
CASES = (
    ("xor.nn", "accuracy", lambda v: v == 1.0, "= 100%", None),
    ("sum_regressor.nn", "mse", lambda v: v < 0.1, "< 0.1", None),
    ("digits_mlp.nn", "accuracy", lambda v: v >= 0.95, ">= 95%", 30.0),
)


def _script(spec: Path, directory: Path) -> Path:
    ensure_importable()
    from nndsl import check_file
    from nndsl.backends.train_script import emit_train_script

    program = check_file(spec).program
    path = directory / f"train_{spec.stem}.py"
    path.write_text(emit_train_script(program, program.trainings[0]))
    return path


def _run_once(script: Path, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, str(script), "--out-dir", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"{script.name} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return elapsed, json.loads((out / "results.json").read_text())


def run(rounds: int = 3) -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name, metric, good, target, limit in CASES:
            script = _script(SPECS / name, directory)
            times, values = [], []
            for r in range(rounds):
                elapsed, results = _run_once(script, directory / f"{script.stem}_{r}")
                times.append(elapsed)
                values.append(results["metrics"][metric])
            worst = max(values) if metric == "mse" else min(values)
            shown = f"{worst:.4f}" if metric == "mse" else f"{worst:.1%}"
            figures.append(
                Figure(
                    f"{name}: {results['split']} {metric} (worst of {rounds} runs)",
                    shown,
                    target,
                    all(good(v) for v in values),
                )
            )
            figures.append(
                Figure(
                    f"{name}: whole run, a fresh process (median of {rounds})",
                    fmt_s(median(times)),
                    f"<= {limit:.0f} s" if limit else "",
                    (median(times) <= limit) if limit else None,
                )
            )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = run(args.rounds)
    print_table(figures, "training results of the train specs")
    return 1 if any(f.passed is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
