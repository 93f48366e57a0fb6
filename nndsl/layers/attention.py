"""Attention layers: MultiheadAttention (as self-attention) and TransformerEncoderLayer."""

from __future__ import annotations

import math
from typing import NamedTuple

from nndsl import shapes
from nndsl.layers.base import (
    BOOL,
    FLOAT,
    POS_INT,
    PROB,
    ArgValueError,
    Layer,
    Param,
    ShapeError,
    check_rank,
    choice,
    materialize,
    optional,
)
from nndsl.layers.norm import layer_norm_onnx
from nndsl.layers.registry import register
from nndsl.shapes import Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign


def _float_like(name: str, query, t) -> None:
    """torch's MHA takes key and value of the query's floating dtype."""
    if t.dtype != query.dtype:
        raise ShapeError(
            "E204",
            f"MultiheadAttention expects {name} of the query's dtype {query.dtype}, got {t.dtype}",
            f"expected {query.dtype}, got {t.dtype}",
        )


def _mask(name: str, mask, want: tuple, ctx) -> None:
    """A mask of the shape torch needs, bool or floating point (torch refuses integer masks)."""
    if mask.dtype != "bool" and mask.dtype not in ("float32", "float64", "float16", "bfloat16"):
        raise ShapeError(
            "E204",
            f"{name} must be bool or floating point, got {mask.dtype}: torch refuses other masks",
            f"{mask.dtype} {name}",
            param=name,
        )
    expected = "[" + ", ".join(str(d) for d in want) + "]"
    if mask.shape.rest or mask.shape.rank != len(want):
        raise ShapeError(
            "E202",
            f"{name} must be {len(want)}-D {expected} here, got {mask.shape}",
            f"expected {name} {expected}, got {mask.shape}",
            param=name,
        )
    for have, should in zip(mask.shape.dims, want):
        if shapes.known_equal(have, should) is False:
            raise ShapeError(
                "E201",
                f"{name} must have shape {expected}, got {mask.shape}",
                f"expected {name} {expected}, got {mask.shape}",
                param=name,
            )
        ctx.require_equal(
            have, should, f"{name} must have shape {expected}, got {mask.shape}", f"expected {name} {expected}"
        )


def _masks(batch_first: bool, heads: int, query, key, inputs: dict, forward: dict, ctx, names=None) -> None:
    """torch's checks of an attention's masks (names: key padding mask, attention mask, causal
    flag, as the layer's forward calls them): a [N, S] ([S] unbatched) padding mask, an [L, S] or
    [N * heads, L, S] ([heads, L, S]) attention mask, bool or float; is_causal needs the mask."""
    pad_name, mask_name, causal_name = names or ("key_padding_mask", "attn_mask", "is_causal")
    unbatched = query.shape.rank == 2
    batch_axis = 0 if batch_first else 1
    seq_axis = 0 if unbatched else 1 - batch_axis
    tgt, src = query.shape.dims[seq_axis], key.shape.dims[seq_axis]
    batch = None if unbatched else query.shape.dims[batch_axis]
    pad = inputs.get(pad_name)
    if pad is not None:
        _mask(pad_name, pad, (src,) if unbatched else (batch, src), ctx)
    mask = inputs.get(mask_name)
    if mask is not None:
        if mask.shape.rank == 3 and not mask.shape.rest:
            want = (heads, tgt, src) if unbatched else (shapes.mul(batch, heads), tgt, src)
        else:
            want = (tgt, src)
        _mask(mask_name, mask, want, ctx)
    if forward.get(causal_name) and mask is None:
        raise ShapeError(
            "E207",
            f"{causal_name}=True needs {mask_name}: torch's is_causal is a hint about the mask given, "
            "not a mask of its own",
            f"{causal_name} without {mask_name}",
            f"give {mask_name}=..., the causal [L, L] mask, or use scaled_dot_product_attention(..., is_causal=True)",
            param=causal_name,
        )


def _check_heads(args: dict, dim_param: str, heads_param: str) -> None:
    """torch's ctor check: the heads split the embedding evenly."""
    dim, heads = args[dim_param], args[heads_param]
    if dim % heads:
        raise ArgValueError(
            f"{dim_param} ({dim}) must be divisible by {heads_param} ({heads})",
            heads_param,
            f"use a {heads_param} that divides {dim}",
        )


