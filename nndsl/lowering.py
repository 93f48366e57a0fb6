"""The module tree every backend reads: which block uses share a class (with its constructor
parameters and slots, as IR expressions), each model's modules, their attribute names and state_dict paths."""

from __future__ import annotations

import builtins
import functools
import keyword
import re
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple, Union

from nndsl.expr import Const, Expr, Ref, free_names
from nndsl.ir import BlockNode, Graph, Program, SeqNode, SubNetwork, layers_of, subgraphs, walk

# ---------------------------------------------------------------- identifiers

#: names a spec name must not take in emitted Python: keywords and soft keywords, and the names
#: the generated methods themselves use (``self``, the modules, the builtins they call or annotate
#: with); static, so that the output does not depend on the Python version
SPEC_RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | {
        "match",  # soft keywords of some Python versions only: the same output on every version
        "case",
        "type",
        "self",
        "nn",
        "torch",
        "super",
        "float",
        "int",
        "bool",
        "str",
        "tuple",
        "object",
    }
)


def python_name(name: str) -> str:
    """The name a spec name (a block parameter, an input size, a body constant) has in emitted
    Python: ``class`` -> ``class_``, ``class_`` -> ``class__``; a name Python treats specially for
    its leading ``__`` (``__class__``, which breaks ``super()``, or one a class would mangle) gets
    a ``p`` in front. The mapping is one-to-one, so distinct spec names stay distinct."""
    if re.match(r"p*__", name):
        return "p" + name
    if name.rstrip("_") in SPEC_RESERVED:
        return name + "_"
    return name


_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"torch", "nn", "self"}

#: every public attribute and method of ``torch.nn.Module`` (and of its instances): an attribute of
#: an emitted module named like one would replace it (``self.forward``, ``self.training``,
#: ``self.train``). Static, as the backend does not import torch; a test compares it with torch's.
MODULE_MEMBERS = frozenset(
    {
        "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
        "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward",
        "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict",
        "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters",
        "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
        "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
        "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
        "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to",
        "to_empty", "train", "training", "type", "xpu", "zero_grad",
    }
)  # fmt: skip


#: ``self.<name>(...)`` calls that ruff reports as deprecated unittest aliases (UP005)
_RUFF_FLAGGED = frozenset(
    {
        "assert_", "assertEquals", "assertNotEquals", "assertAlmostEquals", "assertNotAlmostEquals",
        "failUnlessEqual", "failIfEqual", "failUnless", "failIf", "failUnlessRaises",
        "failUnlessAlmostEqual", "failIfAlmostEqual", "assertDictContainsSubset", "assertRegexpMatches",
        "assertNotRegexpMatches", "assertRaisesRegexp",
    }
)  # fmt: skip


class Names:
    """Allocates identifiers that avoid keywords, builtins, dunders and each other (as torch.fx
    does); with ``attributes``, names for ``self.<name>`` of an nn.Module, which also avoid
    nn.Module's members and its private ``_`` names."""

    def __init__(self, reserved: set[str] | None = None, attributes: bool = False):
        self.taken = set(_RESERVED) | (reserved or set()) | (MODULE_MEMBERS | _RUFF_FLAGGED if attributes else set())
        self.attributes = attributes

    def take(self, wanted: str) -> str:
        base = wanted if wanted.isascii() and wanted.isidentifier() else re.sub(r"\W", "_", wanted) or "_"
        if base[0].isdigit():
            base = "_" + base
        if self.attributes and base.startswith("_"):
            base = "m" + base
        elif base.startswith("__"):  # a dunder, or a name a class body would mangle
            base = "p" + base
        name = base if base not in self.taken else base + "_"
        i = 1
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name


#: the builtins an attribute may be named like: ``self.input`` hides no builtin
_BUILTINS = frozenset(dir(builtins)) - frozenset(keyword.kwlist)


def _free_attribute(name: str, taken: set[str]) -> bool:
    """Whether a spec's name for a module can be its attribute as it is: an identifier that is
    no keyword and no member of nn.Module, not private, not the name of another attribute."""
    plain = name.isascii() and name.isidentifier() and not name.startswith("_")
    return plain and name not in MODULE_MEMBERS and (name not in taken or name in _BUILTINS)


_SHORT = {"Linear": "fc", "Embedding": "embedding", "MultiheadAttention": "attn"}


@functools.cache
def attr_prefix(layer) -> str:
    """``MaxPool2d`` -> ``max_pool``; ``LeakyReLU`` -> ``leaky_relu``; ``Linear`` -> ``fc``."""
    name = layer.dsl_name()
    if name in _SHORT:
        return _SHORT[name]
    return re.sub(r"_?[123]d$", "", snake(name))


@functools.cache
def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()


def value_attr(source: Expr, arg: str) -> str:
    """The attribute a value computed in ``__init__`` for a tensor method's argument wants: the
    name it reads when it is one (``self.shape = shape``), else the argument's name."""
    return python_name(source.name) if isinstance(source, Ref) else arg


