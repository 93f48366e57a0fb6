"""Element-wise activations (shape-preserving) and Softmax/LogSoftmax."""

from __future__ import annotations

from nndsl.layers.base import BOOL, FLOAT, INT, POS_INT, Layer, Param, ShapeError, choice, optional
from nndsl.layers.registry import register

_INPLACE = Param("inplace", BOOL, False)


class _Elementwise(Layer):
    """Output shape equals input shape."""

    @classmethod
    def output(cls, args, x, ctx):
        return x


def _activation(name: str, doc: str, params: tuple = (_INPLACE,), integer_input: str | None = None):
    cls = type(
        name,
        (_Elementwise,),
        {
            "__doc__": doc,
            "__module__": __name__,
            "params": params,
            "integer_input": integer_input,
            "examples": ((name, "[N, 10]", "[N, 10]"), (name, "[N, 3, H, W]", "[N, 3, H, W]")),
        },
    )
    return register(cls)


ReLU = _activation("ReLU", "max(0, x), element-wise.", integer_input="keep")
ReLU6 = _activation("ReLU6", "min(max(0, x), 6), element-wise.", integer_input="keep")
LeakyReLU = _activation(
    "LeakyReLU", "x if x > 0 else negative_slope * x.", (Param("negative_slope", FLOAT, 0.01), _INPLACE)
)
ELU = _activation("ELU", "Exponential linear unit.", (Param("alpha", FLOAT, 1.0), _INPLACE))
SELU = _activation("SELU", "Scaled exponential linear unit.")
GELU = _activation("GELU", "Gaussian error linear unit.", (Param("approximate", choice("none", "tanh"), "none"),))
SiLU = _activation("SiLU", "x * sigmoid(x) (swish).")
Mish = _activation("Mish", "x * tanh(softplus(x)).")
Hardswish = _activation("Hardswish", "Hard swish, as in MobileNetV3.")
Sigmoid = _activation("Sigmoid", "1 / (1 + exp(-x)).", (), integer_input="float")
Tanh = _activation("Tanh", "Hyperbolic tangent.", (), integer_input="float")
Softplus = _activation(
    "Softplus", "log(1 + exp(beta * x)) / beta.", (Param("beta", FLOAT, 1.0), Param("threshold", FLOAT, 20.0))
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


class _SoftmaxBase(_Elementwise):
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
