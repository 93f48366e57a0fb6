"""PyTorch backend: one readable nn.Module class per model and per block, from the checked IR.

A model's forward is its graph written out statement by statement. Intermediate results reuse
a variable once the value it held is dead (``x = self.conv(x)``), as hand-written code does;
values the spec named keep their names. A block becomes a class whose constructor takes the
block's parameters; each use of it is a constructor call with that use's arguments.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable

from nndsl.backends.pyexpr import python, python_names
from nndsl.backends.pywriter import (
    LINE_LENGTH,
    Code,
    Construct,
    Repeated,
    assignment,
    call,
    comment,
    discarded,
    docstring,
    file_name,
    literal,
    statements,
)
from nndsl.expr import Const, Expr
from nndsl.ir import (
    BlockNode,
    Graph,
    LayerNode,
    ModelIR,
    OpNode,
    ParamNode,
    Program,
    ResidualNode,
    SeqNode,
    SubNetwork,
    layers_of,
    walk,
)
from nndsl.layers import REGISTRY as LAYER_REGISTRY
from nndsl.lowering import (
    NO_DEFAULT,
    BlockClass,
    DType,
    Layout,
    Names,
    Param,
    class_layout,
    counted,
    group_blocks,
    model_layout,
    node_at,
    pure,
    python_name,
    same,
    shared_layer,
    state_dtype,
    typed,
)
from nndsl.lowering import sub_networks as _sub_networks
from nndsl.operators import lookup as lookup_operator
from nndsl.statements import Assign
from nndsl.version import __version__


def class_names(program: Program, reserved: frozenset = frozenset()) -> dict[str, str]:
    """Model name -> emitted class name (a model called ``list`` or ``match`` becomes ``list_``, one
    called like a class the file defines for a layer, ``StochasticDepth``, ``StochasticDepth_``)."""
    classes = Names(set(reserved | HELPER_CLASSES))
    return {model.name: classes.take(model.name) for model in program.complete_models}


# ---------------------------------------------------------------- blocks: one class per shape of use


class _DType(Code):
    """A torch dtype as emitted code writes it (``torch.float64``)."""


def _state_dtype(node: LayerNode) -> _DType | None:
    """The dtype a layer holds its parameters and buffers in, as emitted code writes it."""
    dtype = state_dtype(node)
    return None if dtype is None else _DType(f"torch.{dtype}")


_DEFAULT_DTYPE = _DType("torch.float32")


def _value(value):
    """A value a use gives a class, as emitted code writes it (a dtype as ``torch.float64``)."""
    return _DType(f"torch.{value}") if isinstance(value, DType) else value


def _code(expr: Expr) -> Code:
    """An argument's expression as Python source."""
    return Code(literal(_value(expr.value))) if isinstance(expr, Const) else Code(python(expr))


def _annotation(values: list) -> str:
    kinds = {type(v) for v in values}
    if kinds <= {int}:
        return "int"
    if kinds <= {int, float}:
        return "float"
    for kind, text in ((bool, "bool"), (str, "str"), (tuple, "tuple"), (DType, "torch.dtype")):
        if kinds == {kind}:
            return text
    if kinds <= {type(None), SubNetwork}:
        return "nn.Module | None" if type(None) in kinds else "nn.Module"
    return "object"


def _param_annotation(param: Param) -> str:
    """A constructor parameter's annotation, from the values its uses give it."""
    if param.unset:
        return "None"
    if param.module and param.default is not NO_DEFAULT:
        return "nn.Module | None"
    annotation = _annotation(list(param.values))
    if param.default is None and annotation != "object":  # no use gives None, the default does
        annotation += " | None"
    return annotation


def _pyname(cls: BlockClass, name: str) -> str:
    """A constructor parameter's name in Python (the keyword-only ones are named so already)."""
    return name if name in cls.extra_values else python_name(name)


