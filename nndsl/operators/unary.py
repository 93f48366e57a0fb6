"""Functions of one tensor, element by element or along one dim: exp, log, sqrt, rsqrt, tanh,
sigmoid, relu, gelu (function forms of the activations) and softmax, log_softmax."""

from __future__ import annotations

from typing import ClassVar

from nndsl.layers.activation import _gelu
from nndsl.layers.base import INT, Param, ShapeError, choice
from nndsl.operators.base import _ELEMENT_TYPES, TENSOR, Operator, dim_of, onnx_dtype
from nndsl.operators.registry import register
from nndsl.shapes import TensorType
from nndsl.statements import Assign, Call, Code, assign

_FLOATS = ("float64", "float32", "bfloat16", "float16")


def _need_float(name: str, t: TensorType) -> None:
    """E204 where torch has no kernel for ``t``'s integer or bool dtype."""
    if t.dtype not in _FLOATS:
        raise ShapeError(
            "E204",
            f"torch's {name} takes floating-point tensors, got {t.dtype}",
            f"{t.dtype} input",
            "convert it first: x * 1.0",
        )


def _as_float(g, x: str, t: TensorType) -> str:
    """``x`` cast to float32 in the exported graph where it holds integers (torch promotes them)."""
    return x if onnx_dtype(t.dtype) == "float32" else g.op("Cast", [x], to=_ELEMENT_TYPES["float32"])


