"""The checker, AST -> IR: constants, calls, shapes, data flow, blocks, imports and the train section."""

from nndsl.check.binding import signature
from nndsl.check.common import BUILTIN_VALUES, INT64_MAX, ITEMSIZE, close_matches, model_name_for
from nndsl.check.driver import check, input_type

__all__ = [
    "BUILTIN_VALUES",
    "INT64_MAX",
    "ITEMSIZE",
    "check",
    "input_type",
    "close_matches",
    "model_name_for",
    "signature",
]
