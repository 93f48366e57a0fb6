"""Tensor methods with no nn.Module: Reshape, View, Permute, Transpose, Mean, Sum, Squeeze, Unsqueeze."""

from __future__ import annotations

import math

from nndsl import layout, shapes
from nndsl.layers.base import (
    BOOL,
    INT,
    ArgValueError,
    Kind,
    Layer,
    Param,
    ShapeError,
    WrongType,
    as_int,
    materialize,
)
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Call, assign


def _ints(allow_int: bool, minimum: int | None = None) -> Kind:
    """A tuple of ints (possibly empty), or with ``allow_int`` one int, kept as written."""

    def one(v):
        v = as_int(v)
        if minimum is not None and v < minimum and v != -1:
            raise ArgValueError(f"must hold positive sizes (or -1 for one size to infer), got {v}")
        return v

    def convert(value):
        if isinstance(value, tuple):
            return tuple(one(v) for v in value)
        if not allow_int:
            raise WrongType
        return one(value)

    return Kind("an integer or a tuple of integers" if allow_int else "a tuple of integers", convert)


def _dims_tuple() -> Kind:
    """Integers as a tuple; one integer is a tuple of one (``Permute(0)`` is torch's ``x.permute(0)``)."""
    ints = _ints(allow_int=True)

    def convert(value):
        value = ints.convert(value)
        return value if isinstance(value, tuple) else (value,)

    return Kind("integers or a tuple of integers", convert)


DIM_OR_DIMS = _ints(allow_int=True)


def _as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _wrap(dim: int, rank: int, what: str = "dim", positions: int | None = None) -> int:
    """``dim`` as an index in ``[0, positions)``; by default the input's dims, where a 0-D input
    takes 0 and -1 as torch has it."""
    n = max(rank, 1) if positions is None else positions
    if not -n <= dim < n:
        raise ShapeError(
            "E202",
            f"{what}={dim} is out of range for a {rank}-D input (expected a dimension in [{-n}, {n - 1}])",
            f"{what}={dim} out of range",
            param=what,
        )
    return dim % n


def _indices(layer: str, dims: tuple[int, ...], rank: int, what: str = "dim") -> list[int]:
    """The dims as indices, each once (torch rejects a dim named twice)."""
    out = [_wrap(d, rank, what) for d in dims]
    for i, index in enumerate(out):
        if index in out[:i]:
            raise ShapeError(
                "E107",
                f"{layer}'s {what}={dims} repeats dimension {index}",
                f"dimension {index} appears twice",
                param=what,
            )
    return out


def _ranked(x: TensorType, dims: tuple[int, ...], ctx, extra: int = 0) -> TensorType:
    """On an input with unknown leading dims ([*, ...]): kept when every dim counts from the end
    inside the known ones, else given the rank the dims need (``extra`` positions past the end)."""
    if not x.shape.rest:
        return x
    known = x.shape.rank + extra
    if dims and all(-known <= d < 0 for d in dims):
        return x
    need = max([d + 1 - extra if d >= 0 else -d - extra for d in dims] + [1])
    return materialize(x, need, ("N",) + ("D",) * need, ctx)


def _rearranged(x: TensorType, dims: tuple, pick) -> tuple | str | None:
    """The layout of a view that rearranges the input's dims: ``pick`` maps the input's strides
    (a list) to the output's, whose sizes are ``dims``."""
    if x.strides is not None and (x.strides == layout.UNKNOWN or x.shape.rest):
        return layout.UNKNOWN
    return layout.normal(dims, tuple(pick(list(layout.strides_of(x.shape.dims, x.strides)))))


def _transpose(g, x, perm: list[int]) -> str:
    """Transpose, or the input itself for the identity order (a 0-D input included)."""
    return x if perm == sorted(perm) else g.transpose(x, perm)


