"""The language reference names every diagnostic, and its mistakes raise what it says.

A block of the reference fenced as ```` ```nn-error E201 ```` is a whole spec showing a mistake:
checking it must raise that code. Every code of the catalogue has a row in the reference's table
of diagnostics (docs/language.md), and every code that a spec's text can raise has such an
example, apart from the codes listed below with the reason why."""

from __future__ import annotations

import re

import pytest
from test_docs_examples import REFERENCE, check_with_files, code_blocks, tagged

from nndsl.diagnostics import CATALOGUE

# codes that no example of a spec's text can show, each with the reason
NO_EXAMPLE = {
    "E003": "raised when a file's bytes are not UTF-8: a page of text cannot hold such a spec",
    "E004": "raised for a spec larger than 1 MiB",
    "W304": "raised by the command line's --input, not by a spec",
    "E601": "raised by an ONNX export, not by a check",
    "E602": "raised by an export with a weights file that does not fit the model",
    "E603": "raised by an ONNX export, not by a check",
    "E604": "raised by an ONNX export whose verification against torch failed",
    "E605": "raised by an ONNX export, not by a check",
}


def _mistakes() -> list:
    found = []
    for page in REFERENCE:
        blocks = code_blocks(page)
        for block in blocks:
            codes = tagged(block, "nn-error")
            if codes is not None:
                found.append(pytest.param(block, codes, blocks, id=block.where))
    return found


@pytest.mark.parametrize(("block", "codes", "page_blocks"), _mistakes())
def test_a_mistake_raises_the_code_it_names(block, codes, page_blocks, tmp_path):
    assert codes and all(code in CATALOGUE for code in codes), f"{block.where}: tag it `nn-error CODE`"
    raised = {d.code for d in check_with_files(block, page_blocks, tmp_path).diagnostics}
    assert set(codes) <= raised, f"{block.where} raises {sorted(raised)}, not {list(codes)}"


def test_every_code_a_spec_can_raise_has_a_mistake_example():
    shown = {code for param in _mistakes() for code in param.values[1]}
    missing = sorted(set(CATALOGUE) - shown - set(NO_EXAMPLE))
    assert not missing, f"codes with no `nn-error` example in the language reference: {missing}"
    assert not set(NO_EXAMPLE) - set(CATALOGUE), "an exception names a code the catalogue does not have"
    assert not set(NO_EXAMPLE) & shown, "an exception has an example after all: remove it from NO_EXAMPLE"


def test_the_index_of_diagnostics_has_every_code():
    index = REFERENCE[0].read_text().split("## Diagnostics", 1)[1]
    rows = re.findall(r"^\| ([EWN]\d{3}) \|", index, re.M)
    assert sorted(rows) == sorted(CATALOGUE), "docs/language.md's table of diagnostics lists each code once"
