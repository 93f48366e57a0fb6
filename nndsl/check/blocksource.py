"""A block's arguments as Python source in terms of its parameters (``planes * 4``), so that
the class emitted for a block computes what the spec computes."""

from __future__ import annotations

from nndsl import ast
from nndsl.check.common import BUILTIN_VALUES
from nndsl.check.context import Context
from nndsl.check.values import Scope
from nndsl.pysource import literal, python_name

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2}


def python_source(expr, scope: Scope, checker: Context) -> str | None:
    """Python source for a constant expression inside a block, naming the block's parameters;
    None where a name is not one of them (its value is then written as a literal)."""

    if isinstance(expr, (ast.IntLit, ast.FloatLit, ast.StrLit)):
        return literal(expr.value)
    if isinstance(expr, ast.NameRef):
        found = scope.find(expr.name)
        if found is None and expr.name in BUILTIN_VALUES:  # a parameter named ``True`` comes first
            return expr.name
        if found is not None and scope.block is not None and expr.name in scope.block and found.parent is None:
            return scope.block[expr.name]
        if found is not None and found.parent is None and found.locals is not None and expr.name in found.exprs:
            # a constant the block body computed: the class computes it too, under the same name
            inner = python_source(found.exprs[expr.name], found, checker)
            if inner is not None:
                found.locals.setdefault(python_name(expr.name), inner)
                return python_name(expr.name)
        value = found.values[expr.name] if found is not None else checker.constants.get(expr.name, _MISSING)
        if value is _MISSING:
            return None
        try:
            return literal(value)
        except TypeError:
            return None
    if isinstance(expr, ast.TupleExpr):
        items = [python_source(e, scope, checker) for e in expr.items]
        if any(i is None for i in items):
            return None
        return "(" + ", ".join(items) + (",)" if len(items) == 1 else ")")
    if isinstance(expr, ast.Neg):
        inner = python_source(expr.operand, scope, checker)
        if inner is None:
            return None
        return f"-{inner}" if isinstance(expr.operand, (ast.IntLit, ast.FloatLit, ast.NameRef)) else f"-({inner})"
    if isinstance(expr, ast.BinOp):
        left, right = python_source(expr.left, scope, checker), python_source(expr.right, scope, checker)
        if left is None or right is None:
            return None
        mine = _PRECEDENCE[expr.op]
        if isinstance(expr.left, ast.BinOp) and _PRECEDENCE[expr.left.op] < mine:
            left = f"({left})"
        if isinstance(expr.right, ast.BinOp) and _PRECEDENCE[expr.right.op] <= mine:
            right = f"({right})"
        return f"{left} {expr.op} {right}"
    return None


_MISSING = object()

_BOOL_PRECEDENCE = {"or": 1, "and": 2}


def python_test(expr, scope: Scope, checker: Context) -> str | None:
    """Python source of a condition (comparisons, and/or/not) inside a block."""
    if isinstance(expr, ast.Compare):
        left, right = python_source(expr.left, scope, checker), python_source(expr.right, scope, checker)
        return None if left is None or right is None else f"{left} {expr.op} {right}"
    if isinstance(expr, ast.BoolOp):
        parts = []
        for side in (expr.left, expr.right):
            text = python_test(side, scope, checker)
            if text is None:
                return None
            if isinstance(side, ast.BoolOp) and _BOOL_PRECEDENCE[side.op] < _BOOL_PRECEDENCE[expr.op]:
                text = f"({text})"
            parts.append(text)
        return f" {expr.op} ".join(parts)
    if isinstance(expr, ast.Not):
        inner = python_test(expr.operand, scope, checker)
        if inner is None:
            return None
        return f"not ({inner})" if isinstance(expr.operand, ast.BoolOp) else f"not {inner}"
    return python_source(expr, scope, checker)


def shortcut_condition(expr: ast.Cond, scope: Scope, checker: Context) -> str | None:
    """For ``S if cond else None`` (or ``None if cond else S``): when the shortcut exists, in Python."""
    none_then = isinstance(expr.then, ast.NameRef) and expr.then.name == "None"
    none_otherwise = isinstance(expr.otherwise, ast.NameRef) and expr.otherwise.name == "None"
    if none_then == none_otherwise:
        return None
    test = python_test(expr.test, scope, checker)
    if test is None:
        return None
    return negated(expr.test, test) if none_then else test


_OPPOSITE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def negated(test: ast.Expr, source: str) -> str:
    """``not`` of a condition, as a person writes it: ``D != out`` rather than ``not D == out``."""
    if isinstance(test, ast.Compare) and " " + test.op + " " in source:
        left, _, right = source.partition(" " + test.op + " ")
        return f"{left} {_OPPOSITE[test.op]} {right}"
    if isinstance(test, ast.Not) and source.startswith("not "):
        return source[4:].removeprefix("(").removesuffix(")") if source.startswith("not (") else source[4:]
    return f"not ({source})" if isinstance(test, ast.BoolOp) else f"not {source}"
