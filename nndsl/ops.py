"""Shape rules of the tensor operations that join or split values: element-wise arithmetic with
torch's broadcasting, cat, stack, chunk and split. They raise ShapeError as layer rules do."""

from __future__ import annotations

from nndsl import layout, shapes
from nndsl.layers.base import ShapeError
from nndsl.shapes import Dim, Shape, TensorType

#: the Python operator of each element-wise operation
OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}

_FLOATS = ("float64", "float32", "bfloat16", "float16")


#: torch's promotion lattice for the dtypes specs can declare: a higher category wins (bool <
#: integer < floating point), and within one the wider type; float16 and bfloat16 meet at float32
_CATEGORY = {"bool": 0, "int32": 1, "int64": 1, "float16": 2, "bfloat16": 2, "float32": 2, "float64": 2}
_WIDTH = {"bool": 1, "int32": 4, "int64": 8, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def result_dtype(a: str, b: str) -> str:
    """``torch.result_type`` of two tensors of these dtypes."""
    if a == b:
        return a
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"
    if _CATEGORY[a] != _CATEGORY[b]:
        return a if _CATEGORY[a] > _CATEGORY[b] else b
    return a if _WIDTH[a] > _WIDTH[b] else b


def scalar_result_dtype(op: str, dtype: str, scalar: int | float) -> str:
    """The dtype of ``tensor op number``: a number never widens a tensor's own category, but an
    integer lifts bool to int64 and a float lifts bool and integers to float32; ``/`` gives floats."""
    if isinstance(scalar, float) or op == "div":
        return dtype if _CATEGORY[dtype] == 2 else "float32"
    return "int64" if dtype == "bool" else dtype


def _no_bool_subtraction(op: str, dtypes) -> None:
    if op == "sub" and "bool" in dtypes:
        raise ShapeError(
            "E204",
            "torch does not subtract bool tensors",
            "bool operand of '-'",
            "use logical operations on masks, or convert the mask to an integer or float first",
        )


def _layout(types, out: TensorType) -> TensorType:
    """A new tensor from ``types``: row-major from row-major inputs; the layout torch gives a
    result of reordered inputs is not followed."""
    return out if all(t.strides is None for t in types) else out._replace(strides="unknown")


def broadcast(op: str, a: TensorType, b: TensorType) -> tuple[TensorType, list[str]]:
    """The result of ``a op b`` under torch's broadcasting, and the sizes it cannot verify."""
    x, y = a.shape, b.shape
    if x.rest or y.rest:
        raise ShapeError(
            "E208",
            f"cannot {op} values of unknown rank {x} and {y}",
            "unknown rank",
            "give the input shape with --input",
        )
    rank = max(x.rank, y.rank)
    left = (1,) * (rank - x.rank) + x.dims
    right = (1,) * (rank - y.rank) + y.dims
    dims: list[Dim] = []
    unverified = []
    for i, (p, q) in enumerate(zip(left, right)):
        same = shapes.known_equal(p, q)
        if same or q == 1:
            dims.append(p)
        elif p == 1:
            dims.append(q)
        elif same is False:
            raise _mismatch(op, a, b, i, p, q)
        else:
            unverified.append(f"{p} == {q}")
            dims.append(p)
    _no_bool_subtraction(op, (a.dtype, b.dtype))
    dtype = result_dtype(a.dtype, b.dtype)
    if op == "div" and dtype not in _FLOATS:
        dtype = "float32"  # true division of integers gives floats
    return _layout((a, b), TensorType(Shape(tuple(dims)), dtype)), unverified


def combined(a: TensorType, b: TensorType) -> TensorType:
    """The type of ``a + b`` for two tensors of one shape (a residual's sum)."""
    return _layout((a, b), a._replace(dtype=result_dtype(a.dtype, b.dtype), strides=None))


def _mismatch(op: str, a: TensorType, b: TensorType, dim: int, p: Dim, q: Dim) -> ShapeError:
    verb = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}[op]
    return ShapeError(
        "E208",
        f"cannot {verb} {a.shape} and {b.shape}: sizes {p} and {q} differ at dim {dim}, and neither is 1",
        f"{a.shape} {OPERATORS[op]} {b.shape}",
        "element-wise operations need equal sizes, or a size of 1 to broadcast",
    )


def _dim(dim: int, rank: int, what: str) -> int:
    if not -rank <= dim < rank:
        raise ShapeError(
            "E207",
            f"{what}: dim {dim} is out of range for {rank}-D tensors (expected -{rank}..{rank - 1})",
            f"dim {dim} out of range",
            param="dim",
        )
    return dim % rank