class _TensorOp(Layer):
    """A tensor method applied in ``forward``: no module, no parameters, integer tensors kept."""

    layout = "own"

    has_module = False
    integer_input = "keep"
    bool_input = "keep"
    method = ""

    @classmethod
    def call_args(cls, args: dict) -> tuple[list, list]:
        """(positional, keyword) arguments of the emitted method call."""
        return [args[p.name] for p in cls.params], []

    @classmethod
    def forward_statements(cls, attr, src, dst, args, selector):
        positional, keywords = cls.call_args(args)
        return [assign(dst, Call(f"{src}.{cls.method}", tuple(positional), tuple(keywords)))]


# ---------------------------------------------------------------- reshaping


@register
class Reshape(_TensorOp):
    """Gives the input a new shape with the same number of elements; one size may be -1 (inferred).

    On symbolic sizes the -1 is the input's total divided by the other sizes: ``[N, 400]`` with
    ``(-1, 16, 25)`` gives ``[N, 16, 25]``. When that division is not exact for every value of
    the symbols (``[N, 6]`` into ``(4, -1)``) the result is the floor quotient with a W301
    warning; without a -1, a total that depends on one symbol fixes it (``[N, 4]`` into
    ``(2, 8)`` needs N = 4), and other totals get W301. On an input of unknown rank ``[*]`` the
    -1 becomes a fresh size.
    """

    torch_class = "Tensor.reshape"
    method = "reshape"
    varargs = "shape"
    params = (Param("shape", _ints(allow_int=True, minimum=1)),)
    examples = (
        ("Reshape((-1, 16, 25))", "[N, 400]", "[N, 16, 25]"),
        ("Reshape(-1, 16, 25)", "[N, 400]", "[N, 16, 25]"),
        ("Reshape(-1, 192)", "[N, 8, 8, 3]", "[N, 192]"),
        ("Reshape((2, -1))", "[N, 6]", "[2, 3*N]"),
        ("Reshape(2, -1)", "[N, 6]", "[2, 3*N]"),
        ("Reshape(6, 4)", "[2, 3, 4]", "[6, 4]"),
        ("Reshape(5, 5)", "[2, 3, 4]", "E206"),
        ("Reshape(-1, -1)", "[2, 3, 4]", "E107"),
        ("Reshape(0, 4)", "[2, 3, 4]", "E107"),
        ("Reshape(-1)", "[N, 3, 4]", "[12*N]"),
        ("Reshape((6, 4))", "[2, 3, 4]", "[6, 4]"),
        ("Reshape(())", "[1, 1]", "[]"),
        ("Reshape((-1, 10))", "[*]", "[N, 10]"),
        ("Reshape((2, 8))", "[N, 4]", "W303"),
        ("Reshape((4, -1))", "[N, 6]", "W301"),
        ("Reshape((5, 5))", "[2, 3, 4]", "E206"),
        ("Reshape((-1, 4))", "[2, 0]", "[0, 4]"),
        ("Reshape((5, -1))", "[2, 3, 4]", "E206"),
        ("Reshape((-1, -1))", "[2, 3, 4]", "E107"),
        ("Reshape((0, 4))", "[2, 3, 4]", "E107"),
    )
    onnx_examples = (
        ("Reshape((-1, 2, 3))", "[N, T, 6]"),
        ("Reshape((3, -1, 2))", "[N, 6]"),
        ("Reshape((2, 12))", "[2, 3, 4]"),
        ("Reshape(-1)", "long[N, 3]"),
        ("Reshape((-1, 4))", "int32[N, T, 4]"),
    )

    @classmethod
    def validate(cls, args):
        if _as_tuple(args["shape"]).count(-1) > 1:
            raise ArgValueError("only one size may be -1", "shape")

    @classmethod
    def call_args(cls, args):
        sizes = _as_tuple(args["shape"])
        return list(sizes) if sizes else [()], []

    @classmethod
    def output(cls, args, x, ctx):
        out = cls.reshaped(args, x, ctx)
        return out._replace(strides=layout.of_reshape(x, out))

    @classmethod
    def reshaped(cls, args, x, ctx) -> TensorType:
        """The output's shape and dtype (as row-major memory)."""
        sizes = _as_tuple(args["shape"])
        known = shapes.prod(s for s in sizes if s != -1)
        if x.shape.rest:
            tail = shapes.prod(x.shape.dims)
            if -1 not in sizes and isinstance(tail, int) and known % tail:
                raise _reshape_error(cls, sizes, x, f"{known} is not a multiple of {tail}")
            out = tuple(ctx.fresh("N" if i == 0 else "D") if s == -1 else s for i, s in enumerate(sizes))
            return TensorType(Shape(out), x.dtype)
        total = shapes.prod(x.shape.dims)
        if -1 not in sizes:
            _require_total(cls, sizes, x, total, known, ctx)
            return TensorType(Shape(sizes), x.dtype)
        if total == 0:
            if known == 0:
                raise _reshape_error(cls, sizes, x, "with 0 elements the -1 could be any size")
            return TensorType(Shape(tuple(0 if s == -1 else s for s in sizes)), x.dtype)  # as torch infers it
        if isinstance(total, int) and total % known:
            raise _reshape_error(cls, sizes, x, f"{total} elements are not divisible by {known}")
        quotient = _divide(total, known)
        if shapes.known_equal(shapes.mul(quotient, known), total) is not True:
            ctx.warn("W301", f"cannot verify statically that {total} is divisible by {known}")
        return TensorType(Shape(tuple(quotient if s == -1 else s for s in sizes)), x.dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # the sizes as written: positive numbers and at most one -1 mean the same to ONNX's
        # Reshape as to torch (no 0 to copy a dim), whatever the input's symbolic sizes
        return g.op("Reshape", [x, g.const(list(_as_tuple(node.args["shape"])))])


def _divide(total, k: int):
    """``total // k``, cancelling what ``k`` shares with every coefficient first: 6*N // 4 is (3*N)//2."""
    if isinstance(total, int):
        return total // k
    g = math.gcd(k, *(c for _, c in total.terms))
    return shapes.floordiv(shapes.Poly.of({m: c // g for m, c in total.terms}), k // g)


def _require_total(cls, sizes, x: TensorType, total, want: int, ctx) -> None:
    """The input's element count must be ``want``; a count ``c*S`` fixes the symbol S to want/c."""
    if isinstance(total, int):
        if total != want:
            raise _reshape_error(cls, sizes, x, f"the input has {total} elements, the shape needs {want}")
        return
    coef, symbol = _scaled_symbol(total)
    if symbol is not None:
        if want % coef:
            raise _reshape_error(cls, sizes, x, f"{total} elements can never be {want}")
        ctx.require_equal(symbol, want // coef, "", "")
        return
    ctx.require_equal(total, want, "", "")


def _scaled_symbol(d) -> tuple[int, shapes.Dim | None]:
    """(c, S) when ``d`` is ``c*S`` for one plain symbol S, else (0, None)."""
    if len(d.terms) == 1:
        mono, coef = d.terms[0]
        if coef > 0 and len(mono) == 1 and isinstance(mono[0], shapes.Sym):
            return coef, shapes.Poly(((mono, 1),))
    return 0, None


def _reshape_error(cls, sizes, x: TensorType, why: str) -> ShapeError:
    shape = ", ".join(str(s) for s in sizes)
    return ShapeError(
        "E206",
        f"{cls.dsl_name()} cannot give {x.shape} the shape ({shape}): {why}",
        why,
        "the sizes must multiply to the input's number of elements"
        + ("" if -1 in sizes else "; write -1 for the one size to infer"),
    )


@register
class View(Reshape):
    """Reshape emitted as ``.view(...)``: the same shape rule (one size may be -1).

    torch's view also needs strides compatible with the new shape (its ``computeStride`` rule,
    nndsl.layout). The checker follows the memory layout through Permute, Transpose, views,
    element-wise layers and batch_first recurrent layers: where the sizes decide that torch
    raises, View is an error (E209); where symbolic sizes leave it open, or the layout is not
    followed (a convolution of reordered memory), a warning (W306). ``Reshape`` copies when it
    must.
    """

    torch_class = "Tensor.view"
    method = "view"
    examples = (
        ("View((-1, 16, 25))", "[N, 400]", "[N, 16, 25]"),
        ("View((4, 6))", "[2, 3, 4]", "[4, 6]"),
        ("View(-1, 16, 25)", "[N, 400]", "[N, 16, 25]"),
        ("View(4, 6)", "[2, 3, 4]", "[4, 6]"),
        ("View((5, 5))", "[2, 3, 4]", "E206"),
    )
    onnx_examples = (("View(-1)", "[N, 2, 3]"), ("View((-1, 3))", "[N, T, 6]"))

    @classmethod
    def output(cls, args, x, ctx):
        out = cls.reshaped(args, x, ctx)
        if x.strides is None:
            return out
        if x.shape.rest:
            verdict = layout.DEPENDS
        else:
            verdict = layout.view_strides(x.shape.dims, x.strides, out.shape.dims)
        fix = "use Reshape, which copies when it must, or reorder the dims after View"
        if verdict is False:
            raise ShapeError(
                "E209",
                f"View cannot give {x.shape} the shape {out.shape} without copying: the input's memory is "
                "not in row-major order (a Permute, Transpose, split or batch_first recurrent layer "
                "reordered it), and torch raises 'view size is not compatible with input tensor's size "
                "and stride'",
                "torch raises here",
                fix,
            )
        if verdict == layout.DEPENDS:
            ctx.warn(
                "W306",
                "View needs its input's memory in row-major order, and it has been reordered (by a "
                "Permute, Transpose, split or batch_first recurrent layer before it): whether torch "
                "raises here depends on the sizes",
                help=fix,
            )
            return out._replace(strides=layout.UNKNOWN)
        return out._replace(strides=verdict)

    @classmethod
    def onnx_unsupported(cls, node, opset):
        if not node.input.contiguous:  # torch raises for most sizes; ONNX's Reshape never would
            return (
                "its input's memory was reordered by a Permute or Transpose, and torch's view raises "
                "there unless the sizes happen to line up: an export would accept what torch refuses; "
                "use Reshape, which gives the same result wherever View works"
            )
        return None


@register
class Permute(_TensorOp):
    """Reorders all dimensions: ``Permute((0, 2, 1))`` turns ``[N, L, C]`` into ``[N, C, L]``."""

    torch_class = "Tensor.permute"
    method = "permute"
    varargs = "dims"
    params = (Param("dims", _dims_tuple()),)
    examples = (
        ("Permute((0, 2, 1))", "[N, L, C]", "[N, C, L]"),
        ("Permute(0, 2, 1)", "[N, L, C]", "[N, C, L]"),
        ("Permute(0, 2, 3, 1)", "[N, 3, 8, 8]", "[N, 8, 8, 3]"),
        ("Permute(0)", "[5]", "[5]"),
        ("Permute(-1, 0)", "[2, 3]", "[3, 2]"),
        ("Permute(0, 1)", "[2, 3, 4]", "E202"),
        ("Permute(0, 0, 1)", "[2, 3, 4]", "E107"),
        ("Permute((2, 0, -2))", "[2, 3, 4]", "[4, 2, 3]"),
        ("Permute(())", "[]", "[]"),
        ("Permute((1, 0))", "[*]", "[D, N]"),
        ("Permute((0, 1))", "[2, 3, 4]", "E202"),
        ("Permute((0, 1, 3))", "[2, 3, 4]", "E202"),
        ("Permute((0, 1, -3))", "[2, 3, 4]", "E107"),
    )
    onnx_examples = (
        ("Permute((0, 3, 1, 2))", "[N, H, W, 3]"),
        ("Permute((0, 1))", "[N, 4]"),
        ("Permute((-1, 0, 1))", "long[N, T, 3]"),
    )

    @classmethod
    def call_args(cls, args):
        dims = args["dims"]  # a tuple, or (in a block's class) an attribute holding one
        return list(dims) if isinstance(dims, tuple) and dims else [dims], []

    @classmethod
    def output(cls, args, x, ctx):
        dims = args["dims"]
        x = materialize(x, len(dims), ("N",) + ("D",) * len(dims), ctx)
        if x.shape.rank != len(dims):
            raise ShapeError(
                "E202",
                f"Permute's dims {dims} order {len(dims)} dimensions, the input {x.shape} has {x.shape.rank}",
                f"expected a {len(dims)}-D input, got {x.shape}",
                param="dims",
            )
        order = _indices("Permute", dims, x.shape.rank, "dims")
        out = tuple(x.shape.dims[i] for i in order)
        return TensorType(Shape(out), x.dtype, _rearranged(x, out, lambda s: [s[i] for i in order]))

    @classmethod
    def to_onnx(cls, g, x, node, w):
        rank = node.input.shape.rank
        return _transpose(g, x, [d % rank for d in node.args["dims"]] if rank else [])


@register
class Transpose(_TensorOp):
    """Swaps two dimensions: ``Transpose(1, 2)`` turns ``[N, L, C]`` into ``[N, C, L]``."""

    torch_class = "Tensor.transpose"
    method = "transpose"
    params = (Param("dim0", INT), Param("dim1", INT))
    examples = (
        ("Transpose(1, 2)", "[N, L, C]", "[N, C, L]"),
        ("Transpose(1, 2)", "[*]", "[N, D2, D]"),
        ("Transpose(0, 0)", "[]", "[]"),
        ("Transpose(0, 3)", "[2, 3, 4]", "E202"),
    )
    onnx_examples = (
        ("Transpose(-1, 0)", "[N, 3, 4]"),
        ("Transpose(2, 2)", "[N, 3, 4]"),
        ("Transpose(0, 1)", "int32[N, 3]"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        x = _ranked(x, (args["dim0"], args["dim1"]), ctx)
        rank = x.shape.rank
        i, j = _wrap(args["dim0"], rank, "dim0"), _wrap(args["dim1"], rank, "dim1")
        dims = list(x.shape.dims)

        def swap(items: list) -> list:
            if items:
                items[i], items[j] = items[j], items[i]
            return items

        out = tuple(swap(dims))
        return TensorType(Shape(out, x.shape.rest), x.dtype, _rearranged(x, out, swap))

    @classmethod
    def to_onnx(cls, g, x, node, w):
        rank = node.input.shape.rank
        perm = list(range(rank))
        if rank:
            i, j = node.args["dim0"] % rank, node.args["dim1"] % rank
            perm[i], perm[j] = perm[j], perm[i]
        return _transpose(g, x, perm)


# ---------------------------------------------------------------- reductions


class _Reduction(_TensorOp):
    layout = "contiguous"  # torch's reductions write a new row-major tensor
    params = (Param("dim", DIM_OR_DIMS), Param("keepdim", BOOL, False))

    @classmethod
    def call_args(cls, args):
        keep = args["keepdim"]  # a bool, or (in a block's class) an attribute holding one
        return [], [("dim", args["dim"])] + ([("keepdim", keep)] if keep is not False else [])

    @classmethod
    def reduce(cls, args, x, ctx) -> Shape:
        dims, keep = _as_tuple(args["dim"]), args["keepdim"]
        if not dims:  # torch reduces over every dimension for an empty tuple
            return Shape((1,) * x.shape.rank if keep else (), x.shape.rest and keep)
        x = _ranked(x, dims, ctx)
        gone = _indices(cls.dsl_name(), dims, x.shape.rank)
        kept = tuple(1 if i in gone else d for i, d in enumerate(x.shape.dims) if keep or i not in gone)
        return Shape(kept, x.shape.rest)

    @classmethod
    def reduce_onnx(cls, g, op_type, x, node):
        rank = node.input.shape.rank
        if rank == 0:  # a 0-D input's one element is its own sum and mean
            return x
        dims = _as_tuple(node.args["dim"])
        axes = sorted(d % rank for d in dims) if dims else list(range(rank))  # () means every dim
        return g.reduce(op_type, x, axes, node.args["keepdim"])


@register
class Mean(_Reduction):
    """Mean over ``dim`` (an int or a tuple; ``()`` means every dim): ``Mean((2, 3))`` pools spatial dims."""

    torch_class = "Tensor.mean"
    method = "mean"
    integer_input = None  # torch: mean() could not infer output dtype for Long
    examples = (
        ("Mean((2, 3))", "[N, C, H, W]", "[N, C]"),
        ("Mean(1, keepdim=True)", "[N, T, 8]", "[N, 1, 8]"),
        ("Mean(1)", "[*]", "[N]"),
        ("Mean(())", "[2, 3]", "[]"),
        ("Mean(0)", "[]", "[]"),
        ("Mean((), keepdim=True)", "[N, 3]", "[1, 1]"),
        ("Mean((-1, 1), keepdim=True)", "[N, 3, 4]", "[N, 1, 1]"),
        ("Mean(3)", "[N, 8, 8]", "E202"),
        ("Mean((0, -2))", "[2, 3]", "E107"),
        ("Mean(1)", "long[N, T]", "E204"),
        ("Mean(1)", "bool[N, T]", "E204"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        if x.dtype == "bool":
            raise ShapeError(
                "E204",
                f"Mean expects a floating-point input, got {x}",
                f"expected float32, got {x.dtype}",
                "use Sum to count, or convert the input to float",
            )
        return TensorType(cls.reduce(args, x, ctx), x.dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        return cls.reduce_onnx(g, "ReduceMean", x, node)


@register
class Sum(_Reduction):
    """Sum over ``dim`` (an int or a tuple; ``()`` means every dim); integer and bool inputs give int64."""

    torch_class = "Tensor.sum"
    method = "sum"
    examples = (
        ("Sum(1)", "[N, T, 8]", "[N, 8]"),
        ("Sum((0, 1), keepdim=True)", "[2, 3, 4]", "[1, 1, 4]"),
        ("Sum(-1)", "int32[N, 5]", "[N]"),
        ("Sum((), keepdim=True)", "[2, 3]", "[1, 1]"),
        ("Sum(2)", "[2, 3]", "E202"),
    )
    onnx_examples = (
        ("Sum(())", "[N, 3]"),
        ("Sum((-1, 0))", "[N, 3, 4]"),
        ("Sum(1, keepdim=True)", "long[N, 4]"),
        ("Sum((), keepdim=True)", "int32[N, 3]"),
        ("Sum(0)", "int32[]"),
        ("Sum(0)", "[]"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        dtype = "int64" if x.dtype in ("bool", "int32") else x.dtype
        return TensorType(cls.reduce(args, x, ctx), dtype)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        if node.input.dtype in ("bool", "int32"):
            # torch sums these as int64; casting first gives the same (exact) integer sums
            x = g.op("Cast", [x], to=7)  # TensorProto.INT64
        return cls.reduce_onnx(g, "ReduceSum", x, node)


# ---------------------------------------------------------------- size-1 dims


@register
class Squeeze(_TensorOp):
    """Removes ``dim`` (an int or a tuple) where its size is 1; a dim of another size stays, as in torch.

    A symbolic size there (``N``) is kept, as torch keeps every size but 1, with a W308 warning:
    where it is 1 at run time, torch removes it and the output has one dimension less than
    the checker's. Declare the size as 1 for a dim that is always 1.
    """

    torch_class = "Tensor.squeeze"
    method = "squeeze"
    params = (Param("dim", DIM_OR_DIMS),)
    examples = (
        ("Squeeze(1)", "[N, 1, 10]", "[N, 10]"),
        ("Squeeze(0)", "[2, 3]", "[2, 3]"),
        ("Squeeze((1, -1))", "[N, 1, 4, 1]", "[N, 4]"),
        ("Squeeze(0)", "[]", "[]"),
        ("Squeeze(1)", "[N, T, 4]", "W308"),
        ("Squeeze((0, 2))", "[2, W, C, 11]", "[2, W, C, 11]"),
        ("Squeeze(3)", "[N, 1, 4]", "E202"),
        ("Squeeze((0, 0))", "[1, 1]", "E107"),
    )
    onnx_examples = (
        ("Squeeze(())", "[N, 1, 3]"),
        ("Squeeze((0, 2))", "[1, 3, 1]"),
        ("Squeeze(-1)", "long[N, 3, 1]"),
        ("Squeeze((1, 2))", "[N, 1, 3]"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        dims = _as_tuple(args["dim"])
        x = _ranked(x, dims, ctx)
        gone = set()
        for i in _indices("Squeeze", dims, x.shape.rank):
            if i >= x.shape.rank:  # a 0-D input: nothing to remove
                continue
            size = x.shape.dims[i]
            verdict = shapes.known_equal(size, 1)
            if verdict:
                gone.add(i)
            elif verdict is None:
                ctx.warn(
                    "W308",
                    f"Squeeze removes dim {i} only when its size is 1, and {size} may or may not be 1: "
                    f"the checker keeps it, so the shapes after this layer hold for {size} != 1 only "
                    f"(with {size} = 1 torch gives one dimension less)",
                    help=f"declare the size as 1 if it is always 1, or drop the Squeeze if {size} is never 1",
                    param="dim",
                )
        kept = tuple(d for i, d in enumerate(x.shape.dims) if i not in gone)
        strides = _rearranged(x, kept, lambda s: [st for i, st in enumerate(s) if i not in gone])
        return TensorType(Shape(kept, x.shape.rest), x.dtype, strides)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # the dims the checker removed: those of size 1 (a symbolic size is kept, W308)
        dims = node.input.shape.dims
        rank = len(dims)
        axes = sorted({d % rank for d in _as_tuple(node.args["dim"])}) if rank else []
        axes = [i for i in axes if dims[i] == 1]
        return g.squeeze(x, axes) if axes else x


@register
class Unsqueeze(_TensorOp):
    """Inserts a dimension of size 1 at ``dim`` (``-1`` appends): ``[N, 10]`` -> ``[N, 1, 10]``."""

    torch_class = "Tensor.unsqueeze"
    method = "unsqueeze"
    params = (Param("dim", INT),)
    examples = (
        ("Unsqueeze(1)", "[N, 10]", "[N, 1, 10]"),
        ("Unsqueeze(-1)", "[N, 10]", "[N, 10, 1]"),
        ("Unsqueeze(0)", "[]", "[1]"),
        ("Unsqueeze(-1)", "[*]", "[*, 1]"),
        ("Unsqueeze(3)", "[N, 10]", "E202"),
    )
    onnx_examples = (
        ("Unsqueeze(0)", "[N, 3]"),
        ("Unsqueeze(-2)", "long[N, 3]"),
        ("Unsqueeze(2)", "[N, 3]"),
    )

    @classmethod
    def output(cls, args, x, ctx):
        x = _ranked(x, (args["dim"],), ctx, extra=1)
        rank = x.shape.rank
        i = _wrap(args["dim"], rank, positions=rank + 1)
        dims = x.shape.dims

        def insert(s: list) -> list:
            # torch gives the new dim the stride size * stride of the dim it precedes, 1 at the end
            return s[:i] + [shapes.mul(dims[i], s[i]) if i < rank else 1] + s[i:]

        out = dims[:i] + (1,) + dims[i:]
        return TensorType(Shape(out, x.shape.rest), x.dtype, _rearranged(x, out, insert))

    @classmethod
    def to_onnx(cls, g, x, node, w):
        rank = node.input.shape.rank
        return g.unsqueeze(x, [node.args["dim"] % (rank + 1)])
