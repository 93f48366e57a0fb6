"""Multiply-accumulate counts of checked nodes, exact and symbolic (sizes are ``nndsl.shapes`` dims).

Every cost has two parts, kept apart so that one of them can be compared with torch exactly:

- ``matmul``: the multiply-accumulates of matrix products: convolutions (transposed ones too),
  linear maps, matrix products, attention's products and projections, the recurrent layers'
  gate products. This is what ``torch.utils.flop_counter.FlopCounterMode`` counts (its FLOPs
  are 2 x these MACs); biases are not part of it (torch counts ``addmm`` as its product only).
- ``other``: everything else that computes, one MAC per element it writes (or reads, where
  stated): norms, activations, softmax, pools (one per window element), reductions, element-wise
  arithmetic, residual sums, interpolation. An estimate of work, not a count torch makes.

The rules are keyed by layer name (``nndsl.layers`` registry) and operator name
(``nndsl.operators`` registry); a layer or operator that only moves, views or selects data
(reshapes, permutes, padding, dropout in eval mode, concatenation, embeddings' look-ups,
tensor makers) is listed in ``ZERO_LAYERS`` / ``ZERO_OPERATORS``: zero, on purpose. A test
checks that every registered name is in exactly one of the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from nndsl.shapes import Dim, Poly, TensorType, add
from nndsl.shapes import mul as _poly_mul


class Cost(NamedTuple):
    """The MACs of one node: matrix-product MACs (torch's FlopCounterMode / 2) and the others."""

    matmul: Dim = 0
    other: Dim = 0

    def __add__(self, other: Cost) -> Cost:  # type: ignore[override]
        return Cost(add(self.matmul, other.matmul), add(self.other, other.other))

    def times(self, k: Dim) -> Cost:
        return Cost(mul(self.matmul, k), mul(self.other, k))

    @property
    def total(self) -> Dim:
        return add(self.matmul, self.other)


ZERO = Cost()


def mul(a: Dim, b: Dim) -> Dim:
    """``a * b``; a number times a polynomial keeps its terms' order (no re-sorting: summaries
    multiply thousands of sizes)."""
    if isinstance(a, int):
        if isinstance(b, int):
            return a * b
        a, b = b, a
    if isinstance(b, int):
        return 0 if b == 0 else a if b == 1 else Poly(tuple((m, c * b) for m, c in a.terms))
    return _poly_mul(a, b)


def prod(dims) -> Dim:
    """The product of sizes: the numbers first, then the symbolic ones."""
    number, symbolic = 1, []
    for d in dims:
        if isinstance(d, int):
            number *= d
        else:
            symbolic.append(d)
    out: Dim = number
    for d in symbolic:
        out = mul(out, d)
    return out


@lru_cache(maxsize=4096)
def _numel(dims: tuple) -> Dim:
    return prod(dims)


def numel(t: TensorType) -> Dim:
    """A tensor's elements (cached by shape: a model has few distinct shapes)."""
    return _numel(t.shape.dims)


class Total:
    """A running sum of sizes, kept as terms until ``value()`` (adding polynomials one by one
    would sort their terms at every step)."""

    __slots__ = ("terms",)

    def __init__(self) -> None:
        self.terms: dict = {}

    def add(self, d: Dim) -> None:
        if isinstance(d, int):
            if d:
                self.terms[()] = self.terms.get((), 0) + d
            return
        for m, c in d.terms:
            self.terms[m] = self.terms.get(m, 0) + c

    def merge(self, other: Total) -> None:
        for m, c in other.terms.items():
            self.terms[m] = self.terms.get(m, 0) + c

    def value(self) -> Dim:
        return Poly.of(self.terms)


# ---------------------------------------------------------------- layers

LayerRule = Callable[[Mapping[str, Any], TensorType, TensorType, Mapping[str, TensorType]], Cost]


def _per_output(args, x, out, extra) -> Cost:
    return Cost(other=numel(out))


def _per_input(args, x, out, extra) -> Cost:
    return Cost(other=numel(x))


def _linear(args, x, out, extra) -> Cost:
    rows = prod(out.shape.dims[:-1])
    return Cost(matmul=mul(rows, args["in_features"] * args["out_features"]))


def _bilinear(args, x, out, extra) -> Cost:
    rows = prod(out.shape.dims[:-1])
    return Cost(matmul=mul(rows, args["in1_features"] * args["in2_features"] * args["out_features"]))


def _conv(args, x, out, extra) -> Cost:
    k = args["kernel_size"]
    per_position = args["in_channels"] // args["groups"] * prod(k)
    positions = prod(out.shape.dims[-len(k) :])
    batch = out.shape.dims[0] if out.shape.rank == len(k) + 2 else 1
    return Cost(matmul=mul(mul(batch, positions), args["out_channels"] * per_position))


def _conv_transposed(args, x, out, extra) -> Cost:
    # every input position scatters a kernel of in_channels x out_channels/groups products
    k = args["kernel_size"]
    per_position = args["out_channels"] // args["groups"] * prod(k)
    positions = prod(x.shape.dims[-len(k) :])
    batch = x.shape.dims[0] if x.shape.rank == len(k) + 2 else 1
    return Cost(matmul=mul(mul(batch, positions), args["in_channels"] * per_position))


def _attention(e: int, kdim: int, vdim: int, batch: Dim, lq: Dim, ls: Dim, extra_keys: int = 0) -> Dim:
    """Projections of query, key and value, the scores and the weighted sum, the output projection."""
    projections = add(mul(mul(batch, lq), 2 * e * e), mul(mul(batch, ls), e * (kdim + vdim)))
    keys = add(ls, extra_keys)
    return add(projections, mul(mul(mul(batch, lq), keys), 2 * e))


def _seq_batch(t: TensorType, batch_first: bool) -> tuple[Dim, Dim]:
    """(batch, length) of a sequence tensor [N, L, E] / [L, N, E], or [L, E] unbatched."""
    dims = t.shape.dims
    if t.shape.rank == 2:
        return 1, dims[0]
    return (dims[0], dims[1]) if batch_first else (dims[1], dims[0])


def _mha(args, x, out, extra) -> Cost:
    e = args["embed_dim"]
    batch, lq = _seq_batch(x, args["batch_first"])
    key = extra.get("key", x)
    _, ls = _seq_batch(key, args["batch_first"])
    extra_keys = int(args["add_bias_kv"]) + int(args["add_zero_attn"])
    return Cost(matmul=_attention(e, args["kdim"] or e, args["vdim"] or e, batch, lq, ls, extra_keys))


def _encoder_layer(args, x, out, extra) -> Cost:
    d, ff = args["d_model"], args["dim_feedforward"]
    batch, length = _seq_batch(x, args["batch_first"])
    tokens = mul(batch, length)
    matmul = add(_attention(d, d, d, batch, length, length), mul(tokens, 2 * d * ff))
    # two norms, the activation, two residual sums (the FFN's activation on ff features)
    return Cost(matmul, add(mul(tokens, 4 * d), mul(tokens, ff)))


def _decoder_layer(args, x, out, extra) -> Cost:
    d, ff = args["d_model"], args["dim_feedforward"]
    batch, length = _seq_batch(x, args["batch_first"])
    _, memory = _seq_batch(extra.get("memory", x), args["batch_first"])
    tokens = mul(batch, length)
    attention = add(_attention(d, d, d, batch, length, length), _attention(d, d, d, batch, length, memory))
    return Cost(add(attention, mul(tokens, 2 * d * ff)), add(mul(tokens, 6 * d), mul(tokens, ff)))


def _stack(args, x, out, extra) -> Cost:
    inner = args.get("encoder_layer") or args.get("decoder_layer")
    rule = LAYER_RULES[inner.layer.dsl_name()]
    one = rule(inner.arguments, x, out, extra)
    norm = Cost(other=numel(out)) if args["norm"] is not None else ZERO
    return one.times(args["num_layers"]) + norm


def _recurrent(gates: int) -> LayerRule:
    def rule(args, x, out, extra) -> Cost:
        batch, length = _seq_batch(x, args["batch_first"])
        steps = mul(batch, length)
        d = 2 if args["bidirectional"] else 1
        hidden = args["hidden_size"]
        h_out = args.get("proj_size", 0) or hidden
        per_step = 0
        for layer in range(args["num_layers"]):
            n_in = args["input_size"] if layer == 0 else d * h_out
            per_step += d * (gates * hidden * (n_in + h_out) + (hidden * h_out if h_out != hidden else 0))
        # the gates' non-linearities and state updates: a few element-wise steps per hidden unit
        other = d * args["num_layers"] * hidden * (gates + 2)
        return Cost(mul(steps, per_step), mul(steps, other))

    return rule


def _window(args, x, out, extra) -> Cost:
    return Cost(other=mul(numel(out), prod(args["kernel_size"])))


def _lrn(args, x, out, extra) -> Cost:
    return Cost(other=mul(numel(out), args["size"]))


#: layers whose cost is not zero: name -> rule(args, input, output, extra inputs' types)
LAYER_RULES: dict[str, LayerRule] = {
    "Linear": _linear,
    "Bilinear": _bilinear,
    **dict.fromkeys(("Conv1d", "Conv2d", "Conv3d"), _conv),
    **dict.fromkeys(("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"), _conv_transposed),
    "MultiheadAttention": _mha,
    "TransformerEncoderLayer": _encoder_layer,
    "TransformerDecoderLayer": _decoder_layer,
    "TransformerEncoder": _stack,
    "TransformerDecoder": _stack,
    "RNN": _recurrent(1),
    "GRU": _recurrent(3),
    "LSTM": _recurrent(4),
    # one MAC per output element: activations, norms, softmax, interpolation
    **dict.fromkeys(
        """CELU ELU GELU GLU Hardshrink Hardsigmoid Hardswish Hardtanh LeakyReLU LogSigmoid LogSoftmax Mish
        PReLU RReLU ReLU ReLU6 SELU SiLU Sigmoid Softmax Softmax2d Softmin Softplus Softshrink Softsign Tanh
        Tanhshrink Threshold BatchNorm BatchNorm1d BatchNorm2d BatchNorm3d GroupNorm InstanceNorm1d
        InstanceNorm2d InstanceNorm3d LayerNorm RMSNorm Upsample UpsamplingBilinear2d UpsamplingNearest2d""".split(),
        _per_output,
    ),
    # one MAC per element of the window: pools
    **dict.fromkeys(
        "AvgPool1d AvgPool2d AvgPool3d MaxPool1d MaxPool2d MaxPool3d".split(),
        _window,
    ),
    "LocalResponseNorm": _lrn,
    # one MAC per input element: adaptive pools, reductions, distances
    **dict.fromkeys(
        """AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d AdaptiveMaxPool2d
        AdaptiveMaxPool3d Mean Sum CosineSimilarity PairwiseDistance""".split(),
        _per_input,
    ),
}

#: layers that compute nothing counted: data movement, views, padding, eval-mode dropout, look-ups
ZERO_LAYERS = frozenset(
    """AlphaDropout ChannelShuffle CircularPad1d CircularPad2d CircularPad3d ConstantPad1d ConstantPad2d
    ConstantPad3d DropPath Dropout Dropout1d Dropout2d Dropout3d Embedding FeatureAlphaDropout Flatten Fold
    Identity Permute PixelShuffle PixelUnshuffle ReflectionPad1d ReflectionPad2d ReflectionPad3d
    ReplicationPad1d ReplicationPad2d ReplicationPad3d Reshape Squeeze StochasticDepth Transpose Unflatten
    Unfold Unsqueeze View ZeroPad1d ZeroPad2d ZeroPad3d""".split()
)


def layer_cost(node) -> Cost:
    """A LayerNode's cost (for a selector, the whole layer's: torch runs all of it)."""
    name = node.layer.dsl_name()
    if name in ZERO_LAYERS:
        return ZERO
    return LAYER_RULES[name](node.args, node.input, node.output, node.extra_types)


# ---------------------------------------------------------------- operators

OpRule = Callable[[tuple[TensorType, ...], tuple[TensorType, ...]], Cost]


def _op_per_output(ins, outs) -> Cost:
    return Cost(other=numel(outs[0]))


def _op_per_input(ins, outs) -> Cost:
    return Cost(other=numel(ins[0]))


def _matmul(ins, outs) -> Cost:
    return Cost(matmul=mul(numel(outs[0]), ins[0].shape.dims[-1]))


def _sdpa(ins, outs) -> Cost:
    q, k, v = ins[:3]
    rows = prod(q.shape.dims[:-1])  # batch... x L
    keys = k.shape.dims[-2]
    return Cost(matmul=mul(mul(rows, keys), add(q.shape.dims[-1], v.shape.dims[-1])))


OPERATOR_RULES: dict[str, OpRule] = {
    "matmul": _matmul,
    "scaled_dot_product_attention": _sdpa,
    **dict.fromkeys(
        """add sub mul div floor_divide remainder pow neg bitwise_and bitwise_or bitwise_xor bitwise_not
        eq ne lt le gt ge where masked_fill exp log sqrt rsqrt tanh sigmoid relu gelu softmax log_softmax""".split(),
        _op_per_output,
    ),
    "sum": _op_per_input,
    "mean": _op_per_input,
}

#: operators that compute nothing counted: joins, splits, indexing, views, makers of tensors
ZERO_OPERATORS = frozenset(
    """arange cat chunk expand full getitem ones ones_like randn_like roll split stack transpose tril triu
    zeros zeros_like""".split()
)


def op_cost(node, types: Mapping[int, TensorType]) -> Cost:
    """An OpNode's cost; ``types`` gives its inputs' types (a tensor-number operation has one)."""
    if node.op in ZERO_OPERATORS:
        return ZERO
    ins = tuple(types[v] for v in node.inputs)
    return OPERATOR_RULES[node.op](ins, node.types)
