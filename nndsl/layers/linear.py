"""Dense and reshaping layers: Linear, Identity, Flatten, Unflatten, Embedding."""

from __future__ import annotations

from nndsl import layout, shapes
from nndsl.layers.base import (
    BOOL,
    FLOAT,
    INT,
    POS_INT,
    ArgValueError,
    Layer,
    Param,
    ShapeError,
    int_tuple,
    materialize,
    optional,
)
from nndsl.layers.registry import register
from nndsl.shapes import INTEGER_DTYPES, Shape, TensorType


@register
class Linear(Layer):
    """Applies ``y = x W^T + b`` to the last dimension: ``[*, in_features] -> [*, out_features]``."""

    layout = "contiguous"

    params = (
        Param("in_features", POS_INT, infer=True),
        Param("out_features", POS_INT),
        Param("bias", BOOL, True),
    )
    examples = (
        ("Linear(784, 512)", "[N, 784]", "[N, 512]"),
        ("Linear(10, 5)", "[2, 7, 10]", "[2, 7, 5]"),
        ("Linear(out_features=10)", "[N, 64]", "[N, 10]"),
        ("Linear(256, 10)", "[N, 512]", "E201"),
        ("Linear(10, 5)", "[]", "E202"),
        ("Linear(784, 10)", "[N, 1, 28, 28]", "E201"),
        ("Linear(10, 2)", "[*]", "[*, 2]"),
    )

    @classmethod
    def infer(cls, name, args, x):
        return x.shape.dims[-1] if x.shape.dims else None

    @classmethod
    def output(cls, args, x, ctx):
        if x.shape.rest and not x.shape.dims:
            # [*] -> [*, F]: the leading dims stay unknown, the features are one fresh size
            x = TensorType(Shape((ctx.fresh("F"),), rest=True), x.dtype)
        if x.shape.rank < 1:
            raise ShapeError("E202", "Linear needs an input with at least 1 dimension, got a 0-D tensor")
        n_in, n_out = args["in_features"], args["out_features"]
        have = x.shape.dims[-1]
        if shapes.known_equal(have, n_in) is not True:
            ctx.require_equal(
                have,
                n_in,
                f"Linear expects {n_in} input features, got {have}",
                f"expected {Shape(x.shape.dims[:-1] + (n_in,), x.shape.rest)}, got {x.shape}",
                _linear_help(x.shape, have, n_in, n_out),
            )
        return TensorType(Shape(x.shape.dims[:-1] + (n_out,), x.shape.rest), x.dtype)

    @classmethod
    def param_count(cls, args):
        return args["in_features"] * args["out_features"] + (args["out_features"] if args["bias"] else 0)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        weight, bias = w("weight"), w.get("bias")
        if node.input.shape.rank == 2:
            inputs = [x, g.weight(weight, w.key("weight"))]
            if bias is not None:
                inputs.append(g.weight(bias, w.key("bias")))
            return g.op("Gemm", inputs, transB=1)
        return g.project(x, weight, w.key("weight"), bias, w.key("bias"))


def _linear_help(shape: Shape, have, n_in: int, n_out: int) -> str:
    """The likely fix: a Flatten that was forgotten, else matching the sizes."""
    if not shape.rest and shape.rank >= 3:
        features = shapes.prod(shape.dims[1:])
        if shapes.known_equal(features, n_in):
            return f"insert Flatten before this layer: it turns {shape} into [{shape.dims[0]}, {n_in}]"
        if shape.rank == 4 and isinstance(features, int):  # feature maps into a classifier
            return (
                f"Linear reads the last dim of {shape}; to flatten the feature maps first, "
                f"write Flatten -> Linear({features}, {n_out}) (or change in_features to {have})"
            )
    return f"change in_features to {have}, or insert Linear({have}, {n_in}) before this layer"


@register
class Identity(Layer):
    """Returns its input unchanged."""

    layout = "elementwise"

    integer_input = "keep"
    bool_input = "keep"

    examples = (("Identity", "[N, 3]", "[N, 3]"),)

    @classmethod
    def output(cls, args, x, ctx):
        return x

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return x