class _Program:
    """Emission state shared by every class of one generated file."""

    def __init__(self, program: Program, reserved: frozenset = frozenset(), share: bool = True):
        self.program = program
        classes = group_blocks(program, reserved, share)  # share=False: a class for each use of a block
        self.classes = classes.names
        self.model_classes = classes.models
        self.block_classes: list[BlockClass] = classes.blocks
        self.class_of = classes.of  # block use id -> its class
        self.value_names: dict[int, dict] = {}  # block use id -> the names of its model's values
        for model in program.complete_models:
            self.value_names.update({n.id: model.names for n in walk(model.graph) if isinstance(n, BlockNode)})
        #: id(BlockClass) -> its sub-network parameters and the attributes that hold them
        self.sub_attrs: dict[int, dict[str, str]] = {}
        self.pending: list[list[str]] = []  # classes for sub-networks, written before their user
        self.helpers: dict[str, str] = {}  # class name -> source, for layers torch.nn lacks
        #: each tie by the id of the layer whose weight it replaces; the layers in a block's body
        #: (their ties are written in the block's class)
        self.ties = {tie.layer: tie for model in program.complete_models for tie in model.ties}
        self.in_blocks = {
            layer.id
            for model in program.complete_models
            for node in walk(model.graph)
            if isinstance(node, BlockNode)
            for layer in layers_of(node.body)
        }

    # -- writing

    def module_of(self, graph: Graph, writer: _ClassWriter, path: tuple, hint: str, line: int) -> Construct:
        """The constructor expression of a sub-network argument: one module, an nn.Sequential, or
        (where a step has no module: a tensor method, an operation) a class of its own."""
        if len(graph.nodes) == 1 and isinstance(graph.nodes[0], SeqNode) and graph.nodes[0].param is not None:
            param = graph.nodes[0].param  # a sub-network parameter handed on as it is: the module itself
            held = Code(_pyname(writer.cls, param))
            writer.reads.add(held)
            return held
        if not pure(graph):
            return self._sub_network_class(graph, writer, path, hint, line)
        if len(graph.nodes) == 1:
            return writer.construct(graph.nodes[0], (*path, 0))
        return Construct("nn.Sequential", [writer.construct(n, (*path, i)) for i, n in enumerate(graph.nodes)], [])

    def _sub_network_class(self, graph: Graph, writer: _ClassWriter, path: tuple, hint: str, line: int) -> Construct:
        """A class whose forward is the sub-network; its constructor takes the names of the
        enclosing class that its arguments are computed from (none in a model)."""
        name = self.classes.take(hint)
        inner = _ClassWriter(self, writer.layout.classes[path], graph, {}, writer.slots, writer.cls)
        inner.sub_attrs, inner.is_sub_network = {}, True
        inner.add_graph(graph, path)  # paths as the enclosing class numbers them, for its slots
        params = []
        if writer.cls is not None:
            cls = writer.cls
            for param in cls.params:
                if _pyname(cls, param.name) in inner.reads:
                    params.append((_pyname(cls, param.name), _param_annotation(param)))
            for local, _ in cls.locals:
                if python_name(local) in inner.reads:
                    values = [use.constants.get(local) for use in cls.uses]
                    params.append((python_name(local), _annotation(values)))
        init = _init_signature([f"{p}: {a}" for p, a in params])
        lines = [
            _header(name),
            docstring(f"A sub-network written at line {line}."),
            "",
            init,
            "        super().__init__()",
        ]
        lines += [*inner.init, ""]
        lines += inner.forward(_signature(["x"], ["torch.Tensor"], "torch.Tensor"), graph.inputs, ["x"], False)
        self.pending.append(lines)
        writer.reads.update(p for p, _ in params)
        return Construct(name, [Code(p) for p, _ in params], [])

    def written_pending(self) -> list[str]:
        """The sub-network classes made while writing a class, to go before it."""
        out = [line for lines in self.pending for line in ["", "", *lines]]
        self.pending = []
        return out

    def block_call(self, node: BlockNode, writer: _ClassWriter, path: tuple) -> Construct:
        cls = self.class_of[node.id]
        subs = _sub_networks(node)
        positional, keywords = [], []
        for name, _, default, keyword_only, _, _ in cls.params:
            actual = _value(cls.arg_value(node, name))
            varies = False  # in a class: whether the uses of the enclosing class give other values
            if isinstance(actual, SubNetwork):
                hint = f"{cls.name}{name[:1].upper()}{name[1:]}"
                value = (
                    self.module_of(subs[name].body, writer, (*path, "sub", name), hint, node.line)
                    if name in subs
                    else None
                )
            else:
                value = writer.value((path, name), actual)
                varies = writer.slots is not None and value != literal(actual)
            if default is NO_DEFAULT and not keyword_only:
                positional.append(value)
            elif keyword_only or name in (node.sources or {}) or not same(actual, default) or varies:
                if varies or not (default is None and actual is None):
                    keywords.append((_pyname(cls, name), value))
        return Construct(cls.name, positional, keywords)

    def emit_block(self, cls: BlockClass) -> list[str]:
        first = cls.uses[0]
        layout = class_layout(self.class_of, cls)
        writer = _ClassWriter(self, layout, first.body, self.value_names.get(first.id, {}), cls.slots, cls)
        sub_attrs = writer.sub_attrs
        for name in cls.module_params:
            sub_attrs[name] = layout.names[("hold", name)]
            writer.init.append(f"        self.{sub_attrs[name]} = {_pyname(cls, name)}")
        writer.add_graph(first.body)
        for layer, attr in writer.layer_attrs.items():  # ``self.lm_head.weight = self.wte.weight``, once both exist
            tie = self.ties.get(layer)
            if tie is not None and tie.source in writer.layer_attrs:
                writer.init.append(f"        # line {tie.line}: {comment(tie.text)}")
                source = writer.layer_attrs[tie.source]
                writer.init.append(f"        self.{attr}.{tie.weight} = self.{source}.{tie.source_weight}")
        for name in set(sub_attrs) - set(layout.holds):  # held by the sub-network's class that applies it
            writer.init.remove(f"        self.{sub_attrs.pop(name)} = {_pyname(cls, name)}")
        params = []
        for param in cls.params:
            if param.keyword_only and "*" not in params:
                params.append("*")
            text = f"{_pyname(cls, param.name)}: {_param_annotation(param)}"
            params.append(text + ("" if param.default is NO_DEFAULT else f" = {literal(param.default)}"))
        init = _init_signature(params)
        where = f"block {first.block} (line {first.defined_line} of {file_name(first.defined_in)})."
        lines = [_header(cls.name), docstring(where), "", init, "        super().__init__()"]
        lines += [line for name, expr in cls.locals for line in assignment(python_name(name), python(expr), 8)]
        lines += writer.init + [""]
        names = Names({"self"})
        input_vars = [names.take(n) for n in first.input_names]
        signature = _signature(input_vars, ["torch.Tensor"] * len(input_vars), "torch.Tensor")
        return lines + writer.forward(signature, first.body.inputs, input_vars, shape_comments=False)

    def _ties(self, model: ModelIR) -> list[str]:
        """``self.lm_head.weight = self.wte.weight``: each tie, once both modules exist."""
        if not model.ties:
            return []
        from nndsl.lowering import lower

        prefixes = lower(self.program).prefixes
        lines = []
        for tie in model.ties:
            if tie.layer in self.in_blocks:  # written in the block's class
                continue
            target, source = _attribute(prefixes[tie.layer]), _attribute(prefixes[tie.source])
            lines.append(f"        # line {tie.line}: {comment(tie.text)}")
            lines.append(f"        self{target}.{tie.weight} = self{source}.{tie.source_weight}")
        return lines

    def emit_model(self, model: ModelIR) -> list[str]:
        writer = _ClassWriter(self, model_layout(self.class_of, model.graph), model.graph, model.names, None)
        writer.add_graph(model.graph)
        names = Names({"self"})
        input_vars = [names.take(n) for n in model.input_names]
        annotations = ["torch.Tensor"] * len(input_vars)
        outputs = len(model.graph.outputs)
        returns = "torch.Tensor" if outputs == 1 else f"tuple[{', '.join(['torch.Tensor'] * outputs)}]"
        if outputs > 2:  # the exact form would not fit on a line
            returns = "tuple[torch.Tensor, ...]"
        shapes = ", ".join(str(t) for t in model.input_types)
        result = ", ".join(str(t) for t in model.outputs)
        doc = docstring(f"{shapes} -> {result}, {model.param_count:,} parameters.")
        lines = [_header(self.model_classes[model.name]), doc, "", "    def __init__(self) -> None:"]
        lines += ["        super().__init__()", *writer.init, *self._ties(model), ""]
        signature = _signature(input_vars, annotations, returns)
        body = writer.forward(signature, model.graph.inputs, input_vars, shape_comments=True)
        inputs = [f"        # {comment(f'{n}: {t}')}" for n, t in zip(input_vars, model.input_types)]
        return lines + [body[0], *inputs, *body[1:]]


