"""Reductions over dims: sum and mean (``mean(x, dim=1)``, all dims without ``dim``)."""

from __future__ import annotations

from typing import Any

from nndsl.layers.base import BOOL, Kind, Param, ShapeError, as_int
from nndsl.operators.base import _ELEMENT_TYPES, TENSOR, Operator, dim_of, onnx_dtype
from nndsl.operators.registry import register
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign

_FLOATS = ("float64", "float32", "bfloat16", "float16")


def _dims(value: Any) -> tuple[int, ...] | None:
    """None (every dim), an integer or a list of integers."""
    if value is None:
        return None
    items = value if type(value) is tuple else (value,)
    return tuple(as_int(v) for v in items) or None  # () reduces every dim, as torch's does


class _Reduction(Operator):
    """``torch.<name>(input, dim, keepdim=False)``: the dims in ``dim`` (every dim without it)
    reduced, removed or (``keepdim``) kept as size 1."""

    params = (
        Param("input", TENSOR),
        Param("dim", Kind("an integer or a list of integers", _dims), None),
        Param("keepdim", BOOL, False),
    )

    @classmethod
    def _axes(cls, t: TensorType, dims: tuple[int, ...] | None) -> list[int]:
        rank = t.shape.rank
        if dims is None:
            return list(range(rank))
        axes = [dim_of(d, max(rank, 1), cls.name) for d in dims]  # a 0-D tensor takes dim 0 or -1
        if len(set(axes)) < len(axes):
            raise ShapeError("E207", f"{cls.name} names a dim twice: {list(dims)}", "a dim named twice", param="dim")
        return [a for a in axes if a < rank]

    @classmethod
    def _dtype(cls, dtype: str) -> str:
        raise NotImplementedError

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t = inputs[0]
        if t.shape.rest:
            raise ShapeError("E208", f"{cls.name} needs an input of known rank", "unknown rank")
        axes = cls._axes(t, args["dim"])
        if args["keepdim"]:
            dims = tuple(1 if i in axes else d for i, d in enumerate(t.shape.dims))
        else:
            dims = tuple(d for i, d in enumerate(t.shape.dims) if i not in axes)
        return [TensorType(Shape(dims), cls._dtype(t.dtype))]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        dims, extra = node.args["dim"], ()
        args: tuple = (Code(inputs[0]),)
        if dims is not None:
            args += (dims[0] if len(dims) == 1 else dims,)
        if node.args["keepdim"]:
            extra = (("keepdim", True),)
        return [assign(outputs[0], Call(f"torch.{cls.name}", args, extra))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        t = types[0]
        x = inputs[0]
        out = onnx_dtype(node.types[0].dtype)
        if onnx_dtype(t.dtype) != out:
            x = g.op("Cast", [x], to=_ELEMENT_TYPES[out])
        axes = cls._axes(t, node.args["dim"])
        if not axes:  # a 0-D input: nothing to reduce
            return [g.op("Identity", [x])]
        op_type = "ReduceSum" if cls.name == "sum" else "ReduceMean"
        return [g.reduce(op_type, x, axes, node.args["keepdim"])]


@register
class Sum(_Reduction):
    """torch.sum: the sum over ``dim``; integer and bool inputs give int64, as torch's sum does."""

    name = "sum"
    examples = (
        ("sum(a, 1)", "a: [2, 3]", "[2]"),
        ("sum(a, dim=(0, 2), keepdim=True)", "a: [2, 3, 4]", "[1, 3, 1]"),
        ("sum(a)", "a: int32[2, 3]", "int64[]"),
        ("sum(a, -1)", "a: bool[N, 5]", "int64[N]"),
        ("sum(a, 2)", "a: [2, 3]", "E207"),
        ("sum(a, (1, -1))", "a: [2, 3]", "E207"),
    )

    @classmethod
    def _dtype(cls, dtype: str) -> str:
        return dtype if dtype in _FLOATS else "int64"


@register
class Mean(_Reduction):
    """torch.mean: the mean over ``dim``; torch refuses integer inputs."""

    name = "mean"
    examples = (
        ("mean(a, dim=1)", "a: [N, T, 8]", "[N, 8]"),
        ("mean(a, (-2, -1), keepdim=True)", "a: [2, 3, 4]", "[2, 1, 1]"),
        ("mean(a)", "a: [4, 5]", "[]"),
        ("mean(a, 1)", "a: long[2, 3]", "E204"),
    )

    @classmethod
    def _dtype(cls, dtype: str) -> str:
        if dtype not in _FLOATS:
            raise ShapeError(
                "E204", f"torch's mean takes floating-point tensors, got {dtype}", f"{dtype} input", "convert it first"
            )
        return dtype
