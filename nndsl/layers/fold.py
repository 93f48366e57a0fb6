"""Sliding blocks: Unfold (im2col) and Fold (col2im), 4-D images only, as in torch."""

from __future__ import annotations

from nndsl import shapes
from nndsl.layers.base import Layer, Param, ShapeError, materialize, rank_error, require_nonempty, size_kind
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType


def _blocks(name: str, args: dict, spatial: tuple) -> tuple:
    """The number of sliding blocks along each spatial dim; E203 where it is below one."""
    out = []
    for size, k, d, p, s in zip(spatial, args["kernel_size"], args["dilation"], args["padding"], args["stride"]):
        out.append(shapes.add(shapes.floordiv(shapes.add(size, 2 * p - d * (k - 1) - 1), s), 1))
    if any(isinstance(o, int) and o < 1 for o in out):
        raise ShapeError(
            "E203",
            f"{name}'s blocks do not fit: spatial size {' x '.join(map(str, spatial))} with kernel_size "
            f"{args['kernel_size']} gives {' x '.join(map(str, out))} blocks",
            "no sliding block fits",
            "use a smaller kernel, more padding, or a larger input",
        )
    return tuple(out)


_PARAMS = (
    Param("kernel_size", size_kind(2, 1)),
    Param("dilation", size_kind(2, 1), 1),
    Param("padding", size_kind(2, 0), 0),
    Param("stride", size_kind(2, 1), 1),
)


def _one_hot(channels: int, kernel: tuple):
    """Grouped-convolution weights [channels * kh * kw, 1, kh, kw] picking one kernel position each:
    output channel c * kh * kw + i * kw + j reads position (i, j) of channel c, torch's order."""
    import numpy as np

    kh, kw = kernel
    weight = np.zeros((channels * kh * kw, 1, kh, kw), np.float32)
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                weight[c * kh * kw + i * kw + j, 0, i, j] = 1.0
    return weight


def _conv_attrs(args: dict) -> dict:
    p = args["padding"]
    return {
        "kernel_shape": list(args["kernel_size"]),
        "dilations": list(args["dilation"]),
        "strides": list(args["stride"]),
        "pads": [p[0], p[1], p[0], p[1]],
    }


@register
class Unfold(Layer):
    """Extracts sliding blocks: [N, C, H, W] -> [N, C * kh * kw, L], L the number of blocks."""

    bool_input = "keep"
    params = _PARAMS
    examples = (
        ("Unfold(2)", "[N, 3, 4, 4]", "[N, 12, 9]"),
        ("Unfold((2, 3), stride=2, padding=1)", "[3, 5, 6]", "[18, 9]"),
        ("Unfold(3, dilation=2)", "[N, 2, 9, W]", "[N, 18, 5*W - 20]"),
        ("Unfold(2)", "[2, 3, 1, 4]", "E203"),
        ("Unfold(2)", "[2, 0, 4, 4]", "E203"),
        ("Unfold(2)", "[4, 4]", "E202"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        if x.shape.rank not in (3, 4):
            raise rank_error("Unfold", "a 3-D (unbatched) or 4-D (batched)", x)
        dims = x.shape.dims
        require_nonempty("Unfold", x, dims[1:] if x.shape.rank == 4 else dims)
        blocks = _blocks("Unfold", args, dims[-2:])
        kh, kw = args["kernel_size"]
        return TensorType(Shape((*dims[:-3], shapes.mul(dims[-3], kh * kw), shapes.mul(*blocks))), x.dtype)

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.input.dtype != "float32":
            return f"Unfold is exported as a convolution, which takes no {node.input.dtype}"
        if not isinstance(node.input.shape.dims[-3], int):
            return "Unfold of a symbolic channel count is not mapped"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        """A grouped convolution with one-hot kernels (exact: each output copies one input value),
        its blocks then flattened."""
        args, channels = node.args, node.input.shape.dims[-3]
        unbatched = node.input.shape.rank == 3
        if unbatched:
            x = g.unsqueeze(x, [0])
        weight = g.const(_one_hot(channels, args["kernel_size"]), "float32", "unfold_kernel")
        y = g.op("Conv", [x, weight], group=channels, **_conv_attrs(args))
        y = g.op("Reshape", [y, g.const([0, 0, -1])])
        return g.squeeze(y, [0]) if unbatched else y


@register
class Fold(Layer):
    """Sums sliding blocks back into an image: [N, C * kh * kw, L] -> [N, C, *output_size]."""

    bool_input = "keep"  # torch's col2im has a bool kernel (overlaps combine with "or")
    params = (Param("output_size", size_kind(2, 1)), *_PARAMS)
    examples = (
        ("Fold((4, 5), 2)", "[N, 12, 12]", "[N, 3, 4, 5]"),
        ("Fold(4, (2, 3), stride=2, padding=1)", "[18, 6]", "[3, 4, 4]"),
        ("Fold((4, 5), 2)", "[N, 12, 11]", "E201"),
        ("Fold((4, 5), 2)", "[N, 11, 12]", "E201"),
        ("Fold((4, 5), 2)", "[12, 12]", "[3, 4, 5]"),
        ("Fold((4, 5), 2)", "[N, 2, 12, 12]", "E202"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, 3, ("N", "C", "L"), ctx)
        if x.shape.rank not in (2, 3):
            raise rank_error("Fold", "a 2-D (unbatched) or 3-D (batched)", x)
        dims = x.shape.dims
        require_nonempty("Fold", x, dims[1:] if x.shape.rank == 3 else dims)
        kh, kw = args["kernel_size"]
        c, length = dims[-2], dims[-1]
        if isinstance(c, int) and c % (kh * kw):
            raise ShapeError(
                "E201",
                f"Fold needs dim {x.shape.rank - 2} divisible by the kernel's {kh * kw} positions, got {c}",
                f"size {c}",
            )
        blocks = shapes.mul(*_blocks("Fold", args, args["output_size"]))
        ctx.require_equal(
            length,
            blocks,
            f"Fold to {args['output_size']} with these blocks expects {blocks} blocks (last dim), got {length}",
            f"expected {blocks} blocks, got {x.shape}",
        )
        return TensorType(Shape((*dims[:-2], shapes.floordiv(c, kh * kw), *args["output_size"])), x.dtype)

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.input.dtype != "float32":
            return f"Fold is exported as a transposed convolution, which takes no {node.input.dtype}"
        if not isinstance(node.input.shape.dims[-2], int):
            return "Fold of a symbolic channel count is not mapped"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        """The transposed one-hot convolution of Unfold: overlapping blocks add up, as torch's col2im."""
        args = node.args
        kh, kw = args["kernel_size"]
        channels = node.input.shape.dims[-2] // (kh * kw)
        unbatched = node.input.shape.rank == 2
        if unbatched:
            x = g.unsqueeze(x, [0])
        grid = _blocks("Fold", args, args["output_size"])
        x = g.op("Reshape", [x, g.const([0, 0, *grid])])
        weight = g.const(_one_hot(channels, args["kernel_size"]), "float32", "fold_kernel")
        attrs = _conv_attrs(args)
        y = g.op("ConvTranspose", [x, weight], group=channels, output_shape=list(args["output_size"]), **attrs)
        return g.squeeze(y, [0]) if unbatched else y