# ---------------------------------------------------------------- one class


class _ClassWriter:
    """The __init__ and forward of one class, from its graph."""

    def __init__(
        self, emitter: _Program, layout: Layout, graph: Graph, names, slots: dict | None, cls: BlockClass | None = None
    ):
        self.emitter = emitter
        self.cls = cls
        self.graph = graph
        self.names = names
        self.slots = slots  # None: a model, whose arguments are written as their values
        self.layout = layout  # every attribute's name
        self.forward_attrs: dict[object, str] = {}  # typed expression computed in __init__ -> its attribute
        self.init: list[str] = []
        self.reads: set[str] = set()  # the names of the enclosing constructor that ``init`` reads
        self.steps: list[tuple[tuple[int, ...], tuple[int, ...], Callable, str | None]] = []
        self.synthetic = -1  # value numbers for results the graph does not name (a shortcut's)
        #: sub-network parameter of the block -> the attribute holding it
        self.sub_attrs: dict[str, str] = emitter.sub_attrs.setdefault(id(cls), {}) if cls is not None else {}
        self.is_sub_network = False
        self.attributes: dict[int, str] = {}  # values forward reads as attributes (``self.cls_token``)
        self.layer_attrs: dict[int, str] = {}  # layer id -> the attribute holding its module

    def _synthetic(self, name: str) -> int:
        """A number for a value the graph does not have (a shortcut's result), and its name."""
        self.synthetic -= 1
        self.names = {**self.names, self.synthetic: name}
        return self.synthetic

    def value(self, key: tuple, value):
        if self.slots is None:
            return value
        self.reads.update(python_names(self.slots[key]))
        return _code(self.slots[key])

    # -- modules

    def construct(self, node, path: tuple) -> Construct:
        """The constructor call that builds one node's module."""
        if isinstance(node, LayerNode):
            positional, keywords = node.layer.emitted_params(node.args, node.given, node.n_positional)

            def arg(name):
                return self.value((path, name), node.layer.written_value(name, node.args[name]))

            keywords = [(a, arg(a)) for a in keywords]
            dtype = _state_dtype(node)
            if dtype is not None:  # weights in the dtype the checker says the layer computes in
                dtype = self.value((path, "dtype"), dtype)
                if dtype != _DEFAULT_DTYPE:
                    keywords.append(("dtype", dtype))
            name = node.layer.torch_name()
            if node.layer.helper is not None:  # a class of the generated file, not of torch.nn
                self.emitter.helpers[name] = node.layer.helper
                return Construct(name, [arg(a) for a in positional], keywords)
            return Construct(f"nn.{name}", [arg(a) for a in positional], keywords)
        if isinstance(node, BlockNode):
            return self.emitter.block_call(node, self, path)
        if self.cls is not None and counted(node, self.emitter.class_of):  # as many as the use's count
            unit = self.construct(node.body.nodes[0], (*path, "body", 0))
            return Construct("nn.Sequential", [Repeated(unit, self.value((path, "times"), node.times))], [])
        elements = []
        for i, inner in enumerate(node.body.nodes):
            built = self.construct(inner, (*path, "body", i))
            # a repetition inside a sequence is part of it: one nn.Sequential, not one in another
            elements += built.positional if isinstance(inner, SeqNode) else [built]
        return Construct("nn.Sequential", _collapsed(elements), [])

    def _module(self, node, path: tuple) -> str:
        attr = self.layout.names[("module", path)]
        self.init.append(f"        # line {node.line}: {comment(node.text)}")
        built = self.construct(node, path)
        self.init.extend(call(f"self.{attr} = ", built.func, built.positional, built.keywords, 8))
        return attr

    # -- forward steps: (values read, values written, lines given a variable namer, shape note)

    def add_graph(self, graph: Graph, path: tuple = ()) -> None:
        for index, node in enumerate(graph.nodes):
            self.add_node(node, (*path, index))

    def add_node(self, node, path: tuple) -> None:
        """The node's steps, by its kind: one ``_add_<tag>`` method each."""
        getattr(self, f"_add_{node.tag}")(node, path)

    def _add_layer(self, node: LayerNode, path: tuple) -> None:
        attr = self._module(node, path) if node.layer.has_module else None
        args = node.args if node.layer.has_module else self._forward_args(node, path)

        def emit(var, node=node, attr=attr, args=args):
            if node.unpacked:  # one run, every part of its result
                inputs = {name: var(value) for name, value in node.extra}
                dsts = tuple(var(value) for value in node.unpacked)
                return node.layer.unpack_call(attr, var(node.src), dsts, args, inputs, dict(node.forward))
            if node.extra or node.forward:  # a call with the forward's further inputs and flags
                inputs = {name: var(value) for name, value in node.extra}
                src, dst = var(node.src), var(node.dst)
                return node.layer.forward_call(attr, src, dst, args, node.selector, inputs, dict(node.forward))
            return node.layer.forward_statements(attr, var(node.src), var(node.dst), args, node.selector)

        self.steps.append((node.reads, node.writes, emit, str(node.output)))

    def _add_param(self, node: ParamNode, path: tuple) -> None:
        """A learned tensor: an ``nn.Parameter`` attribute made in ``__init__``, read in forward."""
        attr = self.layout.names[("param", path)]
        self.init.append(f"        # line {node.line}: {comment(node.text)}")
        sizes = [self.value((path, f"size{i}"), size) for i, size in enumerate(node.shape)]
        args = {}
        for name, value in node.args.items():
            written = self.value((path, name), value)
            # torch's default of normal_ or trunc_normal_ is left out, unless this class's uses differ in it
            default = _INIT_DEFAULTS.get(name) if node.init in ("normal", "trunc_normal") else None
            varies = self.slots is not None and written != literal(value)
            if varies or default is None or not same(value, default):
                args[name] = written
        dtype = None if node.type.dtype == "float32" else _DType(f"torch.{node.type.dtype}")
        initial = _initial_tensor(node.init, sizes, args, dtype)
        self.init.extend(call(f"self.{attr} = ", "nn.Parameter", [initial], [], 8))
        self.attributes[node.output] = f"self.{attr}"

    def _add_op(self, node: OpNode, path: tuple) -> None:
        note = ", ".join(str(t) for t in node.types)
        node = node._replace(args=self._op_args(node, path))
        self.steps.append((node.inputs, node.outputs, lambda var, node=node: _op_lines(node, var), note))

    def _op_args(self, node: OpNode, path: tuple):
        """An operation's arguments, those that differ between the uses of this class read from
        attributes __init__ computes (``x[..., : -self.chomp]``), as a tensor method's are."""
        if self.cls is None or not node.sources:
            return node.args
        codes, lines = {}, []
        for key in node.sources:
            source = self.cls.forward_sources.get((path, key))
            if source is None:
                continue
            self.reads.update(python_names(source))
            known = typed(source)
            if known not in self.forward_attrs:  # one attribute per value, however many read it
                self.forward_attrs[known] = self.layout.names[("value", known)]
                lines += assignment(f"self.{self.forward_attrs[known]}", _code(source), 8)
            codes[key] = Code(f"self.{self.forward_attrs[known]}")
        if lines:
            self.init += [f"        # line {node.line}: {comment(node.text)}", *lines]
        return lookup_operator(node.op).with_slots(node.args, codes) if codes else node.args

    def _add_block(self, node: BlockNode, path: tuple) -> None:
        attr = self._module(node, path)
        self.steps.append((node.inputs, (node.output,), _call_lines(f"self.{attr}", node), str(node.types[-1])))

    def _add_seq(self, node: SeqNode, path: tuple) -> None:
        if node.kind == "shared":
            self._add_shared(node, path)
        elif node.kind == "param" or pure(node.body):
            attr = self._sub_attr(node.param) if node.kind == "param" else self._module(node, path)
            self.steps.append(((node.input,), (node.output,), _call_lines(f"self.{attr}", node), str(node.type)))
        else:
            self.add_graph(node.body, (*path, "body"))

    def _add_shared(self, node: SeqNode, path: tuple) -> None:
        """A shared module: built in ``__init__`` at its first use, called at each use."""
        attr = self.layout.names[("module", path)]
        if not node.again:
            if shared_layer(node.body) is not None:
                self.layer_attrs[node.body.nodes[0].id] = attr
            self.init.append(f"        # line {node.line}: {comment(node.text)}")
            if shared_layer(node.body) is not None:  # as the module tree lays it out (Layout.shared_module)
                made = self.construct(node.body.nodes[0], (*path, "body", 0))
            elif not pure(node.body):
                hint = "".join(part[:1].upper() + part[1:] for part in node.name.split("_"))
                made = self.emitter._sub_network_class(node.body, self, (*path, "body"), hint, node.line)
            elif len(node.body.nodes) == 1 and node.body.nodes[0].tag != "seq":
                made = self.construct(node.body.nodes[0], (*path, "body", 0))
            else:
                made = self.construct(node, path)
            self.init.extend(call(f"self.{attr} = ", made.func, made.positional, made.keywords, 8))
        inner = shared_layer(node.body)
        if inner is not None and (
            inner.selector is not None or inner.layer.selectors or inner.extra or inner.forward or inner.unpacked
        ):
            # a use with a selector (LSTM's .h_n), of a module whose result is a tuple, or with further
            # inputs: the layer's own call of the shared module
            def emit(var, inner=inner):
                inputs = {name: var(value) for name, value in inner.extra}
                src, dst = var(inner.src), var(inner.dst)
                if inner.unpacked:
                    dsts = tuple(var(value) for value in inner.unpacked)
                    return inner.layer.unpack_call(attr, src, dsts, inner.args, inputs, dict(inner.forward))
                if inner.extra or inner.forward:
                    return inner.layer.forward_call(
                        attr, src, dst, inner.args, inner.selector, inputs, dict(inner.forward)
                    )
                return inner.layer.forward_statements(attr, src, dst, inner.args, inner.selector)

            self.steps.append((inner.reads, inner.writes, emit, str(node.type)))
            return
        self.steps.append(((node.input,), (node.output,), _call_lines(f"self.{attr}", node), str(node.type)))

    def _sub_attr(self, param: str) -> str:
        """The attribute holding a sub-network parameter of the block; a sub-network's class
        takes the module from the enclosing constructor and holds it itself."""
        if param not in self.sub_attrs and self.is_sub_network:
            self.sub_attrs[param] = self.layout.names[("hold", param)]
            self.init.insert(0, f"        self.{self.sub_attrs[param]} = {_pyname(self.cls, param)}")
            self.reads.add(_pyname(self.cls, param))
        return self.sub_attrs[param]

    def _forward_args(self, node: LayerNode, path: tuple):
        """A tensor method's arguments: its values, except those that differ between the uses of
        this class, which __init__ computes into attributes (``self.shape = (-1, T, heads, E // heads)``)."""
        keys = [(path, p.name) for p in node.layer.params]
        if self.cls is None or not any(key in self.cls.forward_sources for key in keys):
            return node.args
        args, lines = dict(node.args), []
        for key in keys:
            source = self.cls.forward_sources.get(key)
            if source is None:
                continue
            self.reads.update(python_names(source))
            known = typed(source)
            if known not in self.forward_attrs:  # one attribute per value, however many read it
                self.forward_attrs[known] = self.layout.names[("value", known)]
                lines += assignment(f"self.{self.forward_attrs[known]}", _code(source), 8)
            args[key[1]] = Code(f"self.{self.forward_attrs[known]}")
        if lines:
            self.init += [f"        # line {node.line}: {comment(node.text)}", *lines]
        return args

    def _shortcut_uses(self, node: ResidualNode, path: tuple) -> list[ResidualNode]:
        """The residual at ``path`` in every use of this class (just ``node`` in a model)."""
        if self.cls is None:
            return [node]
        # not those where the path passes through a conditional shortcut the use lacks
        return [n for n in (node_at(use.body, path) for use in self.cls.uses) if n is not None]

    def _add_residual(self, node: ResidualNode, path: tuple) -> None:
        self.add_graph(node.body, (*path, "body"))
        body_out = node.body.outputs[0]
        if node.residual_if:
            active = {u.active for u in self._shortcut_uses(node, path)}
            if active == {False}:  # no use adds: the body alone
                self.steps.append(((body_out,), (node.output,), None, "alias"))
                return
            if active == {True, False}:  # some uses add and some do not: decided in the constructor
                attr = self.layout.names[("use_residual", path)]
                condition = python(node.residual_if)
                self.init.append(f"        # line {node.line}: a residual where {comment(condition)}")
                self.init.extend(assignment(f"self.{attr}", condition, 8))
                self.reads.update(python_names(node.residual_if))

                def optional(var):
                    body, src = var(body_out), var(node.input)
                    return [f"{var(node.output)} = {body} + {src} if self.{attr} else {body}"]

                self.steps.append(((body_out, node.input), (node.output,), optional, str(node.type)))
                return
        uses = self._shortcut_uses(node, path) if node.shortcut_if else [node]
        having = [u for u in uses if u.shortcut is not None]
        if node.shortcut_if and having and len(having) < len(uses):
            # some uses have the projection and some do not: decide in the constructor, as people do
            attr = self.layout.names[("shortcut", path)]
            hint = f"{self.cls.name if self.cls else 'Model'}Shortcut"
            built = self.emitter.module_of(having[0].shortcut, self, (*path, "shortcut"), hint, node.line)
            condition = python(node.shortcut_if)
            self.init.append(f"        # line {node.line}: the shortcut, where {comment(condition)}")
            self.init.append(f"        self.{attr} = None")
            self.init.append(f"        if {condition}:")
            self.reads.update(python_names(node.shortcut_if))
            self.init.extend(call(f"self.{attr} = ", built.func, built.positional, built.keywords, 12))
            short = self._synthetic("identity")

            def conditional(var):
                src = var(node.input)
                return [f"{var(short)} = {src} if self.{attr} is None else self.{attr}({src})"]

            self.steps.append(((node.input,), (short,), conditional, None))
            node = node._replace(shortcut=None, shortcut_param=None)
            self._add_sum(node, body_out, short)
            return
        if node.shortcut_if and having:
            node = node._replace(shortcut=having[0].shortcut)
        if node.shortcut_param:
            short = self._synthetic("identity")
            param = self._sub_attr(node.shortcut_param)

            def shortcut(var):
                src = var(node.input)
                return [f"{var(short)} = {src} if self.{param} is None else self.{param}({src})"]

            self.steps.append(((node.input,), (short,), shortcut, None))
        elif node.shortcut is not None:
            self.add_graph(node.shortcut, (*path, "shortcut"))
            short = node.shortcut.outputs[0]
        else:
            short = node.input
        self._add_sum(node, body_out, short)

    def _add_sum(self, node: ResidualNode, body_out: int, short: int) -> None:
        def add(var):
            return [f"{var(node.output)} = {var(body_out)} + {var(short)}"]

        self.steps.append(((body_out, short), (node.output,), add, str(node.type)))

    # -- variables

    def forward(self, signature: str, input_ids, input_vars: list[str], shape_comments: bool) -> list[str]:
        """The forward method: each step's lines, variables reused once the value they hold is dead."""
        last_use: dict[int, int] = {}
        for index, (reads, _, _, _) in enumerate(self.steps):
            for value in reads:
                last_use[value] = index
        for value in self.graph.outputs:
            last_use[value] = len(self.steps)
        holder: dict[str, int] = dict(zip(input_vars, input_ids))  # variable -> the value it holds
        var_of: dict[int, str] = dict(zip(input_ids, input_vars))
        var_of.update(self.attributes)
        local = Names({"self", "h_n", "c_n", "_", *input_vars})
        spec_names = set(input_vars) - {"x"}

        def free(name: str, index: int) -> bool:
            return last_use.get(holder[name], -1) <= index

        lines: list[str] = []
        for index, (reads, writes, emit, note) in enumerate(self.steps):
            if note == "alias":  # the same value under another number: no statement
                var_of[writes[0]] = var_of[reads[0]]
                holder[var_of[reads[0]]] = writes[0]
                continue
            claimed: set[str] = set()
            dead = len(writes) == 1 and writes[0] not in last_use  # computed, never read (warned W305)
            for value in writes:
                if value not in last_use:  # a dead value, or a piece of a split nothing reads
                    var_of[value] = "_"
                    continue
                wanted = self.names.get(value)
                # a variable the step reads, unless it holds an input the spec named: ``tokens`` is
                # not reused for a mask made from its size
                read = (
                    var_of[r] for r in reads if r in var_of and r not in self.attributes and var_of[r] not in spec_names
                )
                candidates = [wanted] if wanted else ["x", *read, "out"]
                choice = None
                for name in candidates:
                    if name in claimed:
                        continue
                    if name in holder and free(name, index):
                        choice = name
                        break
                    if name not in holder and name not in local.taken:
                        local.taken.add(name)
                        choice = name
                        break
                if choice is None:
                    choice = local.take(wanted or "x")
                claimed.add(choice)
                var_of[value] = choice
                holder[choice] = value
            body = emit(var_of.__getitem__)
            if dead:  # still run, as the spec says, but bind nothing
                body[-1] = discarded(body[-1])
            lines += statements(body, 8, note if shape_comments else None)
        outputs = [var_of[v] for v in self.graph.outputs]
        if len(outputs) == 1 or len(f"        return {', '.join(outputs)}") <= LINE_LENGTH:
            lines.append(f"        return {', '.join(outputs)}")
        else:  # as ruff lays out a long tuple: one value a line
            lines += ["        return (", *(f"            {o}," for o in outputs), "        )"]
        return [signature, *lines]


