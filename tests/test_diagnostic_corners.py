"""Ordinary mistakes whose diagnostics used to mislead: each gets the code, the place and the help
a user needs."""

from __future__ import annotations

import pytest

from nndsl.api import check_source


def _only(text: str):
    result = check_source(text)
    assert len(result.errors) == 1, [d.message for d in result.diagnostics]
    diag = result.errors[0]
    return diag, text[diag.span.start : diag.span.end]


def test_a_layer_called_on_a_tensor_says_how_to_apply_it() -> None:
    diag, at = _only("model M(x: [N, 4]) {\n    y = ReLU(x)\n    y\n}\n")
    assert (diag.code, at) == ("E106", "x")
    assert diag.help == "a layer's arguments are its settings; to apply ReLU to x, write x -> ReLU"
    diag, _ = _only("model M(x: [N, 4]) {\n    Linear(x, 4)\n}\n")
    assert diag.help.endswith("write x -> Linear(...)")


def test_an_undefined_one_letter_size_is_an_undefined_name() -> None:
    diag, at = _only("model M(x: [N, 8]) {\n    x[:, :S]\n}\n")
    assert (diag.code, at, diag.message) == ("E108", "S", "undefined name 'S'")
    assert "x: [N, S]" in diag.help


def test_an_unknown_capitalised_word_is_still_an_unknown_layer() -> None:
    for name in ("Foo", "MLP", "RELU"):
        diag, at = _only(f"model M(x: [N, 8]) {{\n    x -> {name}\n}}\n")
        assert (diag.code, at) == ("E101", name)


def test_extra_positional_arguments_are_one_error() -> None:
    diag, at = _only("model M(x: [N, 8]) {\n    Linear(8, 8, True, 1, 2)\n}\n")
    assert (diag.code, at, diag.label) == ("E104", "1, 2", "2 unexpected arguments")
    assert diag.message == "Linear takes at most 3 positional arguments, got 5"
    diag, at = _only("model M(x: [N, 8]) {\n    Linear(8, 8, True, 3)\n}\n")
    assert (at, diag.label, diag.message[-5:]) == ("3", "unexpected argument", "got 4")


def test_a_pattern_size_named_as_a_parameter_must_be_its_value() -> None:
    text = "block B(x: [N, C], C) {\n    Linear(C, C)\n}\nmodel M(x: [N, 8]) {\n    B(4)\n}\n"
    diag, at = _only(text)
    assert (diag.code, at) == ("E201", "B(4)")  # at the use, not inside the body
    assert diag.message == "B expects C = 4 in its input [N, C] (its parameter C), got [N, 8]"
    assert check_source(text.replace("B(4)", "B(8)")).ok


def test_a_chained_comparison_says_comparisons_do_not_chain() -> None:
    for text, op in (("let a = 1 < 2 < 3\n", "<"), ("model M(x: [N, 8]) {\n    m = x > 0 == 1\n    m\n}\n", "==")):
        result = check_source(text)
        (diag,) = [d for d in result.diagnostics if d.code == "E001"]
        assert text[diag.span.start : diag.span.end] == op
        assert diag.help.startswith("comparisons do not chain")
    # a comparison after a closed bracket or a comma is not a chain
    result = check_source("let a = (1 < 2)\nlet b = [1 < 2, 3 < 4]\nmodel M(x: [N, 8]) {\n    Linear(8, 8)\n}\n")
    assert result.ok


def test_let_in_a_body_is_one_error_that_says_to_drop_let() -> None:
    text = "model M(x: [N, 8]) {\n    let k = 3\n    y = x -> ReLU\n    x -> Linear(8, k)\n}\n"
    result = check_source(text)
    (diag,) = result.diagnostics  # no knock-on error for the rest of the body
    assert (diag.code, text[diag.span.start : diag.span.end]) == ("E001", "let")
    assert diag.help == "inside a body, a constant is defined without 'let': write k = 3"


def test_an_indented_item_after_a_closed_body_still_starts_an_item() -> None:
    text = "model M(x: [N, 8]) {\n    x -> Linear(8, 8) ->\n}\n  let k = 3\n  model B(x: [N, 2]) {\n    Linear(2, 2)\n  }\n"
    result = check_source(text)
    assert [d.code for d in result.diagnostics] == ["E001"]
    assert [m.name for m in result.program.models] == ["B"]  # the item after the broken one checks