def _sequence(cls: type[Layer], args: dict, x, ctx, embed_dim: int):
    """The input, a [L, E] or [L, N, E] / [N, L, E] sequence of ``embed_dim`` features, unchanged."""
    x = materialize(x, 3, ("N", "L", "E") if args["batch_first"] else ("L", "N", "E"), ctx)
    name = cls.dsl_name()
    check_rank(name, x, (2, 3), "a 2-D (unbatched) or 3-D (batched)")
    have = x.shape.dims[-1]
    ctx.require_equal(
        have,
        embed_dim,
        f"{name} expects embedding dimension {embed_dim}, got {have}",
        f"expected last dim {embed_dim}, got {x.shape}",
        f"insert Linear({have}, {embed_dim}) before this layer" if isinstance(have, int) else None,
    )
    return x


# ---------------------------------------------------------------- ONNX: self-attention from basic ops
#
# Built from MatMul/Softmax/Reshape/Transpose rather than the Attention op (opset 23 only), so the
# same graph serves opsets 17..23. Heads are split as [..., E] -> [..., H, hd] and moved next to the
# batch; the sequence and batch sizes stay symbolic (taken from the input's Shape where needed).

#: per input layout (rank 2 ``LE``, ``LNE``, ``NLE``): the permutations of the [..., H, hd] heads
#: view to q/v [(N,) H, L, hd] and k [(N,) H, hd, L], and of the attention [(N,) H, L, hd] back
_HEAD_PERMS = {
    "LE": ((1, 0, 2), (1, 2, 0), (1, 0, 2)),
    "LNE": ((1, 2, 0, 3), (1, 2, 3, 0), (2, 0, 1, 3)),
    "NLE": ((0, 2, 1, 3), (0, 2, 3, 1), (0, 2, 1, 3)),
}


def _layout(node, batch_first: bool) -> str:
    if node.input.shape.rank == 2:
        return "LE"
    return "NLE" if batch_first else "LNE"


def _per_batch(g, x, dims, layout: str, value, name: str | None):
    """``value`` (a [1, H, a, b] array) repeated over the batch: [N, H, a, b] ([H, a, b] unbatched)."""
    if layout == "LE":
        value = value[0]
        return g.weight(value, name) if name else g.const(value, value.dtype.type)
    const = g.weight(value, name) if name else g.const(value, value.dtype.type)
    batch = dims[1] if layout == "LNE" else dims[0]
    return g.op("Expand", [const, g.shape_target(x, dims, (batch, 1, 1, 1))])


class OnnxTensor(NamedTuple):
    """A value of the ONNX graph under construction with its checked dims and dtype (a "bool"
    mask is held as float32 0 and 1 there)."""

    name: str
    dims: tuple
    dtype: str = "float32"


#: ONNX's element type number of bool (TensorProto.BOOL; the layers do not import onnx)
_ONNX_BOOL = 9


def _additive(g, mask: OnnxTensor) -> str:
    """torch's ``_canonical_mask``: a bool mask (True: not attended) as 0 and -inf, a float one as is."""
    if mask.dtype != "bool":
        return mask.name
    flags = g.op("Cast", [mask.name], to=_ONNX_BOOL)
    return g.op("Where", [flags, g.scalar(float("-inf")), g.scalar(0.0)])


def _projections(g, w, prefix: str, embed: int, query: OnnxTensor, key: OnnxTensor, value: OnnxTensor):
    """q, k, v projected apart: rows of the packed ``in_proj_weight``, or ``q/k/v_proj_weight``
    where key or value have other features (kdim/vdim); the packed ``in_proj_bias`` either way."""
    packed = w.get(prefix + "in_proj_weight")
    bias = w.get(prefix + "in_proj_bias")
    out = []
    for i, (t, name) in enumerate(((query, "q"), (key, "k"), (value, "v"))):
        rows = slice(i * embed, (i + 1) * embed)
        if packed is None:
            weight_name = f"{prefix}{name}_proj_weight"
            weight = w(weight_name)
        else:
            weight_name, weight = prefix + "in_proj_weight", packed[rows]
        b = None if bias is None else bias[rows]
        out.append(g.project(t.name, weight, w.key(weight_name), b, w.key(prefix + "in_proj_bias")))
    return out


