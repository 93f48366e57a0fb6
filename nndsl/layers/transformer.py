"""Transformer layers taking a second sequence: TransformerDecoderLayer (target and memory)."""

from __future__ import annotations

from nndsl.layers.attention import (
    TransformerEncoderLayer,
    _check_heads,
    _masks,
    _sequence,
)
from nndsl.layers.base import BOOL, Layer, Param, ShapeError, materialize
from nndsl.layers.registry import register
from nndsl.shapes import TensorType
from nndsl.statements import Call, Code, assign


def _memory(args: dict, tgt: TensorType, memory: TensorType, ctx) -> TensorType:
    """torch's requirements on the cross-attention's key and value (the memory): the target's rank
    and dtype, ``d_model`` features, the target's batch size; its sequence length is free."""
    names = ("N", "S", "E") if args["batch_first"] else ("S", "N", "E")
    memory = materialize(memory, tgt.shape.rank, names, ctx)
    if memory.shape.rank != tgt.shape.rank:
        raise ShapeError(
            "E202",
            f"for a {tgt.shape.rank}-D target, TransformerDecoderLayer expects a {tgt.shape.rank}-D memory, "
            f"got {memory.shape.rank}-D {memory.shape}",
            f"expected {tgt.shape.rank}-D memory, got {memory.shape}",
            param="memory",
        )
    if memory.dtype != tgt.dtype:
        raise ShapeError(
            "E204",
            f"TransformerDecoderLayer expects memory of the target's dtype {tgt.dtype}, got {memory.dtype}",
            f"expected {tgt.dtype}, got {memory.dtype}",
            param="memory",
        )
    d_model, have = args["d_model"], memory.shape.dims[-1]
    ctx.require_equal(
        have,
        d_model,
        f"TransformerDecoderLayer expects memory of {d_model} features (d_model), got {have}",
        f"expected memory [..., {d_model}], got {memory.shape}",
        f"insert Linear({have}, {d_model}) on the memory" if isinstance(have, int) else None,
    )
    if tgt.shape.rank == 3:
        axis = 0 if args["batch_first"] else 1
        ctx.require_equal(
            memory.shape.dims[axis],
            tgt.shape.dims[axis],
            f"TransformerDecoderLayer's memory has batch size {memory.shape.dims[axis]}, "
            f"the target {tgt.shape.dims[axis]}",
            f"memory {memory.shape}, target {tgt.shape}",
        )
    return memory


@register
class TransformerDecoderLayer(Layer):
    """Self-attention over the target, cross-attention to the memory, then a feed-forward block,
    each with a residual and LayerNorm: ``layer(tgt, memory) -> tgt``'s shape.

    torch's forward needs the memory (the encoder's output), so the layer is called with both:
    ``TransformerDecoderLayer(512, 8)(tgt, memory, tgt_mask=causal)``; a chain gives it one tensor.
    """

    params = TransformerEncoderLayer.params
    examples = (
        ("TransformerDecoderLayer(512, 8)", "[T, N, 512]", "E216"),
        ("TransformerDecoderLayer(16, 3)", "[T, N, 16]", "E107"),
        ("TransformerDecoderLayer(16, 4, activation='tanh')", "[T, N, 16]", "E107"),
    )

    tensor_inputs = ("memory", "tgt_mask", "memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask")
    forward_params = (Param("tgt_is_causal", BOOL, False), Param("memory_is_causal", BOOL, False))

    @classmethod
    def infer(cls, name, args, x):
        return TransformerEncoderLayer.infer(name, args, x)

    @classmethod
    def validate(cls, args):
        _check_heads(args, "d_model", "nhead")

    @classmethod
    def output(cls, args, x, ctx):
        raise ShapeError(
            "E216",
            "TransformerDecoderLayer takes the target and the memory (the encoder's output), a chain gives it one tensor",
            "no memory",
            "call it with both: TransformerDecoderLayer(...)(tgt, memory)",
        )

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        memory = inputs.get("memory")
        if memory is None:
            cls.output(args, x, ctx)
        x = _sequence(cls, args, x, ctx, args["d_model"])
        memory = _memory(args, x, memory, ctx)
        heads, batch_first = args["nhead"], args["batch_first"]
        _masks(batch_first, heads, x, x, inputs, forward, ctx, ("tgt_key_padding_mask", "tgt_mask", "tgt_is_causal"))
        cross = ("memory_key_padding_mask", "memory_mask", "memory_is_causal")
        _masks(batch_first, heads, x, memory, inputs, forward, ctx, cross)
        return x

    @classmethod
    def forward_call(cls, attr, src, dst, args, selector, inputs, forward):
        # torch's order: tgt, memory; the masks and flags by name
        masks = [(n, Code(inputs[n])) for n in cls.tensor_inputs[1:] if n in inputs]
        call = Call(f"self.{attr}", (Code(src), Code(inputs["memory"])), tuple(masks + list(forward.items())))
        return [assign(dst, call)]

    @classmethod
    def param_count(cls, args):
        e, ff, bias = args["d_model"], args["dim_feedforward"], args["bias"]
        attention = 4 * e * e + (4 * e if bias else 0)  # self-attention and cross-attention alike
        feed_forward = 2 * e * ff + ((ff + e) if bias else 0)
        norms = 3 * (2 * e if bias else e)
        return 2 * attention + feed_forward + norms

    @classmethod
    def onnx_unsupported(cls, node, opset):
        return (
            "TransformerDecoderLayer's cross-attention to the memory (a second input) and its masks "
            "are not mapped to ONNX yet"
        )

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # never reached: onnx_unsupported refuses every use before an export starts
        raise AssertionError(cls.dsl_name())
