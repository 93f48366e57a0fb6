"""Masks as torch users build them: ``ones``, ``zeros`` and ``full`` of given (possibly symbolic)
sizes and dtype, and the triangles ``triu``/``tril``; ``triu(ones(T, T, dtype="bool"), 1)`` is
a causal attention mask (True = not allowed)."""

from __future__ import annotations

from typing import Any, ClassVar

from nndsl import shapes
from nndsl.layers.base import ArgValueError, Kind, Param, ShapeError, WrongType, as_int
from nndsl.operators.base import _ELEMENT_TYPES, TENSOR, Operator, onnx_dtype
from nndsl.operators.elementwise import _ElementWise, onnx_operands
from nndsl.operators.registry import register
from nndsl.operators.runtime import onnx_size, python_size
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign

#: torch's name of each dtype (``torch.bool``)
_TORCH_DTYPES = {
    "float32": "torch.float32",
    "float64": "torch.float64",
    "float16": "torch.float16",
    "bfloat16": "torch.bfloat16",
    "int64": "torch.long",
    "int32": "torch.int32",
    "bool": "torch.bool",
}


def _sizes(value: Any) -> tuple:
    """The sizes of a new tensor: non-negative integers or symbolic sizes, as a tuple
    (``ones(T, T)`` and ``ones((T, T))`` alike)."""
    if type(value) is tuple and len(value) == 1 and type(value[0]) is tuple:
        value = value[0]
    items = value if type(value) is tuple else (value,)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, shapes.Poly)):
            raise ArgValueError(f"a tensor's sizes are integers or sizes of the inputs, got {v!r}", code="E106")
        if isinstance(v, int) and v < 0:
            raise ArgValueError(f"a tensor's sizes are non-negative, got {v}", code="E207")
    return tuple(items)


