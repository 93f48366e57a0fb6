"""Tensor operators (add, sub, mul, div, matmul, cat, stack, chunk, split, the unary functions,
arange and the ``*_like`` makers): one class per operator holds its signature, shape rule, torch
emission and ONNX mapping; importing the package registers them."""

from nndsl.operators import creation, elementwise, join, linalg, reduction, split, tensor, unary  # noqa: F401  (each registers)
from nndsl.operators.base import Operator
from nndsl.operators.registry import REGISTRY, lookup

__all__ = ["REGISTRY", "Operator", "lookup"]
