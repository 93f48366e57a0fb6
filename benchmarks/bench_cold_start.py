"""Cold start: a fresh ``nndsl check`` process versus a fresh ``python -c "import torch"``.

Both are timed from spawn to exit in the same run, interleaved (the order rotates each round),
so that load on the shared machine hits both alike. The figure is the median of the per-round
ratios nndsl/torch; absolute medians are reported too. One untimed warm-up run of every command
comes first: it fills lark's parse-table cache (``$XDG_CACHE_HOME/nndsl``, default
``~/.cache/nndsl``), Python's bytecode cache (on for the children, as in any install) and the
OS page cache. The cache-miss figure points ``XDG_CACHE_HOME`` at a
new empty temporary directory for every run, so lark builds its LALR tables from the grammar.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, Figure, child_env, fmt_s, median, print_table

SPEC = "specs/fashion_mlp.nn"
TARGET_RATIO = 0.10


def console_script() -> str | None:
    """The ``nndsl`` script installed beside this interpreter, else one on PATH, else None."""
    beside = Path(sys.executable).parent / "nndsl"
    if beside.is_file():
        return str(beside)
    return shutil.which("nndsl")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}:\n{proc.stdout.decode()}{proc.stderr.decode()}")
    return elapsed


def run(reps: int = 9, miss_reps: int = 3) -> list[Figure]:
    env = child_env()
    commands = {
        "python -m nndsl check": [sys.executable, "-m", "nndsl", "check", SPEC],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }
    script = console_script()
    if script:
        commands["nndsl check (console script)"] = [script, "check", SPEC]
    # the floor under nndsl's figure: a bare interpreter, and its one dependency
    commands["python -c pass"] = [sys.executable, "-c", "pass"]
    commands["python -c 'import lark'"] = [sys.executable, "-c", "import lark"]
    names = list(commands)

    for cmd in commands.values():  # warm-up: parse-table cache, page cache
        timed(cmd, env)

    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(timed(commands[name], env))

    misses = []
    for _ in range(miss_reps):
        with tempfile.TemporaryDirectory(prefix="nndsl-bench-cache-") as tmp:
            misses.append(timed(commands["python -m nndsl check"], child_env(XDG_CACHE_HOME=tmp)))

    torch_name = "python -c 'import torch'"
    torch_times = times[torch_name]
    figures = [Figure(f"cold: {torch_name} (median of {reps})", fmt_s(median(torch_times)))]
    for name in names:
        if name == torch_name:
            continue
        if not name.startswith(("python -m nndsl", "nndsl")):
            figures.append(Figure(f"cold: {name} (median of {reps})", fmt_s(median(times[name]))))
            continue
        ratio = median([a / b for a, b in zip(times[name], torch_times)])
        figures.append(Figure(f"cold: {name} (median of {reps}, warm cache)", fmt_s(median(times[name]))))
        figures.append(
            Figure(
                f"cold: {name} / import torch",
                f"{ratio:.3f}",
                f"<= {TARGET_RATIO:.2f}",
                ratio <= TARGET_RATIO,
            )
        )
    figures.append(
        Figure(
            f"cold: python -m nndsl check, parse-table cache miss (median of {miss_reps})",
            f"{fmt_s(median(misses))} ({median(misses) / median(torch_times):.3f} x torch)",
        )
    )
    return figures


_SPLIT = """\
import contextlib, io, sys, time
t0 = time.perf_counter()
import nndsl.cli
t1 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    code = nndsl.cli.main(["check", sys.argv[1]])
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, code)
"""


def import_profile(top: int = 10) -> str:
    """Where a warm-cache ``nndsl check`` process spends its time: imports versus the command itself,
    own import time grouped by top-level package, and the single slowest imports."""
    env = child_env()
    cmd = [sys.executable, "-X", "importtime", "-m", "nndsl", "check", SPEC]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, cumulative, module = line[len("import time:") :].split("|")
            rows.append((int(own), int(cumulative), module.strip()))
    total = sum(own for own, _, _ in rows)
    by_package: dict[str, int] = {}
    for own, _, module in rows:
        root = module.split(".")[0]
        root = root if root in ("nndsl", "lark") else "stdlib and other"
        by_package[root] = by_package.get(root, 0) + own
    split = [subprocess.run([sys.executable, "-c", _SPLIT, SPEC], cwd=REPO, env=env, capture_output=True, text=True)]
    split += [subprocess.run([sys.executable, "-c", _SPLIT, SPEC], cwd=REPO, env=env, capture_output=True, text=True)]
    imports_s, command_s = (median([float(p.stdout.split()[i]) for p in split]) for i in (0, 1))
    lines = [
        "--- where a warm-cache `nndsl check` process spends its time ---",
        f"in-process: `import nndsl.cli` {fmt_s(imports_s)}, then `main(['check', ...])` (lazy imports, parse-table load,"
        f" parse, check, print) {fmt_s(command_s)}",
        f"python -X importtime: {len(rows)} modules, {total / 1e3:.1f} ms own import time: "
        + ", ".join(f"{name} {us / 1e3:.1f} ms" for name, us in sorted(by_package.items(), key=lambda kv: -kv[1])),
        f"top {top} imports by own time:",
    ]
    lines += [
        f"{own / 1e3:8.1f} ms own {cum / 1e3:8.1f} ms cumulative  {mod}"
        for own, cum, mod in sorted(rows, reverse=True)[:top]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--miss-reps", type=int, default=3)
    parser.add_argument("--imports", action="store_true", help="also print the slowest imports of nndsl check")
    args = parser.parse_args()
    figures = run(args.reps, args.miss_reps)
    if args.imports or any(f.passed is False for f in figures):
        print(import_profile(), end="\n\n")
    print_table(figures)


if __name__ == "__main__":
    main()
