"""Where a 10,000-layer check goes: the syntax stage (lexing, parsing, AST) against the checking.

The ``Linear(64, 64) -> ReLU`` chain of ``bench_check_scaling`` is timed, interleaved in each
round and with the cyclic GC paused as ``check_source`` pauses it:

* ``lark's own loop``: lark's LALR parse of the text (its lexer, its tokens, a callback for
  every reduction) building the same AST: the syntax stage's parser before the fast loop, and
  still the one that words every syntax error;
* ``syntax stage``: ``parse_recovering`` (the fast loop over lark's tables, plus the nesting
  and one-statement-per-line checks), what ``check_source`` runs first;
* ``check_source``: the whole in-process check; ``checking`` is it minus the syntax stage.

Figures are medians over rounds; the ratio fast/lark is the median of each round's ratio. Then
the peak memory (``getrusage`` maxrss) of fresh processes: the largest chain a spec may hold
(50,000 layers; the 100,000-layer chain is larger than the 1 MiB a spec may be) checked whole,
and the 100,000-layer chain through the syntax stage alone, each at the default recursion limit.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import Figure, child_env, ensure_importable, fmt_s, median, print_table

ensure_importable()

from bench_check_scaling import chain_text  # noqa: E402

import nndsl  # noqa: E402
from nndsl.source import Source  # noqa: E402
from nndsl.syntax import parse_recovering, parser  # noqa: E402

N = 10_000
SHAPE = "[N, 64]"
TARGET_CHECK_S = 0.25
TARGET_RSS_MIB = 250
MEMORY_SIZES = (("check", 50_000), ("syntax", 100_000))

_CHILD = """
import gc, json, resource, sys
from bench_check_scaling import chain_text
import nndsl
from nndsl.source import Source
from nndsl.syntax import parse_recovering
what, n = sys.argv[1], int(sys.argv[2])
text = chain_text("mlp", n)
if what == "check":
    result = nndsl.check_source(text, name="<bench>", input="[N, 64]")
    ok = result.ok and len(result.program.models[0].layers) == n
else:
    gc.disable()  # as check_source does
    module, diagnostics = parse_recovering(Source("<bench>", text))
    ok = not diagnostics and len(module.items[0].value.steps) == n
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"ok": ok, "peak_mib": peak / 1024, "recursion_limit": sys.getrecursionlimit()}))
"""


def _timed(fn) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def split(rounds: int) -> list[Figure]:
    text = chain_text("mlp", N)
    source = Source("<bench>", text)
    lark_parser = parser._parser()
    runs = {
        "lark": lambda: lark_parser.parse(text, start="start"),
        "syntax": lambda: parse_recovering(source),
        "check": lambda: nndsl.check_source(text, name="<bench>", input=SHAPE),
    }
    module, diagnostics = parse_recovering(source)
    if diagnostics or module != lark_parser.parse(text, start="start"):
        raise RuntimeError("the syntax stage and lark's own parse disagree on the chain")
    runs["check"]()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for key in list(runs) if r % 2 == 0 else list(runs)[::-1]:
            times[key].append(_timed(runs[key]))
    lark_s, syntax_s, check_s = (median(times[k]) for k in runs)
    checking = median([c - s for c, s in zip(times["check"], times["syntax"])])
    ratio = median([s / lk for s, lk in zip(times["syntax"], times["lark"])])
    return [
        Figure(f"split {N:,}: lark's own loop, parse to AST (median of {rounds})", fmt_s(lark_s)),
        Figure(f"split {N:,}: syntax stage, parse_recovering", fmt_s(syntax_s)),
        Figure(f"split {N:,}: syntax stage / lark's own loop", f"{ratio:.2f}"),
        Figure(f"split {N:,}: checking (check_source - syntax stage)", fmt_s(checking)),
        Figure(f"split {N:,}: syntax stage share of check_source", f"{syntax_s / check_s:.0%}"),
        Figure(f"split {N:,}: check_source", fmt_s(check_s), f"<= {TARGET_CHECK_S:g} s idle", None),
    ]


def memory() -> list[Figure]:
    figures = []
    env = child_env()
    env["PYTHONPATH"] += os.pathsep + str(Path(__file__).resolve().parent)  # bench_check_scaling
    for what, n in MEMORY_SIZES:
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, what, str(n)], capture_output=True, text=True, env=env, timeout=600
        )
        if run.returncode != 0:
            raise RuntimeError(f"{what} of {n:,} layers failed:\n{run.stderr[-2000:]}")
        out = json.loads(run.stdout.splitlines()[-1])
        if not out["ok"]:
            raise RuntimeError(f"{what} of {n:,} layers did not give the chain back")
        label = "check_source" if what == "check" else "syntax stage only"
        figures.append(
            Figure(
                f"memory: {n:,}-layer chain, {label}, peak RSS (recursion limit {out['recursion_limit']})",
                f"{out['peak_mib']:.0f} MiB",
                f"< {TARGET_RSS_MIB} MiB",
                out["peak_mib"] < TARGET_RSS_MIB,
            )
        )
    return figures


def run(rounds: int = 7) -> list[Figure]:
    return split(rounds) + memory()


def main() -> None:
    parser_ = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser_.add_argument("--rounds", type=int, default=7)
    args = parser_.parse_args()
    print_table(run(args.rounds))


if __name__ == "__main__":
    main()
