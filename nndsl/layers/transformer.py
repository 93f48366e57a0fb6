"""Transformer layers beyond the encoder layer: TransformerDecoderLayer (target and memory), and the
stacks TransformerEncoder / TransformerDecoder, whose first argument is a layer value
(``TransformerEncoder(TransformerEncoderLayer(512, 8, batch_first=True), 6)``)."""

from __future__ import annotations

from typing import Any, NamedTuple

from nndsl.layers.attention import (
    _ONNX_BOOL,
    _ONNX_FLOAT,
    OnnxTensor,
    TransformerEncoderLayer,
    _check_heads,
    _masks,
    _sequence,
    attention_onnx,
    encoder_layer_onnx,
    feed_forward_onnx,
    layer_fast_path,
    layer_inputs,
    residual_blocks_onnx,
)
from nndsl.layers.base import (
    BOOL,
    POS_INT,
    ArgValueError,
    Kind,
    Layer,
    Param,
    ShapeError,
    WrongType,
    materialize,
    optional,
)
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
    def to_onnx(cls, g, x, node, w):
        given = layer_inputs(node, w, cls.tensor_inputs)
        return decoder_layer_onnx(g, OnnxTensor(x, tuple(node.input.shape.dims)), node.args, w, given)


def decoder_layer_onnx(g, x: OnnxTensor, args: dict, w, given: dict) -> str:
    """TransformerDecoderLayer(tgt, memory, ...) in eval mode, its weights under ``w``
    (``self_attn.``, ``multihead_attn.``, ``norm1..3``, ``linear1/2``); ``given`` holds the memory
    and the masks by forward name. The masks as given: torch's attention fast path (the
    self-attention only, bool masks only) reads them alike, and ``*_is_causal`` are hints that the
    masks given are causal."""
    heads, batch_first = args["nhead"], args["batch_first"]
    memory = given["memory"]

    def self_attention(h):
        query = OnnxTensor(h, x.dims)
        pad, mask = given["tgt_key_padding_mask"], given["tgt_mask"]
        return attention_onnx(g, w, "self_attn.", heads, batch_first, query, None, None, pad, mask)

    def cross_attention(h):  # query from the target, key and value from the memory
        query = OnnxTensor(h, x.dims)
        pad, mask = given["memory_key_padding_mask"], given["memory_mask"]
        return attention_onnx(g, w, "multihead_attn.", heads, batch_first, query, memory, memory, pad, mask)

    def feed_forward(h):
        return feed_forward_onnx(g, h, w, args["activation"])

    blocks = (("norm1", self_attention), ("norm2", cross_attention), ("norm3", feed_forward))
    return residual_blocks_onnx(g, x.name, w, args, blocks)


# ---------------------------------------------------------------- stacks of a layer given as a value


class SubLayer(NamedTuple):
    """A layer given as another layer's argument (the layer TransformerEncoder repeats): its class,
    its checked arguments, and how the spec wrote them (for the constructor call emitted inside)."""

    layer: type[Layer]
    args: tuple[tuple[str, Any], ...]
    given: frozenset[str]
    n_positional: int

    @property
    def arguments(self) -> dict:
        return dict(self.args)

    def constructor(self) -> Call:
        """``nn.TransformerEncoderLayer(512, 8, batch_first=True)``, as the spec wrote it."""
        positional, keywords = self.layer.emitted_args(self.arguments, self.given, self.n_positional)
        return Call(f"nn.{self.layer.torch_name()}", tuple(positional), tuple(keywords))


