"""Element-wise arithmetic (add, sub, mul, div; ``+ - * /`` in specs) under torch's broadcasting."""

from __future__ import annotations

from typing import ClassVar

from nndsl import ops
from nndsl.layers.base import Param, ShapeError
from nndsl.operators.base import TENSOR, Operator, onnx_dtype, onnx_promoted
from nndsl.operators.registry import register
from nndsl.shapes import TensorType
from nndsl.statements import Assign, BinOp, Code, assign


class _ElementWise(Operator):
    """``input op other``: two tensors broadcast together, or a tensor and a number (``scalar``)."""

    params = (Param("input", TENSOR), Param("other", TENSOR))
    scalar_operand = True
    slots = ("scalar",)
    onnx_op: ClassVar[str] = ""
    #: torch has no kernel for two bool tensors (``//``, ``%``, ``**``)
    refuses_bools: ClassVar[bool] = False

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        """Two tensors: the broadcast shape and promoted dtype (sizes it cannot verify are taken as
        equal); one tensor and ``args["scalar"]``: the tensor's shape and layout."""
        if cls.refuses_bools and len(inputs) == 2 and inputs[0].dtype == inputs[1].dtype == "bool":
            raise ShapeError(
                "E204",
                f"torch does not compute '{cls.symbol}' of bool tensors",
                f"bool operands of '{cls.symbol}'",
                "convert a mask to integers first, e.g. where(mask, 1, 0)",
            )
        if len(inputs) == 2:
            return [ops.broadcast(cls.name, *inputs)[0]]
        (x,) = inputs
        if cls.name == "sub" and x.dtype == "bool":
            raise ShapeError("E204", "torch does not subtract with a bool tensor", "bool operand of '-'")
        return [x._replace(dtype=ops.scalar_result_dtype(cls.name, x.dtype, args["scalar"]))]

    @classmethod
    def slot_name(cls, key: str, args: dict) -> str:
        """``x * (C // heads) ** -0.5`` in a block: ``self.scale``; ``x >= H - window``: ``self.bound``."""
        return _SCALAR_NAMES.get(cls.name, "bound" if getattr(cls, "compares", False) else key)

    @classmethod
    def unverified(cls, inputs: list[TensorType], args: dict) -> list[str]:
        """The size equalities broadcasting two tensors took as true (a symbolic size against another)."""
        return ops.broadcast(cls.name, *inputs)[1] if len(inputs) == 2 else []

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        sides = [Code(v) for v in inputs]
        if node.scalar is not None:  # the number, or the attribute of a block class holding it
            sides.insert(0 if node.scalar_first else 1, node.args.get("scalar", node.scalar))
        return [assign(outputs[0], BinOp(sides[0], cls.symbol, sides[1]))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        # torch's promoted type, which ONNX needs every operand in
        return [g.op(cls.onnx_op, onnx_operands(g, node, inputs, types, node.types[0].dtype))]


#: the attribute a block class computes the number of ``x op number`` in, by operation
_SCALAR_NAMES = {
    "add": "offset",
    "sub": "offset",
    "mul": "scale",
    "div": "divisor",
    "floor_divide": "divisor",
    "remainder": "divisor",
    "pow": "exponent",
}


def onnx_operands(g, node, inputs: list[str], types: list[TensorType], dtype: str) -> list[str]:
    """The two operands of ``input op other`` in an exported graph, both in ``dtype``: the tensors
    cast where theirs differs, the number of a tensor-number operation a constant of that type."""
    import numpy as np

    inputs = onnx_promoted(g, inputs, types, dtype)
    if node.scalar is None:
        return inputs
    kind = {"int32": np.int32, "int64": np.int64}.get(onnx_dtype(dtype), np.float32)
    scalar = g.const(np.asarray(node.scalar, dtype=kind), kind, "scalar")
    return [scalar, inputs[0]] if node.scalar_first else [inputs[0], scalar]


@register
class Add(_ElementWise):
    """``input + other``, broadcast as torch broadcasts: sizes align from the right, a 1 stretches."""

    name, symbol, onnx_op = "add", "+", "Add"
    examples = (
        ("add(a, b)", "a: [2, 3], b: [3]", "[2, 3]"),
        ("a + b", "a: [4, 1, 5], b: [3, 1]", "[4, 3, 5]"),
        ("add(a, b)", "a: [2, 3], b: [2, 4]", "E208"),
        ("a + 2", "a: long[2, 3]", "int64[2, 3]"),
    )


@register
class Sub(_ElementWise):
    """``input - other``; torch refuses bool operands (E204)."""

    name, symbol, onnx_op = "sub", "-", "Sub"
    examples = (
        ("sub(a, b)", "a: [2, 1], b: [1, 3]", "[2, 3]"),
        ("a - b", "a: [3], b: [4]", "E208"),
        ("a - b", "a: bool[3], b: bool[3]", "E204"),
    )


@register
class Mul(_ElementWise):
    """``input * other``, broadcast; integers stay integers, a float number gives floats."""

    name, symbol, onnx_op = "mul", "*", "Mul"
    examples = (
        ("mul(a, b)", "a: [5, 1], b: [1, 6]", "[5, 6]"),
        ("a * 0.5", "a: long[2]", "[2]"),
        ("a * b", "a: int32[2, 2], b: long[2]", "int64[2, 2]"),
        ("a * 3", "a: int32[2, 3]", "int32[2, 3]"),
        ("mul(a, b)", "a: [2, 3], b: [3, 2]", "E208"),
    )


@register
class Div(_ElementWise):
    """``input / other``: true division, so integer operands give float32."""

    name, symbol, onnx_op = "div", "/", "Div"
    examples = (
        ("div(a, b)", "a: long[2, 3], b: [3]", "[2, 3]"),
        ("2 / a", "a: [3, 4]", "[3, 4]"),
        ("a / b", "a: [2, 3], b: [4, 3]", "E208"),
    )


class _Floored(_ElementWise):
    """Python's floored division and its remainder, as torch computes them: the quotient rounded
    down, the remainder taking the divisor's sign. torch refuses two bool tensors."""

    refuses_bools = True

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        dtype = node.types[0].dtype
        a, b = onnx_operands(g, node, inputs, types, dtype)
        if dtype in ("int32", "int64"):  # ONNX's integer Mod with fmod=0 takes the divisor's sign
            remainder = g.op("Mod", [a, b], fmod=0)
            if cls.name == "remainder":
                return [remainder]
            return [g.op("Div", [g.op("Sub", [a, remainder]), b])]  # exact: no rounding left
        quotient = g.op("Floor", [g.op("Div", [a, b])])
        if cls.name == "floor_divide":
            return [quotient]
        return [g.op("Sub", [a, g.op("Mul", [quotient, b])])]


@register
class FloorDivide(_Floored):
    """``input // other``: the quotient rounded down (``-5 // 2`` is -3), integers stay integers."""

    name, symbol, onnx_op = "floor_divide", "//", ""
    examples = (
        ("a // 7", "a: long[49]", "int64[49]"),
        ("floor_divide(a, b)", "a: long[2, 3], b: [3]", "[2, 3]"),
        ("a // 2.0", "a: long[4]", "[4]"),
        ("a // b", "a: bool[3], b: bool[3]", "E204"),
        ("a // b", "a: [2], b: [3]", "E208"),
    )


@register
class Remainder(_Floored):
    """``input % other``: the remainder of the floored division, with the divisor's sign."""

    name, symbol, onnx_op = "remainder", "%", ""
    examples = (
        ("a % 7", "a: long[49]", "int64[49]"),
        ("remainder(a, b)", "a: long[2, 1], b: [3]", "[2, 3]"),
        ("a % 1.5", "a: [4]", "[4]"),
        ("a % b", "a: bool[3], b: bool[3]", "E204"),
        ("a % 2", "a: bool[3]", "int64[3]"),
    )


@register
class Pow(_ElementWise):
    """``input ** exponent`` (torch.pow): broadcast and promoted as the other arithmetic; torch
    refuses bool tensors, and an integer tensor to a negative integer power."""

    name, symbol, onnx_op = "pow", "**", "Pow"
    refuses_bools = True
    examples = (
        ("a ** 2", "a: [2, 3]", "[2, 3]"),
        ("a ** 2.0", "a: long[4]", "[4]"),
        ("2 ** a", "a: long[3]", "int64[3]"),
        ("pow(a, b)", "a: [2, 1], b: long[3]", "[2, 3]"),
        ("a ** -1", "a: long[3]", "E204"),
        ("a ** b", "a: bool[2], b: bool[2]", "E204"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        exponent = args["scalar"] if len(inputs) == 1 and not args.get("scalar_first") else None
        if inputs[0].dtype in ("int32", "int64") and isinstance(exponent, int) and exponent < 0:
            raise ShapeError(
                "E204",
                "torch does not raise integers to a negative integer power",
                "integer tensor to a negative power",
                "make either side a float: x ** -1.0",
            )
        return super().output(inputs, args)
