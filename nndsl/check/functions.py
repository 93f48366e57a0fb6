"""The built-in functions of the language: tensor operations (cat, stack, chunk, split and
the element-wise add, sub, mul, div) and constant helpers (range, len, min, max)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Protocol

from nndsl import ast, operators, shapes
from nndsl.check.binding import Binding
from nndsl.check.blocksource import lower
from nndsl.check.common import BUILTIN_VALUES, Abort, close_matches
from nndsl.check.context import Context
from nndsl.check.values import MAX_REPEAT, Tensor, is_fn, is_sequence, kind_name
from nndsl.diagnostics import Label, Severity, Span
from nndsl.ir import ParamNode
from nndsl.layers.base import ArgValueError, Param, ShapeError, WrongType
from nndsl.operators import runtime
from nndsl.operators.base import TENSOR, TENSOR_OR_NUMBER
from nndsl.shapes import Shape, TensorType


class Statements(Protocol):
    """What the built-in functions ask of the statements checker (nndsl.check.flow.Flow)."""

    def expression(self, expr: ast.Expr, symbols: bool) -> Any: ...

    def constant(self, expr: ast.Expr) -> Any: ...

    def tensor(self, value: Any, expr: Any) -> Tensor: ...

    def tensor_binop(self, expr: ast.BinOp, left: Any, right: Any) -> Any: ...

    def op(self, op: str, inputs: list, types: list, args: dict, span: Span) -> list[Tensor]: ...

    def op_error(self, exc: ShapeError, span: Span, tensors: list) -> None: ...


#: a learned tensor's initialisations -> their arguments and defaults (torch's: ``normal_``,
#: ``nn.init.trunc_normal_``, ``uniform_``)
PARAMETER_INITS: dict[str, dict[str, float | None]] = {
    "zeros": {},
    "ones": {},
    "constant": {"value": None},
    "normal": {"mean": 0.0, "std": 1.0},
    "trunc_normal": {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0},
    "uniform": {"a": 0.0, "b": 1.0},
}
_PARAMETER_ARGS = ["shape", "init", "value", "mean", "std", "a", "b", "dtype"]
#: the dtypes a learned tensor may have (torch's floating dtypes that nndsl knows)
PARAMETER_DTYPES = ("float32", "float64", "float16", "bfloat16")

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
        #: the statement being checked: ``Parameter(...)`` is valid only as the whole value of one
        #: that names one value
        self.statement: ast.Assign | None = None

    def arguments(
        self, call: ast.Call, names: list[str], required: int, variadic: str | None = None, sizes: tuple = ()
    ):
        """Match a built-in function's arguments: a dict of values by parameter name; those named
        in ``sizes`` may be symbolic sizes of the inputs (``arange(T)``)."""
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
            values[pname] = self._size(arg.value) if pname in sizes else self.flow.expression(arg.value, False)
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
        if op.varargs:
            call = _gathered(call, op.param_names().index(op.varargs))
        variadic = "tensors" if op.variadic else None
        values, spans, rest = self.arguments(call, op.param_names(), op.required(), variadic, op.sizes)
        if op.scalar_operand:  # add(x, y) is x + y, numbers included
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
        numbers = {p.name for p in op.params if p.kind is TENSOR_OR_NUMBER and _is_number(values.get(p.name))}
        # an optional tensor (attn_mask=None) left out or given as None is not an input
        tensors = [
            p.name
            for p in op.params
            if p.kind in (TENSOR, TENSOR_OR_NUMBER) and p.name not in numbers and values.get(p.name) is not None
        ]
        items += [self.flow.tensor(values[p], call.args[0].value) for p in tensors]
        args = {p.name: self._converted(call, values, spans, p) for p in op.params if p.kind is not TENSOR}
        args.update({p: None for p in tensors if p in args})  # given as a tensor: an input
        if op.sizes or op.device:
            items += self._runtime(call, op, args, items, spans)
        if not items:
            self.ctx.error(
                "E105", f"{name} needs the tensors to join", call.span, "no tensors", help=f"{name}(a, b, dim=1)"
            )
            raise Abort
        if any(t.type is None for t in items):
            if op.pieces:
                self.ctx.state.poisoned = True
                raise Abort
            return self.ctx.poisoned(call.span)
        total = op.fixed_size(args)
        if total is not None and items[0].type.shape.dims and not items[0].type.shape.rest:
            items[0] = self._split_total(call, items[0], total, args["dim"])
        return self.applied(op, items, args, spans, call.span, self._slot_sources(call, op, args))

    def _slot_sources(self, call: ast.Call, op, args: dict) -> dict | None:
        """Inside a block: each argument uses of the block's class may differ in (``roll``'s
        shifts), as written in terms of the block's parameters."""
        if self.ctx.scope is None or not self.ctx.scope.block:
            return None
        out = {}
        for name in op.slot_values(args):
            written = _written(call, name, op.param_names().index(name))
            expr = None if written is None else lower(written, self.ctx.scope, self.ctx)
            if expr is not None:
                out[name] = expr
        return out

    def applied(self, op, items: list[Tensor], args: dict, spans: dict, span: Span, sources=None):
        """The operator ``op`` applied to checked tensors and converted arguments: its shape rule's
        results as new values, or its error at the argument at fault (else at ``span``)."""
        try:
            types = op.output([t.type for t in items], args)
        except ShapeError as exc:
            self.flow.op_error(exc, spans.get(exc.param, span) if exc.param else span, items)
        unverified = " and ".join(op.unverified([t.type for t in items], args))
        if unverified:
            message = f"cannot verify statically that {unverified}"
            self.ctx.diag(Severity.WARNING, "W301", message, span, f"needs {unverified}")
        outs = self.flow.op(op.name, items, types, args, span, sources=sources)
        return tuple(outs) if op.pieces else outs[0]

    def symbol_operator(self, expr: ast.BinOp, left: Any, right: Any):
        """``a @ b``: the operator registered with that symbol, applied to two tensors."""
        op = next(o for o in operators.REGISTRY.values() if o.symbol == expr.op)
        items = [self.flow.tensor(left, expr.left), self.flow.tensor(right, expr.right)]
        if any(t.type is None for t in items):
            return self.ctx.poisoned(expr.span)
        return self.applied(op, items, {}, {}, expr.span)

    def negated(self, expr: ast.Neg | ast.Invert, value: Tensor, op: str = "neg") -> Tensor:
        """``-x`` (``~x``) of a tensor: the operator registered as neg (bitwise_not)."""
        if value.type is None:
            return self.ctx.poisoned(expr.span)
        return self.applied(operators.REGISTRY[op], [value], {}, {}, expr.span)

    def _size(self, expr: ast.Expr):
        """A size argument: constants, and the symbolic sizes of the inputs (``T``, ``2*N``)."""
        known = set(self.ctx.used_names)
        value = self.flow.expression(expr, True)
        added = self.ctx.used_names - known  # a name that is no size of an input: undefined
        if added:
            self.ctx.used_names -= added
            name = sorted(added)[0]
            self.ctx.error("E108", f"undefined name '{name}'", _name_span(expr, name) or expr.span, "not defined")
            raise Abort
        return value

    def _runtime(self, call: ast.Call, op, args: dict, items: list[Tensor], spans: dict) -> list[Tensor]:
        """The tensors an operation reads its symbolic sizes from at run time (``tokens`` for
        ``arange(T)``), after ``items``; fills ``args["runtime"]``, the table of where each is read."""
        for p in op.sizes:
            args[p] = _substitute(args[p], self.ctx.bindings)
        sizes = {p: (args[p], spans.get(p, call.span)) for p in op.sizes}
        extra, table = self.runtime_sources(call.name.text, sizes, items)
        if op.device and not items and not extra:
            extra += _scope_tensors(self.ctx.scope)[:1]  # the device the new tensor is made on
        args["runtime"] = table
        return extra

    def runtime_sources(self, what: str, sizes: dict, items: list[Tensor]) -> tuple[list[Tensor], tuple]:
        """Where each symbol of ``sizes`` (name -> (a size or tuple of sizes, its span)) is read at
        run time: a tensor that has it, from ``items`` (the operation's own inputs) first, then the
        body's tensors, inputs first. Returns the tensors to add after ``items`` and the table
        ``((symbol, index into items + added, axis), ...)`` that ``nndsl.operators.runtime`` writes
        as ``x.size(axis)`` and exports with Shape/Gather; E212 where no tensor has a symbol."""
        body = _scope_tensors(self.ctx.scope)
        extra: list[Tensor] = []
        table = []
        for value, span in sizes.values():
            for symbol in runtime.symbols_of(value):
                if any(entry[0] == symbol for entry in table):
                    continue
                found = runtime.find(items + extra, symbol) or runtime.find(body, symbol)
                if found is None:
                    self.ctx.error(
                        "E212",
                        f"{what} needs the size {symbol} at run time, but no tensor here has it",
                        span,
                        "no tensor has this size",
                        help=f"{symbol} must be a size of an input of the model or of a value defined before",
                    )
                    raise Abort
                t, axis = found
                if t not in items + extra:
                    extra.append(t)
                table.append((symbol, (items + extra).index(t), axis))
        return extra, tuple(table)

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

    @staticmethod
    def makes_parameter(stmt: ast.Assign) -> bool:
        """Whether a statement is ``name = Parameter(...)``: the chain that follows it continues from
        the value before it, as a learned tensor is not a step of the data flow."""
        return isinstance(stmt.value, ast.Call) and stmt.value.name.text == "Parameter" and len(stmt.targets) == 1

    @builtin("Parameter")
    def parameter(self, call: ast.Call):
        """``name = Parameter(shape, init="zeros", ...)``: a learned float32 tensor of known sizes."""
        stmt = self.statement
        if stmt is None or stmt.value is not call or len(stmt.targets) != 1 or self.ctx.state is None:
            chained = stmt is not None and isinstance(stmt.value, ast.Flow) and stmt.value.steps[0] is call
            self.ctx.error(
                "E117",
                "Parameter(...) makes a learned tensor, which a statement must name",
                call.span,
                "not the value of a named statement",
                help="a line starting with `->` continues the line before it: apply layers to the tensor "
                "in a statement of its own"
                if chained
                else "write it on a line of its own: `gamma = Parameter([C, 1, 1])`, then use gamma",
            )
            raise Abort
        self._input_sizes(call)
        values, spans, _ = self.arguments(call, _PARAMETER_ARGS, 1)
        sizes = self._parameter_shape(call, values["shape"], spans["shape"])
        init, args = self._parameter_init(call, values, spans)
        t = TensorType(Shape(tuple(sizes)), self._parameter_dtype(values.get("dtype"), spans.get("dtype")))
        if not self.ctx.fits(t, call.span):
            raise Abort
        sources = None
        if self.ctx.scope is not None and self.ctx.scope.block is not None:
            sources = self._parameter_sources(call, args)
        out = self.ctx.state.new(t, call.span, "output", self.ctx.source)
        self.ctx.state.nodes.append(
            ParamNode(
                stmt.targets[0].text,
                tuple(sizes),
                init,
                MappingProxyType(args),
                out.id,
                t,
                call.span,
                self.ctx.line(stmt.span),
                self.ctx.text(stmt.span),
                sources,
                id=self.ctx.state.node_id(),
            )
        )
        return out

    def _input_sizes(self, call: ast.Call) -> None:
        """A size of the model's input written as a Parameter's size: one shape for every input
        cannot follow it."""
        written = _written(call, "shape", 0)
        for index, item in enumerate(written.items if isinstance(written, ast.TupleExpr) else ()):
            if (
                isinstance(item, ast.NameRef)
                and item.name in self.ctx.used_names
                and (self.ctx.scope is None or self.ctx.scope.find(item.name) is None)
                and item.name not in self.ctx.constants
            ):
                self._symbolic_size(index, item.name, item.span)

    def _symbolic_size(self, index: int, size, span: Span) -> None:
        self.ctx.error(
            "E107",
            f"a Parameter's sizes must be known integers, but size {index} is the symbolic size {size}",
            span,
            "symbolic size",
            help="a learned tensor has one shape for every input: give the size as a number "
            "(or declare it with a number in the input)",
        )
        raise Abort

    def _parameter_shape(self, call: ast.Call, shape, span: Span) -> list[int]:
        """The sizes of a learned tensor: known positive integers, each checked at its position."""
        written = _written(call, "shape", 0)
        if not is_sequence(shape):
            self.ctx.error(
                "E106",
                f"the shape of a Parameter is a list of sizes, got {kind_name(shape)}",
                span,
                "not a list",
                help="e.g. Parameter([1, 1, 768])",
            )
            raise Abort
        items = written.items if isinstance(written, ast.TupleExpr) and len(written.items) == len(shape) else None
        for index, size in enumerate(shape):
            where = items[index].span if items else span
            if isinstance(size, shapes.Poly):
                self._symbolic_size(index, size, where)
            if isinstance(size, bool) or not isinstance(size, int):
                self.ctx.error(
                    "E106", f"a Parameter's sizes are integers, got {kind_name(size)}", where, "not an integer"
                )
                raise Abort
            if size <= 0:
                self.ctx.error(
                    "E107",
                    f"a Parameter's sizes must be positive, but size {index} is {size}",
                    where,
                    "not positive",
                )
                raise Abort
        return list(shape)

    def _parameter_init(self, call: ast.Call, values: dict, spans: dict) -> tuple[str, dict[str, float]]:
        """The initialisation and its arguments, every one of them (defaults filled in)."""
        init = values.get("init", "zeros")
        if not isinstance(init, str):
            self.ctx.error("E106", f"init of Parameter must be a string, got {kind_name(init)}", spans["init"])
            raise Abort
        if init not in PARAMETER_INITS:
            close = close_matches(init, list(PARAMETER_INITS), n=1)
            self.ctx.error(
                "E107",
                f"unknown init {init!r} of Parameter",
                spans["init"],
                "not an initialisation",
                help=f"did you mean {close[0]!r}?" if close else f"one of {', '.join(map(repr, PARAMETER_INITS))}",
            )
            raise Abort
        takes = PARAMETER_INITS[init]
        args: dict[str, float] = {}
        for name in _PARAMETER_ARGS[2:-1]:
            if name not in values:
                continue
            value = values[name]
            if name not in takes:
                takers = [k for k, v in PARAMETER_INITS.items() if name in v]
                self.ctx.error(
                    "E102",
                    f"init={init!r} takes no argument {name!r}",
                    spans[name],
                    "not used by this init",
                    (Label(spans["init"], f"init={init!r}"),) if "init" in spans else (),
                    help=f"{name}= goes with init={' or '.join(map(repr, takers))}",
                )
                raise Abort
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.ctx.error(
                    "E106", f"{name} of Parameter must be a number, got {kind_name(value)}", spans[name], "not a number"
                )
                raise Abort
            args[name] = float(value)
        for name, default in takes.items():
            if name not in args:
                if default is None:
                    self.ctx.error(
                        "E105",
                        f"Parameter with init={init!r} is missing the required argument {name!r}",
                        call.span,
                        f"'{name}' missing",
                        help=f"e.g. Parameter([C, 1, 1], init={init!r}, {name}=1e-6)",
                    )
                    raise Abort
                args[name] = default
        problem = None
        if "std" in args and not args["std"] >= 0:
            problem = "std", f"std must be at least 0, got {values['std']}"  # torch's normal_ refuses it
        elif "a" in args and not args["a"] <= args["b"]:
            problem = ("b" if "b" in spans else "a"), f"a must not exceed b, got a={args['a']}, b={args['b']}"
        if problem is not None:
            self.ctx.error("E107", problem[1], spans.get(problem[0], call.span), "invalid value")
            raise Abort
        return init, {name: args[name] for name in takes}  # in torch's order of them

    def _parameter_dtype(self, dtype, span: Span | None) -> str:
        """float32 unless the spec says another floating dtype."""
        if dtype is None:
            return "float32"
        if not isinstance(dtype, str):
            self.ctx.error("E106", f"dtype of Parameter must be a string, got {kind_name(dtype)}", span, "not a string")
            raise Abort
        if dtype not in PARAMETER_DTYPES:
            close = close_matches(dtype, list(PARAMETER_DTYPES), n=1)
            self.ctx.error(
                "E107",
                f"a Parameter's dtype is a floating dtype, got {dtype!r}",
                span,
                "not a floating dtype",
                help=f"did you mean {close[0]!r}?" if close else f"one of {', '.join(map(repr, PARAMETER_DTYPES))}",
            )
            raise Abort
        return dtype

    def _parameter_sources(self, call: ast.Call, args: dict) -> MappingProxyType:
        """Inside a block: each size and init argument the spec wrote as an expression of the
        block's parameters (``C``), for the block's class to compute."""
        out = {}
        written = _written(call, "shape", 0)
        items = written.items if isinstance(written, ast.TupleExpr) else ()
        for index, item in enumerate(items):
            expr = lower(item, self.ctx.scope, self.ctx)
            if expr is not None:
                out[f"size{index}"] = expr
        for name in args:
            written = _written(call, name, _PARAMETER_ARGS.index(name))
            expr = None if written is None else lower(written, self.ctx.scope, self.ctx)
            if expr is not None:
                out[name] = expr
        return MappingProxyType(out)

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


