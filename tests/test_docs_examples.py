"""The complete spec examples of the README and the language reference check clean: a reader who
copies one gets a model, not an error. Abridged examples (marked so) and fragments are left out.

The reference pages tag their examples: a block fenced as ```` ```nn ```` is a whole spec that
checks clean (```` ```nn file=parts.nn ```` also names the file, so that another example of the
page can import it); an untagged or indented block that defines a model is one too, unless it is
abridged, elided (a line of `...`) or shows a diagnostic (`error[`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import ROOT

import nndsl

REFERENCE = [ROOT / "docs" / "language.md", *sorted((ROOT / "docs" / "language").glob("*.md"))]
PAGES = [ROOT / "README.md", *REFERENCE]

_FENCED = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)


class Block(NamedTuple):
    """One code block of a page: its info string (``nn file=a.nn``, ``nn-error E201``; empty for an
    untagged or indented block), its text and its place (``page:line``)."""

    info: str
    text: str
    where: str


def code_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, and the indented ones outside them."""
    text = page.read_text()
    found = []
    for match in _FENCED.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match.group(1).strip(), match.group(2), f"{page.name}:{line}"))
    outside = _FENCED.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    lines = outside.split("\n")
    start = None
    for number, line in enumerate([*lines, "end"]):
        indented = line.startswith("    ") or (start is not None and not line.strip())
        if indented and start is None and line.strip():
            start = number
        elif not indented and start is not None:
            body = "\n".join(item[4:] for item in lines[start:number])
            found.append(Block("", body.rstrip() + "\n", f"{page.name}:{start + 1}"))
            start = None
    return found


def tagged(block: Block, tag: str) -> tuple[str, ...] | None:
    """The words after ``tag`` in a block's info string, or None for a block of another tag."""
    words = block.info.split()
    return tuple(words[1:]) if words and words[0] == tag else None


def check_with_files(block: Block, page_blocks: list[Block], tmp_path: Path) -> nndsl.Result:
    """Check a block as a file beside the page's named examples (``nn file=NAME``), so that an
    example may import another."""
    name = "example.nn"
    for other in page_blocks:
        options = tagged(other, "nn") or ()
        for option in options:
            if option.startswith("file="):
                (tmp_path / option[5:]).write_text(other.text)
                if other is block:
                    name = option[5:]
    path = tmp_path / name
    path.write_text(block.text)
    return nndsl.check_file(path)


def _complete(block: Block) -> bool:
    if tagged(block, "nn") is not None:
        return True
    if block.info:
        return False
    text = block.text
    return (
        re.search(r"^model \w+\(", text, re.M) is not None
        and "abridged" not in text
        and "import" not in text
        and "error[" not in text
        and re.search(r"^\s*\.\.\.\s*$", text, re.M) is None
    )


def _examples() -> list:
    found = []
    for page in PAGES:
        blocks = code_blocks(page)
        for block in blocks:
            if _complete(block):
                found.append(pytest.param(block, blocks, id=block.where))
    return found


def test_the_pages_have_complete_examples():
    examples = _examples()
    assert len(examples) >= 40
    assert {param.values[0].where.split(":")[0] for param in examples} >= {"core.md", "language.md", "README.md"}


@pytest.mark.parametrize(("block", "page_blocks"), _examples())
def test_a_complete_example_checks_clean(block, page_blocks, tmp_path):
    result = check_with_files(block, page_blocks, tmp_path)
    assert result.ok and not result.diagnostics, [f"{d.code} {d.message}" for d in result.diagnostics]


def test_the_block_reader_finds_tags_and_indented_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```nn file=a.nn\nlet w = 2\n```\n\n    model M(x: [N, 2]) {\n        x\n\n        -> ReLU\n"
        "    }\n\nafter\n```nn-error E201\nmodel M(x: [N, 4]) { x -> Linear(8, 2) }\n```\n"
    )
    blocks = code_blocks(page)
    assert [(b.info, b.where) for b in blocks] == [
        ("nn file=a.nn", "page.md:3"),
        ("nn-error E201", "page.md:14"),
        ("", "page.md:7"),
    ]
    assert blocks[2].text == "model M(x: [N, 2]) {\n    x\n\n    -> ReLU\n}\n"
    assert tagged(blocks[1], "nn-error") == ("E201",) and tagged(blocks[1], "nn") is None
    assert [_complete(b) for b in blocks] == [True, False, True]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCED.sub("", page.read_text())
    return {_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("page", REFERENCE, ids=lambda page: page.name)
def test_the_reference_links_lead_to_a_page_and_a_section(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _FENCED.sub("", page.read_text())):
        if re.match(r"\w+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.is_file() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert not broken, f"links of {page.name} that lead nowhere: {broken}"


def test_anchors_are_githubs():
    assert _anchor("Constants: `let`") == "constants-let"
    assert _anchor("Shapes the checker cannot decide, and torch's warnings") == (
        "shapes-the-checker-cannot-decide-and-torchs-warnings"
    )
