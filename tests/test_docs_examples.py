"""The complete spec examples of the README and the language reference check clean: a reader who
copies one gets a model, not an error. Abridged examples (marked so) and fragments are left out."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

import nndsl

PAGES = [ROOT / "README.md", ROOT / "docs" / "language.md"]


def _examples() -> list:
    found = []
    for page in PAGES:
        for number, block in enumerate(re.findall(r"```\n(.*?)```", page.read_text(), re.S)):
            if re.search(r"^model \w+\(", block, re.M) and "abridged" not in block and "import" not in block:
                found.append(pytest.param(block, id=f"{page.name}:{number}"))
    return found


def test_the_pages_have_complete_examples():
    assert len(_examples()) >= 2


@pytest.mark.parametrize("text", _examples())
def test_a_complete_example_checks_clean(text):
    result = nndsl.check_source(text)
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