def layer_kind(*names: str) -> Kind:
    """A layer value of one of the classes ``names`` (a call such as ``TransformerEncoderLayer(512, 8)``
    or a named one), with every argument known: torch builds it before it sees an input."""

    def convert(value):
        bound = getattr(value, "bound", None)  # the checker's layer value (nndsl.check.values.LayerFn)
        layer = getattr(bound, "layer", None)
        if layer is None or layer.dsl_name() not in names:
            raise WrongType
        if not bound.validated:
            missing = [p.name for p in layer.params if p.infer and p.name not in bound.arg_spans]
            raise ArgValueError(
                f"must have every argument given: {layer.dsl_name()} is built before it sees an input",
                help=f"give {', '.join(missing)} in {layer.dsl_name()}(...)" if missing else None,
            )
        positional = sum(1 for arg in bound.call.args if arg.keyword is None)
        return SubLayer(layer, tuple(bound.args.items()), frozenset(bound.arg_spans), positional)

    return Kind("a " + " or ".join(names), convert)


NORM = optional(layer_kind("LayerNorm", "RMSNorm"))


class _Prefixed:
    """A stack's weights as one of its sub-modules sees them (``layers.0.`` + ``norm1.weight``)."""

    def __init__(self, weights, prefix: str):
        self.weights = weights
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.weights.key(self.prefix + name)

    def get(self, name: str):
        return self.weights.get(self.prefix + name)

    def __call__(self, name: str):
        return self.weights(self.prefix + name)


class _Stack(Layer):
    """``num_layers`` copies of the layer argument (torch deep-copies it), then ``norm`` if given."""

    layout = "contiguous"

    @classmethod
    def written_value(cls, name, value):
        if isinstance(value, SubLayer):
            return value.constructor()
        return super().written_value(name, value)

    @classmethod
    def param_count(cls, args):
        inner = args[cls.params[0].name]
        total = args["num_layers"] * inner.layer.param_count(inner.arguments)
        norm = args["norm"]
        return total + (norm.layer.param_count(norm.arguments) if norm is not None else 0)

    @classmethod
    def _normed(cls, args: dict, x: TensorType, ctx) -> TensorType:
        norm = args["norm"]
        return x if norm is None else norm.layer.output(norm.arguments, x, ctx)

    @classmethod
    def _float32(cls, x: TensorType) -> None:
        """The copies are built from the layer argument, emitted in float32 (torch's default):
        another dtype would need ``dtype=`` on the layer argument, which is not written yet."""
        if x.dtype != "float32":
            raise ShapeError(
                "E204",
                f"{cls.dsl_name()} takes a float32 input here, got {x.dtype}: its layer argument is built in float32",
                f"{x.dtype} input",
                "convert the input to float32, or repeat the layer itself (TransformerEncoderLayer(...) * n)",
            )

    @classmethod
    def _flags(cls, forward: dict) -> dict:
        """torch's ``None`` (detect a causal mask from its values) is no claim: False for the rule."""
        return {name: bool(value) for name, value in forward.items()}

    @classmethod
    def _stack_onnx(cls, g, x: str, node, w, layer, after=None) -> str:
        """``layer(g, x, weights)`` for each copy on its weights ``layers.<i>.``, ``after`` on the
        result where given, then the norm."""
        for index in range(node.args["num_layers"]):
            x = layer(g, x, _Prefixed(w, f"layers.{index}."))
        if after is not None:
            x = after(x)
        norm = node.args["norm"]
        if norm is not None:
            x = norm.layer.to_onnx(g, x, node._replace(layer=norm.layer, args=norm.arguments), _Prefixed(w, "norm."))
        return x


