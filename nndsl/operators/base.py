"""The operator contract: a tensor function's signature, shape rule, torch emission and ONNX mapping."""

from __future__ import annotations

from typing import Any, ClassVar

from nndsl.layers.base import ArgValueError, Kind, Param, ShapeError, as_int
from nndsl.shapes import TensorType
from nndsl.statements import Assign

#: the kind of a parameter that takes a tensor (checked by the checker, not converted)
TENSOR = Kind("a tensor", lambda value: value)


#: the kind of a parameter that takes a tensor or a number (``where(mask, x, 0.0)``): a tensor
#: becomes an input and the argument None, a number stays the argument
TENSOR_OR_NUMBER = Kind("a tensor or a number", lambda value: value)


def _sizes(value: Any) -> int | tuple[int, ...]:
    if type(value) is tuple:  # a list or tuple the spec wrote
        if not all(type(v) is int and v >= 0 for v in value):
            raise ArgValueError("split sizes must be non-negative integers", code="E106")
        return value
    return as_int(value)


#: an integer, or a list of non-negative integers (``split_size_or_sections``)
SIZES = Kind("an integer", _sizes)


class Operator:
    """Base of every tensor operator: a function of tensors with no module and no weights.

    ``params`` is the signature (names, kinds, defaults, as torch's function has them); with
    ``variadic`` the leading positional arguments are the tensors (``cat(a, b, dim=1)``) and
    ``params`` follow them. ``examples`` are test rows ``(call, inputs, outputs or error code)``:
    ``("cat(a, b, dim=1)", "a: [2, 3], b: [2, 4]", "[2, 7]")``, checked against torch by the
    operator tests. The class registers under ``name``.

    Adding an operator: a subclass with ``@register`` in the module of its family here (a new
    module is imported by ``nndsl/operators/__init__.py``), and its torch function in the table
    of ``tests/test_operator_table.py``; the contract test says what else it lacks.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    variadic: ClassVar[bool] = False
    #: the Python operator of an element-wise operation (``+``), which specs may write instead
    symbol: ClassVar[str | None] = None
    #: whether the result is a tuple of pieces (chunk, split) rather than one tensor
    pieces: ClassVar[bool] = False
    #: whether a number may stand for one operand (``x + 2``); else both operands are tensors
    scalar_operand: ClassVar[bool] = False
    #: the parameters holding sizes, which may be symbolic sizes of the inputs (``arange(T)``):
    #: the checker finds a tensor with each symbol (``nndsl.operators.runtime``), makes it an
    #: input of the operation and puts the table of where each symbol is read in ``args["runtime"]``
    sizes: ClassVar[tuple[str, ...]] = ()
    #: whether the operation makes a tensor from no tensor (arange): the checker gives it a tensor
    #: of the body as its first input, whose device the emitted tensor is made on
    device: ClassVar[bool] = False
    #: the parameter gathering the positional arguments after the others as a tuple (``expand(x, N, -1)``)
    varargs: ClassVar[str | None] = None
    #: whether the results are random (randn_like): tests compare their shapes and statistics, not values
    random: ClassVar[bool] = False
    #: the arguments uses of one block class may differ in, where they are numbers (a tensor-number
    #: operation's ``scalar``, roll's ``shifts``): the class computes each in its constructor
    slots: ClassVar[tuple[str, ...]] = ()
    examples: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    @classmethod
    def param_names(cls) -> list[str]:
        return [p.name for p in cls.params]

    @classmethod
    def required(cls) -> int:
        """How many leading parameters must be given."""
        return sum(1 for p in cls.params if p.required)

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        """The shape rule: the types of the results for these inputs and (converted) arguments,
        or ShapeError (with ``param`` naming the argument at fault, where one is)."""
        raise NotImplementedError

    @classmethod
    def unverified(cls, inputs: list[TensorType], args: dict) -> list[str]:
        """The size equalities the shape rule took as true without being able to verify them
        (``K == M`` of ``[N, K] @ [M, 3]``): the checker warns of each (W301)."""
        return []

    @classmethod
    def fixed_size(cls, args: dict) -> int | None:
        """The size the arguments fix for the input's ``dim`` (split's list of sizes adds up to
        it), which binds a symbolic size there as a layer's argument does; None if they fix none."""
        return None

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        """The torch emission: statements of ``forward`` computing the OpNode ``node`` from the
        variables ``inputs`` into ``outputs``; the backend's writer lays them out."""
        raise NotImplementedError

    @classmethod
    def slot_values(cls, args: dict) -> dict[str, Any]:
        """The arguments that uses of one block class may differ in, by key: the class writes
        each in ``forward`` from an attribute its constructor computes: those of ``slots`` that
        hold a number or a tuple of numbers."""
        return {name: args[name] for name in cls.slots if _numbers(args.get(name))}

    @classmethod
    def slot_name(cls, key: str, args: dict) -> str:
        """The attribute name a block class wants for the slot ``key`` when the spec wrote an
        expression there (a name written alone gives its own name)."""
        return key

    @classmethod
    def with_slots(cls, args: dict, values: dict[str, Any]) -> dict:
        """``args`` with the slots of ``values`` replaced (by ``Code`` of an attribute, or by a
        placeholder where classes are told apart)."""
        return {**args, **values}

    @classmethod
    def onnx_unsupported(cls, node, types: list[TensorType], opset: int) -> tuple[str, str | None] | None:
        """Why this use (arguments, input ``types``) has no ONNX mapping, with a help line; or None."""
        return None

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        """The ONNX mapping: nodes computing ``node`` from the values ``inputs`` of these types,
        built with the graph builder ``g`` (``nndsl.backends.onnx_graph.GraphBuilder``); the
        output values."""
        raise NotImplementedError


#: ONNX's element type (``TensorProto``) of each dtype an export keeps; others are exported as float32
_ELEMENT_TYPES = {"float32": 1, "int32": 6, "int64": 7}


def onnx_dtype(dtype: str) -> str:
    """The dtype a tensor of ``dtype`` has in an exported graph."""
    return dtype if dtype in _ELEMENT_TYPES else "float32"


def onnx_promoted(g, inputs: list[str], types: list[TensorType], dtype: str) -> list[str]:
    """The inputs cast to ``dtype`` where theirs differs: ONNX's arithmetic and Concat take one
    element type, where torch promotes (an int64 and a float32 tensor, a float number)."""
    to = onnx_dtype(dtype)
    return [x if onnx_dtype(t.dtype) == to else g.op("Cast", [x], to=_ELEMENT_TYPES[to]) for x, t in zip(inputs, types)]


def dim_of(dim: int, rank: int, what: str) -> int:
    """``dim`` as a non-negative axis of a ``rank``-D tensor, or E207 at the ``dim`` argument."""
    if not -rank <= dim < rank:
        raise ShapeError(
            "E207",
            f"{what}: dim {dim} is out of range for {rank}-D tensors (expected -{rank}..{rank - 1})",
            f"dim {dim} out of range",
            param="dim",
        )
    return dim % rank


def _numbers(value) -> bool:
    """A number, or a non-empty tuple of numbers (bools are flags, not numbers)."""
    items = value if isinstance(value, tuple) and value else (value,)
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)
