"""``nndsl fmt`` time: the largest zoo spec, and a 10,000-layer chain, against checking them.

``format_text`` is timed on three texts, interleaved in each round, medians over ``--rounds``:

* ``canonical``: the largest spec of specs/zoo as it is (already canonical): parse, lay out,
  compare; what ``nndsl fmt --check`` costs on a tidy repository;
* ``messy``: the same spec with its indentation removed and its spaces squeezed out: the layout
  changes, so the result is verified too (its tokens, comments and AST against the input's, and
  laid out again to be stable), the full cost;
* ``check``: ``check_source`` of the spec (parse, shapes, everything), for scale.

The figure with a target is t(messy) / t(check): formatting, with its verification, should
cost no more than checking the spec does. The same three are then taken on the 10,000-layer
``Linear -> ReLU`` chain of ``bench_check_scaling`` (wrapped in a model): a text that is almost
all syntax, which fmt parses twice and check once, so its target is 4.
"""

from __future__ import annotations

import argparse
import re
import sys

from _common import SPECS, Figure, ensure_importable, fmt_s, median, print_table, timed
from bench_check_scaling import chain_spec

ensure_importable()

import nndsl  # noqa: E402
from nndsl.fmt import format_text  # noqa: E402

TARGET_RATIO = 1.0  # formatting a zoo spec, with its verification, against checking it
# a long chain is mostly syntax, which fmt parses twice (the input, and its result to verify it)
# where check parses it once and its checking is cheap per layer
TARGET_CHAIN_RATIO = 4.0


def largest_zoo_spec():
    return max(sorted((SPECS / "zoo").glob("*.nn")), key=lambda p: len(p.read_bytes()))


def messy(text: str) -> str:
    """``text`` without indentation, and with the spaces around ``,``, ``=`` and ``->`` removed
    from its lines without comments."""
    lines = [line.strip() for line in text.splitlines()]
    return "\n".join(line if "#" in line else re.sub(r" ?(,|=|->) ?", r"\1", line) for line in lines) + "\n"


def compare(label: str, text: str, name: str, rounds: int, target: float = TARGET_RATIO) -> list[Figure]:
    untidy = messy(text)
    assert format_text(untidy, name) != untidy and format_text(text, name) == text
    cases = {
        "canonical": lambda: format_text(text, name),
        "messy": lambda: format_text(untidy, name),
        "check": lambda: nndsl.check_source(text, name),
    }
    for fn in cases.values():  # warm-up: the parser tables, the layer registry
        fn()
    times: dict[str, list[float]] = {key: [] for key in cases}
    ratios = []
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for key in order:
            times[key].append(timed(cases[key]))
        ratios.append(times["messy"][-1] / times["check"][-1])
    ratio = median(ratios)
    lines = text.count("\n")
    return [
        Figure(f"fmt {label} ({lines} lines): canonical, unchanged", fmt_s(median(times["canonical"]))),
        Figure(f"fmt {label}: messy, laid out and verified", fmt_s(median(times["messy"]))),
        Figure(f"fmt {label}: check_source, for scale", fmt_s(median(times["check"]))),
        Figure(f"fmt {label}: t(fmt messy) / t(check)", f"{ratio:.2f}", f"<= {target:g}", ratio <= target),
    ]


def run(rounds: int = 15, chain: int = 10_000) -> list[Figure]:
    path = largest_zoo_spec()
    figures = compare(path.name, path.read_text(encoding="utf-8"), str(path), rounds)
    if chain:
        text = chain_spec(chain)
        figures += compare(f"{chain:,}-layer chain", text, "<chain>", max(3, rounds // 5), TARGET_CHAIN_RATIO)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--chain", type=int, default=10_000, help="layers of the long chain (0: leave it out)")
    args = parser.parse_args()
    figures = run(args.rounds, args.chain)
    print_table(figures)
    sys.exit(0 if all(f.passed is not False for f in figures) else 1)


if __name__ == "__main__":
    main()
