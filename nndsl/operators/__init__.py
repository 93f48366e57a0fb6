"""Tensor operators (add, sub, mul, div, matmul, cat, stack, chunk, split, the unary functions,
softmax, sum and mean, arange and the ``*_like`` makers, expand, roll, transpose, masked_fill,
where, ones/zeros/full and triu/tril): one class per operator holds its signature, shape rule, torch emission and ONNX mapping;
importing the package registers them. Sizes read at run time: ``nndsl.operators.runtime``."""

from nndsl.operators import (  # noqa: F401  (each module registers its operators)
    attention,
    bitwise,
    creation,
    elementwise,
    index,
    join,
    linalg,
    masks,
    reduction,
    split,
    tensor,
    unary,
)
from nndsl.operators.base import Operator
from nndsl.operators.registry import REGISTRY, lookup

__all__ = ["REGISTRY", "Operator", "lookup"]