class Attributes:
    """The attribute names of one class: a module the spec named takes that name where it is a
    free identifier (``wpe``, not ``training``); any other is named by its kind (``conv``, ``fc``,
    a block class's name in snake case, ``blocks`` for a repetition, ``stage`` for a loop),
    numbered from 1 when the class holds more than one of that kind (``conv1``, ``conv2``),
    distinct from every other name the class takes."""

    def __init__(self, graph: Graph, class_name: Callable[[BlockNode], str]):
        self.names = Names(attributes=True)
        self.class_name = class_name
        self.counts: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.wanted_params: list[str] = []
        self.wanted_names: list[tuple[int, str, str | None]] = []  # (node id, spec name, kind)
        self._count(graph)
        #: a learned tensor's attribute is its value's name (its state_dict key), taken before any
        #: module's; numbered from 1 where a loop makes several of one name (``g1``, ``g2``):
        #: value name -> the attributes of the tensors of that name, in order
        self.params: dict[str, list[str]] = {}
        for name in self.wanted_params:
            several = self.wanted_params.count(name) > 1
            number = len(self.params.get(name, ())) + 1
            wanted = f"{name}{'_' if name[-1].isdigit() else ''}{number}" if several else name
            self.params.setdefault(name, []).append(self.names.take(wanted))
        #: the modules the spec named, by node id: their names, taken before any kind's
        self.named: dict[int, str] = {}
        spec_names = [name for _, name, _ in self.wanted_names]
        numbers: dict[str, int] = {}
        for node_id, name, kind in self.wanted_names:
            if spec_names.count(name) > 1:  # a loop's copies of one named module: ``f1``, ``f2``
                numbers[name] = numbers.get(name, 0) + 1
                name = f"{name}{'_' if name[-1].isdigit() else ''}{numbers[name]}"
            if _free_attribute(name, self.names.taken):
                self.names.taken.add(name)
                self.named[node_id] = name
                if kind is not None:
                    self.counts[kind] -= 1

    def _count(self, graph: Graph) -> None:
        for node in graph.nodes:
            prefix = self.prefix(node)
            if prefix is not None:
                self.counts[prefix] = self.counts.get(prefix, 0) + 1
            if prefix is not None and getattr(node, "name", None) is not None:  # a module the spec named
                kind = None if node.tag == "seq" and node.kind == "shared" else prefix
                self.wanted_names.append((node.id, node.name, kind))
            if node.tag == "param":
                self.wanted_params.append(node.name)
            if node.tag == "residual":
                self._count(node.body)
                if node.shortcut is not None and not node.shortcut_param:
                    self._count(node.shortcut)
            elif node.tag == "seq" and node.kind not in ("param", "shared") and not pure(node.body):
                self._count(node.body)

    def prefix(self, node) -> str | None:
        """The kind a node's module is named by; None for a node without one of its own."""
        if node.tag == "layer":
            return attr_prefix(node.layer) if node.layer.has_module else None
        if node.tag == "block":
            return snake(self.class_name(node))
        if node.tag == "seq" and node.kind == "shared":  # the module the spec named, at its first use
            return None if node.again else node.name
        if node.tag == "seq" and node.kind != "param" and pure(node.body):
            return "stage" if node.kind == "for" else "blocks"
        return None

    def module(self, node) -> str:
        """The attribute of the next module of this class, built from ``node``."""
        if getattr(node, "name", None) is not None and node.id in self.named:
            return self.named[node.id]
        prefix = self.prefix(node)
        self.seen[prefix] = self.seen.get(prefix, 0) + 1
        return self.take(prefix if self.counts.get(prefix, 0) == 1 else f"{prefix}{self.seen[prefix]}")

    def take(self, wanted: str) -> str:
        """Any other attribute (a sub-network parameter, a value ``__init__`` computes)."""
        return self.names.take(wanted)

    def param(self, name: str) -> str:
        """The attribute of the next learned tensor of this class named ``name``."""
        return self.params[name].pop(0)


# ---------------------------------------------------------------- graph shapes the classes follow


def shared_layer(graph: Graph):
    """The layer a shared module's use consists of when it is one layer applied to the use's input
    (with whatever further inputs, flags and selector that call gives it), else None."""
    if len(graph.nodes) != 1 or len(graph.inputs) != 1:
        return None
    node = graph.nodes[0]
    if node.tag != "layer" or not node.layer.has_module or node.src != graph.inputs[0]:
        return None
    return node


def pure(graph: Graph) -> bool:
    """A graph that is one chain of modules, each reading the one before: an nn.Sequential."""
    previous = graph.inputs[0] if len(graph.inputs) == 1 else None
    for node in graph.nodes:
        if node.tag == "layer":
            if not node.layer.has_module or node.src != previous or node.extra or node.forward or node.unpacked:
                return False
            previous = node.dst
        elif node.tag == "block":
            if len(node.inputs) != 1 or node.inputs[0] != previous:
                return False
            previous = node.output
        elif node.tag == "seq" and node.kind not in ("param", "shared"):
            if node.input != previous or not pure(node.body):
                return False
            previous = node.output
        else:
            return False
    return bool(graph.nodes) and graph.outputs == (previous,)


def sub_networks(node: BlockNode) -> dict[str, SeqNode]:
    """Where a use's body applies each sub-network parameter (the body holds the argument)."""
    out: dict[str, SeqNode] = {}
    for n in in_scope(node.body):  # its first application: a later one is the same module again
        if n.tag == "seq" and n.kind == "param":
            out.setdefault(n.param, n)
    return out


def in_scope(graph: Graph) -> Iterator:
    """The nodes a block's body writes: nested graphs, and the sub-network arguments it gives
    inner blocks, but not the bodies of inner blocks or of its own sub-network parameters
    (the caller wrote those)."""
    for node in graph.nodes:
        yield node
        if node.tag == "block":
            for sub in sub_networks(node).values():
                yield from in_scope(sub.body)
        elif not (node.tag == "seq" and node.kind == "param"):
            for inner in subgraphs(node, into_blocks=False):
                yield from in_scope(inner)


def node_at(graph: Graph, path: tuple):
    """The node a path leads to: indices, with "body"/"shortcut" or "sub", name between them;
    None where the path passes through a shortcut this use does not have."""
    node = graph.nodes[path[0]]
    rest = path[1:]
    while rest:
        if rest[0] == "sub":  # a block's sub-network argument: the body of its SeqNode(param=...)
            inner = sub_networks(node)[rest[1]].body
            rest = rest[2:]
        else:
            inner = node.shortcut if rest[0] == "shortcut" else node.body
            rest = rest[1:]
        if inner is None:
            return None
        node, rest = inner.nodes[rest[0]], rest[1:]
    return node


