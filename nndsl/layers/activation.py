"""Element-wise activations (shape-preserving) and Softmax/LogSoftmax."""

from __future__ import annotations

import math

from nndsl.layers.base import BOOL, FLOAT, INT, POS_INT, Layer, Param, ShapeError, choice, optional
from nndsl.layers.registry import register

_INPLACE = Param("inplace", BOOL, False)


class _Elementwise(Layer):
    """Output shape equals input shape."""

    layout = "elementwise"

    @classmethod
    def output(cls, args, x, ctx):
        return x


def _activation(name: str, doc: str, params: tuple = (_INPLACE,), integer_input: str | None = None, onnx=None):
    """Register an element-wise activation; ``onnx(g, x, args, dtype)`` is its ONNX mapping."""

    def to_onnx(cls, g, x, node, w):
        if node.input.dtype != node.output.dtype:  # an integer input promoted to float, as torch does
            x = g.op("Cast", [x], to=1)
        return onnx(g, x, node.args, node.output.dtype)

    cls = type(
        name,
        (_Elementwise,),
        {
            "__doc__": doc,
            "__module__": __name__,
            "params": params,
            "integer_input": integer_input,
            "bool_input": "float" if integer_input == "float" else None,
            "examples": ((name, "[N, 10]", "[N, 10]"), (name, "[N, 3, H, W]", "[N, 3, H, W]")),
            "to_onnx": classmethod(to_onnx),
        },
    )
    return register(cls)


def _unary(op_type: str, **attrs):
    return lambda g, x, args, dtype: g.op(op_type, [x], **attrs)


def _relu6(g, x, args, dtype):
    np_type = "int64" if dtype != "float32" else "float32"
    return g.op("Clip", [x, g.const(0, np_type, "zero"), g.const(6, np_type, "six")])


def _gelu(g, x, args, dtype):
    if g.opset >= 20:
        return g.op("Gelu", [x], approximate=args["approximate"])
    half = g.op("Mul", [x, g.scalar(0.5)])
    if args["approximate"] == "tanh":  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", [g.op("Mul", [x, x]), x])
        inner = g.op("Add", [x, g.op("Mul", [cube, g.scalar(0.044715)])])
        curve = g.op("Tanh", [g.op("Mul", [inner, g.scalar(math.sqrt(2 / math.pi))])])
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        curve = g.op("Erf", [g.op("Mul", [x, g.scalar(1 / math.sqrt(2))])])
    return g.op("Mul", [half, g.op("Add", [curve, g.scalar(1.0)])])


def _silu(g, x, args, dtype):
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


def _mish(g, x, args, dtype):
    if g.opset >= 18:
        return g.op("Mish", [x])
    return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])


def _softplus(g, x, args, dtype):
    # torch: x where beta * x > threshold, else log(1 + exp(beta * x)) / beta
    beta, threshold = args["beta"], args["threshold"]
    scaled = x if beta == 1 else g.op("Mul", [x, g.scalar(beta)])
    soft = g.op("Softplus", [scaled])
    if beta != 1:
        soft = g.op("Div", [soft, g.scalar(beta)])
    return g.op("Where", [g.op("Greater", [scaled, g.scalar(threshold)]), x, soft])


