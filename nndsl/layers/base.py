"""The layer contract: parameters with kinds, the shape rule, parameter count and torch emission."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from nndsl.shapes import Dim, Poly, Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign

REQUIRED = object()


class ArgValueError(Exception):
    """An argument's value is invalid for the layer (raised by kinds and ``validate``)."""

    def __init__(self, message: str, param: str | None = None, help: str | None = None, code="E107"):
        super().__init__(message)
        self.message = message
        self.param = param
        self.help = help
        self.code = code


class ShapeError(Exception):
    """The incoming tensor is unacceptable: torch would raise at forward time."""

    def __init__(self, code: str, message: str, label: str = "", help: str | None = None, param=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.label = label
        self.help = help
        self.param = param


# ---------------------------------------------------------------- argument kinds


class Kind(NamedTuple):
    """How one parameter's value is checked and normalised; ``describe`` appears in E106."""

    describe: str
    convert: Callable[[Any], Any]
    #: normalised values are n-tuples that may be written back as one int when all equal
    collapse: bool = False


def value_text(value) -> str:
    """A constant as the spec would write it: symbolic sizes in shape notation (``T``, ``E // 2``),
    never as the checker's internal objects."""
    if isinstance(value, Poly):
        return str(value)
    if isinstance(value, tuple):
        inner = ", ".join(value_text(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return repr(value)


def holds_symbol(value) -> bool:
    """Whether a constant is, or holds, a symbolic size."""
    if isinstance(value, Poly):
        return True
    return isinstance(value, (tuple, list)) and any(holds_symbol(v) for v in value)


def type_name(value) -> str:
    """How a value is named in messages: "an integer", "a string", ..."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, tuple):
        return "a tuple"
    return type(value).__name__


class WrongType(Exception):
    """A value of the wrong type for a kind (reported as E106)."""


def as_int(value) -> int:
    """The value if it is an int (not a bool), else WrongType."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType
    return value


def int_kind(minimum: int | None = None, what="an integer") -> Kind:
    def convert(value):
        value = as_int(value)
        if minimum is not None and value < minimum:
            raise ArgValueError(f"must be {'positive' if minimum == 1 else f'at least {minimum}'}, got {value}")
        return value

    return Kind(what, convert)


INT = int_kind()
POS_INT = int_kind(1, "a positive integer")
NONNEG_INT = int_kind(0, "a non-negative integer")


def as_float(value) -> float:
    """The value as a float if it is a number (not a bool), else WrongType."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WrongType
    return float(value)


FLOAT = Kind("a number", as_float)


def _prob(value) -> float:
    value = as_float(value)
    if not 0.0 <= value <= 1.0:
        raise ArgValueError(f"must be between 0 and 1, got {value}")
    return value


PROB = Kind("a probability between 0 and 1", _prob)


def _bool(value) -> bool:
    if not isinstance(value, bool):
        raise WrongType
    return value


BOOL = Kind("True or False", _bool)


def choice(*options: str) -> Kind:
    def convert(value):
        if not isinstance(value, str):
            raise WrongType
        if value not in options:
            listed = ", ".join(repr(o) for o in options)
            raise ArgValueError(f"must be one of {listed}, got {value!r}")
        return value

    return Kind("one of " + ", ".join(repr(o) for o in options), convert)


def size_kind(n: int, minimum: int) -> Kind:
    """An int or an n-tuple of ints (torch's ``_size_n_t``), normalised to an n-tuple."""
    word = {1: "positive", 0: "non-negative"}.get(minimum, f"at least {minimum}")

    def one(value):
        value = as_int(value)
        if value < minimum:
            raise ArgValueError(f"must be {word}, got {value}")
        return value

    def convert(value):
        if isinstance(value, tuple):
            if len(value) != n:
                raise ArgValueError(f"must be an integer or a tuple of {n} integers, got {len(value)} values")
            return tuple(one(v) for v in value)
        return (one(value),) * n

    what = f"a {word} integer or a tuple of {n}" if n > 1 else f"a {word} integer"
    return Kind(what, convert, collapse=True)


def optional(kind: Kind) -> Kind:
    def convert(value):
        return None if value is None else kind.convert(value)

    return Kind(f"{kind.describe} or None", convert, kind.collapse)


def int_tuple(minimum: int = 1, allow_int: bool = True) -> Kind:
    """A tuple/list of ints (normalized_shape, unflattened_size), or with ``allow_int`` a single int."""

    def convert(value):
        if not allow_int and not isinstance(value, tuple):
            raise WrongType
        items = value if isinstance(value, tuple) else (value,)
        out = []
        for v in items:
            v = as_int(v)
            if v < minimum:
                raise ArgValueError(f"sizes must be at least {minimum}, got {v}")
            out.append(v)
        if not out:
            raise ArgValueError("must not be empty")
        return tuple(out)

    return Kind("an integer or a tuple of integers" if allow_int else "a tuple of integers", convert)


class Param(NamedTuple):
    name: str
    kind: Kind
    default: Any = REQUIRED
    infer: bool = False  # may be left out: taken from the incoming shape
    keyword_only: bool = False  # after torch's ``*``: given by name only

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def normalized_default(self) -> Any:
        """The default as the kind normalises it (``1`` -> ``(1, 1)`` for a 2-D size)."""
        if self.default is REQUIRED or self.default is None:
            return self.default
        return self.kind.convert(self.default)

    def written(self, value: Any) -> Any:
        """The value as emitted code should spell it: uniform size tuples collapse to one int."""
        if self.kind.collapse and isinstance(value, tuple) and value and len(set(value)) == 1:
            return value[0]
        return value


# ---------------------------------------------------------------- the layer class


class Context:
    """What a shape rule may ask of the checker (implemented in nndsl.check)."""

    def require_equal(
        self, have: Dim, want: Dim, message: str, label: str, help: str | None = None, bind_help: str | None = None
    ) -> None:
        """Record E201 when the sizes differ; when ``have`` is a declared symbol, fix it to ``want``
        with a warning (``bind_help`` explains it); when undecidable, warn (W301)."""
        raise NotImplementedError

    def note(self, code: str, message: str, help: str | None = None) -> None:
        raise NotImplementedError

    def warn(self, code: str, message: str, help: str | None = None, param: str | None = None) -> None:
        """A warning at the current call, or at its ``param`` argument when the spec wrote one."""
        raise NotImplementedError

    def fresh(self, hint: str) -> Dim:
        raise NotImplementedError


class Layer:
    """Base of every layer. Subclasses set ``params`` and override ``output``.

    The class name is the DSL name; ``torch_class`` defaults to it. ``examples`` are test
    rows ``(call, input shape, output shape or error code)``, checked by the table tests.
    """

    params: ClassVar[tuple[Param, ...]] = ()
    torch_class: ClassVar[str | None] = None
    examples: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    #: more rows ``(call, input shape)`` that the ONNX parity test exports and runs, beside the
    #: accepted ``examples``: configurations the ONNX mapping treats differently
    onnx_examples: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: selector name -> documentation, for layers whose torch forward returns a tuple
    selectors: ClassVar[dict[str, str]] = {}
    default_selector: ClassVar[str | None] = None
    #: the selectors of torch's whole result, in its order, for a call unpacked into as many
    #: names (``out, h_n = GRU(8, 16)(x)``: one run, every part); empty: one result only
    parts: ClassVar[tuple[str, ...]] = ()
    #: what an integer (index) tensor does here, as torch has it: None, rejected (most layers
    #: need floating point); "keep", accepted with an integer result; "float", promoted to float32
    integer_input: ClassVar[str | None] = None
    #: the same for a bool tensor (a mask), which torch's kernels treat apart from integers:
    #: None, rejected (ReLU, pools, Linear); "keep" (views, padding); "float" (Sigmoid, Tanh)
    bool_input: ClassVar[str | None] = None
    #: input dtypes torch 2.13 has no CPU kernel for here (avg_pool2d for int32, say)
    unsupported_dtypes: ClassVar[frozenset[str]] = frozenset()
    #: False for tensor operations with no nn.Module (reshape, permute, mean): the torch
    #: backend gives them no attribute and ``forward_statements`` gets ``attr=None``
    has_module: ClassVar[bool] = True
    #: a tensor method taking its sizes one by one as well as in one tuple (torch's
    #: ``x.permute(0, 2, 1)`` and ``x.permute((0, 2, 1))``): the name of the one parameter that
    #: gathers two or more positional arguments into a tuple, as if written in one
    varargs: ClassVar[str | None] = None
    #: where torch.nn has no such module (torchvision's StochasticDepth): the source of the class
    #: the generated file defines for it, constructed by its bare name instead of ``nn.<name>``
    helper: ClassVar[str | None] = None
    #: the forward's further tensor inputs after the first, in torch's order and by torch's
    #: names (MultiheadAttention: key, value, key_padding_mask, attn_mask); given by calling
    #: the layer value with tensors: ``MultiheadAttention(16, 4)(q, k, v, attn_mask=m)``
    tensor_inputs: ClassVar[tuple[str, ...]] = ()
    #: an extra input that is a tuple of tensors (LSTM's ``hx = (h_0, c_0)``): its members' names
    tuple_inputs: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: the forward's non-tensor arguments (need_weights, is_causal), given by keyword in such a call
    forward_params: ClassVar[tuple[Param, ...]] = ()

    @classmethod
    def dsl_name(cls) -> str:
        return cls.__name__

    @classmethod
    def torch_name(cls) -> str:
        return cls.torch_class or cls.__name__

    @classmethod
    def param(cls, name: str) -> Param:
        for p in cls.params:
            if p.name == name:
                return p
        raise KeyError(name)

    # -- hooks a layer overrides ------------------------------------------------

    @classmethod
    def validate(cls, args: dict) -> None:
        """Constructor-time checks on the arguments alone (torch's ctor errors)."""

    @classmethod
    def resolve(cls, args: dict, x: TensorType, ctx: Context) -> type[Layer]:
        """The concrete layer for this input, with implicit arguments made explicit in ``args``.

        Aliases pick a class by rank (``BatchNorm`` -> ``BatchNorm2d``); ``Softmax`` without a
        dim sets one. ``args`` is this call's own copy.
        """
        return cls

    @classmethod
    def infer(cls, name: str, args: dict, x: TensorType) -> Any:
        """Value of an omitted inferable parameter; ``None`` when the shape does not tell."""
        return None

    @classmethod
    def output(cls, args: dict, x: TensorType, ctx: Context) -> TensorType:
        raise NotImplementedError

    @classmethod
    def output_with(
        cls, args: dict, x: TensorType, inputs: dict[str, TensorType], forward: dict, ctx: Context
    ) -> TensorType:
        """The shape rule for a call with extra inputs (``inputs`` by forward name, only those
        given) and forward arguments (``forward``, every one of ``forward_params``)."""
        return cls.output(args, x, ctx)

    @classmethod
    def input_names(cls) -> tuple[str, ...]:
        """The extra inputs' names as LayerNode.extra has them: tuple inputs by their members."""
        return tuple(m for name in cls.tensor_inputs for m in cls.tuple_inputs.get(name, (name,)))

    @classmethod
    def forward_call(cls, attr: str, src: str, dst: str, args: dict, selector, inputs: dict, forward: dict):
        """``forward_statements`` for a call with extra inputs (variable names by forward name)
        and the forward arguments the spec gave."""
        raise NotImplementedError

    @classmethod
    def select(cls, args: dict, x: TensorType, out: TensorType, selector: str) -> TensorType:
        raise NotImplementedError

    @classmethod
    def select_with(
        cls, args: dict, x: TensorType, out: TensorType, selector: str, inputs: dict, forward: dict
    ) -> TensorType:
        """``select`` for a call with extra inputs and forward arguments (as ``output_with``
        has them): a part that depends on them (attention weights: the key's length)."""
        return cls.select(args, x, out, selector)

    @classmethod
    def unpack_call(cls, attr: str, src: str, dsts: tuple[str, ...], args: dict, inputs: dict, forward: dict):
        """Statements of ``forward`` running the module once and leaving each of ``parts`` in
        its variable of ``dsts`` (extra inputs and forward arguments as ``forward_call`` has them)."""
        raise NotImplementedError

    @classmethod
    def param_count(cls, args: dict) -> int:
        return 0

    #: how the output's memory is laid out (see ``out_strides``): "contiguous" (a new row-major
    #: tensor whatever the input), "elementwise" (the input's layout, as torch's element-wise ops
    #: keep it), "own" (the shape rule sets ``strides`` itself: views), or "follows" (row-major
    #: from a row-major input; another input's layout is not followed: convolutions, pools and
    #: batch norms keep channels-last memory, for one)
    layout: ClassVar[str] = "follows"

    @classmethod
    def training_problem(cls, args: dict, x: TensorType) -> str | None:
        """Why torch's forward raises on ``x`` in training mode only (eval mode runs), or None;
        the shape rule warns (W309), a train section refuses the model (E207)."""
        return None

    @classmethod
    def out_strides(cls, args: dict, x: TensorType, out: TensorType, selector: str | None):
        """The output's layout (nndsl.layout) for the input ``x``, after ``selector``."""
        if cls.layout == "own":
            return out.strides
        if cls.layout == "contiguous" or x.strides is None:
            return None
        if cls.layout == "elementwise" and out.shape == x.shape:
            return x.strides
        return "unknown"

    @classmethod
    def forward_statements(cls, attr: str, src: str, dst: str, args: dict, selector: str | None) -> list[Assign]:
        """Statements of ``forward`` applying this layer to the variable ``src`` and leaving the
        result in ``dst``; the backend's writer lays them out."""
        return [assign(dst, Call(f"self.{attr}", (Code(src),)))]

    @classmethod
    def to_onnx(cls, g, x: str, node, w) -> str:
        """The ONNX mapping, beside the torch emission: nodes computing this layer in eval mode.

        ``g`` is the graph builder (``nndsl.backends.onnx_graph.GraphBuilder``), ``x`` the name of
        the input value, ``node`` the checked LayerNode (arguments, input and output types,
        selector) and ``w`` the layer's weights by state_dict name (``w("weight")``,
        ``w.get("bias")``). Returns the name of the output value.
        """
        raise NotImplementedError

    @classmethod
    def onnx_unsupported(cls, node, opset: int) -> str | None:
        """Why this use (its arguments, input and output types) has no ONNX equivalent at
        ``opset``, or None; asked of every layer before an export starts."""
        return None

    @classmethod
    def exports_to_onnx(cls) -> bool:
        return cls.to_onnx.__func__ is not Layer.to_onnx.__func__

    @classmethod
    def emitted_params(
        cls, args: dict, given: frozenset[str] = frozenset(), n_positional: int = 0
    ) -> tuple[list[str], list[str]]:
        """(positional, keyword) parameter names of the constructor call in emitted code.

        Written as the spec wrote it: required arguments (inferred ones included) and those
        the spec gave positionally stay positional while nothing before them was left out;
        arguments the spec named, or that differ from the default, follow as keywords.
        """
        positional, keywords = [], []
        in_order = True
        for index, p in enumerate(cls.params):
            value = args[p.name]
            default = p.normalized_default
            differs = value != default or type(value) is not type(default)
            if not (p.required or p.name in given or differs):
                in_order = False
                continue
            if in_order and not keywords and not p.keyword_only and (p.required or index < n_positional):
                positional.append(p.name)
            else:
                keywords.append(p.name)
        return positional, keywords

    @classmethod
    def written_value(cls, name: str, value: Any) -> Any:
        """An argument's value as emitted code spells it (``(3, 3)`` -> ``3``)."""
        return cls.param(name).written(value)

    @classmethod
    def emitted_args(
        cls, args: dict, given: frozenset[str] = frozenset(), n_positional: int = 0
    ) -> tuple[list, list[tuple[str, Any]]]:
        """(positional values, keyword pairs) of the constructor call in emitted code."""
        positional, keywords = cls.emitted_params(args, given, n_positional)
        return (
            [cls.written_value(n, args[n]) for n in positional],
            [(n, cls.written_value(n, args[n])) for n in keywords],
        )


# ---------------------------------------------------------------- shared rule helpers

#: names for the dims of an N-d spatial layer's batched input, given to an input of unknown rank
SPATIAL_NAMES = {1: ("N", "C", "L"), 2: ("N", "C", "H", "W"), 3: ("N", "C", "D", "H", "W")}


def rank_error(name: str, allowed: str, x: TensorType) -> ShapeError:
    return ShapeError(
        "E202",
        f"{name} expects {allowed} input, got {x.shape.rank}-D input {x.shape}",
        f"expected {allowed}, got {x.shape}",
    )


def check_rank(name: str, x: TensorType, ranks: tuple[int, ...], describe: str | None = None) -> None:
    if x.shape.rank not in ranks:
        if describe is None:
            describe = " or ".join(f"{r}-D" for r in ranks)
        raise rank_error(name, describe, x)


def materialize(x: TensorType, rank: int, names: tuple[str, ...], ctx: Context) -> TensorType:
    """Give an input of unknown leading dims a concrete rank, with fresh symbols in front."""
    if not x.shape.rest:
        return x
    known = x.shape.dims
    strides = None if x.strides is None else "unknown"  # the layout of the unknown dims is not followed
    if len(known) > rank:
        return TensorType(Shape(known), x.dtype, strides)
    front = tuple(ctx.fresh(names[i]) for i in range(rank - len(known)))
    return TensorType(Shape(front + known), x.dtype, strides)


def require_nonempty(name: str, x: TensorType, dims: tuple, what: str = "every dim but the batch") -> None:
    """torch refuses a known size 0 among ``dims`` (pools, upsampling, transposed convolutions:
    "Expected input to have non-zero size for non-batch dimensions"); a batch of 0 passes."""
    if any(isinstance(d, int) and d == 0 for d in dims):
        raise ShapeError(
            "E203",
            f"{name} needs a non-zero size in {what}, got {x.shape}: torch raises on this empty input",
            "empty input",
            "give the input a non-zero size there",
        )


def spatial_too_small(name: str, in_sizes, out_sizes, what: str = "kernel") -> ShapeError:
    ins = " x ".join(str(d) for d in in_sizes)
    outs = " x ".join(str(d) for d in out_sizes)
    return ShapeError(
        "E203",
        f"{name}'s {what} does not fit its input: input size {ins} gives output size {outs}",
        f"output size {outs}",
        "use a smaller kernel, more padding, or a larger input",
    )


def onnx_batched(g, x: str, unbatched: bool, emit) -> str:
    """``emit(x)`` on a batched input: an unbatched one ([C, *S]) gets a batch dim around it."""
    if not unbatched:
        return emit(x)
    return g.squeeze(emit(g.unsqueeze(x, [0])), [0])
