"""The matrix product: matmul (``a @ b`` in specs) under torch.matmul's rules."""

from __future__ import annotations

from nndsl import shapes
from nndsl.layers.base import Param, ShapeError
from nndsl.operators.base import TENSOR, Operator
from nndsl.operators.registry import register
from nndsl.shapes import Dim, Shape, TensorType
from nndsl.statements import Assign, BinOp, Code, assign


def _batch(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """The broadcast of two batch shapes (sizes that cannot be compared statically are taken as equal)."""
    rank = max(len(a), len(b))
    left, right = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    dims: list[Dim] = []
    for i, (p, q) in enumerate(zip(left, right)):
        if shapes.known_equal(p, q) or q == 1:
            dims.append(p)
        elif p == 1:
            dims.append(q)
        elif shapes.known_equal(p, q) is False:
            raise ShapeError(
                "E208",
                f"matmul cannot broadcast the batch sizes {p} and {q} (batch dim {i})",
                f"batch sizes {p} and {q}",
            )
        else:
            dims.append(p)
    return tuple(dims)


@register
class Matmul(Operator):
    """torch.matmul (``a @ b``): 1-D by 1-D is the dot product (0-D), 2-D by 2-D the matrix
    product, a 1-D operand is a row (left) or a column (right) whose dim is removed again, and
    higher ranks are stacks of matrices whose batch dims broadcast. Both operands have one dtype
    (torch does not promote here) and are not bool."""

    name, symbol = "matmul", "@"
    params = (Param("input", TENSOR), Param("other", TENSOR))
    examples = (
        ("matmul(a, b)", "a: [2, 3], b: [3, 4]", "[2, 4]"),
        ("a @ b", "a: [5, 2, 3], b: [3, 4]", "[5, 2, 4]"),
        ("matmul(a, b)", "a: [3], b: [3]", "[]"),
        ("matmul(a, b)", "a: [3], b: [2, 3, 4]", "[2, 4]"),
        ("matmul(a, b)", "a: [2, 1, 4, 3], b: [3, 5]", "[2, 1, 4, 5]"),
        ("matmul(a, b)", "a: [2, 1, 4, 3], b: [6, 3, 2]", "[2, 6, 4, 2]"),
        ("matmul(a, b)", "a: long[2, 3], b: long[3]", "int64[2]"),
        ("matmul(a, b)", "a: [0, 3], b: [3, 0]", "[0, 0]"),
        ("matmul(a, b)", "a: [2, 3], b: [4, 2]", "E208"),
        ("matmul(a, b)", "a: [3], b: [4]", "E208"),
        ("matmul(a, b)", "a: [5, 2, 3], b: [4, 3, 2]", "E208"),
        ("matmul(a, b)", "a: [2, 3], b: long[3, 2]", "E204"),
        ("matmul(a, b)", "a: bool[2, 3], b: bool[3, 2]", "E204"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        a, b = inputs
        if a.shape.rest or b.shape.rest:
            raise ShapeError("E208", "matmul needs operands of known rank", "unknown rank", "give the input shape")
        if a.shape.rank == 0 or b.shape.rank == 0:
            raise ShapeError(
                "E208",
                f"matmul needs operands of at least 1 dim, got {a.shape.rank}-D and {b.shape.rank}-D",
                "a 0-D operand",
                "multiply by a number with *",
            )
        if a.dtype != b.dtype:
            raise ShapeError(
                "E204",
                f"matmul needs operands of one dtype, got {a.dtype} and {b.dtype}",
                f"{a.dtype} @ {b.dtype}",
                "convert one of them first",
            )
        if a.dtype == "bool":
            raise ShapeError("E204", "torch's matmul does not take bool tensors", "bool operands")
        x, y = a.shape.dims, b.shape.dims
        inner_a, inner_b = x[-1], (y[0] if len(y) == 1 else y[-2])
        if shapes.known_equal(inner_a, inner_b) is False:
            left = "x".join(map(str, x[-2:]))
            right = "x".join(map(str, y[-2:]))
            raise ShapeError(
                "E208",
                f"matmul cannot multiply {a.shape} by {b.shape}: {inner_a} columns against {inner_b} rows",
                f"{left} and {right}",
            )
        rows = x[-2:-1]  # () for a 1-D left operand: its added dim is removed again
        cols = y[-1:] if len(y) >= 2 else ()
        batch = _batch(x[:-2], y[:-2])
        return [TensorType(Shape(batch + rows + cols), a.dtype)]

    @classmethod
    def unverified(cls, inputs: list[TensorType], args: dict) -> list[str]:
        x, y = (t.shape.dims for t in inputs)
        inner = (x[-1], y[0] if len(y) == 1 else y[-2])
        pairs = [inner, *zip(reversed(x[:-2]), reversed(y[:-2]))]
        return [f"{p} == {q}" for p, q in pairs if shapes.known_equal(p, q) is None and 1 not in (p, q)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        return [assign(outputs[0], BinOp(Code(inputs[0]), "@", Code(inputs[1])))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        return [g.op("MatMul", inputs)]
