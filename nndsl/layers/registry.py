"""The one table of layers: DSL name -> layer class. Layers add themselves with ``@register``."""

from __future__ import annotations

from nndsl.suggest import nearest_name

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
    """The registered layer ``name`` is a plausible typo of (did-you-mean), or None; a real
    torch layer that nndsl lacks (``RReLU``, one letter from ``ReLU``) is no typo: callers say
    that it is not supported yet (``TORCH_LAYERS``). See ``nndsl.suggest.nearest_name``."""
    return nearest_name(name, REGISTRY, TORCH_LAYERS)
