"""Dropouts (shape-preserving, p in [0, 1]) and stochastic depth."""

from __future__ import annotations

from nndsl.layers.base import BOOL, PROB, Layer, Param, ShapeError, choice, materialize, rank_error
from nndsl.layers.registry import register


class _Dropout(Layer):
    """What every dropout shares: p and inplace, the input's shape and layout kept, and the
    identity in eval mode (so in ONNX)."""

    layout = "elementwise"

    params = (Param("p", PROB, 0.5), Param("inplace", BOOL, False))

    @classmethod
    def output(cls, args, x, ctx):
        return x

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return x  # eval mode: dropout is the identity


@register
class Dropout(_Dropout):
    """Zeroes elements with probability p while training."""

    examples = (("Dropout(0.2)", "[N, 512]", "[N, 512]"), ("Dropout(1.5)", "[N, 512]", "E107"))


@register
class Dropout2d(_Dropout):
    """Zeroes whole channels of ``[N, C, H, W]`` with probability p while training."""

    examples = (("Dropout2d(0.1)", "[N, 16, 8, 8]", "[N, 16, 8, 8]"), ("Dropout2d(-0.1)", "[N, 16, 8, 8]", "E107"))

    @classmethod
    def output(cls, args, x, ctx):
        # torch returns the input untouched when p is 0 or 1 and only otherwise wants channels
        if not x.shape.rest and x.shape.rank < 2 and 0 < args["p"] < 1:
            raise rank_error("Dropout2d", "an at least 2-D", x)
        if not x.shape.rest and x.shape.rank != 4:
            ctx.warn(
                "W302",
                f"Dropout2d expects a 4-D input [N, C, H, W], got {x.shape.rank}-D {x.shape}; "
                "torch only warns and applies channel-wise dropout to what it takes as channels",
            )
        return x


@register
class Dropout1d(_Dropout):
    """Zeroes whole channels of ``[N, C, L]`` or ``[C, L]`` with probability p while training."""

    examples = (
        ("Dropout1d(0.1)", "[N, 16, 8]", "[N, 16, 8]"),
        ("Dropout1d(0.1)", "[16, 8]", "[16, 8]"),
        ("Dropout1d(0.1)", "[N, 16, 8, 8]", "E202"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        # torch checks the rank whatever p is
        x = materialize(x, 3, ("N", "C", "L"), ctx)
        if x.shape.rank not in (2, 3):
            raise rank_error("Dropout1d", "a 2-D (unbatched) or 3-D (batched)", x)
        return x


@register
class Dropout3d(_Dropout):
    """Zeroes whole channels of ``[N, C, D, H, W]`` (or ``[C, D, H, W]``) with probability p while training."""

    examples = (
        ("Dropout3d(0.1)", "[N, 16, 4, 8, 8]", "[N, 16, 4, 8, 8]"),
        ("Dropout3d(0.2)", "[16, 4, 8, 8]", "[16, 4, 8, 8]"),
        ("Dropout3d(0.2)", "[N, 8]", "W302"),
        ("Dropout3d(2.0)", "[N, 16, 4, 8, 8]", "E107"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        if not x.shape.rest and x.shape.rank not in (4, 5):
            ctx.warn(
                "W302",
                f"Dropout3d expects a 5-D input [N, C, D, H, W] or a 4-D one [C, D, H, W], got {x.shape.rank}-D "
                f"{x.shape}; torch only warns and drops what it takes as channels",
            )
        # a 4-D or smaller input gets a batch dim first: only a 0-D one has no channels then
        if not x.shape.rest and x.shape.rank == 0 and 0 < args["p"] < 1:
            raise rank_error("Dropout3d", "an at least 1-D", x)
        return x


@register
class AlphaDropout(_Dropout):
    """Dropout for SELU networks: keeps the mean and variance of its input while training."""

    examples = (("AlphaDropout(0.1)", "[N, 64]", "[N, 64]"), ("AlphaDropout(-1.0)", "[N, 64]", "E107"))


_STOCHASTIC_DEPTH = '''class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: while training, zeroes each sample's residual branch
    (mode "row") or the whole batch's (mode "batch") with probability p, and scales what is
    kept by 1 / (1 - p); the identity in eval mode."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"'''


@register
class StochasticDepth(Layer):
    """Drops a residual branch per sample (mode "row") or per batch ("batch") with probability p
    while training, as torchvision.ops.StochasticDepth; the identity in eval mode. torchvision
    is no dependency: the generated file defines the class."""

    layout = "elementwise"
    # a rearrangement of values in eval mode; while training torch scales integers by 1 / (1 - p)
    integer_input = "keep"
    bool_input = "keep"
    helper = _STOCHASTIC_DEPTH

    params = (Param("p", PROB), Param("mode", choice("row", "batch")))
    examples = (
        ("StochasticDepth(0.2, 'row')", "[N, 64, 8, 8]", "[N, 64, 8, 8]"),
        ("StochasticDepth(0.1, mode='batch')", "[N, T, 64]", "[N, T, 64]"),
        ("StochasticDepth(0.2, 'row')", "long[N, 4]", "E204"),
        ("StochasticDepth(0.2, 'row')", "[]", "W309"),
        ("StochasticDepth(0.2, 'column')", "[N, 64]", "E107"),
        ("StochasticDepth(1.2, 'row')", "[N, 64]", "E107"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        p = args["p"]
        if x.dtype in ("bool", "int32", "int64") and 0 < p < 1:
            raise ShapeError(
                "E204",
                f"{cls.dsl_name()}({p}) scales what it keeps by 1 / (1 - p), which torch cannot write into "
                f"a {x.dtype} tensor while training, got {x}",
                f"expected a floating-point input, got {x.dtype}",
            )
        problem = cls.training_problem(args, x)
        if problem is not None:
            ctx.warn("W309", f"{cls.dsl_name()}: torch raises in training mode: {problem}; eval mode runs")
        return x

    @classmethod
    def training_problem(cls, args, x):
        if args["mode"] == "row" and 0 < args["p"] and not x.shape.rest and x.shape.rank == 0:
            return "mode 'row' draws one value per sample of dim 0, which a 0-D input lacks"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return x  # eval mode: the identity


@register
class DropPath(StochasticDepth):
    """Stochastic depth under timm's name: ``DropPath(p)`` is ``StochasticDepth(p, "row")``."""

    torch_class = "StochasticDepth"
    params = (Param("p", PROB, 0.0), Param("mode", choice("row", "batch"), "row"))
    examples = (("DropPath(0.1)", "[N, 196, 768]", "[N, 196, 768]"), ("DropPath(p=1.5)", "[N, 8]", "E107"))

    @classmethod
    def resolve(cls, args, x, ctx):
        return StochasticDepth


@register
class FeatureAlphaDropout(_Dropout):
    """AlphaDropout of whole channels (dim 1) while training, for SELU networks; the identity in eval mode."""

    examples = (
        ("FeatureAlphaDropout(0.1)", "[N, 16, 8, 8]", "[N, 16, 8, 8]"),
        ("FeatureAlphaDropout(0.2)", "[8]", "E202"),
        ("FeatureAlphaDropout(1.5)", "[N, 16]", "E107"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        if not x.shape.rest and x.shape.rank < 2 and 0 < args["p"] < 1:
            raise rank_error("FeatureAlphaDropout", "an at least 2-D", x)
        return x
