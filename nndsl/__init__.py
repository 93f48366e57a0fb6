"""nndsl: a compiler for neural-network architecture specs (check shapes, emit PyTorch and ONNX).

The API's names are imported on first use, as are the subpackages: ``import nndsl.version`` or
``import nndsl.pygments_lexer`` (which Pygments does whenever it looks a language up) loads
neither the grammar nor the checker."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from nndsl.version import __version__

if TYPE_CHECKING:
    from nndsl.api import Result, SpecError, build, check_file, check_source, compile_spec, export_onnx

__all__ = ["Result", "SpecError", "__version__", "build", "check_file", "check_source", "compile_spec", "export_onnx"]


def __getattr__(name: str) -> object:
    """An API name from nndsl.api, or a submodule (``nndsl.api``, ``nndsl.syntax``, ...)."""
    if name.startswith("__"):
        raise AttributeError(f"module 'nndsl' has no attribute {name!r}")
    if name in __all__:
        value = getattr(import_module("nndsl.api"), name)
        globals()[name] = value
        return value
    try:
        return import_module(f"nndsl.{name}")
    except ModuleNotFoundError as missing:
        if missing.name != f"nndsl.{name}":
            raise
        raise AttributeError(f"module 'nndsl' has no attribute {name!r}") from None
