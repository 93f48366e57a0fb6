"""Blocks: definitions, the names imported from other files (loaded by nndsl.check.loading),
calls, and each use checked with its arguments bound and its input matched against the
block's pattern ``[N, C, H, W]``."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Protocol

from nndsl import ast, shapes
from nndsl.check import replay
from nndsl.check.binding import Binding
from nndsl.check.blocksource import lower
from nndsl.check.common import BUILTIN_VALUES, Abort, close_matches, producer_label
from nndsl.check.context import Context
from nndsl.check.functions import RESERVED_NAMES
from nndsl.check.loading import LoadedFile, Refusal, Resolved
from nndsl.check.values import BlockDef, BlockFn, ParamFn, Scope, Tensor, is_fn, is_sequence
from nndsl.diagnostics import Diagnostic, Label, Severity, Span
from nndsl.ir import BlockNode, Graph, SubNetwork
from nndsl.layers import lookup
from nndsl.layers.base import materialize
from nndsl.reading import printable
from nndsl.source import Source


class Statements(Protocol):
    """What blocks ask of the statements checker of their file (nndsl.check.flow.Flow)."""

    def expression(self, expr: ast.Expr, symbols: bool) -> Any: ...

    def tensor(self, value: Any, expr: Any) -> Tensor: ...

    def body_single(self, body: ast.Body, scope: Scope, x: Tensor) -> tuple[Tensor]: ...

    def check_imported(self, file: LoadedFile) -> Context: ...


class Blocks:
    """Blocks of one file: definitions, imports of other files' blocks, calls, and uses."""

    def __init__(self, ctx: Context, binding: Binding, flow: Statements):
        self.ctx = ctx
        self.binding = binding
        self.flow = flow

    def define(self, item: ast.Block) -> None:
        name = item.name.text
        if name in self.ctx.blocks:
            first = self.ctx.block_spans.get(name)
            self.ctx.error(
                "E109",
                f"block '{name}' is defined twice",
                item.name.span,
                "redefined here",
                (Label(first, "first defined here"),) if first else (),
            )
            return
        if lookup(name) is not None or name in RESERVED_NAMES:
            self.ctx.error(
                "E109",
                f"block '{name}' has the name of a built-in layer or function",
                item.name.span,
                "name taken",
                help=f"rename the block, e.g. My{name}",
            )
            return
        if not self._block_params_ok(item):
            self.ctx.broken_names.add(name)  # reported: its uses are not errors again
            self.ctx.used_blocks.add(name)
            return
        self.ctx.blocks[name] = BlockDef(item, self)
        self.ctx.block_spans[name] = item.name.span

    def _block_params_ok(self, item: ast.Block) -> bool:
        ok = True
        seen: dict[str, Span] = {}
        defaulted = None
        for param in item.params:
            pname = param.name.text
            if pname in seen:
                self.ctx.error(
                    "E115",
                    f"parameter '{pname}' of block {item.name.text} is declared twice",
                    param.name.span,
                    "declared again",
                    (Label(seen[pname], "first declared here"),),
                )
                ok = False
            seen[pname] = param.name.span
            if pname in BUILTIN_VALUES:
                self.ctx.error(
                    "E115",
                    f"parameter '{pname}' of block {item.name.text} has the name of a built-in constant",
                    param.name.span,
                    "name taken",
                    help=f"rename the parameter; '{pname}' always means the constant {pname}",
                )
                ok = False
            if isinstance(param, ast.InputDecl):
                for dim in param.dims:
                    if isinstance(dim, ast.NameRef) and dim.name in BUILTIN_VALUES:
                        self.ctx.error(
                            "E112",
                            f"a dimension of an input pattern must be a number or a name, got {dim.name}",
                            dim.span,
                            "not a size",
                            help="name the size, e.g. C",
                        )
                        ok = False
            if isinstance(param, ast.Param):
                if param.default is not None:
                    defaulted = param
                elif defaulted is not None:
                    self.ctx.error(
                        "E115",
                        f"parameter '{pname}' without a default follows one with a default",
                        param.span,
                        "needs a default",
                        (Label(defaulted.span, "has a default"),),
                        help="put parameters without defaults first",
                    )
                    ok = False
        return ok

    def import_from(self, item: ast.Import, resolved: Resolved) -> None:
        """Take the blocks and constants ``item`` names from the file the loader resolved it to."""
        other = self._imported(item, resolved)
        if other is None:
            self.ctx.broken_names.update(name.text for name in item.names)  # their uses are not errors again
            return
        shown = printable(item.path.value)
        for name in item.names:
            if name.text in other.blocks:
                self._adopt(name, other.blocks[name.text])
            elif name.text in other.constants:
                self.ctx.constants[name.text] = other.constants[name.text]
                self.ctx.constant_spans[name.text] = name.span
            else:
                self.ctx.broken_names.add(name.text)
                if name.text in other.broken_constants:
                    continue  # defined there with an error, reported there
                known = list(other.blocks) + list(other.constants)
                close = close_matches(name.text, known, n=1)
                self.ctx.error(
                    "E116",
                    f"'{shown}' defines no block or constant '{name.text}'",
                    name.span,
                    "not found there",
                    help=f"did you mean '{close[0]}'?"
                    if close
                    else (f"it defines {', '.join(known)}" if known else None),
                )

    def _imported(self, item: ast.Import, resolved: Resolved) -> Context | None:
        """The context of an imported file, checked once per run (the loader read and parsed it);
        None (after its error) if it cannot be imported."""
        if isinstance(resolved, Refusal):
            self.ctx.error("E116", resolved.message, item.path.span, resolved.label, help=resolved.help)
            return None
        other = self.ctx.checked.get(resolved.real)
        if other is None:
            for diag in resolved.syntax_errors:  # reported once, where an import first reaches the file
                self.ctx.sink.add(diag)
            other = self.flow.check_imported(resolved)
            self.ctx.checked[resolved.real] = other
        return other

    def _adopt(self, name: ast.Name, block: BlockDef) -> None:
        if name.text in self.ctx.blocks:
            self.ctx.error("E109", f"block '{name.text}' is defined twice", name.span, "imported again")
            return
        self.ctx.blocks[name.text] = block
        self.ctx.block_spans[name.text] = name.span

    def call(self, call: ast.Call, block: BlockDef):
        node = block.node
        params = [p for p in node.params if isinstance(p, ast.Param) or p is not _first_tensor(node)]
        names = [p.name.text for p in params]
        values: dict[str, Any] = {}
        written: dict[str, ast.Arg] = {}
        matched, _, ok = self.binding.match_arguments(
            call, node.name.text, names, block_signature(node), besides=" besides its input"
        )
        failed = not ok
        for pname, arg in matched:
            try:
                values[pname] = self.flow.expression(arg.value, False)
            except Abort:
                failed = True
                continue
            written[pname] = arg
        for p in params:
            if p.name.text not in values and (isinstance(p, ast.InputDecl) or p.default is None):
                self.ctx.error(
                    "E105",
                    f"{node.name.text} is missing the required argument '{p.name.text}'",
                    call.span,
                    f"'{p.name.text}' missing",
                    help=f"signature: {block_signature(node)}",
                )
                failed = True
        if call.selector is not None:
            self.ctx.error("E111", f"block {node.name.text} has one output", call.selector.span, "no outputs to select")
            failed = True
        if failed:
            raise Abort
        sources = None
        if self.ctx.scope is not None and self.ctx.scope.block is not None:
            sources = {}
            for pname, arg in written.items():
                expr = lower(arg.value, self.ctx.scope, self.ctx)
                if expr is not None:
                    sources[pname] = expr
        return BlockFn(block, values, call, call.span, sources)

    def instantiate(self, fn: BlockFn, x: Tensor) -> Tensor:
        block = fn.block
        node = block.node
        name = node.name.text
        if any(b is block.node for b, *_ in self.ctx.state.active):
            self.ctx.error(
                "E115",
                f"block {name} uses itself: a network cannot contain itself",
                fn.span,
                "recursive use",
            )
            raise Abort
        if x.type is None:
            return self.ctx.poisoned(fn.span)
        # diagnostics in the body name the use in the model: the outermost one being checked
        self.ctx.instantiating.append((self.ctx.text(fn.call.span), fn.call.span, self.ctx.source))
        self.ctx.state.active.append((block.node, fn.span))
        try:
            return block.checker.instantiate_body(fn, x, self.ctx)
        finally:
            self.ctx.state.active.pop()
            self.ctx.instantiating.pop()

    def instantiate_body(self, fn: BlockFn, x: Tensor, caller: Context) -> Tensor:
        """The use ``fn`` of a block of this file, in the model ``caller`` is checking."""
        if caller is not self.ctx:
            self.ctx.share(caller)  # a model of another file: its per-model state
        call_source = caller.source
        node = fn.block.node
        first = _first_tensor(node)
        names: set[str] = set()  # the block's parameters and input-pattern sizes
        scope = Scope(block=names)
        saved = self.ctx.scope
        self.ctx.scope = scope
        try:
            dims: dict[str, Any] = {}
            defaults: dict[str, Any] = {}
            if first is not None:
                x = self._match(first, x, dims, fn, call_source)
                scope.values[first.name.text] = x
                scope.spans[first.name.text] = Span(0, 0)
                scope.used.add(first.name.text)
            for p in node.params:
                if p is first:
                    continue
                pname = p.name.text
                if isinstance(p, ast.Param) and p.default is not None:
                    defaults[pname] = self.flow.expression(p.default, False)
                value = fn.args[pname] if pname in fn.args else defaults[pname]
                if isinstance(p, ast.InputDecl):
                    value = self.flow.tensor(value, fn.call)
                    if value.type is None:  # its error is reported where it was computed
                        self.ctx.state.poisoned = True
                        raise Abort
                    value = self._match(p, value, dims, fn, call_source)
                elif isinstance(value, Tensor) or (is_sequence(value) and any(isinstance(v, Tensor) for v in value)):
                    where = p.default.span if pname not in fn.args else fn.call.span
                    self.ctx.error(
                        "E114",
                        f"parameter '{pname}' of {node.name.text} takes a constant or a sub-network, got a tensor",
                        where,
                        "a tensor",
                        help=f"declare it as a tensor input of the block: {pname}: [N, ...]",
                    )
                    raise Abort
                elif is_fn(value):
                    value = ParamFn(pname, value, fn.span)
                scope.values[pname] = value
                scope.spans[pname] = Span(0, 0)
                scope.used.add(pname)
                names.add(pname)
            self._sizes_match_parameters(node, dims, scope, fn, call_source)
            for dim_name, value in dims.items():
                if dim_name not in scope.values:
                    scope.values[dim_name] = value
                    scope.spans[dim_name] = Span(0, 0)
                    scope.used.add(dim_name)
                    names.add(dim_name)
            # the values the inputs hold on entry: the body may bind their names again (x = x + ...)
            inputs = [scope.values[p.name.text] for p in node.params if isinstance(p, ast.InputDecl)] or [x]
            nodes, y, locals_, constants = self._body(node, scope, x, inputs)
        finally:
            self.ctx.scope = saved
        if y.type is None:
            return self.ctx.poisoned(fn.span)
        for t in inputs:
            self.ctx.state.used.add(t.id)
        args = {}
        for p in node.params:
            if isinstance(p, ast.Param):
                value = scope.values[p.name.text]
                args[p.name.text] = SubNetwork(value.name) if isinstance(value, ParamFn) else value
        caller = call_source
        out = self.ctx.state.new(y.type, fn.call.span, "output", caller)
        self.ctx.state.nodes.append(
            BlockNode(
                node.name.text,
                MappingProxyType(args),
                MappingProxyType({k: v for k, v in dims.items() if k in names}),
                tuple(t.id for t in inputs),
                out.id,
                (*(t.type for t in inputs), y.type),
                Graph(tuple(t.id for t in inputs), tuple(nodes), (y.id,)),
                fn.call.span,
                caller.line_col(fn.call.span.start)[0],
                " ".join(caller.text[fn.call.span.start : fn.call.span.end].split()),
                self.ctx.source.name,
                self.ctx.source.line_col(node.span.start)[0],
                tuple(p.name.text for p in node.params if isinstance(p, ast.InputDecl)) or ("x",),
                MappingProxyType({k: (None if is_fn(v) else v) for k, v in defaults.items()}),
                MappingProxyType(fn.sources) if fn.sources is not None else None,
                MappingProxyType(locals_),
                MappingProxyType(constants),
                id=self.ctx.state.node_id(),
            )
        )
        return out

    def _body(self, node: ast.Block, scope: Scope, x: Tensor, inputs: list[Tensor]) -> tuple[list, Tensor, dict, dict]:
        """The body checked for one use: its nodes, its output, the constants it computes (as
        expressions and as values). A use equal to an earlier one copies it (check.replay)."""
        ctx = self.ctx
        state = ctx.state
        params = {name: value for name, value in scope.values.items() if not isinstance(value, Tensor)}
        memo = replay.key(node, params, inputs, state, ctx.bindings)
        kept = state.bodies.get(memo) if memo is not None else None
        if kept is not None:
            copied = replay.replay(kept, state, inputs)
            if copied is not None:
                return copied[0], copied[1], dict(kept.locals), dict(kept.exprs)
        counts = (len(ctx.sink.items), len(ctx.bindings), len(ctx.used_names))
        before = replay.mark(state, *counts) if memo is not None else None
        nodes: list = []
        state.stack.append(nodes)
        try:
            (y,) = self.flow.body_single(node.body, scope, x)
        finally:
            state.stack.pop()
        locals_ = dict(scope.locals)
        constants = {k: scope.values[k] for k in scope.exprs}
        if before is not None and kept is None:
            counts = (len(ctx.sink.items), len(ctx.bindings), len(ctx.used_names))
            body = replay.record(before, state, *counts, nodes, y, inputs, locals_, constants)
            if body is not None:
                state.bodies[memo] = body
        return nodes, y, locals_, constants

    def _sizes_match_parameters(self, node: ast.Block, dims: dict, scope: Scope, fn: BlockFn, call_source) -> None:
        """A size of an input pattern named as a parameter (``x: [N, d]`` with ``d``) must be
        the parameter's value in each use: E201 at the use, as for a size the pattern writes."""
        for decl in node.params:
            if not isinstance(decl, ast.InputDecl):
                continue
            for expr, actual in zip(decl.dims, scope.values[decl.name.text].type.shape.dims):
                if not isinstance(expr, ast.NameRef) or expr.name not in dims or expr.name == decl.name.text:
                    continue
                want = scope.values.get(expr.name)
                if not isinstance(want, (int, shapes.Poly)) or isinstance(want, bool):
                    continue
                if shapes.known_equal(actual, want) is False:
                    shown = scope.values[decl.name.text]
                    pattern = self._pattern(decl)
                    self._use_error(
                        "E201",
                        f"{node.name.text} expects {expr.name} = {want} in its input {pattern} (its parameter "
                        f"{expr.name}), got {shown.type.shape}",
                        fn,
                        call_source,
                        shown,
                        decl,
                    )

    def _pattern(self, decl: ast.InputDecl) -> str:
        """An input pattern as the block writes it: ``[N, C, H, W]``."""
        return "[" + ", ".join(self.ctx.source.text[e.span.start : e.span.end] for e in decl.dims) + "]"

    def _match(self, decl: ast.InputDecl, x: Tensor, dims: dict, fn: BlockFn, call_source: Source) -> Tensor:
        """Match the input against the block's pattern ``[N, C, H, W]``, binding its names."""
        t = x.type
        name = fn.block.node.name.text
        pattern = self._pattern(decl)
        if decl.dtype is not None:
            want = shapes.DTYPES.get(decl.dtype.text)
            if want is None:
                self.ctx.error("E112", f"unknown dtype '{decl.dtype.text}'", decl.dtype.span, "not a dtype")
                raise Abort
            if t.dtype != want:
                self._use_error(
                    "E204", f"{name} expects {want}{pattern} for {decl.name.text}, got {t}", fn, call_source, x, decl
                )
        if t.shape.rest:
            known = materialize(t, len(decl.dims), tuple(_dim_hint(e) for e in decl.dims), self.ctx)
            t = known
            x = x._replace(type=t)
        if t.shape.rank != len(decl.dims):
            self._use_error(
                "E202",
                f"{name} expects a {len(decl.dims)}-D input {pattern}, got {t.shape.rank}-D input {t.shape}",
                fn,
                call_source,
                x,
                decl,
            )
        for expr, actual in zip(decl.dims, t.shape.dims):
            if isinstance(expr, ast.NameRef) and expr.name not in dims and expr.name not in self.ctx.constants:
                if expr.name not in BUILTIN_VALUES:
                    dims[expr.name] = actual
                    continue
            saved = self.ctx.scope
            scope = Scope(saved)
            scope.values.update(dims)
            self.ctx.scope = scope
            try:
                want = self.flow.expression(expr, True)
            finally:
                self.ctx.scope = saved
            same = shapes.known_equal(actual, want) if isinstance(want, (int, shapes.Poly)) else False
            if same is False:
                self._use_error(
                    "E201",
                    f"{name} expects {self.ctx.source.text[expr.span.start : expr.span.end]} = {want} in its input"
                    f" {pattern}, got {t.shape}",
                    fn,
                    call_source,
                    x,
                    decl,
                )
        return x

    def _use_error(self, code, message, fn: BlockFn, call_source: Source, x: Tensor, decl: ast.InputDecl) -> None:
        """An error at the use of a block (in the caller's file), pointing at its declared pattern."""
        secondary = []
        if x.source is call_source and x.type is not None:
            secondary.append(producer_label(x.span, x.role, x.type))
        notes = ()
        if self.ctx.source is call_source:
            secondary.append(Label(decl.span, "input pattern declared here"))
        else:
            line, col = self.ctx.source.line_col(decl.span.start)
            notes = (f"{fn.block.node.name.text} declares its input at {self.ctx.source.name}:{line}:{col}",)
        key = (call_source.name, code, fn.call.span.start)
        if key not in self.ctx.reported:
            self.ctx.reported.add(key)
            self.ctx.sink.add(
                _diagnostic(code, message, call_source, fn.call.span, "input does not match", secondary, notes)
            )
        raise Abort


def _diagnostic(code, message, source, span, label, secondary, notes):

    return Diagnostic(Severity.ERROR, code, message, source, span, label, tuple(secondary), None, tuple(notes))


def _dim_hint(expr) -> str:
    return expr.name if isinstance(expr, ast.NameRef) else "D"


def _first_tensor(node: ast.Block) -> ast.InputDecl | None:
    for p in node.params:
        if isinstance(p, ast.InputDecl):
            return p
    return None


def block_signature(node: ast.Block) -> str:
    parts = []
    for p in node.params:
        if isinstance(p, ast.InputDecl):
            continue
        parts.append(p.name.text if p.default is None else f"{p.name.text}=...")
    return f"{node.name.text}({', '.join(parts)})"