def attention_onnx(
    g,
    w,
    prefix: str,
    heads: int,
    batch_first: bool,
    query: OnnxTensor,
    key: OnnxTensor | None = None,
    value: OnnxTensor | None = None,
    key_padding_mask: OnnxTensor | None = None,
    attn_mask: OnnxTensor | None = None,
    *,
    bias_kv: bool = False,
    zero_attn: bool = False,
    weights: bool | None = None,
):
    """``MultiheadAttention(query, key, value, key_padding_mask=..., attn_mask=...)[0]`` in eval
    mode, weights ``{prefix}in_proj_weight`` (or ``q/k/v_proj_weight``), ``{prefix}out_proj.weight``
    etc.; without key and value, self-attention. Masks as torch takes them: bool (True: not
    attended) or float (added to the scores); ``attn_mask`` [L, S] or [N * heads, L, S]
    ([heads, L, S] unbatched), ``key_padding_mask`` [N, S] ([S]). An ``is_causal`` hint needs no
    mapping: the mask it describes is given. A row with every key masked gives NaN, as torch's
    fast path does (its slow path gives the output projection's bias). With ``weights`` True or
    False, returns (output, attention weights) as torch's average_attn_weights=True or False
    gives them: [(N,) L, S] averaged over the heads, or [(N,) heads, L, S]."""
    import numpy as np

    dims = tuple(query.dims)
    layout = "LE" if len(dims) == 2 else "NLE" if batch_first else "LNE"
    embed = dims[-1]
    head_dim = embed // heads
    q_perm, k_perm, out_perm = _HEAD_PERMS[layout]

    if key is None or value is None:  # self-attention: one MatMul of the packed projection, split
        packed = _linear_onnx(g, query.name, w, prefix + "in_proj_weight", prefix + "in_proj_bias")
        q, k, v = g.split(packed, (embed, embed, embed), axis=-1)
        key = value = query
    else:
        q, k, v = _projections(g, w, prefix, embed, query, key, value)

    def split_heads(t: str, source: OnnxTensor, perm) -> str:
        projected = tuple(source.dims[:-1]) + (embed,)
        return g.transpose(g.reshape(t, projected, projected[:-1] + (heads, head_dim)), perm)

    split_dims = dims[:-1] + (heads, head_dim)
    q = split_heads(q, query, q_perm)
    k = split_heads(k, key, k_perm)  # [.., H, hd, S]: ready for q @ k^T
    v = split_heads(v, value, q_perm)

    # torch appends bias_k / bias_v, then a zero key and value, at the end of the sequence
    extra_k, extra_v = [], []
    x = query.name
    if bias_kv:
        bias_k = w(prefix + "bias_k").reshape(heads, head_dim)
        bias_v = w(prefix + "bias_v").reshape(heads, head_dim)
        extra_k.append(_per_batch(g, x, dims, layout, bias_k[None, :, :, None], w.key(prefix + "bias_k")))
        extra_v.append(_per_batch(g, x, dims, layout, bias_v[None, :, None, :], w.key(prefix + "bias_v")))
    if zero_attn:
        extra_k.append(_per_batch(g, x, dims, layout, np.zeros((1, heads, head_dim, 1), np.float32), None))
        extra_v.append(_per_batch(g, x, dims, layout, np.zeros((1, heads, 1, head_dim), np.float32), None))
    if extra_k:
        k = g.op("Concat", [k, *extra_k], axis=-1)
        v = g.op("Concat", [v, *extra_v], axis=-2)

    q = g.op("Mul", [q, g.scalar(1 / math.sqrt(head_dim))])
    scores = g.op("MatMul", [q, k])  # [(N,) H, L, S]
    for mask in (attn_mask, key_padding_mask):
        if mask is None:
            continue
        added, rank = _additive(g, mask), len(mask.dims)
        if mask is key_padding_mask and layout != "LE":  # [N, S] -> [N, 1, 1, S]
            added, rank = g.unsqueeze(added, [1, 2]), 4
        elif rank == 3 and layout != "LE":  # [N * H, L, S] -> [N, H, L, S]
            batch = dims[0] if layout == "NLE" else dims[1]
            target = (batch, heads, mask.dims[1], mask.dims[2])
            added, rank = g.op("Reshape", [added, g.shape_target(added, tuple(mask.dims), target)]), 4
        if extra_k:  # torch pads the masks with zeros: the appended keys are attended
            added = g.op("Pad", [added, g.const([0] * (2 * rank - 1) + [len(extra_k)])])
        scores = g.op("Add", [scores, added])
    probs = g.op("Softmax", [scores], axis=-1)
    attended = g.transpose(g.op("MatMul", [probs, v]), out_perm)  # back to the input's layout, split
    merged = g.reshape(attended, split_dims, dims)

    out = _linear_onnx(g, merged, w, prefix + "out_proj.weight", prefix + "out_proj.bias")
    if weights is None:
        return out
    return out, g.reduce("ReduceMean", probs, [-3], False) if weights else probs


