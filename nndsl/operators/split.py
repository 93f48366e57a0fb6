"""Splitting a tensor into pieces along a dim: chunk (a number of pieces) and split (their sizes)."""

from __future__ import annotations

from nndsl import layout, shapes
from nndsl.layers.base import INT, Param, ShapeError
from nndsl.operators.base import SIZES, TENSOR, Operator, dim_of
from nndsl.operators.registry import register
from nndsl.shapes import Dim, Shape, TensorType
from nndsl.statements import Assign, Call, Code


class _Split(Operator):
    """``torch.<name>(input, <size>, dim=...)``: a tuple of views of the input."""

    pieces = True

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        size = node.args[cls.params[1].name]
        dim = node.args["dim"]
        value = Call(
            f"torch.{cls.name}",
            (Code(inputs[0]), list(size) if isinstance(size, tuple) else size),
            (("dim", dim),) if dim else (),
        )
        return [Assign(tuple(outputs), value, unpack=len(outputs) == 1)]  # one piece: ``(x,) = ...``

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        axis = node.args["dim"] % node.types[0].shape.rank
        sizes = [t.shape.dims[axis] for t in node.types]
        if all(isinstance(s, int) for s in sizes):
            return g.split(inputs[0], sizes, axis)
        # equal pieces of a symbolic size (chunk of 2*N in 2): the piece computed at run time
        whole = g.op("Gather", [g.op("Shape", [inputs[0]]), g.const([axis])], axis=0)
        piece = g.op("Div", [whole, g.const([len(sizes)])])
        outs = g.op("Split", [inputs[0], g.op("Concat", [piece] * len(sizes), axis=0)], outputs=len(sizes), axis=axis)
        return [outs] if len(sizes) == 1 else outs


@register
class Chunk(_Split):
    """torch.chunk: pieces of ceil(size / chunks), the last smaller; fewer when they run out."""

    name = "chunk"
    params = (Param("input", TENSOR), Param("chunks", INT), Param("dim", INT, 0))
    examples = (
        ("chunk(x, 2, dim=1)", "x: [2, 6]", "[2, 3], [2, 3]"),
        ("chunk(x, 3)", "x: [5, 2]", "[2, 2], [2, 2], [1, 2]"),
        ("chunk(x, 4)", "x: [6]", "[2], [2], [2]"),
        ("chunk(x, 2, dim=1)", "x: [N, 2*T]", "[N, T], [N, T]"),
        ("chunk(x, 3, dim=-1)", "x: [N, 6*C + 3]", "[N, 2*C + 1], [N, 2*C + 1], [N, 2*C + 1]"),
        ("chunk(x, 3)", "x: [0, 2]", "[0, 2], [0, 2], [0, 2]"),
        ("chunk(x, 0)", "x: [6]", "E207"),
        ("chunk(x, 2, dim=2)", "x: [2, 6]", "E207"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        (t,), chunks = inputs, args["chunks"]
        if chunks < 1:
            raise ShapeError("E207", f"chunk expects a positive number of chunks, got {chunks}", "not positive")
        axis = dim_of(args["dim"], t.shape.rank, "chunk")
        size = t.shape.dims[axis]
        if not isinstance(size, int):
            if chunks == 1:
                return [t]
            piece = shapes.floordiv(size, chunks)
            if shapes.known_equal(shapes.mul(piece, chunks), size):  # 2*N in 2: two pieces of N
                return [_piece(t, axis, piece) for _ in range(chunks)]
            raise ShapeError(
                "E207",
                f"chunk cannot split the symbolic size {size} into {chunks} statically",
                f"size {size}",
                f"chunk a dimension of known size, or one that is a multiple of {chunks} (such as {chunks}*{size})",
            )
        piece = -(-size // chunks) if size else 0
        # an empty dim gives ``chunks`` empty pieces, as torch's chunk does
        sizes = (
            [piece] * (size // piece) + ([size % piece] if piece and size % piece else []) if piece else [0] * chunks
        )
        return [_piece(t, axis, s) for s in sizes]


@register
class Split(_Split):
    """torch.split: pieces of ``split_size_or_sections`` (the last smaller), or exactly the listed sizes."""

    name = "split"
    params = (Param("input", TENSOR), Param("split_size_or_sections", SIZES), Param("dim", INT, 0))
    examples = (
        ("split(x, 2, dim=1)", "x: [3, 5]", "[3, 2], [3, 2], [3, 1]"),
        ("split(x, [1, 3], dim=-1)", "x: [2, 4]", "[2, 1], [2, 3]"),
        ("split(x, [1, 2])", "x: [4, 2]", "E208"),
        ("split(x, 0)", "x: [4]", "E207"),
    )

    @classmethod
    def fixed_size(cls, args: dict) -> int | None:
        sizes = args["split_size_or_sections"]
        return sum(sizes) if isinstance(sizes, tuple) else None

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        (t,), sizes, dim = inputs, args["split_size_or_sections"], args["dim"]
        axis = dim_of(dim, t.shape.rank, "split")
        size = t.shape.dims[axis]
        if isinstance(sizes, tuple):
            total = sum(sizes)
            if shapes.known_equal(total, size) is False:
                raise ShapeError(
                    "E208",
                    f"split sizes {list(sizes)} add up to {total}, but dim {dim} has size {size}",
                    f"sizes add up to {total}",
                )
            return [_piece(t, axis, s) for s in sizes]
        if sizes < 1:
            raise ShapeError("E207", f"split size must be positive, got {sizes}", "not positive")
        if not isinstance(size, int):
            raise ShapeError("E207", f"split cannot divide the symbolic size {size} statically", f"size {size}")
        pieces = [sizes] * (size // sizes) + ([size % sizes] if size % sizes else [])
        return [_piece(t, axis, s) for s in pieces or [0]]


def _piece(t: TensorType, axis: int, size: Dim) -> TensorType:
    """A piece of ``t`` along ``axis``: a view with the parent's strides."""
    dims = list(t.shape.dims)
    dims[axis] = size
    strides = t.strides
    if strides != layout.UNKNOWN:
        strides = layout.normal(tuple(dims), layout.strides_of(t.shape.dims, t.strides))
    return TensorType(Shape(tuple(dims)), t.dtype, strides)