class _Unary(Operator):
    """``torch.<name>(input)``: one tensor in, one of its shape out; integer and bool inputs give
    float32 as torch's unary float functions do (``promotes``), or are refused (``floats_only``)."""

    params: ClassVar = (Param("input", TENSOR),)
    onnx_op: ClassVar[str] = ""
    func: ClassVar[str] = ""
    promotes: ClassVar[bool] = True
    floats_only: ClassVar[bool] = False

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t = inputs[0]
        if cls.floats_only:
            _need_float(cls.name, t)
        if t.dtype == "bool" and not cls.promotes:
            raise ShapeError("E204", f"torch's {cls.name} does not take bool tensors", "bool input")
        dtype = t.dtype if t.dtype in _FLOATS or not cls.promotes else "float32"
        return [TensorType(t.shape, dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        extra = tuple((k, v) for k, v in node.args.items() if v != cls._default(k))
        return [assign(outputs[0], Call(cls.func or f"torch.{cls.name}", (Code(inputs[0]),), extra))]

    @classmethod
    def _default(cls, name: str):
        return next(p.default for p in cls.params if p.name == name)

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        x = _as_float(g, inputs[0], types[0]) if cls.promotes else inputs[0]
        return [g.op(cls.onnx_op, [x])]


@register
class Exp(_Unary):
    """torch.exp: e to the power of each element; integers give float32."""

    name, onnx_op = "exp", "Exp"
    examples = (("exp(a)", "a: [2, 3]", "[2, 3]"), ("exp(a)", "a: long[4]", "[4]"), ("exp(a, 1)", "a: [2]", "E104"))


@register
class Log(_Unary):
    """torch.log: the natural logarithm of each element (nan below 0, -inf at 0); integers give float32."""

    name, onnx_op = "log", "Log"
    examples = (
        ("log(exp(a))", "a: [2, 3]", "[2, 3]"),
        ("log(a * a + 1)", "a: int32[3]", "[3]"),
        ("log(a, b)", "a: [2], b: [2]", "E104"),
    )


@register
class Sqrt(_Unary):
    """torch.sqrt: the square root of each element; integers give float32."""

    name, onnx_op = "sqrt", "Sqrt"
    examples = (
        ("sqrt(exp(a))", "a: [2, 5]", "[2, 5]"),
        ("sqrt(a * a)", "a: long[3, 1]", "[3, 1]"),
        ("sqrt(2)", "a: [2]", "E114"),
    )


@register
class Rsqrt(_Unary):
    """torch.rsqrt: one over the square root of each element; integers give float32."""

    name, onnx_op = "rsqrt", "Sqrt"
    examples = (
        ("rsqrt(exp(a))", "a: [4, 2]", "[4, 2]"),
        ("rsqrt(a * a + 1)", "a: long[3]", "[3]"),
        ("rsqrt()", "a: [2]", "E105"),
    )

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        return [g.op("Reciprocal", [g.op("Sqrt", [_as_float(g, inputs[0], types[0])])])]


@register
class Tanh(_Unary):
    """torch.tanh: the hyperbolic tangent of each element; integers give float32."""

    name, onnx_op = "tanh", "Tanh"
    examples = (("tanh(a)", "a: [2, 3]", "[2, 3]"), ("tanh(a)", "a: bool[3]", "[3]"), ("tanh(a, a)", "a: [2]", "E104"))


@register
class Sigmoid(_Unary):
    """torch.sigmoid: 1 / (1 + e^-x) of each element; integers give float32."""

    name, onnx_op = "sigmoid", "Sigmoid"
    examples = (
        ("sigmoid(a)", "a: [2, 3]", "[2, 3]"),
        ("sigmoid(a)", "a: long[2]", "[2]"),
        ("sigmoid(a, dim=1)", "a: [2]", "E102"),
    )


@register
class Relu(_Unary):
    """torch.relu: max(x, 0) of each element, keeping the dtype; torch refuses bool tensors."""

    name, onnx_op, promotes = "relu", "Relu", False
    examples = (
        ("relu(a)", "a: [2, 3]", "[2, 3]"),
        ("relu(a)", "a: long[3]", "int64[3]"),
        ("relu(a)", "a: bool[3]", "E204"),
    )

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        if onnx_dtype(types[0].dtype) == "int64" or types[0].dtype == "int32":  # ONNX Relu: floats, int32/64 later
            import numpy as np

            kind = np.int64 if onnx_dtype(types[0].dtype) == "int64" else np.int32
            return [g.op("Max", [inputs[0], g.const(np.asarray(0, dtype=kind), kind, "zero")])]
        return [g.op("Relu", inputs)]


@register
class Gelu(_Unary):
    """torch.nn.functional.gelu: x times the normal CDF of x (``approximate="tanh"``: its tanh
    approximation); torch has no kernel for integers."""

    name, func, floats_only = "gelu", "nn.functional.gelu", True
    params = (Param("input", TENSOR), Param("approximate", choice("none", "tanh"), "none"))
    examples = (
        ("gelu(a)", "a: [2, 3]", "[2, 3]"),
        ('gelu(a, approximate="tanh")', "a: [4]", "[4]"),
        ("gelu(a)", "a: long[3]", "E204"),
        ('gelu(a, approximate="erf")', "a: [3]", "E107"),
    )

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        return [_gelu(g, inputs[0], node.args, types[0].dtype)]


class _Softmax(Operator):
    """``torch.<name>(input, dim=...)``: normalised along ``dim``; torch has no kernel for integers."""

    params = (Param("input", TENSOR), Param("dim", INT))

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t = inputs[0]
        dim_of(args["dim"], max(t.shape.rank, 1), cls.name)  # a 0-D tensor takes dim 0 or -1
        _need_float(cls.name, t)
        return [TensorType(t.shape, t.dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        return [assign(outputs[0], Call(f"torch.{cls.name}", (Code(inputs[0]),), (("dim", node.args["dim"]),)))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        op_type = "Softmax" if cls.name == "softmax" else "LogSoftmax"
        if types[0].shape.rank == 0:  # torch treats a 0-D tensor as one element
            return [g.squeeze(g.op(op_type, [g.unsqueeze(inputs[0], [0])], axis=0), [0])]
        return [g.op(op_type, inputs, axis=node.args["dim"] % types[0].shape.rank)]


@register
class Softmax(_Softmax):
    """torch.softmax: exp(x) / sum(exp(x)) along ``dim``, probabilities that add up to 1."""

    name = "softmax"
    examples = (
        ("softmax(a, dim=-1)", "a: [2, 5]", "[2, 5]"),
        ("softmax(a, 1)", "a: [2, 3, 4]", "[2, 3, 4]"),
        ("softmax(a, dim=2)", "a: [2, 5]", "E207"),
        ("softmax(a, dim=-1)", "a: long[2, 5]", "E204"),
        ("softmax(a)", "a: [2, 5]", "E105"),
    )


@register
class LogSoftmax(_Softmax):
    """torch.log_softmax: the logarithm of softmax along ``dim``, computed stably."""

    name = "log_softmax"
    examples = (
        ("log_softmax(a, dim=1)", "a: [3, 4]", "[3, 4]"),
        ("log_softmax(a, -3)", "a: [3, 4]", "E207"),
        ("log_softmax(a, 0)", "a: bool[3]", "E204"),
    )


@register
class Negative(_Unary):
    """``-x`` (torch.neg): each element negated, the dtype kept; torch refuses bool tensors (a
    mask is inverted with ``~``, not ``-``)."""

    name, onnx_op, promotes = "neg", "Neg", False
    examples = (
        ("-a", "a: [2, 3]", "[2, 3]"),
        ("neg(a)", "a: long[4]", "int64[4]"),
        ("-a", "a: bool[3]", "E204"),
    )

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        return [assign(outputs[0], Code(f"-{inputs[0]}"))]