ReLU = _activation("ReLU", "max(0, x), element-wise.", integer_input="keep", onnx=_unary("Relu"))
ReLU6 = _activation("ReLU6", "min(max(0, x), 6), element-wise.", integer_input="keep", onnx=_relu6)
LeakyReLU = _activation(
    "LeakyReLU",
    "x if x > 0 else negative_slope * x.",
    (Param("negative_slope", FLOAT, 0.01), _INPLACE),
    onnx=lambda g, x, args, dtype: g.op("LeakyRelu", [x], alpha=args["negative_slope"]),
)
ELU = _activation(
    "ELU",
    "Exponential linear unit.",
    (Param("alpha", FLOAT, 1.0), _INPLACE),
    onnx=lambda g, x, args, dtype: g.op("Elu", [x], alpha=args["alpha"]),
)
# torch's constants, which ONNX's defaults round differently
SELU = _activation(
    "SELU",
    "Scaled exponential linear unit.",
    onnx=_unary("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805),
)
GELU = _activation(
    "GELU", "Gaussian error linear unit.", (Param("approximate", choice("none", "tanh"), "none"),), onnx=_gelu
)
SiLU = _activation("SiLU", "x * sigmoid(x) (swish).", onnx=_silu)
Mish = _activation("Mish", "x * tanh(softplus(x)).", onnx=_mish)
Hardswish = _activation("Hardswish", "Hard swish, as in MobileNetV3.", onnx=_unary("HardSwish"))
Hardsigmoid = _activation(
    "Hardsigmoid",
    "min(max(0, x / 6 + 1 / 2), 1): the gate of MobileNetV3's squeeze-excitation.",
    onnx=_unary("HardSigmoid", alpha=1 / 6, beta=0.5),
)
Sigmoid = _activation("Sigmoid", "1 / (1 + exp(-x)).", (), integer_input="float", onnx=_unary("Sigmoid"))
Tanh = _activation("Tanh", "Hyperbolic tangent.", (), integer_input="float", onnx=_unary("Tanh"))
Softplus = _activation(
    "Softplus",
    "log(1 + exp(beta * x)) / beta.",
    (Param("beta", FLOAT, 1.0), Param("threshold", FLOAT, 20.0)),
    onnx=_softplus,
)


@register
class PReLU(_Elementwise):
    """Leaky ReLU with a learned slope: one shared, or one per channel (dim 1)."""

    params = (Param("num_parameters", POS_INT, 1), Param("init", FLOAT, 0.25))
    examples = (
        ("PReLU", "[N, 10]", "[N, 10]"),
        ("PReLU(16)", "[N, 16, 8, 8]", "[N, 16, 8, 8]"),
        ("PReLU(16)", "[N, 8, 8, 8]", "E201"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        n = args["num_parameters"]
        if n > 1 and not x.shape.rest:
            # torch takes dim 1 as the channels, and a 0-D or 1-D input as having one channel
            if x.shape.rank < 2:
                raise ShapeError(
                    "E202",
                    f"PReLU({n}) needs an input with channels at dim 1, got {x.shape.rank}-D input {x.shape}",
                    f"expected [N, {n}, *], got {x.shape}",
                    "use PReLU() for one shared slope",
                )
            have = x.shape.dims[1]
            ctx.require_equal(
                have,
                n,
                f"PReLU has {n} parameters but the input has {have} channels (dim 1)",
                f"expected {n} channels, got {x.shape}",
                f"use PReLU({have}) or PReLU()" if isinstance(have, int) else None,
            )
        return x

    @classmethod
    def param_count(cls, args):
        return args["num_parameters"]

    @classmethod
    def to_onnx(cls, g, x, node, w):
        slope = w("weight")
        rank = node.input.shape.rank
        if slope.size > 1 and rank > 2:  # one slope per channel (dim 1): [C, 1, 1] broadcasts over the rest
            slope = slope.reshape((slope.size,) + (1,) * (rank - 2))
        return g.op("PRelu", [x, g.weight(slope, w.key("weight"))])


class _SoftmaxBase(_Elementwise):
    layout = "contiguous"  # torch's softmax writes a new row-major tensor

    params = (Param("dim", optional(INT), None),)

    @classmethod
    def resolve(cls, args, x, ctx):
        """Without ``dim``, pick the class dimension: the last one up to 3-D, the channels (1) above."""
        if args["dim"] is not None:
            return cls
        if x.shape.rest:
            raise ShapeError(
                "E205",
                f"{cls.__name__} without dim on an input of unknown rank",
                "input rank unknown",
                f"write {cls.__name__}(dim=-1) or give the input shape with --input",
            )
        rank = x.shape.rank
        chosen = max(rank - 1, 0) if rank <= 3 else 1
        implicit = 0 if rank in (0, 1, 3) else 1  # what torch itself would use, with a warning
        message = f"{cls.__name__} has no dim: using dim={chosen} of the {rank}-D input {x.shape}"
        if implicit != chosen:
            message += f" (torch's implicit choice would be dim={implicit}, the batch dimension)"
        ctx.note("N401", message, f"write {cls.__name__}(dim={chosen}) to make this explicit")
        args["dim"] = chosen
        return cls

    @classmethod
    def output(cls, args, x, ctx):
        dim, rank = args["dim"], x.shape.rank
        if not x.shape.rest and not -max(rank, 1) <= dim < max(rank, 1):
            lo, hi = -max(rank, 1), max(rank, 1) - 1
            raise ShapeError(
                "E202",
                f"{cls.__name__} dim={dim} is out of range for a {rank}-D input (expected a dimension in [{lo}, {hi}])",
                f"dim={dim} out of range for {x.shape}",
            )
        return x

    @classmethod
    def to_onnx(cls, g, x, node, w):
        op_type = "Softmax" if cls.__name__ == "Softmax" else "LogSoftmax"
        if node.input.shape.rank == 0:  # torch treats a 0-D tensor as one element: softmax 1, log 0
            return g.squeeze(g.op(op_type, [g.unsqueeze(x, [0])], axis=0), [0])
        return g.op(op_type, [x], axis=node.args["dim"])


@register
class Softmax(_SoftmaxBase):
    """Normalises ``dim`` into probabilities; without dim: the last dim up to 3-D, the channels above."""

    examples = (
        ("Softmax(dim=1)", "[N, 10]", "[N, 10]"),
        ("Softmax", "[N, 10]", "[N, 10]"),
        ("Softmax(dim=2)", "[N, 10]", "E202"),
    )


@register
class LogSoftmax(_SoftmaxBase):
    """log(softmax(x)) over ``dim``; without dim: the last dim up to 3-D, the channels above."""

    examples = (("LogSoftmax(dim=1)", "[N, 10]", "[N, 10]"), ("LogSoftmax", "[N, T, 10]", "[N, T, 10]"))
