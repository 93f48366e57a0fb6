"""The checker against torch at scale: agreement per family, dtype and layer group, with examples.

    python benchmarks/differential.py --cases 20000 --seed 1

Draws cases from the strategies of ``tests/strategies.py`` (the CI tests in
``tests/test_differential.py`` run a few of each) and judges each with ``strategies.judge``:
the checker's shape and dtype (or its error) must be what torch does on a tensor of that shape
and dtype (torch raises <=> the checker reports an error; else identical shapes and dtypes, and
the same parameter count for one layer). Families:

* ``float32``, ``int64``: every registered layer on float32 / int64 inputs, as the CI tests;
* ``dtype``: float64, float16, bfloat16 and bool inputs (torch's module cast to a floating dtype);
* ``symbolic``: some input dims declared as symbols, compared after substituting the values;
* ``zero``: one input dim of 0 (``stricter``: the checker refuses what torch computes on an
  empty tensor, on purpose; counted apart, not as a disagreement); ``warned``: a symbol is 1
  where the checker warned (W308) that its shapes hold only for other sizes;
* ``inferred``: an inferable argument left out, against torch given the input's size there;
* ``chain``: two to four layers in a row; ``graph``: joins of inputs of mixed dtypes.

For every ``--emitted-every``-th case the module nndsl emits is also built and run on the input,
and must give the checked shapes and dtypes. Cases where torch has no CPU kernel for a dtype are
skipped. Work is split over at most 2 worker processes (torch on one thread each); the run is
deterministic for a seed. Prints cases/s, agreement per family / dtype / layer group, and up
to ``--examples`` examples of each kind of disagreement (spec, input, checker, torch).
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = {"float32": 12, "int64": 5, "dtype": 20, "symbolic": 15, "zero": 15, "inferred": 13, "chain": 10, "graph": 10}
GROUPS = [
    ("conv", r"Conv"),
    ("pool", r"Pool"),
    ("norm", r"Norm"),
    ("recurrent", r"^(RNN|GRU|LSTM)"),
    ("attention", r"Attention|Transformer"),
    ("reshape", r"Reshape|View|Permute|Transpose|Flatten|Unflatten|Squeeze|Unsqueeze"),
    ("reduction", r"^(Mean|Sum)$"),
    ("linear/embedding", r"^(Linear|Embedding|Identity)$"),
    ("dropout", r"Dropout"),
    ("resize/pad", r"Upsample|Pad"),
    ("activation", r"."),
]


#: calls that leave torch nothing to compute, so that it skips its dtype check (as in the CI test)
NOTHING_TO_COMPUTE = r"Adaptive\w+\([^)]*\b0\b|Dropout2?d?\((p=)?[01](\.0*)?[,)]"


def group_of(layer: str) -> str:
    return next(g for g, pattern in GROUPS if re.search(pattern, layer))


def jobs(cases: int, names: list[str], inferring: list[str], weights: dict[str, int]) -> list[tuple[str, str, int]]:
    """(family, layer or '', number of cases), the budget split by ``weights`` and then over layers."""
    total = sum(weights.values())
    out = []
    for family, weight in weights.items():
        budget = cases * weight // total
        layers = inferring if family == "inferred" else names if family not in ("chain", "graph") else [""]
        for i, layer in enumerate(layers):
            n = budget // len(layers) + (1 if i < budget % len(layers) else 0)
            if n:
                out.append((family, layer, n))
    return out


def _kind(verdict: str) -> str:
    """What a disagreement is about, without its numbers: the key examples are grouped by."""
    text = re.sub(r"\[\(\(.*?\)\]", "[...]", verdict)
    text = re.sub(r"\d+", "#", text)
    return text[:110]


def run_job(job: tuple[str, str, int], seed: int, emitted_every: int, examples: int) -> dict:
    """Draw and judge one job's cases; returns counts and examples (in a worker)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from strategies import (
        STRATEGIES,
        STRICTER,
        WARNED,
        Skip,
        Wide,
        chain_case,
        checker_input,
        graph_case,
        judge,
        wide_case,
    )

    family, layer, n = job
    if family in ("float32", "int64"):
        strategy = STRATEGIES[layer].map(
            lambda c, f=family: Wide(f, c[0], c[1], f if c[2] == "float32" else c[2], c[0])
        )
    elif family == "chain":
        strategy = chain_case()
    elif family == "graph":
        strategy = graph_case()
    else:
        strategy = wide_case(layer, family)
    counts: Counter = Counter()
    found: dict[tuple, list] = {}
    seen = [0]

    @hypothesis_seed(seed * 1_000_003 + zlib.crc32(f"{family}:{layer}".encode()))
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.data())
    def draw(data):
        case = data.draw(strategy)
        seen[0] += 1
        if family == "int64" and re.match(NOTHING_TO_COMPUTE, case.text):
            return  # torch computes nothing there and skips its dtype check (see the CI test)
        dtype = getattr(case, "dtype", None) or "mixed"
        try:
            verdict = judge(case, run_emitted=emitted_every > 0 and seen[0] % emitted_every == 0)
        except Skip:
            counts[family, layer, dtype, "skipped"] += 1
            return
        except Exception as exc:  # noqa: BLE001 - the harness itself must not stop on one case
            verdict = f"harness error {type(exc).__name__}: {exc}"
        if verdict is None:
            counts[family, layer, dtype, "agree"] += 1
        elif verdict == STRICTER:
            counts[family, layer, dtype, "stricter"] += 1
        elif verdict == WARNED:
            counts[family, layer, dtype, "warned"] += 1
        else:
            counts[family, layer, dtype, "disagree"] += 1
            key = (family, layer or "-", _kind(verdict))
            items = found.setdefault(key, [])
            if len(items) < examples:
                if isinstance(case, Wide):
                    where = f"input {checker_input(case)}"
                    if any(case.symbols):
                        where += " with " + ", ".join(f"{s}={d}" for s, d in zip(case.symbols, case.shape) if s)
                else:
                    where = "inputs as declared"
                items.append(f"{case.text!r} on {where}: {verdict}")
            else:
                items.append(None)  # counted, not kept

    draw()
    return {"counts": counts, "found": found}