def _gathered(call: ast.Call, fixed: int) -> ast.Call:
    """``expand(x, N, -1)``: the positional arguments after the first ``fixed`` as one tuple."""
    positional = [a for a in call.args if a.keyword is None]
    if len(positional) <= fixed:
        return call
    rest = positional[fixed:]
    span = Span(rest[0].span.start, rest[-1].span.end)
    gathered = ast.Arg(None, ast.TupleExpr(tuple(a.value for a in rest), span), span)
    return call._replace(args=(*positional[:fixed], gathered, *(a for a in call.args if a.keyword is not None)))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _name_span(node, name: str) -> Span | None:
    """Where ``name`` is first written in the expression ``node``."""
    if isinstance(node, ast.NameRef):
        return node.span if node.name == name else None
    if isinstance(node, tuple):
        for child in node:
            found = _name_span(child, name)
            if found is not None:
                return found
    return None


def _substitute(value, bindings):
    """A size, or a tuple of sizes, with the symbols the model fixed replaced by their sizes."""
    if type(value) is tuple:
        return tuple(_substitute(v, bindings) for v in value)
    return shapes.substitute(value, bindings) if isinstance(value, shapes.Poly) else value


def _scope_tensors(scope) -> list[Tensor]:
    """The tensors of a body, inputs first, that a runtime size may be read from."""
    found = []
    while scope is not None:
        found += [v for v in scope.values.values() if isinstance(v, Tensor) and v.type is not None]
        scope = scope.parent
    return sorted(found, key=lambda t: t.role != "input")


def _written(call: ast.Call, name: str, position: int) -> ast.Expr | None:
    """The expression a call wrote for a parameter, by keyword or at its position."""
    positional = [a for a in call.args if a.keyword is None]
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.text == name:
            return arg.value
    return positional[position].value if position < len(positional) else None


#: names a spec cannot give a block, a parameter or a value: the built-in functions, Residual and
#: the built-in constants
RESERVED_NAMES = frozenset(BUILTINS) | {"Residual"} | frozenset(BUILTIN_VALUES)
