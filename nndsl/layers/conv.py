"""Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d."""

from __future__ import annotations

import math

from nndsl import shapes
from nndsl.layers.base import (
    BOOL,
    POS_INT,
    SPATIAL_NAMES,
    ArgValueError,
    Kind,
    Layer,
    Param,
    ShapeError,
    WrongType,
    check_rank,
    choice,
    materialize,
    onnx_batched,
    require_nonempty,
    size_kind,
    spatial_too_small,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType


def _check_groups(args) -> None:
    """Both channel counts split evenly into the groups (torch's constructor checks)."""
    g = args["groups"]
    for key in ("in_channels", "out_channels"):
        if args[key] % g:
            raise ArgValueError(f"{key} ({args[key]}) must be divisible by groups ({g})", "groups")


def _conv_padding(n: int) -> Kind:
    sizes = size_kind(n, 0)

    def convert(value):
        if isinstance(value, str):
            if value not in ("same", "valid"):
                raise ArgValueError(f"must be an integer, a tuple, 'valid' or 'same', got {value!r}")
            return value
        return sizes.convert(value)

    return Kind(f"{sizes.describe}, 'same' or 'valid'", convert, collapse=True)


def _channels_check(name: str, x: TensorType, n: int, args: dict, ctx, key: str = "in_channels") -> None:
    c_in = args[key]
    have = x.shape.dims[-(n + 1)]
    if shapes.known_equal(have, c_in) is True:
        return  # the common case: no message to build
    shown = x.shape
    ctx.require_equal(
        have,
        c_in,
        f"{name} expects {c_in} input channel{'' if c_in == 1 else 's'}, got {have}",
        f"expected {c_in} channels at dim {shown.rank - n - 1}, got {shown}",
        f"change in_channels to {have}" if isinstance(have, int) else None,
    )


def _check_padding_mode(mode: str, sides: tuple[int, int], size: int) -> None:
    """torch pads with F.pad first for the non-zero modes: reflect needs padding < size, circular <= size."""
    widest = max(sides)
    if mode == "reflect" and widest >= size:
        raise ShapeError(
            "E207",
            f"reflect padding {widest} must be smaller than the input size {size}",
            f"input size {size}",
            param="padding",
        )
    if mode == "circular" and widest > size:
        raise ShapeError(
            "E207",
            f"circular padding {widest} must not exceed the input size {size} (it would wrap around more than once)",
            f"input size {size}",
            param="padding",
        )


def _prepare(cls, x: TensorType, ctx, args) -> TensorType:
    n = cls.n
    x = materialize(x, n + 2, SPATIAL_NAMES[n], ctx)
    try:
        check_rank(cls.__name__, x, (n + 1, n + 2), f"a {n + 1}-D (unbatched) or {n + 2}-D (batched)")
    except ShapeError as exc:
        exc.help = _flat_input_help(n, x, args.get("in_channels"))
        raise
    return x


def _flat_input_help(n: int, x: TensorType, channels) -> str | None:
    """For flat samples ``[N, 784]`` fed to a convolution: the Unflatten that makes them images
    (784 = 1 x 28 x 28), when the size splits into ``channels`` and n equal sides."""
    if x.shape.rank != 2 or not isinstance(x.shape.dims[1], int) or not isinstance(channels, int) or channels < 1:
        return None
    features = x.shape.dims[1]
    if features % channels:
        return None
    side = round((features // channels) ** (1 / n))
    if side < 1 or side**n * channels != features:
        return None
    dims = ", ".join(str(d) for d in (channels, *(side,) * n))
    return f"make the flat samples images first: Unflatten(1, ({dims})) -> ..., or declare the input as [N, {dims}]"


class _ConvNd(Layer):
    n = 2

    @classmethod
    def _make_params(cls, n: int):
        return (
            Param("in_channels", POS_INT, infer=True),
            Param("out_channels", POS_INT),
            Param("kernel_size", size_kind(n, 1)),
            Param("stride", size_kind(n, 1), 1),
            Param("padding", _conv_padding(n), 0),
            Param("dilation", size_kind(n, 1), 1),
            Param("groups", POS_INT, 1),
            Param("bias", BOOL, True),
            Param("padding_mode", choice("zeros", "reflect", "replicate", "circular"), "zeros"),
        )

    @classmethod
    def validate(cls, args):
        _check_groups(args)
        if args["padding"] == "same" and any(s != 1 for s in args["stride"]):
            raise ArgValueError(
                "padding='same' is not supported for strided convolutions",
                "padding",
                "use an explicit padding, e.g. padding=kernel_size//2",
            )

    @classmethod
    def infer(cls, name, args, x):
        if x.shape.rest or x.shape.rank not in (cls.n + 1, cls.n + 2):
            return None
        return x.shape.dims[-(cls.n + 1)]

    @classmethod
    def output(cls, args, x, ctx):
        x = _prepare(cls, x, ctx, args)
        n = cls.n
        _channels_check(cls.__name__, x, n, args, ctx)
        spatial = x.shape.dims[-n:]
        if not (x.shape.rank == n + 2 and x.shape.dims[0] == 0):
            # "Only zero batch or zero channel inputs are supported": padding does not help
            require_nonempty(cls.__name__, x, spatial, "its spatial dims")
        padding = args["padding"]
        if padding == "same" and any(k % 2 == 0 and d % 2 == 1 for k, d in zip(args["kernel_size"], args["dilation"])):
            ctx.warn(
                "W302",
                "padding='same' with an even kernel pads one more element at the end than at the start; "
                "torch warns and may copy the input to pad it",
                "use an odd kernel_size for symmetric padding",
            )
        out = []
        for i, size in enumerate(spatial):
            k, s, d = args["kernel_size"][i], args["stride"][i], args["dilation"][i]
            if padding == "same":
                # the odd element of the total padding goes right/bottom
                total = d * (k - 1)
                sides = (total // 2, total - total // 2)
            else:
                sides = (0, 0) if padding == "valid" else (padding[i], padding[i])
            if isinstance(size, int):
                _check_padding_mode(args["padding_mode"], sides, size)
            if padding == "same":
                out.append(size)
                continue
            p = sides[0]
            num = shapes.add(size, 2 * p - d * (k - 1) - 1)
            out.append(shapes.add(shapes.floordiv(num, s), 1))
        if any(isinstance(o, int) and o < 1 for o in out):
            raise spatial_too_small(cls.__name__, spatial, out)
        lead = x.shape.dims[: -(n + 1)]
        return TensorType(Shape(lead + (args["out_channels"],) + tuple(out)), x.dtype)

    @classmethod
    def param_count(cls, args):
        weights = args["out_channels"] * (args["in_channels"] // args["groups"]) * math.prod(args["kernel_size"])
        return weights + (args["out_channels"] if args["bias"] else 0)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        unbatched = node.input.shape.rank == cls.n + 1
        return onnx_batched(g, x, unbatched, lambda x: cls._onnx_conv(g, x, node.args, w))

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.args.get("padding_mode") == "circular" and opset < 19:
            return "padding_mode='circular' needs ONNX's wrap padding, from opset 19 (pass --opset 19 or later)"
        return None

    @classmethod
    def _onnx_inputs(cls, g, x, w) -> list:
        inputs = [x, g.weight(w("weight"), w.key("weight"))]
        bias = w.get("bias")  # read even with bias=False: a folded BatchNorm gives one
        if bias is not None:
            inputs.append(g.weight(bias, w.key("bias")))
        return inputs

    @classmethod
    def _onnx_conv(cls, g, x, args, w):
        n, kernel, dilation = cls.n, args["kernel_size"], args["dilation"]
        padding = args["padding"]
        if padding == "same":  # the odd element of the total goes at the end, as torch pads
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            begin, end = [t // 2 for t in totals], [t - t // 2 for t in totals]
        elif padding == "valid":
            begin = end = [0] * n
        else:
            begin = end = list(padding)
        mode = args["padding_mode"]
        if mode != "zeros" and any(begin + end):
            onnx_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
            x = g.op("Pad", [x, g.const([0, 0, *begin, 0, 0, *end])], mode=onnx_mode)
            begin = end = [0] * n
        return g.op(
            "Conv",
            cls._onnx_inputs(g, x, w),
            kernel_shape=list(kernel),
            strides=list(args["stride"]),
            dilations=list(dilation),
            group=args["groups"],
            pads=begin + end,
        )


@register
class Conv1d(_ConvNd):
    """1-D convolution over ``[N, C_in, L]``."""

    n = 1
    params = _ConvNd._make_params(1)
    examples = (
        ("Conv1d(4, 8, 3)", "[N, 4, 32]", "[N, 8, 30]"),
        ("Conv1d(4, 8, 3, padding='same')", "[N, 4, L]", "[N, 8, L]"),
        ("Conv1d(4, 8, 3)", "[N, 5, 32]", "E201"),
    )
    onnx_examples = (
        ("Conv1d(4, 6, 4, padding='same', dilation=2, groups=2)", "[N, 4, L]"),
        ("Conv1d(4, 8, 3, padding=2, padding_mode='reflect')", "[N, 4, 9]"),
        ("Conv1d(4, 8, 3, padding=1, padding_mode='replicate', bias=False)", "[N, 4, 9]"),
        ("Conv1d(4, 8, 3, padding=2, padding_mode='circular', stride=2)", "[N, 4, 9]"),
        ("Conv1d(4, 8, 3, padding='valid')", "[4, 9]"),
    )


@register
class Conv2d(_ConvNd):
    """2-D convolution over ``[N, C_in, H, W]`` (or unbatched ``[C_in, H, W]``)."""

    n = 2
    params = _ConvNd._make_params(2)
    examples = (
        ("Conv2d(3, 16, 3, 1, 1)", "[N, 3, 32, 32]", "[N, 16, 32, 32]"),
        ("Conv2d(3, 8, 3)", "[3, 8, 8]", "[8, 6, 6]"),
        ("Conv2d(out_channels=16, kernel_size=3, stride=2)", "[N, 3, H, W]", "[N, 16, (H + 1)//2 - 1, (W + 1)//2 - 1]"),
        ("Conv2d(3, 8, 5)", "[N, 3, 4, 4]", "E203"),
        ("Conv2d(4, 6, 3, groups=3)", "[N, 4, 8, 8]", "E107"),
        ("Conv2d(3, 8, 3)", "[N, 784]", "E202"),
    )
    onnx_examples = (
        ("Conv2d(4, 8, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=4, bias=False)", "[N, 4, H, W]"),
        ("Conv2d(3, 4, 3, padding=1, padding_mode='reflect')", "[N, 3, 7, 7]"),
        ("Conv2d(3, 4, 3, padding=(2, 1), padding_mode='circular')", "[N, 3, 7, 7]"),
        ("Conv2d(3, 4, 4, padding='same')", "[N, 3, 7, 6]"),
    )


@register
class Conv3d(_ConvNd):
    """3-D convolution over ``[N, C_in, D, H, W]``."""

    n = 3
    params = _ConvNd._make_params(3)
    examples = (("Conv3d(2, 4, 3)", "[N, 2, 8, 8, 8]", "[N, 4, 6, 6, 6]"),)
    onnx_examples = (
        ("Conv3d(2, 4, (1, 3, 2), stride=(1, 2, 1), padding=(0, 1, 1), dilation=(2, 1, 1))", "[N, 2, 5, 6, 6]"),
    )


def _tconv_padding(n: int) -> Kind:
    sizes = size_kind(n, 0)

    def convert(value):
        if isinstance(value, str):
            raise WrongType
        return sizes.convert(value)

    return Kind(sizes.describe, convert, collapse=True)


class _ConvTransposeNd(_ConvNd):
    @classmethod
    def _make_params(cls, n: int):
        return (
            Param("in_channels", POS_INT, infer=True),
            Param("out_channels", POS_INT),
            Param("kernel_size", size_kind(n, 1)),
            Param("stride", size_kind(n, 1), 1),
            Param("padding", _tconv_padding(n), 0),
            Param("output_padding", size_kind(n, 0), 0),
            Param("groups", POS_INT, 1),
            Param("bias", BOOL, True),
            Param("dilation", size_kind(n, 1), 1),
            Param("padding_mode", choice("zeros"), "zeros"),
        )

    @classmethod
    def validate(cls, args):
        _check_groups(args)
        for op, s, d in zip(args["output_padding"], args["stride"], args["dilation"]):
            if op >= max(s, d):
                raise ArgValueError(
                    f"output_padding ({op}) must be smaller than either stride ({s}) or dilation ({d})",
                    "output_padding",
                )

    @classmethod
    def output(cls, args, x, ctx):
        x = _prepare(cls, x, ctx, args)
        n = cls.n
        _channels_check(cls.__name__, x, n, args, ctx)
        spatial = x.shape.dims[-n:]
        # torch: "Only zero batch or zero channel inputs are supported"
        require_nonempty(cls.__name__, x, spatial, "its spatial dims")
        out = []
        for i, size in enumerate(spatial):
            k, s, d = args["kernel_size"][i], args["stride"][i], args["dilation"][i]
            p, op = args["padding"][i], args["output_padding"][i]
            out.append(shapes.add(shapes.mul(shapes.sub(size, 1), s), -2 * p + d * (k - 1) + op + 1))
        if any(isinstance(o, int) and o < 1 for o in out):
            raise spatial_too_small(cls.__name__, spatial, out, "padding")
        lead = x.shape.dims[: -(n + 1)]
        return TensorType(Shape(lead + (args["out_channels"],) + tuple(out)), x.dtype)

    @classmethod
    def param_count(cls, args):
        weights = args["in_channels"] * (args["out_channels"] // args["groups"]) * math.prod(args["kernel_size"])
        return weights + (args["out_channels"] if args["bias"] else 0)

    @classmethod
    def _onnx_conv(cls, g, x, args, w):
        # ONNX's ConvTranspose has torch's weight layout [C_in, C_out / groups, *kernel] and output size
        return g.op(
            "ConvTranspose",
            cls._onnx_inputs(g, x, w),
            kernel_shape=list(args["kernel_size"]),
            strides=list(args["stride"]),
            dilations=list(args["dilation"]),
            group=args["groups"],
            pads=list(args["padding"]) * 2,
            output_padding=list(args["output_padding"]),
        )


@register
class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over ``[N, C_in, L]``."""

    n = 1
    params = _ConvTransposeNd._make_params(1)
    examples = (("ConvTranspose1d(4, 2, 3, stride=2)", "[N, 4, 10]", "[N, 2, 21]"),)
    onnx_examples = (
        ("ConvTranspose1d(4, 6, 3, stride=3, padding=1, output_padding=2, groups=2, dilation=2)", "[N, 4, L]"),
        ("ConvTranspose1d(4, 2, 3, bias=False)", "[4, 5]"),
    )


@register
class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution (upsampling) over ``[N, C_in, H, W]``."""

    n = 2
    params = _ConvTransposeNd._make_params(2)
    examples = (
        ("ConvTranspose2d(16, 8, 2, stride=2)", "[N, 16, 7, 7]", "[N, 8, 14, 14]"),
        ("ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)", "[N, 16, H, W]", "[N, 8, 2*H, 2*W]"),
        ("ConvTranspose2d(4, 2, 3, output_padding=1)", "[N, 4, 5, 5]", "E107"),
        ("ConvTranspose2d(4, 2, 3, padding=3)", "[N, 4, 1, 1]", "E203"),
    )
    onnx_examples = (("ConvTranspose2d(2, 4, (2, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2))", "[N, 2, 5, 4]"),)


@register
class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution (upsampling) over ``[N, C_in, D, H, W]``."""

    n = 3
    params = _ConvTransposeNd._make_params(3)
    examples = (
        ("ConvTranspose3d(4, 2, 2, stride=2)", "[N, 4, 3, 4, 5]", "[N, 2, 6, 8, 10]"),
        ("ConvTranspose3d(2, 2, 3, padding=1)", "[2, D, H, W]", "[2, D, H, W]"),
        ("ConvTranspose3d(4, 2, 3)", "[N, 3, 4, 4, 4]", "E201"),
        ("ConvTranspose3d(4, 2, 3, padding=2)", "[N, 4, 1, 1, 1]", "E203"),
    )
    onnx_examples = (("ConvTranspose3d(2, 3, (2, 1, 3), stride=(2, 1, 1), padding=(0, 0, 1))", "[N, 2, 3, 4, 5]"),)