def _owner(graph: Graph, path: tuple):
    """The node whose module a path names: a node's path, a block's sub-network argument
    ``(..., "sub", name)`` (its SeqNode), or a residual's shortcut ``(..., "shortcut")``."""
    if len(path) >= 2 and path[-2] == "sub":
        block = node_at(graph, path[:-2])
        return None if block is None else sub_networks(block)[path[-1]]
    if path[-1] == "shortcut":  # None in a use without the shortcut
        residual = node_at(graph, path[:-1])
        return None if residual is None or residual.shortcut is None else residual
    return node_at(graph, path)


# ---------------------------------------------------------------- block classes: which uses share one

#: a constructor parameter without a default
NO_DEFAULT = object()


class DType(str):
    """The floating dtype a layer holds its parameters and buffers in (``float32``): a value a
    block's uses may give its class."""


_FLOATS = ("float32", "float64", "float16", "bfloat16")


def state_dtype(node) -> DType | None:
    """The dtype of a layer's parameters and buffers: the floating dtype it computes in (its
    output's; an Embedding's output, float32, for integer input), as the checker typed it.
    None for a layer that holds neither."""
    if not node.layer.has_module or not (node.params or node.args.get("track_running_stats")):
        return None
    return DType(node.output.dtype if node.output.dtype in _FLOATS else "float32")


def typed(value) -> object:
    """A value (an expression, a statement, plain data) as a hashable tree that tells apart what
    compares equal but is not the same: ``1``, ``True`` and ``1.0``; two NaNs are the same."""
    kind = type(value)
    if kind in _LEAVES:
        return (kind, value)
    if kind is float:
        return (float, repr(value))
    if isinstance(value, (tuple, list)):  # an expression and a statement too: a named tuple
        return (kind, tuple(map(typed, value)))
    if isinstance(value, Mapping):
        return (dict, tuple((k, typed(v)) for k, v in value.items()))
    return (kind, value)


_LEAVES = frozenset({int, str, bool, type(None)})


def same(a, b) -> bool:
    """Equal and of one type (``1`` and ``True`` are not the same argument)."""
    return a == b and type(a) is type(b)


class Param(NamedTuple):
    """A constructor parameter of a block's class."""

    name: str
    values: tuple  # its value in each use (of those that have it)
    default: object  # NO_DEFAULT where it has none
    keyword_only: bool  # not the block's own: one value each use gives a slot
    module: bool  # it holds a sub-network (a module, or None)
    unset: bool  # a parameter no use sets and the body never applies: None in every use


def _param(name: str, values, default=NO_DEFAULT, keyword_only: bool = False, applied: bool = True) -> Param:
    unset = not applied and all(v is None for v in values)
    module = not unset and all(v is None or isinstance(v, SubNetwork) for v in values)
    if module and default is not NO_DEFAULT:  # a module parameter with a default defaults to None
        default = None
    return Param(name, tuple(values), default, keyword_only, module, unset)


class BlockClass:
    """The class a group of a block's uses share: its constructor parameters, and the expression
    that gives every argument built inside it (a slot), from the parameters."""

    def __init__(self, name: str, uses: list[BlockNode], plain_name: str | None = None):
        self.name = name
        #: the name it has when no name is reserved, which its uses' attributes are named after, so
        #: that a class renamed around a training script's own names keeps its state_dict keys
        self.plain_name = plain_name or name
        self.uses = tuple(uses)  # the first decides the class's attributes
        self.params: list[Param] = []  # in order: input-pattern sizes, the block's, keyword-only ones
        #: slot key (path, argument) -> the expression __init__ builds its module with
        self.slots: dict[tuple, Expr] = {}
        #: slot key of a tensor method's argument that differs between uses -> the expression
        #: __init__ computes it from, for forward to read as an attribute
        self.forward_sources: dict[tuple, Expr] = {}
        #: keyword-only parameter -> its value in each use (by the use's id)
        self.extra_values: dict[str, dict[int, object]] = {}
        #: body constants __init__ computes first: (the spec's name, its expression)
        self.locals: list[tuple[str, Expr]] = []

    @property
    def module_params(self) -> tuple[str, ...]:
        """The constructor parameters that hold a module, in order."""
        return tuple(p.name for p in self.params if p.module)

    def arg_value(self, use: BlockNode, name: str):
        """The value of constructor parameter (or body constant) ``name`` in one use."""
        if name in self.extra_values:
            return self.extra_values[name].get(use.id)
        if name in use.dims:
            return use.dims[name]
        return use.args[name] if name in use.args else use.constants.get(name)


class Classes(NamedTuple):
    """The classes of a program: one per model, and one per group of a block's uses."""

    blocks: list[BlockClass]  # inner blocks first
    of: dict[int, BlockClass]  # block use id -> its class
    models: dict[str, str]  # model name -> its class's name
    names: Names  # the class names taken (more may be taken for sub-network classes)


