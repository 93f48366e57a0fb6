"""A block use equal to an earlier one copies the earlier use's checked body (nndsl.check.replay):
the checked program and the diagnostics must be exactly what checking every use gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT
from test_docs_examples import PAGES, code_blocks

from nndsl.api import check_file, check_source
from nndsl.check import replay

SPECS = sorted((ROOT / "specs").rglob("*.nn")) + sorted((ROOT / "tests").rglob("*.nn"))

CORNERS = {
    # the first use fixes the input's D (W303): the second, equal but after the binding, is checked again
    "binding": """
block Head(width) {
    Linear(8, width)
}
model M(x: [N, D]) {
    a = x -> Head(4)
    b = x -> Head(4)
    a + b
}
""",
    # 1, 1.0 and True are different arguments
    "argument types": """
block B(x: [N, F], scale) {
    y = x -> Linear(4, 4)
    y * scale
}
model M(x: [N, 4]) {
    B(1) -> B(1.0) -> B(1) -> B(1.0) -> B(2)
}
""",
    # a named module applied twice in the body and a learned tensor; equal uses, a repetition
    "sharing and parameters": """
block Pair(x: [N, F], width) {
    f = Linear(width, width)
    p = Parameter([1, width], init="zeros")
    y = x -> f -> f
    y + p
}
model M(x: [N, 8]) {
    Pair(8) * 3 -> Pair(8) -> Linear(8, 2)
}
""",
    # two tensor inputs, the second different between otherwise equal uses
    "two inputs": """
block Mix(x: [N, C], y: [N, C]) {
    s = x + y
    s -> ReLU
}
model M(x: [N, 4], y: [N, 4], z: [N, 1]) {
    a = x -> Mix(y=y)
    b = a -> Mix(y=y)
    c = b -> Mix(y=z)
    c
}
""",
    # an error inside the body: reported once, at the first use
    "error": """
block Bad(width) {
    Linear(width, 4) -> Linear(5, 2)
}
model M(x: [N, 3]) {
    Bad(3) -> Linear(2, 3) -> Bad(3)
}
""",
    # a block's sub-network argument (never copied)
    "warning and sub-network": """
block Wrap(x: [N, F], inner) {
    x -> inner -> Linear(F, F)
}
model M(x: [N, 8]) {
    Wrap(inner=Linear(8, 8)) -> Wrap(inner=Linear(8, 8)) -> Wrap(inner=ReLU)
}
""",
    # nested blocks and loops
    "nested": """
block Inner(c) {
    Conv2d(c, c, 3, padding=1) -> ReLU
}
block Outer(c, n) {
    Residual(Inner(c) * n)
}
model M(x: [N, 4, 8, 8]) {
    for n in [1, 2, 1, 2] {
        Outer(4, n)
    }
    -> Outer(4, 2) * 2
}
""",
}


def _dump(result) -> str:
    models = result.program.models if result.program is not None else None
    return repr(models) + repr([d.to_json() for d in result.diagnostics])


def _both(check) -> tuple[str, str]:
    kept = _dump(check())
    replay.ENABLED = False
    try:
        full = _dump(check())
    finally:
        replay.ENABLED = True
    return kept, full


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_checks_the_same_with_copied_bodies(path: Path) -> None:
    kept, full = _both(lambda: check_file(path))
    assert kept == full


@pytest.mark.parametrize("name", sorted(CORNERS))
def test_corners_check_the_same_with_copied_bodies(name: str) -> None:
    kept, full = _both(lambda: check_source(CORNERS[name]))
    assert kept == full


def test_docs_examples_check_the_same_with_copied_bodies(tmp_path: Path) -> None:
    blocks = [b for page in PAGES for b in code_blocks(page) if "model" in b.text or "->" in b.text]
    assert len(blocks) > 50
    for block in blocks:
        named = dict(w.split("=", 1) for w in block.info.split()[1:] if "=" in w)
        if "file" in named:  # a file another example imports
            (tmp_path / named["file"]).write_text(block.text)
    for block in blocks:
        spec = tmp_path / "example.nn"
        spec.write_text(block.text)
        kept, full = _both(lambda: check_file(spec))  # noqa: B023 - called at once
        assert kept == full, block.where


def test_resnet50_checks_each_distinct_use_once(monkeypatch: pytest.MonkeyPatch) -> None:
    copies = []
    real = replay.replay

    def counted(body, state, inputs):
        copies.append(body)
        return real(body, state, inputs)

    monkeypatch.setattr(replay, "replay", counted)
    result = check_file(ROOT / "specs" / "zoo" / "resnet50.nn")
    assert result.ok and result.program.models[0].param_count == 25_557_032
    # 16 Bottleneck uses, 8 distinct (a stage's first use, then its repeats)
    assert len(copies) == 8
