"""Hover, inlay hints, signature help and the LSP diagnostics never raise: on every spec of the
repository (the bad ones too) and on each of them cut short, as text being typed is."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lsprotocol")

from nndsl.api import check_source  # noqa: E402
from nndsl.lsp.diagnostics import Converter  # noqa: E402
from nndsl.lsp.hover import hover  # noqa: E402
from nndsl.lsp.inlay import shape_hints  # noqa: E402
from nndsl.lsp.positions import LineIndex  # noqa: E402
from nndsl.lsp.signature import signature_at  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.nn"))


def exercise(text: str, path: Path, step: int) -> None:
    result = check_source(text, str(path))
    index = LineIndex(result.source.text)
    converter = Converter(path.as_uri(), result)
    for d in converter.all():
        assert d.range.start.line <= d.range.end.line
    converter.elsewhere()
    for offset, label in shape_hints(result, index, 0, len(text)):
        assert 0 <= offset <= len(text) and label
    for offset in range(0, len(text) + 1, step):
        answer = hover(result, offset)
        if answer is not None:
            markdown, span = answer
            assert markdown and span.start <= offset <= span.end
        found = signature_at(text, offset, result)
        if found is not None and found.active is not None:
            assert 0 <= found.active < len(found.names)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_spec_whole_and_cut_short(path: Path):
    text = path.read_text(encoding="utf-8")
    exercise(text, path, 3)
    for cut in range(len(text) // 7, len(text), max(1, len(text) // 7)):
        exercise(text[:cut], path, 11)