def _worker(jobs_in, results, seed: int, emitted_every: int, examples: int) -> None:
    import warnings

    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO))
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    while True:
        job = jobs_in.get()
        if job is None:
            results.put(None)
            return
        results.put(run_job(job, seed, emitted_every, examples))


def run(cases: int, seed: int, workers: int = 2, emitted_every: int = 4, examples: int = 2,
        families: list[str] | None = None, progress: bool = False) -> tuple[Counter, dict, float]:  # fmt: skip
    """Judge about ``cases`` cases of ``families`` (all by default) in at most 2 worker processes:
    (counts by (family, layer, dtype, verdict), examples by kind of disagreement, seconds)."""
    sys.path.insert(0, str(REPO))
    from nndsl.layers import REGISTRY

    weights = {f: WEIGHTS[f] for f in families or WEIGHTS}
    names = sorted(REGISTRY)
    inferring = sorted(n for n, layer in REGISTRY.items() if any(p.infer for p in layer.params))
    work = sorted(jobs(cases, names, inferring, weights), key=lambda j: -j[2])
    ctx = multiprocessing.get_context("spawn")
    jobs_in, results = ctx.Queue(), ctx.Queue()
    size = max(1, min(workers, 2))
    for job in work:
        jobs_in.put(job)
    for _ in range(size):
        jobs_in.put(None)
    started = time.perf_counter()
    procs = [ctx.Process(target=_worker, args=(jobs_in, results, seed, emitted_every, examples)) for _ in range(size)]
    for p in procs:
        p.start()
    counts: Counter = Counter()
    found: dict[tuple, list] = {}
    done = finished = 0
    while finished < size:
        result = results.get()
        if result is None:
            finished += 1
            continue
        done += 1
        counts.update(result["counts"])
        for key, items in result["found"].items():
            found.setdefault(key, []).extend(items)
        if progress and done % 50 == 0:
            print(f"  {done}/{len(work)} jobs, {sum(counts.values())} cases", flush=True)
    for p in procs:
        p.join()
    return counts, found, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (at most 2)")
    parser.add_argument("--emitted-every", type=int, default=4, help="build and run the emitted module every n-th case")
    parser.add_argument("--examples", type=int, default=2, help="examples shown per kind of disagreement")
    parser.add_argument("--families", default=",".join(WEIGHTS), help="comma-separated subset of the families")
    args = parser.parse_args()
    families = args.families.split(",")
    for family in families:
        if family not in WEIGHTS:
            parser.error(f"unknown family {family!r}; the families are {', '.join(WEIGHTS)}")
    counts, found, seconds = run(
        args.cases, args.seed, args.workers, args.emitted_every, args.examples, families, progress=True
    )
    print(report(counts, found, seconds, args.examples))
    return 1 if any(k[3] == "disagree" for k in counts) else 0


def _table(title: str, counts: Counter, key) -> list[str]:
    rows: dict[str, Counter] = {}
    for k, v in counts.items():
        rows.setdefault(key(k), Counter())[k[3]] += v
    lines = [
        title,
        f"  {'':22s} {'cases':>7s} {'agree':>7s} {'disagree':>9s} {'stricter':>9s} {'warned':>7s} {'skipped':>8s}"
        "  agreement",
    ]
    for name in sorted(rows):
        c = rows[name]
        judged = c["agree"] + c["disagree"] + c["stricter"] + c["warned"]
        share = 100.0 * (c["agree"] + c["stricter"] + c["warned"]) / judged if judged else 100.0
        lines.append(
            f"  {name:22s} {sum(c.values()):7d} {c['agree']:7d} {c['disagree']:9d} {c['stricter']:9d}"
            f" {c['warned']:7d} {c['skipped']:8d}  {share:6.2f}%"
        )
    return lines


def report(counts: Counter, found: dict, seconds: float, examples: int) -> str:
    total = sum(counts.values())
    disagree = sum(v for k, v in counts.items() if k[3] == "disagree")
    lines = [
        f"cases: {total} in {seconds:.0f} s = {total / max(seconds, 1e-9):.1f} cases/s; disagreements: {disagree}",
        "",
    ]
    lines += _table("by family", counts, lambda k: k[0])
    lines += _table("by dtype", counts, lambda k: k[2])
    lines += _table(
        "by layer group (single-layer families)", counts, lambda k: group_of(k[1]) if k[1] else "(chains, graphs)"
    )
    lines.append("")
    lines.append("disagreements by kind (cases), with examples:")
    for (family, layer, kind), items in sorted(found.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"  [{len(items)}] {family} / {layer}: {kind}")
        for item in [i for i in items if i][:examples]:
            lines.append(f"      {item[:400]}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
