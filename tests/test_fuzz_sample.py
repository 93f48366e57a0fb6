"""A CI sample of the fuzz harness (``benchmarks/fuzz.py``): fixed seeds, a few hundred cases.

Every case (a mutated spec from ``specs/`` or a random program) goes through the API, the CLI in
process and the writers in two worker processes; a few go through real ``python -m nndsl``
subprocesses, a sample of the emitted modules through ruff. No exception may escape but
``SpecError``, no command may exit 3 or print a traceback, nothing may echo the environment, and
no case may run past the timeout. A failure names the signature and the case: replay it with
``python benchmarks/fuzz.py --seed S --start I --cases 1 --out DIR`` (which also reduces it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import fuzz  # noqa: E402

pytest.importorskip("torch")


def _describe(summary: fuzz.Summary, seed: int) -> str:
    lines = []
    for sig, items in sorted(summary.by_signature.items(), key=lambda kv: -len(kv[1])):
        case, failure = items[0]
        lines.append(
            f"{len(items)} x {sig}\n    seed {seed} case {case.index}: {case.origin}\n    {failure['detail'][-300:]}"
        )
    return "\n".join(lines + summary.ruff)


@pytest.fixture(scope="module")
def pool():
    """Two workers for the whole module: they start once."""
    workers = fuzz.Pool(2, timeout=5.0)
    yield workers
    workers.close()


@pytest.mark.parametrize(("seed", "cases"), [(11, 160), (12, 120)])
def test_fuzz_sample_finds_nothing(pool, seed, cases):
    summary = fuzz.run(cases=cases, seed=seed, cli_every=80, build_every=3, ruff_every=5, pool=pool)
    assert summary.cases == cases
    assert not summary.by_signature and not summary.ruff, _describe(summary, seed)


def test_cases_are_deterministic_by_seed_and_index():
    lib = fuzz.library()
    lines = [line for text in lib.values() for line in text.splitlines() if line.strip()]
    first = [fuzz.make_case(3, i, lib, lines) for i in range(40)]
    again = [fuzz.make_case(3, i, lib, lines) for i in range(40)]
    other = [fuzz.make_case(4, i, lib, lines) for i in range(40)]
    assert [(c.text, c.name, c.input) for c in first] == [(c.text, c.name, c.input) for c in again]
    assert [c.text for c in first] != [c.text for c in other]
    assert {c.origin.split(" | ")[0] for c in first} >= {"generated"}  # random programs and spec mutants


def test_generated_programs_mostly_check():
    """The random programs are valid often enough to reach the writers (not only the diagnostics)."""
    import random

    import nndsl

    ok = sum(nndsl.check_source(fuzz.Generator(random.Random(i)).program()).ok for i in range(60))
    assert ok >= 40


def test_the_harness_reports_a_hang_and_an_echoed_secret(pool):
    """The oracles can fail: a planted sleep is a hang, the canary in an output is a leak."""
    case = fuzz.Case("model M(x: [N, 4]) { Linear(4, 2) }\n", flags={"sleep": 30})
    pool.timeout = 0.5  # this test last: the planted stage then counts as a hang after 1.5 s
    try:
        [(_, result)] = list(pool.run([case]))
    finally:
        pool.timeout = 5.0
    assert [f["kind"] for f in result["failures"]] == ["hang in prepare"]
    assert fuzz._text_failures("cli", f"error: {fuzz.CANARY}")[0]["kind"] == "echoes the environment"
    assert fuzz._text_failures("cli", "This is a bug in nndsl")[0]["kind"] == "traceback or internal error printed"
