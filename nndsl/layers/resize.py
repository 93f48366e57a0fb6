"""Spatial resizing and rearranging: Upsample, ZeroPad2d, PixelShuffle, PixelUnshuffle and ChannelShuffle."""

from __future__ import annotations

import math

from nndsl import shapes
from nndsl.layers.base import (
    BOOL,
    POS_INT,
    ArgValueError,
    Kind,
    Layer,
    Param,
    ShapeError,
    as_float,
    as_int,
    check_rank,
    choice,
    materialize,
    onnx_batched,
    optional,
    rank_error,
    require_nonempty,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType


def _ints_or_int(value):
    if isinstance(value, tuple):
        return tuple(_non_negative(v) for v in value)
    return _non_negative(value)


def _non_negative(v):
    # 0 is left to the shape rule: mode='area' gives an empty output, the other modes raise
    v = as_int(v)
    if v < 0:
        raise ArgValueError(f"sizes must be non-negative, got {v}")
    return v


def _floats_or_float(value):
    if isinstance(value, tuple):
        return tuple(_scale(v) for v in value)
    # torch's Upsample stores a falsy scale_factor as None: a single 0 means "not given"
    return _scale(value) or None


def _scale(v):
    # 0 is left to the shape rule: mode='area' gives an empty output, the other modes raise
    v = as_float(v)
    if v < 0:
        raise ArgValueError(f"scale factors must be non-negative, got {v}")
    return v


_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact", "area")
_MODE_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


@register
class Upsample(Layer):
    """Resizes the spatial dims of ``[N, C, *S]`` to ``size`` or by ``scale_factor`` (floor)."""

    params = (
        Param("size", optional(Kind("an integer or a tuple of integers", _ints_or_int)), None),
        Param("scale_factor", optional(Kind("a number or a tuple of numbers", _floats_or_float)), None),
        Param("mode", choice(*_MODES), "nearest"),
        Param("align_corners", optional(BOOL), None),
        Param(
            "recompute_scale_factor",
            optional(BOOL),
            None,
        ),
    )
    examples = (
        ("Upsample(scale_factor=2)", "[N, 3, 8, 8]", "[N, 3, 16, 16]"),
        ("Upsample(scale_factor=2)", "[2, 0, 4, 4]", "E203"),
        ("Upsample(scale_factor=1.5)", "[N, 3, 5, 7]", "[N, 3, 7, 10]"),
        ("Upsample(size=(10, 21), mode='bilinear')", "[N, 3, 5, 7]", "[N, 3, 10, 21]"),
        ("Upsample(scale_factor=2)", "[N, C, H, W]", "[N, C, 2*H, 2*W]"),
        ("Upsample()", "[N, 3, 8, 8]", "E107"),
        ("Upsample(scale_factor=2, mode='linear')", "[N, 3, 8, 8]", "E202"),
    )
    onnx_examples = (
        ("Upsample(scale_factor=(2, 3))", "[N, 2, H, W]"),
        ("Upsample(size=(7, 5))", "[N, 2, 4, 3]"),
        ("Upsample(scale_factor=1.7, mode='nearest-exact')", "[N, 2, 5, 6]"),
        ("Upsample(size=(9, 4), mode='nearest-exact')", "[N, 2, 5, 6]"),
        ("Upsample(scale_factor=2, mode='bilinear')", "[N, 2, H, W]"),
        ("Upsample(scale_factor=2, mode='bilinear', align_corners=True)", "[N, 2, 5, 6]"),
        ("Upsample(size=(9, 4), mode='bilinear', align_corners=False)", "[N, 2, 5, 6]"),
        ("Upsample(scale_factor=1.5, mode='bicubic')", "[N, 2, 6, 6]"),
        ("Upsample(size=(3, 8), mode='bicubic', align_corners=True)", "[N, 2, 6, 6]"),
        ("Upsample(scale_factor=2.5, mode='linear')", "[N, 2, L]"),
        ("Upsample(scale_factor=2, mode='trilinear')", "[N, 1, 3, 4, 5]"),
        ("Upsample(scale_factor=2, recompute_scale_factor=True, mode='bilinear')", "[N, 2, 5, 5]"),
        ("Upsample(scale_factor=3)", "[N, 2, 4]"),
    )

    @classmethod
    def validate(cls, args):
        if args["size"] is not None and args["scale_factor"] is not None:
            raise ArgValueError("only one of size or scale_factor should be given", "scale_factor")
        if args["size"] is None and args["scale_factor"] is None:
            raise ArgValueError("either size or scale_factor should be given", help="add scale_factor=2, for example")
        if args["recompute_scale_factor"] and args["size"] is not None:
            raise ArgValueError(
                "recompute_scale_factor is not meaningful with an explicit size",
                "recompute_scale_factor",
                "remove recompute_scale_factor",
            )
        if args["align_corners"] is not None and args["mode"] not in ("linear", "bilinear", "bicubic", "trilinear"):
            raise ArgValueError(
                "align_corners can only be set with the interpolating modes linear, bilinear, bicubic, trilinear",
                "align_corners",
            )

    @classmethod
    def output(cls, args, x, ctx):
        mode = args["mode"]
        x = materialize(x, _MODE_RANK.get(mode, 4), ("N", "C", "D", "H", "W"), ctx)
        rank = x.shape.rank
        if mode in _MODE_RANK and rank != _MODE_RANK[mode]:
            raise ShapeError(
                "E202",
                f"Upsample mode {mode!r} needs a {_MODE_RANK[mode]}-D input, got {rank}-D {x.shape}",
                f"{rank}-D input",
            )
        check_rank("Upsample", x, (3, 4, 5), "a 3-D, 4-D or 5-D")
        require_nonempty("Upsample", x, x.shape.dims[1:])
        n = rank - 2
        spatial = x.shape.dims[2:]
        if args["size"] is not None:
            size = args["size"]
            out = size if isinstance(size, tuple) else (size,) * n
            if len(out) != n:
                raise ShapeError("E202", f"Upsample size has {len(out)} entries for {n} spatial dims of {x.shape}")
        else:
            scale = args["scale_factor"]
            scales = scale if isinstance(scale, tuple) else (scale,) * n
            if len(scales) != n:
                raise ShapeError(
                    "E202", f"Upsample scale_factor has {len(scales)} entries for {n} spatial dims of {x.shape}"
                )
            out = tuple(shapes.scale(s, f) for s, f in zip(spatial, scales))
        # mode='area' is an adaptive average pool, which allows an empty output
        if mode != "area" and any(isinstance(o, int) and o < 1 for o in out):
            how = f"resized to {args['size']}" if args["size"] is not None else f"scaled by {args['scale_factor']}"
            raise ShapeError(
                "E203",
                f"Upsample would produce an empty output: {x.shape} {how}",
                "output size 0",
            )
        return TensorType(Shape(x.shape.dims[:2] + tuple(out)), x.dtype)

    @classmethod
    def onnx_unsupported(cls, node, opset):
        args = node.args
        if args["mode"] == "area":
            return "mode='area' (an adaptive average pool) is not mapped; use AdaptiveAvgPool2d to the size instead"
        if node.input.dtype != "float32":
            return "Upsample of an integer tensor has no ONNX Resize equivalent"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        """ONNX's Resize where it computes what torch does bit for bit (scale factors that are powers
        of two); otherwise torch's own index and weight computation (ATen's UpSample.h, in float32
        as there) feeding Gather, Mul and Add per spatial axis: folded to constants when the sizes
        are fixed, computed from the input's shape when they are symbolic."""
        args = node.args
        rank = node.input.shape.rank
        factors = args["scale_factor"]
        if factors is not None and not isinstance(factors, tuple):
            factors = (factors,) * (rank - 2)
        if _resize_is_exact(args, factors):
            return g.op("Resize", [x, "", g.const([1.0, 1.0, *factors], "float32")], **_resize_attrs(args))
        for axis in reversed(range(2, rank)):  # the last axis first, as torch nests its sums
            x = _resize_axis(g, x, node, axis, None if factors is None else factors[axis - 2])
        return x


_F32, _I64, _F64 = 1, 7, 11  # ONNX element types for Cast


def _resize_is_exact(args, factors) -> bool:
    """Resize's coordinates and sizes equal torch's exactly when each factor is a power of two (and
    torch uses it: no align_corners, no recompute_scale_factor), except that the interpolating
    modes need factors of at least 1: Resize reads position 0 for an output of length 1, torch
    interpolates (2 -> 1 at 0.5 takes the mean of both)."""
    if factors is None or args["align_corners"] or args["recompute_scale_factor"]:
        return False
    smallest = 0 if args["mode"] in ("nearest", "nearest-exact") else 1
    return all(f >= smallest and f > 0 and math.frexp(f)[0] == 0.5 for f in factors)


def _resize_attrs(args) -> dict:
    mode = args["mode"]
    if mode == "nearest":  # torch: source index floor(dst / scale)
        return {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    if mode == "nearest-exact":  # torch: floor((dst + 0.5) / scale)
        return {"mode": "nearest", "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_ceil"}
    attrs = {"mode": "cubic" if mode == "bicubic" else "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}
    if mode == "bicubic":
        attrs["cubic_coeff_a"] = -0.75  # torch's bicubic kernel
    return attrs


def _resize_axis(g, x: str, node, axis: int, factor: float | None) -> str:
    """One spatial axis resized as torch's CPU kernels do it: the source indices and weights of
    each output position (UpSample.h: area_pixel_compute_scale, nearest_idx, nearest_exact_idx,
    compute_source_index_and_lambda, get_cubic_upsample_coefficients; a multiply-add rounded once,
    as the kernels are compiled with FMA: the linear weights then agree bit for bit), then a
    weighted sum of Gathers, the taps added in torch's order."""
    import numpy as np

    args, mode = node.args, node.args["mode"]
    rank = node.input.shape.rank
    in_dim, out_dim = node.input.shape.dims[axis], node.output.shape.dims[axis]

    def f32(v):
        return g.const(np.float32(v), np.float32, "scalar")

    def cast(v, to):
        return g.op("Cast", [v], to=to)

    size_in = g.const([in_dim]) if isinstance(in_dim, int) else g.op("Shape", [x], start=axis, end=axis + 1)
    if isinstance(out_dim, int):
        size_out = g.const([out_dim])
    else:  # a factor of a symbolic size: floor(double(in) * factor), as torch computes it
        scaled = g.op("Mul", [cast(size_in, _F64), g.const([factor], np.float64)])
        size_out = cast(g.op("Floor", [scaled]), _I64)
    in_f, out_f = cast(size_in, _F32), cast(size_out, _F32)
    # the float32 ratio of input to output coordinates (area_pixel_compute_scale)
    corners = bool(args["align_corners"]) and mode not in ("nearest", "nearest-exact")
    if corners:
        one = f32(1.0)
        ratio = g.op(
            "Where",
            [
                g.op("Greater", [size_out, g.const([1])]),
                g.op("Div", [g.op("Sub", [in_f, one]), g.op("Sub", [out_f, one])]),
                f32(0.0),
            ],
        )
    elif factor is not None and not args["recompute_scale_factor"]:
        ratio = f32(np.float32(1.0 / factor))
    else:
        ratio = g.op("Div", [in_f, out_f])
    dst = g.op("Range", [g.const(0), g.squeeze(size_out, [0]), g.const(1)])
    dst_f = cast(dst, _F32)
    last = g.op("Sub", [size_in, g.const([1])])
    same = g.op("Equal", [size_out, size_in])

    def fma(a, b, c):  # a * b + c rounded once, as torch's kernels compiled with FMA compute it
        product = g.op("Mul", [cast(a, _F64), cast(b, _F64)])
        return cast(g.op("Add", [product, cast(c, _F64)]), _F32)

    def floor_index(real):
        return g.op("Min", [cast(g.op("Floor", [real]), _I64), last])

    if mode == "nearest":
        general = floor_index(g.op("Mul", [dst_f, ratio]))
        doubled = g.op("Equal", [size_out, g.op("Mul", [size_in, g.const([2])])])
        half = g.op("Div", [dst, g.const(2)])
        taps = [(g.op("Where", [same, dst, g.op("Where", [doubled, half, general])]), None)]
    elif mode == "nearest-exact":  # floorf((dst + 0.5) * scale): the product in double, floored as float
        product = g.op("Mul", [g.op("Add", [cast(dst, _F64), g.const(0.5, np.float64)]), cast(ratio, _F64)])
        taps = [(floor_index(cast(product, _F32)), None)]
    else:
        cubic = mode == "bicubic"
        if corners:
            real = g.op("Mul", [ratio, dst_f])
        else:
            real = fma(ratio, g.op("Add", [dst_f, f32(0.5)]), f32(-0.5))
            if not cubic:
                real = g.op("Max", [real, f32(0.0)])
        index = floor_index(real)
        lam = g.op("Min", [g.op("Max", [g.op("Sub", [real, cast(index, _F32)]), f32(0.0)]), f32(1.0)])
        if cubic:
            taps = []
            for j, weight in enumerate(_cubic_coefficients(g, lam, f32, fma)):
                shifted = g.op("Add", [index, g.const(j - 1)])
                taps.append((g.op("Max", [g.op("Min", [shifted, last]), g.const(0)]), weight))
        else:  # compute_source_index_and_lambda: an output as long as the input is a copy
            index = g.op("Where", [same, dst, index])
            lam = g.op("Where", [same, f32(0.0), lam])
            step = cast(g.op("Less", [index, last]), _I64)
            taps = [(index, g.op("Sub", [f32(1.0), lam])), (g.op("Add", [index, step]), lam)]
    shape = g.const([-1] + [1] * (rank - 1 - axis))
    total = None
    for index, weight in taps:
        term = g.op("Gather", [x, index], axis=axis)
        if weight is not None:
            term = g.op("Mul", [term, g.op("Reshape", [weight, shape])])
        total = term if total is None else g.op("Add", [total, term])
    return total


def _cubic_coefficients(g, t: str, f32, fma) -> list[str]:
    """torch's get_cubic_upsample_coefficients with A = -0.75, in float32 with the multiply-adds
    fused as its compiled kernels fuse them."""

    def conv1(v):  # ((A + 2) * x - (A + 3)) * x * x + 1
        return fma(g.op("Mul", [fma(f32(1.25), v, f32(-2.25)), v]), v, f32(1.0))

    def conv2(v):  # ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
        return fma(fma(fma(f32(-0.75), v, f32(3.75)), v, f32(-6.0)), v, f32(3.0))

    opposite = g.op("Sub", [f32(1.0), t])
    return [conv2(g.op("Add", [t, f32(1.0)])), conv1(t), conv1(opposite), conv2(g.op("Add", [opposite, f32(1.0)]))]


def _pads(value):
    """An int (all four sides) or (left, right[, top, bottom[, ...]]): torch's F.pad pairs, last dim first."""
    if isinstance(value, tuple):
        if not value or len(value) % 2:
            raise ArgValueError(
                f"must be an integer or a tuple of pairs such as (left, right, top, bottom), got {len(value)} values"
            )
        return tuple(as_int(v) for v in value)
    v = as_int(value)
    return (v, v, v, v)


@register
class ZeroPad2d(Layer):
    """Pads the last two dims with zeros: ``padding`` is an int or (left, right, top, bottom).

    As in torch, a tuple is any number of (before, after) pairs from the last dim backwards, so
    (left, right) pads only the last dim; negative values crop.
    """

    integer_input = "keep"  # torch has integer kernels for it
    bool_input = "keep"
    params = (Param("padding", Kind("an integer or a tuple (left, right, top, bottom)", _pads)),)
    examples = (
        ("ZeroPad2d(2)", "[N, 3, 8, 8]", "[N, 3, 12, 12]"),
        ("ZeroPad2d((1, 0, 2, 0))", "[N, 3, H, W]", "[N, 3, H + 2, W + 1]"),
        ("ZeroPad2d((1, 1))", "[2, 8]", "[2, 10]"),
        ("ZeroPad2d((0, 0, -1, -2))", "[1, 3, 3]", "[1, 0, 3]"),
        ("ZeroPad2d(1)", "[8]", "E202"),
        ("ZeroPad2d((0, 0, 1, -3))", "[1, 2, 3]", "E203"),
    )
    onnx_examples = (("ZeroPad2d((2, -1, 0, 3))", "[N, 2, 4, 5]"), ("ZeroPad2d(1)", "long[N, 2, 3, 3]"))

    @classmethod
    def emitted_params(cls, args, given=frozenset(), n_positional=0):
        return ["padding"], []

    @classmethod
    def written_value(cls, name, value):
        return value[0] if len(value) == 4 and len(set(value)) == 1 else value

    @classmethod
    def output(cls, args, x, ctx):
        pad = args["padding"]
        pairs = len(pad) // 2
        x = materialize(x, max(pairs, 4), ("N", "C", "D", "H", "W"), ctx)
        rank = x.shape.rank
        if rank < pairs:
            raise rank_error("ZeroPad2d", f"an at least {pairs}-D", x)
        dims = list(x.shape.dims)
        for i in range(pairs):
            before, after = pad[2 * i], pad[2 * i + 1]
            d = rank - 1 - i
            # torch crops the negative sides first, and each crop must leave a size of at least 0
            if isinstance(dims[d], int) and dims[d] + min(before, 0) + min(after, 0) < 0:
                raise ShapeError(
                    "E203",
                    f"ZeroPad2d{pad} crops more than dim {d} holds: size {dims[d]}, padding ({before}, {after})",
                    f"dim {d} has size {dims[d]}",
                )
            dims[d] = shapes.add(dims[d], before + after)
        return TensorType(Shape(tuple(dims)), x.dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        pad, rank = node.args["padding"], node.input.shape.rank
        begin, end = [0] * rank, [0] * rank
        for i in range(len(pad) // 2):  # pairs from the last dim backwards; negative values crop
            begin[rank - 1 - i], end[rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
        return g.op("Pad", [x, g.const(begin + end)])


@register
class PixelShuffle(Layer):
    """Moves channels into space: [*, C*r*r, H, W] -> [*, C, H*r, W*r] for ``upscale_factor`` r."""

    integer_input = "keep"  # a rearrangement: torch keeps every dtype
    bool_input = "keep"
    params = (Param("upscale_factor", POS_INT),)
    examples = (
        ("PixelShuffle(2)", "[N, 8, 3, 5]", "[N, 2, 6, 10]"),
        ("PixelShuffle(3)", "[18, H, W]", "[2, 3*H, 3*W]"),
        ("PixelShuffle(2)", "[2, 0, 3, 3]", "[2, 0, 6, 6]"),
        ("PixelShuffle(1)", "[N, C, H, W]", "[N, C, H, W]"),
        ("PixelShuffle(2)", "[*]", "[N, C//4, 2*H, 2*W]"),
        ("PixelShuffle(2)", "[N, 6, 3, 3]", "E201"),
        ("PixelShuffle(2)", "[8, 3]", "E202"),
        ("PixelShuffle(2)", "[N, C, H, W]", "W301"),
        ("PixelShuffle(0)", "[N, 4, 3, 3]", "E107"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        r = args["upscale_factor"]
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        if x.shape.rank < 3:
            raise rank_error("PixelShuffle", "an at least 3-D", x)
        *lead, c, h, w = x.shape.dims
        if isinstance(c, int) and c % (r * r):
            raise ShapeError(
                "E201",
                f"PixelShuffle expects its input's channel dim (-3) to be divisible by upscale_factor**2 "
                f"({r * r}), got {c}",
                f"{c} channels at dim -3",
                f"give it a multiple of {r * r} channels",
            )
        channels = shapes.floordiv(c, r * r)
        if shapes.known_equal(shapes.mul(channels, r * r), c) is not True:
            ctx.warn("W301", f"cannot verify that the channel count {c} is divisible by {r * r}")
        return TensorType(Shape((*lead, channels, shapes.mul(h, r), shapes.mul(w, r))), x.dtype)

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.input.shape.rank > 4:
            return f"ONNX's DepthToSpace takes 4-D input, got {node.input.shape.rank}-D"
        if node.input.dtype not in ("float32", "float64"):
            return f"onnxruntime has no DepthToSpace for {node.input.dtype}"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        r = node.args["upscale_factor"]
        # DepthToSpace in CRD order is torch's pixel_shuffle: channel, then the r x r block
        return onnx_batched(
            g, x, node.input.shape.rank == 3, lambda v: g.op("DepthToSpace", [v], blocksize=r, mode="CRD")
        )


@register
class PixelUnshuffle(Layer):
    """Moves space into channels: [*, C, H*r, W*r] -> [*, C*r*r, H, W] for ``downscale_factor`` r."""

    integer_input = "keep"  # a rearrangement: torch keeps every dtype
    bool_input = "keep"
    params = (Param("downscale_factor", POS_INT),)
    examples = (
        ("PixelUnshuffle(2)", "[N, 2, 6, 10]", "[N, 8, 3, 5]"),
        ("PixelUnshuffle(3)", "[2, 3*H, 3*W]", "[18, H, W]"),
        ("PixelUnshuffle(3)", "[4, 2, 3, 6]", "[4, 18, 1, 2]"),
        ("PixelUnshuffle(2)", "[N, 3, 5, 6]", "E201"),
        ("PixelUnshuffle(2)", "[4, 6]", "E202"),
        ("PixelUnshuffle(2)", "[N, C, H, W]", "W301"),
        ("PixelUnshuffle(0)", "[N, 4, 4, 4]", "E107"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        r = args["downscale_factor"]
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        if x.shape.rank < 3:
            raise rank_error("PixelUnshuffle", "an at least 3-D", x)
        *lead, c, h, w = x.shape.dims
        out = []
        for name, index, size in (("height", -2, h), ("width", -1, w)):
            if isinstance(size, int) and size % r:
                raise ShapeError(
                    "E201",
                    f"PixelUnshuffle expects its input's {name} (dim {index}) to be divisible by downscale_factor "
                    f"({r}), got {size}",
                    f"size {size} at dim {index}",
                    f"give it a multiple of {r} there",
                )
            part = shapes.floordiv(size, r)
            if shapes.known_equal(shapes.mul(part, r), size) is not True:
                ctx.warn("W301", f"cannot verify that the {name} {size} is divisible by {r}")
            out.append(part)
        return TensorType(Shape((*lead, shapes.mul(c, r * r), *out)), x.dtype)

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.input.shape.rank > 4:
            return f"PixelUnshuffle of a {node.input.shape.rank}-D input is not mapped (3-D and 4-D are)"
        if sum(not isinstance(d, int) for d in node.input.shape.dims[-3:]) > 1:
            return "PixelUnshuffle with more than one symbolic size among channels, height and width is not mapped"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        """[N, C, H, r, W, r] -> [N, C, r, r, H, W] -> [N, C*r*r, H, W]: torch's channel order
        (ONNX's SpaceToDepth puts the block position before the channel)."""
        r = node.args["downscale_factor"]
        n, c, h, w_ = (1,) * (4 - node.input.shape.rank) + node.input.shape.dims
        _, c_out, h_out, w_out = (1,) * (4 - node.output.shape.rank) + node.output.shape.dims

        def emit(v):
            split = _reshape(g, v, (n, c, h, w_), (n, c, h_out, r, w_out, r))
            moved = g.transpose(split, [0, 1, 3, 5, 2, 4])
            return _reshape(g, moved, (n, c, r, r, h_out, w_out), (n, c_out, h_out, w_out))

        return onnx_batched(g, x, node.input.shape.rank == 3, emit)


@register
class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle: the channels of [N, C, *] (dim 1) regrouped from ``groups``
    blocks of C / groups to C / groups blocks of ``groups``."""

    integer_input = "keep"  # a rearrangement: torch keeps every dtype
    bool_input = "keep"
    params = (Param("groups", POS_INT),)
    examples = (
        ("ChannelShuffle(2)", "[N, 116, 28, 28]", "[N, 116, 28, 28]"),
        ("ChannelShuffle(3)", "[2, 6, L]", "[2, 6, L]"),
        ("ChannelShuffle(2)", "[2, 0, 3, 3]", "[2, 0, 3, 3]"),
        ("ChannelShuffle(2)", "[N, 5, 3, 3]", "E201"),
        ("ChannelShuffle(2)", "[N, 4]", "E202"),
        ("ChannelShuffle(2)", "[N, C, H, W]", "W301"),
        ("ChannelShuffle(0)", "[N, 4, 3, 3]", "E107"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        groups = args["groups"]
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        if x.shape.rank < 3:
            raise rank_error("ChannelShuffle", "an at least 3-D", x)
        c = x.shape.dims[1]
        if isinstance(c, int) and c % groups:
            raise ShapeError(
                "E201",
                f"ChannelShuffle needs the channels (dim 1) divisible by groups ({groups}), got {c}",
                f"{c} channels at dim 1",
                f"give it a multiple of {groups} channels",
            )
        if shapes.known_equal(shapes.mul(shapes.floordiv(c, groups), groups), c) is not True:
            ctx.warn("W301", f"cannot verify that the channel count {c} is divisible by {groups}")
        return x

    layout = "contiguous"  # torch writes a new tensor

    @classmethod
    def onnx_unsupported(cls, node, opset):
        dims = node.input.shape.dims
        if sum(not isinstance(d, int) for d in (dims[1], *dims[2:])) > 1:
            return "ChannelShuffle with more than one symbolic size among the channels and the rest is not mapped"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        """[N, C, *S] -> [N, groups, C / groups, *S] -> swap the two -> [N, C, *S]."""
        groups, dims = node.args["groups"], node.input.shape.dims
        n, c, *rest = dims
        per = shapes.floordiv(c, groups)
        split = _reshape(g, x, dims, (n, groups, per, *rest))
        order = list(range(len(dims) + 1))
        order[1], order[2] = 2, 1
        return _reshape(g, g.transpose(split, order), (n, per, groups, *rest), dims)


def _reshape(g, x: str, in_dims: tuple, out_dims: tuple) -> str:
    """Reshape where a size may be 0 (allowzero: a 0 is a size, not "copy that dim")."""
    return g.op("Reshape", [x, g.shape_target(x, in_dims, out_dims)], allowzero=1)


class _UpsamplingAlias(Upsample):
    """torch's fixed-mode forms of Upsample: they resolve to it, and are emitted as it."""

    mode = "nearest"
    align_corners: bool | None = None

    @classmethod
    def _full(cls, args: dict) -> dict:
        return {**args, "mode": cls.mode, "align_corners": cls.align_corners, "recompute_scale_factor": None}

    @classmethod
    def validate(cls, args):
        Upsample.validate(cls._full(args))

    @classmethod
    def resolve(cls, args, x, ctx):
        args.update(cls._full(args))
        return Upsample


@register
class UpsamplingNearest2d(_UpsamplingAlias):
    """Nearest-neighbour resizing of ``[N, C, H, W]``: ``Upsample(size, scale_factor, mode="nearest")``."""

    params = Upsample.params[:2]
    examples = (
        ("UpsamplingNearest2d(scale_factor=2)", "[N, 3, H, W]", "[N, 3, 2*H, 2*W]"),
        ("UpsamplingNearest2d((5, 7))", "[N, 3, 2, 3]", "[N, 3, 5, 7]"),
        ("UpsamplingNearest2d()", "[N, 3, 4, 4]", "E107"),
    )


@register
class UpsamplingBilinear2d(_UpsamplingAlias):
    """Bilinear resizing of ``[N, C, H, W]`` with aligned corners:
    ``Upsample(size, scale_factor, mode="bilinear", align_corners=True)``."""

    mode = "bilinear"
    align_corners = True
    params = Upsample.params[:2]
    examples = (
        ("UpsamplingBilinear2d(scale_factor=2)", "[N, 3, 5, 6]", "[N, 3, 10, 12]"),
        ("UpsamplingBilinear2d(size=(9, 4))", "[N, 2, 5, 6]", "[N, 2, 9, 4]"),
        ("UpsamplingBilinear2d(scale_factor=2)", "[N, 3, 8]", "E202"),
    )