#: torch's defaults of the initialisations' arguments, which emitted code leaves out
_INIT_DEFAULTS = {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0}


#: how many equal modules in a row a repetition writes as one generator, not one by one
REPEAT_AS_GENERATOR = 3


def _collapsed(elements: list) -> list:
    """A repetition's modules with each run of equal constructor calls written once, as a
    generator (``*(nn.TransformerEncoderLayer(...) for _ in range(12))``): a run of
    ``REPEAT_AS_GENERATOR`` or more, or of two calls too long for a line each. The modules are
    built in the same order, so the nn.Sequential numbers (and initialises) them as before."""
    out: list = []
    i = 0
    while i < len(elements):
        item, j, text = elements[i], i + 1, ""
        if type(item) is Construct:
            text = item.flat()
            while j < len(elements) and type(elements[j]) is Construct and elements[j].flat() == text:
                j += 1
        run = j - i
        if run >= REPEAT_AS_GENERATOR or run == 2 and len(text) > LINE_LENGTH - 12:
            out.append(Repeated(item, run))
        else:
            out += elements[i:j]
        i = j
    return out


def _initial_tensor(init: str, sizes: list, args: dict, dtype: Code | None = None) -> Construct | Code:
    """The tensor a learned tensor starts as, written as people do: ``torch.zeros(1, 1, 768)``,
    ``torch.full((C, 1, 1), 1e-06)``, ``torch.empty(1, 197, 768).normal_(std=0.02)``,
    ``nn.init.trunc_normal_(torch.empty(169, 3), std=0.02)``."""
    dims = sizes or [()]  # a 0-D tensor: torch.zeros(())
    typed = [("dtype", dtype)] if dtype is not None else []
    if init in ("zeros", "ones"):
        return Construct(f"torch.{init}", dims, typed)
    if init == "constant":
        return Construct("torch.full", [tuple(sizes), args["value"]], typed)
    given = list(args.items())
    empty = Construct("torch.empty", dims, typed)
    if init == "trunc_normal":
        return Construct("nn.init.trunc_normal_", [empty], given)
    if init == "normal":
        return Code(Construct(f"{empty.flat()}.normal_", [], given).flat())
    return Code(Construct(f"{empty.flat()}.uniform_", [args["a"], args["b"]], []).flat())