def _dtype(value: Any) -> str | None:
    """A dtype as inputs declare them (``"bool"``, ``"long"``, ``"float32"``), normalised."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise WrongType
    if value not in shapes.DTYPES:
        raise ArgValueError(f"unknown dtype {value!r}: one of {', '.join(map(repr, shapes.DTYPES))}", code="E106")
    return shapes.DTYPES[value]


def _fill(value: Any) -> Any:
    if isinstance(value, (int, float)):  # True/False included: full(..., True) is a bool tensor
        return value
    raise WrongType


SIZES = Kind("sizes (non-negative integers or sizes of the inputs)", _sizes)
DTYPE = Kind('a dtype name such as "bool" or "long"', _dtype)
FILL = Kind("a number", _fill)


class _Filled(Operator):
    """``torch.<name>(*size, dtype=...)``: a new tensor of ``size`` holding one value, made on the
    device of a tensor of the body; symbolic sizes are read at run time."""

    device = True
    sizes = ("size",)
    fill: ClassVar[Any] = 0

    @classmethod
    def _value(cls, args: dict) -> Any:
        return cls.fill

    @classmethod
    def _result_dtype(cls, args: dict) -> str:
        if args["dtype"] is not None:
            return args["dtype"]
        return "float32"

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        return [TensorType(Shape(tuple(args["size"])), cls._result_dtype(args))]

    @classmethod
    def _call_args(cls, node, inputs: list[str]) -> tuple:
        sizes = tuple(python_size(d, node.args["runtime"], inputs) for d in node.args["size"])
        return sizes

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        keywords = []
        if node.args["dtype"] is not None:
            keywords.append(("dtype", Code(_TORCH_DTYPES[node.args["dtype"]])))
        if inputs:
            keywords.append(("device", Code(f"{inputs[0]}.device")))
        return [assign(outputs[0], Call(f"torch.{cls.name}", cls._call_args(node, inputs), tuple(keywords)))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        from onnx import helper

        table = node.args["runtime"]
        dtype = onnx_dtype(node.types[0].dtype)  # a bool mask is exported as float32 0 and 1
        value = cls._value(node.args)
        value = float(value) if dtype == "float32" else int(value)
        tensor = helper.make_tensor("value", _ELEMENT_TYPES[dtype], [1], [value])
        parts = [g.unsqueeze(onnx_size(g, d, table, inputs), [0]) for d in node.args["size"]]
        if not parts:
            import numpy as np

            shape = g.const(np.zeros(0, dtype=np.int64), np.int64, "shape")
        else:
            shape = g.op("Concat", parts, axis=0) if len(parts) > 1 else parts[0]
        return [g.op("ConstantOfShape", [shape], value=tensor)]


@register
class Ones(_Filled):
    """torch.ones: a tensor of ones of the sizes given (``ones(T, T, dtype="bool")``, the start of
    a causal mask); float32 unless ``dtype`` says otherwise."""

    name, varargs, fill = "ones", "size", 1
    params = (Param("size", SIZES), Param("dtype", DTYPE, None))
    examples = (
        ('ones(T, T, dtype="bool")', "x: long[N, T]", "bool[T, T]"),
        ("ones(2, 3)", "x: [2]", "[2, 3]"),
        ("ones((N, 4))", "x: [N, 3]", "[N, 4]"),
        ('ones(2*T, dtype="long")', "x: [T]", "int64[2*T]"),
        ("ones(0, 3) + x", "x: [3]", "[0, 3]"),
        ("ones(2, -1)", "x: [2]", "E207"),
        ('ones(2, dtype="complex")', "x: [2]", "E106"),
    )


@register
class Zeros(_Filled):
    """torch.zeros: a tensor of zeros of the sizes given; float32 unless ``dtype`` says otherwise."""

    name, varargs = "zeros", "size"
    params = (Param("size", SIZES), Param("dtype", DTYPE, None))
    examples = (
        ("zeros(N, T)", "x: [N, T]", "[N, T]"),
        ('zeros(3, dtype="int32")', "x: [2]", "int32[3]"),
        ('zeros(T, T, dtype="bool")', "x: [T, 4]", "bool[T, T]"),
        ("zeros(-2)", "x: [2]", "E207"),
    )


@register
class Full(_Filled):
    """torch.full: a tensor of the sizes given filled with ``fill_value``; the dtype is ``dtype``,
    else the value's (a bool gives bool, an int int64, a float float32)."""

    name = "full"
    params = (Param("size", SIZES), Param("fill_value", FILL), Param("dtype", DTYPE, None))
    examples = (
        ("full((T, T), -1e9)", "x: [N, T]", "[T, T]"),
        ("full((2, 3), 7)", "x: [2]", "int64[2, 3]"),
        ("full((N,), True)", "x: [N]", "bool[N]"),
        ('full((2,), 1, dtype="float32")', "x: [2]", "[2]"),
        ('full((T, T), 0.5, dtype="float64")', "x: [T]", "float64[T, T]"),
        ("full((2, -3), 1.0)", "x: [2]", "E207"),
        ("full((2, 3))", "x: [2]", "E105"),
    )

    @classmethod
    def _value(cls, args: dict) -> Any:
        return args["fill_value"]

    @classmethod
    def _result_dtype(cls, args: dict) -> str:
        value = args["fill_value"]
        if args["dtype"] is not None:
            return args["dtype"]
        return "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else "float32"

    @classmethod
    def _call_args(cls, node, inputs: list[str]) -> tuple:
        sizes = tuple(python_size(d, node.args["runtime"], inputs) for d in node.args["size"])
        return (sizes, node.args["fill_value"])


