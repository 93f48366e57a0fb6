"""The syntax stage: the fast LALR loop agrees with lark, and one statement per line (E001)."""

from __future__ import annotations

from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.source import Source
from nndsl.syntax import parser
from nndsl.syntax.parser import parse_recovering

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p.read_text() for p in ROOT.glob("specs/**/*.nn"))


def _lark(text: str):
    """lark's own parse of ``text``, or None where lark rejects it."""
    try:
        return parser._parser().parse(text, start="start")
    except lark.exceptions.UnexpectedInput:
        return None


def _fast(text: str, start: int = 0, end: int | None = None):
    driver = parser._driver()
    assert driver is not None, "the fast loop no longer fits this lark's internals"
    return driver.parse(text, start, len(text) if end is None else end, "start")


def test_the_fast_loop_builds_the_same_syntax_tree_as_lark_on_every_spec():
    parsed = 0
    for text in SPECS:
        tree = _fast(text)
        assert tree == _lark(text)
        parsed += tree is not None
    assert parsed > 10  # all but specs/bad/syntax_error.nn


_PIECES = ["(", ")", "[", "]", "{", "}", ",", "->", "=", "model", "let", "for", "if", " ", "\n", "x", "3", ".5", "'"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.sampled_from(SPECS),
    at=st.floats(0, 1),
    cut=st.integers(0, 12),
    piece=st.sampled_from(_PIECES),
)
def test_the_fast_loop_accepts_exactly_what_lark_accepts(spec, at, cut, piece):
    """A spec with a piece cut out and another put in: the same tree, or rejected by both."""
    i = int(at * len(spec))
    text = spec[:i] + piece + spec[i + cut :]
    assert _fast(text) == _lark(text)


def test_the_fast_loop_parses_a_slice_with_offsets_into_the_whole_text():
    item = "model M(x: [N, 4]) { Linear(4, 2) }\n"
    text = "let a = (\n" + item + "model Q("
    tree = _fast(text, 10, 10 + len(item))
    (model,) = tree.items
    assert model.span.start == 10 and text[model.name.span.start : model.name.span.end] == "M"


@pytest.mark.parametrize("path", sorted(ROOT.glob("specs/bad/*.nn")), ids=lambda p: p.name)
def test_diagnostics_are_those_of_lark_alone(monkeypatch, path):
    """Every diagnostic of a broken spec is the same whether the fast loop runs or not."""
    text = path.read_text()
    fast = [str(d) for d in nndsl.check_source(text, path.name).diagnostics]
    monkeypatch.setattr(parser, "_driver", lambda: None)
    assert [str(d) for d in nndsl.check_source(text, path.name).diagnostics] == fast


# ---------------------------------------------------------------- one statement per line


def _crowded(text: str):
    module, diagnostics = parse_recovering(Source("t.nn", text))
    return module, [(d.code, text[d.span.start : d.span.end], d.help) for d in diagnostics]


def test_two_statements_on_one_line_are_a_syntax_error():
    module, found = _crowded("model M(x: [N, 10]) { Flatten Linear(10, 4) }")
    assert found == [("E001", "Linear", "connect the layers with '->': ... -> Linear")]
    assert module.items == () and module.broken_models == ("M",)


def test_a_space_before_the_arguments_is_explained():
    _, found = _crowded("model M(x: [N, 8]) { Linear (8, 8) }")
    assert found == [("E001", "(", "write the arguments right after the name, without a space: Linear(...)")]


def test_statements_on_separate_lines_are_fine():
    module, found = _crowded("model M(x: [N, 8]) {\n  h = x -> Linear(8, 8)  # one\n  return h\n}")
    assert found == [] and len(module.items) == 1


def test_a_block_is_reported_whether_or_not_it_is_used():
    text = "block B(x: [N, C]) { Linear(C, 2) ReLU }\nmodel M(x: [N, 8]) { Linear(8, 2) }\n"
    module, found = _crowded(text)
    assert found == [("E001", "ReLU", "connect the layers with '->': ... -> ReLU")]
    assert module.broken_lets == ("B",) and [m.name.text for m in module.items] == ["M"]
    assert [d.code for d in nndsl.check_source(text).diagnostics] == ["E001"]


def test_each_crowded_body_is_reported_once_and_not_the_bodies_inside_it():
    text = (
        "model M(x: [N, 8]) {\n"
        "  for w in [4] { Linear(8, w) ReLU }\n"
        "  for w in [4] { Tanh for v in [1] { ReLU Tanh } }\n"
        "}\n"
        "model K(x: [N, 8]) { Linear(8, 3) Tanh }\n"
    )
    _, found = _crowded(text)
    assert [word for _, word, _ in found] == ["ReLU", "for", "Tanh"]


