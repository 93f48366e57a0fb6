"""Tensor operators (add, sub, mul, div, cat, stack, chunk, split): one class per operator holds
its signature, shape rule, torch emission and ONNX mapping; importing the package registers them."""

from nndsl.operators import attention, elementwise, join, split  # noqa: F401  (each module registers its operators)
from nndsl.operators.base import Operator
from nndsl.operators.registry import REGISTRY, lookup

__all__ = ["REGISTRY", "Operator", "lookup"]
