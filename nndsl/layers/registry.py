"""The one table of layers: DSL name -> layer class. Layers add themselves with ``@register``."""

from __future__ import annotations

REGISTRY: dict = {}

#: the layer classes of torch 2.13's torch.nn (losses aside): a name here that nndsl lacks is
#: "not supported yet", never a typo of another layer
TORCH_LAYERS = frozenset(
    """AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d AdaptiveMaxPool2d
    AdaptiveMaxPool3d AlphaDropout AvgPool1d AvgPool2d AvgPool3d BatchNorm1d BatchNorm2d BatchNorm3d
    Bilinear CELU ChannelShuffle CircularPad1d CircularPad2d CircularPad3d ConstantPad1d ConstantPad2d
    ConstantPad3d Container Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d
    CosineSimilarity CrossMapLRN2d DataParallel Dropout Dropout1d Dropout2d Dropout3d ELU Embedding
    EmbeddingBag FeatureAlphaDropout Flatten Fold FractionalMaxPool2d FractionalMaxPool3d GELU GLU GRU
    GRUCell GroupNorm Hardshrink Hardsigmoid Hardswish Hardtanh Identity InstanceNorm1d InstanceNorm2d
    InstanceNorm3d LPPool1d LPPool2d LPPool3d LSTM LSTMCell LayerNorm LazyBatchNorm1d LazyBatchNorm2d
    LazyBatchNorm3d LazyConv1d LazyConv2d LazyConv3d LazyConvTranspose1d LazyConvTranspose2d
    LazyConvTranspose3d LazyInstanceNorm1d LazyInstanceNorm2d LazyInstanceNorm3d LazyLinear LeakyReLU
    Linear LocalResponseNorm LogSigmoid LogSoftmax MaxPool1d MaxPool2d MaxPool3d MaxUnpool1d MaxUnpool2d
    MaxUnpool3d Mish ModuleDict ModuleList MultiheadAttention NLLLoss2d PReLU PairwiseDistance
    ParameterDict ParameterList PixelShuffle PixelUnshuffle RMSNorm RNN RNNBase RNNCell RNNCellBase
    RReLU ReLU ReLU6 ReflectionPad1d ReflectionPad2d ReflectionPad3d ReplicationPad1d ReplicationPad2d
    ReplicationPad3d SELU Sequential SiLU Sigmoid Softmax Softmax2d Softmin Softplus Softshrink Softsign
    SyncBatchNorm Tanh Tanhshrink Threshold Transformer TransformerDecoder TransformerDecoderLayer
    TransformerEncoder TransformerEncoderLayer Unflatten Unfold Upsample UpsamplingBilinear2d
    UpsamplingNearest2d ZeroPad1d ZeroPad2d ZeroPad3d""".split()
)


def register(cls):
    """Class decorator: make a layer callable from specs under its class name."""
    name = cls.dsl_name()
    if name in REGISTRY:
        raise ValueError(f"layer {name} registered twice")
    REGISTRY[name] = cls
    return cls


def lookup(name: str):
    return REGISTRY.get(name)


def suggest(name: str) -> str | None:
    """The registered name ``name`` is a plausible typo of (did-you-mean), or None.

    A case-insensitive match first; else the one nearest name within one edit (two for names
    longer than five letters), where a swap of neighbours counts as one edit. Closeness alone
    is not enough: ``Hardsigmoid`` is not a misspelt ``Sigmoid`` but another function, four
    letters longer; nor is a real torch layer that nndsl lacks (``RReLU``, one letter from
    ``ReLU``) a typo: callers say that it is not supported yet (``TORCH_LAYERS``).
    """
    lowered = {c.lower(): c for c in REGISTRY}
    if name.lower() in lowered:
        return lowered[name.lower()]
    if name in TORCH_LAYERS:
        return None
    allowed = 1 if len(name) <= 5 else 2
    # a name of three letters or fewer is too short to tell a dropped letter from another word
    # a name whose length differs by more than `allowed` is further than `allowed` edits: not scored
    near = [c for c in lowered if abs(len(c) - len(name)) <= allowed and (len(name) > 3 or len(c) == len(name))]
    scored = sorted((_edits(name.lower(), c), c) for c in near)
    best = [c for d, c in scored if d == scored[0][0]] if scored else []
    if len(best) > 1:  # equally near: a name that only lacks its end (BatchNorm2 -> BatchNorm2d)
        best = [c for c in best if c.startswith(name.lower())]
    if len(best) != 1 or scored[0][0] > allowed:
        return None  # nothing near, or two names equally near: no guess
    return lowered[best[0]]


def _edits(a: str, b: str) -> int:
    """Edit distance counting insertions, deletions, substitutions and swaps of neighbours."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]
