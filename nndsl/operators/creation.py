"""Operations that make new tensors: arange (positions, possibly over a symbolic length) and
zeros_like, ones_like, randn_like (a tensor of another's shape and dtype)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from nndsl import shapes
from nndsl.layers.base import ArgValueError, Kind, Param, ShapeError, WrongType
from nndsl.operators.base import _ELEMENT_TYPES, TENSOR, Operator, onnx_dtype
from nndsl.operators.registry import register
from nndsl.operators.runtime import onnx_size, python_size
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign

_FLOATS = ("float64", "float32", "bfloat16", "float16")


def _number(value: Any) -> Any:
    """An integer, a float or a symbolic size (of an input, read at run time)."""
    if value is None or (isinstance(value, (int, float, shapes.Poly)) and not isinstance(value, bool)):
        return value
    raise WrongType


#: a bound of arange: a number or a symbolic size
NUMBER = Kind("a number or a size", _number)


def _nonzero(value: Any) -> Any:
    value = _number(value)
    if value == 0:
        raise ArgValueError("arange's step must be nonzero", code="E207")
    if isinstance(value, shapes.Poly):
        raise ArgValueError("arange's step must be a number, not a symbolic size", code="E106")
    return value


@register
class Arange(Operator):
    """torch.arange: ``start, start + step, ...`` below ``end`` (``arange(end)`` starts at 0);
    int64, or float32 when a bound is a float. ``end`` may be a symbolic size of an input
    (``arange(T)`` in ``model GPT(tokens: long[N, T])``), read at run time as ``tokens.size(1)``;
    the tensor is made on the device of a tensor of the body."""

    name, device = "arange", True
    slots = ("start", "end", "step")
    params = (Param("start", NUMBER), Param("end", NUMBER, None), Param("step", Kind("a nonzero number", _nonzero), 1))
    sizes = ("start", "end")
    examples = (
        ("arange(5)", "x: [2]", "int64[5]"),
        ("arange(2, 9, 3)", "x: [2]", "int64[3]"),
        ("arange(0, 1, 0.25)", "x: [2]", "[4]"),
        ("arange(6, 0, -2)", "x: [2]", "int64[3]"),
        ("arange(T)", "x: long[N, T]", "int64[T]"),
        ("arange(1, 2*T - 1)", "x: [T]", "int64[2*T - 2]"),
        ("arange(3, 3)", "x: [2]", "int64[0]"),
        ("arange(5, 0)", "x: [2]", "E207"),
        ("arange(0, 5, 0)", "x: [2]", "E207"),
    )

    @classmethod
    def slot_name(cls, key: str, args: dict) -> str:
        return "end" if key == "start" and args["end"] is None else key  # arange(L - shift): self.end

    @classmethod
    def _bounds(cls, args: dict) -> tuple[Any, Any, Any]:
        if args["end"] is None:
            return 0, args["start"], args["step"]
        return args["start"], args["end"], args["step"]

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        start, end, step = cls._bounds(args)
        floats = any(isinstance(v, float) for v in (start, end, step))
        dtype = "float32" if floats else "int64"
        span = shapes.sub(end, start) if not floats else None
        if span is None or isinstance(span, int):
            length = math.ceil((float(end) - float(start)) / step) if floats else -(-span // step)
            if length < 0:
                raise ShapeError(
                    "E207",
                    f"arange from {start} to {end} by {step} goes the wrong way: its bounds and step disagree",
                    "bounds inconsistent with step",
                )
            return [TensorType(Shape((length,)), dtype)]
        if floats:
            raise ShapeError("E207", "arange of a symbolic size takes integer bounds", "float bound")
        length = shapes.ceildiv(span, step) if step > 0 else shapes.ceildiv(shapes.neg(span), -step)
        return [TensorType(Shape((length,)), dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        start, end, step = cls._bounds(node.args)
        table = node.args["runtime"]
        bounds = [python_size(end, table, inputs)]
        if start != 0 or step != 1:
            bounds.insert(0, python_size(start, table, inputs))
        if step != 1:
            bounds.append(step)
        device = (("device", Code(f"{inputs[0]}.device")),) if inputs else ()
        return [assign(outputs[0], Call("torch.arange", tuple(bounds), device))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        import numpy as np

        start, end, step = cls._bounds(node.args)
        if node.types[0].dtype == "float32":
            bounds = [g.const(np.asarray(v, dtype=np.float32), np.float32, "bound") for v in (start, end, step)]
        else:
            bounds = [onnx_size(g, v, node.args["runtime"], inputs) for v in (start, end, step)]
        return [g.op("Range", bounds)]


class _Like(Operator):
    """``torch.<name>(input)``: a new tensor of the input's shape and dtype."""

    params = (Param("input", TENSOR),)
    fill: ClassVar[int] = 0

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        return [TensorType(inputs[0].shape, inputs[0].dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        return [assign(outputs[0], Call(f"torch.{cls.name}", (Code(inputs[0]),)))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        from onnx import helper

        dtype = onnx_dtype(types[0].dtype)
        value = helper.make_tensor("value", _ELEMENT_TYPES[dtype], [1], [cls.fill])
        return [g.op("ConstantOfShape", [g.op("Shape", inputs)], value=value)]


@register
class ZerosLike(_Like):
    """torch.zeros_like: zeros of the input's shape and dtype."""

    name = "zeros_like"
    examples = (
        ("zeros_like(a)", "a: [2, 3]", "[2, 3]"),
        ("zeros_like(a)", "a: long[4]", "int64[4]"),
        ("zeros_like(a, a)", "a: [2]", "E104"),
    )


@register
class OnesLike(_Like):
    """torch.ones_like: ones of the input's shape and dtype."""

    name, fill = "ones_like", 1
    examples = (
        ("ones_like(a) + a", "a: [2, 3]", "[2, 3]"),
        ("ones_like(a)", "a: int32[3, 1]", "int32[3, 1]"),
        ("ones_like()", "a: [2]", "E105"),
    )


@register
class RandnLike(_Like):
    """torch.randn_like: samples of the standard normal distribution in the input's shape and
    dtype (a VAE's reparameterisation ``mu + eps * std``); torch refuses integer inputs."""

    name, random = "randn_like", True
    examples = (
        ("randn_like(a)", "a: [2, 3]", "[2, 3]"),
        ("a + randn_like(a) * a", "a: [64, 32]", "[64, 32]"),
        ("randn_like(a)", "a: long[3]", "E204"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t = inputs[0]
        if t.dtype not in _FLOATS:
            raise ShapeError(
                "E204", f"torch's randn_like takes floating-point tensors, got {t.dtype}", f"{t.dtype} input"
            )
        return [TensorType(t.shape, t.dtype)]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        return [g.op("RandomNormalLike", inputs, dtype=_ELEMENT_TYPES["float32"])]