def test_a_carriage_return_alone_does_not_end_a_line():
    _, found = _crowded("model M(x: [N, 8]) { Linear(8, 8)\r ReLU }")
    assert [word for _, word, _ in found] == ["ReLU"]


# ---------------------------------------------------------------- nesting


_BITS = ["(", ")", "[", "]", "{", "}", "-", "+", "not ", " ", "\t", "#c\n", "'s'", '"', "x", "\n", "->"]


@settings(max_examples=300, deadline=None)
@given(
    bits=st.lists(st.sampled_from(_BITS), max_size=60),
    run=st.sampled_from(["", "- " * 100, "-" * 101, "not " * 101, "+-" * 51, "(" * 1000, "[" * 1001]),
    at=st.floats(0, 1),
)
def test_the_quick_nesting_test_never_passes_what_the_exact_one_refuses(bits, run, at):
    text = "".join(bits)
    i = int(at * len(text))
    text = text[:i] + run + text[i:]
    if parser._surely_shallow(text):
        assert parser._first_too_deep(text) is None


def test_parse_gives_the_module_or_raises_the_first_error():
    from nndsl.diagnostics import DiagnosticError
    from nndsl.syntax import parse

    module = parse(Source("t.nn", "model M(x: [N, 4]) { Linear(4, 2) }"))
    assert [m.name.text for m in module.items] == ["M"]
    with pytest.raises(DiagnosticError) as raised:
        parse(Source("t.nn", "model M(x: [N, 4]) { Flatten ReLU }"))
    assert raised.value.diagnostic.code == "E001"


SUBSCRIPTS = [
    "x[:, 0]",
    "x[..., :-2]",
    "mask[:, None, None, :]",
    "x[a:b:s]",
    "x[::2]",
    "x[1:]",
    "x[:]",
    "x[1::]",
    "x[0,]",
    "x[..., : W - 2]",
    "x[:, -W:]",
    "x[i][j]",
    "a @ b * c @ d",
]


@pytest.mark.parametrize("expr", SUBSCRIPTS)
def test_subscripts_parse_the_same_in_the_fast_loop_and_in_lark(expr):
    text = f"model M(x: [N]) {{\n    y = {expr}\n}}\n"
    tree = _fast(text)
    assert tree is not None and tree == _lark(text)


def _value(expr: str):
    text = f"model M(x: [N]) {{\n    y = {expr}\n}}\n"
    return parser.parse(Source("<t>", text)).items[0].body.statements[0].value, text


def test_a_subscript_holds_its_items_slices_and_ellipsis():
    from nndsl import ast

    value, text = _value("x[..., 1::2, None, :-2]")
    assert isinstance(value, ast.Subscript) and text[value.span.start : value.span.end] == "x[..., 1::2, None, :-2]"
    dots, strided, none, tail = value.items
    assert isinstance(dots, ast.EllipsisItem) and text[dots.span.start : dots.span.end] == "..."
    assert strided.start.value == 1 and strided.stop is None and strided.step.value == 2
    assert text[strided.span.start : strided.span.end] == "1::2"
    assert isinstance(none, ast.NameRef) and none.name == "None"
    assert tail.start is None and isinstance(tail.stop, ast.Neg) and tail.step is None
    assert text[tail.span.start : tail.span.end] == ":-2"


def test_one_plain_item_stays_an_index_and_a_trailing_comma_makes_a_subscript():
    from nndsl import ast

    assert isinstance(_value("widths[i]")[0], ast.Index)
    assert isinstance(_value("x[0,]")[0], ast.Subscript)


def test_the_matrix_product_binds_as_multiplication_does():
    value, _ = _value("a + b @ c * d")
    assert value.op == "+" and value.right.op == "*" and value.right.left.op == "@"


@pytest.mark.parametrize(
    ("expr", "message"),
    [("x[:, 0", "']'"), ("x[1:2:3:4]", "']'"), ("x[, 0]", "found ','"), ("x[....]", "'.'")],
)
def test_broken_subscripts_are_syntax_errors_at_their_place(expr, message):
    text = f"model M(x: [N]) {{\n    y = {expr}\n}}\n"
    _, diagnostics = parse_recovering(Source("<t>", text))
    (error,) = diagnostics
    assert error.code == "E001" and message in error.message + (error.help or "")
    assert text.index(expr) <= error.span.start <= text.index(expr) + len(expr) + 3