SYNTAX_HELP = {
    "model M(x: [N, 784]) Linear(784, 10)\n": ("Linear", "a body is written in braces: model Name(...) { ... }"),
    "model M(x: [N, 1, 28, 28]):\n    Conv2d(1, 32, 3)\n": (
        ":",
        "a body is written in braces: model Name(...) { ... }",
    ),
    "block B(c) Linear(c, c)\n": ("Linear", "a body is written in braces: block Name(...) { ... }"),
    'import "blocks.nn"\nmodel M(x: [N, 4]) {\n    Linear(4, 4)\n}\n': (
        "import",
        'name the file and what to take from it: from "blocks.nn" import Name',
    ),
    "from blocks.nn import X\nmodel M(x: [N, 4]) {\n    Linear(4, 4)\n}\n": (
        "blocks",
        'the path is a string: from "blocks.nn" import ...',
    ),
    "model M(x: [N, 4]) {\n    Linear(4, 4) ->\n}\n": (
        "}",
        "the chain ends with '->': add the next layer, or remove the '->'",
    ),
    "model M(x: [N, 4]) {\n    Linear(4, 4);\n}\n": (";", "a statement ends at the end of its line: remove the ';'"),
    "model M(x: (N, 4)) {\n    Linear(4, 4)\n}\n": ("(", "a shape is written in brackets: x: [N, 784]"),
    "model M(x: [N, 2]) {\n    Linear(2, 2)\n}\ntrain M {\n    optimizer: Adam(lr=0.001)\n}\n": (
        ":",
        "a setting is written name = value",
    ),
}


@pytest.mark.parametrize("text", sorted(SYNTAX_HELP))
def test_common_syntax_mistakes_say_what_to_write(text: str) -> None:
    at, help = SYNTAX_HELP[text]
    result = check_source(text)
    diag = result.diagnostics[0]
    assert diag.code in ("E001", "E002")
    assert text[diag.span.start : diag.span.end] == at
    assert diag.help == help


def test_an_abbreviated_keyword_is_taken_for_the_parameter_it_begins() -> None:
    diag, at = _only("model M(x: [N, 4]) {\n    Linear(in_features=4, out=4)\n}\n")
    assert (diag.code, at, diag.help) == ("E102", "out", "did you mean 'out_features'?")


def test_optimizer_arguments_written_as_settings_say_where_they_go() -> None:
    text = (
        "model M(x: [N, 2]) {\n    Linear(2, 2)\n}\ntrain M {\n    data = xor()\n    loss = CrossEntropyLoss()\n"
        "    learning_rate = 0.1\n    momentum = 0.9\n    scheduler = StepLR(step_size=2)\n}\n"
    )
    helps = {text[d.span.start : d.span.end]: d.help for d in check_source(text).errors}
    assert helps == {
        "learning_rate": "the learning rate is an argument of the optimizer: optimizer = SGD(lr=0.1) (or Adam, ...)",
        "momentum": "momentum is an argument of the optimizer: optimizer = SGD(momentum=0.9) (or Adam, ...)",
        "scheduler": "the setting is called schedule: schedule = StepLR(step_size=2)",
    }


def test_feature_maps_into_a_linear_suggest_flattening_them() -> None:
    diag, _ = _only("model M(x: [N, 3, 32, 32]) {\n    Conv2d(3, 64, 3) -> Linear(64, 10)\n}\n")
    assert diag.code == "E201"
    assert "write Flatten -> Linear(57600, 10)" in diag.help and "change in_features to 30" in diag.help
    fixed = check_source("model M(x: [N, 3, 32, 32]) {\n    Conv2d(3, 64, 3) -> Flatten -> Linear(57600, 10)\n}\n")
    assert fixed.ok


def test_a_repetition_whose_body_changes_the_shape_says_so() -> None:
    diag, at = _only("model M(x: [N, 16]) {\n    Linear(16, 8) * 3\n}\n")
    assert (diag.code, at) == ("E201", "Linear(16, 8)")
    assert diag.notes == (
        "a repetition applies its body to the output of the copy before: copy 2 gets [N, 8], "
        "where the first got [N, 16]",
    )
    assert diag.help.startswith("repeat a body that gives back the shape it takes ([N, 16])")


def test_flat_samples_into_a_convolution_suggest_unflattening_them() -> None:
    diag, _ = _only("model M(x: [N, 784]) {\n    Conv2d(1, 16, 3)\n}\n")
    assert diag.code == "E202"
    assert diag.help.startswith("make the flat samples images first: Unflatten(1, (1, 28, 28))")
    assert check_source("model M(x: [N, 784]) {\n    Unflatten(1, (1, 28, 28)) -> Conv2d(1, 16, 3)\n}\n").ok
    diag, _ = _only("model M(x: [N, 785]) {\n    Conv2d(1, 16, 3)\n}\n")
    assert diag.help is None  # 785 is no square image


def test_a_batchnorm_of_the_wrong_rank_names_the_one_that_fits() -> None:
    diag, _ = _only("model M(x: [N, 3, 32, 32]) {\n    Conv2d(3, 16, 3) -> BatchNorm1d(16)\n}\n")
    assert (diag.code, diag.help) == ("E202", "BatchNorm2d takes a 4-D input such as [N, 16, 30, 30]")
