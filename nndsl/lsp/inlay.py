"""Inlay hints: the output shape at the end of each line of a chain."""

from __future__ import annotations

from nndsl.api import Result
from nndsl.lsp import nodes
from nndsl.lsp.positions import LineIndex


def shape_hints(result: Result, index: LineIndex, start: int, end: int) -> list[tuple[int, str]]:
    """(offset, label) for each line of ``[start, end)`` where a chain step ends: the shape the
    line's last step outputs, placed after it. In a block's body, the first use's shape, with
    how many uses there are when they differ."""
    last: dict[int, tuple[int, int, object, object]] = {}  # line -> (end, length, model, node): the outermost last step
    shapes: dict[tuple[int, int], list[str]] = {}  # a span -> the shapes of its uses
    for model, node in nodes.here(result):
        span = node.span
        if not (start <= span.end <= end) or span.end <= span.start:
            continue
        text = nodes.output_text(model, node)
        uses = shapes.setdefault((span.start, span.end), [])
        uses.append(text)
        if len(uses) > 1:
            continue
        line = index.position(span.end)[0]
        key = (span.end, span.end - span.start, model, node)
        kept = last.get(line)
        if kept is None or key[:2] > kept[:2]:
            last[line] = key
    hints = []
    for _line, (offset, _length, _model, node) in sorted(last.items()):
        uses = shapes[(node.span.start, node.span.end)]
        label = uses[0]
        if any(u != label for u in uses):
            label += f" (first of {len(uses)} uses)"
        hints.append((offset, label))
    return hints