def _call_lines(func: str, node):
    inputs = node.inputs if isinstance(node, BlockNode) else (node.input,)

    def emit(var):
        return [f"{var(node.output)} = {func}({', '.join(var(i) for i in inputs)})"]

    return emit


def _op_lines(node: OpNode, var) -> list[Assign]:
    return lookup_operator(node.op).forward_statements(
        node, [var(i) for i in node.inputs], [var(o) for o in node.outputs]
    )


# ---------------------------------------------------------------- the file


def _signature(var_names: list[str], annotations: list[str], returns: str) -> str:
    return _def_line("forward", [f"{n}: {a}" for n, a in zip(var_names, annotations)], returns)


def _init_signature(params: list[str]) -> str:
    return _def_line("__init__", params, "None")


def _def_line(name: str, params: list[str], returns: str) -> str:
    """``def name(self, ...) -> returns:`` laid out as ruff formats it: one line, the parameters on
    a line of their own, or one parameter a line."""
    line = f"    def {name}(self{''.join(', ' + p for p in params)}) -> {returns}:"
    if len(line) <= LINE_LENGTH:
        return line
    inner = f"        self, {', '.join(params)}"
    if len(inner) <= LINE_LENGTH:
        return f"    def {name}(\n{inner}\n    ) -> {returns}:"
    return f"    def {name}(\n" + "\n".join(f"        {p}," for p in ["self", *params]) + f"\n    ) -> {returns}:"