def layer_inputs(node, w, names: tuple[str, ...]) -> dict[str, OnnxTensor | None]:
    """A layer call's extra inputs by forward name as OnnxTensor (None where not given)."""
    out: dict[str, OnnxTensor | None] = {}
    for name in names:
        value = w.inputs.get(name)
        tensor = node.extra_types.get(name)
        out[name] = None if value is None else OnnxTensor(value, tuple(tensor.shape.dims), tensor.dtype)
    return out


def _linear_onnx(g, x, w, weight: str, bias: str):
    """A projection of the layer's, by the state_dict names of its weight and (optional) bias."""
    return g.project(x, w(weight), w.key(weight), w.get(bias), w.key(bias))


@register
class MultiheadAttention(Layer):
    """Self-attention over a sequence (query = key = value = the input): ``[L, N, E] -> [L, N, E]``.

    torch's forward takes query, key and value; a chain has one tensor, so nndsl passes it as all
    three and keeps the attention output (``attn(x, x, x, need_weights=False)[0]``). Key and value
    then have ``embed_dim`` features, so ``kdim``/``vdim`` other than ``embed_dim`` are refused
    (torch would fail on the key/value projection's shape). ``.weights`` takes the attention
    weights instead, and ``out, weights = MultiheadAttention(...)(q, k, v)`` both from one run.
    """

    params = (
        Param("embed_dim", POS_INT, infer=True),
        Param("num_heads", POS_INT),
        # torch checks the probability only in training, where the attention dropout runs
        Param("dropout", PROB, 0.0),
        Param("bias", BOOL, True),
        Param("add_bias_kv", BOOL, False),
        Param("add_zero_attn", BOOL, False),
        Param("kdim", optional(POS_INT), None),
        Param("vdim", optional(POS_INT), None),
        Param("batch_first", BOOL, False),
    )
    examples = (
        ("MultiheadAttention(16, 4)", "[L, N, 16]", "[L, N, 16]"),
        ("MultiheadAttention(16, 4, batch_first=True)", "[N, L, 16]", "[N, L, 16]"),
        ("MultiheadAttention(16, 4, add_bias_kv=True)", "[5, 16]", "[5, 16]"),
        ("MultiheadAttention(num_heads=2)", "[N, L, 8]", "[N, L, 8]"),
        ("MultiheadAttention(16, 3)", "[L, N, 16]", "E107"),
        ("MultiheadAttention(16, 4, kdim=8)", "[L, N, 16]", "E107"),
        ("MultiheadAttention(16, 4)", "[L, N, 12]", "E201"),
        ("MultiheadAttention(16, 4)", "[N, 1, L, 16]", "E202"),
    )
    onnx_examples = (
        ("MultiheadAttention(12, 3, batch_first=True)", "[N, L, 12]"),
        ("MultiheadAttention(8, 2)", "[L, 8]"),
        ("MultiheadAttention(6, 1)", "[L, N, 6]"),
        ("MultiheadAttention(4, 4, batch_first=True)", "[N, L, 4]"),
        ("MultiheadAttention(8, 2, bias=False)", "[L, N, 8]"),
        ("MultiheadAttention(8, 2, bias=False, batch_first=True)", "[N, L, 8]"),
        ("MultiheadAttention(8, 2, add_bias_kv=True)", "[L, N, 8]"),
        ("MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True)", "[N, L, 8]"),
        ("MultiheadAttention(8, 2, add_zero_attn=True)", "[L, N, 8]"),
        ("MultiheadAttention(8, 2, add_zero_attn=True, batch_first=True)", "[N, L, 8]"),
        ("MultiheadAttention(8, 2, add_zero_attn=True)", "[5, 8]"),
        ("MultiheadAttention(8, 4, bias=False, add_bias_kv=True, add_zero_attn=True)", "[L, N, 8]"),
        ("MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True)", "[L, 8]"),
        ("MultiheadAttention(8, 2, dropout=0.5, kdim=8, vdim=8)", "[L, N, 8]"),
        ("MultiheadAttention(8, 2, batch_first=True)", "[2, 3, 8]"),
    )

    @classmethod
    def infer(cls, name, args, x):
        return x.shape.dims[-1] if x.shape.rank in (2, 3) and not x.shape.rest else None

    selectors = {
        "output": "the attention output, the query's shape (default)",
        "weights": "the attention weights: [N, L, S] averaged over the heads, [N, num_heads, L, S] "
        "with average_attn_weights=False ([L, S] / [num_heads, L, S] unbatched)",
    }
    parts = ("output", "weights")
    tensor_inputs = ("key", "value", "key_padding_mask", "attn_mask")
    forward_params = (
        Param("need_weights", BOOL, True),
        Param("average_attn_weights", BOOL, True),
        Param("is_causal", BOOL, False),
    )

    @classmethod
    def validate(cls, args):
        _check_heads(args, "embed_dim", "num_heads")

    @classmethod
    def output(cls, args, x, ctx):
        return cls.output_with(args, x, {}, {"is_causal": False}, ctx)

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        x = _sequence(cls, args, x, ctx, args["embed_dim"])
        key, value = inputs.get("key"), inputs.get("value")
        if key is None or value is None:
            for name in ("kdim", "vdim"):
                if args[name] not in (None, args["embed_dim"]):
                    raise ShapeError(
                        "E107",
                        f"{name} ({args[name]}) must equal embed_dim ({args['embed_dim']}): "
                        "the input is query, key and value at once",
                        "self-attention",
                        f"give key and value: MultiheadAttention(...)(query, key, value), or remove {name}",
                        param=name,
                    )
            if (key is None) != (value is None):
                raise ShapeError("E216", "MultiheadAttention takes key and value together", "one of key, value")
            key = value = x
        unbatched = x.shape.rank == 2
        for name, t, dim in (("key", key, args["kdim"]), ("value", value, args["vdim"])):
            t = materialize(t, x.shape.rank, ("N", "S", "E") if args["batch_first"] else ("S", "N", "E"), ctx)
            if t.shape.rank != x.shape.rank:
                raise ShapeError(
                    "E202",
                    f"for a {x.shape.rank}-D query, MultiheadAttention expects a {x.shape.rank}-D {name}, "
                    f"got {t.shape.rank}-D {t.shape}",
                    f"expected {x.shape.rank}-D {name}, got {t.shape}",
                )
            _float_like(name, x, t)
            want = args["embed_dim"] if dim is None else dim
            have = t.shape.dims[-1]
            ctx.require_equal(
                have,
                want,
                f"MultiheadAttention's {name} needs {want} features, got {have}",
                f"expected {name} [..., {want}], got {t.shape}",
                f"give {'kdim' if name == 'key' else 'vdim'}={have}" if isinstance(have, int) else None,
            )
            if name == "key":
                key = t
            else:
                value = t
        batch_axis = 0 if args["batch_first"] else 1
        seq_axis = 1 - batch_axis if not unbatched else 0
        if not unbatched:
            for name, t in (("key", key), ("value", value)):
                ctx.require_equal(
                    t.shape.dims[batch_axis],
                    x.shape.dims[batch_axis],
                    f"MultiheadAttention's {name} has batch size {t.shape.dims[batch_axis]}, "
                    f"the query {x.shape.dims[batch_axis]}",
                    f"{name} {t.shape}, query {x.shape}",
                )
        ctx.require_equal(
            value.shape.dims[seq_axis],
            key.shape.dims[seq_axis],
            f"key and value must have the same sequence length, got key {key.shape} and value {value.shape}",
            f"key {key.shape}, value {value.shape}",
        )
        _masks(args["batch_first"], args["num_heads"], x, key, inputs, forward, ctx)
        return x

    @classmethod
    def select_with(cls, args, x, out, selector, inputs, forward):
        if selector == "output":
            return out
        if not forward["need_weights"]:
            raise ShapeError(
                "E111",
                "with need_weights=False MultiheadAttention gives no attention weights (torch returns None)",
                "no weights",
                "remove need_weights=False to take the weights",
                param="need_weights",
            )
        unbatched = out.shape.rank == 2
        seq_axis = 0 if unbatched else 1 if args["batch_first"] else 0
        query_axis = seq_axis
        key = inputs.get("key")
        source = key.shape.dims[seq_axis] if key is not None and key.shape.rank == out.shape.rank else None
        if source is None:
            source = out.shape.dims[query_axis]  # self-attention: the keys are the queries
        # torch appends bias_k and a zero key to the keys
        source = shapes.add(source, int(args["add_bias_kv"]) + int(args["add_zero_attn"]))
        dims = (out.shape.dims[query_axis], source)
        if not forward["average_attn_weights"]:
            dims = (args["num_heads"], *dims)
        if not unbatched:
            dims = (out.shape.dims[1 - seq_axis], *dims)
        return TensorType(Shape(dims), out.dtype)

    @classmethod
    def _call(cls, attr, src, args, inputs, forward, weights: bool) -> Call:
        """The module called: query, key, value in torch's order, the masks and flags by name;
        need_weights=False unless the weights are taken."""
        positional = [Code(src)] + [Code(inputs[n]) for n in ("key", "value") if n in inputs]
        if len(positional) == 1:
            positional *= 3
        keywords = [(n, Code(inputs[n])) for n in ("key_padding_mask", "attn_mask") if n in inputs]
        keywords += [(n, v) for n, v in forward.items() if n != "need_weights"]
        if not weights:
            keywords.append(("need_weights", False))
        return Call(f"self.{attr}", tuple(positional), tuple(keywords))

    @classmethod
    def forward_call(cls, attr, src, dst, args, selector, inputs, forward):
        weights = selector == "weights"
        targets = ("_", dst) if weights else (dst, "_")
        return [Assign(targets, cls._call(attr, src, args, inputs, forward, weights))]

    @classmethod
    def forward_statements(cls, attr, src, dst, args, selector):
        # query, key and value are the one input
        return cls.forward_call(attr, src, dst, args, selector, {}, {})

    @classmethod
    def unpack_call(cls, attr, src, dsts, args, inputs, forward):
        return [Assign(dsts, cls._call(attr, src, args, inputs, forward, True))]

    @classmethod
    def out_strides(cls, args, x, out, selector):
        if selector == "weights":  # a new tensor (a mean over the heads, or a view of the softmax's)
            return None
        # batch_first: the output is the transpose of an [L, N, E] result while training, row-major
        # on torch's inference fast path
        return "unknown" if args["batch_first"] or x.strides is not None else None

    @classmethod
    def param_count(cls, args):
        e, bias = args["embed_dim"], args["bias"]
        kdim, vdim = args["kdim"] or e, args["vdim"] or e
        # in_proj (q, k, v: E x E, E x kdim, E x vdim) and out_proj (E x E), and their biases
        total = 2 * e * e + e * kdim + e * vdim + (4 * e if bias else 0)
        return total + (2 * e if args["add_bias_kv"] else 0)

    @classmethod
    def to_onnx(cls, g, x, node, w):
        # eval mode: the attention dropout is off; the weights are computed where the call takes
        # them (.weights, or unpacked), and is_causal is a hint about the attn_mask given
        args = node.args
        given = layer_inputs(node, w, cls.tensor_inputs)
        part = "both" if node.unpacked else node.selector or "output"
        attended = attention_onnx(
            g,
            w,
            "",
            args["num_heads"],
            args["batch_first"],
            OnnxTensor(x, tuple(node.input.shape.dims), node.input.dtype),
            given["key"],
            given["value"],
            given["key_padding_mask"],
            given["attn_mask"],
            bias_kv=args["add_bias_kv"],
            zero_attn=args["add_zero_attn"],
            weights=None if part == "output" else node.forward.get("average_attn_weights", True),
        )
        if node.unpacked:
            return attended
        return attended[1] if part == "weights" else attended


