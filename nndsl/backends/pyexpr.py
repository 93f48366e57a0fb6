"""The IR's expressions as Python source, for the classes the PyTorch backend writes."""

from __future__ import annotations

from nndsl.backends.pysource import literal
from nndsl.expr import Binary, BoolOp, Call, Compare, Cond, Const, Expr, Neg, Not, Ref, TupleOf, free_names
from nndsl.lowering import python_name

_ARITHMETIC = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2}


def python(expr: Expr) -> str:
    """Python source computing ``expr``, its names written as ``python_name`` maps them."""
    if isinstance(expr, Const):
        return literal(expr.value)
    if isinstance(expr, Ref):
        return python_name(expr.name)
    if isinstance(expr, TupleOf):
        items = [python(e) for e in expr.items]
        return "(" + ", ".join(items) + (",)" if len(items) == 1 else ")")
    if isinstance(expr, Neg):
        inner = python(expr.operand)
        return f"-{inner}" if isinstance(expr.operand, (Const, Ref)) else f"-({inner})"
    if isinstance(expr, Binary):
        left, right = _operand(expr.left, 5), _operand(expr.right, 5)
        mine = _ARITHMETIC[expr.op]
        if isinstance(expr.left, Binary) and _ARITHMETIC[expr.left.op] < mine:
            left = f"({left})"
        if isinstance(expr.right, Binary) and _ARITHMETIC[expr.right.op] <= mine:
            right = f"({right})"
        return f"{left} {expr.op} {right}"
    if isinstance(expr, Compare):
        return f"{_operand(expr.left, 4)} {expr.op} {_operand(expr.right, 4)}"
    if isinstance(expr, BoolOp):
        return f"{_operand(expr.left, _level(expr))} {expr.op} {_operand(expr.right, _level(expr))}"
    if isinstance(expr, Not):
        return f"not {_operand(expr.operand, 3)}"
    if isinstance(expr, Cond):
        return f"{_operand(expr.then, 1)} if {_operand(expr.test, 1)} else {python(expr.otherwise)}"
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(python(a) for a in expr.args)})"
    raise TypeError(f"not an expression: {expr!r}")


def _level(expr: Expr) -> int:
    """How tightly an expression binds, as Python's precedence orders them."""
    if isinstance(expr, Cond):
        return 0
    if isinstance(expr, BoolOp):
        return 1 if expr.op == "or" else 2
    if isinstance(expr, Not):
        return 3
    if isinstance(expr, Compare):
        return 4
    return 5


def _operand(expr: Expr, least: int) -> str:
    """An operand of an operator that binds at ``least``: parenthesized where it binds less."""
    text = python(expr)
    return f"({text})" if _level(expr) < least else text


def python_names(expr: Expr) -> set[str]:
    """The Python names the source of ``expr`` reads."""
    return {python_name(name) for name in free_names(expr)}
