"""Every layer nndsl knows, one module per family; importing this package fills the registry."""

from nndsl.layers import (  # noqa: F401
    activation,
    attention,
    conv,
    dropout,
    fold,
    linear,
    norm,
    pad,
    pairwise,
    pool,
    recurrent,
    resize,
    tensor_ops,
    transformer,
)
from nndsl.layers.base import Layer
from nndsl.layers.registry import REGISTRY, lookup, suggest

__all__ = ["REGISTRY", "Layer", "lookup", "suggest"]
