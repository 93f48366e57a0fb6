"""Bitwise operators on integer and bool tensors: ``a & b``, ``a | b``, ``a ^ b`` and ``~a``
(torch's bitwise_and, bitwise_or, bitwise_xor, bitwise_not); on bool tensors they are the
logical and, or, xor and not that combine masks (``causal | padding[:, None, :]``)."""

from __future__ import annotations

from nndsl.layers.base import ShapeError
from nndsl.operators.elementwise import _ElementWise, onnx_operands
from nndsl.operators.registry import register
from nndsl.operators.unary import _Unary
from nndsl.shapes import TensorType
from nndsl.statements import Assign, Code, assign

_INTEGERS = ("bool", "int32", "int64")


def _no_floats(name: str, dtype: str) -> None:
    """E204 where the result would be floating point: torch has no bitwise kernel for it."""
    if dtype not in _INTEGERS:
        raise ShapeError(
            "E204",
            f"torch's {name} takes integer or bool tensors, got {dtype}",
            f"{dtype} operand",
            "compare first to make a mask (x > 0), or convert to integers",
        )


def _integer_opset(node, types: list[TensorType], opset: int) -> tuple[str, str | None] | None:
    """ONNX has And/Or/Xor/Not for bool and BitwiseAnd/... for integers from opset 18 only."""
    if node.types[0].dtype != "bool" and opset < 18:
        return (
            f"{node.op} of integer tensors needs ONNX opset 18 or later (Bitwise operators), not {opset}",
            "export with --opset 18 or later",
        )
    return None


class _Bitwise(_ElementWise):
    """``input op other`` of integer or bool tensors, broadcast and promoted as the arithmetic."""

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        (out,) = super().output(inputs, args)
        if isinstance(args.get("scalar"), float) or any(t.dtype not in _INTEGERS for t in inputs):
            bad = next((t.dtype for t in inputs if t.dtype not in _INTEGERS), "float32")
            _no_floats(cls.name, bad)
        return [out]

    @classmethod
    def slot_name(cls, key: str, args: dict) -> str:
        return "bits"

    @classmethod
    def onnx_unsupported(cls, node, types: list[TensorType], opset: int) -> tuple[str, str | None] | None:
        return _integer_opset(node, types, opset)

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        dtype = node.types[0].dtype
        a, b = onnx_operands(g, node, inputs, types, dtype)
        if dtype != "bool":
            return [g.op(cls.onnx_op, [a, b])]
        # an exported graph holds a bool mask as float32 0 and 1
        if cls.name == "bitwise_and":
            return [g.op("Mul", [a, b])]
        if cls.name == "bitwise_or":
            return [g.op("Max", [a, b])]
        return [g.op("Abs", [g.op("Sub", [a, b])])]


@register
class BitwiseAnd(_Bitwise):
    """``a & b``: both True (bool), or the bits both have (integers)."""

    name, symbol, onnx_op = "bitwise_and", "&", "BitwiseAnd"
    examples = (
        ("a & b", "a: bool[4, 1], b: bool[3]", "bool[4, 3]"),
        ("bitwise_and(a, b)", "a: long[2, 3], b: bool[3]", "int64[2, 3]"),
        ("a & 6", "a: long[5]", "int64[5]"),
        ("a & b", "a: [2], b: bool[2]", "E204"),
        ("a & b", "a: bool[2], b: bool[3]", "E208"),
    )


@register
class BitwiseOr(_Bitwise):
    """``a | b``: either True (bool), or the bits either has (integers)."""

    name, symbol, onnx_op = "bitwise_or", "|", "BitwiseOr"
    examples = (
        ("a | b", "a: bool[2, 1, 5], b: bool[5]", "bool[2, 1, 5]"),
        ("a | 1", "a: int32[3]", "int32[3]"),
        ("a | 1.5", "a: long[3]", "E204"),
    )


@register
class BitwiseXor(_Bitwise):
    """``a ^ b``: exactly one True (bool), or the bits one of them has (integers)."""

    name, symbol, onnx_op = "bitwise_xor", "^", "BitwiseXor"
    examples = (
        ("a ^ b", "a: bool[3], b: bool[3]", "bool[3]"),
        ("bitwise_xor(a, b)", "a: long[2, 2], b: long[2]", "int64[2, 2]"),
        ("a ^ b", "a: [3], b: [3]", "E204"),
    )


@register
class BitwiseNot(_Unary):
    """``~a``: the logical not of a bool tensor (a mask inverted), the bitwise not of integers."""

    name, onnx_op, promotes = "bitwise_not", "BitwiseNot", False
    examples = (
        ("~a", "a: bool[2, 3]", "bool[2, 3]"),
        ("bitwise_not(a)", "a: long[4]", "int64[4]"),
        ("~a", "a: [3]", "E204"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        _no_floats(cls.name, inputs[0].dtype)
        return [TensorType(inputs[0].shape, inputs[0].dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        return [assign(outputs[0], Code(f"~{inputs[0]}"))]

    @classmethod
    def onnx_unsupported(cls, node, types: list[TensorType], opset: int) -> tuple[str, str | None] | None:
        return _integer_opset(node, types, opset)

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        import numpy as np

        if types[0].dtype != "bool":
            return [g.op("BitwiseNot", inputs)]
        one = g.const(np.asarray(1.0, dtype=np.float32), np.float32, "one")  # a mask is float32 0 and 1
        return [g.op("Sub", [one, inputs[0]])]
