"""Element-wise activations (shape-preserving), GLU, and Softmax/LogSoftmax/Softmin."""

from __future__ import annotations

import math

from nndsl import shapes
from nndsl.layers.base import (
    BOOL,
    FLOAT,
    INT,
    POS_INT,
    ArgValueError,
    Layer,
    Param,
    ShapeError,
    choice,
    materialize,
    optional,
    rank_error,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType

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


def _clip(low: str, high: str):
    """Clip to [args[low], args[high]], in the input's own type (integers stay integers)."""

    def onnx(g, x, args, dtype):
        np_type = "float32" if dtype == "float32" else "int64" if dtype == "int64" else "int32"
        return g.op("Clip", [x, g.const(args[low], np_type, "low"), g.const(args[high], np_type, "high")])

    return onnx


def _threshold(g, x, args, dtype):
    np_type = "float32" if dtype == "float32" else "int64" if dtype == "int64" else "int32"
    if dtype == "float32":
        above = g.op("Greater", [x, g.const(args["threshold"], "float32")])
    else:  # torch compares an integer with the float threshold as a number
        above = g.op("Greater", [g.op("Cast", [x], to=11), g.const(args["threshold"], "float64")])
    return g.op("Where", [above, x, g.const(args["value"], np_type, "value")])


def _min_max_check(args):
    if not args["max_val"] > args["min_val"]:
        raise ArgValueError(f"max_val ({args['max_val']}) must be greater than min_val ({args['min_val']})", "max_val")


Hardtanh = _activation(
    "Hardtanh",
    "min(max(x, min_val), max_val): a linear unit clipped to [min_val, max_val].",
    (Param("min_val", FLOAT, -1.0), Param("max_val", FLOAT, 1.0), _INPLACE),
    integer_input="keep",
    onnx=_clip("min_val", "max_val"),
)
Hardtanh.validate = classmethod(lambda cls, args: _min_max_check(args))
Hardtanh.examples = (
    ("Hardtanh", "[N, 10]", "[N, 10]"),
    ("Hardtanh(-2.0, 2.0)", "long[N, 3, H, W]", "[N, 3, H, W]"),
    ("Hardtanh(1.0, 1.0)", "[N, 10]", "E107"),
)
Hardshrink = _activation(
    "Hardshrink",
    "x where |x| > lambd, else 0.",
    (Param("lambd", FLOAT, 0.5),),
    onnx=lambda g, x, args, dtype: g.op("Shrink", [x], lambd=args["lambd"], bias=0.0),
)


def _softshrink_check(args):
    if args["lambd"] < 0:
        raise ArgValueError(f"lambd must be at least 0, got {args['lambd']}", "lambd")


Softshrink = _activation(
    "Softshrink",
    "x - lambd where x > lambd, x + lambd where x < -lambd, else 0 (lambd >= 0).",
    (Param("lambd", FLOAT, 0.5),),
    onnx=lambda g, x, args, dtype: g.op("Shrink", [x], lambd=args["lambd"], bias=args["lambd"]),
)
Softshrink.validate = classmethod(lambda cls, args: _softshrink_check(args))
Softshrink.examples = (*Softshrink.examples, ("Softshrink(-0.5)", "[N, 10]", "E107"))
Tanhshrink = _activation(
    "Tanhshrink",
    "x - tanh(x).",
    (),
    integer_input="float",
    onnx=lambda g, x, args, dtype: g.op("Sub", [x, g.op("Tanh", [x])]),
)
Softsign = _activation("Softsign", "x / (1 + |x|).", (), integer_input="float", onnx=_unary("Softsign"))
for _cls in (Tanhshrink, Softsign):
    _cls.bool_input = None  # torch promotes integers to float, and refuses bool
Threshold = _activation(
    "Threshold",
    "x where x > threshold, else value.",
    (Param("threshold", FLOAT), Param("value", FLOAT), _INPLACE),
    integer_input="keep",
    onnx=_threshold,
)
Threshold.examples = (
    ("Threshold(0.1, 20.0)", "[N, 10]", "[N, 10]"),
    ("Threshold(0.5, -1.0)", "long[N, 3, H, W]", "[N, 3, H, W]"),
)
LogSigmoid = _activation(
    "LogSigmoid",
    "log(1 / (1 + exp(-x))).",
    (),
    onnx=lambda g, x, args, dtype: g.op("Neg", [g.op("Softplus", [g.op("Neg", [x])])]),
)


def _celu_check(args):
    if args["alpha"] == 0:
        raise ArgValueError("alpha cannot be 0 for CELU", "alpha")


CELU = _activation(
    "CELU",
    "max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).",
    (Param("alpha", FLOAT, 1.0), _INPLACE),
    onnx=lambda g, x, args, dtype: g.op("Celu", [x], alpha=args["alpha"]),
)
CELU.validate = classmethod(lambda cls, args: _celu_check(args))
CELU.examples = (*CELU.examples, ("CELU(0.0)", "[N, 10]", "E107"))


@register
class GLU(Layer):
    """Gated linear unit: the first half of ``dim`` times the sigmoid of the second (dim halves)."""

    params = (Param("dim", INT, -1),)
    examples = (
        ("GLU", "[N, 10]", "[N, 5]"),
        ("GLU(dim=1)", "[N, 8, H, W]", "[N, 4, H, W]"),
        ("GLU(0)", "[2, 0]", "[1, 0]"),
        ("GLU", "[N, 7]", "E201"),
        ("GLU(dim=2)", "[N, 8]", "E202"),
        ("GLU", "[N, C]", "W301"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        dim, rank = args["dim"], x.shape.rank
        if x.shape.rest:
            if dim >= 0:
                raise ShapeError(
                    "E205", "GLU with a non-negative dim on an input of unknown rank", "input rank unknown"
                )
            x = materialize(x, -dim, tuple(f"D{i}" for i in range(-dim)), ctx)
            rank = x.shape.rank
        if rank == 0:
            raise rank_error("GLU", "an at least 1-D", x)
        if not -rank <= dim < rank:
            raise ShapeError(
                "E202",
                f"GLU dim={dim} is out of range for a {rank}-D input (expected a dimension in [{-rank}, {rank - 1}])",
                f"dim={dim} out of range for {x.shape}",
            )
        d = dim % rank
        size = x.shape.dims[d]
        if isinstance(size, int) and size % 2:
            raise ShapeError(
                "E201",
                f"GLU halves dim {dim}, which must be even, got size {size}",
                f"size {size} at dim {dim}",
            )
        half = shapes.floordiv(size, 2)
        if shapes.known_equal(shapes.mul(half, 2), size) is not True:
            ctx.warn("W301", f"cannot verify that GLU's dim {dim} (size {size}) is even")
        dims = list(x.shape.dims)
        dims[d] = half
        return TensorType(Shape(tuple(dims)), x.dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        axis = node.args["dim"] % node.input.shape.rank
        first, second = g.op("Split", [x], outputs=2, axis=axis, num_outputs=2)
        return g.op("Mul", [first, g.op("Sigmoid", [second])])

    @classmethod
    def onnx_unsupported(cls, node, opset):
        return None if opset >= 18 else "GLU's halves need ONNX's Split with num_outputs, from opset 18"


@register
class Softmin(_SoftmaxBase):
    """softmax(-x) over ``dim``; without dim: the last dim up to 3-D, the channels above."""

    examples = (
        ("Softmin(dim=1)", "[N, 10]", "[N, 10]"),
        ("Softmin", "[N, T, 10]", "[N, T, 10]"),
        ("Softmin(dim=-3)", "[N, 10]", "E202"),
    )

    @classmethod
    def to_onnx(cls, g, x, node, w):
        negated = g.op("Neg", [x])
        if node.input.shape.rank == 0:
            return g.squeeze(g.op("Softmax", [g.unsqueeze(negated, [0])], axis=0), [0])
        return g.op("Softmax", [negated], axis=node.args["dim"])


@register
class Softmax2d(_Elementwise):
    """Softmax over the channels (dim -3) of ``[N, C, H, W]`` or ``[C, H, W]``: per pixel."""

    layout = "contiguous"  # torch's softmax writes a new row-major tensor
    examples = (
        ("Softmax2d", "[N, 10, H, W]", "[N, 10, H, W]"),
        ("Softmax2d", "[10, 4, 4]", "[10, 4, 4]"),
        ("Softmax2d", "[N, 10]", "E202"),
        ("Softmax2d", "[2, 3, 4, 5, 6]", "E202"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        if x.shape.rank not in (3, 4):
            raise rank_error("Softmax2d", "a 3-D or 4-D", x)
        return x

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return g.op("Softmax", [x], axis=-3)


def _rrelu_check(args):
    if args["lower"] > args["upper"]:
        raise ArgValueError(
            f"lower ({args['lower']}) must not exceed upper ({args['upper']})", "lower", "swap the two bounds"
        )


RReLU = _activation(
    "RReLU",
    "Leaky ReLU with a random slope in [lower, upper] while training; (lower + upper) / 2 in eval mode.",
    (Param("lower", FLOAT, 1 / 8), Param("upper", FLOAT, 1 / 3), _INPLACE),
    onnx=lambda g, x, args, dtype: g.op("LeakyRelu", [x], alpha=(args["lower"] + args["upper"]) / 2),
)
RReLU.validate = classmethod(lambda cls, args: _rrelu_check(args))
RReLU.unsupported_dtypes = frozenset({"float16"})  # torch's training kernel has none
RReLU.examples = (*RReLU.examples, ("RReLU(0.5, 0.1)", "[N, 10]", "E107"), ("RReLU", "float16[N, 10]", "E204"))
