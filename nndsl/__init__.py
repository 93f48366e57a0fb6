"""nndsl: a compiler for neural-network architecture specs (check shapes, emit PyTorch and ONNX)."""

__version__ = "0.1.0"

from nndsl.api import Result, SpecError, build, check_file, check_source, compile_spec, export_onnx  # noqa: E402

__all__ = ["Result", "SpecError", "__version__", "build", "check_file", "check_source", "compile_spec", "export_onnx"]
