"""The built-in functions of the language: tensor operations (cat, stack, chunk, split and
the element-wise add, sub, mul, div) and constant helpers (range, len, min, max)."""

from __future__ import annotations

from typing import Any, Protocol

from nndsl import ast, ops
from nndsl.check.binding import Binding
from nndsl.check.common import Abort
from nndsl.check.context import Context
from nndsl.check.values import MAX_REPEAT, Tensor, is_fn, is_sequence, kind_name
from nndsl.diagnostics import Span
from nndsl.layers.base import ShapeError


class Statements(Protocol):
    """What the built-in functions ask of the statements checker (nndsl.check.flow.Flow)."""

    def expression(self, expr: ast.Expr, symbols: bool) -> Any: ...

    def constant(self, expr: ast.Expr) -> Any: ...

    def tensor(self, value: Any, expr: Any) -> Tensor: ...

    def tensor_binop(self, expr: ast.BinOp, left: Any, right: Any) -> Any: ...

    def op(self, op: str, inputs: list, types: list, args: dict, span: Span) -> list[Tensor]: ...

    def op_error(self, exc: ShapeError, span: Span, tensors: list) -> None: ...


class Functions:
    """Calls of the built-in functions, in one file."""

    def __init__(self, ctx: Context, binding: Binding, flow: Statements):
        self.ctx = ctx
        self.binding = binding
        self.flow = flow

    def arguments(self, call: ast.Call, names: list[str], required: int, variadic: str | None = None):
        """Match a built-in function's arguments: a dict of values by parameter name."""
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        rest: list = []
        if variadic:  # cat(a, b, dim=1): the leading positional arguments are the tensors
            leading = 0
            while leading < len(call.args) and call.args[leading].keyword is None:
                leading += 1
            rest = [(arg, self.flow.expression(arg.value, False)) for arg in call.args[:leading]]
            call = call._replace(args=call.args[leading:])
        positional = [] if variadic else names
        matched, _, ok = self.binding.match_arguments(
            call, call.name.text, names, f"{call.name.text}({', '.join(names)})", positional
        )
        if not ok:
            raise Abort
        for pname, arg in matched:
            values[pname] = self.flow.expression(arg.value, False)
            spans[pname] = arg.span
        missing = [n for n in names[:required] if n not in values]
        if missing:
            self.ctx.error(
                "E105",
                f"{call.name.text} is missing the required argument '{missing[0]}'",
                call.span,
                f"'{missing[0]}' missing",
            )
            raise Abort
        return values, spans, rest

    def _int_arg(self, call, values, spans, name, default):
        value = values.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.ctx.error(
                "E106",
                f"{name} of {call.name.text} must be an integer, got {kind_name(value)}",
                spans.get(name, call.span),
            )
            raise Abort
        return value

    def tensor_function(self, call: ast.Call):
        name = call.name.text
        if name in ("cat", "stack"):
            values, spans, rest = self.arguments(call, ["dim"], 0, variadic="tensors")
            items = []
            for arg, value in rest:
                several = is_sequence(value)  # cat(parts) or cat(x)
                parts = value if several and len(rest) == 1 else (value,)
                items += [self.flow.tensor(v, arg.value) for v in parts]
            if not items:
                self.ctx.error(
                    "E105", f"{name} needs the tensors to join", call.span, "no tensors", help=f"{name}(a, b, dim=1)"
                )
                raise Abort
            dim = self._int_arg(call, values, spans, "dim", 0)
            if any(t.type is None for t in items):
                return self.ctx.poisoned(call.span)
            rule = ops.cat if name == "cat" else ops.stack
            try:
                out = rule([t.type for t in items], dim)
            except ShapeError as exc:
                self.flow.op_error(exc, spans.get(exc.param, call.span) if exc.param else call.span, items)
            return self.flow.op(name, items, [out], {"dim": dim}, call.span)[0]
        if name in ops.OPERATORS:
            values, spans, _ = self.arguments(call, ["input", "other"], 2)
            left, right = values["input"], values["other"]
            sides = (ast.NameRef("input", spans["input"]), ast.NameRef("other", spans["other"]))
            expr = ast.BinOp(ops.OPERATORS[name], *sides, call.span)
            if not any(isinstance(v, Tensor) or is_fn(v) for v in (left, right)):
                return self.binding.bounded(self.binding.binop(expr, left, right), call.span)  # mul(2, 3) is 6
            return self.flow.tensor_binop(expr, left, right)
        names = ["input", "chunks" if name == "chunk" else "split_size_or_sections", "dim"]
        values, spans, _ = self.arguments(call, names, 2)
        x = self.flow.tensor(values["input"], call.args[0].value)
        dim = self._int_arg(call, values, spans, "dim", 0)
        size = values[names[1]]
        if name == "chunk":
            size = self._int_arg(call, values, spans, "chunks", 0)
        elif is_sequence(size):
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size):
                self.ctx.error("E106", "split sizes must be non-negative integers", spans[names[1]])
                raise Abort
        else:
            size = self._int_arg(call, values, spans, names[1], 0)
        if x.type is None:
            self.ctx.state.poisoned = True
            raise Abort
        if is_sequence(size) and x.type.shape.dims and not x.type.shape.rest:
            x = self._split_total(call, x, sum(size), dim)
        try:
            types = (ops.chunk if name == "chunk" else ops.split)(x.type, size, dim)
        except ShapeError as exc:
            self.flow.op_error(exc, call.span, [x])
        return tuple(self.flow.op(name, [x], types, {names[1]: size, "dim": dim}, call.span))

    def _split_total(self, call: ast.Call, x: Tensor, total: int, dim: int) -> Tensor:
        """Sizes that add up to a symbolic dim fix it, with a warning, as a layer's sizes do."""
        rank = x.type.shape.rank
        if not -rank <= dim < rank:
            return x  # ops.split reports it
        size = x.type.shape.dims[dim]
        if isinstance(size, int):
            return x
        self.ctx.current, self.ctx.current_arg_spans = call, {}
        self.ctx.producer = (x.span, x.role, x.type) if x.source is self.ctx.source else None
        self.ctx.require_equal(
            size,
            total,
            f"split sizes add up to {total}, but dim {dim} has size {size}",
            f"sizes add up to {total}",
            bind_help=f"if the size is meant to be {total}, write {total} in the input declaration",
        )
        return x._replace(type=x.type._replace(shape=x.type.shape.substitute(self.ctx.bindings)))

    def constant_function(self, call: ast.Call):
        name = call.name.text
        args = [self.flow.constant(a.value) for a in call.args if a.keyword is None]
        if any(a.keyword is not None for a in call.args):
            self.ctx.error("E102", f"{name} takes no keyword arguments", call.span)
            raise Abort
        try:
            if name == "range":
                if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
                    raise TypeError("range takes 1 to 3 integers")
                if len(args) == 3 and args[2] == 0:
                    raise TypeError("range's step cannot be 0")
                if len(range(*args)) > MAX_REPEAT:  # measured without building it
                    raise TypeError(f"range gives more than {MAX_REPEAT:,} values")
                return tuple(range(*args))
            if name == "len":
                if len(args) != 1 or not isinstance(args[0], tuple):
                    raise TypeError("len takes one list or tuple")
                return len(args[0])
            items = args[0] if len(args) == 1 and isinstance(args[0], tuple) else tuple(args)
            if not items:
                raise TypeError(f"{name} needs at least one value")
            return (min if name == "min" else max)(items)
        except TypeError as exc:
            self.ctx.error("E110", str(exc), call.span, "invalid arguments")
            raise Abort from None
