"""The checker's driver: one parsed spec in, a checked Program and its diagnostics out."""

from __future__ import annotations

from nndsl import ast
from nndsl.check.flow import FlowChecker
from nndsl.check.loading import load
from nndsl.diagnostics import DiagnosticSink
from nndsl.ir import Program
from nndsl.shapes import TensorType
from nndsl.source import Source


def check(module: ast.Module, source: Source, sink: DiagnosticSink, bare_input: TensorType | None = None) -> Program:
    """Check a parsed module; diagnostics go to ``sink``; the Program holds every model that checked."""
    spec, imports = load(module, source)  # every imported file, read and parsed before checking
    return FlowChecker(spec, sink, imports, {}).check_module(module, bare_input)
