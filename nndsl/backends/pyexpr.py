"""The IR's expressions as Python source, for the classes the PyTorch backend writes."""

from __future__ import annotations

from nndsl.backends.pysource import literal
from nndsl.expr import Binary, BoolOp, Call, Compare, Cond, Const, Expr, Neg, Not, Ref, TupleOf, free_names
from nndsl.lowering import python_name

_ARITHMETIC = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "**": 3}


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
        if isinstance(expr.left, Binary) and _ARITHMETIC[expr.left.op] < mine + (expr.op == "**"):
            left = f"({left})"  # ** groups from the right: (a ** b) ** c keeps its parentheses
        elif expr.op == "**" and (isinstance(expr.left, Neg) or _negative(expr.left)):
            left = f"({left})"  # -2 ** 2 is -(2 ** 2) in Python
        if isinstance(expr.right, Binary) and _ARITHMETIC[expr.right.op] <= mine:
            right = f"({right})"
        if expr.op == "**" and _simple(expr.left) and left[0] not in "-(" and _simple(expr.right):
            return f"{left}**{right}"  # as ruff formats a power of names and numbers
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


def _simple(expr: Expr) -> bool:
    """A name or a number, signed or not: what ruff writes a power of without spaces."""
    if isinstance(expr, Neg):
        expr = expr.operand
    return isinstance(expr, Ref) or (isinstance(expr, Const) and type(expr.value) in (int, float))


def _negative(expr: Expr) -> bool:
    """A constant number written with a minus sign."""
    return isinstance(expr, Const) and isinstance(expr.value, (int, float)) and expr.value < 0


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
