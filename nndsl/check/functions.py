"""The built-in functions of the language: tensor operations (cat, stack, chunk, split and
the element-wise add, sub, mul, div) and constant helpers (range, len, min, max)."""

from __future__ import annotations

from typing import Any, Protocol

from nndsl import ast, operators
from nndsl.check.binding import Binding
from nndsl.check.common import BUILTIN_VALUES, Abort
from nndsl.check.context import Context
from nndsl.check.values import MAX_REPEAT, Tensor, is_fn, is_sequence, kind_name
from nndsl.diagnostics import Span
from nndsl.layers.base import ArgValueError, Param, ShapeError, WrongType
from nndsl.operators.base import TENSOR


class Statements(Protocol):
    """What the built-in functions ask of the statements checker (nndsl.check.flow.Flow)."""

    def expression(self, expr: ast.Expr, symbols: bool) -> Any: ...

    def constant(self, expr: ast.Expr) -> Any: ...

    def tensor(self, value: Any, expr: Any) -> Tensor: ...

    def tensor_binop(self, expr: ast.BinOp, left: Any, right: Any) -> Any: ...

    def op(self, op: str, inputs: list, types: list, args: dict, span: Span) -> list[Tensor]: ...

    def op_error(self, exc: ShapeError, span: Span, tensors: list) -> None: ...


#: the built-in functions: name -> the method of Functions that checks a call of it
BUILTINS: dict[str, str] = {}


def builtin(*names: str):
    """Registers a method of Functions as the check of calls of ``names``: a new built-in is one
    decorated method, and its name is reserved in specs."""

    def register(method):
        for name in names:
            BUILTINS[name] = method.__name__
        return method

    return register


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

    def call(self, call: ast.Call):
        """A call of the built-in function ``call`` names (one of BUILTINS)."""
        return getattr(self, BUILTINS[call.name.text])(call)

    @builtin(*operators.REGISTRY)
    def tensor_function(self, call: ast.Call):
        """A tensor operator's call: its signature and shape rule come from its registered class."""
        name = call.name.text
        op = operators.lookup(name)
        values, spans, rest = self.arguments(call, op.param_names(), op.required(), "tensors" if op.variadic else None)
        if op.symbol:  # add(x, y) is x + y, numbers included
            left, right = values["input"], values["other"]
            sides = (ast.NameRef("input", spans["input"]), ast.NameRef("other", spans["other"]))
            expr = ast.BinOp(op.symbol, *sides, call.span)
            if not any(isinstance(v, Tensor) or is_fn(v) for v in (left, right)):
                return self.binding.bounded(self.binding.binop(expr, left, right), call.span)  # mul(2, 3) is 6
            return self.flow.tensor_binop(expr, left, right)
        items = []
        for arg, value in rest:
            several = is_sequence(value)  # cat(parts) or cat(x)
            parts = value if several and len(rest) == 1 else (value,)
            items += [self.flow.tensor(v, arg.value) for v in parts]
        # an optional tensor (attn_mask=None) left out or given as None is not an input
        tensors = [p.name for p in op.params if p.kind is TENSOR and values.get(p.name) is not None]
        items += [self.flow.tensor(values[p], call.args[0].value) for p in tensors]
        if not items:
            self.ctx.error(
                "E105", f"{name} needs the tensors to join", call.span, "no tensors", help=f"{name}(a, b, dim=1)"
            )
            raise Abort
        args = {p.name: self._converted(call, values, spans, p) for p in op.params if p.kind is not TENSOR}
        if any(t.type is None for t in items):
            if op.pieces:
                self.ctx.state.poisoned = True
                raise Abort
            return self.ctx.poisoned(call.span)
        total = op.fixed_size(args)
        if total is not None and items[0].type.shape.dims and not items[0].type.shape.rest:
            items[0] = self._split_total(call, items[0], total, args["dim"])
        try:
            types = op.output([t.type for t in items], args)
        except ShapeError as exc:
            self.flow.op_error(exc, spans.get(exc.param, call.span) if exc.param else call.span, items)
        outs = self.flow.op(name, items, types, args, call.span)
        return tuple(outs) if op.pieces else outs[0]

    def _converted(self, call: ast.Call, values: dict, spans: dict, param: Param):
        """An operator's argument as its kind converts it (its default when not given)."""
        value = values.get(param.name, param.default)
        try:
            return param.kind.convert(value)
        except WrongType:
            message = f"{param.name} of {call.name.text} must be {param.kind.describe}, got {kind_name(value)}"
        except ArgValueError as exc:
            self.ctx.error(exc.code, exc.message, spans.get(param.name, call.span))
            raise Abort from None
        self.ctx.error("E106", message, spans.get(param.name, call.span))
        raise Abort

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

    @builtin("range", "len", "min", "max")
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


#: names a spec cannot give a block, a parameter or a value: the built-in functions, Residual and
#: the built-in constants
RESERVED_NAMES = frozenset(BUILTINS) | {"Residual"} | frozenset(BUILTIN_VALUES)
