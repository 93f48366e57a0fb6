"""nndsl: a compiler for neural-network architecture specs (check shapes, emit PyTorch and ONNX)."""

from nndsl.api import Result, SpecError, build, check_file, check_source, compile_spec, export_onnx
from nndsl.version import __version__

__all__ = ["Result", "SpecError", "__version__", "build", "check_file", "check_source", "compile_spec", "export_onnx"]
