"""The checker's diagnostics, one per kind of mistake, with their positions; and symbolic sizes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nndsl
from nndsl import shapes
from nndsl.diagnostics import Severity, render_text
from nndsl.shapes import Sym


def diags(text, input=None):
    result = nndsl.check_source(text, "t.nn", input=input)
    return result, [(d.code, d.message, d.line_col) for d in result.diagnostics]


def codes(text, input=None):
    return [c for c, _, _ in diags(text, input)[1]]


@pytest.mark.parametrize(
    ("text", "code", "fragment", "line_col"),
    [
        ("model M(x: [N, 4]) { Linear(4, 2, bogus=1) }", "E102", "Linear has no argument 'bogus'", (1, 35)),
        ("model M(x: [N, 4]) { Linear(4, 2, True, 5) }", "E104", "at most 3 positional arguments", (1, 41)),
        ("model M(x: [N, 4]) { Conv2d(4, 2) }", "E105", "missing the required argument 'kernel_size'", (1, 22)),
        ("model M(x: [N, 4]) { Linear(4, 2.5) }", "E106", "out_features of Linear must be a positive integer", (1, 32)),
        ("model M(x: [N, 4]) { Linear(4, -2) }", "E107", "must be positive, got -2", (1, 32)),
        ("model M(x: [N, 4]) { Linear(4, k) }", "E108", "undefined name 'k'", (1, 32)),
        ("let a = 1\nlet a = 2\nmodel M(x: [N, 4]) { Linear(4, a) }", "E109", "'a' is already defined", (2, 5)),
        ("model M(x: [N, 4]) { ReLU }\nmodel M(x: [N, 4]) { ReLU }", "E109", "model 'M' is defined twice", (2, 7)),
        ("let a = 4 // 0\nmodel M(x: [N, 4]) { ReLU }", "E110", "division by zero", (1, 9)),
        ("let a = 'x' * 2\nmodel M(x: [N, 4]) { ReLU }", "E110", "unsupported operand", (1, 9)),
        ("model M(x: [N, 4]) { Linear(4, 2).last }", "E111", "Linear has no output 'last'", (1, 35)),
        ("model M(x: [N, T, 4]) { LSTM(4, 2).cell }", "E111", "LSTM has no output 'cell'", (1, 36)),
        ("model M(x: float8[N, 4]) { ReLU }", "E112", "unknown dtype 'float8'", (1, 12)),
        ("model M(x: [N, -4]) { ReLU }", "E112", "cannot be negative", (1, 16)),
        ("model M(x: [N, 4], y: [N, 4]) { ReLU }", "E114", "chain has no input", (1, 33)),
        ("model M(x: [N, 4]) { Linear(in_features=4, 2) }", "E001", "positional argument after a keyword", (1, 44)),
        ("model M(x: [N, 784]) { Linear(256, 10) }", "E201", "expects 256 input features, got 784", (1, 24)),
        ("model M(x: [N, 784]) { Conv2d(1, 4, 3) }", "E202", "expects a 3-D (unbatched) or 4-D", (1, 24)),
        ("A -> B\nC -> D", "E109", "at most one bare chain", (2, 1)),
    ],
)
def test_each_mistake_has_its_diagnostic(text, code, fragment, line_col):
    result, found = diags(text)
    assert not result.ok
    matching = [f for f in found if f[0] == code]
    assert matching, found
    assert fragment in matching[0][1]
    assert matching[0][2] == line_col


def test_all_errors_in_a_file_are_reported():
    text = """
    model A(x: [N, 4]) { Linear(4, 2) -> Linear(3, 1) }
    model B(x: [N, 4]) { Lineer(4, 2) }
    model C(x: [N, 4]) { Dropout(2.0) -> ReLU(inplace=1) }
    """
    assert codes(text) == ["E201", "E101", "E107", "E106"]


def test_errors_after_a_fatal_one_in_the_same_chain_are_still_reported():
    # the wrong-rank conv stops shape inference, but the later argument error is still found
    assert codes("model M(x: [N, 4]) { Conv2d(4, 8, 3) -> Linear(8, -1) }") == ["E202", "E107"]


def test_did_you_mean_for_layers_and_arguments():
    result, _ = diags("model M(x: [N, 4]) { linear(4, 2) -> Linear(4, 2, baias=False) }")
    helps = [d.help for d in result.diagnostics]
    assert "did you mean 'Linear'?" in helps
    assert "did you mean 'bias'?" in helps


def test_secondary_label_points_at_producer():
    result = nndsl.check_source("model M(x: [N, 3, 32, 32]) {\n  Conv2d(3, 8, 3)\n  -> Conv2d(16, 4, 3)\n}", "t.nn")
    (diag,) = result.errors
    assert diag.code == "E201"
    assert diag.secondary[0].message == "output [N, 8, 30, 30] produced here"
    text = render_text(diag)
    assert "3 |   -> Conv2d(16, 4, 3)" in text and "2 |   Conv2d(3, 8, 3)" in text
    assert diag.help == "change in_channels to 8"


def test_symbolic_sizes_flow_through_strided_layers():
    result = nndsl.check_source(
        "model M(x: [N, 3, H, W]) { Conv2d(3, 8, 3, stride=2, padding=1) -> MaxPool2d(2) -> Flatten }", "t"
    )
    assert result.ok
    outs = [str(n.output) for n in result.program.models[0].layers]
    assert outs == [
        "[N, 8, (H + 1)//2, (W + 1)//2]",
        "[N, 8, (H + 1)//4, (W + 1)//4]",
        "[N, 8*((H + 1)//4)*((W + 1)//4)]",
    ]


def test_symbol_fixed_by_a_layer_gets_a_warning_and_propagates():
    result = nndsl.check_source("model M(x: [N, D]) { ReLU -> Linear(784, 10) }", "t")
    assert result.ok
    (warning,) = result.diagnostics
    assert warning.code == "W303" and warning.severity is Severity.WARNING
    assert warning.message == "Linear fixes the input's D to 784: the model only accepts D = 784"
    assert str(result.program.models[0].layers[0].output) == "[N, 784]"


def test_channels_last_batchnorm_warns_with_the_real_fix():
    result = nndsl.check_source("model A(x: [N, T, 8]) { Linear(8, 16) -> BatchNorm1d(16) }", "t")
    (warning,) = result.diagnostics
    assert warning.code == "W303"
    assert "use LayerNorm(16)" in warning.help


def test_unverifiable_constraint_is_a_warning_not_silence():
    result = nndsl.check_source("model M(x: [N, H, W]) { Flatten -> Linear(784, 10) }", "t")
    assert result.ok
    (warning,) = result.diagnostics
    assert warning.code == "W301" and "H*W" in warning.message


def test_bare_chain_without_input_is_checked_symbolically():
    result = nndsl.check_source("Flatten -> Linear(784, 512) -> ReLU -> Linear(256, 10)", "t")
    assert [d.code for d in result.diagnostics] == ["E201"]
    result = nndsl.check_source("Flatten -> Linear(out_features=10)", "t")
    assert [d.code for d in result.diagnostics] == ["E205"]
    assert "--input" in result.diagnostics[0].help


def test_batchnorm_and_softmax_resolution_notes():
    result = nndsl.check_source("model M(x: [N, 8, L]) { BatchNorm -> Softmax }", "t")
    assert result.ok
    notes = [d.message for d in result.diagnostics]
    assert (
        notes[0] == "BatchNorm resolved to BatchNorm1d, normalising the 8 channels of dim 1 of the 3-D input [N, 8, L]"
    )
    assert "dim=2" in notes[1] and "implicit choice would be dim=0" in notes[1]
    layers = result.program.models[0].layers
    assert layers[0].layer.__name__ == "BatchNorm1d" and layers[0].args["num_features"] == 8
    assert layers[1].args["dim"] == 2


def test_constants_and_arithmetic():
    result = nndsl.check_source("let h = 64\nlet k = h // 2 + 1\nmodel M(x: [N, h * 2]) { Linear(h * 2, k) }", "t")
    assert result.ok
    assert str(result.program.models[0].output) == "[N, 33]"


def test_checking_never_allocates_huge_models():
    result = nndsl.check_source("model Big(x: [N, 1000000]) { Linear(1000000, 1000000) -> Linear(1000000, 10) }", "t")
    assert result.ok
    assert result.program.models[0].param_count == 1000000 * 1000000 + 1000000 + 1000000 * 10 + 10


# ---------------------------------------------------------------- symbolic arithmetic is exact

polys = st.builds(
    lambda a, b, c: shapes.add(shapes.add(shapes.mul(a, shapes.sym("H")), shapes.mul(b, shapes.sym("W"))), c),
    st.integers(-5, 5),
    st.integers(-5, 5),
    st.integers(-20, 20),
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(polys, st.integers(1, 7), st.integers(1, 7), st.integers(0, 50), st.integers(0, 50))
def test_floordiv_and_ceildiv_agree_with_integers(p, k, j, h, w):
    env = {Sym("H"): h, Sym("W"): w}
    value = shapes.substitute(p, env)
    assert shapes.substitute(shapes.floordiv(p, k), env) == value // k
    assert shapes.substitute(shapes.ceildiv(p, k), env) == -((-value) // k)
    nested = shapes.floordiv(shapes.add(shapes.floordiv(p, k), 3), j)
    assert shapes.substitute(nested, env) == (value // k + 3) // j


@pytest.mark.parametrize(("given", "dim"), [("[N, 10]", 1), ("[10]", 0), ("[N, T, 10]", 2), ("[N, 5, H, W]", 1)])
def test_softmax_without_dim_picks_the_class_dimension(given, dim):
    result = nndsl.check_source("Softmax", "t", input=given)
    assert result.ok
    assert result.program.models[0].layers[0].args["dim"] == dim
    (note,) = result.diagnostics
    assert note.code == "N401" and f"dim={dim}" in note.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model M(x: [N, 4]) { Linear(" + "9" * 5000 + ", 2) }", "integer literal too long"),
        ("model M(x: [N, 4]) { Linear(" + "+".join(["1"] * 1500) + ", 2) }", "levels deep"),
        ("let a = 4294967296 * 4294967296\nmodel M(x: [N, 4]) { Linear(4, a) }", "integer out of range"),
        (
            "let a = 1e308 * 1e308 * 1.0 * 9999999999999999\nmodel M(x: [N, 4]) { Dropout(a) }",
            "must be between 0 and 1",
        ),
    ],
)
def test_extreme_values_are_diagnostics(text, message):
    result = nndsl.check_source(text, "t")
    assert not result.ok
    assert any(message in d.message for d in result.errors), [d.message for d in result.errors]


def test_a_broken_constant_is_reported_once():
    result = nndsl.check_source("let a = 1 // 0\nlet b = a * 2\nmodel M(x: [N, 4]) { Linear(4, b) }", "t")
    assert [d.code for d in result.diagnostics] == ["E110"]


def test_a_symbol_fixed_inside_a_layer_applies_to_the_rest_of_its_rule():
    assert "E201" in codes("model M(x: [N, D, D]) { LayerNorm((4, 5)) }")
    assert "E203" in codes("model M(x: [N, D, D]) { Conv1d(4, 8, 7) }")


def test_inferred_arguments_meet_the_parameter_rules():
    result = nndsl.check_source("LSTM(hidden_size=3)", "t", input="[2, 5, 0]")
    assert [d.code for d in result.errors] == ["E205"]
    assert "must be positive" in result.errors[0].message


def test_input_flag_without_a_bare_chain_is_a_warning():
    result = nndsl.check_source("model M(x: [N, 3]) { Linear(3, 2) }", "t", input="[N, 5]")
    assert result.ok and [d.code for d in result.diagnostics] == ["W304"]


@pytest.mark.parametrize(
    ("size", "code"),
    [("foo(3)", "E101"), ("2 < 3", "E112"), ("Residual(ReLU)", "E112"), ("a -> b", "E108")],
)
def test_an_input_size_that_is_no_size_is_a_diagnostic_as_in_a_model(size, code):
    flag = nndsl.check_source("Flatten -> ReLU", "t", input=f"[N, {size}]")
    declared = nndsl.check_source(f"model M(x: [N, {size}]) {{ Flatten -> ReLU }}", "t")
    assert flag.program is None and code in [d.code for d in flag.errors]
    assert code in [d.code for d in declared.errors]
    assert "tuple" not in " ".join(d.message for d in flag.errors + declared.errors)


def test_non_integral_scale_on_a_symbolic_size_stays_short():
    chain = " -> ".join(["Upsample(scale_factor=1.1)"] * 40)
    result = nndsl.check_source(chain, "t", input="[N, 3, H, W]")
    assert result.ok
    assert len(str(result.program.models[0].output)) < 2000


@pytest.mark.parametrize(
    ("text", "help_text"),
    [
        ("model M(x: [N, 4]) { Linear(4, 2), ReLU }", "layers are chained with '->', not ','"),
        ("model M(x: [N, 10]) { Linear(10, 5)) -> ReLU }", "remove this ')': it closes no '('"),
        ("Linear(784, 10]", "close '(' with ')', not ']'"),
        ("model M(x: [N, 10]) { Linear(10 5) }", "separate the values with ',': ..., 5"),
        ("model M(x: [N, 10]) { Flatten Linear(3, 4) }", "connect the layers with '->': ... -> Linear"),
        ("model M(x: [N, 10]) { Linear(10, 5 -> ReLU }", "add the missing ')'"),
        ("model M(x: [N, 10]) {", "add the missing '}'"),
        ("A => B", "layers are chained with '->'"),
    ],
)
def test_syntax_errors_suggest_the_fix(text, help_text):
    result = nndsl.check_source(text, "t")
    (diag,) = result.errors
    assert diag.code == "E001" and diag.help == help_text


@pytest.mark.parametrize(
    ("text", "help_text"),
    [
        ("model M(x: [N, 4]) { nn.Conv2d(4, 2, 3) }", "write Conv2d"),
        ("model M(x: [N, 4]) { torch.nn.Linear(4, 2) }", "write Linear"),
    ],
)
def test_torch_module_paths_are_explained(text, help_text):
    result = nndsl.check_source(text, "t")
    (diag,) = result.errors
    assert diag.code == "E101" and "prefix" in diag.message and diag.help == help_text


def test_a_let_with_a_syntax_error_is_not_also_undefined():
    result = nndsl.check_source("let a = 3 +* 2\nmodel M(x: [N, 4]) { Linear(4, a) }", "t")
    assert [d.code for d in result.diagnostics] == ["E001"]


def test_bare_chain_and_model_of_the_same_name_stay_apart():
    result = nndsl.check_source("model Net(x: [N, 2]) { Linear(2, 5) }\nLinear(4, 2)", "net.nn", input="[N, 4]")
    assert [m.name for m in result.program.models] == ["Net", "NetChain"]


def test_byte_order_mark_in_text_is_ignored():
    assert nndsl.check_source("\ufeffmodel M(x: [N, 3]) { Linear(3, 2) }", "t").ok


def test_every_code_the_checker_can_emit_is_catalogued():
    import re
    from pathlib import Path

    from nndsl.diagnostics import CATALOGUE

    package = Path(nndsl.__file__).parent
    used = set()
    for source in package.rglob("*.py"):
        used |= set(re.findall(r'"([EWN]\d{3})"', source.read_text()))
    assert used and used <= set(CATALOGUE), sorted(used - set(CATALOGUE))


TRAIN = "train M {\n    loss = CrossEntropyLoss()\n    optimizer = Adam(lr=0.01)\n    data = digits()\n}\n"


@pytest.mark.parametrize(
    "text",
    [
        "model M(x: [N, 64]) {\n    Linear(64, 10\n}\n\n" + TRAIN,  # the only model is broken
        "model M(x: [N, 64]) {\n    Linear(64, 10) ->\n}\n\n" + TRAIN,
        "let w = 4\nmodel M(x: [N, 64]) {\n    Linear(64, w)) \n}\n",
    ],
)
def test_a_model_left_out_for_a_syntax_error_causes_no_knock_on_errors(text):
    """No 'defines no model' (E113), no 'no model M to train' (E503): the syntax error is the news."""
    assert codes(text) == ["E001"]


def test_a_file_without_a_model_still_says_so_when_it_parses():
    assert "E113" in codes("let w = 4\n")


def test_a_symbolic_size_where_a_number_is_needed_is_written_as_the_spec_writes_it():
    text = (
        "block Heads(x: [N, T, E], heads) {\n    Reshape((-1, T, heads, E // heads))\n}\n"
        "model M(a: [N, T, 8]) {\n    Heads(2)\n}\n"
    )
    (found,) = [d for d in diags(text)[0].diagnostics if d.code == "E106"]
    assert "(-1, T, 2, 4)" in found.message and "Poly" not in found.message and "Sym" not in found.message
    assert "write -1" in found.help


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("block B(x: [N, C], True) {\n    Linear(C, True)\n}\nmodel M(a: [N, 8]) {\n    B(3)\n}\n", "E115"),
        ("block B(x: [N, None]) {\n    ReLU\n}\nmodel M(x: [N, 4]) {\n    B\n}\n", "E112"),
        ("model M(True: [N, 4]) {\n    ReLU\n}\n", "E109"),
        ("model M(x: [N, False]) {\n    ReLU\n}\n", "E112"),
    ],
)
def test_the_built_in_constants_are_no_names_for_parameters_inputs_or_sizes(text, code):
    """True, False and None always mean the constants: one error, no knock-on errors."""
    assert codes(text) == [code]


def test_a_size_of_the_models_input_used_as_a_value_says_what_it_is():
    result, found = diags("model P(x: [N, 3]) {\n    x -> Reshape((N, 3))\n}\n")
    assert [(c, m) for c, m, _ in found] == [("E108", "'N' is a size of the model's input, not a value")]
    assert "Reshape(-1, 8, 64)" in result.diagnostics[0].help
    assert codes("model P(x: [N, 3]) {\n    x -> Reshape((-1, 3))\n}\n") == []