@register
class TransformerEncoderLayer(Layer):
    """Self-attention then a feed-forward block, each with a residual and LayerNorm: shape-preserving."""

    params = (
        Param("d_model", POS_INT, infer=True),
        Param("nhead", POS_INT),
        Param("dim_feedforward", POS_INT, 2048),
        Param("dropout", PROB, 0.1),
        Param("activation", choice("relu", "gelu"), "relu"),
        Param("layer_norm_eps", FLOAT, 1e-05),
        Param("batch_first", BOOL, False),
        Param("norm_first", BOOL, False),
        Param("bias", BOOL, True),
    )
    examples = (
        ("TransformerEncoderLayer(512, 8)", "[S, N, 512]", "[S, N, 512]"),
        ("TransformerEncoderLayer(16, 4, 32, batch_first=True)", "[N, S, 16]", "[N, S, 16]"),
        ("TransformerEncoderLayer(16, 4, activation='gelu', norm_first=True)", "[5, 16]", "[5, 16]"),
        ("TransformerEncoderLayer(nhead=2, dim_feedforward=8)", "[S, N, 4]", "[S, N, 4]"),
        ("TransformerEncoderLayer(16, 3)", "[S, N, 16]", "E107"),
        ("TransformerEncoderLayer(16, 4, activation='tanh')", "[S, N, 16]", "E107"),
        ("TransformerEncoderLayer(16, 4)", "[S, N, 12]", "E201"),
        ("TransformerEncoderLayer(16, 4)", "[16]", "E202"),
    )
    onnx_examples = (
        ("TransformerEncoderLayer(8, 2, 16)", "[S, N, 8]"),
        ("TransformerEncoderLayer(8, 2, 16, batch_first=True)", "[N, S, 8]"),
        ("TransformerEncoderLayer(8, 2, 16, norm_first=True)", "[S, N, 8]"),
        ("TransformerEncoderLayer(8, 4, 16, norm_first=True, batch_first=True)", "[N, S, 8]"),
        ("TransformerEncoderLayer(8, 2, 16, activation='gelu')", "[S, N, 8]"),
        ("TransformerEncoderLayer(8, 2, 16, activation='gelu', batch_first=True)", "[N, S, 8]"),
        ("TransformerEncoderLayer(8, 2, 16, bias=False)", "[S, N, 8]"),
        ("TransformerEncoderLayer(8, 2, 16, bias=False, norm_first=True, batch_first=True)", "[N, S, 8]"),
        ("TransformerEncoderLayer(8, 1, 16, layer_norm_eps=0.01, dropout=0.0)", "[S, N, 8]"),
        ("TransformerEncoderLayer(8, 8, 16)", "[S, N, 8]"),
        ("TransformerEncoderLayer(8, 2, 16)", "[S, 8]"),
        ("TransformerEncoderLayer(8, 2, 16, norm_first=True, batch_first=True)", "[S, 8]"),
    )

    tensor_inputs = ("src_mask", "src_key_padding_mask")
    forward_params = (Param("is_causal", BOOL, False),)

    @classmethod
    def infer(cls, name, args, x):
        return MultiheadAttention.infer(name, args, x)

    @classmethod
    def validate(cls, args):
        _check_heads(args, "d_model", "nhead")

    @classmethod
    def output(cls, args, x, ctx):
        return _sequence(cls, args, x, ctx, args["d_model"])

    @classmethod
    def output_with(cls, args, x, inputs, forward, ctx):
        x = _sequence(cls, args, x, ctx, args["d_model"])
        names = ("src_key_padding_mask", "src_mask", "is_causal")
        _masks(args["batch_first"], args["nhead"], x, x, inputs, forward, ctx, names)
        return x

    @classmethod
    def forward_call(cls, attr, src, dst, args, selector, inputs, forward):
        keywords = [(n, Code(inputs[n])) for n in cls.tensor_inputs if n in inputs] + list(forward.items())
        return [assign(dst, Call(f"self.{attr}", (Code(src),), tuple(keywords)))]

    @classmethod
    def param_count(cls, args):
        e, ff, bias = args["d_model"], args["dim_feedforward"], args["bias"]
        attention = 4 * e * e + (4 * e if bias else 0)
        feed_forward = 2 * e * ff + ((ff + e) if bias else 0)
        norms = 2 * (2 * e if bias else e)
        return attention + feed_forward + norms

    @classmethod
    def to_onnx(cls, g, x, node, w):
        given = layer_inputs(node, w, cls.tensor_inputs)
        query = OnnxTensor(x, tuple(node.input.shape.dims))
        return encoder_layer_onnx(g, query, node.args, w, given["src_key_padding_mask"], given["src_mask"])


