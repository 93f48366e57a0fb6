"""Dropout and Dropout2d: shape-preserving, p in [0, 1]."""

from __future__ import annotations

from nndsl.layers.base import BOOL, PROB, Layer, Param, rank_error
from nndsl.layers.registry import register


@register
class Dropout(Layer):
    """Zeroes elements with probability p while training."""

    layout = "elementwise"

    params = (Param("p", PROB, 0.5), Param("inplace", BOOL, False))
    examples = (("Dropout(0.2)", "[N, 512]", "[N, 512]"), ("Dropout(1.5)", "[N, 512]", "E107"))

    @classmethod
    def output(cls, args, x, ctx):
        return x

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return x  # eval mode: dropout is the identity


@register
class Dropout2d(Layer):
    """Zeroes whole channels of ``[N, C, H, W]`` with probability p while training."""

    layout = "elementwise"

    params = (Param("p", PROB, 0.5), Param("inplace", BOOL, False))
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

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return x  # eval mode: dropout is the identity