def group_blocks(program: Program, reserved: frozenset = frozenset(), share: bool = True) -> Classes:
    """Groups each block's uses into classes: uses share one when everything that reaches
    ``__init__`` or ``forward`` has one structure (nodes, data flow, layer classes, the arguments
    written, tensor methods' arguments as expressions), their values aside. ``share=False`` gives
    each use a class of its own; no class takes a name in ``reserved``."""
    names = Names(set(reserved))
    models = {m.name: names.take(m.name) for m in program.complete_models}
    plain = Names()  # the names when nothing is reserved: what attributes are named after
    for model in program.complete_models:
        plain.take(model.name)
    uses: dict[tuple[str, str], list[BlockNode]] = {}
    for model in program.complete_models:
        for node in walk(model.graph):
            if node.tag == "block":
                uses.setdefault((node.defined_in, node.block), []).append(node)
    of: dict[int, BlockClass] = {}
    blocks: list[BlockClass] = []
    # inner blocks first: an outer block's structure names its inner blocks' classes (the deepest
    # use counts: an inner block may be used only where a use has a conditional shortcut)
    taken: dict[str, int] = {}
    for (_, block), nodes in sorted(uses.items(), key=lambda item: max(map(_depth, item[1]))):
        # uses of one structure, and (None where a use lacks it) the structure of each conditional
        # shortcut: a use joins the first group whose shortcuts agree with its own where both have them
        groups: dict[object, list[tuple[list, list[BlockNode]]]] = {}
        for node in nodes:
            shortcuts: list = []
            key = (
                (_Structure(of).of(node.body, shortcuts), tuple((k, typed(v)) for k, v in sorted(node.locals.items())))
                if share
                else node.id
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
            wanted = block if taken[block] == 1 else f"{block}{taken[block]}"
            cls = BlockClass(names.take(wanted), members, plain.take(wanted))
            of.update({member.id: cls for member in members})
            _resolve(cls, of)
            blocks.append(cls)
    return Classes(blocks, of, models, names)


def _depth(node: BlockNode) -> int:
    return 1 + max((_depth(n) for n in walk(node.body, into_blocks=False) if n.tag == "block"), default=0)


def _is_param(graph: Graph | None) -> bool:
    """A graph that applies one sub-network parameter of the block, as it is."""
    return (
        graph is not None and len(graph.nodes) == 1 and graph.nodes[0].tag == "seq" and graph.nodes[0].param is not None
    )


def counted(node, of: Mapping[int, BlockClass]) -> bool:
    """A repetition in a block whose count the spec wrote from the block's parameters
    (``Layer(C, C) * layers``), each time the same one module (a layer, or a block without
    sub-network arguments) built alike: its class loops over the count, which its uses may differ
    in (``*(nn.Linear(C, C) for _ in range(layers))``)."""
    if node.tag != "seq" or node.kind != "repeat" or node.times_source is None:
        return False
    units = node.body.nodes
    if not free_names(node.times_source) or len(units) != node.times or not pure(node.body):
        return False
    first = units[0]
    if not (first.tag == "layer" or (first.tag == "block" and not sub_networks(first))):
        return False
    shape = _unit(first, of)
    return all(_unit(unit, of) == shape for unit in units[1:])


def _unit(node, of: Mapping[int, BlockClass]) -> tuple:
    """One module of a repetition as a class sees it: its structure and its arguments."""
    graph = Graph(tuple(node.reads), (node,), tuple(node.writes))
    return _Structure(of).of(graph), tuple((typed(w), typed(v)) for _, w, v in _slots(graph, of))


class _Structure:
    """What makes two uses of a block one class: nodes, data flow, layer classes, the arguments
    written, as a hashable tree. Values are numbered in order of appearance, so that uses numbered
    apart compare equal."""

    def __init__(self, of: Mapping[int, BlockClass]):
        self.classes = of

    def of(self, graph: Graph, shortcuts: list | None = None) -> tuple:
        """A conditional shortcut's structure goes to ``shortcuts`` (None where this use lacks it),
        for uses that lack it to share a class with those that have it; without ``shortcuts`` it
        is part of the result."""
        numbers: dict[int, int] = {}

        def rel(values) -> tuple[int, ...]:
            return tuple(numbers.setdefault(v, len(numbers)) for v in values)

        rel(graph.inputs)
        if shortcuts is not None:
            return self._graph(graph, rel, shortcuts)
        found: list = []
        return (self._graph(graph, rel, found), tuple(found))

    def _graph(self, graph: Graph, rel, shortcuts: list) -> tuple:
        parts: list[tuple] = []
        for node in graph.nodes:
            if node.tag == "layer":
                positional, keywords = node.layer.emitted_params(node.args, node.given, node.n_positional)
                # a module's forward may depend on its arguments (an LSTM's batch_first); a tensor
                # method's arguments are slots
                written = (
                    typed(node.layer.forward_statements("m", "a", "b", node.args, node.selector))
                    if node.layer.has_module
                    else None
                )
                where = (rel(node.reads), rel(node.writes), tuple(n for n, _ in node.extra), typed(dict(node.forward)))
                parts.append(("L", node.layer, node.selector, where, tuple(positional), tuple(keywords), written))
            elif node.tag == "op":
                args = _op_args(node, dict.fromkeys(node.sources or (), Ref("")))  # written from attributes
                parts.append(("O", node.op, rel(node.inputs), rel(node.outputs), typed(args), node.scalar_first))
            elif node.tag == "param":  # its sizes and init arguments are slots
                parts.append(("P", node.name, node.init, len(node.shape), node.type.dtype, rel([node.output])))
            elif node.tag == "block":
                subs = tuple((name, self.of(sub.body, shortcuts)) for name, sub in sorted(sub_networks(node).items()))
                parts.append(("B", self.classes[node.id].name, rel(node.inputs), rel([node.output]), subs))
            elif node.tag == "residual":
                body = self._graph(node.body, rel, shortcuts)
                if node.shortcut_if and _is_param(node.shortcut):  # the module a use was given: a class each
                    shortcut = ("if param", typed(node.shortcut_if), node.shortcut.nodes[0].param)
                    shortcuts.append(None)
                elif node.shortcut_if:  # uses differ in whether they have it: one class decides at run time
                    shortcut = ("if", typed(node.shortcut_if))
                    shortcuts.append(None if node.shortcut is None else self.of(node.shortcut))
                elif node.shortcut_param:
                    shortcut = ("param", node.shortcut_param)
                else:
                    shortcut = self._graph(node.shortcut, rel, shortcuts) if node.shortcut else ("identity",)
                optional = typed(node.residual_if) if node.residual_if else None  # `active` may differ per use
                parts.append(("R", optional, body, shortcut, rel([node.input]), rel([node.output])))
            elif node.tag == "seq":
                if counted(node, self.classes):  # one module and the count's expression, the count aside
                    inner = ("counted", _unit(node.body.nodes[0], self.classes)[0], typed(node.times_source))
                else:
                    inner = node.param if node.kind == "param" else self._graph(node.body, rel, shortcuts)
                shared = (node.name, node.again) if node.kind == "shared" else None  # which uses share a module
                parts.append(("S", node.kind, inner, rel([node.input]), rel([node.output]), shared))
        return (tuple(parts), rel(graph.outputs))


def _slots(graph: Graph, of: Mapping[int, BlockClass], path: tuple = ()) -> list[tuple[tuple, Expr | None, object]]:
    """Every constructor argument built inside a class body: (key, expression as written, value)."""
    out = []
    for index, node in enumerate(graph.nodes):
        here = (*path, index)
        if node.tag == "layer" and node.layer.has_module:
            positional, keywords = node.layer.emitted_params(node.args, node.given, node.n_positional)
            for arg in positional + keywords:
                written = (node.sources or {}).get(arg)
                out.append(((here, arg), written, node.layer.written_value(arg, node.args[arg])))
            if state_dtype(node) is not None:  # uses may differ in the dtype they compute in
                out.append(((here, "dtype"), None, state_dtype(node)))
        elif node.tag == "op" and node.sources:  # arguments written in forward, as a tensor method's
            values = _operator(node.op).slot_values(node.args)
            out += [((here, key), written, values[key]) for key, written in node.sources.items()]
        elif node.tag == "layer":  # a tensor method: its arguments are written in forward
            for arg in (p.name for p in node.layer.params):
                out.append(((here, arg), (node.sources or {}).get(arg), node.args[arg]))
        elif node.tag == "block":
            inner = of[node.id]
            subs = sub_networks(node)
            for param in inner.params:
                value = inner.arg_value(node, param.name)
                if isinstance(value, SubNetwork):
                    if param.name in subs:
                        out += _slots(subs[param.name].body, of, (*here, "sub", param.name))
                    continue
                out.append(((here, param.name), (node.sources or {}).get(param.name), value))
        elif node.tag == "param":
            sizes = {f"size{i}": size for i, size in enumerate(node.shape)}
            for arg, value in (*sizes.items(), *node.args.items()):
                out.append(((here, arg), (node.sources or {}).get(arg), value))
        elif node.tag == "residual":
            out += _slots(node.body, of, (*here, "body"))
            if node.shortcut is not None and not node.shortcut_param:
                out += _slots(node.shortcut, of, (*here, "shortcut"))
        elif node.tag == "seq" and counted(node, of):  # the first module's arguments, and the count
            out += _slots(Graph((), node.body.nodes[:1], ()), of, (*here, "body"))
            out.append(((here, "times"), node.times_source, node.times))
        elif node.tag == "seq" and node.kind != "param":
            out += _slots(node.body, of, (*here, "body"))
    return out


def _operator(name: str):
    from nndsl.operators import lookup  # the operator registry, only for blocks that hold an operation

    return lookup(name)


def _op_args(node, values: Mapping) -> Mapping:
    """An operation's arguments with the slots in ``values`` replaced (``Operator.with_slots``)."""
    return _operator(node.op).with_slots(node.args, values) if values else node.args


def _in_forward(use: BlockNode, key: tuple) -> bool:
    """Whether a slot is an argument of a tensor method (written in forward, not in __init__)."""
    node = node_at(use.body, key[0])
    return node.tag == "op" or (node.tag == "layer" and not node.layer.has_module)


def _same_values(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def _resolve(cls: BlockClass, of: Mapping[int, BlockClass]) -> None:
    """Constructor parameters, and the expression of every argument built inside the class."""
    first = cls.uses[0]
    dims, params = list(first.dims), list(first.args)
    seen: dict[tuple, list] = {}
    for use in cls.uses:
        for key, written, value in _slots(use.body, of):
            seen.setdefault(key, []).append((written, value, use))
    referenced: set[str] = set()
    extra: list[tuple[str, tuple]] = []
    for key, rows in seen.items():
        target = cls.forward_sources if _in_forward(rows[0][2], key) else cls.slots
        written = {None if w is None else typed(w) for w, _, _ in rows}
        values = [value for _, value, _ in rows]
        alike = all(same(v, values[0]) for v in values)
        if alike and target is cls.forward_sources:  # the same in every use: forward writes the value itself
            continue
        if len(written) == 1 and None not in written:
            target[key] = rows[0][0]
            referenced.update(free_names(rows[0][0]))
            continue
        if alike:
            cls.slots[key] = Const(values[0])
            continue
        match = next(
            (
                name
                for name in dims + params + list(first.locals)
                if all(same(cls.arg_value(use, name), value) for _, value, use in rows)
            ),
            None,
        )
        if match is not None:
            target[key] = Ref(match)
            referenced.add(match)
            continue
        name = "dtype" if key[1] == "dtype" else f"{key[0][-1] if isinstance(key[0][-1], str) else 'arg'}_{key[1]}"
        extra.append((name, key))
    # a condition decided in the constructor (or a sub-network's), in any use: some lack a shortcut
    for node in (node for use in cls.uses for node in in_scope(use.body)):
        if node.tag == "residual":
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
    cls.params += [_param(name, [u.dims[name] for u in cls.uses]) for name in dims if name in referenced]
    applied = {  # the sub-network parameters: those the body applies (where a use gives one)
        n.param if n.tag == "seq" else n.shortcut_param
        for use in cls.uses
        for n in in_scope(use.body)
        if (n.tag == "seq" and n.kind == "param") or n.tag == "residual"
    }
    for name in params:
        values = [u.args[name] for u in cls.uses]
        cls.params.append(_param(name, values, first.defaults.get(name, NO_DEFAULT), applied=name in applied))
    names = Names({p.name for p in cls.params} | {name for name, _ in cls.locals})
    for wanted, key in extra:
        rows = seen[key]  # a conditional shortcut's arguments exist in some uses only
        values = {use.id: value for _, value, use in rows}
        # one parameter for the slots whose values agree in every use (a dtype, mostly)
        name = next((n for n, v in cls.extra_values.items() if _same_values(v, values)), None)
        if name is None:
            name = names.take(wanted)
            cls.params.append(_param(name, [value for _, value, _ in rows], keyword_only=True))
            cls.extra_values[name] = values
        (cls.forward_sources if _in_forward(rows[0][2], key) else cls.slots)[key] = Ref(name)


# ---------------------------------------------------------------- the tree


#: block use id -> its class: the grouping the module tree follows
Grouping = Mapping[int, BlockClass]


class Module(NamedTuple):
    """One module of a model: ``name`` is its attribute in its parent (an index in an
    nn.Sequential), ``path`` its state_dict prefix (``layer1.0.conv1``), ``node`` the id of the IR
    node it builds: a layer, a block use, a repetition, or (for a sub-network argument, an
    nn.Sequential or a generated class) the SeqNode that applies it, or (a conditional shortcut)
    the residual."""

    name: str
    path: str
    kind: str  # "model", "layer", "block", "sequential", "sub_network"
    node: int | None
    children: tuple[Module, ...] = ()

    def walk(self) -> Iterator[Module]:
        """This module and every module inside it, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()


class Lowered(NamedTuple):
    """The module tree of every complete model of a program."""

    models: Mapping[str, Module]  # model name -> its root (kind "model", path "")
    #: layer id -> the state_dict prefix of its module, for every layer with one; a learned
    #: tensor's id -> its state_dict key
    prefixes: Mapping[int, str]
    #: block use id -> the class it is built by
    classes: Grouping


class _Layer(NamedTuple):
    path: tuple


class _Block(NamedTuple):
    path: tuple
    subs: dict  # sub-network parameter -> what the use passes for it


class _Sequential(NamedTuple):
    owner: tuple
    elements: tuple


class _SubClass(NamedTuple):
    owner: tuple
    layout: Layout


class _HandedOn(NamedTuple):
    param: str  # the enclosing class's own sub-network parameter, passed on as it is


class _Counted(NamedTuple):
    """A repetition whose count each use gives (``counted``): its first module, built as many
    times as the use's repetition holds modules."""

    owner: tuple
    unit: Union[_Layer, _Block]


_Built = Union[_Layer, _Block, _Sequential, _SubClass, _HandedOn, _Counted]


class Layout:
    """The attributes of one emitted class, from its graph (the first use's body, for a block's
    class): the modules it assigns in order, and every attribute's name, by what it holds:

    - ``("module", path)``: the module built from the node at ``path``;
    - ``("hold", param)``: a sub-network parameter the class holds;
    - ``("value", typed(expr))``: a tensor method's argument ``__init__`` computes from ``expr``;
    - ``("use_residual", path)``, ``("shortcut", path)``: a residual whose sum, or whose
      shortcut, the constructor decides per use.

    ``classes`` holds the class of each sub-network argument written as a class of its own, by
    the path of the graph it applies."""

    def __init__(self, grouping: Grouping, graph: Graph, cls: BlockClass | None, sub_network: bool = False):
        self.grouping = grouping
        self.cls = cls  # the block's class (also for a sub-network's class written inside it)
        self.attrs = Attributes(graph, lambda node: grouping[node.id].plain_name)
        self.names: dict[tuple, str] = {}
        self.classes: dict[tuple, Layout] = {}
        self.modules: list[tuple[str, _Built]] = []
        self.holds: dict[str, str] = {}  # sub-network parameter -> the attribute holding it
        self.params: list[tuple[str, tuple]] = []  # the learned tensors: (attribute, path)
        self.applied: set[str] = set()
        self.passed: set[str] = set()
        self.sub_network = sub_network
        self.shared: dict[int, str] = {}  # a shared module's group -> the attribute holding it

    def _take(self, key: tuple, wanted: str) -> str:
        self.names[key] = self.attrs.take(wanted)
        return self.names[key]

    def add_graph(self, graph: Graph, path: tuple = ()) -> None:
        for index, node in enumerate(graph.nodes):
            self.add_node(node, (*path, index))

    def add_node(self, node, path: tuple) -> None:
        if node.tag == "layer":
            if node.layer.has_module:
                self._module(node, path)
            elif self.cls is not None:
                for param in node.layer.params:
                    key = (path, param.name)
                    source = self.cls.forward_sources.get(key)
                    if source is not None and ("value", typed(source)) not in self.names:
                        self._take(("value", typed(source)), value_attr(source, key[1]))
        elif node.tag == "op" and node.sources and self.cls is not None:
            for key in node.sources:
                source = self.cls.forward_sources.get((path, key))
                if source is not None and ("value", typed(source)) not in self.names:
                    self._take(
                        ("value", typed(source)), value_attr(source, _operator(node.op).slot_name(key, node.args))
                    )
        elif node.tag == "block":
            self._module(node, path)
        elif node.tag == "seq":
            if node.kind == "shared":
                self._shared(node, path)
            elif node.kind == "param":
                self._sub_attr(node.param)
            elif pure(node.body):
                self._module(node, path)
            else:
                self.add_graph(node.body, (*path, "body"))
        elif node.tag == "residual":
            self._residual(node, path)
        elif node.tag == "param":
            attr = self.names[("param", path)] = self.attrs.param(node.name)
            self.params.append((attr, path))

    def _module(self, node, path: tuple) -> None:
        attr = self.names[("module", path)] = self.attrs.module(node)
        self.modules.append((attr, self.construct(node, path)))

    def _shared(self, node, path: tuple) -> None:
        """A shared module: built at its first use, under the spec's name; every use calls it."""
        if node.again:
            self.names[("module", path)] = self.shared[node.group]
            return
        attr = self.names[("module", path)] = self.shared[node.group] = self.attrs.module(node)
        self.modules.append((attr, self.shared_module(node, path)))

    def shared_module(self, node, path: tuple) -> _Built:
        """What a shared module's first use builds: one module, an nn.Sequential, or (where a
        step has no module) a class of its own, whose attributes lie at ``(*path, "body")``."""
        body = node.body
        if shared_layer(body) is not None:  # one layer, its extra inputs and selector given at each call
            return self.construct(body.nodes[0], (*path, "body", 0))
        if not pure(body):
            inner = self.classes[(*path, "body")] = Layout(self.grouping, body, self.cls, sub_network=True)
            inner.add_graph(body, (*path, "body"))
            return _SubClass(path, inner)
        if len(body.nodes) == 1 and body.nodes[0].tag != "seq":
            return self.construct(body.nodes[0], (*path, "body", 0))
        return self.construct(node, path)

    def _sub_attr(self, param: str) -> None:
        self.applied.add(param)
        if param not in self.holds and self.sub_network:
            self.holds[param] = self._take(("hold", param), param)

    def _uses(self, node, path: tuple) -> list:
        """The residual at ``path`` in every use of this class (just ``node`` in a model)."""
        if self.cls is None:
            return [node]
        # not those where the path passes through a conditional shortcut the use lacks
        return [n for n in (node_at(use.body, path) for use in self.cls.uses) if n is not None]

    def _residual(self, node, path: tuple) -> None:
        self.add_graph(node.body, (*path, "body"))
        if node.residual_if:
            active = {u.active for u in self._uses(node, path)}
            if active == {False}:
                return
            if active == {True, False}:  # decided in the constructor
                self._take(("use_residual", path), "use_residual")
                return
        uses = self._uses(node, path) if node.shortcut_if else [node]
        having = [u for u in uses if u.shortcut is not None]
        if node.shortcut_if and having and len(having) < len(uses):  # held where the condition holds
            attr = self._take(("shortcut", path), "shortcut")
            self.modules.append((attr, self.module_of(having[0].shortcut, (*path, "shortcut"))))
            return
        if node.shortcut_if and having:
            node = node._replace(shortcut=having[0].shortcut)
        if node.shortcut_param:
            self._sub_attr(node.shortcut_param)
        elif node.shortcut is not None:
            self.add_graph(node.shortcut, (*path, "shortcut"))

    def module_of(self, graph: Graph, path: tuple) -> _Built:
        """A sub-network argument: one module, an nn.Sequential, or (where a step has no module)
        a class of its own; a parameter of the enclosing class handed on as it is."""
        if len(graph.nodes) == 1 and graph.nodes[0].tag == "seq" and graph.nodes[0].param is not None:
            self.passed.add(graph.nodes[0].param)
            return _HandedOn(graph.nodes[0].param)
        if not pure(graph):
            inner = self.classes[path] = Layout(self.grouping, graph, self.cls, sub_network=True)
            inner.add_graph(graph, path)  # paths as the enclosing class numbers them
            self.passed |= inner.applied | inner.passed
            return _SubClass(path, inner)
        if len(graph.nodes) == 1:
            return self.construct(graph.nodes[0], (*path, 0))
        return _Sequential(path, tuple(self.construct(n, (*path, i)) for i, n in enumerate(graph.nodes)))

    def construct(self, node, path: tuple) -> _Built:
        if node.tag == "layer":
            return _Layer(path)
        if node.tag == "block":
            cls = self.grouping[node.id]
            subs = sub_networks(node)
            given = {}
            for name in cls.module_params:
                if isinstance(node.args.get(name), SubNetwork) and name in subs:
                    given[name] = self.module_of(subs[name].body, (*path, "sub", name))
            return _Block(path, given)
        if counted(node, self.grouping):
            return _Sequential(path, (_Counted(path, self.construct(node.body.nodes[0], (*path, "body", 0))),))
        elements: list[_Built] = []
        for i, inner in enumerate(node.body.nodes):
            built = self.construct(inner, (*path, "body", i))
            # a repetition inside a sequence is part of it: one nn.Sequential, not one in another
            elements += built.elements if inner.tag == "seq" else [built]
        return _Sequential(path, tuple(elements))


def class_layout(grouping: Grouping, cls: BlockClass) -> Layout:
    """The attributes of a block's class, ``grouping`` the classes of the program's block uses."""
    first = cls.uses[0]
    layout = Layout(grouping, first.body, cls)
    for name in cls.module_params:
        layout.holds[name] = layout._take(("hold", name), name)
    layout.add_graph(first.body)
    for name in layout.passed - layout.applied:  # held by the sub-network's class that applies it
        del layout.holds[name]
    return layout


class _Tree:
    """Lays each class's modules out at their state_dict paths, model by model."""

    def __init__(self, grouping: Grouping):
        self.grouping = grouping
        self.layouts: dict[str, Layout] = {}
        self.entries: list[tuple[str, str, int | None]] = []  # (path, kind, node id)
        self.prefixes: dict[int, str] = {}

    def layout(self, cls: BlockClass) -> Layout:
        if cls.name not in self.layouts:
            self.layouts[cls.name] = class_layout(self.grouping, cls)
        return self.layouts[cls.name]

    def modules(self, layout: Layout, graph: Graph, prefix: str, held: dict | None) -> None:
        """``held``: where each sub-network parameter handed on from this class ends up."""
        for attr, built in layout.modules:
            self.construct(built, graph, prefix + attr, held)
        for attr, path in layout.params:  # a learned tensor's state_dict key
            self.prefixes[node_at(graph, path).id] = prefix + attr

    def _entry(self, key: str, kind: str, node) -> None:
        self.entries.append((key, kind, None if node is None else node.id))

    def construct(self, built: _Built, graph: Graph, key: str, held: dict | None) -> None:
        if isinstance(built, (_SubClass, _Sequential)):
            owner = _owner(graph, built.owner)
            if owner is None:  # a conditional shortcut this use does not have
                return
            self._entry(key, "sub_network" if isinstance(built, _SubClass) else "sequential", owner)
        if isinstance(built, _SubClass):
            self.modules(built.layout, graph, key + ".", held)
            if held is not None:
                held.update({name: f"{key}.{attr}" for name, attr in built.layout.holds.items()})
            return
        if isinstance(built, _Sequential):
            index = 0
            for element in built.elements:
                for each in _expanded(element, graph):
                    self.construct(each, graph, f"{key}.{index}", held)
                    index += 1
            return
        node = node_at(graph, built.path)
        if node is None:  # a conditional shortcut this use does not have
            return
        if node.tag == "layer":
            self._entry(key, "layer", node)
            self.prefixes[node.id] = key
            return
        self._entry(key, "block", node)
        inner = self.layout(self.grouping[node.id])
        inner_held: dict[str, str] = {}
        self.modules(inner, node.body, key + ".", inner_held)
        for name, sub in built.subs.items():
            where = inner_held.get(name) or (f"{key}.{inner.holds[name]}" if name in inner.holds else None)
            if isinstance(sub, _HandedOn):  # the enclosing class's own parameter, held in there
                if held is not None and where is not None:
                    held[sub.param] = where
            elif where is not None:  # else the block never applies it
                self.construct(sub, graph, where, held)

    def model(self, graph: Graph) -> Module:
        self.entries = []
        self.modules(model_layout(self.grouping, graph), graph, "", None)
        self._shared_prefixes(graph)
        return _assemble(self.entries)

    def _shared_prefixes(self, graph: Graph) -> None:
        """Each layer of a shared module's later use has the state_dict prefix of the layer its
        first use built (the uses build the same layers, in the same order)."""
        first: dict[int, SeqNode] = {}
        for node in walk(graph):
            if node.tag == "seq" and node.kind == "shared":
                if not node.again:
                    first[node.group] = node
                    continue
                self._same_prefixes(first[node.group], node)
            elif node.tag == "block":  # a sub-network argument applied again in the use's body
                arguments = sub_networks(node)
                for again in in_scope(node.body):
                    if again.tag == "seq" and again.kind == "param" and again.again:
                        self._same_prefixes(arguments[again.param], again)

    def _same_prefixes(self, first: SeqNode, again: SeqNode) -> None:
        for built, use in zip(layers_of(first.body), layers_of(again.body)):
            if built.id in self.prefixes:
                self.prefixes[use.id] = self.prefixes[built.id]


def _expanded(built: _Built, graph: Graph) -> list[_Built]:
    """An element of an nn.Sequential in one use: a counted repetition's modules, one per module
    the use's repetition holds; any other element as it is."""
    if not isinstance(built, _Counted):
        return [built]
    owner = node_at(graph, built.owner)
    if owner is None:
        return []
    here = len(built.owner) + 1  # the unit's path: the owner's, "body", its index
    return [built.unit._replace(path=(*built.unit.path[:here], i)) for i in range(len(owner.body.nodes))]


def model_layout(grouping: Grouping, graph: Graph) -> Layout:
    """The attributes of a model's class, ``grouping`` the classes of the program's block uses."""
    layout = Layout(grouping, graph, None)
    layout.add_graph(graph)
    return layout


def _assemble(entries: list[tuple[str, str, int | None]]) -> Module:
    """The tree from (path, kind, node id) rows: each module under the one its path extends."""
    children: dict[str, list[tuple[str, str, int | None]]] = {}
    known = {path for path, _, _ in entries}
    for entry in entries:
        parent = entry[0]
        while True:
            parent = parent.rpartition(".")[0]
            if not parent or parent in known:
                break
        children.setdefault(parent, []).append(entry)

    def build(path: str, kind: str, node: int | None) -> Module:
        below = tuple(build(*row) for row in children.get(path, ()))
        return Module(path.rpartition(".")[2], path, kind, node, below)

    return build("", "model", None)


_CACHE: list[tuple[Program, Lowered]] = []  # the programs lowered last, by identity


def lower(program: Program) -> Lowered:
    """The module tree of every complete model of ``program``; computed once per program object."""
    for seen, lowered in _CACHE:
        if seen is program:
            return lowered
    classes = group_blocks(program).of
    tree = _Tree(classes)
    models = {model.name: tree.model(model.graph) for model in program.complete_models}
    lowered = Lowered(models, tree.prefixes, classes)
    _CACHE[:] = [(program, lowered), *_CACHE[:7]]
    return lowered
