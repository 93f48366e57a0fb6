"""The IR's expressions: Python printing keeps the tree's meaning (precedence, negation), and
blocks lower their arguments into trees, never into text."""

from __future__ import annotations

import operator

from hypothesis import given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.backends.pyexpr import python, python_names
from nndsl.expr import Binary, BoolOp, Call, Compare, Cond, Const, Neg, Not, Ref, TupleOf, free_names, negate
from nndsl.ir import BlockNode, LayerNode, ResidualNode, walk
from nndsl.lowering import python_name

NAMES = {"a": 3, "b": -2, "class": 5, "class_": 7}

_ARITH = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluate(expr):
    """The tree's value, computed from the tree itself (no Python text involved)."""
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Ref):
        return NAMES[expr.name]
    if isinstance(expr, Neg):
        return -evaluate(expr.operand)
    if isinstance(expr, Binary):
        return _ARITH[expr.op](evaluate(expr.left), evaluate(expr.right))
    if isinstance(expr, Compare):
        return _COMPARE[expr.op](evaluate(expr.left), evaluate(expr.right))
    if isinstance(expr, BoolOp):
        left = evaluate(expr.left)
        if expr.op == "and":
            return evaluate(expr.right) if left else left
        return left if left else evaluate(expr.right)
    if isinstance(expr, Not):
        return not evaluate(expr.operand)
    if isinstance(expr, Cond):
        return evaluate(expr.then) if evaluate(expr.test) else evaluate(expr.otherwise)
    if isinstance(expr, Call):
        return {"min": min, "max": max}[expr.func](*(evaluate(a) for a in expr.args))
    return tuple(evaluate(e) for e in expr.items)


numbers = st.one_of(st.integers(-9, 9).map(Const), st.sampled_from(sorted(NAMES)).map(Ref))


def _extend(inner):
    arithmetic = st.builds(Binary, st.sampled_from(["+", "-", "*"]), inner, inner)
    return st.one_of(
        arithmetic,
        st.builds(Neg, inner),
        st.builds(Call, st.sampled_from(["min", "max"]), st.tuples(inner, inner)),
        st.builds(Cond, inner, st.builds(Compare, st.sampled_from(sorted(_COMPARE)), inner, inner), inner),
    )


arithmetic_exprs = st.recursive(numbers, _extend, max_leaves=12)
tests = st.recursive(
    st.builds(Compare, st.sampled_from(sorted(_COMPARE)), arithmetic_exprs, arithmetic_exprs),
    lambda inner: st.one_of(st.builds(BoolOp, st.sampled_from(["and", "or"]), inner, inner), st.builds(Not, inner)),
    max_leaves=6,
)
values = st.one_of(arithmetic_exprs, tests, st.builds(Cond, arithmetic_exprs, tests, arithmetic_exprs))


small_exponents = st.integers(0, 3).map(Const)
powers = st.recursive(
    numbers,
    lambda inner: st.one_of(
        st.builds(Binary, st.sampled_from(["+", "-", "*"]), inner, inner),
        st.builds(Neg, inner),
        st.builds(Binary, st.just("**"), inner, small_exponents),
        # a power as the exponent: ** groups from the right
        st.builds(
            Binary,
            st.just("**"),
            inner,
            st.builds(Binary, st.just("**"), st.integers(1, 2).map(Const), small_exponents),
        ),
    ),
    max_leaves=6,
)


def run_python(expr):
    env = {python_name(name): value for name, value in NAMES.items()}
    assert len(env) == len(NAMES)
    return eval(python(expr), {"__builtins__": {"min": min, "max": max}}, env)  # our own printed tree


@settings(max_examples=400, deadline=None)
@given(values)
def test_printed_python_computes_what_the_tree_says(expr):
    assert run_python(expr) == evaluate(expr)


@settings(max_examples=300, deadline=None)
@given(powers)
def test_printed_powers_keep_their_grouping(expr):
    """-a ** 2 is -(a ** 2) in Python: a negative or grouped base keeps its parentheses."""
    assert run_python(expr) == evaluate(expr)


def test_powers_print_as_people_write_them():
    assert python(Binary("**", Ref("a"), Const(2))) == "a**2"  # names and numbers hug, as ruff writes them
    assert python(Binary("**", Ref("a"), Neg(Ref("b")))) == "a**-b"
    assert python(Binary("**", Neg(Ref("a")), Const(2))) == "(-a) ** 2"
    assert python(Binary("**", Const(-2), Const(2))) == "(-2) ** 2"
    assert python(Neg(Binary("**", Ref("a"), Const(2)))) == "-(a**2)"
    assert python(Binary("**", Binary("**", Ref("a"), Ref("b")), Const(2))) == "(a**b) ** 2"
    assert python(Binary("*", Ref("a"), Binary("**", Ref("b"), Const(2)))) == "a * b**2"
    assert python(Binary("**", Binary("+", Ref("a"), Const(1)), Const(-0.5))) == "(a + 1) ** -0.5"


@settings(max_examples=200, deadline=None)
@given(tests)
def test_a_negated_test_is_the_opposite(expr):
    assert evaluate(negate(expr)) == (not evaluate(expr))
    assert run_python(negate(expr)) == (not evaluate(expr))


def test_negation_reads_as_people_write_it():
    assert python(negate(Compare("==", Ref("D"), Ref("out")))) == "D != out"
    assert python(negate(Not(Ref("flag")))) == "flag"
    assert python(negate(BoolOp("or", Ref("p"), Ref("q")))) == "not (p or q)"


def test_names_are_the_spec_names_and_python_maps_them():
    expr = Binary("*", Ref("class"), TupleOf((Ref("x"), Const(1))))
    assert free_names(expr) == {"class", "x"}
    assert python_names(expr) == {"class_", "x"}
    assert python(expr) == "class_ * (x, 1)"


SPEC = """
block Down(x: [N, C, H, W], planes, stride=1) {
    hidden = planes * 2
    y = x -> Conv2d(C, min(hidden, 64), 3, stride=stride, padding=1) -> ReLU
    y -> Residual(Conv2d(min(hidden, 64), min(hidden, 64), 3, padding=1),
                  shortcut=Conv2d(min(hidden, 64), min(hidden, 64), 1) if stride != 1 else None)
}
model Net(x: [N, 3, 32, 32]) {
    x -> Down(8) -> Down(16, stride=2)
}
"""


def test_a_block_lowers_its_arguments_into_trees():
    program = nndsl.check_source(SPEC, name="net.nn").program
    nodes = list(walk(program.models[0].graph))
    conv = next(n for n in nodes if isinstance(n, LayerNode) and n.sources)
    assert conv.sources["out_channels"] == Call("min", (Ref("hidden"), Const(64)))
    assert conv.sources["stride"] == Ref("stride")
    block = next(n for n in nodes if isinstance(n, BlockNode))
    assert block.locals == {"hidden": Binary("*", Ref("planes"), Const(2))}
    residual = next(n for n in nodes if isinstance(n, ResidualNode))
    assert residual.shortcut_if == Compare("!=", Ref("stride"), Const(1))
    for node in nodes:  # no Python text anywhere in the IR's expressions
        for expr in (getattr(node, "sources", None) or {}).values():
            assert not isinstance(expr, str)


def test_both_uses_share_one_class_that_computes_the_arguments():
    from nndsl.backends.torch_module import emit_program

    program = nndsl.check_source(SPEC, name="net.nn").program
    text = emit_program(program)
    assert text.count("class Down(nn.Module)") == 1
    assert "hidden = planes * 2" in text
    assert "min(hidden, 64)" in text
    assert "if stride != 1:" in text
