"""Constants, argument binding (E1xx) and a layer call's shape inference (E2xx)."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from nndsl import ast, layout, shapes
from nndsl.check.common import BUILTIN_VALUES, INFER, INT64_MAX, Abort, Bound, close_matches
from nndsl.check.context import Context
from nndsl.check.values import kind_name
from nndsl.diagnostics import Label, Span
from nndsl.ir import LayerNode
from nndsl.layers import lookup, suggest
from nndsl.layers.base import (
    REQUIRED,
    ArgValueError,
    Layer,
    Param,
    ShapeError,
    WrongType,
    holds_symbol,
    type_name,
    value_text,
)
from nndsl.layers.registry import TORCH_LAYERS
from nndsl.shapes import DTYPES, INTEGER_DTYPES, Shape, Sym, TensorType


class Binding:
    """Constants and calls of one file: ``let``, a model's input types, a call's arguments
    matched and converted, a layer applied to its input. ``evaluate`` is the expression
    evaluator of the file's statements (nndsl.check.flow), which these call back."""

    def __init__(self, ctx: Context, evaluate: Callable[[ast.Expr, bool], Any]):
        self.ctx = ctx
        self._raw_evaluate = evaluate

    def evaluate(self, expr: ast.Expr, symbols: bool = False):
        """Value of a constant expression; with ``symbols``, unknown names become symbolic dims."""
        try:
            return self._raw_evaluate(expr, symbols)
        except RecursionError:
            self.ctx.error("E110", "expression nested too deeply", expr.span, "too deep")
            raise Abort from None

    def bounded(self, value, span: Span):
        """Integers stay within 64 bits, as every size torch accepts does."""
        if isinstance(value, int) and not isinstance(value, bool) and not -INT64_MAX - 1 <= value <= INT64_MAX:
            self.ctx.error("E110", "integer out of range (beyond 64 bits)", span, "too large")
            raise Abort
        return value

    def arithmetic(self, expr: ast.BinOp, left, right):
        """``left op right`` of two constants, kept within 64 bits."""
        try:
            return self.bounded(self.binop(expr, left, right), expr.span)
        except OverflowError:
            self.ctx.error("E110", "number out of range", expr.span, "too large")
            raise Abort from None

    def binop(self, expr: ast.BinOp, left, right):
        op = expr.op

        def is_num(v):
            return isinstance(v, (int, float, shapes.Poly)) and not isinstance(v, bool)

        if op == "@":
            self.ctx.error("E110", "'@' multiplies tensors (a matrix product), not numbers", expr.span, "not tensors")
            raise Abort
        if not (is_num(left) and is_num(right)):
            self.ctx.error(
                "E110",
                f"unsupported operand types for {op}: {type_name(left)} and {type_name(right)}",
                expr.span,
                "arithmetic needs numbers",
            )
            raise Abort
        if op in ("&", "|", "^"):
            return self._bitwise(expr, left, right)
        symbolic = isinstance(left, shapes.Poly) or isinstance(right, shapes.Poly)
        if symbolic:
            if op == "+":
                return shapes.add(left, right)
            if op == "-":
                return shapes.sub(left, right)
            if op == "*" and isinstance(left, (int, shapes.Poly)) and isinstance(right, (int, shapes.Poly)):
                return shapes.mul(left, right)
            if op == "//" and isinstance(right, int) and right > 0:
                return shapes.floordiv(left, right)
            self.ctx.error("E110", f"'{op}' is not supported on symbolic sizes here", expr.span, "symbolic size")
            raise Abort
        if op in ("/", "//", "%") and right == 0:
            self.ctx.error("E110", "division by zero", expr.span, "divides by zero")
            raise Abort
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            return left / right
        if op == "//":
            return left // right
        if op == "**":
            return self._power(expr, left, right)
        return left % right

    def _bitwise(self, expr: ast.BinOp, left, right) -> int:
        """``a & b``, ``a | b``, ``a ^ b`` of two integers (conditions combine with and/or)."""
        if not all(type(v) is int for v in (left, right)):
            self.ctx.error(
                "E110",
                f"'{expr.op}' combines integers or tensors, got {type_name(left)} and {type_name(right)}",
                expr.span,
                "not integers",
                help="conditions combine with 'and' and 'or'",
            )
            raise Abort
        return {"&": left & right, "|": left | right, "^": left ^ right}[expr.op]

    def _power(self, expr: ast.BinOp, base: int | float, exponent: int | float) -> int | float:
        """``base ** exponent`` as Python computes it, refusing what Python would not give as a
        real number of bounded size (a result of thousands of digits, 0 to a negative power)."""
        if base == 0 and exponent < 0:
            self.ctx.error("E110", "division by zero (0 to a negative power)", expr.span, "divides by zero")
            raise Abort
        if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1:
            if exponent * math.log2(abs(base)) > 4096:
                self.ctx.error("E110", "number out of range", expr.span, "too large")
                raise Abort
        try:
            value = base**exponent
        except OverflowError:
            self.ctx.error("E110", "number out of range", expr.span, "too large")
            raise Abort from None
        if isinstance(value, complex):
            self.ctx.error(
                "E110", "a negative number to a fractional power is not a real number", expr.span, "not real"
            )
            raise Abort
        return value

    # ------------------------------------------------------------ top level

    def let(self, item: ast.Let) -> None:
        name = item.name.text
        if name in self.ctx.constants or name in BUILTIN_VALUES:
            secondary = (
                (Label(self.ctx.constant_spans[name], "first defined here"),) if name in self.ctx.constants else ()
            )
            self.ctx.error("E109", f"'{name}' is already defined", item.name.span, "redefined here", secondary)
            return
        try:
            self.ctx.constants[name] = self.evaluate(item.value)
            self.ctx.constant_spans[name] = item.name.span
        except Abort:
            self.ctx.broken_constants.add(name)

    def input_type(self, decl: ast.InputDecl) -> TensorType | None:
        dtype = "float32"
        if decl.dtype is not None:
            dtype = DTYPES.get(decl.dtype.text)
            if dtype is None:
                close = close_matches(decl.dtype.text, list(DTYPES), n=1)
                self.ctx.error(
                    "E112",
                    f"unknown dtype '{decl.dtype.text}'",
                    decl.dtype.span,
                    "not a dtype",
                    help=f"did you mean '{close[0]}'?" if close else "use float32 (the default) or long",
                )
                return None
        dims = []
        for expr in decl.dims:
            try:
                value = self.evaluate(expr, symbols=True)
            except Abort:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, shapes.Poly)):
                self.ctx.error("E112", f"a dimension must be an integer or a name, got {kind_name(value)}", expr.span)
                return None
            if isinstance(value, int) and value < 0:
                self.ctx.error("E112", f"a dimension cannot be negative, got {value}", expr.span, "negative")
                return None
            dims.append(value)
        t = TensorType(Shape(tuple(dims)), dtype)
        return t if self.ctx.fits(t, decl.span) else None

    # ------------------------------------------------------------ layer calls

    def match_arguments(
        self,
        call: ast.Call,
        owner: str,
        names: list[str],
        signature: str,
        positional: list[str] | None = None,
        besides: str = "",
    ) -> tuple[list[tuple[str, ast.Arg]], set[str], bool]:
        """Pair a call's arguments with parameter names (``positional`` in order, any of ``names`` by
        keyword), reporting E001, E102, E103 and E104 (``besides`` qualifies its count). Returns the
        pairs in the order written, the parameters misspelt keywords were taken for, and whether all
        went well."""
        positional = names if positional is None else positional
        matched: list[tuple[str, ast.Arg]] = []
        spans: dict[str, Span] = {}
        misspelt: set[str] = set()
        ok, position, keyword_seen = True, 0, False
        for arg in call.args:
            if arg.keyword is None:
                if keyword_seen:
                    self.ctx.error("E001", "positional argument after a keyword argument", arg.span, "positional")
                    ok = False
                    continue
                if position >= len(positional):
                    if position == len(positional):  # one error for all the extra arguments
                        extra = [a for a in call.args if a.keyword is None][position:]
                        given = position + len(extra)  # every positional argument written
                        self.ctx.error(
                            "E104",
                            f"{owner} takes at most {len(positional)} positional argument"
                            f"{'s' if len(positional) != 1 else ''}{besides}, got {given}",
                            Span(extra[0].span.start, extra[-1].span.end),
                            "unexpected argument" if len(extra) == 1 else f"{len(extra)} unexpected arguments",
                            help=f"signature: {signature}",
                        )
                    ok = False
                    position += 1
                    continue
                pname = positional[position]
                position += 1
            else:
                keyword_seen = True
                pname = arg.keyword.text
                if pname not in names:
                    advice = foreign_argument(pname, names)
                    if advice:
                        close = [advice[0]] if advice[0] else []
                    else:
                        close = close_matches(pname, names, n=1)
                        # an abbreviation (``out`` for ``out_features``): the one parameter it begins
                        prefixed = [n for n in names if n.startswith(pname) and len(pname) >= 2]
                        if not close and len(prefixed) == 1:
                            close = prefixed
                    misspelt.update(close)
                    if advice and advice[0]:
                        value = " ".join(self.ctx.source.text[arg.value.span.start : arg.value.span.end].split())
                        help_text = f"{advice[1]}: {advice[0]}={value}"
                    elif advice:
                        help_text = advice[1]
                    else:
                        help_text = f"did you mean '{close[0]}'?" if close else f"signature: {signature}"
                    self.ctx.error(
                        "E102",
                        f"{owner} has no argument '{pname}'",
                        arg.keyword.span,
                        "unknown argument",
                        help=help_text,
                    )
                    ok = False
                    continue
            if pname in spans:
                self.ctx.error(
                    "E103",
                    f"argument '{pname}' of {owner} is given twice",
                    arg.span,
                    "given again here",
                    (Label(spans[pname], "first given here"),),
                )
                ok = False
                continue
            spans[pname] = arg.span
            matched.append((pname, arg))
        return matched, misspelt, ok

    def bind(self, call: ast.Call) -> Bound:
        """Phase 1: find the layer, match arguments to parameters, evaluate and convert them."""
        layer = lookup(call.name.text)
        if layer is None:
            self.ctx.error(
                "E101",
                f"unknown layer '{call.name.text}'",
                call.name.span,
                "not a known layer",
                help=unknown_layer_help(call.name.text),
            )
            return Bound(call, None, None)
        if layer.varargs is not None:
            call, gathered_ok = self.gather_varargs(call, layer)
            if not gathered_ok:
                return Bound(call, layer, None)
        values, spans, failed = self.convert_arguments(
            call,
            layer.dsl_name(),
            layer.params,
            _defaults(layer),
            signature(layer),
            tuple(p.name for p in layer.params if not p.keyword_only),
        )
        if call.selector is not None and call.selector.text not in layer.selectors:
            if layer.selectors:
                listed = ", ".join(f".{s}" for s in layer.selectors)
                help_text = f"{layer.dsl_name()} offers {listed}"
            else:
                help_text = f"{layer.dsl_name()} returns a single tensor; remove '.{call.selector.text}'"
            self.ctx.error(
                "E111",
                f"{layer.dsl_name()} has no output '{call.selector.text}'",
                call.selector.span,
                "unknown selector",
                help=help_text,
            )
            failed = True
        return Bound(call, layer, None if failed else values, spans)

    def gather_varargs(self, call: ast.Call, layer: type[Layer]) -> tuple[ast.Call, bool]:
        """``Permute(0, 2, 1)`` as ``Permute((0, 2, 1))``: two or more positional arguments become
        one tuple for the layer's ``varargs`` parameter, so both forms bind, check and emit alike.
        A tuple written among them (``Permute((0, 2), 1)``) is an E106 at that tuple."""
        leading = 0  # a positional argument after a keyword stays where it is, for E001
        while leading < len(call.args) and call.args[leading].keyword is None:
            leading += 1
        positional = call.args[:leading]
        if leading < 2:
            return call, True
        ok = True
        for arg in positional:
            if isinstance(arg.value, ast.TupleExpr):
                name = layer.dsl_name()
                self.ctx.error(
                    "E106",
                    f"{layer.varargs} of {name} must be integers given one by one or one tuple, "
                    "got a tuple among several arguments",
                    arg.value.span,
                    "a tuple among integers",
                    help=f"write {name}(0, 2, 1) or {name}((0, 2, 1)), not both at once",
                )
                ok = False
        first, last = positional[0].span, positional[-1].span
        span = Span(first.start, last.end)
        gathered = ast.Arg(None, ast.TupleExpr(tuple(a.value for a in positional), span), span)
        return call._replace(args=(gathered, *call.args[leading:])), ok

    def convert_arguments(
        self,
        call: ast.Call,
        owner: str,
        params: tuple[Param, ...],
        defaults: dict,
        signature_text: str,
        positional: tuple[str, ...] | None = None,
    ) -> tuple[dict, dict[str, Span], bool]:
        """Match a call's arguments to ``params``, evaluate and convert each with its kind (E106,
        E107), fill in ``defaults``; a parameter that may be inferred and is not given is INFER.
        ``positional`` limits which parameters may be given by position (all, in order, by default).
        Returns the values, each given argument's span, and whether anything failed."""
        by_name = {p.name: p for p in params}
        values: dict[str, object] = {}
        spans: dict[str, Span] = {}
        positional_names = None if positional is None else list(positional)
        matched, misspelt, ok = self.match_arguments(call, owner, list(by_name), signature_text, positional_names)
        failed = not ok
        for pname, arg in matched:
            spans[pname] = arg.span
            try:
                raw = self.evaluate(arg.value)
            except Abort:
                failed = True
                continue
            param = by_name[pname]
            try:
                values[pname] = param.kind.convert(raw)
            except WrongType:
                integral_float = isinstance(raw, float) and raw.is_integer() and "integer" in param.kind.describe
                help = "'/' always gives a float; divide integers with '//'" if integral_float else None
                if kind_name(raw) == "a tensor":
                    written = " ".join(self.ctx.source.text[arg.value.span.start : arg.value.span.end].split())
                    help = (
                        f"a layer's arguments are its settings; to apply {owner} to {written}, "
                        f"write {written} -> {owner}" + ("(...)" if len(call.args) > 1 else "")
                    )
                elif holds_symbol(raw):
                    help = (
                        "a symbolic size is known only when the model runs, and this argument needs a number: "
                        "declare that size as a number, or (for a reshape) write -1 for the one size it can infer"
                    )
                self.ctx.error(
                    "E106",
                    f"{pname} of {owner} must be {param.kind.describe}, got {kind_name(raw)}"
                    + (f" ({value_text(raw)})" if kind_name(raw) == type_name(raw) else ""),
                    arg.value.span,
                    f"{kind_name(raw)}",
                    help=help,
                )
                failed = True
            except ArgValueError as exc:
                self.ctx.error(
                    "E107", f"{pname} of {owner} {exc.message}", arg.value.span, "invalid value", help=exc.help
                )
                failed = True
        for param in params:
            if param.name in values or param.name in spans:
                continue
            if not param.required:
                values[param.name] = defaults[param.name]
            elif param.infer:
                values[param.name] = INFER
            elif param.name in misspelt:
                failed = True  # already reported as the misspelt keyword that meant it
            else:
                self.ctx.error(
                    "E105",
                    f"{owner} is missing the required argument '{param.name}'",
                    call.span,
                    f"'{param.name}' missing",
                    help=f"signature: {signature_text}",
                )
                failed = True
        return values, spans, failed

    def validate(self, b: Bound) -> bool:
        try:
            b.layer.validate(b.args)
        except ArgValueError as exc:
            span = b.arg_spans.get(exc.param, b.call.span) if exc.param else b.call.span
            self.ctx.error(exc.code, f"{b.layer.dsl_name()}: {exc.message}", span, "invalid value", help=exc.help)
            return False
        return True

    def apply(
        self, index: int, b: Bound, x: TensorType, inputs: dict | None = None, forward: dict | None = None
    ) -> LayerNode | None:
        """Phase 2: resolve aliases, infer omitted arguments, run the shape rule; ``inputs`` are the
        types of the forward's extra tensor inputs, ``forward`` its other arguments."""
        inputs, forward = inputs or {}, forward or {}
        self.ctx.current = b.call
        self.ctx.current_arg_spans = b.arg_spans
        args = dict(b.args)
        try:
            layer = b.layer.resolve(args, x, self.ctx)
            for name, value in args.items():
                if value is INFER:
                    inferred = layer.infer(name, args, x)
                    if not _concrete(inferred):
                        raise ShapeError(
                            "E205",
                            f"cannot infer {name} of {layer.dsl_name()} from the input {x}",
                            f"{name} unknown for input {x}",
                            f"give {name} explicitly"
                            + (", or give the input shape with --input" if _has_unknowns(x) else ""),
                        )
                    try:
                        args[name] = layer.param(name).kind.convert(inferred)
                    except ArgValueError as exc:
                        raise ShapeError(
                            "E205",
                            f"cannot take {name} of {layer.dsl_name()} from the input {x}: {exc.message}",
                            f"{name} would be {inferred}",
                        ) from None
            if not b.validated:
                # validate this use's arguments, inferred ones included; the binding itself stays
                # as written, for the next use of the same layer (a repetition) to infer anew
                if not self.validate(Bound(b.call, b.layer, args, b.arg_spans)):
                    return None
            integer = x.dtype in INTEGER_DTYPES
            if integer and layer.integer_input is None:
                raise ShapeError(
                    "E204",
                    f"{layer.dsl_name()} expects a floating-point input, got {x}",
                    f"expected float32, got {x.dtype}",
                    "integer indices go through Embedding first",
                )
            if x.dtype == "bool" and layer.bool_input is None:
                raise ShapeError(
                    "E204",
                    f"{layer.dsl_name()} does not take a bool input, got {x}: torch raises",
                    f"expected float32, got {x.dtype}",
                    "a mask multiplies a float tensor (x * mask), or becomes numbers first",
                )
            if x.dtype in layer.unsupported_dtypes:
                raise ShapeError(
                    "E204",
                    f"torch has no {x.dtype} kernel for {layer.dsl_name()} on CPU, got {x}",
                    f"{x.dtype} input",
                    "use float32 (the default), or int64 where the layer takes integers",
                )
            fixed_before = len(self.ctx.bindings)
            out = layer.output_with(
                args, x, inputs, {p.name: p.default for p in layer.forward_params} | forward, self.ctx
            )
            if len(self.ctx.bindings) > fixed_before:
                # The rule fixed a symbol part-way: run it again on the input with that size in
                # place, so the rest of the rule (an output size of 0, a kernel too big) sees it.
                # Its diagnostics were all given by the first run.
                mark = len(self.ctx.sink.items)
                x = x._replace(shape=x.shape.substitute(self.ctx.bindings))
                try:
                    out = layer.output_with(
                        args, x, inputs, {p.name: p.default for p in layer.forward_params} | forward, self.ctx
                    )
                finally:
                    del self.ctx.sink.items[mark:]
            if integer and layer.integer_input == "float" or x.dtype == "bool" and layer.bool_input == "float":
                out = out._replace(dtype="float32")
            selector = b.call.selector.text if b.call.selector is not None else layer.default_selector
            if selector is not None:
                flags = {p.name: p.default for p in layer.forward_params} | forward
                out = layer.select_with(args, x, out, selector, inputs, flags)
            out = out._replace(strides=layer.out_strides(args, x, out, selector))
        except ShapeError as exc:
            span = b.arg_spans.get(exc.param, b.call.span) if exc.param else b.call.span
            self.ctx.error(exc.code, exc.message, span, exc.label, self.ctx.producer_labels(), exc.help)
            return None
        if self.ctx.bindings:
            out = out._replace(
                shape=out.shape.substitute(self.ctx.bindings), strides=layout.substitute(out.strides, self.ctx.bindings)
            )
        line = self.ctx.source.line_col(b.call.span.start)[0]
        text = " ".join(self.ctx.source.text[b.call.span.start : b.call.span.end].split())
        return LayerNode(
            index,
            layer,
            b.call.name.text,
            MappingProxyType(args),
            b.call.selector.text if b.call.selector else None,
            x,
            out,
            layer.param_count(args),
            b.call.span,
            line,
            text,
            frozenset(n for n in b.arg_spans if n not in layer.tensor_inputs and n not in inputs),
            sum(1 for arg in b.call.args if arg.keyword is None),
            forward=MappingProxyType(forward),
            extra_types=MappingProxyType(inputs),
        )