def _attribute(prefix: str) -> str:
    """A module's state_dict prefix as an attribute path: ``tower.3`` -> ``.tower[3]``."""
    return "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in prefix.split("."))


def _header(class_name: str) -> str:
    header = f"class {class_name}(nn.Module):"
    return header if len(header) <= LINE_LENGTH else f"class {class_name}(\n    nn.Module\n):"


def emit_program(program: Program, share: bool = True) -> str:
    """The whole generated file: block classes (inner ones first), then one class per model.

    Uses of a block that differ only in values share one class; ``share=False`` gives each use
    a class of its own (the same model, written longhand)."""
    # the spec's file name alone (no directory: nothing leaks, outputs agree between checkouts)
    out = [
        '"""PyTorch modules generated by nndsl. Edit the spec and recompile rather than this file."""',
        "",
        f"# generated by nndsl {__version__} from {comment(file_name(program.source.name))}",
    ]
    classes = emit_classes(program, share=share)
    if program.complete_models:  # a file of blocks alone has nothing to build until a model uses them
        out += ["", "import torch", "from torch import nn"]
        if any(
            re.search(r"(?<![\w.])F\.", line) for line in classes
        ):  # functional calls: F.scaled_dot_product_attention
            out.append("from torch.nn import functional as F")
    out += classes
    return "\n".join(out) + "\n"


