"""The checker, AST -> IR: constants, calls, shapes, data flow, blocks, imports and the train section."""

from nndsl.check.binding import (
    BUILTIN_VALUES,
    INT64_MAX,
    ITEMSIZE,
    Checker,
    close_matches,
    model_name_for,
    signature,
)
from nndsl.check.driver import check

__all__ = [
    "BUILTIN_VALUES",
    "INT64_MAX",
    "ITEMSIZE",
    "Checker",
    "check",
    "close_matches",
    "model_name_for",
    "signature",
]