_DEFAULTS: dict[type, dict] = {}


def _defaults(layer: type[Layer]) -> dict:
    """The layer's normalised defaults, computed once per layer class."""
    cached = _DEFAULTS.get(layer)
    if cached is None:
        cached = _DEFAULTS[layer] = {p.name: p.normalized_default for p in layer.params if not p.required}
    return cached


# names people bring from other frameworks or from torch code that is not a layer
_NOT_LAYERS = {
    "Dense": "Keras's Dense is Linear here: Linear(in_features, out_features)",
    "FullyConnected": "a fully connected layer is Linear(in_features, out_features)",
    "Sequential": "a chain is already sequential: join the layers with '->'",
    "view": "layers are capitalised: View((-1, 16))",
    "reshape": "layers are capitalised: Reshape((-1, 16))",
    "MaxPooling2D": "Keras's MaxPooling2D is MaxPool2d here: MaxPool2d(kernel_size)",
    "MaxPooling1D": "Keras's MaxPooling1D is MaxPool1d here: MaxPool1d(kernel_size)",
    "AveragePooling2D": "Keras's AveragePooling2D is AvgPool2d here: AvgPool2d(kernel_size)",
    "GlobalAveragePooling2D": "global average pooling is AdaptiveAvgPool2d(1) -> Flatten here",
    "GlobalMaxPooling2D": "global max pooling is AdaptiveMaxPool2d(1) -> Flatten here",
    "BatchNormalization": "Keras's BatchNormalization is BatchNorm here (BatchNorm1d/2d/3d by rank)",
    "LayerNormalization": "Keras's LayerNormalization is LayerNorm(normalized_shape) here",
    "Activation": "write the activation itself as a layer: ... -> ReLU",
    "Concatenate": "join tensors with cat(a, b, dim=1)",
    "Add": "add tensors with a + b, or wrap a sub-network in Residual(...)",
    "Swish": "Swish is SiLU in torch",
}


