"""Attention layers: MultiheadAttention (as self-attention) and TransformerEncoderLayer."""

from __future__ import annotations

from nndsl.layers.base import (
    BOOL,
    FLOAT,
    POS_INT,
    PROB,
    ArgValueError,
    Layer,
    Param,
    check_rank,
    choice,
    materialize,
    optional,
)
from nndsl.layers.registry import register


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


@register
class MultiheadAttention(Layer):
    """Self-attention over a sequence (query = key = value = the input): ``[L, N, E] -> [L, N, E]``.

    torch's forward takes query, key and value; a chain has one tensor, so nndsl passes it as all
    three and keeps the attention output (``attn(x, x, x, need_weights=False)[0]``). Key and value
    then have ``embed_dim`` features, so ``kdim``/``vdim`` other than ``embed_dim`` are refused
    (torch would fail on the key/value projection's shape).
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

    @classmethod
    def infer(cls, name, args, x):
        return x.shape.dims[-1] if x.shape.rank in (2, 3) and not x.shape.rest else None

    @classmethod
    def validate(cls, args):
        _check_heads(args, "embed_dim", "num_heads")
        for name in ("kdim", "vdim"):
            if args[name] not in (None, args["embed_dim"]):
                raise ArgValueError(
                    f"{name} ({args[name]}) must equal embed_dim ({args['embed_dim']}): "
                    "the input is query, key and value at once",
                    name,
                    f"remove {name}; attending to another sequence is not expressible in a chain",
                )

    @classmethod
    def output(cls, args, x, ctx):
        return _sequence(cls, args, x, ctx, args["embed_dim"])

    @classmethod
    def forward_lines(cls, attr, src, dst, args, selector):
        from nndsl.backends.pywriter import LINE_LENGTH  # only ever called from the backend

        head, items = f"{dst}, _ = self.{attr}(", [src, src, src, "need_weights=False"]
        if len(", ".join(items)) + 12 <= LINE_LENGTH:  # the backend hugs it when it is too long for one line
            return [f"{head}{', '.join(items)})"]
        return [head, *(f"    {item}," for item in items), ")"]  # one per line, as ruff formats it

    @classmethod
    def param_count(cls, args):
        e, bias = args["embed_dim"], args["bias"]
        # in_proj (q, k, v) and out_proj: four E x E weights, and their biases
        total = 4 * e * e + (4 * e if bias else 0)
        return total + (2 * e if args["add_bias_kv"] else 0)


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
    def param_count(cls, args):
        e, ff, bias = args["d_model"], args["dim_feedforward"], args["bias"]
        attention = 4 * e * e + (4 * e if bias else 0)
        feed_forward = 2 * e * ff + ((ff + e) if bias else 0)
        norms = 2 * (2 * e if bias else e)
        return attention + feed_forward + norms