def emit_classes(program: Program, reserved: frozenset = frozenset(), share: bool = True) -> list[str]:
    """The lines of every class, each after two blank lines: block classes (inner ones first),
    then one class per model. Their imports are ``torch`` and ``from torch import nn``; no class
    takes a name in ``reserved``."""
    emitter = _Program(program, reserved | HELPER_CLASSES, share)
    out: list[str] = []
    for cls in emitter.block_classes:
        lines = emitter.emit_block(cls)
        out += [*emitter.written_pending(), "", "", *lines]
    for model in program.complete_models:
        lines = emitter.emit_model(model)
        out += [*emitter.written_pending(), "", "", *lines]
    helpers = [line for name in sorted(emitter.helpers) for line in ("", "", *emitter.helpers[name].splitlines())]
    return helpers + out


#: the class names a generated file may define for layers torch.nn lacks (kept from specs' classes)
HELPER_CLASSES = frozenset(layer.torch_name() for layer in LAYER_REGISTRY.values() if layer.helper is not None)


def load_module(program: Program) -> dict:
    """Execute the generated source in a fresh module namespace and return it (imports torch)."""
    source = emit_program(program)
    module = types.ModuleType(f"nndsl_generated_{abs(hash(program.source.name))}")
    module.__file__ = f"<nndsl {program.source.name}>"
    code = compile(source, module.__file__, "exec")
    exec(code, module.__dict__)  # the source is our own generated code, built from checked literals
    return module.__dict__