#: argument names from Keras (and habits from it) -> torch's name for the same thing
_FOREIGN_ARGUMENTS = {
    "rate": "p",
    "units": ("out_features", "hidden_size"),
    "filters": "out_channels",
    "kernel": "kernel_size",
    "pool_size": "kernel_size",
    "strides": "stride",
    "dilation_rate": "dilation",
    "use_bias": "bias",
    "epsilon": "eps",
    "axis": "dim",
    "input_dim": ("in_features", "num_embeddings", "input_size"),
    "output_dim": ("embedding_dim", "out_features"),
}
#: arguments with no counterpart on a torch layer, and what to write instead
_NOT_ARGUMENTS = {
    "activation": "an activation is a layer of its own here: ... -> ReLU after this one",
    "input_shape": "the input's shape is declared once, on the model: model M(x: [N, 3, 32, 32]) { ... }",
    "kernel_initializer": "initialisation is a train setting: init = he_normal in the train section",
    "return_sequences": "the full sequence is the default; .last selects the last step: LSTM(8, 16).last",
}


def foreign_argument(pname: str, names) -> tuple[str | None, str] | None:
    """(torch's parameter, help) for an argument name from another framework, or None."""
    if pname in _NOT_ARGUMENTS:
        return None, _NOT_ARGUMENTS[pname]
    wanted = _FOREIGN_ARGUMENTS.get(pname, ())
    for torch_name in (wanted,) if isinstance(wanted, str) else wanted:
        if torch_name in names:
            return torch_name, f"'{pname}' is Keras's name for torch's '{torch_name}'"
    return None


