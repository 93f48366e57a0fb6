"""Time to draw the largest zoo model with ``nndsl graph`` (no torch).

The largest zoo model is the one whose checked IR has the most nodes. In process, after a
warm-up, with ``gc.collect()`` (untimed) before every timed call, rounds interleaving the parts:
checking the spec (``check_file``, for scale), building the diagram at the default settings and
with every block expanded (``--all``), writing it as Mermaid and as DOT. Then, for information,
the whole command in a fresh process (``python -m nndsl graph FILE --format dot``) and Graphviz's
``dot`` rendering the expanded DOT to SVG, where it is installed. Figures are medians over rounds.

    python benchmarks/bench_graph.py [--rounds N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from _common import REPO, SPECS, Figure, child_env, ensure_importable, fmt_s, median, print_table, timed

ensure_importable()

from nndsl.api import check_file  # noqa: E402
from nndsl.backends import graph  # noqa: E402
from nndsl.ir import walk  # noqa: E402


def largest_zoo_spec():
    """(path, checked program) of the zoo model with the most IR nodes."""
    best = None
    for path in sorted((SPECS / "zoo").glob("*.nn")):
        program = check_file(path).program
        if program is None or not program.models:
            continue
        size = sum(1 for m in program.models for _ in walk(m.graph))
        if best is None or size > best[0]:
            best = (size, path, program)
    return best


def run(rounds: int = 15) -> list[Figure]:
    size, path, program = largest_zoo_spec()
    models = program.models
    parts = {
        "check": lambda: check_file(path),
        "diagram (default)": lambda: graph.build(models),
        "diagram (--all)": lambda: graph.build(models, expand_all=True),
    }
    default, full = graph.build(models), graph.build(models, expand_all=True)
    parts["Mermaid text (--all)"] = lambda: graph.to_mermaid(full)
    parts["DOT text (--all)"] = lambda: graph.to_dot(full)
    for fn in parts.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):
        for name, fn in parts.items():
            times[name].append(timed(fn, runs=5))
    figures = [
        Figure(
            f"graph: {path.name}", f"{size} IR nodes; {len(default.nodes)} drawn (default), {len(full.nodes)} (--all)"
        )
    ]
    figures += [Figure(f"graph: {name}", fmt_s(median(values))) for name, values in times.items()]
    in_process = median(times["check"]) + median(times["diagram (--all)"]) + median(times["DOT text (--all)"])
    figures.append(Figure("graph: check + diagram + DOT (--all), in process", fmt_s(in_process)))
    command = [sys.executable, "-m", "nndsl", "graph", str(path), "--format", "dot"]
    env = child_env()
    cold = []
    for _ in range(max(3, rounds // 3)):
        cold.append(timed(lambda: subprocess.run(command, env=env, cwd=REPO, capture_output=True, check=True)))
    figures.append(Figure("graph: `nndsl graph --format dot`, fresh process", fmt_s(median(cold))))
    dot = shutil.which("dot")
    if dot is not None:
        text = graph.to_dot(full).encode()
        render = [
            timed(lambda: subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, check=True)) for _ in range(3)
        ]
        figures.append(Figure("graph: Graphviz dot -Tsvg of the --all DOT", fmt_s(median(render))))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print_table(run(args.rounds), "nndsl graph")
    return 0


if __name__ == "__main__":
    sys.exit(main())
