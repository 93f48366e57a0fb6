"""Layers of two tensors: CosineSimilarity, PairwiseDistance, Bilinear. Called with both:
``CosineSimilarity(dim=1)(a, b)``; a chain has one tensor, so ``x -> CosineSimilarity()`` is refused."""

from __future__ import annotations

from nndsl import shapes
from nndsl.layers.base import BOOL, FLOAT, INT, POS_INT, Layer, Param, ShapeError
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Call, Code, assign

_FLOATS = ("float32", "float64", "float16", "bfloat16")


class _TwoInputs(Layer):
    """A layer whose forward takes two tensors; the second is ``tensor_inputs[0]``."""

    layout = "contiguous"

    @classmethod
    def output(cls, args, x, ctx):
        raise ShapeError(
            "E216",
            f"{cls.dsl_name()} takes two tensors, a chain gives it one",
            "one input",
            f"call it with both: {cls.dsl_name()}(...)(a, b)",
        )

    @classmethod
    def _second(cls, x: TensorType, inputs: dict) -> TensorType:
        other = inputs.get(cls.tensor_inputs[0])
        if other is None:
            cls.output({}, x, None)
        for t in (x, other):
            if t.dtype not in _FLOATS:
                raise ShapeError(
                    "E204", f"{cls.dsl_name()} expects floating-point tensors, got {t.dtype}", f"{t.dtype} input"
                )
        return other

    @classmethod
    def _broadcast(cls, x: TensorType, other: TensorType) -> Shape:
        if x.shape.rest or other.shape.rest:
            raise ShapeError("E202", f"{cls.dsl_name()} needs inputs of known rank", "unknown rank")
        rank = max(x.shape.rank, other.shape.rank)
        left = (1,) * (rank - x.shape.rank) + x.shape.dims
        right = (1,) * (rank - other.shape.rank) + other.shape.dims
        dims = []
        for a, b in zip(left, right):  # torch's broadcasting: equal sizes, or one of them 1
            if a == 1 or b == 1 or shapes.known_equal(a, b) is not False:
                dims.append(b if a == 1 else a)
                continue
            raise ShapeError(
                "E208",
                f"{cls.dsl_name()}'s inputs do not broadcast: {x.shape} and {other.shape}",
                f"{a} against {b}",
            )
        return Shape(tuple(dims))

    @classmethod
    def forward_call(cls, attr, src, dst, args, selector, inputs, forward):
        return [assign(dst, Call(f"self.{attr}", (Code(src), Code(inputs[cls.tensor_inputs[0]]))))]

    @classmethod
    def onnx_unsupported(cls, node, opset):
        return f"{cls.dsl_name()}'s second input is not mapped to ONNX yet"

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # never reached: onnx_unsupported refuses every use before an export starts
        raise AssertionError(cls.dsl_name())


@register
class CosineSimilarity(_TwoInputs):
    """Cosine similarity of two tensors along ``dim`` (after broadcasting them): that dim goes."""

    params = (Param("dim", INT, 1), Param("eps", FLOAT, 1e-8))
    tensor_inputs = ("x2",)
    examples = (("CosineSimilarity(dim=1)", "[4, 8]", "E216"),)

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        other = cls._second(x, inputs)
        shape = cls._broadcast(x, other)
        dim = args["dim"]
        if not -max(shape.rank, 1) <= dim < max(shape.rank, 1):
            raise ShapeError(
                "E207",
                f"CosineSimilarity's dim {dim} is out of range for {shape.rank}-D inputs",
                f"dim {dim} out of range",
                param="dim",
            )
        dims = list(shape.dims)
        if dims:
            del dims[dim]
        return TensorType(Shape(tuple(dims)), x.dtype)


@register
class PairwiseDistance(_TwoInputs):
    """The p-norm distance of two tensors over their last dim (after broadcasting them)."""

    params = (Param("p", FLOAT, 2.0), Param("eps", FLOAT, 1e-6), Param("keepdim", BOOL, False))
    tensor_inputs = ("x2",)
    examples = (("PairwiseDistance()", "[4, 8]", "E216"),)

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        shape = cls._broadcast(x, cls._second(x, inputs))
        if shape.rank == 0:
            return TensorType(Shape(()), x.dtype)
        if args["keepdim"]:
            return TensorType(Shape((*shape.dims[:-1], 1)), x.dtype)
        return TensorType(Shape(shape.dims[:-1]), x.dtype)


@register
class Bilinear(_TwoInputs):
    """``y = x1^T A x2 + b``: input1 [..., in1_features], input2 [..., in2_features] with the same
    leading dims (no broadcasting) -> [..., out_features]."""

    params = (
        Param("in1_features", POS_INT),
        Param("in2_features", POS_INT),
        Param("out_features", POS_INT),
        Param("bias", BOOL, True),
    )
    tensor_inputs = ("input2",)
    examples = (("Bilinear(5, 6, 7)", "[4, 5]", "E216"),)

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        other = cls._second(x, inputs)
        if x.shape.rest or other.shape.rest or x.shape.rank != other.shape.rank or x.shape.rank == 0:
            raise ShapeError(
                "E202",
                f"Bilinear expects two inputs of one rank (at least 1-D), got {x.shape} and {other.shape}",
                f"{x.shape} and {other.shape}",
            )
        for index, (a, b) in enumerate(zip(x.shape.dims[:-1], other.shape.dims[:-1])):
            if shapes.known_equal(a, b) is False:
                raise ShapeError(
                    "E201",
                    f"Bilinear's inputs differ in batch dim {index}: {a} and {b} (torch does not broadcast them)",
                    f"{x.shape} and {other.shape}",
                )
            ctx.require_equal(b, a, f"Bilinear's inputs differ in batch dim {index}", f"{a} and {b}")
        for name, t, size in (("in1_features", x, args["in1_features"]), ("in2_features", other, args["in2_features"])):
            have = t.shape.dims[-1]
            if shapes.known_equal(have, size) is False:
                raise ShapeError(
                    "E201", f"Bilinear expects {name}={size}, got an input {t.shape}", f"expected [..., {size}]"
                )
            ctx.require_equal(have, size, f"Bilinear expects {name}={size}, got {have}", f"expected [..., {size}]")
        return TensorType(Shape((*x.shape.dims[:-1], args["out_features"])), x.dtype)

    @classmethod
    def param_count(cls, args):
        out = args["out_features"]
        return out * args["in1_features"] * args["in2_features"] + (out if args["bias"] else 0)
