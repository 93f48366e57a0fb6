"""PyTorch backend: one readable nn.Module class per model and per block, from the checked IR.

A model's forward is its graph written out statement by statement. Intermediate results reuse
a variable once the value it held is dead (``x = self.conv(x)``), as hand-written code does;
values the spec named keep their names. A block becomes a class whose constructor takes the
block's parameters; each use of it is a constructor call with that use's arguments.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable

from nndsl.backends.pyexpr import python, python_names
from nndsl.backends.pysource import python_name
from nndsl.backends.pywriter import (
    LINE_LENGTH,
    Code,
    Construct,
    assignment,
    call,
    comment,
    discarded,
    docstring,
    file_name,
    literal,
    source,
    statements,
)
from nndsl.expr import free_names
from nndsl.ir import (
    BlockNode,
    Graph,
    LayerNode,
    ModelIR,
    OpNode,
    Program,
    ResidualNode,
    SeqNode,
    SubNetwork,
    walk,
)
from nndsl.lowering import BlockClass, Grouping, Layout, Names, class_layout, in_scope, model_layout, node_at, pure
from nndsl.lowering import sub_networks as _sub_networks
from nndsl.operators import lookup as lookup_operator
from nndsl.statements import Assign
from nndsl.version import __version__


def class_names(program: Program, reserved: frozenset = frozenset()) -> dict[str, str]:
    """Model name -> emitted class name (a model called ``list`` or ``match`` becomes ``list_``)."""
    classes = Names(set(reserved))
    return {model.name: classes.take(model.name) for model in program.complete_models}


# ---------------------------------------------------------------- blocks: one class per shape of use

_NO_DEFAULT = object()


class _BlockClass:
    """The emitted class for a group of a block's uses that share one structure."""

    def __init__(self, name: str, uses: list[BlockNode]):
        self.name = name
        self.uses = uses
        #: constructor parameters in order: (name, annotation, default or _NO_DEFAULT, keyword-only)
        self.params: list[tuple[str, str, object, bool]] = []
        #: slot key -> the source every use shares
        self.slots: dict[tuple, Code] = {}
        #: keyword-only parameter -> its value in each use (by id of the use's node)
        self.extra_values: dict[str, dict[int, object]] = {}
        #: body constants __init__ computes first: (the spec's name, its expression)
        self.locals: list[tuple[str, object]] = []
        #: sub-network parameter -> the attribute that holds it (``self.shortcut``)
        self.sub_attrs: dict[str, str] = {}
        #: slot key of a tensor method's argument that differs between uses -> the source that
        #: __init__ computes it from (``(-1, T, heads, E // heads)``): forward reads it as an attribute
        self.forward_sources: dict[tuple, str] = {}
        #: slot key -> the Python names its source (in ``slots`` or ``forward_sources``) reads
        self.reads: dict[tuple, set[str]] = {}

    def pyname(self, name: str) -> str:
        """A constructor parameter's name in Python (the keyword-only ones are named so already)."""
        return name if name in self.extra_values else python_name(name)

    def arg_value(self, use: BlockNode, name: str):
        """The value of constructor parameter (or body constant) ``name`` in one use."""
        if name in self.extra_values:
            return self.extra_values[name].get(id(use))
        if name in use.dims:
            return use.dims[name]
        return use.args[name] if name in use.args else use.constants.get(name)


class _DType(Code):
    """A torch dtype as emitted code writes it (``torch.float64``)."""


_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _state_dtype(node: LayerNode) -> _DType | None:
    """The dtype of a layer's parameters and buffers: the floating dtype it computes in (its
    output's; an Embedding's output, float32, for integer input), as the checker typed it.
    None for a layer that holds neither."""
    if not node.layer.has_module or not (node.params or node.args.get("track_running_stats")):
        return None
    return _DType(f"torch.{node.output.dtype if node.output.dtype in _FLOATS else 'float32'}")


_DEFAULT_DTYPE = _DType("torch.float32")


