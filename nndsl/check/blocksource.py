"""A block's arguments as IR expressions in terms of its parameters (``planes * 4``), so that
the class a backend writes for a block computes what the spec computes."""

from __future__ import annotations

from nndsl import ast
from nndsl.check.common import BUILTIN_VALUES
from nndsl.check.context import Context
from nndsl.check.values import Scope
from nndsl.expr import Binary, BoolOp, Call, Compare, Const, Expr, Neg, Not, Ref, TupleOf, is_plain, negate

#: the constant functions whose calls a class computes as the spec does
_FUNCTIONS = ("min", "max", "len")


def lower(expr, scope: Scope, checker: Context) -> Expr | None:
    """A constant expression inside a block as an IR expression naming the block's parameters;
    None where it cannot be one (its value is then written as a constant). A conditional value
    (``a if c else b``) is written as its value: each use's class decides nothing at run time."""

    if isinstance(expr, (ast.IntLit, ast.FloatLit, ast.StrLit)):
        return Const(expr.value)
    if isinstance(expr, ast.NameRef):
        found = scope.find(expr.name)
        if found is None and expr.name in BUILTIN_VALUES:  # a parameter named ``True`` comes first
            return Const(BUILTIN_VALUES[expr.name])
        if found is not None and scope.block is not None and expr.name in scope.block and found.parent is None:
            return Ref(expr.name)
        if found is not None and found.parent is None and found.locals is not None and expr.name in found.exprs:
            # a constant the block body computed: the class computes it too, under the same name
            inner = lower(found.exprs[expr.name], found, checker)
            if inner is not None:
                found.locals.setdefault(expr.name, inner)
                return Ref(expr.name)
        value = found.values[expr.name] if found is not None else checker.constants.get(expr.name, _MISSING)
        return Const(value) if value is not _MISSING and is_plain(value) else None
    if isinstance(expr, ast.TupleExpr):
        items = [lower(e, scope, checker) for e in expr.items]
        return None if any(i is None for i in items) else TupleOf(tuple(items))
    if isinstance(expr, ast.Neg):
        inner = lower(expr.operand, scope, checker)
        return None if inner is None else Neg(inner)
    if isinstance(expr, ast.BinOp):
        return _pair(Binary, expr, scope, checker, lower)
    if isinstance(expr, ast.Compare):
        return _pair(Compare, expr, scope, checker, lower)
    if isinstance(expr, ast.BoolOp):
        return _pair(BoolOp, expr, scope, checker, lower)
    if isinstance(expr, ast.Not):
        inner = lower(expr.operand, scope, checker)
        return None if inner is None else Not(inner)
    if isinstance(expr, ast.Call) and expr.name.text in _FUNCTIONS and expr.selector is None:
        if scope.find(expr.name.text) is not None or any(a.keyword is not None for a in expr.args):
            return None
        args = [lower(a.value, scope, checker) for a in expr.args]
        return None if any(a is None for a in args) else Call(expr.name.text, tuple(args))
    return None


def _pair(kind, expr, scope: Scope, checker: Context, lower_side) -> Expr | None:
    left, right = lower_side(expr.left, scope, checker), lower_side(expr.right, scope, checker)
    return None if left is None or right is None else kind(expr.op, left, right)


_MISSING = object()


def shortcut_condition(expr: ast.Cond, scope: Scope, checker: Context) -> Expr | None:
    """For ``S if cond else None`` (or ``None if cond else S``): when the shortcut exists."""
    none_then = isinstance(expr.then, ast.NameRef) and expr.then.name == "None"
    none_otherwise = isinstance(expr.otherwise, ast.NameRef) and expr.otherwise.name == "None"
    if none_then == none_otherwise:
        return None
    test = lower(expr.test, scope, checker)
    if test is None:
        return None
    return negate(test) if none_then else test
