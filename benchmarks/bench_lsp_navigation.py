"""The editor's navigation and completion (``nndsl.lsp.symbols``, ``nndsl.lsp.completion``) on
the ResNet-50 spec with its imported blocks and on the 10,000-layer chain of
``bench_check_scaling`` (wrapped in a model), medians over ``--rounds``:

* ``index``: the name index of a fresh check result (built once per result, on first use);
* ``definition`` / ``references``: one request (on the spec's last name that has a definition)
  on a result whose index exists;
* ``complete``: one completion at the end of the last chain line (the text scan and the items);
* ``check``: ``check_source`` of the same text, for scale.

An editor asks these after each re-check, which must answer in under 30 ms in all on ResNet-50:
the target is that the index and a completion together stay under that. The chain is the worst
case, whose check alone takes far longer: there they must stay under a tenth of its check.
"""

from __future__ import annotations

import argparse
import sys

from _common import SPECS, Figure, ensure_importable, fmt_s, median, print_table, timed
from bench_check_scaling import chain_spec

ensure_importable()

from nndsl.api import check_source  # noqa: E402
from nndsl.check.loading import FileCache  # noqa: E402
from nndsl.lsp import completion, symbols  # noqa: E402

BUDGET = 0.030  # seconds: an editor's whole answer after an edit


def measure(label: str, text: str, name: str, rounds: int, of_check: float | None = None) -> list[Figure]:
    """The figures of one text; the target is BUDGET, or ``of_check`` times the check's time."""
    files = FileCache()
    check = lambda: check_source(text, name, files=files)  # noqa: E731
    result = check()
    index = symbols.name_index(result)
    use = next(o.span.start for o in reversed(index.main.occurrences) if o.target is not None)  # the last name
    end = text.rindex("\n}")  # the end of the last chain line
    times: dict[str, list[float]] = {k: [] for k in ("check", "index", "definition", "references", "complete")}
    for _ in range(rounds):
        times["check"].append(timed(check))
        fresh = check()
        times["index"].append(timed(lambda fresh=fresh: symbols.name_index(fresh)))
        times["definition"].append(timed(lambda: symbols.definition(result, use)))
        times["references"].append(timed(lambda: symbols.references(result, use)))
        times["complete"].append(timed(lambda: completion.complete(result, end)))
    figures = [Figure(f"{label}: {key}", fmt_s(median(values))) for key, values in times.items()]
    total = median(times["index"]) + median(times["complete"])
    limit = BUDGET if of_check is None else of_check * median(times["check"])
    shown = f"< {fmt_s(limit)}" if of_check is None else f"< {of_check:g} x check"
    figures.append(Figure(f"{label}: index + complete", fmt_s(total), shown, total < limit))
    return figures


def run(rounds: int = 7) -> list[Figure]:
    zoo = SPECS / "zoo" / "resnet50.nn"
    figures = measure("resnet50.nn", zoo.read_text(), str(zoo), rounds)
    figures += measure("10,000-layer chain", chain_spec(10_000), "<chain>", max(3, rounds // 2), of_check=0.1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per figure (medians); default 7")
    args = parser.parse_args(argv)
    figures = run(args.rounds)
    print_table(figures, "navigation and completion")
    return 0 if all(f.passed is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