# ---------------------------------------------------------------- ONNX: the transformer layers' blocks


def layer_fast_path(args: dict, rank: int) -> bool:
    """Whether torch's TransformerEncoderLayer takes its inference fast path (eval mode, no
    gradient): a batched input, batch_first, biases, an even number of heads (its activation is
    relu or gelu and its two norms share one eps, always so here)."""
    return rank == 3 and args["batch_first"] and args["bias"] and args["nhead"] % 2 == 0


def fast_path_mask(g, mask: OnnxTensor | None) -> OnnxTensor | None:
    """A mask as torch's encoder-layer fast path reads it: a float mask's non-zero entries are not
    attended, whatever their value (its slow path adds them to the scores); a bool mask as is."""
    if mask is None or mask.dtype == "bool":
        return mask
    flags = g.op("Not", [g.op("Equal", [mask.name, g.scalar(0.0)])])
    return OnnxTensor(g.op("Cast", [flags], to=_ONNX_FLOAT), mask.dims, "bool")


#: ONNX's element type number of float32 (TensorProto.FLOAT)
_ONNX_FLOAT = 1


def feed_forward_onnx(g, h: str, w, activation: str) -> str:
    """``linear2(activation(linear1(h)))``: torch's string activations, F.relu or F.gelu (the
    exact, erf form); the dropouts are off in eval mode."""
    from nndsl.layers.activation import _gelu

    h = _linear_onnx(g, h, w, "linear1.weight", "linear1.bias")
    h = g.op("Relu", [h]) if activation == "relu" else _gelu(g, h, {"approximate": "none"}, None)
    return _linear_onnx(g, h, w, "linear2.weight", "linear2.bias")