@register
class TransformerEncoder(_Stack):
    """``num_layers`` copies of ``encoder_layer`` (a TransformerEncoderLayer value), then ``norm``:
    the input's shape, ``x -> TransformerEncoder(TransformerEncoderLayer(512, 8), 6)``.

    Called with masks as torch's forward takes them: ``enc(x, mask=m, src_key_padding_mask=pad)``.
    torch's eval fast path (batch_first, ``enable_nested_tensor``, a padding mask) returns zeros at
    padded positions; the emitted module is torch's own, so its values are torch's, and the ONNX
    export follows the same path where torch takes it (``_nested_path``).
    """

    params = (
        Param("encoder_layer", layer_kind("TransformerEncoderLayer")),
        Param("num_layers", POS_INT),  # torch's forward reads layers[0]
        Param("norm", NORM, None),
        Param("enable_nested_tensor", BOOL, True),
        Param("mask_check", BOOL, True),
    )
    examples = (
        ("TransformerEncoder(TransformerEncoderLayer(16, 4, 32), 2)", "[S, N, 16]", "[S, N, 16]"),
        (
            "TransformerEncoder(TransformerEncoderLayer(16, 4, 32, batch_first=True), 3, norm=LayerNorm(16))",
            "[N, S, 16]",
            "[N, S, 16]",
        ),
        ("TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 1)", "[S, 8]", "[S, 8]"),
        ("TransformerEncoder(TransformerEncoderLayer(16, 4), 2)", "[S, N, 12]", "E201"),
        ("TransformerEncoder(TransformerEncoderLayer(16, 4), 0)", "[S, N, 16]", "E107"),
        ("TransformerEncoder(Linear(16, 16), 2)", "[S, N, 16]", "E106"),
        ("TransformerEncoder(TransformerEncoderLayer(nhead=4), 2)", "[S, N, 16]", "E107"),
        ("TransformerEncoder(TransformerEncoderLayer(16, 4), 2, norm=LayerNorm(8))", "[S, N, 16]", "E201"),
    )

    tensor_inputs = ("mask", "src_key_padding_mask")
    forward_params = (Param("is_causal", optional(BOOL), None),)

    @classmethod
    def output(cls, args, x, ctx):
        return cls.output_with(args, x, {}, {"is_causal": None}, ctx)

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        cls._float32(x)
        inner = args["encoder_layer"]
        layer_args = inner.arguments
        x = _sequence(inner.layer, layer_args, x, ctx, layer_args["d_model"])
        names = ("src_key_padding_mask", "mask", "is_causal")
        _masks(layer_args["batch_first"], layer_args["nhead"], x, x, inputs, cls._flags(forward), ctx, names)
        return cls._normed(args, x, ctx)

    @classmethod
    def forward_call(cls, attr, src, dst, args, selector, inputs, forward):
        keywords = [(n, Code(inputs[n])) for n in cls.tensor_inputs if n in inputs] + list(forward.items())
        return [assign(dst, Call(f"self.{attr}", (Code(src),), tuple(keywords)))]

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # each copy is the encoder layer's own mapping; torch's nested-tensor path is followed
        # where it can take it (_nested_path)
        args = node.args["encoder_layer"].arguments
        dims = tuple(node.input.shape.dims)
        given = layer_inputs(node, w, cls.tensor_inputs)
        pad, mask = given["src_key_padding_mask"], given["mask"]
        padded = None
        if pad is not None and mask is None and cls._nested_possible(node.args, len(dims)):
            pad, padded = _nested_path(g, pad, node.args["mask_check"])

        def layer(g, h, weights):
            return encoder_layer_onnx(g, OnnxTensor(h, dims), args, weights, pad, mask)

        def zero_padded(h):  # the positions the nested tensor left out are zeros, before the norm
            return g.op("Where", [padded, g.scalar(0.0), h])

        return cls._stack_onnx(g, x, node, w, layer, None if padded is None else zero_padded)

    @classmethod
    def _nested_possible(cls, args: dict, rank: int) -> bool:
        """torch's conditions (besides the masks' values) for running the layers on a nested tensor
        in eval mode: enable_nested_tensor and a layer whose own fast path applies, not norm_first."""
        layer_args = args["encoder_layer"].arguments
        return args["enable_nested_tensor"] and not layer_args["norm_first"] and layer_fast_path(layer_args, rank)