class _Triangle(Operator):
    """``torch.<name>(input, diagonal)``: the input with the elements below (triu) or above (tril)
    the ``diagonal``-th diagonal of its last two dims set to zero (False for a bool mask)."""

    params = (Param("input", TENSOR), Param("diagonal", Kind("an integer", as_int), 0))
    upper: ClassVar[int] = 1

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t = inputs[0]
        if not t.shape.rest and t.shape.rank < 2:
            raise ShapeError(
                "E208",
                f"{cls.name} takes a matrix or a stack of matrices (2 dims or more), got {t.shape}",
                f"{t.shape.rank}-D input",
            )
        return [TensorType(t.shape, t.dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        diagonal = node.args["diagonal"]
        args = (Code(inputs[0]),) + ((diagonal,) if diagonal else ())
        return [assign(outputs[0], Call(f"torch.{cls.name}", args))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        import numpy as np

        k = g.const(np.asarray(node.args["diagonal"], dtype=np.int64), np.int64, "diagonal")
        return [g.op("Trilu", [inputs[0], k], upper=cls.upper)]


@register
class Triu(_Triangle):
    """torch.triu: the upper triangle (``triu(ones(T, T, dtype="bool"), 1)`` is a causal mask)."""

    name = "triu"
    examples = (
        ('triu(ones(T, T, dtype="bool"), 1)', "x: long[N, T]", "bool[T, T]"),
        ("triu(a)", "a: [3, 4]", "[3, 4]"),
        ("triu(a, -1)", "a: [2, 5, 4]", "[2, 5, 4]"),
        ("triu(a, diagonal=2)", "a: long[4, 3]", "int64[4, 3]"),
        ("triu(a)", "a: [3]", "E208"),
        ("triu(a, 0.5)", "a: [3, 3]", "E106"),
    )


@register
class Tril(_Triangle):
    """torch.tril: the lower triangle (``tril(ones(T, T))`` marks what each position may see)."""

    name, upper = "tril", 0
    examples = (
        ("tril(ones(T, T))", "x: [T, 2]", "[T, T]"),
        ("tril(a, 1)", "a: [3, 4]", "[3, 4]"),
        ("tril(a, -2)", "a: int32[2, 2, 2]", "int32[2, 2, 2]"),
        ("tril(a)", "a: [5]", "E208"),
    )


class _Comparison(_ElementWise):
    """``input op other`` (``scores > 0``, ``tokens == 0``): a bool tensor of the broadcast shape;
    a number may stand for either operand. The checker builds the node (``Flow.tensor_compare``);
    written as arithmetic is; ONNX compares in the promoted dtype and exports the bool result as
    float32 0 and 1."""

    compares = True

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        from nndsl import ops

        if len(inputs) == 2:
            return [ops.broadcast(cls.name, *inputs)[0]._replace(dtype="bool", strides=None)]
        return [TensorType(inputs[0].shape, "bool")]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        from nndsl import ops

        if node.scalar is not None:
            dtype = ops.scalar_result_dtype("add", types[0].dtype, node.scalar)
        else:
            dtype = ops.result_dtype(types[0].dtype, types[1].dtype)
        result = g.op(cls.onnx_op, onnx_operands(g, node, inputs, types, dtype))
        if cls.name == "ne":
            result = g.op("Not", [result])
        return [g.op("Cast", [result], to=_ELEMENT_TYPES["float32"])]  # bool tensors are exported as float32


@register
class Eq(_Comparison):
    """``input == other``: True where the elements are equal (``tokens == 0``, a padding mask)."""

    name, symbol, onnx_op = "eq", "==", "Equal"
    examples = (
        ("tokens == 0", "tokens: long[N, T]", "bool[N, T]"),
        ("eq(a, b)", "a: [2, 3], b: [3]", "bool[2, 3]"),
        ("a == b", "a: [2, 3], b: [4]", "E208"),
    )


@register
class Ne(_Comparison):
    """``input != other``: True where the elements differ."""

    name, symbol, onnx_op = "ne", "!=", "Equal"
    examples = (
        ("a != 1", "a: int32[4]", "bool[4]"),
        ("a != b", "a: [2, 1], b: long[3]", "bool[2, 3]"),
        ("ne(a, b)", "a: [2], b: [3]", "E208"),
    )


@register
class Lt(_Comparison):
    """``input < other``."""

    name, symbol, onnx_op = "lt", "<", "Less"
    examples = (
        ("a < 0.5", "a: [3, 2]", "bool[3, 2]"),
        ("0 < a", "a: long[5]", "bool[5]"),
        ("a < b", "a: [3], b: [2]", "E208"),
    )


@register
class Le(_Comparison):
    """``input <= other``."""

    name, symbol, onnx_op = "le", "<=", "LessOrEqual"
    examples = (
        ("a <= b", "a: [2, 3], b: [2, 1]", "bool[2, 3]"),
        ("le(a, b)", "a: [2], b: [5]", "E208"),
    )


@register
class Gt(_Comparison):
    """``input > other`` (``scores > 0``)."""

    name, symbol, onnx_op = "gt", ">", "Greater"
    examples = (
        ("a > 0", "a: [N, T]", "bool[N, T]"),
        ("gt(a, b)", "a: [1, 4], b: [3, 1]", "bool[3, 4]"),
        ("a > b", "a: [4], b: [3]", "E208"),
    )


@register
class Ge(_Comparison):
    """``input >= other``."""

    name, symbol, onnx_op = "ge", ">=", "GreaterOrEqual"
    examples = (
        ("a >= 2", "a: long[3]", "bool[3]"),
        ("a >= b", "a: [2, 2], b: [3, 2]", "E208"),
    )