def residual_blocks_onnx(g, x: str, w, args: dict, blocks) -> str:
    """Each of ``blocks`` (norm name, function of the normalised or raw input) with its residual:
    ``x + block(norm(x))`` with norm_first, ``norm(x + block(x))`` without."""
    for name, block in blocks:

        def norm(h, name=name):
            return layer_norm_onnx(g, h, w, (args["d_model"],), args["layer_norm_eps"], prefix=name + ".")

        x = g.op("Add", [x, block(norm(x))]) if args["norm_first"] else norm(g.op("Add", [x, block(x)]))
    return x


def encoder_layer_onnx(g, x: OnnxTensor, args: dict, w, pad: OnnxTensor | None, mask: OnnxTensor | None) -> str:
    """TransformerEncoderLayer(x, src_mask=mask, src_key_padding_mask=pad) in eval mode, its
    weights under ``w`` (``self_attn.in_proj_weight``, ``norm1.weight``...). The masks as given
    (is_causal is a hint that src_mask is causal), read as torch's fast path reads them where it
    takes it."""
    if layer_fast_path(args, len(x.dims)):
        pad, mask = fast_path_mask(g, pad), fast_path_mask(g, mask)

    def attention(h):
        query = OnnxTensor(h, x.dims)
        return attention_onnx(g, w, "self_attn.", args["nhead"], args["batch_first"], query, None, None, pad, mask)

    def feed_forward(h):
        return feed_forward_onnx(g, h, w, args["activation"])

    return residual_blocks_onnx(g, x.name, w, args, (("norm1", attention), ("norm2", feed_forward)))
