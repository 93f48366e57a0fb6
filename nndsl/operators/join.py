"""Joining tensors: cat (along an existing dim) and stack (along a new one)."""

from __future__ import annotations

from nndsl import ops, shapes
from nndsl.layers.base import INT, Param, ShapeError
from nndsl.operators.base import Operator, dim_of, onnx_promoted
from nndsl.operators.registry import register
from nndsl.shapes import Dim, Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign


class _Join(Operator):
    """``torch.<name>((a, b, ...), dim=...)``: the tensors first, then ``dim`` by name."""

    params = (Param("dim", INT, 0),)
    variadic = True

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        dim = node.args["dim"]
        joined = Call(f"torch.{cls.name}", (tuple(Code(v) for v in inputs),), (("dim", dim),) if dim else ())
        return [assign(outputs[0], joined)]


@register
class Cat(_Join):
    """torch.cat: tensors of one rank and equal sizes except along ``dim``, whose sizes add up."""

    name = "cat"
    examples = (
        ("cat(a, b, dim=1)", "a: [2, 3], b: [2, 4]", "[2, 7]"),
        ("cat(a, b, a, dim=-1)", "a: [2, 3, 1], b: [2, 3, 2]", "[2, 3, 4]"),
        ("cat(a, b, dim=1)", "a: long[2, 1], b: [2, 2]", "[2, 3]"),
        ("cat(a, b)", "a: [2, 3], b: [2, 4]", "E208"),
        ("cat(a, b, dim=2)", "a: [2, 3], b: [2, 3]", "E207"),
        ("cat(a, b)", "a: [2, 3], b: [2]", "E208"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        if not inputs:
            raise ShapeError("E207", "cat needs at least one tensor", "no tensors")
        first, dim = inputs[0], args["dim"]
        if any(t.shape.rest for t in inputs):
            raise ShapeError(
                "E208", "cannot cat values of unknown rank", "unknown rank", "give the input shape with --input"
            )
        rank = first.shape.rank
        if rank == 0:
            raise ShapeError("E202", "cat cannot join 0-D tensors", "0-D", "use stack")
        for t in inputs[1:]:
            if t.shape.rank != rank:
                raise ShapeError(
                    "E208",
                    f"cat needs tensors of one rank, got {first.shape} and {t.shape}",
                    f"{first.shape.rank}-D and {t.shape.rank}-D",
                )
        axis = dim_of(dim, rank, "cat")
        total: Dim = 0
        for t in inputs:
            pairs = list(zip(first.shape.dims, t.shape.dims))
            differ = [i for i, (p, q) in enumerate(pairs) if not shapes.known_equal(p, q)]
            wrong = [i for i in differ if i != axis and shapes.known_equal(*pairs[i]) is False]
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
        return [ops.joined(inputs, TensorType(Shape(tuple(dims)), ops.promoted(inputs)))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        inputs = onnx_promoted(g, inputs, types, node.types[0].dtype)
        return [g.op("Concat", inputs, axis=node.args["dim"] % node.types[0].shape.rank)]


@register
class Stack(_Join):
    """torch.stack: tensors of one shape, joined along a new dim of size len(tensors) at ``dim``."""

    name = "stack"
    examples = (
        ("stack(a, b, dim=1)", "a: [2, 3], b: [2, 3]", "[2, 2, 3]"),
        ("stack(a, a, a, dim=-1)", "a: [4]", "[4, 3]"),
        ("stack(a, b)", "a: [2, 3], b: [3, 2]", "E208"),
        ("stack(a, b, dim=3)", "a: [2, 3], b: [2, 3]", "E207"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        if not inputs:
            raise ShapeError("E207", "stack needs at least one tensor", "no tensors")
        first = inputs[0]
        for t in inputs[1:]:
            if t.shape.rank != first.shape.rank or any(
                shapes.known_equal(p, q) is False for p, q in zip(first.shape.dims, t.shape.dims)
            ):
                raise ShapeError(
                    "E208", f"stack needs equal shapes, got {first.shape} and {t.shape}", f"{first.shape} and {t.shape}"
                )
        axis = dim_of(args["dim"], first.shape.rank + 1, "stack")
        dims = list(first.shape.dims)
        dims.insert(axis, len(inputs))
        return [ops.joined(inputs, TensorType(Shape(tuple(dims)), ops.promoted(inputs)))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        inputs = onnx_promoted(g, inputs, types, node.types[0].dtype)
        axis = node.args["dim"] % node.types[0].shape.rank
        return [g.op("Concat", [g.unsqueeze(i, [axis]) for i in inputs], axis=axis)]
