"""Quick fixes: each exact edit a diagnostic's help names makes that diagnostic go away."""

from __future__ import annotations

import pytest

from nndsl.api import check_source
from nndsl.lsp.fixes import quick_fixes

CASES = {
    "E201 Linear": (
        "model M(x: [N, 1, 28, 28]) {\n    x -> Flatten -> Linear(784, 512) -> Linear(256, 10)\n}\n",
        "E201",
        ["Change in_features to 512", "Insert Linear(512, 256) before this layer"],
    ),
    "E201 Linear, forgotten Flatten": (
        "model M(x: [N, 1, 28, 28]) {\n    x -> Linear(784, 10)\n}\n",
        "E201",
        ["Insert Flatten before this layer"],
    ),
    "E201 Conv2d": (
        "model M(x: [N, 3, 32, 32]) {\n    x -> Conv2d(4, 8, 3) -> ReLU\n}\n",
        "E201",
        ["Change in_channels to 3"],
    ),
    "E201 BatchNorm2d by keyword": (
        "model M(x: [N, 3, 32, 32]) {\n    x -> Conv2d(3, 8, 3) -> BatchNorm2d(num_features=6)\n}\n",
        "E201",
        ["Change num_features to 8"],
    ),
    "E201 LSTM": (
        "model M(x: [N, 5, 7]) {\n    x -> LSTM(8, 16, batch_first=True).output\n}\n",
        "E201",
        ["Change input_size to 7"],
    ),
    "W302 InstanceNorm1d": (
        "model M(x: [N, 3, 32]) {\n    x -> InstanceNorm1d(4, affine=False)\n}\n",
        "W302",
        ["Change num_features to 3"],
    ),
    "E101 layer": ("model M(x: [N, 4]) {\n    x -> Linear(4, 3) -> ReLu\n}\n", "E101", ["Change 'ReLu' to 'ReLU'"]),
    "E101 block": (
        "block Head(x: [N, C], k) {\n    Linear(C, k)\n}\nmodel M(x: [N, 4]) {\n    x -> Haed(3)\n}\n",
        "E101",
        ["Change 'Haed' to 'Head'"],
    ),
    "E101 dimension": (
        "model M(x: [N, 3, 32, 32]) {\n    x -> Conv(3, 8, 3)\n}\n",
        "E101",
        ["Change 'Conv' to 'Conv1d'", "Change 'Conv' to 'Conv2d'", "Change 'Conv' to 'Conv3d'"],
    ),
    "E102 argument": (
        "model M(x: [N, 4]) {\n    x -> Linear(4, 3, bais=False)\n}\n",
        "E102",
        ["Change 'bais' to 'bias'"],
    ),
    "E108 name": (
        "let hidden = 3\nmodel M(x: [N, 4]) {\n    x -> Linear(4, hiden)\n}\n",
        "E108",
        ["Change 'hiden' to 'hidden'"],
    ),
    "E502 loss": (
        "model M(x: [N, 64]) {\n    x -> Linear(64, 10)\n}\ntrain M {\n    loss = CrossEntropyLos()\n"
        "    data = digits()\n}\n",
        "E502",
        ["Change 'CrossEntropyLos' to 'CrossEntropyLoss'"],
    ),
    "E501 setting": (
        "model M(x: [N, 64]) {\n    x -> Linear(64, 10)\n}\ntrain M {\n    loss = CrossEntropyLoss()\n"
        "    data = digits()\n    epoks = 3\n}\n",
        "E501",
        ["Change 'epoks' to 'epochs'"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_fix_makes_its_diagnostic_go_away(case):
    text, code, titles = CASES[case]
    result = check_source(text)
    [diag] = [d for d in result.diagnostics if d.code == code]
    fixes = quick_fixes(diag, result.module)
    assert [f.title for f in fixes] == titles
    for fix in fixes:
        fixed = text[: fix.span.start] + fix.text + text[fix.span.end :]
        again = check_source(fixed)
        assert not [d for d in again.diagnostics if d.code == code], (fix, fixed)


def test_a_single_exact_fix_is_preferred_and_alternatives_are_not():
    text, _, _ = CASES["E201 Linear"]
    result = check_source(text)
    assert [f.preferred for f in quick_fixes(result.diagnostics[0], result.module)] == [True, False]
    text, _, _ = CASES["E101 dimension"]
    result = check_source(text)
    assert not any(f.preferred for f in quick_fixes(result.diagnostics[0], result.module))


def test_no_fix_where_the_help_names_no_exact_edit_or_inside_a_blocks_use(tmp_path):
    result = check_source("model M(x: [N, 4]) {\n    x -> Dropout(p=1.5)\n}\n")
    assert [d.code for d in result.diagnostics] == ["E107"]
    assert quick_fixes(result.diagnostics[0], result.module) == []
    (tmp_path / "b.nn").write_text("block B(x: [N, C], h) {\n    Linear(C, h) -> Linear(7, 3)\n}\n")
    main = tmp_path / "main.nn"
    text = 'from "b.nn" import B\nmodel M(x: [N, 4]) {\n    x -> B(8)\n}\n'
    result = check_source(text, str(main))
    [diag] = result.diagnostics
    assert diag.code == "E201" and diag.notes  # reported in b.nn, for this use
    assert quick_fixes(diag, result.module) == []  # an edit there would change every use
    text = "block B(x: [N, C], h) {\n    Linear(C, h) -> Linear(7, 3)\n}\nmodel M(x: [N, 4]) {\n    x -> B(8)\n}\n"
    result = check_source(text)
    [diag] = result.diagnostics
    assert diag.code == "E201" and "in this use of B" in diag.secondary[-1].message
    assert quick_fixes(diag, result.module) == []