def _nested_path(g, pad: OnnxTensor, mask_check: bool) -> tuple[OnnxTensor, str]:
    """torch's TransformerEncoder given only a [N, S] padding mask, on its fast path: the keys kept
    are the mask's zeros (False); torch packs the first ``count`` positions of each row into a
    nested tensor (with mask_check, only where every row keeps a prefix, else the layers see the
    mask), runs the layers on it, and pads the result with zeros. Returns the padding mask the
    layers read (a "bool" 0/1 tensor) and the [N, S, 1] condition under which an output is zero."""
    keep = g.op("Equal", [pad.name, g.scalar(0.0)])  # a bool mask is 0 and 1 here: kept where 0
    count = g.reduce("ReduceSum", g.op("Cast", [keep], to=_ONNX_INT64), [1], True)  # [N, 1]
    length = g.op("Gather", [g.op("Shape", [pad.name]), g.const(1)])
    positions = g.op("Range", [g.const(0), length, g.const(1)])
    prefix = g.op("Less", [positions, count])  # [N, S]: the positions the nested tensor holds
    if mask_check:  # torch checks that every row keeps a prefix (left-aligned)
        same = g.op("Cast", [g.op("Equal", [keep, prefix])], to=_ONNX_INT64)
        aligned = g.op("Cast", [g.reduce("ReduceMin", same, (0, 1), False)], to=_ONNX_BOOL)
        # (onnxruntime has no Where of bools)
        kept = g.op("Or", [g.op("And", [aligned, prefix]), g.op("And", [g.op("Not", [aligned]), keep])])
        zeroed = g.op("And", [aligned, g.op("Not", [prefix])])
    else:
        kept, zeroed = prefix, g.op("Not", [prefix])
    masked = g.op("Cast", [g.op("Not", [kept])], to=_ONNX_FLOAT)
    return OnnxTensor(masked, pad.dims, "bool"), g.unsqueeze(zeroed, [2])


#: ONNX's element type number of int64 (TensorProto.INT64)
_ONNX_INT64 = 7


@register
class TransformerDecoder(_Stack):
    """``num_layers`` copies of ``decoder_layer`` (a TransformerDecoderLayer value), then ``norm``:
    called with the target and the memory, ``TransformerDecoder(layer, 6)(tgt, memory, tgt_mask=m)``."""

    params = (
        Param("decoder_layer", layer_kind("TransformerDecoderLayer")),
        Param("num_layers", POS_INT),  # torch's forward reads layers[0]
        Param("norm", NORM, None),
    )
    examples = (
        ("TransformerDecoder(TransformerDecoderLayer(16, 4, 32), 2)", "[T, N, 16]", "E216"),
        ("TransformerDecoder(TransformerEncoderLayer(16, 4, 32), 2)", "[T, N, 16]", "E106"),
        ("TransformerDecoder(TransformerDecoderLayer(16, 4, 32), 0)", "[T, N, 16]", "E107"),
    )

    tensor_inputs = TransformerDecoderLayer.tensor_inputs
    forward_params = (Param("tgt_is_causal", optional(BOOL), None), Param("memory_is_causal", BOOL, False))

    @classmethod
    def output(cls, args, x, ctx):
        raise ShapeError(
            "E216",
            "TransformerDecoder takes the target and the memory (the encoder's output), a chain gives it one tensor",
            "no memory",
            "call it with both: TransformerDecoder(...)(tgt, memory)",
        )

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        if inputs.get("memory") is None:
            cls.output(args, x, ctx)
        cls._float32(x)
        inner = args["decoder_layer"]
        x = TransformerDecoderLayer.output_with(inner.arguments, x, inputs, cls._flags(forward), ctx)
        return cls._normed(args, x, ctx)

    forward_call = TransformerDecoderLayer.forward_call

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # the memory and the masks go to every copy (torch's TransformerDecoder has no fast path)
        args = node.args["decoder_layer"].arguments
        dims = tuple(node.input.shape.dims)
        given = layer_inputs(node, w, cls.tensor_inputs)

        def layer(g, h, weights):
            return decoder_layer_onnx(g, OnnxTensor(h, dims), args, weights, given)

        return cls._stack_onnx(g, x, node, w, layer)
