"""Statements and data flow: models and blocks as graphs of values, checked shape by shape.

A statement's expression evaluates to a value: a constant, a tensor (a node's output in the
graph being built), or a sub-network, a layer or a composition not yet applied to anything.
``x -> f`` applies a sub-network to a tensor; ``f -> g`` composes two sub-networks. Blocks
are checked once per use, with their parameters bound, inside the graph of the model using
them; layers come from nndsl.check.binding, tensor operations from nndsl.check.functions.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

from nndsl import ast, layout, ops, shapes
from nndsl.check.binding import Binding, unknown_layer_help
from nndsl.check.blocks import Blocks
from nndsl.check.blocksource import lower, shortcut_condition
from nndsl.check.common import (
    BUILTIN_VALUES,
    INFER,
    INT64_MAX,
    ITEMSIZE,
    Abort,
    Bound,
    close_matches,
    model_name_for,
    producer_label,
)
from nndsl.check.context import Context
from nndsl.check.functions import BUILTINS, RESERVED_NAMES, Functions
from nndsl.check.loading import LoadedFile
from nndsl.check.values import (
    MAX_APPLIED,
    MAX_APPLY_DEPTH,
    MAX_LAYERS,
    MAX_REPEAT,
    BlockFn,
    ComposeFn,
    ForFn,
    LayerFn,
    ParamFn,
    PoisonFn,
    RepeatFn,
    ResidualFn,
    Scope,
    Tensor,
    is_fn,
    is_sequence,
    kind_name,
    value_name,
)
from nndsl.diagnostics import Label, Severity, Span
from nndsl.expr import Const, Expr, is_plain, negate
from nndsl.ir import (
    Graph,
    ModelIR,
    OpNode,
    Program,
    ResidualNode,
    SeqNode,
    TiedWeight,
    walk,
    weights,
)
from nndsl.layers import lookup, suggest
from nndsl.layers.base import ArgValueError, ShapeError, WrongType, type_name
from nndsl.operators import REGISTRY as OPERATORS
from nndsl.operators import index as index_ops
from nndsl.shapes import Shape, Sym, TensorType
from nndsl.suggest import did_you_mean
from nndsl.tying import TIEABLE, size, weight_shapes


class Flow:
    """Checks one file: its constants, imports, blocks, models and bare chain, statement by
    statement; its parts check constants and calls (Binding), blocks (Blocks) and built-in
    functions (Functions), all in the file's context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.binding = Binding(ctx, self.expression)
        self.blocks = Blocks(ctx, self.binding, self)
        self.functions = Functions(ctx, self.binding, self)

    def check_imported(self, file: LoadedFile) -> Context:
        """Check a file read by an import, in this run: its constants, imports and blocks."""
        ctx = self.ctx
        checker = Flow(Context(file, ctx.sink, ctx.imports, ctx.checked))
        checker.check_module(library=True)
        return checker.ctx

    # ------------------------------------------------------------ top level

    def check_module(self, bare_input: TensorType | None = None, library: bool = False) -> Program:
        """Check every item of the file; a ``library`` (a file read by an import) needs no model."""
        module = self.ctx.file.module
        self.ctx.broken_constants.update(module.broken_lets)
        bare_chains = [item for item in module.items if isinstance(item, ast.Assign)]
        models = [item for item in module.items if isinstance(item, ast.Model)]
        defines = bare_chains or models or any(isinstance(i, ast.Block) for i in module.items)
        if not library and not defines and not module.partial:  # after a syntax error, a knock-on
            empty = not self.ctx.source.text.strip()
            self.ctx.error(
                "E113",
                "the file is empty" if empty else "the file defines no model",
                Span(0, 0),
                "nothing to check",
                help="write a chain such as `Flatten -> Linear(784, 10)`, "
                "or `model Name(x: [N, 784]) { Linear(784, 10) }`",
            )
        if bare_input is not None and not bare_chains and models:
            self.ctx.diag(
                Severity.WARNING,
                "W304",
                "--input is ignored: it gives the input of a bare chain, and this file has none",
                Span(0, 0),
                "models here declare their own inputs",
            )
        for extra in bare_chains[1:]:
            self.ctx.error(
                "E109",
                "a file holds at most one bare chain",
                extra.span,
                "second bare chain",
                (Label(bare_chains[0].span, "first bare chain"),),
                "wrap each chain in `model Name(x: [...]) { ... }`, or join them with '->'",
            )
        # imports and blocks first: a model may use a block defined further down
        for item, resolved in zip((i for i in module.items if isinstance(i, ast.Import)), self.ctx.file.imports):
            self.blocks.import_from(item, resolved)
        for item in module.items:
            if isinstance(item, ast.Block):
                self.blocks.define(item)
        out: list[ModelIR] = []
        seen: dict[str, Span] = {}
        for item in module.items:
            if isinstance(item, ast.Let):
                self.binding.let(item)
            elif isinstance(item, ast.Model):
                name = item.name.text
                if name in seen:
                    self.ctx.error(
                        "E109",
                        f"model '{name}' is defined twice",
                        item.name.span,
                        "redefined here",
                        (Label(seen[name], "first defined here"),),
                    )
                    continue
                seen[name] = item.name.span
                model = self._model(item)
                if model is not None:
                    out.append(model)
            elif bare_chains and item is bare_chains[0]:
                declared = {m.name.text for m in models}
                model = self._bare_chain(item, bare_input, declared)
                if model is not None:
                    out.append(model)
        # a file of blocks alone is a library: its blocks are used elsewhere; after a work or
        # depth limit stopped a model, the blocks it did not reach are not "never used"
        if (models or bare_chains) and not self.ctx.limited:
            for item in module.items:
                if isinstance(item, ast.Block) and item.name.text not in self.ctx.used_blocks:
                    self.ctx.diag(
                        Severity.WARNING,
                        "W305",
                        f"block '{item.name.text}' is never used, so it is not checked",
                        item.name.span,
                        "never used",
                        help="use it in a model, or move it to a file of blocks that models import",
                    )
        defined = tuple(item.name.text for item in module.items if isinstance(item, ast.Block))
        trainings = ()
        sections = [item for item in module.items if isinstance(item, ast.Train)]
        if sections:
            declared = {m.name.text: m.name.span for m in models}
            # a model left out for a syntax error is declared (a train section names it), not checked
            declared.update((name, module.span) for name in module.broken_models if name not in declared)
            if bare_chains:
                declared[model_name_for(self.ctx.source.name)] = bare_chains[0].span
            from nndsl.check.training import check_trainings  # only files with a train section need it

            trainings = check_trainings(self.ctx, self.binding, sections, out, declared)
        return Program(self.ctx.source, tuple(out), defined, trainings, tuple(self.ctx.imports.files))

    # ------------------------------------------------------------ models

    def _model(self, item: ast.Model) -> ModelIR | None:
        self.ctx.begin_model()
        scope = Scope()
        inputs: list[Tensor] = []
        names: list[str] = []
        ok = True
        for param in item.params:
            if isinstance(param, ast.Param):
                self.ctx.error(
                    "E112",
                    f"model inputs are tensors: declare '{param.name.text}' with its shape",
                    param.span,
                    "no shape",
                    help=f"write {param.name.text}: [N, ...], or use `let` for a constant",
                )
                ok = False
                continue
            x = self.binding.input_type(param)
            if x is not None and param.name.text in BUILTIN_VALUES:
                self.ctx.error(
                    "E109",
                    f"input '{param.name.text}' has the name of a built-in constant",
                    param.name.span,
                    "name taken",
                    help="name the input, e.g. x",
                )
                x = None
            if x is None:  # reported; the body is still checked, without errors that follow from it
                ok = False
                if param.name.text not in scope.values:
                    scope.values[param.name.text] = self.ctx.poisoned(param.span)
                    scope.spans[param.name.text] = param.name.span
                    scope.used.add(param.name.text)
                continue
            if param.name.text in scope.values:
                self.ctx.error(
                    "E109", f"input '{param.name.text}' is declared twice", param.name.span, "declared again"
                )
                ok = False
                continue
            t = self.ctx.state.new(x, param.span, "input", self.ctx.source)
            self.ctx.state.names[t.id] = param.name.text
            scope.values[param.name.text] = t
            scope.spans[param.name.text] = param.name.span
            inputs.append(t)
            names.append(param.name.text)
        if not item.params:
            self.ctx.error(
                "E112",
                f"model '{item.name.text}' declares no input",
                item.name.span,
                "no input",
                help=f"declare it as: model {item.name.text}(x: [N, 784]) {{ ... }}",
            )
            ok = False
        declared = [v for v in scope.values.values() if isinstance(v, Tensor)]
        current = declared[0] if len(declared) == 1 else None
        return self._finish(item.name.text, names, inputs, scope, item.body, current, item.span, ok, warn_inputs=True)

    def _bare_chain(self, item: ast.Assign, bare_input: TensorType | None, declared: set[str]) -> ModelIR | None:
        self.ctx.begin_model()
        if bare_input is None:
            x = TensorType(Shape((), rest=True))
        else:
            x = bare_input
            for d in bare_input.shape.dims:
                if isinstance(d, shapes.Poly):
                    self.ctx.used_names.update(a.name for a in d.atoms() if isinstance(a, Sym))
        name = model_name_for(self.ctx.source.name)
        while name in declared:  # net.nn with `model Net` and a bare chain: keep both names distinct
            name += "Chain"
        t = self.ctx.state.new(x, item.span, "input", self.ctx.source)
        body = ast.Body((item,), item.span)
        return self._finish(name, ["x"], [t], Scope(), body, t, item.span, True, warn_inputs=False)

    def _finish(self, name, names, inputs, scope, body, current, span, ok, warn_inputs) -> ModelIR:
        nodes: list = []
        outputs: tuple = ()
        self.ctx.state.modules, self.ctx.state.ties = {}, []
        self.ctx.state.stack.append(nodes)
        try:
            outputs = self._body(body, scope, current)
        except Abort:
            ok = False
        finally:
            self.ctx.state.stack.pop()
        modules = self.ctx.state.modules
        tied = {modules[id(fn)][0] for t in self.ctx.state.ties for fn in (t.layer, t.source) if id(fn) in modules}
        nodes, ok = self._unshare(nodes, ok, tied)
        ties = self._resolve_ties()
        ok = ok and ties is not None
        if self.ctx.state.poisoned:
            ok = False
        if ok and warn_inputs:
            for input_name, t in zip(names, inputs):
                if t.id not in self.ctx.state.used and t.id not in {o.id for o in outputs}:
                    self.ctx.diag(
                        Severity.WARNING,
                        "W305",
                        f"input '{input_name}' is never used",
                        scope.spans[input_name],
                        "never used",
                        help="remove it, or use it in the body",
                    )
        types = self.ctx.state.types
        if self.ctx.bindings:
            types = {k: v._replace(shape=v.shape.substitute(self.ctx.bindings)) for k, v in types.items()}
            nodes = [_substituted(node, self.ctx.bindings) for node in nodes]
        outputs = tuple(o for o in outputs if o.type is not None)  # an output lost to an error has no type
        graph = Graph(tuple(t.id for t in inputs), tuple(nodes), tuple(o.id for o in outputs))
        output_names = tuple(value_name(scope, o) for o in outputs)
        return ModelIR(
            name,
            tuple(names),
            tuple(types[t.id] for t in inputs),
            graph,
            MappingProxyType(types),
            span,
            complete=ok and bool(outputs),
            output_names=output_names,
            names=MappingProxyType(dict(self.ctx.state.names)),
            ties=ties or (),
        )

    def _unshare(self, nodes: list, ok: bool, tied: set[int]) -> tuple[list, bool]:
        """The uses of named modules applied only once spliced back into the graph, as if the
        module had not been named (one module keeps the spec's name for its attribute), but for
        the layers a tie names (``tied``, their groups: they keep the spec's names); a shared
        module used inside another shared module is E122."""
        shared = [n for n in walk(Graph((), tuple(nodes), ())) if n.tag == "seq" and n.kind == "shared"]
        if not shared:
            return nodes, ok
        again = {n.group for n in shared if n.again} | tied

        def splice(nodes) -> list:
            out: list = []
            for node in nodes:
                node = node._make(v._replace(nodes=tuple(splice(v.nodes))) if isinstance(v, Graph) else v for v in node)
                if node.tag == "seq" and node.kind == "shared" and node.group not in again:
                    out.extend(_named(node.body.nodes, node.name))
                else:
                    out.append(node)
            return out

        nodes = splice(nodes)
        for node in walk(Graph((), tuple(nodes), ())):
            if node.tag == "seq" and node.kind == "shared" and not node.again:
                inner = next((n for n in walk(node.body) if n.tag == "seq" and n.kind == "shared"), None)
                if inner is not None:
                    self.ctx.error(
                        "E122",
                        f"'{inner.name}' is shared by several uses and applied inside '{node.name}', itself shared: "
                        "a shared module inside another shared module is not supported yet",
                        inner.span,
                        f"'{inner.name}' applied here",
                        (Label(node.span, f"'{node.name}' applied here"),),
                        help=f"apply '{inner.name}' outside '{node.name}', or give one of them its own weights",
                    )
                    ok = False
        return nodes, ok

    # ------------------------------------------------------------ weight tying

    def _tie(self, stmt: ast.Tie, scope: Scope) -> None:
        """``lm_head.weight = wte.weight``: both named layers of this body, defined before the
        statement; the shapes are compared when the model is finished (an inferred size is known
        once the layer is applied, before or after the statement)."""
        form = "tie a named layer's weight to another's: `lm_head.weight = wte.weight`"
        value = stmt.value
        if not isinstance(stmt.layer, ast.NameRef):
            self.ctx.error(
                "E123", "the target of a tie is a named layer's weight", stmt.layer.span, "not a name", help=form
            )
            raise Abort
        if not (isinstance(value, ast.Call) and not value.args and value.selector is not None):
            self.ctx.error(
                "E123", "a weight is tied to a named layer's weight", value.span, "not a layer's weight", help=form
            )
            raise Abort
        sides = []
        for name, span in ((stmt.layer.name, stmt.layer.span), (value.name.text, value.name.span)):
            found, fn = self._lookup(name) if scope is self.ctx.scope else self._found_in(scope, name)
            if not found:
                self._undefined(name, span)
            if not isinstance(fn, LayerFn):
                self.ctx.error(
                    "E123",
                    f"'{name}' is {kind_name(fn)}, not a layer: a tie names the layers holding the weights",
                    span,
                    "not a layer",
                    help=form,
                )
                raise Abort
            sides.append(fn)
        # the model's ties (those of the blocks it uses, imported ones too) are resolved when it is
        # finished, each reported in its own file and use of its block
        tie = _Tie(stmt, sides[0], stmt.layer.name, sides[1], value.name.text, self.ctx, tuple(self.ctx.instantiating))
        self.ctx.state.ties.append(tie)

    def _found_in(self, scope: Scope, name: str):
        saved, self.ctx.scope = self.ctx.scope, scope
        try:
            return self._lookup(name)
        finally:
            self.ctx.scope = saved

    def _resolve_ties(self) -> tuple[TiedWeight, ...] | None:
        """The model's ties, each checked (both layers applied, holding the weights, of one shape
        and dtype; a weight tied once, and not both a tie's target and another's source); None
        after an error (E123, at the statement)."""
        out: list[TiedWeight] = []
        targets: dict[tuple[int, str], Span] = {}
        ok = True
        for tie in self.ctx.state.ties:
            stmt = tie.stmt
            found = []
            for fn, name, weight, span in (
                (tie.layer, tie.layer_name, stmt.weight.text, stmt.layer.span),
                (tie.source, tie.source_name, stmt.value.selector.text, stmt.value.span),
            ):
                _, built = self.ctx.state.modules.get(id(fn), (0, ()))
                layer = next((n for n in built if n.tag == "layer"), None)
                problem = None
                shapes_of = None if layer is None else weight_shapes(layer.layer, layer.args)
                if layer is None:
                    problem = f"'{name}' is never applied, so it holds no weights to tie"
                elif shapes_of is None:
                    kinds = ", ".join(TIEABLE)
                    problem = f"tying a {layer.layer.dsl_name()}'s weights is not supported (only {kinds})"
                elif weight not in shapes_of:
                    held = ", ".join(shapes_of) or "no weights"
                    problem = f"'{name}' ({layer.text}) has no '{weight}': it holds {held}"
                if problem is not None:
                    _tie_error(tie, problem, span, "no such weight", (Label(fn.span, f"'{name}' defined here"),))
                    ok = False
                    break
                found.append((layer, name, weight, shapes_of[weight], fn))
            if len(found) < 2:
                continue
            (a, a_name, a_weight, a_shape, a_fn), (b, b_name, b_weight, b_shape, b_fn) = found
            labels = (
                Label(a_fn.span, f"{a_name}.{a_weight} is {list(a_shape)}"),
                Label(b_fn.span, f"{b_name}.{b_weight} is {list(b_shape)}"),
            )
            problem = None
            if a.id == b.id and a_weight == b_weight:
                problem = f"this ties {a_name}.{a_weight} to itself"
            elif a_shape != b_shape:
                problem = f"{a_name}.{a_weight} is {list(a_shape)} and {b_name}.{b_weight} is {list(b_shape)}: a tied weight has one shape"
            elif a.output.dtype != b.output.dtype:
                problem = f"{a_name} holds {a.output.dtype} weights and {b_name} {b.output.dtype}: a tied weight has one dtype"
            elif (a.id, a_weight) in targets:
                problem = f"{a_name}.{a_weight} is tied twice"
            elif (b.id, b_weight) in targets or any((t.layer, t.weight) == (b.id, b_weight) for t in out):
                problem = f"{b_name}.{b_weight} is itself tied to another weight: tie both to that one"
            elif any((t.source, t.source_weight) == (a.id, a_weight) for t in out):
                problem = (
                    f"{a_name}.{a_weight} already gives its weight to another tie: tie that one to {b_name}.{b_weight}"
                )
            if problem is not None:
                _tie_error(tie, problem, stmt.span, "cannot tie", labels, help="tie weights of equal shapes, each once")
                ok = False
                continue
            targets[(a.id, a_weight)] = stmt.span
            out.append(
                TiedWeight(
                    a.id,
                    a_weight,
                    b.id,
                    b_weight,
                    size(a_shape),
                    stmt.span,
                    tie.ctx.line(stmt.span),
                    tie.ctx.text(stmt.span),
                )
            )
        return tuple(out) if ok else None

    # ------------------------------------------------------------ statements

    def _body(self, body: ast.Body, scope: Scope, current: Tensor | None) -> tuple[Tensor, ...]:
        """Run the statements; the outputs are the returned values, else the last statement's."""
        outputs: tuple[Tensor, ...] | None = None
        pending: list[tuple[Tensor, Span, str | None]] = []  # values that must be used
        statements = body.statements
        for stmt in statements:
            for target in getattr(stmt, "targets", ()):
                scope.later.setdefault(target.text, target.span)
        for index, stmt in enumerate(statements):
            if isinstance(stmt, ast.Return):
                if index != len(statements) - 1:
                    after = statements[index + 1]
                    self.ctx.error("E117", "statements after `return` are never run", after.span, "unreachable")
                try:
                    outputs = tuple(self.tensor(self.value(v, scope), v) for v in stmt.values)
                except Abort:
                    outputs = (self.ctx.poisoned(stmt.span),)
                break
            try:
                value = self._statement(stmt, scope, current)
                self._defined(scope, stmt)
            except Abort:
                self._defined(scope, stmt)
                value = self.ctx.poisoned(stmt.span)
                for target in stmt.targets:
                    scope.values.setdefault(target.text, value)
                    scope.spans.setdefault(target.text, target.span)
            if isinstance(value, Tensor):
                if not self.functions.makes_parameter(stmt):  # a learned tensor is no step of the flow
                    current = value
                where = stmt.targets[0].span if stmt.targets else stmt.span
                pending.append((value, where, stmt.targets[0].text if stmt.targets else None))
            elif len(stmt.targets) > 1:  # several values: none of them is the one to continue from
                current = None
        if outputs is None:
            if current is None and self.ctx.state.poisoned:
                raise Abort
            if current is None:
                self.ctx.error(
                    "E117",
                    "this body computes no tensor to return",
                    body.span if body.statements else Span(body.span.start, body.span.start),
                    "no output",
                    help="end it with a chain, or `return` the outputs",
                )
                raise Abort
            outputs = (current,)
        self._warn_unused(pending, outputs, scope)
        return outputs

    @staticmethod
    def _defined(scope: Scope, stmt: ast.Assign) -> None:
        """After a statement: its names are defined, no longer ahead."""
        for target in stmt.targets:
            if scope.later.get(target.text) is target.span:
                del scope.later[target.text]

    def _warn_unused(self, pending, outputs, scope: Scope) -> None:
        if self.ctx.state.poisoned:
            return
        out_ids = {o.id for o in outputs}
        for t, span, name in pending:
            if t.id in self.ctx.state.used or t.id in out_ids or t.type is None:
                continue
            if name is not None and name not in scope.values:
                continue
            what = f"'{name}' is never used" if name else "this value is never used"
            self.ctx.diag(
                Severity.WARNING,
                "W305",
                what,
                span,
                "never used",
                help="use it, return it, or remove the statement",
            )
        for name, value in scope.values.items():  # sub-networks and constants defined but never used
            if name not in scope.used and not isinstance(value, Tensor) and name in scope.spans and scope.spans[name]:
                if is_sequence(value) and any(isinstance(v, Tensor) for v in value):
                    continue
                self.ctx.diag(Severity.WARNING, "W305", f"'{name}' is never used", scope.spans[name], "never used")

    def _statement(self, stmt: ast.Assign, scope: Scope, current: Tensor | None):
        if isinstance(stmt, ast.Tie):
            return self._tie(stmt, scope)
        self.functions.statement = stmt  # Parameter(...) is the value of a named statement only
        mark = len(self.ctx.state.types)  # the values this statement computes are numbered from here
        value = self.value(stmt.value, scope)
        if not stmt.targets:
            if is_fn(value):
                if current is None:
                    self.ctx.error(
                        "E114",
                        "this chain has no input: there is no single value before it",
                        stmt.value.span,
                        "no input",
                        help="start it with the value it applies to: `x -> ...`",
                    )
                    raise Abort
                value = self.apply(value, current, stmt.value.span)
            if not isinstance(value, Tensor):
                self.ctx.kind_error(
                    f"a statement must compute a tensor, got {kind_name(value)}",
                    stmt.value.span,
                    "computes no tensor",
                    help="name it (`name = ...`) to use it later" if is_fn(value) else None,
                )
            return value
        if len(stmt.targets) > 1 and isinstance(value, Tensor):  # a layer call's parts, from one run
            items = self._unpack(stmt, value, mark)
            for target, item in zip(stmt.targets, items):
                self._define(scope, target, item)
            return items
        if len(stmt.targets) > 1:
            items = value if is_sequence(value) else None
            if items is None or len(items) != len(stmt.targets):
                got = f"{len(items)} values" if items is not None else kind_name(value)
                self.ctx.error(
                    "E117",
                    f"{len(stmt.targets)} names, but the right-hand side gives {got}",
                    stmt.span,
                    "count differs",
                )
                raise Abort
            for target, item in zip(stmt.targets, items):
                self._define(scope, target, item)
            return items
        self._define(scope, stmt.targets[0], value)
        if not isinstance(value, Tensor) and not is_fn(value):
            scope.exprs[stmt.targets[0].text] = stmt.value
        return value

    def _unpack(self, stmt: ast.Assign, value: Tensor, mark: int) -> tuple[Tensor, ...]:
        """``out, h_n, c_n = encoder(x)``: the layer call that computed ``value`` (in this
        statement: value numbers from ``mark``) gives each of its ``parts`` to a name, all from
        one run of the module (torch's ``out, (h_n, c_n)``)."""
        names = len(stmt.targets)
        if value.type is None:
            return (value,) * names
        node, shared = self._last_layer(value) if value.id >= mark else (None, None)
        if node is None or not node.layer.parts:
            what = (
                f"{node.layer.dsl_name()} gives one tensor"
                if node is not None
                else "the right-hand side gives a tensor"
            )
            self.ctx.error(
                "E117",
                f"{names} names, but {what}",
                stmt.span,
                "count differs",
                help="a recurrent layer's or MultiheadAttention's call unpacks into its parts; "
                "a tensor splits with chunk(x, n, dim)",
            )
            raise Abort
        layer, parts = node.layer, node.layer.parts
        if node.selector is not None:
            applied = stmt.value.steps[-1] if isinstance(stmt.value, ast.Flow) else stmt.value
            selector = getattr(applied, "selector", None)
            self.ctx.error(
                "E111",
                f"'.{node.selector}' takes one part of {layer.dsl_name()}'s result, and {names} names unpack it",
                selector.span if selector is not None else stmt.value.span,
                "one part selected",
                help=f"remove '.{node.selector}' to take every part ({', '.join(parts)}), or keep it with one name",
            )
            raise Abort
        if names != len(parts):
            self.ctx.error(
                "E117",
                f"{layer.dsl_name()}'s result has {len(parts)} parts ({', '.join(parts)}), but {names} names unpack it",
                Span(stmt.targets[0].span.start, stmt.targets[-1].span.end),
                f"{names} names",
                help=f"write `{', '.join(parts)} = ...`, or take one part with a selector (`.{parts[1]}`)",
            )
            raise Abort
        flags = {p.name: p.default for p in layer.forward_params} | dict(node.forward)
        values = [value]
        for part in parts[1:]:
            try:
                t = layer.select_with(node.args, node.input, node.output, part, dict(node.extra_types), flags)
            except ShapeError as exc:
                applied = stmt.value.steps[-1] if isinstance(stmt.value, ast.Flow) else stmt.value
                given = [a.span for a in getattr(applied, "args", ()) if a.keyword and a.keyword.text == exc.param]
                self.ctx.error(exc.code, exc.message, given[0] if given else stmt.value.span, exc.label, help=exc.help)
                raise Abort from None
            t = t._replace(strides=layer.out_strides(node.args, node.input, t, part))
            values.append(self.ctx.state.new(t, stmt.value.span, "output", self.ctx.source))
        unpacked = node._replace(unpacked=tuple(v.id for v in values))
        nodes = self.ctx.state.nodes
        nodes[-1] = unpacked if shared is None else shared._replace(body=shared.body._replace(nodes=(unpacked,)))
        return tuple(values)

    def _last_layer(self, value: Tensor):
        """The layer call the last node computed ``value`` with, and the shared module's use that
        holds it (None when it is no module's use); (None, None) when it is no layer's output."""
        nodes = self.ctx.state.nodes
        last = nodes[-1] if nodes else None
        if last is not None and last.tag == "layer" and last.dst == value.id:
            return last, None
        if (
            last is not None
            and last.tag == "seq"
            and last.kind == "shared"
            and len(last.body.nodes) == 1
            and last.body.nodes[0].tag == "layer"
            and last.body.nodes[0].dst == value.id
        ):
            return last.body.nodes[0], last
        return None, None

    def _define(self, scope: Scope, target: ast.Name, value) -> None:
        name = target.text
        if lookup(name) is not None or name in self.ctx.blocks or name in RESERVED_NAMES:
            self.ctx.error(
                "E109",
                f"'{name}' is the name of a layer, block or built-in function",
                target.span,
                "name taken",
                help="choose another name for the value",
            )
            raise Abort
        if name in self.ctx.constants:
            self.ctx.error(
                "E109",
                f"'{name}' is already a constant",
                target.span,
                "redefined here",
                (Label(self.ctx.constant_spans[name], "defined here"),) if self.ctx.source is not None else (),
            )
            raise Abort
        old = scope.find(name)
        if old is not None and not (isinstance(old.values[name], Tensor) and isinstance(value, Tensor)):
            # a tensor may be renamed (`x = x -> ReLU`); a parameter, constant or sub-network keeps
            # one meaning, so that a block's emitted class can compute it the way the spec does
            what = "a parameter of the block" if old.spans.get(name) == Span(0, 0) else "already defined"
            first = old.spans.get(name)
            self.ctx.error(
                "E109",
                f"'{name}' is {what}",
                target.span,
                "redefined here",
                (Label(first, "defined here"),) if first and first != Span(0, 0) else (),
                help="give the new value its own name",
            )
            raise Abort
        scope.values[name] = value
        scope.spans[name] = target.span
        if isinstance(value, Tensor):
            self.ctx.state.names.setdefault(value.id, name)
        elif is_fn(value) and not isinstance(value, (ParamFn, PoisonFn)):
            self.ctx.state.named.setdefault(id(value), (value, name))

    # ------------------------------------------------------------ expressions

    def value(self, expr: ast.Expr, scope: Scope):
        """Evaluate any expression in ``scope``: constants, tensors, sub-networks."""
        saved = self.ctx.scope
        self.ctx.scope = scope
        try:
            return self.expression(expr, False)
        except RecursionError:
            self.ctx.error("E110", "expression nested too deeply", expr.span, "too deep")
            raise Abort from None
        finally:
            self.ctx.scope = saved

    def expression(self, expr, symbols: bool):
        if isinstance(expr, ast.Flow):
            return self._flow(expr)
        if isinstance(expr, ast.Call):
            return self._call(expr)
        if isinstance(expr, ast.Apply):
            return self._apply_call(self.expression(expr.fn, False), expr.args, expr.selector, expr.span)
        if isinstance(expr, ast.BinOp):
            left, right = self.expression(expr.left, symbols), self.expression(expr.right, symbols)
            if isinstance(left, Tensor) or isinstance(right, Tensor) or is_fn(left) or is_fn(right):
                return self.tensor_binop(expr, left, right)
            return self.binding.arithmetic(expr, left, right)
        if isinstance(expr, ast.Compare):
            return self._compare(expr)
        if isinstance(expr, ast.BoolOp):
            left = self.constant(expr.left)
            if expr.op == "and":
                return self.constant(expr.right) if left else left
            return left if left else self.constant(expr.right)
        if isinstance(expr, ast.Not):
            return not self.constant(expr.operand)
        if isinstance(expr, ast.Cond):
            test = self.constant(expr.test)
            chosen = self.expression(expr.then if test else expr.otherwise, symbols)
            return self._optional_residual(expr, test, chosen)
        if isinstance(expr, ast.Index):
            return self._index(expr)
        if isinstance(expr, ast.Subscript):
            return self._subscript(expr)
        if isinstance(expr, ast.Select):
            base = expr.base
            if isinstance(base, ast.Call) and base.name.text in ("nn", "torch") and base.selector and not base.args:
                path = f"{base.name.text}.{base.selector.text}.{expr.name.text}"  # torch.nn.ReLU
                self._module_path(path, Span(base.span.start, expr.name.span.end))
            self.ctx.error(
                "E111", f"'.{expr.name.text}' selects an output of a layer call only", expr.name.span, "not a call"
            )
            raise Abort
        if isinstance(expr, ast.ForLoop):
            return self._for(expr)
        if isinstance(expr, ast.IntLit):
            if expr.value is None:
                self.ctx.error("E110", "integer literal too long", expr.span, "too large")
                raise Abort
            return self.binding.bounded(expr.value, expr.span)
        if isinstance(expr, (ast.FloatLit, ast.StrLit)):
            return expr.value
        if isinstance(expr, ast.NameRef):
            return self._name(expr, symbols)
        if isinstance(expr, ast.TupleExpr):
            return tuple(self.expression(item, symbols) for item in expr.items)
        if isinstance(expr, ast.Neg):
            value = self.expression(expr.operand, symbols)
            if isinstance(value, shapes.Poly):
                return shapes.neg(value)
            if isinstance(value, Tensor):  # -x of a tensor: the operator neg
                return self.functions.negated(expr, value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.ctx.error("E110", f"cannot negate {kind_name(value)}", expr.span, "not a number")
                raise Abort
            return -value
        if isinstance(expr, ast.Invert):
            value = self.expression(expr.operand, symbols)
            if isinstance(value, Tensor):  # ~mask: the operator bitwise_not
                return self.functions.negated(expr, value, "bitwise_not")
            if isinstance(value, bool) or not isinstance(value, int):
                self.ctx.error(
                    "E110", f"'~' inverts an integer or a tensor, not {kind_name(value)}", expr.span, "not an integer"
                )
                raise Abort
            return ~value
        raise AssertionError(f"unknown expression {expr!r}")

    def _optional_residual(self, expr: ast.Cond, test: bool, chosen):
        """``Residual(f) if cond else f`` in a block becomes one residual that the uses where
        ``cond`` is false skip, so that all uses share one class (as torchvision's blocks do)."""
        if self.ctx.scope is None or self.ctx.scope.block is None:
            return chosen
        for residual, plain, holds in ((expr.then, expr.otherwise, test), (expr.otherwise, expr.then, not test)):
            if (
                isinstance(residual, ast.Call)
                and residual.name.text == "Residual"
                and len(residual.args) == 1
                and residual.args[0].keyword is None
                and isinstance(residual.args[0].value, ast.NameRef)
                and isinstance(plain, ast.NameRef)
                and plain.name == residual.args[0].value.name
            ):
                condition = lower(expr.test, self.ctx.scope, self.ctx)
                if condition is None:
                    return chosen
                if residual is expr.otherwise:
                    condition = negate(condition)
                if holds and isinstance(chosen, ResidualFn):
                    return chosen._replace(residual_if=condition)
                if not holds and is_fn(chosen) and not isinstance(chosen, PoisonFn):
                    return ResidualFn(chosen, None, residual.span, None, None, condition, active=False)
                return chosen
        return chosen

    def constant(self, expr):
        value = self.expression(expr, False)
        if isinstance(value, Tensor) or is_fn(value) or isinstance(value, shapes.Poly):
            what = "symbolic size" if isinstance(value, shapes.Poly) else kind_name(value)
            self.ctx.kind_error(f"expected a constant here, got {what}", expr.span, "not a constant")
        return value

    def _compare(self, expr: ast.Compare):
        left, right = self.expression(expr.left, False), self.expression(expr.right, False)
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            return self.tensor_binop(expr, left, right)
        for side, v in ((expr.left, left), (expr.right, right)):
            if isinstance(v, Tensor) or is_fn(v):
                self.ctx.kind_error(f"cannot compare {kind_name(v)}", side.span, "not a constant")
        if isinstance(left, shapes.Poly) or isinstance(right, shapes.Poly):
            same = shapes.known_equal(left, right)
            if expr.op in ("==", "!=") and same is not None:
                return same if expr.op == "==" else not same
            self.ctx.error("E110", f"cannot decide {left} {expr.op} {right} statically", expr.span, "symbolic size")
            raise Abort
        try:
            return {
                "==": lambda: left == right,
                "!=": lambda: left != right,
                "<": lambda: left < right,
                "<=": lambda: left <= right,
                ">": lambda: left > right,
                ">=": lambda: left >= right,
            }[expr.op]()
        except TypeError:
            self.ctx.error(
                "E110",
                f"cannot compare {type_name(left)} and {type_name(right)} with {expr.op}",
                expr.span,
                "incomparable",
            )
            raise Abort from None

    def _index(self, expr: ast.Index):
        base = self.expression(expr.base, False)
        if isinstance(base, (Tensor, PoisonFn)):
            return self._tensor_index(expr, base, (expr.index,))
        index = self.constant(expr.index)
        if not is_sequence(base):
            self.ctx.kind_error(f"cannot index {kind_name(base)}", expr.base.span, "not a list or tuple")
        if isinstance(index, bool) or not isinstance(index, int):
            self.ctx.error(
                "E110", f"an index must be an integer, got {type_name(index)}", expr.index.span, "not an integer"
            )
            raise Abort
        if not -len(base) <= index < len(base):
            self.ctx.error(
                "E110", f"index {index} is out of range for {len(base)} items", expr.index.span, "out of range"
            )
            raise Abort
        return base[index]

    def _subscript(self, expr: ast.Subscript):
        """``x[:, 0]``: slices, ``...`` and several items index tensors only."""
        base = self.expression(expr.base, False)
        if not isinstance(base, (Tensor, PoisonFn)):
            self.ctx.kind_error(
                f"slices and several items index a tensor, not {kind_name(base)}",
                expr.base.span,
                "not a tensor",
                help="a list or tuple takes one integer index: widths[i]" if is_sequence(base) else None,
            )
        return self._tensor_index(expr, base, expr.items)

    def _tensor_index(self, expr, base, items) -> Tensor:
        """``x[items]`` of a tensor: an OpNode "getitem" whose ``index`` holds the items, with
        symbolic bounds computed at run time from the tensor's own sizes."""
        values = tuple(self._index_item(item, base) for item in items)
        x = self.tensor(base, expr.base)
        tensors = [(v, item) for v, item in zip(values, items) if isinstance(v, Tensor)]
        if len(tensors) > 1:
            self.ctx.error(
                "E211",
                "indexing with several tensors is not supported",
                tensors[1][1].span,
                "a second tensor index",
                help="index with one tensor at a time: x[index][:, other]",
            )
            raise Abort
        if x.type is None or any(v.type is None for v, _ in tensors):
            return self.ctx.poisoned(expr.span)
        values = tuple(
            index_ops.TensorIndex() if isinstance(v, Tensor) else self._runtime(v, item, x.type)
            for v, item in zip(values, items)
        )
        inputs = [x, *(v for v, _ in tensors)]
        try:
            if tensors:
                out, unverified = index_ops.gathered(x.type, values, tensors[0][0].type), []
            else:
                out, unverified = index_ops.indexed(x.type, values)
        except ShapeError as exc:
            at = items[exc.param].span if isinstance(exc.param, int) else expr.span
            self.op_error(exc, at, inputs)
        by_item: dict[int, list[str]] = {}
        for text, at in unverified:  # one warning an item: the checker reports one a place
            by_item.setdefault(at, []).append(text)
        for at, texts in by_item.items():
            text = " and ".join(texts)
            self.ctx.diag(
                Severity.WARNING,
                "W301",
                f"cannot verify statically that {text}",
                items[at].span if at < len(items) else expr.span,
                f"needs {text}",
                self._producers([x]),
            )
        args = {"index": values}
        sources = self._index_sources(items, args) if self.ctx.scope is not None and self.ctx.scope.block else None
        return self.op("getitem", inputs, [out], args, expr.span, sources=sources)[0]

    def _index_sources(self, items, args: dict) -> dict[str, Expr]:
        """Inside a block: each integer item and slice bound as written, in terms of the block's
        parameters (``x[..., :-chomp]``), so that uses differing in it share a class."""
        out: dict[str, Expr] = {}
        for key in OPERATORS["getitem"].slot_values(args):
            at, _, part = key.partition(".")
            item = items[int(at)]
            written = getattr(item, part) if part else item
            expr = lower(written, self.ctx.scope, self.ctx)
            if expr is not None:
                out[key] = expr
        return out

    def _index_item(self, item, base):
        """One item of a tensor's index: an integer or symbolic size, a Slice, ``...`` or None."""
        if isinstance(item, ast.EllipsisItem):
            return Ellipsis
        if isinstance(item, ast.SliceItem):
            return index_ops.Slice(*(None if part is None else self._index_bound(part) for part in item[:3]))
        value = self._index_bound(item, allow_none=True)
        return value

    def _index_bound(self, expr, allow_none: bool = False):
        """An integer, or a symbolic size (a size of the model's input, a block's, or an
        expression of them); None or a tensor where ``allow_none`` (a whole item)."""
        value = self._size_expression(expr)
        if (value is None or isinstance(value, Tensor)) and allow_none:
            return value  # None, or a tensor of integers (table[index])
        if isinstance(value, Tensor):
            self.ctx.error(
                "E211",
                "a slice's bounds are numbers or sizes, not tensors",
                expr.span,
                "a tensor",
                help="index with a tensor of integers as a whole item: table[index]",
            )
            raise Abort
        if isinstance(value, bool) or not isinstance(value, (int, shapes.Poly)):
            self.ctx.error(
                "E210",
                f"a tensor is indexed with integers, slices, '...' and None, got {kind_name(value)}",
                expr.span,
                "not an index",
            )
            raise Abort
        return value

    def _size_expression(self, expr):
        """A value in which a name of the model's input sizes stands for that size (``T - 2``)."""
        if isinstance(expr, ast.NameRef):
            found, _ = self._lookup(expr.name) if self.ctx.scope is not None else (False, None)
            known = found or expr.name in BUILTIN_VALUES or expr.name in self.ctx.constants
            if not known and expr.name in self.ctx.used_names:
                return shapes.sym(expr.name)
            return self.expression(expr, False)
        if isinstance(expr, ast.BinOp) and expr.op in ("+", "-", "*", "//", "**"):
            left, right = self._size_expression(expr.left), self._size_expression(expr.right)
            if isinstance(left, shapes.Poly) or isinstance(right, shapes.Poly):
                return self.binding.arithmetic(expr, left, right)
            return self.expression(expr, False)
        if isinstance(expr, ast.Neg):
            value = self._size_expression(expr.operand)
            if isinstance(value, shapes.Poly):
                return shapes.neg(value)
        return self.expression(expr, False)

    def _runtime(self, value, item, t: TensorType):
        """Symbolic bounds as Runtime: each symbol found among the sizes of ``t`` (E211 if not)."""
        if isinstance(value, index_ops.Slice):
            return index_ops.Slice(*(self._runtime(v, item, t) for v in value))
        if not isinstance(value, shapes.Poly):
            return value
        found = index_ops.runtime(value, t.shape.dims)
        if found is None:
            self.ctx.error(
                "E211",
                f"the bound {value} cannot be computed at run time from the sizes {t.shape} of the indexed tensor",
                item.span,
                "not computable from the tensor's sizes",
                help="write the bound with sizes of the indexed tensor, or with numbers",
            )
            raise Abort
        return found

    def _lookup(self, name: str):
        """(found, value) for a name defined in the current scope chain."""
        scope = self.ctx.scope.find(name) if self.ctx.scope is not None else None
        if scope is None:
            return False, None
        scope.used.add(name)
        return True, scope.values[name]

    def _name(self, expr: ast.NameRef, symbols: bool):
        found, value = self._lookup(expr.name)  # the body's values come first
        if found:
            self._visible(expr, value)
            return value
        if expr.name in BUILTIN_VALUES:
            return BUILTIN_VALUES[expr.name]
        if expr.name in self.ctx.constants:
            return self.ctx.constants[expr.name]
        if expr.name in self.ctx.broken_constants:
            raise Abort  # its own error is already reported
        if symbols:
            self.ctx.used_names.add(expr.name)
            return shapes.sym(expr.name)
        return self._unbound(expr)

    def _visible(self, expr: ast.NameRef, value) -> None:
        """E108 for a tensor of the caller that a sub-network argument reads while a block's body
        applies it (``Wrap(for i in range(2) { y = x * 2 ... })`` reading the model's ``x``): the
        argument is a module of its own, whose one input is what the block applies it to."""
        if not self.ctx.state.arguments:
            return
        first, given, param, where, shared = self.ctx.state.arguments[-1]
        tensors = value if is_sequence(value) else (value,)
        if any(isinstance(t, Tensor) and t.type is not None and t.id < first and t.id != given for t in tensors):
            what, label = (
                (f"the shared module '{param}'", None)  # the later use labels both uses
                if shared
                else (f"the sub-network argument '{param}'", f"given as '{param}' here")
            )
            self.ctx.error(
                "E108",
                f"'{expr.name}' is a tensor of the caller, which {what} cannot read: "
                + (
                    "applied more than once, it is one module with one input"
                    if shared
                    else "a block applies it to one tensor of its own"
                ),
                expr.span,
                f"not visible in '{param}'",
                (Label(where, label),) if label else (),
                help=(
                    f"combine {expr.name} outside '{param}', or give each use a module of its own"
                    if shared
                    else f"make {expr.name} a tensor input of the block (e.g. {expr.name}: [N, ...]) and "
                    "combine it in the block's body, or apply this sub-network outside the block"
                ),
            )
            raise Abort

    def _unbound(self, expr: ast.NameRef):
        """A bare layer or block name is a call without arguments (``ReLU``); else undefined."""
        if expr.name in self.ctx.blocks or lookup(expr.name) is not None or expr.name == "Residual":
            return self._call(ast.Call(ast.Name(expr.name, expr.span), (), None, expr.span))
        return self._undefined(expr.name, expr.span)

    def _undefined(self, name: str, span: Span, called: bool = False):
        if name in self.ctx.broken_names or name in self.ctx.broken_constants:
            raise Abort
        scope = self.ctx.scope
        while scope is not None:
            if name in scope.later:
                self.ctx.error(
                    "E108",
                    f"'{name}' is used before it is defined",
                    span,
                    "used here",
                    (Label(scope.later[name], "defined here, later"),),
                    help="define a value before using it: data flows forward, a network has no cycles",
                )
                raise Abort
            scope = scope.parent
        if not called and name in self.ctx.used_names:  # a symbolic size of the model's inputs
            self.ctx.error(
                "E108",
                f"'{name}' is a size of the model's input, not a value",
                span,
                "a symbolic size",
                help=(
                    "a layer's sizes are numbers: write -1 for the one size a reshape infers (Reshape(-1, 8, 64)), "
                    f"split a dim with Unflatten(-1, (8, 64)), or give {name} a number in the input"
                ),
            )
            raise Abort
        values = self.ctx.scope.names() if self.ctx.scope is not None else []
        close = close_matches(name, values + list(self.ctx.constants) + list(BUILTIN_VALUES), n=1)
        # a capitalised name is taken for a layer, unless it is one capital letter, as sizes are (S, T)
        size_like = len(name) == 1 and name.isupper()
        if not called and (close or size_like or not (name[:1].isupper() or suggest(name))):
            if close:
                help = f"did you mean '{close[0]}'?"
            elif size_like:
                help = f"name a size in the input declaration (x: [N, {name}]) or define it: let {name} = ..."
            else:
                help = f"define it first: let {name} = ... or {name} = ..."
            self.ctx.error("E108", f"undefined name '{name}'", span, "not defined", help=help)
            raise Abort
        close_block = close_matches(name, list(self.ctx.blocks), n=1)
        self.ctx.error(
            "E101",
            f"unknown layer '{name}'",
            span,
            "not a known layer",
            help=f"did you mean '{close_block[0]}'?" if close_block else unknown_layer_help(name),
        )
        raise Abort

    # ------------------------------------------------------------ flows

    def _step(self, expr):
        """A step of a chain; after an error in it, a stand-in so the rest is still checked."""
        try:
            return self.expression(expr, False)
        except Abort:
            self.ctx.state.poisoned = True
            return PoisonFn(expr.span)

    def _flow(self, expr: ast.Flow):
        value = self._step(expr.steps[0])
        if not (isinstance(value, Tensor) or is_fn(value)):
            self.ctx.kind_error(
                f"a chain starts from a tensor or a layer, got {kind_name(value)}",
                expr.steps[0].span,
                "not a tensor or layer",
            )
        composed: list = []  # a chain that starts with a layer composes; it is applied later
        for step in expr.steps[1:]:
            fn = self._step(step)
            if not is_fn(fn):
                self.ctx.kind_error(
                    f"'->' leads to a layer or sub-network, got {kind_name(fn)}",
                    step.span,
                    kind_name(fn),
                    help="combine tensors with +, * or cat(...)" if isinstance(fn, Tensor) else None,
                )
            if isinstance(value, Tensor):
                value = self.apply(fn, value, step.span)
            else:
                composed.append(fn)
        if composed and not isinstance(value, PoisonFn):  # after an error, the rest is only checked
            parts = value.parts if isinstance(value, ComposeFn) else (value,)
            value = ComposeFn((*parts, *composed), expr.span)
        return value

    def tensor(self, value, expr) -> Tensor:
        if isinstance(value, PoisonFn):  # an error upstream, already reported: any kind will do
            return self.ctx.poisoned(value.span)
        if not isinstance(value, Tensor):
            self.ctx.kind_error(
                f"expected a tensor, got {kind_name(value)}",
                expr.span,
                "not a tensor",
                help="apply it to a value first: `x -> ...`" if is_fn(value) else None,
            )
        return value

    def tensor_binop(self, expr: ast.BinOp, left, right):
        if isinstance(left, PoisonFn) or isinstance(right, PoisonFn):
            return self.ctx.poisoned(expr.span)
        if expr.op == "*" and (is_fn(left) or is_fn(right)):
            fn, times, times_expr = (left, right, expr.right) if is_fn(left) else (right, left, expr.left)
            if isinstance(times, bool) or not isinstance(times, int):
                self.ctx.kind_error(
                    f"a layer repeats an integer number of times, got {kind_name(times)}",
                    times_expr.span,
                    "not an integer",
                )
            if times < 0:
                self.ctx.error(
                    "E107", f"a repetition count cannot be negative, got {times}", times_expr.span, "negative"
                )
                raise Abort
            if times > MAX_REPEAT:
                self.ctx.error(
                    "E107", f"a repetition count is at most {MAX_REPEAT:,}, got {times:,}", times_expr.span, "too large"
                )
                raise Abort
            in_block = self.ctx.scope is not None and self.ctx.scope.block is not None
            return RepeatFn(fn, times, expr.span, lower(times_expr, self.ctx.scope, self.ctx) if in_block else None)
        # the operator registered with the written symbol: add for '+', matmul for '@'
        op = next((name for name, cls in OPERATORS.items() if cls.symbol == expr.op), None)
        for side, v in ((expr.left, left), (expr.right, right)):
            if is_fn(v):
                self.ctx.kind_error(
                    f"cannot use a layer or sub-network in '{expr.op}'",
                    side.span,
                    "a layer, not a tensor",
                    help="apply it first: (x -> layer) " + expr.op + " y",
                )
        if op is None:
            what = "the matrix product '@' (matmul) is not available" if expr.op == "@" else None
            self.ctx.kind_error(what or f"'{expr.op}' does not apply to tensors", expr.span, "no tensor operator")
        if getattr(OPERATORS[op], "compares", False):  # a > 0: a bool tensor
            return self._tensor_compare(expr, OPERATORS[op], left, right)
        if not OPERATORS[op].scalar_operand:  # a @ b: an operator of two tensors, by its own rule
            return self.functions.symbol_operator(expr, left, right)
        scalar = None
        if not isinstance(left, Tensor) or not isinstance(right, Tensor):
            scalar = right if isinstance(left, Tensor) else left
            if isinstance(scalar, bool) or not isinstance(scalar, (int, float)):
                self.ctx.kind_error(
                    f"a tensor combines with a tensor or a number, got {kind_name(scalar)}",
                    (expr.right if isinstance(left, Tensor) else expr.left).span,
                    "not a number",
                )
        tensors = [v for v in (left, right) if isinstance(v, Tensor)]
        if any(t.type is None for t in tensors):
            return self.ctx.poisoned(expr.span)
        # the operator's own rule: the broadcast shape and promoted dtype, the dtypes torch refuses
        rule, types = OPERATORS[op], [t.type for t in tensors]
        args = {"scalar": scalar, "scalar_first": not isinstance(left, Tensor)}
        try:
            (out,) = rule.output(types, args)
        except ShapeError as exc:
            self.op_error(exc, expr.span, tensors)
        for text in rule.unverified(types, args):
            self.ctx.diag(
                Severity.WARNING,
                "W301",
                f"cannot verify statically that {text}",
                expr.span,
                f"needs {text}",
                self._producers(tensors),
            )
        first = args["scalar_first"]
        sources = self.scalar_source(expr, first) if scalar is not None else None
        return self.op(op, tensors, [out], {}, expr.span, scalar=scalar, scalar_first=first, sources=sources)[0]

    def scalar_source(self, expr: ast.BinOp, first: bool) -> dict | None:
        """Inside a block: the number of ``x * scale`` as written, in terms of the block's
        parameters, so that uses differing in it share a class."""
        if self.ctx.scope is None or not self.ctx.scope.block:
            return None
        written = lower(expr.left if first else expr.right, self.ctx.scope, self.ctx)
        return None if written is None else {"scalar": written}

    def _tensor_compare(self, expr, op, left, right) -> Tensor:
        """``a > b`` of tensors, or of a tensor and a number: the comparison operator's bool result."""
        scalar = None
        if not isinstance(left, Tensor) or not isinstance(right, Tensor):
            scalar = right if isinstance(left, Tensor) else left
            if not isinstance(scalar, (int, float)):  # True and False compare as 1 and 0, as in torch
                self.ctx.kind_error(
                    f"a tensor compares with a tensor or a number, got {kind_name(scalar)}",
                    (expr.right if isinstance(left, Tensor) else expr.left).span,
                    "not a number",
                )
        tensors = [v for v in (left, right) if isinstance(v, Tensor)]
        if any(t.type is None for t in tensors):
            return self.ctx.poisoned(expr.span)
        try:
            types = op.output([t.type for t in tensors], {})
        except ShapeError as exc:
            self.op_error(exc, expr.span, tensors)
        if scalar is None:
            for text in ops.broadcast(op.name, left.type, right.type)[1]:
                self.ctx.diag(
                    Severity.WARNING, "W301", f"cannot verify statically that {text}", expr.span, f"needs {text}"
                )
        first = not isinstance(left, Tensor)
        sources = self.scalar_source(expr, first) if scalar is not None else None
        return self.op(op.name, tensors, types, {}, expr.span, scalar=scalar, scalar_first=first, sources=sources)[0]

    def _producers(self, tensors) -> tuple[Label, ...]:
        labels = {}  # one label per producer, however often its value is used (cat(x, x))
        for t in tensors:
            if t.source is self.ctx.source and t.type is not None:
                labels.setdefault(t.span, producer_label(t.span, t.role, t.type))
        return tuple(labels.values())

    def op_error(self, exc: ShapeError, span: Span, tensors) -> None:
        self.ctx.error(exc.code, exc.message, span, exc.label, self._producers(tensors), exc.help)
        raise Abort

    def op(self, op, inputs, types, args, span, scalar=None, scalar_first=False, sources=None) -> list[Tensor]:
        if not all([self.ctx.fits(t, span) for t in types]):
            raise Abort
        if scalar is not None:  # the number of ``x * 2``, an argument as any other
            args = {**args, "scalar": scalar}
        outs = [self.ctx.state.new(t, span, "output", self.ctx.source) for t in types]
        for t in inputs:
            self.ctx.state.used.add(t.id)
        self.ctx.state.nodes.append(
            OpNode(
                op,
                tuple(t.id for t in inputs),
                tuple(t.id for t in outs),
                tuple(types),
                MappingProxyType(args),
                span,
                self.ctx.source.line_col(span.start)[0],
                self.ctx.text(span),
                scalar,
                scalar_first,
                id=self.ctx.state.node_id(),
                sources=MappingProxyType(sources) if sources else None,
            )
        )
        return outs

    # ------------------------------------------------------------ calls

    def _call(self, call: ast.Call):
        name = call.name.text
        if not name.isidentifier():
            return self._strange_call(call)
        found, value = self._lookup(name)
        if found:
            if call.args and is_fn(value):  # ``attn(q, k, v)``: a named layer applied to tensors
                return self._apply_call(value, call.args, call.selector, call.span)
            if call.args or call.selector is not None:
                self.ctx.kind_error(
                    f"'{name}' is {kind_name(value)}, not a layer: it takes no arguments",
                    call.span,
                    "not callable",
                )
            return value
        if name in self.ctx.blocks:
            self.ctx.used_blocks.add(name)
            return self.blocks.call(call, self.ctx.blocks[name])
        if name in BUILTINS:
            return self.functions.call(call)
        if name == "Residual":
            return self._residual(call)
        if name in ("nn", "torch") and call.selector is not None:  # ``nn.ReLU``, no parentheses
            self._module_path(f"{name}.{call.selector.text}", Span(call.name.span.start, call.selector.span.end))
        layer = lookup(name)
        if layer is None:
            return self._undefined(name, call.name.span, called=True)
        bound = self.binding.bind(call)
        if bound.args is None:
            raise Abort
        if not any(v is INFER for v in bound.args.values()):
            bound.validated = self.binding.validate(bound)
            if not bound.validated:
                raise Abort
        return LayerFn(bound, self.ctx.scope, call.span)

    def _apply_call(self, fn, args: tuple, selector, span: Span) -> Tensor:
        """``f(x, ...)``: a layer value applied to ``x`` as ``x -> f``; the further tensors are the
        layer's extra forward inputs (by position or torch's name), the keywords its forward flags."""
        if isinstance(fn, PoisonFn):
            return self.ctx.poisoned(fn.span)
        if not is_fn(fn):
            self.ctx.kind_error(f"only a layer or sub-network applies to tensors, got {kind_name(fn)}", span)
        values = [(arg, self.expression(arg.value, False)) for arg in args]
        positional = [(arg, v) for arg, v in values if arg.keyword is None]
        if not positional or not isinstance(positional[0][1], Tensor):
            where = positional[0][0].span if positional else span
            self.ctx.kind_error(
                "calling a layer applies it to a tensor: its first argument is the input",
                where,
                "not a tensor" if positional else "no input",
            )
        x = positional[0][1]
        layer = fn.bound.layer if isinstance(fn, LayerFn) else None
        names = layer.tensor_inputs if layer is not None else ()
        flags = {p.name: p for p in layer.forward_params} if layer is not None else {}
        what = layer.dsl_name() if layer is not None else "a sub-network"
        extra: dict[str, Tensor] = {}
        forward: dict = {}
        spans = {}  # where each extra input and flag is written, for the shape rule's errors
        for position, (arg, value) in enumerate(positional[1:]):
            if position >= len(names):
                takes = ", ".join(names)
                self._call_error(
                    f"{what} takes {len(names) + 1} tensor input{'s' if names else ''}"
                    + (f" (the input, then {takes})" if names else "")
                    + f", got {len(positional)}",
                    arg.span,
                    "one too many",
                )
            self._bind_input(layer, names[position], value, arg, extra, spans)
        for arg, value in values:
            if arg.keyword is None:
                continue
            key = arg.keyword.text
            if key in names:
                if key in names[: len(positional) - 1]:
                    self._call_error(f"{key} is given twice", arg.span, "given again")
                if value is not None:
                    self._bind_input(layer, key, value, arg, extra, spans)
            elif key in flags:
                spans[key] = arg.span
                try:
                    forward[key] = flags[key].kind.convert(value)
                except (WrongType, ArgValueError):
                    self._call_error(
                        f"{key} of {what}'s forward must be {flags[key].kind.describe}, got {kind_name(value)}",
                        arg.span,
                        "wrong value",
                    )
            else:
                known = [*names, *flags]
                self._call_error(
                    f"{what}'s forward has no argument '{key}'" + did_you_mean(key, known),
                    arg.keyword.span,
                    "unknown argument",
                    help=f"it takes {', '.join(known)}" if known else "it takes one tensor: call it as f(x)",
                )
        if selector is not None and not isinstance(fn, LayerFn):
            self.ctx.error("E111", "only a layer's output has a selector", selector.span, "not a layer")
            raise Abort
        if any(t.type is None for t in extra.values()):
            return self.ctx.poisoned(span)
        # the same ``fn`` is applied (a named layer stays one module); _apply_layer takes these
        self._pending_inputs = (extra, forward, spans, selector) if extra or forward or selector else None
        try:
            return self.apply(fn, x, span)
        finally:
            self._pending_inputs = None

    def _bind_input(self, layer, name: str, value, arg, extra: dict, spans: dict) -> None:
        """One extra input: a tensor, or a tuple of them where the layer takes one (LSTM's (h, c))."""
        members = layer.tuple_inputs.get(name)
        if members is None:
            extra[name] = self.tensor(value, arg.value)
            spans[name] = arg.span
            return
        if not isinstance(value, tuple) or len(value) != len(members):
            self._call_error(
                f"{layer.dsl_name()}'s {name} is a tuple of {len(members)} tensors ({', '.join(members)})",
                arg.span,
                "not a tuple of tensors",
                help=f"write ({', '.join(members)})",
            )
        items = arg.value.items if isinstance(arg.value, ast.TupleExpr) else (arg.value,) * len(members)
        for member, item, expr in zip(members, value, items):
            extra[member] = self.tensor(item, expr)
            spans[member] = expr.span

    def _call_error(self, message: str, span: Span, label: str, help: str | None = None) -> None:
        self.ctx.error("E216", message, span, label, help=help)
        raise Abort

    def _module_path(self, path: str, span: Span):
        """``nn.Linear``: torch's module path written before a layer's name."""
        prefix, _, last = path.rpartition(".")
        self.ctx.error(
            "E101",
            f"layers are written without the '{prefix}.' prefix",
            span,
            "torch's module path",
            help=f"write {last}" if lookup(last) else unknown_layer_help(last),
        )
        raise Abort

    def _strange_call(self, call: ast.Call):
        """``nn.Linear(4, 2)``, ``x.last(3)``, ``(a)(b)``: only layers and blocks are called."""
        if call.name.text.split(".")[0] in ("nn", "torch"):
            self._module_path(call.name.text, call.name.span)
        else:
            self.ctx.error(
                "E114",
                "only layers, blocks and functions can be called",
                call.name.span,
                "not callable",
                help="call a layer by its name, e.g. Linear(784, 10)",
            )
        raise Abort

    def _residual(self, call: ast.Call):
        values, spans, _ = self.functions.arguments(call, ["body", "shortcut"], 1)
        body, shortcut = values["body"], values.get("shortcut")
        if not is_fn(body):
            self.ctx.kind_error(f"Residual's body must be a layer or sub-network, got {kind_name(body)}", spans["body"])
        if shortcut is not None and not is_fn(shortcut):
            self.ctx.kind_error(
                f"Residual's shortcut must be a layer, a sub-network or None, got {kind_name(shortcut)}",
                spans["shortcut"],
            )
        param = condition = None
        positional = [a for a in call.args if a.keyword is None]
        written = [a for a in call.args if a.keyword is not None and a.keyword.text == "shortcut"] + positional[1:2]
        in_block = self.ctx.scope is not None and self.ctx.scope.block is not None
        if written and in_block:
            expr = written[0].value
            if isinstance(expr, ast.NameRef) and expr.name in self.ctx.scope.block:
                param = expr.name
            elif isinstance(expr, ast.Cond):
                condition = shortcut_condition(expr, self.ctx.scope, self.ctx)
        return ResidualFn(body, shortcut, call.span, param, condition)

    def _for(self, loop: ast.ForLoop) -> ForFn:
        items = self.constant(loop.iterable)
        if not is_sequence(items):  # an empty list runs the body no times, as `* 0` does
            self.ctx.kind_error(
                f"a for loop runs over a list, got {kind_name(items)}",
                loop.iterable.span,
                "not a list",
                help="e.g. for w in [64, 128] { ... } or for i in range(4) { ... }",
            )
        rows = []
        for item in items:
            if len(loop.names) == 1:
                rows.append((item,))
                continue
            if not is_sequence(item) or len(item) != len(loop.names):
                self.ctx.error(
                    "E117",
                    f"{len(loop.names)} loop names, but an item of the list is {item!r}",
                    loop.iterable.span,
                    "item does not unpack",
                )
                raise Abort
            rows.append(item)
        return ForFn(loop, tuple(rows), self.ctx.scope, loop.span)

    # ------------------------------------------------------------ applying sub-networks

    def apply(self, fn, x: Tensor, span: Span) -> Tensor:
        """``x -> fn``: the nodes for it go into the graph being built."""
        state = self.ctx.state
        if state.exhausted:  # a work limit was reached: nothing more is checked in this model
            return self.ctx.poisoned(span)
        state.steps += 1
        if state.steps > MAX_APPLIED:
            self._exhausted(
                f"checking this model applies more than {MAX_APPLIED:,} layers and sub-networks",
                span,
                "the limit is reached here",
            )
        if state.depth >= MAX_APPLY_DEPTH:
            self.ctx.limited = True
            self.ctx.error(
                "E005",
                f"sub-networks are applied inside one another more than {MAX_APPLY_DEPTH} levels deep",
                span,
                "too deep",
                help="blocks using blocks, loops in loops and repetitions of repetitions count one level each",
            )
            raise Abort
        state.depth += 1
        try:
            return self._apply_named(fn, x, span)
        finally:
            state.depth -= 1

    def _exhausted(self, message: str, span: Span, label: str) -> None:
        """E118: a limit on the checker's work is reached; the rest of the model is not checked."""
        self.ctx.state.exhausted = self.ctx.limited = True
        self.ctx.error("E118", message, span, label, help="a repetition, loop or num_layers count is likely too large")
        raise Abort

    def _repeated(self, count: int, span: Span, run) -> Tensor:
        """Run a repetition or loop body ``count`` times, if the repetitions around it allow."""
        state = self.ctx.state
        total = state.repeats * max(count, 1)
        if total > MAX_LAYERS:
            within = f" inside repetitions that run {state.repeats:,} times" if state.repeats > 1 else ""
            self.ctx.error(
                "E118",
                f"this runs its body {count:,} times{within}: {total:,} times in all, "
                f"more than the {MAX_LAYERS:,} a model may have",
                span,
                "too many repetitions",
                help="nested repetitions and loops multiply",
            )
            raise Abort
        saved, state.repeats = state.repeats, total
        try:
            return run()
        finally:
            state.repeats = saved

    def _apply_named(self, fn, x: Tensor, span: Span) -> Tensor:
        """Apply ``fn``. A named module with weights is one module wherever it is applied (torch's
        semantics): each use becomes a "shared" SeqNode checked with its own input, the first
        holding the weights; a later use must build what the first built. Uses of a module
        applied once are spliced back into the graph when the model is finished."""
        named = self.ctx.state.named.get(id(fn))
        if named is None:
            return self._apply_fn(fn, x, span)
        first = self.ctx.state.named_applied.get(id(fn))
        nodes: list = []
        self.ctx.state.stack.append(nodes)
        mark = len(self.ctx.sink.items)
        if first is not None:  # applied again: one module, which can read only its input
            self.ctx.state.arguments.append((len(self.ctx.state.types), x.id, named[1], first.span, True))
        try:
            y = self._apply_fn(fn, x, span)
        finally:
            self.ctx.state.stack.pop()
            if first is not None:
                self.ctx.state.arguments.pop()
                self._at_later_use(mark, named[1], x, span, first)
        if not any(n.own_params for n in walk(Graph((), tuple(nodes), ()))) or x.type is None or y.type is None:
            self.ctx.state.nodes.extend(nodes)  # without weights: the same computation wherever it is used
            return y
        name = named[1]
        if first is not None:
            self._agrees(first, nodes, x, span, name)
        node_id = self.ctx.state.node_id()
        group = node_id if first is None else first.group
        defined = getattr(fn, "span", span)
        self.ctx.state.modules.setdefault(id(fn), (group, tuple(nodes)))
        if first is None:
            self.ctx.state.named_applied[id(fn)] = _FirstUse(span, x.type, group, tuple(nodes))
        self.ctx.state.nodes.append(
            SeqNode(
                "shared",
                x.id,
                y.id,
                y.type,
                Graph((x.id,), tuple(nodes), (y.id,)),
                span,
                self.ctx.line(defined),  # the module as the spec defines it, for the emitted comment
                self.ctx.text(defined),
                id=node_id,
                name=name,
                group=group,
                again=first is not None,
            )
        )
        return y

    def _at_later_use(self, mark: int, name: str, x: Tensor, span: Span, first: _FirstUse) -> None:
        """An error inside a shared module's later use (its layers are written where it is
        defined) also shows the use and the first use, with their inputs."""
        items = self.ctx.sink.items
        for index in range(mark, len(items)):
            d = items[index]
            if d.severity is Severity.ERROR and d.source is self.ctx.source:
                labels = (
                    Label(span, f"'{name}' applied here to {x.type}"),
                    Label(first.span, f"first applied to {first.input}"),
                )
                items[index] = d._replace(secondary=d.secondary + labels)

    def _agrees(self, first: _FirstUse, nodes: list, x: Tensor, span: Span, name: str) -> None:
        """E122: a later use of a shared module must build the module its first use built (the
        same layers with the same arguments, inferred ones included, and weights of one dtype)."""
        before, now = _built(first.nodes), _built(nodes)
        problem = None
        if len(before) != len(now):
            problem = f"it builds {len(now)} layers here and {len(before)} at its first use"
        for (a, a_args, a_dtype), (b, b_args, b_dtype) in zip(before, now):
            if problem is not None:
                break
            if a.layer is not b.layer:
                problem = f"it builds {b.layer.dsl_name()} here where its first use built {a.layer.dsl_name()}"
            elif a_args != b_args:
                key = next(k for k in {**a_args, **b_args} if a_args.get(k) != b_args.get(k))
                problem = (
                    f"its {a.layer.dsl_name()} needs {key}={b_args.get(key)!r} here, "
                    f"but its first use built it with {key}={a_args.get(key)!r}"
                )
            elif a_dtype != b_dtype:
                problem = f"its {a.layer.dsl_name()} holds {a_dtype} weights, and this input is {b_dtype}"
        if problem is None:
            return
        self.ctx.error(
            "E122",
            f"'{name}' is one module shared by its uses: applied here to {x.type}, {problem} "
            f"(its first use was applied to {first.input})",
            span,
            f"applied to {x.type}",
            (Label(first.span, f"first applied to {first.input}"),),
            help=f"give each use an input of the first use's shape, or define a second '{name}' with its own weights",
        )
        raise Abort

    def _copies(self, run_once, times: int, x: Tensor, fresh: bool = False) -> Tensor:
        """``run_once`` applied ``times`` times in sequence, each a separate copy of its layers: a named
        sub-network applied in the body is applied once per copy. With ``fresh`` (a repetition,
        ``tower * 3``), each copy is new, apart from any use of the named module outside it."""
        before = dict(self.ctx.state.named_applied)
        after_first = None
        first_input = x.type
        for index in range(times):
            self.ctx.state.named_applied = {} if fresh else dict(before)
            reported = len(self.ctx.sink.items)
            given = x.type
            try:
                x = run_once(index, x)
            finally:
                if fresh and index > 0 and len(self.ctx.sink.items) > reported and given != first_input:
                    self._note_repetition(reported, index, first_input, given)
            if x.type is None:  # the body's first error is reported; its repetitions add none
                break
            if after_first is None:
                after_first = self.ctx.state.named_applied
        self.ctx.state.named_applied = before if after_first is None or fresh else after_first
        return x

    def _note_repetition(self, first: int, index: int, first_input: TensorType, given: TensorType) -> None:
        """Say, on the errors a later copy of a repetition reported, that it read the copy
        before's output: a repeated body must give the shape it takes."""
        note = (
            f"a repetition applies its body to the output of the copy before: copy {index + 1} "
            f"gets {given}, where the first got {first_input}"
        )
        help = f"repeat a body that gives back the shape it takes ({first_input}), or write the copies out one by one"
        items = self.ctx.sink.items
        for i in range(first, len(items)):
            items[i] = items[i]._replace(notes=(*items[i].notes, note), help=help)

    def _apply_fn(self, fn, x: Tensor, span: Span) -> Tensor:
        self.ctx.state.used.add(x.id)
        if isinstance(fn, LayerFn):
            return self._apply_layer(fn, x)
        if isinstance(fn, ComposeFn):
            for part in fn.parts:
                x = self.apply(part, x, span)
            return x
        if isinstance(fn, ParamFn):
            return self._apply_argument(fn, x, span)
        if isinstance(fn, RepeatFn):

            def repeat():
                return self._copies(lambda _, y: self.apply(fn.fn, y, span), fn.times, x, fresh=True)

            return self._repeated(
                fn.times, fn.span, lambda: self._nested(repeat, "repeat", x, fn.span, times=(fn.times, fn.source))
            )
        if isinstance(fn, ForFn):
            run = lambda: self._nested(lambda: self._run_for(fn, x), "for", x, fn.span)  # noqa: E731
            return self._repeated(len(fn.items), fn.span, run)
        if isinstance(fn, ResidualFn):
            return self._apply_residual(fn, x)
        if isinstance(fn, BlockFn):
            return self.blocks.instantiate(fn, x)
        if isinstance(fn, PoisonFn):
            return self.ctx.poisoned(fn.span)
        raise AssertionError(fn)

    def _apply_argument(self, fn: ParamFn, x: Tensor, span: Span) -> Tensor:
        """A block's sub-network argument applied in its body: one module of the block's use
        (torch's ``self.f = f``), shared by its applications; a later one holds no weights of its
        own and must build what the first built (E122)."""
        first = self.ctx.state.arguments_applied.get(id(fn))
        self.ctx.state.applied[id(fn)] = fn
        nodes = self.ctx.state.nodes
        mark = len(nodes)
        self.ctx.state.arguments.append((len(self.ctx.state.types), x.id, fn.name, fn.span, False))
        try:
            y = self._nested(lambda: self.apply(fn.fn, x, span), "param", x, fn.span, param=fn.name)
        finally:
            self.ctx.state.arguments.pop()
        built = nodes[mark:]
        if first is None:
            if x.type is not None and y.type is not None:
                self.ctx.state.arguments_applied[id(fn)] = _FirstUse(span, x.type, 0, tuple(built))
            return y
        if weights(built):
            self._agrees(first, built, x, span, fn.name)
            nodes[mark:] = [n._replace(again=True) if n.tag == "seq" and n.kind == "param" else n for n in built]
        return y

    def _nested(self, run, kind: str, x: Tensor, span: Span, param=None, times: tuple = (0, None)) -> Tensor:
        nodes: list = []
        self.ctx.state.stack.append(nodes)
        try:
            y = run()
        finally:
            self.ctx.state.stack.pop()
        if y.type is None or x.type is None or not nodes:  # `* 0` adds nothing
            self.ctx.state.nodes.extend(nodes)
            return y
        self.ctx.state.nodes.append(
            SeqNode(
                kind,
                x.id,
                y.id,
                y.type,
                Graph((x.id,), tuple(nodes), (y.id,)),
                span,
                self.ctx.line(span),
                self.ctx.text(span),
                param,
                id=self.ctx.state.node_id(),
                times=times[0],
                times_source=times[1],
            )
        )
        return y

    def _run_for(self, fn: ForFn, x: Tensor) -> Tensor:
        saved = self.ctx.scope

        def run_row(index: int, x: Tensor) -> Tensor:
            scope = Scope(fn.scope)
            for name, value in zip(fn.loop.names, fn.items[index]):
                scope.values[name.text] = value
                scope.used.add(name.text)
            self.ctx.scope = scope
            (x,) = self.body_single(fn.loop.body, scope, x)
            return x

        try:
            return self._copies(run_row, len(fn.items), x)
        finally:
            self.ctx.scope = saved

    def body_single(self, body: ast.Body, scope: Scope, x: Tensor) -> tuple[Tensor]:
        outputs = self._body(body, scope, x)
        if len(outputs) != 1:
            self.ctx.error("E117", "a loop body returns one tensor", body.span, f"{len(outputs)} outputs")
            raise Abort
        return outputs

    def _apply_layer(self, fn: LayerFn, x: Tensor) -> Tensor:
        extra, forward, spans, selector = getattr(self, "_pending_inputs", None) or ({}, {}, {}, None)
        self._pending_inputs = None  # the call's extra inputs are this layer's, not a later one's
        if x.type is None:
            return self.ctx.poisoned(fn.span)
        if spans or selector is not None:  # this call's inputs and selector, for its node and errors
            b = fn.bound
            call = b.call if selector is None else b.call._replace(selector=selector)
            bound = Bound(call, b.layer, b.args, {**b.arg_spans, **spans})
            bound.validated = b.validated
            fn = LayerFn(bound, fn.scope, fn.span)
        b = fn.bound
        layers = b.args.get("num_layers", 1) if b.args else 1  # an RNN's layers are checked one by one
        self.ctx.state.layers += layers if isinstance(layers, int) and layers > 0 else 1
        if self.ctx.state.layers > MAX_LAYERS:
            what = f"with num_layers={layers:,} " if isinstance(layers, int) and layers > 1 else ""
            self._exhausted(
                f"{b.call.name.text} {what}takes the model beyond {MAX_LAYERS:,} layers, the most a model may have",
                fn.span,
                "the limit is reached here",
            )
        self.ctx.producer = (x.span, x.role, x.type) if x.source is self.ctx.source else None
        types = {name: t.type for name, t in extra.items()}
        node = self.binding.apply(self.ctx.state.layer_index, b, x.type, types, forward)
        if node is None or not self.ctx.fits(node.output, b.call.span) or not self._weights_fit(node, b.call.span):
            return self.ctx.poisoned(fn.span)
        self.ctx.state.layer_index += 1
        out = self.ctx.state.new(node.output, b.call.span, "output", self.ctx.source)
        sources = None
        if fn.scope is not None and fn.scope.block is not None:
            sources = MappingProxyType(self._sources(b, fn.scope))
        for t in extra.values():
            self.ctx.state.used.add(t.id)
        inputs = tuple((name, extra[name].id) for name in b.layer.input_names() if name in extra)
        node = node._replace(src=x.id, dst=out.id, sources=sources, id=self.ctx.state.node_id(), extra=inputs)
        self.ctx.state.nodes.append(node)
        return out

    def _weights_fit(self, node, span: Span) -> bool:
        """A layer whose parameters need more than 2**63 bytes is E119, as such an input is: no
        backend can allocate them (torch's storage size overflows)."""
        dtype = node.output.dtype if node.output.dtype in ("float64", "float16", "bfloat16") else "float32"
        if node.params * ITEMSIZE[dtype] <= INT64_MAX:
            return True
        self.ctx.error(
            "E119",
            f"{node.layer.dsl_name()} has {node.params:,} parameters, more than 2**63 bytes: no backend can hold them",
            span,
            "too large",
        )
        return False

    def _sources(self, b: Bound, scope: Scope) -> dict[str, Expr]:
        """Each argument the spec wrote as an expression in terms of the block's parameters."""

        out: dict[str, Expr] = {}
        params = [p.name for p in b.layer.params]
        position = 0
        for arg in b.call.args:
            if arg.keyword is None:
                pname = params[position]
                position += 1
            else:
                pname = arg.keyword.text
            expr = lower(arg.value, scope, self.ctx)
            if expr is None:
                value = b.args.get(pname) if b.args else None
                expr = Const(value) if is_plain(value) else None
            if expr is not None:
                out[pname] = expr
        return out

    def _apply_residual(self, fn: ResidualFn, x: Tensor) -> Tensor:
        body_nodes: list = []
        self.ctx.state.stack.append(body_nodes)
        try:
            y = self.apply(fn.body, x, fn.span)
        finally:
            self.ctx.state.stack.pop()
        shortcut_graph = None
        s = x
        if fn.shortcut is not None:
            nodes: list = []
            self.ctx.state.stack.append(nodes)
            try:
                s = self.apply(fn.shortcut, x, fn.span)
            finally:
                self.ctx.state.stack.pop()
            shortcut_graph = Graph((x.id,), tuple(nodes), (s.id,))
        if y.type is None or s.type is None:
            return self.ctx.poisoned(fn.span)
        if fn.active and (
            y.type.shape != s.type.shape
            and any(shapes.known_equal(p, q) is not True for p, q in zip(y.type.shape.dims, s.type.shape.dims))
            or y.type.shape.rank != s.type.shape.rank
        ):
            what = "shortcut" if fn.shortcut is not None else "input (the identity shortcut)"
            self.ctx.error(
                "E208",
                f"Residual adds its body's output {y.type.shape} to its {what} {s.type.shape}: the shapes differ",
                fn.span,
                f"{y.type.shape} + {s.type.shape}",
                (
                    Label(y.span, f"body output {y.type} produced here"),
                    *([Label(s.span, f"shortcut output {s.type} produced here")] if fn.shortcut is not None else []),
                ),
                help="give the residual a projection shortcut, e.g. shortcut=Conv2d(C, planes, 1, stride=stride)"
                if fn.shortcut is None
                else "make the shortcut produce the body's shape",
            )
            return self.ctx.poisoned(fn.span)
        # body + shortcut: torch's promotion of the two dtypes, and a new tensor's layout
        rtype = ops.combined(y.type, s.type)
        out = self.ctx.state.new(rtype, fn.span, "output", self.ctx.source)
        self.ctx.state.nodes.append(
            ResidualNode(
                x.id,
                out.id,
                rtype,
                Graph((x.id,), tuple(body_nodes), (y.id,)),
                shortcut_graph,
                fn.span,
                self.ctx.line(fn.span),
                self.ctx.text(fn.span),
                fn.shortcut_param,
                fn.shortcut_if,
                fn.residual_if,
                fn.active,
                id=self.ctx.state.node_id(),
            )
        )
        self.ctx.state.used.update((y.id, s.id))
        return out

    # ------------------------------------------------------------ blocks


class _Tie(NamedTuple):
    """A weight-tying statement and the layer values it names."""

    stmt: ast.Tie
    layer: LayerFn
    layer_name: str
    source: LayerFn
    source_name: str
    ctx: Context  # of the file that has the statement
    uses: tuple  # the uses of blocks it is in (Context.instantiating when it was checked)


def _tie_error(tie: _Tie, message: str, span: Span, label: str, labels: tuple, help: str | None = None) -> None:
    """E123 for a tie, in its file, with the use of the block it is in as diagnostics have it there."""
    uses = tie.ctx.instantiating
    saved = list(uses)
    uses[:] = tie.uses
    try:
        tie.ctx.error("E123", message, span, label, labels, help=help)
    finally:
        uses[:] = saved


class _FirstUse(NamedTuple):
    """The first use of a shared module: where, on what input, its group, the nodes it built."""

    span: Span
    input: TensorType
    group: int
    nodes: tuple


def _built(nodes) -> list[tuple]:
    """Each layer that builds a module in ``nodes`` (nested ones included): the node, its
    arguments, and the dtype of its weights (None without weights)."""
    out = []
    for node in walk(Graph((), tuple(nodes), ())):
        if node.tag == "layer" and node.layer.has_module:
            out.append((node, dict(node.args), node.output.dtype if node.params else None))
    return out


def _substituted(node, bindings):
    """A node with the symbols its model fixed replaced by their sizes: in every type and every
    sub-graph it holds, whatever its kind."""

    def fix(value):
        if isinstance(value, TensorType):
            return value._replace(
                shape=value.shape.substitute(bindings), strides=layout.substitute(value.strides, bindings)
            )
        if isinstance(value, Graph):
            return _sub_graph(value, bindings)
        if type(value) is tuple and value and all(isinstance(v, TensorType) for v in value):
            return tuple(map(fix, value))
        return value

    return node._make(map(fix, node))


def _sub_graph(graph: Graph, bindings) -> Graph:
    return graph._replace(nodes=tuple(_substituted(n, bindings) for n in graph.nodes))


def _named(nodes: tuple, name: str) -> tuple:
    """A named module's nodes spliced in where it is applied once: a module of one node (a
    layer, a block, a repetition) carries the spec's name, which its attribute takes."""
    if len(nodes) != 1:
        return nodes
    (node,) = nodes
    holds_module = node.tag in ("layer", "block") or (node.tag == "seq" and node.kind in ("repeat", "for"))
    return (node._replace(name=name),) if holds_module else nodes
