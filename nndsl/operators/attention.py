"""scaled_dot_product_attention: torch's fused attention, softmax(q @ k^T * scale + mask) @ v."""

from __future__ import annotations

import math

from nndsl import ops, shapes
from nndsl.layers.base import BOOL, FLOAT, PROB, Param, ShapeError, optional
from nndsl.operators.base import TENSOR, Operator
from nndsl.operators.registry import register
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Call, Code, assign

_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _broadcast(what: str, shapes_: list[Shape]) -> tuple:
    """The broadcast of the shapes (torch's rule), E208 naming ``what`` where they do not."""
    out = TensorType(shapes_[0], "float32")
    for shape in shapes_[1:]:
        try:
            out, _ = ops.broadcast("add", out, TensorType(shape, "float32"))
        except ShapeError:
            listed = ", ".join(str(s) for s in shapes_)
            raise ShapeError(
                "E208", f"scaled_dot_product_attention: {what} do not broadcast: {listed}", "do not broadcast"
            ) from None
    return out.shape.dims


@register
class ScaledDotProductAttention(Operator):
    """torch.nn.functional.scaled_dot_product_attention: query [..., L, E], key [..., S, E],
    value [..., S, Ev] -> [..., L, Ev]; the batch dims broadcast; ``attn_mask`` (bool: True
    attends; float: added) broadcasts to [..., L, S]; ``is_causal`` masks the upper triangle."""

    name = "scaled_dot_product_attention"
    params = (
        Param("query", TENSOR),
        Param("key", TENSOR),
        Param("value", TENSOR),
        Param("attn_mask", TENSOR, None),
        Param("dropout_p", PROB, 0.0),
        Param("is_causal", BOOL, False),
        Param("scale", optional(FLOAT), None),
        Param("enable_gqa", BOOL, False),
    )
    examples = (
        ("scaled_dot_product_attention(q, k, v)", "q: [2, 4, 5, 8], k: [2, 4, 7, 8], v: [2, 4, 7, 6]", "[2, 4, 5, 6]"),
        ("scaled_dot_product_attention(q, k, v)", "q: [2, 4, 5, 8], k: [1, 4, 7, 8], v: [2, 1, 7, 6]", "[2, 4, 5, 6]"),
        ("scaled_dot_product_attention(q, k, v, is_causal=True)", "q: [5, 8], k: [5, 8], v: [5, 8]", "[5, 8]"),
        ("scaled_dot_product_attention(q, k, v, scale=0.5)", "q: [3, 5, 8], k: [3, 7, 8], v: [3, 7, 4]", "[3, 5, 4]"),
        (
            "scaled_dot_product_attention(q, k, v, m)",
            "q: [2, 5, 8], k: [2, 7, 8], v: [2, 7, 8], m: [5, 7]",
            "[2, 5, 8]",
        ),
        (
            "scaled_dot_product_attention(q, k, v, attn_mask=m)",
            "q: [2, 5, 8], k: [2, 7, 8], v: [2, 7, 8], m: [2, 1, 7]",
            "[2, 5, 8]",
        ),
        ("scaled_dot_product_attention(q, k, v)", "q: [8], k: [8], v: [8]", "E202"),
        ("scaled_dot_product_attention(q, k, v)", "q: [2, 5, 8], k: [2, 7, 9], v: [2, 7, 6]", "E201"),
        ("scaled_dot_product_attention(q, k, v)", "q: [2, 5, 8], k: [2, 7, 8], v: [2, 6, 6]", "E201"),
        ("scaled_dot_product_attention(q, k, v, m)", "q: [2, 5, 8], k: [2, 7, 8], v: [2, 7, 8], m: bool[5, 6]", "E208"),
        ("scaled_dot_product_attention(q, k, v, m)", "q: [2, 5, 8], k: [2, 7, 8], v: [2, 7, 8], m: long[5, 7]", "E204"),
        (
            "scaled_dot_product_attention(q, k, v, m, is_causal=True)",
            "q: [2, 5, 8], k: [2, 5, 8], v: [2, 5, 8], m: [5, 5]",
            "E207",
        ),
        ("scaled_dot_product_attention(q, k, v)", "q: long[2, 5, 8], k: long[2, 7, 8], v: long[2, 7, 8]", "E204"),
        ("scaled_dot_product_attention(q, k, v)", "q: [2, 8, 5, 8], k: [2, 2, 7, 8], v: [2, 2, 7, 6]", "E208"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        q, k, v = inputs[:3]
        mask = inputs[3] if len(inputs) > 3 else None
        for name, t in (("query", q), ("key", k), ("value", v)):
            if t.shape.rest or t.shape.rank < 2:
                raise ShapeError(
                    "E202",
                    f"scaled_dot_product_attention expects query, key and value of at least 2 dims, got {name} {t.shape}",
                    f"{name} {t.shape}",
                )
            if t.dtype != q.dtype or t.dtype not in _FLOATS:
                raise ShapeError(
                    "E204",
                    f"scaled_dot_product_attention expects query, key and value of one floating dtype, "
                    f"got query {q.dtype}, {name} {t.dtype}",
                    f"{name} {t.dtype}",
                )
        for (a, an), (b, bn) in (((q, "query"), (k, "key")), ((k, "key"), (v, "value"))):
            axis = -1 if bn == "key" else -2
            if shapes.known_equal(a.shape.dims[axis], b.shape.dims[axis]) is False:
                what = "features (last dim)" if bn == "key" else "sequence length (dim -2)"
                raise ShapeError(
                    "E201",
                    f"scaled_dot_product_attention: {an} and {bn} must agree in their {what}, "
                    f"got {an} {a.shape} and {bn} {b.shape}",
                    f"{an} {a.shape}, {bn} {b.shape}",
                )
        key_batch = [k.shape.dims[:-2], v.shape.dims[:-2]]
        if args["enable_gqa"] and q.shape.rank >= 3:
            heads = q.shape.dims[-3]
            for index, (dims, t) in enumerate(zip(key_batch, (k, v))):
                kv_heads = t.shape.dims[-3] if t.shape.rank >= 3 else 1
                if isinstance(heads, int) and isinstance(kv_heads, int) and heads % kv_heads:
                    raise ShapeError(
                        "E201",
                        f"with enable_gqa, the key/value heads ({kv_heads}) must divide the query heads ({heads})",
                        f"{kv_heads} heads",
                    )
                key_batch[index] = dims[:-1] + (heads,) if dims else dims
        batch = _broadcast("the batch dims of query, key and value", [Shape(q.shape.dims[:-2]), *map(Shape, key_batch)])
        tgt, src = q.shape.dims[-2], k.shape.dims[-2]
        if mask is not None:
            if mask.dtype != "bool" and mask.dtype not in _FLOATS:
                raise ShapeError(
                    "E204", f"attn_mask must be bool or floating point, got {mask.dtype}", f"{mask.dtype} mask"
                )
            if args["is_causal"]:
                raise ShapeError(
                    "E207",
                    "scaled_dot_product_attention takes attn_mask or is_causal=True, not both (torch raises)",
                    "attn_mask with is_causal",
                    param="is_causal",
                )
            scores = Shape((*batch, tgt, src))
            joined = _broadcast("the attention scores and attn_mask", [scores, mask.shape])
            if len(joined) != scores.rank or any(
                shapes.known_equal(a, b) is False for a, b in zip(joined, scores.dims)
            ):
                raise ShapeError(
                    "E208",
                    f"attn_mask {mask.shape} does not broadcast to the attention scores {scores}",
                    f"expected a mask broadcasting to {scores}",
                )
        return [TensorType(Shape((*batch, tgt, v.shape.dims[-1])), q.dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]):
        positional = tuple(Code(name) for name in inputs[:3])
        keywords = [("attn_mask", Code(inputs[3]))] if len(inputs) > 3 else []
        keywords += [(p.name, node.args[p.name]) for p in cls.params[4:] if node.args[p.name] != p.default]
        return [assign(outputs[0], Call("F.scaled_dot_product_attention", positional, tuple(keywords)))]

    @classmethod
    def onnx_unsupported(cls, node, types: list[TensorType], opset: int) -> tuple[str, str | None] | None:
        q, k = types[0], types[1]
        if node.args["enable_gqa"]:
            return "enable_gqa is not mapped to ONNX yet", "repeat the key/value heads first"
        if node.args["scale"] is None and not isinstance(q.shape.dims[-1], int):
            return "a symbolic feature size has no constant scale in ONNX", "give scale=..."
        if node.args["is_causal"] and not all(isinstance(t.shape.dims[-2], int) for t in (q, k)):
            return "is_causal over a symbolic length is not mapped to ONNX yet", None
        if len(types) > 3 and types[3].dtype == "bool":
            # an export holds a bool tensor as float32, which torch would add to the scores
            return (
                "a bool attn_mask has no faithful ONNX form here (an export holds bools as float32)",
                "give an additive float mask (0 where attended, -inf where not), or is_causal=True",
            )
        return None

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        import numpy as np

        q, k, v = inputs[:3]
        qt, kt = types[0], types[1]
        perm = list(range(kt.shape.rank))
        perm[-2:] = perm[-1], perm[-2]
        features = qt.shape.dims[-1]
        scale = node.args["scale"]
        if scale is None:
            scale = 1 / math.sqrt(features)
        scores = g.op("Mul", [g.op("MatMul", [q, g.transpose(k, perm)]), g.scalar(scale)])
        mask, mask_type = (inputs[3], types[3]) if len(inputs) > 3 else (None, None)
        if node.args["is_causal"]:
            tgt, src = qt.shape.dims[-2], kt.shape.dims[-2]
            mask = g.const(np.tril(np.ones((tgt, src), dtype=bool)), np.bool_)
            mask_type = TensorType(Shape((tgt, src)), "bool")
        if mask is not None and mask_type.dtype == "bool":
            scores = g.op("Where", [mask, scores, g.scalar(float("-inf"))])
        elif mask is not None:
            scores = g.op("Add", [scores, mask])
        weights = g.op("Softmax", [scores], axis=-1)
        return [g.op("MatMul", [weights, v])]
