"""Padding layers of every mode and rank: ConstantPad, ZeroPad, ReflectionPad, ReplicationPad and
CircularPad in 1-D, 2-D and 3-D (ZeroPad2d, the oldest, lives in resize.py).

torch's rules, as F.pad applies them: ``padding`` is an int (both sides of the layer's n last dims)
or any number of (before, after) pairs from the last dim backwards; negative values crop. The
constant modes take any input with at least as many dims as pairs; the other modes pad 1 to 3
dims of a batched ([N, C, *S]) or unbatched ([C, *S]) input, and need every dim but the batch
non-empty (reflect, replicate). Reflection needs each side's padding below the dim's size,
circular padding at most the size (it wraps around once).
"""

from __future__ import annotations

from typing import ClassVar

from nndsl import shapes
from nndsl.layers.base import (
    FLOAT,
    ArgValueError,
    Kind,
    Layer,
    Param,
    ShapeError,
    as_int,
    materialize,
    rank_error,
    require_nonempty,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType


def _padding(n: int) -> Kind:
    """An int (both sides of the n last dims) or (before, after) pairs, last dim first."""

    def convert(value):
        if isinstance(value, tuple):
            if not value or len(value) % 2:
                raise ArgValueError(
                    f"must be an integer or a tuple of (before, after) pairs, last dim first, got {len(value)} values"
                )
            return tuple(as_int(v) for v in value)
        return (as_int(value),) * (2 * n)

    return Kind(f"an integer or a tuple of {2 * n} integers", convert)


#: a padding value's element type in ONNX, by the input's dtype (numpy's names)
_NP_TYPES = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32", "bool": "bool"}


class _PadNd(Layer):
    """The shared rule; subclasses set ``n`` (the dims an int pads) and ``mode``."""

    n: ClassVar[int] = 1
    mode: ClassVar[str] = "constant"
    integer_input = "keep"  # a rearrangement: torch has integer kernels for every mode
    bool_input = "keep"

    @classmethod
    def emitted_params(cls, args, given=frozenset(), n_positional=0):
        names = ["padding"]
        return (names + ["value"], []) if "value" in args else (names, [])

    @classmethod
    def written_value(cls, name, value):
        if name == "padding" and len(value) == 2 * cls.n and len(set(value)) == 1:
            return value[0]
        return value

    @classmethod
    def output(cls, args, x, ctx):
        name, pad = cls.__name__, args["padding"]
        pairs = len(pad) // 2
        x = materialize(x, max(pairs, cls.n) + 2, ("N", "C", "D", "H", "W", "V")[-(max(pairs, cls.n) + 2) :], ctx)
        rank = x.shape.rank
        if cls.mode == "constant":
            if rank < pairs:
                raise rank_error(name, f"an at least {pairs}-D", x)
        else:
            if cls.mode == "circular" and rank not in (cls.n + 1, cls.n + 2):
                raise rank_error(name, f"a {cls.n + 1}-D (unbatched) or {cls.n + 2}-D (batched)", x)
            if pairs > 3:
                raise ShapeError(
                    "E202",
                    f"{name} pads at most 3 dims in mode {cls.mode!r}, got {pairs} (before, after) pairs",
                    f"{pairs} pairs of padding",
                    param="padding",
                )
            if rank not in (pairs + 1, pairs + 2):
                raise rank_error(name, f"a {pairs + 1}-D (unbatched) or {pairs + 2}-D (batched)", x)
            if cls.mode in ("reflect", "replicate"):
                batched = rank == pairs + 2
                require_nonempty(name, x, x.shape.dims[1:] if batched else x.shape.dims)
        if cls.mode == "circular" and min(pad) < 0:
            # torch crops and wraps in an order that gives shapes no rule predicts (some raise,
            # some return fewer elements than the crop leaves): nndsl refuses the combination
            raise ShapeError(
                "E203",
                f"{name} takes no negative padding (a crop), got {pad}",
                "negative padding",
                "crop with slicing before or after the padding",
                param="padding",
            )
        dims = list(x.shape.dims)
        outs = []
        for i in range(pairs):
            before, after = pad[2 * i], pad[2 * i + 1]
            d = rank - 1 - i
            cls._check_side(name, pad, d, dims[d], before, after, ctx)
            dims[d] = shapes.add(dims[d], before + after)
            outs.append(dims[d])
        if cls.mode in ("reflect", "replicate") and all(isinstance(o, int) and o < 1 for o in outs):
            raise ShapeError(
                "E203",
                f"{name}{pad} leaves nothing of {x.shape}: the padded dims would be {' x '.join(map(str, outs))}",
                "empty output",
                "crop less",
                param="padding",
            )
        return TensorType(Shape(tuple(dims)), x.dtype)

    @classmethod
    def _check_side(cls, name, pad, d, size, before, after, ctx) -> None:
        """torch's limits on one dim's (before, after) for this mode."""
        if not isinstance(size, int):
            widest = max(before, after)
            if cls.mode in ("reflect", "circular") and widest > (1 if cls.mode == "reflect" else 0):
                ctx.warn(
                    "W301", f"cannot verify that dim {d} (size {size}) is large enough for {name}'s padding {widest}"
                )
            if min(before, after) < 0:
                ctx.warn("W301", f"cannot verify that dim {d} (size {size}) holds {name}'s crop")
            return
        out = size + before + after
        if cls.mode == "reflect" and max(before, after) >= size:
            raise ShapeError(
                "E203",
                f"{name} padding ({before}, {after}) must be smaller than dim {d}'s size {size}",
                f"dim {d} has size {size}",
                "reflection padding mirrors the input without its edge: use ReplicationPad or a smaller padding",
                param="padding",
            )
        if cls.mode == "circular" and max(before, after) > size:
            raise ShapeError(
                "E203",
                f"{name} padding ({before}, {after}) must not exceed dim {d}'s size {size} "
                "(circular padding wraps around at most once)",
                f"dim {d} has size {size}",
                param="padding",
            )
        if cls.mode == "constant" and size + min(before, 0) + min(after, 0) < 0:
            raise ShapeError(
                "E203",
                f"{name}{pad} crops more than dim {d} holds: size {size}, padding ({before}, {after})",
                f"dim {d} has size {size}",
                param="padding",
            )
        if out < 0:
            raise ShapeError(
                "E203",
                f"{name}{pad} crops more than dim {d} holds: size {size}, padding ({before}, {after})",
                f"dim {d} has size {size}",
                param="padding",
            )

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if cls.mode == "circular" and opset < 19:
            return "circular padding needs ONNX's wrap padding, from opset 19 (pass --opset 19 or later)"
        if cls.mode == "constant" or min(node.args["padding"]) >= 0:
            return None
        # a crop, then the padding: what torch computes while the padding reads only what the crop keeps
        for d, before, after in cls._pairs(node):
            size = node.input.shape.dims[d]
            kept = size + min(before, 0) + min(after, 0) if isinstance(size, int) else None
            widest = max(before, after, 0)
            if kept is None or kept < 1 or (cls.mode == "reflect" and widest >= kept):
                return (
                    f"{cls.mode} padding ({before}, {after}) of dim {d} (size {size}) reads values that the crop "
                    "removes: ONNX's Pad crops first"
                )
        return None

    @classmethod
    def _pairs(cls, node):
        """(dim, before, after) of each padded dim, the last dim first."""
        pad, rank = node.args["padding"], node.input.shape.rank
        return [(rank - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]

    @classmethod
    def to_onnx(cls, g, x, node, w):
        rank = node.input.shape.rank
        begin, end = [0] * rank, [0] * rank
        for d, before, after in cls._pairs(node):
            begin[d], end[d] = before, after
        if cls.mode == "constant":  # negative values crop, as torch's
            value = node.args.get("value", 0.0)
            fill = g.const(value, _NP_TYPES.get(node.input.dtype, "float32"), "pad_value")
            return g.op("Pad", [x, g.const(begin + end), fill])
        if min(begin + end) < 0:
            x = g.op("Pad", [x, g.const([min(b, 0) for b in begin] + [min(e, 0) for e in end])])
        onnx_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[cls.mode]
        return g.op("Pad", [x, g.const([max(b, 0) for b in begin] + [max(e, 0) for e in end])], mode=onnx_mode)


def _pad_layer(name: str, n: int, mode: str, doc: str, examples: tuple, onnx_examples: tuple = (), value=False):
    params = (Param("padding", _padding(n)),)
    if value:
        params += (Param("value", FLOAT),)
    cls = type(
        name,
        (_PadNd,),
        {
            "__doc__": doc,
            "__module__": __name__,
            "n": n,
            "mode": mode,
            "params": params,
            "examples": examples,
            "onnx_examples": onnx_examples,
            # reflect and replicate have no bool kernels in torch
            "bool_input": "keep" if mode in ("constant", "circular") else None,
        },
    )
    return register(cls)


ConstantPad1d = _pad_layer(
    "ConstantPad1d",
    1,
    "constant",
    "Pads the last dim with ``value``: ``padding`` is an int or (left, right); negative values crop.",
    (
        ("ConstantPad1d(2, 3.5)", "[N, 3, 8]", "[N, 3, 12]"),
        ("ConstantPad1d((1, -2), 0.0)", "[2, L]", "[2, L - 1]"),
        ("ConstantPad1d((0, 1, 2, 0), 1.0)", "[3, 4, 5]", "[3, 6, 6]"),
        ("ConstantPad1d((-3, 0), 1.0)", "[3, 2]", "E203"),
        ("ConstantPad1d((1, 1, 1, 1), 0.0)", "[4]", "E202"),
    ),
    (("ConstantPad1d((2, -1), -1.0)", "long[N, 2, 4]"),),
    value=True,
)
ConstantPad2d = _pad_layer(
    "ConstantPad2d",
    2,
    "constant",
    "Pads the last two dims with ``value``: ``padding`` is an int or (left, right, top, bottom).",
    (
        ("ConstantPad2d(1, 0.5)", "[N, 3, 8, 8]", "[N, 3, 10, 10]"),
        ("ConstantPad2d((1, 0, -1, 2), 2.0)", "[N, 3, H, W]", "[N, 3, H + 1, W + 1]"),
        ("ConstantPad2d(1, 0.0)", "[2]", "E202"),
    ),
    value=True,
)
ConstantPad3d = _pad_layer(
    "ConstantPad3d",
    3,
    "constant",
    "Pads the last three dims with ``value``: ``padding`` is an int or six sizes, last dim first.",
    (
        ("ConstantPad3d(1, -1.0)", "[N, 2, 4, 4, 4]", "[N, 2, 6, 6, 6]"),
        ("ConstantPad3d((1, 1, 0, 0, 2, 0), 0.0)", "[2, 3, 4, 5]", "[2, 5, 4, 7]"),
        ("ConstantPad3d(1, 0.0)", "[2, 3]", "E202"),
    ),
    value=True,
)
ZeroPad1d = _pad_layer(
    "ZeroPad1d",
    1,
    "constant",
    "Pads the last dim with zeros: ``padding`` is an int or (left, right); negative values crop.",
    (
        ("ZeroPad1d(2)", "[N, 3, 8]", "[N, 3, 12]"),
        ("ZeroPad1d((3, -1))", "[2, 5]", "[2, 7]"),
        ("ZeroPad1d((0, -6))", "[2, 5]", "E203"),
    ),
)
ZeroPad3d = _pad_layer(
    "ZeroPad3d",
    3,
    "constant",
    "Pads the last three dims with zeros: ``padding`` is an int or six sizes, last dim first.",
    (
        ("ZeroPad3d(1)", "[N, 2, 4, 4, 4]", "[N, 2, 6, 6, 6]"),
        ("ZeroPad3d((1, 0, 0, 1, 0, 0))", "[2, 3, 4]", "[2, 4, 5]"),
        ("ZeroPad3d(1)", "[4, 4]", "E202"),
    ),
)
ReflectionPad1d = _pad_layer(
    "ReflectionPad1d",
    1,
    "reflect",
    "Pads the last dim of [N, C, W] or [C, W] with its mirror image (edge excluded): padding < W.",
    (
        ("ReflectionPad1d(2)", "[N, 3, 8]", "[N, 3, 12]"),
        ("ReflectionPad1d((3, 1))", "[3, 4]", "[3, 8]"),
        ("ReflectionPad1d((-1, 2))", "[2, 3, 5]", "[2, 3, 6]"),
        ("ReflectionPad1d(2)", "[N, 3, L]", "[N, 3, L + 4]"),
        ("ReflectionPad1d(4)", "[N, 3, 4]", "E203"),
        ("ReflectionPad1d((-2, -3))", "[N, 3, 5]", "E203"),
        ("ReflectionPad1d(1)", "[2, 3, 4, 5]", "E202"),
        ("ReflectionPad1d(1)", "[2, 0, 5]", "E203"),
    ),
)
ReflectionPad2d = _pad_layer(
    "ReflectionPad2d",
    2,
    "reflect",
    "Pads the last two dims of [N, C, H, W] or [C, H, W] with their mirror image: padding < H, W.",
    (
        ("ReflectionPad2d(1)", "[N, 3, 8, 8]", "[N, 3, 10, 10]"),
        ("ReflectionPad2d((1, 0, 2, 1))", "[3, 4, 5]", "[3, 7, 6]"),
        ("ReflectionPad2d(3)", "[N, 3, 3, 8]", "E203"),
        ("ReflectionPad2d(1)", "[8, 8]", "E202"),
    ),
)
ReflectionPad3d = _pad_layer(
    "ReflectionPad3d",
    3,
    "reflect",
    "Pads the last three dims of [N, C, D, H, W] or [C, D, H, W] with their mirror image.",
    (
        ("ReflectionPad3d(1)", "[N, 2, 4, 4, 4]", "[N, 2, 6, 6, 6]"),
        ("ReflectionPad3d((1, 1, 0, 0, 2, 0))", "[2, 3, 4, 5]", "[2, 5, 4, 7]"),
        ("ReflectionPad3d(2)", "[N, 2, 2, 4, 4]", "E203"),
    ),
)
ReplicationPad1d = _pad_layer(
    "ReplicationPad1d",
    1,
    "replicate",
    "Pads the last dim of [N, C, W] or [C, W] by repeating its edge values.",
    (
        ("ReplicationPad1d(2)", "[N, 3, 8]", "[N, 3, 12]"),
        ("ReplicationPad1d((5, 0))", "[3, 2]", "[3, 7]"),
        ("ReplicationPad1d((1, -2))", "[N, 3, 4]", "[N, 3, 3]"),
        ("ReplicationPad1d((-2, -2))", "[N, 3, 4]", "E203"),
        ("ReplicationPad1d(1)", "[5]", "E202"),
    ),
)
ReplicationPad2d = _pad_layer(
    "ReplicationPad2d",
    2,
    "replicate",
    "Pads the last two dims of [N, C, H, W] or [C, H, W] by repeating their edge values.",
    (
        ("ReplicationPad2d(1)", "[N, 3, 8, 8]", "[N, 3, 10, 10]"),
        ("ReplicationPad2d((4, 0, 1, 1))", "[3, 2, 2]", "[3, 4, 6]"),
        ("ReplicationPad2d(1)", "[2, 3, 0, 4]", "E203"),
    ),
)
ReplicationPad3d = _pad_layer(
    "ReplicationPad3d",
    3,
    "replicate",
    "Pads the last three dims of [N, C, D, H, W] or [C, D, H, W] by repeating their edge values.",
    (
        ("ReplicationPad3d(1)", "[N, 2, 4, 4, 4]", "[N, 2, 6, 6, 6]"),
        ("ReplicationPad3d((2, 0, 0, 0, 0, 1))", "[2, 3, 4, 5]", "[2, 4, 4, 7]"),
        ("ReplicationPad3d(1)", "[N, 2, 4, 4]", "[N, 4, 6, 6]"),
    ),
)
CircularPad1d = _pad_layer(
    "CircularPad1d",
    1,
    "circular",
    "Pads the last dim of [N, C, W] or [C, W] with values wrapped around from the other end (padding <= W).",
    (
        ("CircularPad1d(2)", "[N, 3, 8]", "[N, 3, 12]"),
        ("CircularPad1d((3, 1))", "[2, 4]", "[2, 8]"),
        ("CircularPad1d((-2, -3))", "[N, 3, 5]", "E203"),
        ("CircularPad1d(6)", "[N, 3, 5]", "E203"),
        ("CircularPad1d(1)", "[2, 3, 4, 5]", "E202"),
    ),
    (("CircularPad1d((0, 3))", "long[N, 2, 4]"),),
)
CircularPad2d = _pad_layer(
    "CircularPad2d",
    2,
    "circular",
    "Pads the last two dims of [N, C, H, W] or [C, H, W] with values wrapped around from the other end.",
    (
        ("CircularPad2d(1)", "[N, 3, 8, 8]", "[N, 3, 10, 10]"),
        ("CircularPad2d((2, 0, 1, 3))", "[3, 4, 5]", "[3, 8, 7]"),
        ("CircularPad2d(1)", "[8, 8]", "E202"),
    ),
)
CircularPad3d = _pad_layer(
    "CircularPad3d",
    3,
    "circular",
    "Pads the last three dims of [N, C, D, H, W] or [C, D, H, W] with values wrapped around.",
    (
        ("CircularPad3d(1)", "[N, 2, 4, 4, 4]", "[N, 2, 6, 6, 6]"),
        ("CircularPad3d((1, 0, 0, 0, 0, 2))", "[2, 3, 4, 5]", "[2, 5, 4, 6]"),
        ("CircularPad3d(5)", "[N, 2, 4, 4, 4]", "E203"),
    ),
)