def _is_param(graph: Graph | None) -> bool:
    """A graph that applies one sub-network parameter of the block, as it is."""
    return (
        graph is not None
        and len(graph.nodes) == 1
        and isinstance(graph.nodes[0], SeqNode)
        and graph.nodes[0].param is not None
    )


def _annotation(values: list) -> str:
    kinds = {type(v) for v in values}
    if kinds <= {int}:
        return "int"
    if kinds <= {int, float}:
        return "float"
    for kind, text in ((bool, "bool"), (str, "str"), (tuple, "tuple"), (_DType, "torch.dtype")):
        if kinds == {kind}:
            return text
    if kinds <= {type(None), SubNetwork}:
        return "nn.Module | None" if type(None) in kinds else "nn.Module"
    return "object"


def _depth(node: BlockNode) -> int:
    return 1 + max((_depth(n) for n in walk(node.body, into_blocks=False) if isinstance(n, BlockNode)), default=0)


class _Program:
    """Emission state shared by every class of one generated file."""

    def __init__(self, program: Program, reserved: frozenset = frozenset(), share: bool = True):
        self.program = program
        self.share = share  # False: a class for each use of a block (a reference to test sharing against)
        self.classes = Names(set(reserved))
        self.model_classes = {m.name: self.classes.take(m.name) for m in program.complete_models}
        self.block_class: dict[int, _BlockClass] = {}  # id(BlockNode) -> its class
        self.block_classes: list[_BlockClass] = []
        self.value_names: dict[int, dict] = {}  # id(BlockNode) -> the names of its model's values
        self.class_writers: dict[int, _ClassWriter] = {}  # id(_BlockClass) -> the writer of its body
        self.pending: list[list[str]] = []  # classes for sub-networks, written before their user
        self._group_blocks()

    # -- grouping uses into classes

    def _group_blocks(self) -> None:
        uses: dict[tuple[str, str], list[BlockNode]] = {}
        for model in self.program.complete_models:
            for node in walk(model.graph):
                if isinstance(node, BlockNode):
                    uses.setdefault((node.defined_in, node.block), []).append(node)
                    self.value_names[id(node)] = model.names
        # inner blocks first: an outer block's structure names its inner blocks' classes (the deepest
        # use counts: an inner block may be used only where a use has a conditional shortcut)
        taken: dict[str, int] = {}
        for (_, block), nodes in sorted(uses.items(), key=lambda item: max(map(_depth, item[1]))):
            # uses of one structure, and (None where a use lacks it) the structure of each conditional
            # shortcut: a use joins the first group whose shortcuts agree with its own where both have them
            groups: dict[object, list[tuple[list, list[BlockNode]]]] = {}
            for node in nodes:
                shortcuts: list[str | None] = []
                key = (
                    f"{self._structure(node.body, shortcuts)} {sorted((k, python(v)) for k, v in node.locals.items())}"
                    if self.share
                    else id(node)
                )
                for known, members in groups.setdefault(key, []):
                    if all(a is None or b is None or a == b for a, b in zip(known, shortcuts)):
                        known[:] = [b if a is None else a for a, b in zip(known, shortcuts)]
                        members.append(node)
                        break
                else:
                    groups[key].append((shortcuts, [node]))
            for members in (members for group in groups.values() for _, members in group):
                taken[block] = taken.get(block, 0) + 1
                cls = _BlockClass(self.classes.take(block if taken[block] == 1 else f"{block}{taken[block]}"), members)
                for member in members:
                    self.block_class[id(member)] = cls
                self._resolve(cls)
                self.block_classes.append(cls)

    def _structure(self, graph: Graph, shortcuts: list | None = None) -> str:
        """What makes two uses of a block one class: nodes, data flow, layer classes, arguments written.

        Values are numbered in order of appearance, so that uses numbered apart compare equal.
        A conditional shortcut's structure goes to ``shortcuts`` (None where this use lacks it), for
        uses that lack it to share a class with those that have it; without ``shortcuts`` it is part
        of the string.
        """
        numbers: dict[int, int] = {}

        def rel(values) -> str:
            return ",".join(str(numbers.setdefault(v, len(numbers))) for v in values)

        rel(graph.inputs)
        if shortcuts is not None:
            return self._structure_of(graph, rel, shortcuts)
        found: list[str | None] = []
        return f"{self._structure_of(graph, rel, found)} {found}"

    def _structure_of(self, graph: Graph, rel, shortcuts: list) -> str:
        parts = []
        for node in graph.nodes:
            if isinstance(node, LayerNode):
                positional, keywords = node.layer.emitted_params(node.args, node.given, node.n_positional)
                # a module's forward may depend on its arguments (an LSTM's batch_first); a tensor
                # method's arguments are slots, written as values or attributes
                written = (
                    "; ".join(map(source, node.layer.forward_statements("m", "a", "b", node.args, node.selector)))
                    if node.layer.has_module
                    else ""
                )
                parts.append(
                    f"L {node.layer.__name__}.{node.selector} {rel([node.src])}>{rel([node.dst])}"
                    f" ({','.join(positional)};{','.join(keywords)}) {written}"
                )
            elif isinstance(node, OpNode):
                parts.append(f"O {node.op} {rel(node.inputs)}>{rel(node.outputs)} {dict(node.args)} {node.scalar!r}")
            elif isinstance(node, BlockNode):
                inner = self.block_class[id(node)]
                subs = {name: self._structure(sub.body, shortcuts) for name, sub in sorted(_sub_networks(node).items())}
                parts.append(f"B {inner.name} {rel(node.inputs)}>{rel([node.output])} {subs}")
            elif isinstance(node, ResidualNode):
                body = self._structure_of(node.body, rel, shortcuts)
                if node.shortcut_if and _is_param(node.shortcut):  # the module a use was given: a class each
                    shortcut = f"if {python(node.shortcut_if)} param {node.shortcut.nodes[0].param}"
                    shortcuts.append(None)
                elif node.shortcut_if:  # uses differ in whether they have it: one class decides at run time
                    shortcut = f"if {python(node.shortcut_if)}"
                    shortcuts.append(None if node.shortcut is None else self._structure(node.shortcut))
                elif node.shortcut_param:
                    shortcut = f"param {node.shortcut_param}"
                else:
                    shortcut = self._structure_of(node.shortcut, rel, shortcuts) if node.shortcut else "identity"
                optional = f" if {python(node.residual_if)}" if node.residual_if else ""  # `active` may differ per use
                parts.append(f"R{optional} [{body} | {shortcut}] {rel([node.input])}>{rel([node.output])}")
            elif isinstance(node, SeqNode):
                inner = node.param if node.kind == "param" else self._structure_of(node.body, rel, shortcuts)
                parts.append(f"S {node.kind} [{inner}] {rel([node.input])}>{rel([node.output])}")
        return f"{'; '.join(parts)} => {rel(graph.outputs)}"

    def slots(self, graph: Graph, path: tuple = ()) -> list[tuple[tuple, str | None, object]]:
        """Every constructor argument built inside a class body: (key, source as written, value)."""
        out = []
        for index, node in enumerate(graph.nodes):
            here = (*path, index)
            if isinstance(node, LayerNode) and node.layer.has_module:
                positional, keywords = node.layer.emitted_params(node.args, node.given, node.n_positional)
                for arg in positional + keywords:
                    written = (node.sources or {}).get(arg)
                    out.append(((here, arg), written, node.layer.written_value(arg, node.args[arg])))
                if _state_dtype(node) is not None:  # uses may differ in the dtype they compute in
                    out.append(((here, "dtype"), None, _state_dtype(node)))
            elif isinstance(node, LayerNode):  # a tensor method: its arguments are written in forward
                for arg in (p.name for p in node.layer.params):
                    out.append(((here, arg), (node.sources or {}).get(arg), node.args[arg]))
            elif isinstance(node, BlockNode):
                inner = self.block_class[id(node)]
                subs = _sub_networks(node)
                for name, *_ in inner.params:
                    value = inner.arg_value(node, name)
                    if isinstance(value, SubNetwork):
                        if name in subs:
                            out += self.slots(subs[name].body, (*here, "sub", name))
                        continue
                    out.append(((here, name), (node.sources or {}).get(name), value))
            elif isinstance(node, ResidualNode):
                out += self.slots(node.body, (*here, "body"))
                if node.shortcut is not None and not node.shortcut_param:
                    out += self.slots(node.shortcut, (*here, "shortcut"))
            elif isinstance(node, SeqNode) and node.kind != "param":
                out += self.slots(node.body, (*here, "body"))
        return out

    def _resolve(self, cls: _BlockClass) -> None:
        """Constructor parameters, and the source of every argument built inside the class."""
        first = cls.uses[0]
        dims, params = list(first.dims), list(first.args)
        seen: dict[tuple, list] = {}
        for use in cls.uses:
            for key, written, value in self.slots(use.body):
                seen.setdefault(key, []).append((written, value, use))
        referenced: set[str] = set()
        extra: list[tuple[str, tuple]] = []
        for key, rows in seen.items():
            in_forward = _in_forward(rows[0][2], key)
            texts = {None if written is None else python(written) for written, _, _ in rows}
            values = [value for _, value, _ in rows]
            same = all(v == values[0] and type(v) is type(values[0]) for v in values)
            if in_forward and same:  # the same in every use: forward writes the value itself
                continue
            if len(texts) == 1 and None not in texts:
                text = next(iter(texts))
                if in_forward:
                    cls.forward_sources[key] = text
                else:
                    cls.slots[key] = Code(text)
                referenced.update(free_names(rows[0][0]))
                cls.reads[key] = python_names(rows[0][0])
                continue
            if same:
                cls.slots[key] = Code(literal(values[0]))
                continue
            match = next(
                (
                    name
                    for name in dims + params + list(first.locals)
                    if all(_same(cls.arg_value(use, name), value) for _, value, use in rows)
                ),
                None,
            )
            if match is not None:
                if in_forward:
                    cls.forward_sources[key] = python_name(match)
                else:
                    cls.slots[key] = Code(python_name(match))
                referenced.add(match)
                cls.reads[key] = {python_name(match)}
                continue
            name = "dtype" if key[1] == "dtype" else f"{key[0][-1] if isinstance(key[0][-1], str) else 'arg'}_{key[1]}"
            extra.append((name, key))
        # a condition decided in the constructor (or a sub-network's), in any use: some lack a shortcut
        for node in (node for use in cls.uses for node in in_scope(use.body)):
            if isinstance(node, ResidualNode):
                for condition in (node.shortcut_if, node.residual_if):
                    if condition:
                        referenced.update(free_names(condition))
        # body constants the arguments use become locals of __init__, computed from parameters
        pending = [n for n in first.locals if n in referenced]
        while pending:
            name = pending.pop()
            for word in free_names(first.locals[name]):
                if word not in referenced:
                    referenced.add(word)
                    if word in first.locals:
                        pending.append(word)
        cls.locals = [(n, first.locals[n]) for n in first.locals if n in referenced]
        for name in dims:
            if name in referenced:
                cls.params.append((name, _annotation([u.dims[name] for u in cls.uses]), _NO_DEFAULT, False))
        applied = {  # the sub-network parameters: those the body applies (where a use gives one)
            n.param if isinstance(n, SeqNode) else n.shortcut_param
            for use in cls.uses
            for n in in_scope(use.body)
            if (isinstance(n, SeqNode) and n.kind == "param") or isinstance(n, ResidualNode)
        }
        for name in params:
            values = [u.args[name] for u in cls.uses]
            default = first.defaults.get(name, _NO_DEFAULT)
            annotation = _annotation(values)
            if name not in applied and all(v is None for v in values):  # None in every use: not a module
                annotation = "None"
            elif annotation.startswith("nn.Module") and default is not _NO_DEFAULT:
                annotation, default = "nn.Module | None", None
            elif default is None and annotation != "object":  # no use gives None, the default does
                annotation += " | None"
            cls.params.append((name, annotation, default, False))
        names = Names({cls.pyname(p[0]) for p in cls.params} | {python_name(name) for name, _ in cls.locals})
        for wanted, key in extra:
            rows = seen[key]  # a conditional shortcut's arguments exist in some uses only
            values = {id(use): value for _, value, use in rows}
            # one parameter for the slots whose values agree in every use (a dtype, mostly)
            name = next((n for n, v in cls.extra_values.items() if _same_values(v, values)), None)
            if name is None:
                name = names.take(wanted)
                cls.params.append((name, _annotation([value for _, value, _ in rows]), _NO_DEFAULT, True))
                cls.extra_values[name] = values
            if _in_forward(rows[0][2], key):
                cls.forward_sources[key] = name
            else:
                cls.slots[key] = Code(name)
            cls.reads[key] = {name}

    # -- writing

    def module_of(self, graph: Graph, writer: _ClassWriter, path: tuple, hint: str, line: int) -> Construct:
        """The constructor expression of a sub-network argument: one module, an nn.Sequential, or
        (where a step has no module: a tensor method, an operation) a class of its own."""
        if len(graph.nodes) == 1 and isinstance(graph.nodes[0], SeqNode) and graph.nodes[0].param is not None:
            param = graph.nodes[0].param  # a sub-network parameter handed on as it is: the module itself
            held = Code(writer.cls.pyname(param))
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
            for param, annotation, _, _ in cls.params:
                if cls.pyname(param) in inner.reads:
                    params.append((cls.pyname(param), annotation))
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

    @functools.cached_property
    def grouping(self) -> Grouping:
        """Block use id -> its class, as the lowering reads it (which names every attribute)."""
        out = {}
        for cls in self.block_classes:
            modules = tuple(name for name, annotation, _, _ in cls.params if annotation.startswith("nn.Module"))
            info = BlockClass(cls.name, tuple(cls.uses), modules, dict(cls.forward_sources))
            out.update({use.id: info for use in cls.uses})
        return out

    def written_pending(self) -> list[str]:
        """The sub-network classes made while writing a class, to go before it."""
        out = [line for lines in self.pending for line in ["", "", *lines]]
        self.pending = []
        return out

    def block_call(self, node: BlockNode, writer: _ClassWriter, path: tuple) -> Construct:
        cls = self.block_class[id(node)]
        subs = _sub_networks(node)
        positional, keywords = [], []
        for name, _, default, keyword_only in cls.params:
            actual = cls.arg_value(node, name)
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
            if default is _NO_DEFAULT and not keyword_only:
                positional.append(value)
            elif keyword_only or name in (node.sources or {}) or not _same(actual, default) or varies:
                if varies or not (default is None and actual is None):
                    keywords.append((cls.pyname(name), value))
        return Construct(cls.name, positional, keywords)

    def emit_block(self, cls: _BlockClass) -> list[str]:
        first = cls.uses[0]
        layout = class_layout(self.grouping, self.grouping[first.id])
        writer = _ClassWriter(self, layout, first.body, self.value_names.get(id(first), {}), cls.slots, cls)
        self.class_writers[id(cls)] = writer
        for name, annotation, _, _ in cls.params:
            if annotation.startswith("nn.Module"):
                cls.sub_attrs[name] = layout.names[("hold", name)]
                writer.init.append(f"        self.{cls.sub_attrs[name]} = {cls.pyname(name)}")
        writer.add_graph(first.body)
        for name in set(cls.sub_attrs) - set(layout.holds):  # held by the sub-network's class that applies it
            writer.init.remove(f"        self.{cls.sub_attrs.pop(name)} = {cls.pyname(name)}")
        params = []
        for name, annotation, default, keyword_only in cls.params:
            if keyword_only and "*" not in params:
                params.append("*")
            text = f"{cls.pyname(name)}: {annotation}"
            params.append(text + ("" if default is _NO_DEFAULT else f" = {literal(default)}"))
        init = _init_signature(params)
        where = f"block {first.block} (line {first.defined_line} of {file_name(first.defined_in)})."
        lines = [_header(cls.name), docstring(where), "", init, "        super().__init__()"]
        lines += [line for name, expr in cls.locals for line in assignment(python_name(name), python(expr), 8)]
        lines += writer.init + [""]
        names = Names({"self"})
        input_vars = [names.take(n) for n in first.input_names]
        signature = _signature(input_vars, ["torch.Tensor"] * len(input_vars), "torch.Tensor")
        return lines + writer.forward(signature, first.body.inputs, input_vars, shape_comments=False)

    def emit_model(self, model: ModelIR) -> list[str]:
        writer = _ClassWriter(self, model_layout(self.grouping, model.graph), model.graph, model.names, None)
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
        lines += ["        super().__init__()", *writer.init, ""]
        signature = _signature(input_vars, annotations, returns)
        body = writer.forward(signature, model.graph.inputs, input_vars, shape_comments=True)
        inputs = [f"        # {comment(f'{n}: {t}')}" for n, t in zip(input_vars, model.input_types)]
        return lines + [body[0], *inputs, *body[1:]]


