"""Spatial resizing: Upsample and ZeroPad2d."""

from __future__ import annotations

import math
from fractions import Fraction

from nndsl import shapes
from nndsl.layers.base import (
    ArgValueError,
    Kind,
    Layer,
    Param,
    ShapeError,
    WrongType,
    _float,
    _int,
    check_rank,
    choice,
    materialize,
    optional,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType


def _ints_or_int(value):
    if isinstance(value, tuple):
        return tuple(_positive(v) for v in value)
    return _positive(value)


def _positive(v):
    v = _int(v)
    if v < 1:
        raise ArgValueError(f"sizes must be positive, got {v}")
    return v


def _floats_or_float(value):
    if isinstance(value, tuple):
        return tuple(_scale(v) for v in value)
    return _scale(value)


def _scale(v):
    v = _float(v)
    if v <= 0:
        raise ArgValueError(f"scale factors must be positive, got {v}")
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
        Param("align_corners", optional(Kind("True or False", lambda v: v if isinstance(v, bool) else _bad())), None),
        Param("recompute_scale_factor", optional(Kind("True or False", lambda v: v if isinstance(v, bool) else _bad())), None),
    )
    examples = (
        ("Upsample(scale_factor=2)", "[N, 3, 8, 8]", "[N, 3, 16, 16]"),
        ("Upsample(scale_factor=1.5)", "[N, 3, 5, 7]", "[N, 3, 7, 10]"),
        ("Upsample(size=(10, 21), mode='bilinear')", "[N, 3, 5, 7]", "[N, 3, 10, 21]"),
        ("Upsample(scale_factor=2)", "[N, C, H, W]", "[N, C, 2*H, 2*W]"),
        ("Upsample()", "[N, 3, 8, 8]", "E107"),
        ("Upsample(scale_factor=2, mode='linear')", "[N, 3, 8, 8]", "E202"),
    )

    @classmethod
    def validate(cls, args):
        if args["size"] is not None and args["scale_factor"] is not None:
            raise ArgValueError("only one of size or scale_factor should be given", "scale_factor")
        if args["size"] is None and args["scale_factor"] is None:
            raise ArgValueError("either size or scale_factor should be given", help="add scale_factor=2, for example")
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
            out = tuple(_scaled(s, f) for s, f in zip(spatial, scales))
            if any(isinstance(o, int) and o < 1 for o in out):
                raise ShapeError(
                    "E203",
                    f"Upsample would produce an empty output: {x.shape} scaled by {scale}",
                    "output size 0",
                )
        return TensorType(Shape(x.shape.dims[:2] + tuple(out)), x.dtype)


def _bad():
    raise WrongType


def _scaled(size, factor: float):
    if isinstance(size, int):
        return math.floor(float(size) * factor)
    frac = Fraction(factor)
    return shapes.floordiv(shapes.mul(size, frac.numerator), frac.denominator)


def _pad4(value):
    if isinstance(value, tuple):
        if len(value) != 4:
            raise ArgValueError(f"must be an integer or a tuple of 4 (left, right, top, bottom), got {len(value)}")
        return tuple(_int(v) for v in value)
    v = _int(value)
    return (v, v, v, v)


@register
class ZeroPad2d(Layer):
    """Pads the last two dims with zeros: ``padding`` is an int or (left, right, top, bottom)."""

    params = (Param("padding", Kind("an integer or a tuple (left, right, top, bottom)", _pad4)),)
    examples = (
        ("ZeroPad2d(2)", "[N, 3, 8, 8]", "[N, 3, 12, 12]"),
        ("ZeroPad2d((1, 0, 2, 0))", "[N, 3, H, W]", "[N, 3, H + 2, W + 1]"),
        ("ZeroPad2d(1)", "[N, 8]", "E202"),
    )

    @classmethod
    def emitted_args(cls, args):
        pad = args["padding"]
        return ([pad[0]] if len(set(pad)) == 1 else [pad]), []

    @classmethod
    def output(cls, args, x, ctx):
        x = materialize(x, 4, ("N", "C", "H", "W"), ctx)
        check_rank("ZeroPad2d", x, (3, 4), "a 3-D or 4-D")
        left, right, top, bottom = args["padding"]
        h, w = x.shape.dims[-2:]
        out_h, out_w = shapes.add(h, top + bottom), shapes.add(w, left + right)
        if any(isinstance(o, int) and o < 1 for o in (out_h, out_w)):
            raise ShapeError("E203", f"ZeroPad2d{args['padding']} leaves nothing of {x.shape}", "empty output")
        return TensorType(Shape(x.shape.dims[:-2] + (out_h, out_w)), x.dtype)


