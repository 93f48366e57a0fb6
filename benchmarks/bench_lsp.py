"""The language server's latency in-process: from an edit to the published diagnostics, through the
server's update path (``Session.changed``: the shared FileCache, the check, the conversion to LSP
diagnostics with their quick fixes), without the debounce timer and without the JSON-RPC transport.

* ``resnet50``: specs/zoo/resnet50.nn open with its imported blocks cached; each repeat edits the
  classifier's size (``Linear(2048, 1000)`` <-> ``Linear(2048, 1001)``) and times the update;
* ``resnet50 via its blocks``: resnet_blocks.nn open too and edited (a width in Bottleneck): the
  block file and the model that imports it are both checked and published;
* ``10,000-layer chain``: the ``Linear(64, 64) -> ReLU`` chain of bench_check_scaling in a model,
  edited at its last layer: the worst case; and hover on a layer in its middle and the inlay hints
  of a screenful (60 lines) and of the whole file on it.

Medians over ``--repeats``; a ``gc.collect()`` before each timed call, untimed.
"""

from __future__ import annotations

import argparse
import sys

from _common import SPECS, Figure, ensure_importable, fmt_s, median, print_table, timed

ensure_importable()

from nndsl.lsp.hover import hover  # noqa: E402
from nndsl.lsp.inlay import shape_hints  # noqa: E402
from nndsl.lsp.session import Session  # noqa: E402

TARGET_RESNET_S = 0.030


def _session() -> tuple[Session, dict]:
    published: dict[str, int] = {}

    def publish(uri, diagnostics, version) -> None:
        published[uri] = len(diagnostics)

    def log(message: str) -> None:
        raise RuntimeError(message)

    return Session(publish, log), published


def edit_latency(
    session: Session, published: dict, uri: str, texts: tuple[str, str], watch: list[str], repeats: int
) -> float:
    """Median seconds from replacing ``uri``'s text (alternating ``texts``) to the diagnostics of
    every document in ``watch`` published."""
    times = []
    for i in range(repeats + 1):
        text = texts[i % 2]

        def update(text: str = text, version: int = i) -> None:
            session.workspace.change(uri, text, version)
            session.changed(uri)

        for w in watch:
            published.pop(w, None)
        seconds = timed(update)
        assert all(w in published for w in watch), "an update published nothing"
        if i:  # the first one warms up
            times.append(seconds)
    return median(times)


def resnet_figures(repeats: int) -> list[Figure]:
    session, published = _session()
    model = SPECS / "zoo" / "resnet50.nn"
    blocks = SPECS / "zoo" / "resnet_blocks.nn"
    text = model.read_text(encoding="utf-8")
    uri = model.as_uri()
    session.workspace.open(uri, text, 0)
    session.changed(uri)  # reads and parses the imported blocks once: they stay cached
    assert published[uri] == 0, "resnet50.nn should check clean"
    edited = text.replace("Linear(2048, 1000)", "Linear(2048, 1001)")
    model_s = edit_latency(session, published, uri, (edited, text), [uri], repeats)
    reads = session.workspace.files.reads
    blocks_text = blocks.read_text(encoding="utf-8")
    blocks_uri = blocks.as_uri()
    session.workspace.open(blocks_uri, blocks_text, 0)
    session.changed(blocks_uri)
    wider = blocks_text.replace("width = planes * 4", "width = planes * 4 + 0")
    assert wider != blocks_text
    blocks_s = edit_latency(session, published, blocks_uri, (wider, blocks_text), [blocks_uri, uri], repeats)
    assert session.workspace.files.reads == reads, "the imports were read from disk again"
    return [
        Figure(
            "lsp: resnet50.nn edited -> diagnostics published", fmt_s(model_s), "< 30 ms", model_s < TARGET_RESNET_S
        ),
        Figure("lsp: resnet_blocks.nn edited -> it and resnet50.nn published", fmt_s(blocks_s)),
    ]


def chain_figures(n: int, repeats: int) -> list[Figure]:
    from bench_check_scaling import chain_spec

    session, published = _session()
    text = chain_spec(n)
    uri = "untitled:chain.nn"
    session.workspace.open(uri, text, 0)
    session.changed(uri)
    assert published[uri] == 0, "the generated chain should check clean"
    last = text.rindex("Linear(64, 64)")
    edited = text[:last] + "Linear(64, 65)" + text[last + len("Linear(64, 64)") :]
    edit_s = edit_latency(session, published, uri, (edited, text), [uri], repeats)
    session.workspace.change(uri, text, 0)
    session.changed(uri)
    doc = session.workspace.get(uri)
    result = doc.result
    middle = text.index("Linear(64, 64)", len(text) // 2) + 2
    hover_s = median([timed(lambda: hover(result, middle)) for _ in range(repeats)])
    assert hover(result, middle) is not None
    start = doc.index.offset(n // 4, 0)
    end = doc.index.offset(n // 4 + 60, 0)
    screen_s = median([timed(lambda: shape_hints(result, doc.index, start, end)) for _ in range(repeats)])
    assert len(shape_hints(result, doc.index, start, end)) >= 59
    whole_s = median([timed(lambda: shape_hints(result, doc.index, 0, len(text))) for _ in range(repeats)])
    label = f"{n:,}-layer chain"
    return [
        Figure(f"lsp: {label} edited -> diagnostics published", fmt_s(edit_s)),
        Figure(f"lsp: {label}: hover on a layer", fmt_s(hover_s)),
        Figure(f"lsp: {label}: inlay hints of 60 lines", fmt_s(screen_s)),
        Figure(f"lsp: {label}: inlay hints of the whole file", fmt_s(whole_s)),
    ]


def run(repeats: int = 21, chain: int = 10_000, chain_repeats: int = 5) -> list[Figure]:
    figures = resnet_figures(repeats)
    if chain:
        figures += chain_figures(chain, chain_repeats)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--chain", type=int, default=10_000, help="layers of the long chain (0: leave it out)")
    parser.add_argument("--chain-repeats", type=int, default=5)
    args = parser.parse_args()
    figures = run(args.repeats, args.chain, args.chain_repeats)
    print_table(figures)
    sys.exit(0 if all(f.passed is not False for f in figures) else 1)


if __name__ == "__main__":
    main()