def _normalize_dim(dim: int, rank: int, what: str, wrap_scalar: bool = False) -> int:
    """``dim`` as an index in ``[0, rank)``; with ``wrap_scalar`` a 0-D input takes the dims of a 1-D one."""
    span = max(rank, 1) if wrap_scalar else rank
    if not -span <= dim < span or span == 0:
        lo, hi = (-span, span - 1) if span else (-1, 0)
        raise ShapeError(
            "E202",
            f"{what}={dim} is out of range for a {rank}-D input (expected a dimension in [{lo}, {hi}])",
            f"{what}={dim} out of range",
        )
    return dim % span


@register
class Flatten(Layer):
    """Merges dimensions ``start_dim..end_dim`` (inclusive) into one: ``[N, C, H, W] -> [N, C*H*W]``."""

    @classmethod
    def out_strides(cls, args, x, out, selector):
        return layout.of_reshape(x, out)  # a view where torch can make one, else a row-major copy

    integer_input = "keep"
    bool_input = "keep"

    params = (Param("start_dim", INT, 1), Param("end_dim", INT, -1))
    examples = (
        ("Flatten", "[N, 1, 28, 28]", "[N, 784]"),
        ("Flatten(0)", "[2, 3, 4, 5]", "[120]"),
        ("Flatten(1, 2)", "[2, 3, 4, 5]", "[2, 12, 5]"),
        ("Flatten", "[N, 784]", "[N, 784]"),
        ("Flatten", "[10]", "E202"),
        ("Flatten(2, 1)", "[2, 3, 4]", "E207"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        start, end = args["start_dim"], args["end_dim"]
        if x.shape.rest:
            if start >= 0 and end == -1:
                front = tuple(ctx.fresh("N" if i == 0 else "D") for i in range(start))
                return TensorType(Shape(front + (ctx.fresh("F"),)), x.dtype)
            needed = max(start + 1 if start >= 0 else -start, end + 1 if end >= 0 else -end, 2)
            x = materialize(x, needed, ("N", "C", "H", "W", "D"), ctx)
        rank = x.shape.rank
        # torch wraps a 0-D tensor's dims as if it were 1-D, so only 0 and -1 are in range
        s = _normalize_dim(start, rank, "start_dim", wrap_scalar=True)
        e = _normalize_dim(end, rank, "end_dim", wrap_scalar=True)
        if rank == 0:
            return TensorType(Shape((1,)), x.dtype)
        if s > e:
            raise ShapeError(
                "E207",
                "Flatten's start_dim cannot come after end_dim",
                f"start_dim={start} is after end_dim={end} for a {rank}-D input",
            )
        dims = x.shape.dims
        merged = shapes.prod(dims[s : e + 1])
        return TensorType(Shape(dims[:s] + (merged,) + dims[e + 1 :]), x.dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        rank = node.input.shape.rank
        if rank >= 2 and node.args["start_dim"] % rank == 1 and node.args["end_dim"] % rank == rank - 1:
            return g.op("Flatten", [x], axis=1)
        return g.reshape(x, node.input.shape.dims, node.output.shape.dims)


@register
class Unflatten(Layer):
    """Splits dimension ``dim`` into ``unflattened_size`` (one entry may be -1)."""

    @classmethod
    def out_strides(cls, args, x, out, selector):
        return layout.of_reshape(x, out)  # a view: splitting one dim always keeps the memory

    integer_input = "keep"
    bool_input = "keep"

    # torch wants a tuple (or list) even for one size
    params = (Param("dim", INT), Param("unflattened_size", int_tuple(minimum=-1, allow_int=False)))

    examples = (
        ("Unflatten(1, (1, 28, 28))", "[N, 784]", "[N, 1, 28, 28]"),
        ("Unflatten(1, (-1, 5))", "[2, 20]", "[2, 4, 5]"),
        ("Unflatten(-1, (4, 5))", "[2, 20]", "[2, 4, 5]"),
        ("Unflatten(1, (3, 5))", "[2, 20]", "E206"),
    )

    @classmethod
    def validate(cls, args):
        sizes = args["unflattened_size"]
        if sum(1 for s in sizes if s == -1) > 1:
            raise ArgValueError("only one size may be -1", "unflattened_size")
        if any(s < -1 for s in sizes):
            raise ArgValueError("sizes must be positive (or one -1)", "unflattened_size")

    @classmethod
    def output(cls, args, x, ctx):
        if x.shape.rest:
            x = materialize(x, max(abs(args["dim"]) + 1, 2), ("N", "C", "H", "W", "D"), ctx)
        rank = x.shape.rank
        d = _normalize_dim(args["dim"], rank, "dim")
        sizes = args["unflattened_size"]
        have = x.shape.dims[d]
        known = 1
        for s in sizes:
            if s != -1:
                known *= s
        out = list(sizes)
        if -1 in sizes:
            if isinstance(have, int):
                if known == 0 or have % known:
                    raise _unflatten_error(sizes, d, have)
                out[sizes.index(-1)] = have // known
            else:
                quotient = shapes.floordiv(have, known)
                if shapes.known_equal(shapes.mul(quotient, known), have) is not True:
                    ctx.warn("W301", f"cannot verify that {have} is divisible by {known}")
                out[sizes.index(-1)] = quotient
        else:
            verdict = shapes.known_equal(have, known)
            if verdict is False:
                raise _unflatten_error(sizes, d, have)
            if verdict is None:
                ctx.require_equal(have, known, "", "")
        dims = x.shape.dims
        return TensorType(Shape(dims[:d] + tuple(out) + dims[d + 1 :]), x.dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return g.reshape(x, node.input.shape.dims, node.output.shape.dims)


def _unflatten_error(sizes, d, have) -> ShapeError:
    listed = ", ".join(str(s) for s in sizes)
    return ShapeError(
        "E206",
        f"Unflatten sizes ({listed}) don't multiply up to the size of dim {d} ({have})",
        f"dim {d} has size {have}",
    )


@register
class Embedding(Layer):
    """Looks up integer indices: ``long[*] -> [*, embedding_dim]``."""

    layout = "contiguous"

    integer_input = "keep"

    params = (
        Param("num_embeddings", POS_INT),
        Param("embedding_dim", POS_INT),
        Param("padding_idx", optional(INT), None),
        Param("max_norm", optional(FLOAT), None),
        Param("norm_type", FLOAT, 2.0),
        Param("scale_grad_by_freq", BOOL, False),
        Param("sparse", BOOL, False),
    )
    examples = (
        ("Embedding(1000, 64)", "long[N, T]", "[N, T, 64]"),
        ("Embedding(10, 16)", "long[]", "[16]"),
        ("Embedding(10, 16)", "[N, T]", "E204"),
        ("Embedding(10, 16, padding_idx=10)", "long[N, T]", "E107"),
    )

    @classmethod
    def validate(cls, args):
        idx, n = args["padding_idx"], args["num_embeddings"]
        if idx is not None and not -n <= idx < n:
            raise ArgValueError(f"padding_idx must be within [-{n}, {n}), got {idx}", "padding_idx")

    @classmethod
    def output(cls, args, x, ctx):
        if x.dtype not in INTEGER_DTYPES:
            raise ShapeError(
                "E204",
                f"Embedding expects integer indices (int64 or int32), got {x.dtype}",
                f"expected long{x.shape}, got {x}",
                "give the input as integer indices with --input 'long[N, T]'"
                if x.shape.rest
                else "declare the input as integer indices, e.g. `tokens: long[N, T]`",
            )
        return TensorType(Shape(x.shape.dims + (args["embedding_dim"],), x.shape.rest), "float32")

    @classmethod
    def param_count(cls, args):
        return args["num_embeddings"] * args["embedding_dim"]

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if node.args["max_norm"] is not None:
            return "Embedding(max_norm=...) rescales its weight rows in place at every lookup; ONNX has no equivalent"
        return None

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return g.op("Gather", [g.weight(w("weight"), w.key("weight")), x], axis=0)
