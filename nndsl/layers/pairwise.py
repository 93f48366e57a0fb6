"""Layers of two tensors: CosineSimilarity, PairwiseDistance, Bilinear. Called with both:
``CosineSimilarity(dim=1)(a, b)``; a chain has one tensor, so ``x -> CosineSimilarity()`` is refused."""

from __future__ import annotations

from nndsl import shapes
from nndsl.layers.base import BOOL, FLOAT, INT, POS_INT, Layer, Param, ShapeError
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Call, Code, assign

_FLOATS = ("float32", "float64", "float16", "bfloat16")
#: ONNX's element type number of float32 (TensorProto.FLOAT; the layers do not import onnx)
_ONNX_FLOAT = 1


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
        if node.input.shape.rank == 0 or node.extra_types[cls.tensor_inputs[0]].shape.rank == 0:
            return f"{cls.dsl_name()} of 0-D tensors is not mapped to ONNX"
        return None

    @classmethod
    def _onnx_broadcast(cls, g, x: str, node, w) -> tuple[str, str, int]:
        """The two inputs expanded to their common shape (as torch expands them before it
        reduces), and its rank."""
        other = w.inputs[cls.tensor_inputs[0]]
        a, b = node.input.shape, node.extra_types[cls.tensor_inputs[0]].shape
        if a != b:  # Expand broadcasts both ways: each to the shape of both
            x, other = g.op("Expand", [x, g.op("Shape", [other])]), g.op("Expand", [other, g.op("Shape", [x])])
        return x, other, max(a.rank, b.rank)


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

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # torch: sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps)) over dim, after broadcasting
        x1, x2, rank = cls._onnx_broadcast(g, x, node, w)
        axis = node.args["dim"] % rank
        eps = g.scalar(node.args["eps"])

        def unit(t: str) -> str:
            norm = g.op("Sqrt", [g.reduce("ReduceSum", g.op("Mul", [t, t]), [axis], keepdims=True)])
            return g.op("Div", [t, g.op("Max", [norm, eps])])

        return g.reduce("ReduceSum", g.op("Mul", [unit(x1), unit(x2)]), [axis], keepdims=False)


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

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # torch: the p-norm of x1 - x2 + eps over the last dim
        x1, x2, rank = cls._onnx_broadcast(g, x, node, w)
        p, keep, axes = node.args["p"], node.args["keepdim"], [rank - 1]
        diff = g.op("Add", [g.op("Sub", [x1, x2]), g.scalar(node.args["eps"])])
        if p == 2:
            return g.reduce("ReduceL2", diff, axes, keep)
        if p == 1:
            return g.reduce("ReduceL1", diff, axes, keep)
        if p == 0:  # the count of non-zero differences
            nonzero = g.op("Cast", [g.op("Not", [g.op("Equal", [diff, g.scalar(0.0)])])], to=_ONNX_FLOAT)
            return g.reduce("ReduceSum", nonzero, axes, keep)
        powered = g.op("Pow", [g.op("Abs", [diff]), g.scalar(p)])
        return g.op("Pow", [g.reduce("ReduceSum", powered, axes, keep), g.scalar(1 / p)])


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
    def to_onnx(cls, g, x, node, w):
        # y[..., o] = sum_ij x1[..., i] A[o, i, j] x2[..., j]: x1 @ A as [in1, out * in2], then
        # [..., out, in2] times x2 summed over in2
        args = node.args
        out, in2, rank = args["out_features"], args["in2_features"], node.input.shape.rank
        weight = w("weight")
        flat = weight.transpose(1, 0, 2).reshape(args["in1_features"], out * in2)
        y = g.op("MatMul", [x, g.weight(flat, w.key("weight"))])
        y = g.op("Reshape", [y, g.const([0] * (rank - 1) + [out, in2])])
        y = g.op("Mul", [y, g.unsqueeze(w.inputs["input2"], [rank - 1])])
        y = g.reduce("ReduceSum", y, [-1], keepdims=False)
        bias = w.get("bias")
        return y if bias is None else g.op("Add", [y, g.weight(bias, w.key("bias"))])

    @classmethod
    def param_count(cls, args):
        out = args["out_features"]
        return out * args["in1_features"] * args["in2_features"] + (out if args["bias"] else 0)