def unknown_layer_help(name: str) -> str:
    """A did-you-mean for an unknown layer name."""
    if name in _NOT_LAYERS:
        return _NOT_LAYERS[name]
    if name.endswith("Loss"):
        return "losses are not part of the network: a spec describes the model only"
    if name in TORCH_LAYERS and suggest(name) is None:
        return f"torch's {name} is not supported by nndsl yet: run `nndsl layers` to list the layers it has"
    variants = [f"{name}{n}d" for n in (1, 2, 3) if lookup(f"{name}{n}d")]
    if variants:
        listed = ", ".join(variants[:-1]) + " or " + variants[-1] if len(variants) > 1 else variants[0]
        return f"did you mean {listed}? (the dimension is part of the name)"
    guess = suggest(name)
    return f"did you mean '{guess}'?" if guess else "run `nndsl layers` to list the known layers"


def _concrete(value) -> bool:
    """An inferred argument must be a plain int, or a tuple of them (symbolic sizes are Poly tuples)."""
    if isinstance(value, shapes.Poly) or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _has_unknowns(x: TensorType) -> bool:
    """True when part of the shape comes from an input nobody declared (a bare chain without --input)."""
    if x.shape.rest:
        return True
    return any(isinstance(a, Sym) and a.free for d in x.shape.dims if isinstance(d, shapes.Poly) for a in d.atoms())


def signature(layer: type[Layer]) -> str:
    """``Linear(in_features, out_features, bias=True)``, as in torch's docs."""
    if layer.varargs is not None:  # torch's Tensor.permute(*dims), which takes a tuple as well
        return f"{layer.dsl_name()}(*{layer.varargs})"
    parts = []
    for p in layer.params:
        if p.keyword_only and "*" not in parts:
            parts.append("*")
        if p.default is REQUIRED:
            parts.append(p.name)
        else:
            parts.append(f"{p.name}={p.default!r}")
    return f"{layer.dsl_name()}({', '.join(parts)})"
