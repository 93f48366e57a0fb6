"""torch's rules for combining tensors, shared by the tensor operators (nndsl.operators) and
residual sums: dtype promotion, broadcasting, the layout of a new tensor. They raise ShapeError
as layer rules do."""

from __future__ import annotations

from nndsl import shapes
from nndsl.layers.base import ShapeError
from nndsl.shapes import Dim, Shape, TensorType

#: the Python operator of each element-wise operation, as messages write it
_SYMBOLS = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "floor_divide": "//",
    "remainder": "%",
    "pow": "**",
    "bitwise_and": "&",
    "bitwise_or": "|",
    "bitwise_xor": "^",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
}

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


def joined(types, out: TensorType) -> TensorType:
    """``out`` as a new tensor from ``types``: row-major from row-major inputs; the layout torch gives a
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
    if (x.rank == 0) != (y.rank == 0):  # a 0-D tensor does not widen a tensor with dims of its category
        sized, zero = (b.dtype, a.dtype) if x.rank == 0 else (a.dtype, b.dtype)
        dtype = sized if _CATEGORY[zero] <= _CATEGORY[sized] else zero
    if op == "div" and dtype not in _FLOATS:
        dtype = "float32"  # true division of integers gives floats
    return joined((a, b), TensorType(Shape(tuple(dims)), dtype)), unverified


def combined(a: TensorType, b: TensorType) -> TensorType:
    """The type of ``a + b`` for two tensors of one shape (a residual's sum)."""
    return joined((a, b), a._replace(dtype=result_dtype(a.dtype, b.dtype), strides=None))


def _mismatch(op: str, a: TensorType, b: TensorType, dim: int, p: Dim, q: Dim) -> ShapeError:
    verb = {
        "add": "add",
        "sub": "subtract",
        "mul": "multiply",
        "div": "divide",
        "floor_divide": "divide",
        "remainder": "divide",
        "pow": "raise",
        "bitwise_and": "combine",
        "bitwise_or": "combine",
        "bitwise_xor": "combine",
    }.get(op, "compare")
    return ShapeError(
        "E208",
        f"cannot {verb} {a.shape} and {b.shape}: sizes {p} and {q} differ at dim {dim}, and neither is 1",
        f"{a.shape} {_SYMBOLS[op]} {b.shape}",
        "element-wise operations need equal sizes, or a size of 1 to broadcast",
    )


def promoted(types: list[TensorType]) -> str:
    """The dtype torch gives a result computed from tensors of these dtypes."""
    dtype = types[0].dtype
    for t in types[1:]:
        dtype = result_dtype(dtype, t.dtype)
    return dtype