def cat(types: list[TensorType], dim: int) -> TensorType:
    """torch.cat: equal ranks, equal sizes except along ``dim``, which adds up."""
    if not types:
        raise ShapeError("E207", "cat needs at least one tensor", "no tensors")
    first = types[0]
    if any(t.shape.rest for t in types):
        raise ShapeError(
            "E208", "cannot cat values of unknown rank", "unknown rank", "give the input shape with --input"
        )
    rank = first.shape.rank
    if rank == 0:
        raise ShapeError("E202", "cat cannot join 0-D tensors", "0-D", "use stack")
    for t in types[1:]:
        if t.shape.rank != rank:
            raise ShapeError(
                "E208",
                f"cat needs tensors of one rank, got {first.shape} and {t.shape}",
                f"{first.shape.rank}-D and {t.shape.rank}-D",
            )
    axis = _dim(dim, rank, "cat")
    total: Dim = 0
    for t in types:
        differ = [i for i, (p, q) in enumerate(zip(first.shape.dims, t.shape.dims)) if not shapes.known_equal(p, q)]
        wrong = [i for i in differ if i != axis and shapes.known_equal(first.shape.dims[i], t.shape.dims[i]) is False]
        if wrong:
            where = f"dim {wrong[0]}" if len(wrong) == 1 else "dims " + ", ".join(str(i) for i in wrong)
            raise ShapeError(
                "E208",
                f"cat along dim {dim} needs equal sizes elsewhere: {first.shape} and {t.shape} differ at {where}",
                f"{first.shape} and {t.shape}",
                # another dim works only when it is the one place where the shapes differ
                f"resize one of them, or cat along dim {wrong[0]}" if differ == wrong and len(wrong) == 1 else None,
            )
        total = shapes.add(total, t.shape.dims[axis])
    dims = list(first.shape.dims)
    dims[axis] = total
    return _layout(types, TensorType(Shape(tuple(dims)), _promoted(types)))


def _promoted(types: list[TensorType]) -> str:
    dtype = types[0].dtype
    for t in types[1:]:
        dtype = result_dtype(dtype, t.dtype)
    return dtype


def stack(types: list[TensorType], dim: int) -> TensorType:
    """torch.stack: equal shapes, a new dim of size len(types) at ``dim``."""
    if not types:
        raise ShapeError("E207", "stack needs at least one tensor", "no tensors")
    first = types[0]
    for t in types[1:]:
        if t.shape.rank != first.shape.rank or any(
            shapes.known_equal(p, q) is False for p, q in zip(first.shape.dims, t.shape.dims)
        ):
            raise ShapeError(
                "E208", f"stack needs equal shapes, got {first.shape} and {t.shape}", f"{first.shape} and {t.shape}"
            )
    rank = first.shape.rank + 1
    axis = _dim(dim, rank, "stack")
    dims = list(first.shape.dims)
    dims.insert(axis, len(types))
    return _layout(types, TensorType(Shape(tuple(dims)), _promoted(types)))


def chunk(t: TensorType, chunks: int, dim: int) -> list[TensorType]:
    """torch.chunk: pieces of ceil(size / chunks), the last smaller; fewer pieces when they run out."""
    if chunks < 1:
        raise ShapeError("E207", f"chunk expects a positive number of chunks, got {chunks}", "not positive")
    axis = _dim(dim, t.shape.rank, "chunk")
    size = t.shape.dims[axis]
    if not isinstance(size, int):
        if chunks == 1:
            return [t]
        raise ShapeError(
            "E207",
            f"chunk cannot split the symbolic size {size} statically",
            f"size {size}",
            "chunk a dimension of known size",
        )
    piece = -(-size // chunks) if size else 0
    sizes = [piece] * (size // piece) + ([size % piece] if piece and size % piece else []) if piece else [0]
    return [_with(t, axis, s) for s in sizes]


def split(t: TensorType, sizes: int | tuple[int, ...], dim: int) -> list[TensorType]:
    """torch.split: pieces of ``sizes`` (the last smaller), or exactly the listed sizes."""
    axis = _dim(dim, t.shape.rank, "split")
    size = t.shape.dims[axis]
    if isinstance(sizes, tuple):
        total = sum(sizes)
        if shapes.known_equal(total, size) is False:
            raise ShapeError(
                "E208",
                f"split sizes {list(sizes)} add up to {total}, but dim {dim} has size {size}",
                f"sizes add up to {total}",
            )
        return [_with(t, axis, s) for s in sizes]
    if sizes < 1:
        raise ShapeError("E207", f"split size must be positive, got {sizes}", "not positive")
    if not isinstance(size, int):
        raise ShapeError("E207", f"split cannot divide the symbolic size {size} statically", f"size {size}")
    pieces = [sizes] * (size // sizes) + ([size % sizes] if size % sizes else [])
    return [_with(t, axis, s) for s in pieces or [0]]


def _with(t: TensorType, axis: int, size: Dim) -> TensorType:
    """A piece of ``t`` along ``axis``: a view with the parent's strides."""
    dims = list(t.shape.dims)
    dims[axis] = size
    strides = t.strides
    if strides != layout.UNKNOWN:
        strides = layout.normal(tuple(dims), layout.strides_of(t.shape.dims, t.strides))
    return TensorType(Shape(tuple(dims)), t.dtype, strides)
