"""What every part of the checker shares: the built-in constants, 64-bit limits, Abort, a bound call."""

from __future__ import annotations

import keyword
import os
import re

from nndsl import ast
from nndsl.diagnostics import Label, Span
from nndsl.layers.base import Layer
from nndsl.shapes import TensorType
from nndsl.suggest import close_matches  # noqa: F401  (re-exported for the checker's parts)

BUILTIN_VALUES = {"True": True, "False": False, "None": None}
INT64_MAX = 2**63 - 1
ITEMSIZE = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2, "bool": 1}


def producer_label(span: Span, role: str, x: TensorType) -> Label:
    """The secondary label on where a value came from: ``output [N, 512] produced here``."""
    return Label(span, f"{role} {x} {'declared' if role == 'input' else 'produced'} here")


class Abort(Exception):
    """Stop checking the current item; its diagnostic is already recorded."""


class Bound:
    """A call after phase 1: its layer class and converted arguments (None where unusable)."""

    __slots__ = ("call", "layer", "args", "arg_spans", "validated")

    def __init__(self, call: ast.Call, layer: type[Layer] | None, args: dict | None, arg_spans=None):
        self.call = call
        self.layer = layer
        self.args = args
        self.arg_spans: dict = arg_spans or {}
        self.validated = False


class _InferMarker:
    def __repr__(self) -> str:
        return "<infer>"


INFER = _InferMarker()


def model_name_for(path: str) -> str:
    """Class name for a bare chain: the file's stem in PascalCase (``fashion_mlp.nn`` -> ``FashionMlp``)."""
    stem = os.path.splitext(os.path.basename(path))[0] if path and not path.startswith("<") else "model"
    words = [w for w in re.split(r"[^0-9A-Za-z]+", stem) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    if name[0].isdigit():
        name = "Model" + name
    if keyword.iskeyword(name):
        name += "_"
    return name