def _in_forward(use: BlockNode, key: tuple) -> bool:
    """Whether a slot is an argument of a tensor method (written in forward, not in __init__)."""
    node = node_at(use.body, key[0])
    return isinstance(node, LayerNode) and not node.layer.has_module


def _same(a, b) -> bool:
    return a == b and type(a) is type(b)


def _same_values(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- one class


class _ClassWriter:
    """The __init__ and forward of one class, from its graph."""

    def __init__(
        self, emitter: _Program, layout: Layout, graph: Graph, names, slots: dict | None, cls: _BlockClass | None = None
    ):
        self.emitter = emitter
        self.cls = cls
        self.graph = graph
        self.names = names
        self.slots = slots  # None: a model, whose arguments are written as their values
        self.layout = layout  # every attribute's name
        self.forward_attrs: dict[str, str] = {}  # source computed in __init__ -> its attribute
        self.init: list[str] = []
        self.reads: set[str] = set()  # the names of the enclosing constructor that ``init`` reads
        self.steps: list[tuple[tuple[int, ...], tuple[int, ...], Callable, str | None]] = []
        self.synthetic = -1  # value numbers for results the graph does not name (a shortcut's)
        #: sub-network parameter of the block -> the attribute holding it
        self.sub_attrs: dict[str, str] = cls.sub_attrs if cls is not None else {}
        self.is_sub_network = False

    def _synthetic(self, name: str) -> int:
        """A number for a value the graph does not have (a shortcut's result), and its name."""
        self.synthetic -= 1
        self.names = {**self.names, self.synthetic: name}
        return self.synthetic

    def value(self, key: tuple, value):
        if self.slots is None:
            return value
        if self.cls is not None:
            self.reads.update(self.cls.reads.get(key, ()))
        return self.slots[key]

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
            return Construct(f"nn.{node.layer.torch_name()}", [arg(a) for a in positional], keywords)
        if isinstance(node, BlockNode):
            return self.emitter.block_call(node, self, path)
        elements = []
        for i, inner in enumerate(node.body.nodes):
            built = self.construct(inner, (*path, "body", i))
            # a repetition inside a sequence is part of it: one nn.Sequential, not one in another
            elements += built.positional if isinstance(inner, SeqNode) else [built]
        return Construct("nn.Sequential", elements, [])

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
        if isinstance(node, LayerNode):
            attr = self._module(node, path) if node.layer.has_module else None
            args = node.args if node.layer.has_module else self._forward_args(node, path)

            def emit(var, node=node, attr=attr, args=args):
                return node.layer.forward_statements(attr, var(node.src), var(node.dst), args, node.selector)

            self.steps.append(((node.src,), (node.dst,), emit, str(node.output)))
        elif isinstance(node, OpNode):
            note = ", ".join(str(t) for t in node.types)
            self.steps.append((node.inputs, node.outputs, lambda var, node=node: _op_lines(node, var), note))
        elif isinstance(node, BlockNode):
            attr = self._module(node, path)
            self.steps.append((node.inputs, (node.output,), _call_lines(f"self.{attr}", node), str(node.types[-1])))
        elif isinstance(node, SeqNode):
            if node.kind == "param" or pure(node.body):
                attr = self._sub_attr(node.param) if node.kind == "param" else self._module(node, path)
                self.steps.append(((node.input,), (node.output,), _call_lines(f"self.{attr}", node), str(node.type)))
            else:
                self.add_graph(node.body, (*path, "body"))
        elif isinstance(node, ResidualNode):
            self._residual(node, path)

    def _sub_attr(self, param: str) -> str:
        """The attribute holding a sub-network parameter of the block; a sub-network's class
        takes the module from the enclosing constructor and holds it itself."""
        if param not in self.sub_attrs and self.is_sub_network:
            self.sub_attrs[param] = self.layout.names[("hold", param)]
            self.init.insert(0, f"        self.{self.sub_attrs[param]} = {self.cls.pyname(param)}")
            self.reads.add(self.cls.pyname(param))
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
            self.reads.update(self.cls.reads.get(key, ()))
            if source not in self.forward_attrs:  # one attribute per value, however many read it
                self.forward_attrs[source] = self.layout.names[("value", source)]
                lines += assignment(f"self.{self.forward_attrs[source]}", source, 8)
            args[key[1]] = Code(f"self.{self.forward_attrs[source]}")
        if lines:
            self.init += [f"        # line {node.line}: {comment(node.text)}", *lines]
        return args

    def _shortcut_uses(self, node: ResidualNode, path: tuple) -> list[ResidualNode]:
        """The residual at ``path`` in every use of this class (just ``node`` in a model)."""
        if self.cls is None:
            return [node]
        # not those where the path passes through a conditional shortcut the use lacks
        return [n for n in (node_at(use.body, path) for use in self.cls.uses) if n is not None]

    def _residual(self, node: ResidualNode, path: tuple) -> None:
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
        local = Names({"self", "h_n", "c_n", "_", *input_vars})

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
                candidates = [wanted] if wanted else ["x", *(var_of[r] for r in reads if r in var_of), "out"]
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
    if program.complete_models:  # a file of blocks alone has nothing to build until a model uses them
        out += ["", "import torch", "from torch import nn"]
    out += emit_classes(program, share=share)
    return "\n".join(out) + "\n"


def emit_classes(program: Program, reserved: frozenset = frozenset(), share: bool = True) -> list[str]:
    """The lines of every class, each after two blank lines: block classes (inner ones first),
    then one class per model. Their imports are ``torch`` and ``from torch import nn``; no class
    takes a name in ``reserved``."""
    emitter = _Program(program, reserved, share)
    out: list[str] = []
    for cls in emitter.block_classes:
        lines = emitter.emit_block(cls)
        out += [*emitter.written_pending(), "", "", *lines]
    for model in program.complete_models:
        lines = emitter.emit_model(model)
        out += [*emitter.written_pending(), "", "", *lines]
    return out


def load_module(program: Program) -> dict:
    """Execute the generated source in a fresh module namespace and return it (imports torch)."""
    source = emit_program(program)
    module = types.ModuleType(f"nndsl_generated_{abs(hash(program.source.name))}")
    module.__file__ = f"<nndsl {program.source.name}>"
    code = compile(source, module.__file__, "exec")
    exec(code, module.__dict__)  # the source is our own generated code, built from checked literals
    return module.__dict__


# ---------------------------------------------------------------- the grouping, for the module tree


def block_classes(program: Program) -> Grouping:
    """Block use id -> the class it is built by, as ``nndsl.lowering`` reads it."""
    return _Program(program).grouping
