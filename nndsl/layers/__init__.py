"""Every layer nndsl knows, one module per family; importing this package fills the registry."""

import nndsl.layers.pairwise  # noqa: F401  (layers of two tensors)
from nndsl.layers import activation, attention, conv, dropout, linear, norm, pool, recurrent, resize, tensor_ops  # noqa: F401
from nndsl.layers.base import Layer
from nndsl.layers.registry import REGISTRY, lookup, suggest

__all__ = ["REGISTRY", "Layer", "lookup", "suggest"]
