"""Pooling: MaxPool1d/2d/3d, AvgPool1d/2d/3d and the adaptive pools."""

from __future__ import annotations

from nndsl import shapes
from nndsl.layers.base import (
    BOOL,
    SPATIAL_NAMES,
    ArgValueError,
    Kind,
    Layer,
    Param,
    ShapeError,
    WrongType,
    as_int,
    check_rank,
    materialize,
    onnx_batched,
    optional,
    rank_error,
    require_nonempty,
    size_kind,
    spatial_too_small,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType


def _pool_out(size, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape, for an int or symbolic input size.

    With ceil_mode, torch counts the windows that start at or before ``num`` rounded up (a window
    may hang over the end), less a last one that would start in the right padding: window ``i``
    starts at ``i*s`` and must start before ``size + p``. Both bounds at once are
    ``i*s <= num + min(s, k_eff - p) - 1``, one floor division, exact for symbolic sizes too."""
    num = shapes.add(size, 2 * p - d * (k - 1) - 1)
    if not ceil_mode:
        return shapes.add(shapes.floordiv(num, s), 1)
    k_eff = d * (k - 1) + 1
    return shapes.add(shapes.floordiv(shapes.add(num, min(s, k_eff - p) - 1), s), 1)


class _PoolNd(Layer):
    n = 2
    #: torch's avg_pool3d also wants every unpadded input size to be at least the kernel size
    input_covers_kernel = False

    @classmethod
    def validate(cls, args):
        if args.get("return_indices"):
            raise ArgValueError(
                "return_indices=True makes the layer return a tuple, which a chain cannot continue with",
                "return_indices",
                "remove return_indices",
            )

    @classmethod
    def output(cls, args, x, ctx):
        n = cls.n
        x = materialize(x, n + 2, SPATIAL_NAMES[n], ctx)
        check_rank(cls.__name__, x, (n + 1, n + 2), f"a {n + 1}-D (unbatched) or {n + 2}-D (batched)")
        require_nonempty(cls.__name__, x, x.shape.dims[-n - 1 :])
        kernel = args["kernel_size"]
        stride = args["stride"] if args["stride"] is not None else kernel
        padding = args["padding"]
        dilation = args.get("dilation", (1,) * n)
        for k, p in zip(kernel, padding):
            if p > k // 2:
                raise ShapeError(
                    "E207",
                    f"{cls.__name__} padding must be at most half of the kernel size, got padding={p}, kernel_size={k}",
                    f"padding {p} > {k}//2",
                    f"use padding <= {k // 2}",
                    param="padding",
                )
        spatial = x.shape.dims[-n:]
        if cls.input_covers_kernel and any(isinstance(d, int) and d < k for d, k in zip(spatial, kernel)):
            raise ShapeError(
                "E203",
                f"{cls.__name__}'s kernel {_fmt(kernel)} is larger than its input {_fmt(spatial)}"
                " (torch ignores the padding here)",
                f"input size {_fmt(spatial)}",
                "use a smaller kernel or a larger input",
            )
        out = [
            _pool_out(size, kernel[i], stride[i], padding[i], dilation[i], args["ceil_mode"])
            for i, size in enumerate(spatial)
        ]
        if any(isinstance(o, int) and o < 1 for o in out):
            raise spatial_too_small(cls.__name__, spatial, out)
        return TensorType(Shape(x.shape.dims[:-n] + tuple(out)), x.dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        unbatched = node.input.shape.rank == cls.n + 1
        return onnx_batched(g, x, unbatched, lambda x: cls._onnx_pool(g, x, node))

    @classmethod
    def _onnx_attrs(cls, node, prepadded: bool = False) -> dict:
        """Pooling attributes; ``prepadded``: the input was already padded by ``padding`` on both sides."""
        args = node.args
        kernel = args["kernel_size"]
        stride = args["stride"] if args["stride"] is not None else kernel
        dilation = args.get("dilation", (1,) * cls.n)
        padding = list(args["padding"])
        begin = [0] * cls.n if prepadded else list(padding)
        end = list(begin)
        ceil_mode = args["ceil_mode"]
        spatial = node.input.shape.dims[-cls.n :]
        if ceil_mode and all(isinstance(size, int) for size in spatial):
            # torch drops a last window that would start in the right padding; ONNX's ceil_mode
            # keeps it. Pad the end so that the floor rule gives torch's count instead.
            for i, size in enumerate(spatial):
                out = _pool_out(size, kernel[i], stride[i], padding[i], dilation[i], True)
                held = size + (2 * padding[i] if prepadded else padding[i])  # what the windows start from
                end[i] = max((out - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 - held, 0)
            ceil_mode = False
        return {"kernel_shape": list(kernel), "strides": list(stride), "pads": begin + end, "ceil_mode": int(ceil_mode)}


def _fmt(sizes) -> str:
    return " x ".join(str(d) for d in sizes)


def _max_params(n):
    return (
        Param("kernel_size", size_kind(n, 1)),
        Param("stride", optional(size_kind(n, 1)), None),
        Param("padding", size_kind(n, 0), 0),
        Param("dilation", size_kind(n, 1), 1),
        Param("return_indices", BOOL, False),
        Param("ceil_mode", BOOL, False),
    )


def _avg_params(n):
    params = (
        Param("kernel_size", size_kind(n, 1)),
        Param("stride", optional(size_kind(n, 1)), None),
        Param("padding", size_kind(n, 0), 0),
        Param("ceil_mode", BOOL, False),
        Param("count_include_pad", BOOL, True),
    )
    if n > 1:
        params += (Param("divisor_override", optional(size_kind(1, 1)), None),)
    return params


class _MaxPoolNd(_PoolNd):
    @classmethod
    def _onnx_pool(cls, g, x, node):
        attrs = {**cls._onnx_attrs(node), "dilations": list(node.args["dilation"])}
        if node.input.dtype == "float32":
            return g.op("MaxPool", [x], **attrs)
        # onnxruntime's MaxPool takes no int64: pool in float64, exact for every index up to 2**53
        pooled = g.op("MaxPool", [g.op("Cast", [x], to=11)], **attrs)
        return g.op("Cast", [pooled], to=7 if node.input.dtype == "int64" else 6)


@register
class MaxPool1d(_MaxPoolNd):
    """1-D max pooling over ``[N, C, L]``; stride defaults to kernel_size."""

    n = 1
    params = _max_params(1)
    examples = (("MaxPool1d(2)", "[N, 4, 9]", "[N, 4, 4]"),)
    onnx_examples = (
        ("MaxPool1d(3, 2, padding=1, dilation=2, ceil_mode=True)", "[N, 2, 10]"),
        ("MaxPool1d(2)", "[3, L]"),
    )


@register
class MaxPool2d(_MaxPoolNd):
    """2-D max pooling over ``[N, C, H, W]``; stride defaults to kernel_size."""

    integer_input = "keep"  # torch has integer kernels for it

    n = 2
    params = _max_params(2)
    examples = (
        ("MaxPool2d(2, 2)", "[N, 16, 32, 32]", "[N, 16, 16, 16]"),
        ("MaxPool2d(2)", "[N, 1, 7, 7]", "[N, 1, 3, 3]"),
        ("MaxPool2d(2, 2, padding=1, ceil_mode=True)", "[1, 1, 4, 4]", "[1, 1, 3, 3]"),
        ("MaxPool2d(2)", "[N, C, H, W]", "[N, C, H//2, W//2]"),
        ("MaxPool2d(3, padding=2)", "[N, 1, 8, 8]", "E207"),
        ("MaxPool2d(2)", "[2, 0, 4, 4]", "E203"),
        ("MaxPool2d(2)", "[0, 3, 4, 4]", "[0, 3, 2, 2]"),
        ("MaxPool2d(3)", "[N, 1, 2, 2]", "E203"),
    )
    onnx_examples = (
        ("MaxPool2d(3, 2, ceil_mode=True)", "[N, 2, 8, 9]"),
        ("MaxPool2d((3, 2), stride=(1, 2), padding=(1, 0), dilation=(1, 2))", "[N, 2, 7, 9]"),
        ("MaxPool2d(2)", "long[N, 2, 4, 4]"),
        ("MaxPool2d(2)", "[2, 5, 5]"),
    )


@register
class MaxPool3d(_MaxPoolNd):
    """3-D max pooling over ``[N, C, D, H, W]``."""

    integer_input = "keep"  # torch has integer kernels for it

    n = 3
    params = _max_params(3)
    examples = (("MaxPool3d(2)", "[N, 1, 8, 8, 8]", "[N, 1, 4, 4, 4]"),)
    onnx_examples = (("MaxPool3d((1, 2, 3), padding=(0, 1, 1), ceil_mode=True)", "[N, 1, 3, 5, 7]"),)


class _AvgPoolNd(_PoolNd):
    """Average pools: no dilation parameter (its value is 1)."""

    unsupported_dtypes = frozenset({"int32"})  # torch's CPU kernels average int64, not int32

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.args.get("divisor_override") is not None and node.args["ceil_mode"]:
            return "divisor_override with ceil_mode=True: windows past the padding have no ONNX equivalent"
        if node.input.dtype != "float32":
            return "an average pool of integers (torch divides with truncation) has no ONNX equivalent"
        return None

    @classmethod
    def _onnx_pool(cls, g, x, node):
        args = node.args
        divisor = args.get("divisor_override")
        include_pad = args["count_include_pad"] or divisor is not None
        if include_pad and any(args["padding"]):
            # torch counts the padding it was given but not a ceil_mode window's overhang: pad
            # with zeros here and let the pool count only what it holds
            pads = list(args["padding"])
            x = g.op("Pad", [x, g.const([0, 0, *pads, 0, 0, *pads])])
            pooled = g.op("AveragePool", [x], count_include_pad=0, **cls._onnx_attrs(node, prepadded=True))
        else:
            # no padding to count: a ceil_mode window's overhang is not counted by torch either
            pooled = g.op("AveragePool", [x], count_include_pad=0, **cls._onnx_attrs(node))
        if divisor is None:
            return pooled
        # the window's sum (every window is whole without ceil_mode) over the given divisor
        size = 1
        for k in args["kernel_size"]:
            size *= k
        return g.op("Mul", [pooled, g.scalar(size / divisor[0])])


@register
class AvgPool1d(_AvgPoolNd):
    """1-D average pooling over ``[N, C, L]``."""

    integer_input = "keep"  # torch has integer kernels for it

    n = 1
    params = _avg_params(1)
    examples = (("AvgPool1d(3, 2)", "[N, 4, 9]", "[N, 4, 4]"),)
    onnx_examples = (
        ("AvgPool1d(3, 2, padding=1, count_include_pad=False)", "[N, 2, 10]"),
        ("AvgPool1d(3, 2, padding=1, ceil_mode=True)", "[N, 2, 10]"),
        ("AvgPool1d(4, 3, padding=2, ceil_mode=True, count_include_pad=False)", "[N, 2, 11]"),
    )


@register
class AvgPool2d(_AvgPoolNd):
    """2-D average pooling over ``[N, C, H, W]``."""

    integer_input = "keep"  # torch has integer kernels for it

    n = 2
    params = _avg_params(2)
    examples = (("AvgPool2d(2)", "[N, 3, 8, 8]", "[N, 3, 4, 4]"), ("AvgPool2d(2)", "int32[N, 3, 8, 8]", "E204"))
    onnx_examples = (
        ("AvgPool2d(3, 2, padding=1)", "[N, 2, H, W]"),
        ("AvgPool2d(3, 2, padding=1, count_include_pad=False, ceil_mode=True)", "[N, 2, 8, 9]"),
        ("AvgPool2d(2, ceil_mode=True)", "[N, 2, 5, 7]"),
        ("AvgPool2d(3, padding=1, divisor_override=4)", "[N, 2, 6, 6]"),
        ("AvgPool2d(2)", "[2, 6, 6]"),
    )


@register
class AvgPool3d(_AvgPoolNd):
    """3-D average pooling over ``[N, C, D, H, W]``."""

    integer_input = "keep"  # torch has integer kernels for it
    unsupported_dtypes = frozenset({"int32", "float16", "bfloat16"})  # avg_pool3d_out_frame on CPU

    n = 3
    input_covers_kernel = True
    params = _avg_params(3)
    examples = (
        ("AvgPool3d(2)", "[N, 1, 4, 4, 4]", "[N, 1, 2, 2, 2]"),
        ("AvgPool3d(2)", "float16[N, 1, 4, 4, 4]", "E204"),
    )
    onnx_examples = (("AvgPool3d((2, 3, 3), stride=2, padding=(1, 1, 0), count_include_pad=False)", "[N, 1, 4, 6, 6]"),)


def _output_size(n: int) -> Kind:
    """An int, or an n-tuple whose entries may be None (keep that input dim) when n > 1.

    Kept as written, not widened to a tuple: torch treats the two spellings differently (see
    AdaptiveAvgPool2d), and a collapsed ``(None, None)`` would be emitted as ``None``, which torch rejects.
    """

    def one(v):
        if v is None:
            if n == 1:  # torch's adaptive_avg_pool1d takes ints only
                raise WrongType
            return None
        v = as_int(v)
        if v < 0:
            raise ArgValueError(f"output sizes must be non-negative, got {v}")
        return v

    def convert(value):
        if isinstance(value, tuple):
            if len(value) != n:
                raise ArgValueError(f"must be an integer or a tuple of {n}, got {len(value)} values")
            return tuple(one(v) for v in value)
        if value is None:
            raise WrongType
        return one(value)

    what = f"an integer or a tuple of {n} (entries may be None)" if n > 1 else "an integer"
    return Kind(what, convert)


class _AdaptiveNd(Layer):
    n = 2
    #: an average to size 1 is torch's mean, which takes an empty input (to NaN); other adaptive
    #: pools refuse one
    averages = False

    @classmethod
    def validate(cls, args):
        _PoolNd.validate(args)

    @classmethod
    def _accepts_rank(cls, rank: int, out: tuple | None, written_as_tuple: bool) -> bool:
        return rank in (cls.n + 1, cls.n + 2)

    @classmethod
    def output(cls, args, x, ctx):
        n = cls.n
        x = materialize(x, n + 2, SPATIAL_NAMES[n], ctx)
        size = args["output_size"]
        sizes = size if isinstance(size, tuple) else (size,) * n
        spatial = x.shape.dims[-n:] if x.shape.rank >= n else None
        out = None if spatial is None else tuple(s if o is None else o for s, o in zip(spatial, sizes))
        if not cls._accepts_rank(x.shape.rank, out, isinstance(size, tuple)):
            raise rank_error(cls.__name__, f"a {n + 1}-D (unbatched) or {n + 2}-D (batched)", x)
        if not cls.averages:
            require_nonempty(cls.__name__, x, cls._nonempty(x))
        elif not all(o == 1 for o in out):
            require_nonempty(cls.__name__, x, cls._nonempty(x) if n == 3 else spatial, "its non-batch dims")
        return TensorType(Shape(x.shape.dims[:-n] + out), x.dtype)

    @classmethod
    def _nonempty(cls, x) -> tuple:
        """The dims torch needs non-empty: the channels and the pooled dims (the 1-D and 3-D
        kernels take every dim after the first as such, batched or not)."""
        return x.shape.dims[1:] if cls.n != 2 else x.shape.dims[-cls.n - 1 :]

    #: "ReduceMean" or "ReduceMax": what one window computes
    onnx_reduce = "ReduceMean"

    @classmethod
    def onnx_unsupported(cls, node, opset):
        dims_in, dims_out = node.input.shape.dims, node.output.shape.dims
        for have, want in zip(dims_in[-cls.n :], dims_out[-cls.n :]):
            if not isinstance(have, int) and want != 1 and shapes.known_equal(have, want) is not True:
                return f"adaptive pooling of the symbolic size {have} to {want}: the windows depend on the size"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        """Each pooled dim separately (a window is a box, so mean and max separate): the whole dim
        when the output is 1, even windows as one pooling node, else one slice per window."""
        dims_in, dims_out = node.input.shape.dims, node.output.shape.dims
        rank = len(dims_in)
        for axis in range(rank - cls.n, rank):
            have, want = dims_in[axis], dims_out[axis]
            if shapes.known_equal(have, want) is True:
                continue
            if want == 0:  # an empty output: nothing to pool
                x = g.slice(x, [0], [0], [axis])
            elif want == 1:
                x = g.reduce(cls.onnx_reduce, x, [axis], True)
            elif isinstance(have, int) and have % want == 0:
                x = cls._onnx_even(g, x, axis, rank, have // want)
            else:  # a fixed size (onnx_unsupported turned symbolic ones away)
                pieces = [
                    g.reduce(
                        cls.onnx_reduce,
                        g.slice(x, [i * have // want], [-(-(i + 1) * have // want)], [axis]),
                        [axis],
                        True,
                    )
                    for i in range(want)
                ]
                x = g.op("Concat", pieces, axis=axis)
        return x

    @classmethod
    def _onnx_even(cls, g, x, axis, rank, k):
        """Windows of k along one axis: a reshape to [..., want, k, ...] and a reduction of k."""
        shape = g.op("Shape", [x])
        front = g.slice(shape, [0], [axis], [0])
        back = g.slice(shape, [axis + 1], [rank], [0])
        split = g.op("Concat", [front, g.const([-1, k]), back], axis=0)
        pooled = g.reduce(cls.onnx_reduce, g.op("Reshape", [x, split]), [axis + 1], False)
        return pooled


@register
class AdaptiveAvgPool1d(_AdaptiveNd):
    """Averages ``[N, C, L]`` down (or up) to ``[N, C, output_size]``."""

    averages = True

    n = 1
    params = (Param("output_size", _output_size(1)),)
    examples = (("AdaptiveAvgPool1d(1)", "[N, 8, 17]", "[N, 8, 1]"),)
    onnx_examples = (
        ("AdaptiveAvgPool1d(5)", "[N, 2, 17]"),
        ("AdaptiveAvgPool1d(4)", "[N, 2, 12]"),
        ("AdaptiveAvgPool1d(1)", "[2, L]"),
    )


@register
class AdaptiveAvgPool2d(_AdaptiveNd):
    """Averages ``[N, C, H, W]`` to ``[N, C, *output_size]``; None keeps that dimension."""

    n = 2
    averages = True
    params = (Param("output_size", _output_size(2)),)
    examples = (
        ("AdaptiveAvgPool2d((1, 1))", "[N, 512, H, W]", "[N, 512, 1, 1]"),
        ("AdaptiveAvgPool2d((None, 4))", "[N, 3, 5, 9]", "[N, 3, 5, 4]"),
        ("AdaptiveAvgPool2d(7)", "[N, 3, 3, 3]", "[N, 3, 7, 7]"),
        ("AdaptiveAvgPool2d(1)", "[2, 3, 4, 5, 6]", "[2, 3, 4, 1, 1]"),
        ("AdaptiveAvgPool2d(2)", "[2, 3, 4, 5, 6]", "E202"),
        ("AdaptiveAvgPool2d((1, 1))", "[5, 6]", "E202"),
    )
    onnx_examples = (
        ("AdaptiveAvgPool2d((2, 3))", "[N, 2, 8, 9]"),
        ("AdaptiveAvgPool2d((3, 1))", "[N, 2, 7, W]"),
        ("AdaptiveAvgPool2d(1)", "[N, 2, H, W]"),
        ("AdaptiveAvgPool2d(3)", "[2, 5, 7]"),
    )

    @classmethod
    def _accepts_rank(cls, rank, out, written_as_tuple):
        # torch computes a 1 x 1 output as a plain mean over the last two dims, skipping its rank
        # check; only a tuple output_size still needs a 3-D input (its None entries are filled from it)
        if out == (1,) * cls.n and rank >= (cls.n + 1 if written_as_tuple else cls.n):
            return True
        return super()._accepts_rank(rank, out, written_as_tuple)


@register
class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    """Averages ``[N, C, D, H, W]`` to ``[N, C, *output_size]``; None keeps that dimension."""

    n = 3
    params = (Param("output_size", _output_size(3)),)
    examples = (
        ("AdaptiveAvgPool3d(1)", "[N, 64, D, H, W]", "[N, 64, 1, 1, 1]"),
        ("AdaptiveAvgPool3d((None, 2, 3))", "[N, 3, 4, 5, 9]", "[N, 3, 4, 2, 3]"),
        ("AdaptiveAvgPool3d(2)", "[3, 4, 5, 6]", "[3, 2, 2, 2]"),
        ("AdaptiveAvgPool3d(2)", "[2, 0, 4, 5]", "E203"),
        ("AdaptiveAvgPool3d((1, 1, 1))", "[3, 4, 5]", "E202"),
        ("AdaptiveAvgPool3d(2)", "[2, 3, 4, 5, 6, 7]", "E202"),
    )
    onnx_examples = (
        ("AdaptiveAvgPool3d((2, 3, 1))", "[N, 2, 4, 7, 5]"),
        ("AdaptiveAvgPool3d(1)", "[N, 2, D, H, W]"),
    )


@register
class AdaptiveMaxPool2d(_AdaptiveNd):
    """Max-pools ``[N, C, H, W]`` to ``[N, C, *output_size]``."""

    n = 2
    params = (Param("output_size", _output_size(2)), Param("return_indices", BOOL, False))
    examples = (("AdaptiveMaxPool2d(2)", "[N, 3, 9, 9]", "[N, 3, 2, 2]"),)
    onnx_examples = (
        ("AdaptiveMaxPool2d((3, 1))", "[N, 2, 6, 5]"),
        ("AdaptiveMaxPool2d((4, None))", "[N, 2, 7, W]"),
        ("AdaptiveMaxPool2d(1)", "[N, 2, H, W]"),
    )
    onnx_reduce = "ReduceMax"


@register
class AdaptiveMaxPool1d(_AdaptiveNd):
    """Max-pools ``[N, C, L]`` (or ``[C, L]``) to ``[N, C, output_size]``."""

    n = 1
    params = (Param("output_size", _output_size(1)), Param("return_indices", BOOL, False))
    examples = (
        ("AdaptiveMaxPool1d(4)", "[N, 3, 17]", "[N, 3, 4]"),
        ("AdaptiveMaxPool1d(2)", "[3, 5]", "[3, 2]"),
        ("AdaptiveMaxPool1d(0)", "[2, 3, 5]", "[2, 3, 0]"),
        ("AdaptiveMaxPool1d(2)", "[2, 0, 5]", "E203"),
        ("AdaptiveMaxPool1d(2)", "[5]", "E202"),
    )
    onnx_examples = (("AdaptiveMaxPool1d(3)", "[N, 2, 7]"), ("AdaptiveMaxPool1d(1)", "[N, 2, L]"))
    onnx_reduce = "ReduceMax"


@register
class AdaptiveMaxPool3d(_AdaptiveNd):
    """Max-pools ``[N, C, D, H, W]`` (or ``[C, D, H, W]``) to ``[N, C, *output_size]``."""

    n = 3
    params = (Param("output_size", _output_size(3)), Param("return_indices", BOOL, False))
    examples = (
        ("AdaptiveMaxPool3d(2)", "[N, 3, 4, 5, 6]", "[N, 3, 2, 2, 2]"),
        ("AdaptiveMaxPool3d((2, None, 1))", "[2, 3, 4, 5, 6]", "[2, 3, 2, 5, 1]"),
        ("AdaptiveMaxPool3d(2)", "[3, 4, 5, 6]", "[3, 2, 2, 2]"),
        ("AdaptiveMaxPool3d(2)", "[2, 0, 4, 5, 6]", "E203"),
        ("AdaptiveMaxPool3d(2)", "[4, 5, 6]", "E202"),
    )
    onnx_examples = (("AdaptiveMaxPool3d((3, 1, 2))", "[N, 2, 6, 5, 4]"),)
    onnx_reduce = "ReduceMax"
