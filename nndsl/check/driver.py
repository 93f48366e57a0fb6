"""The checker's driver: one parsed spec in, a checked Program and its diagnostics out."""

from __future__ import annotations

from nndsl import ast
from nndsl.check.context import Context
from nndsl.check.flow import Flow
from nndsl.check.loading import FileCache, Imports, LoadedFile, load
from nndsl.diagnostics import DiagnosticSink
from nndsl.ir import Program
from nndsl.shapes import TensorType
from nndsl.source import Source


def check(
    module: ast.Module,
    source: Source,
    sink: DiagnosticSink,
    bare_input: TensorType | None = None,
    cache: FileCache | None = None,
) -> tuple[Program, LoadedFile]:
    """Check a parsed module; diagnostics go to ``sink``. Returns the Program, which holds every
    model that checked, and the spec with what its imports resolved to; ``cache`` keeps the
    imported files' reads and parses between runs."""
    spec, imports = load(module, source, cache)  # every imported file, read and parsed before checking
    return Flow(Context(spec, sink, imports, {})).check_module(bare_input), spec


def input_type(decl: ast.InputDecl, source: Source, sink: DiagnosticSink) -> TensorType | None:
    """The type an input declaration gives (the ``--input`` notation); its errors go to ``sink``."""
    ctx = Context(LoadedFile(None, source, ast.Module((), decl.span)), sink, Imports(0), {})
    ctx.begin_model()  # its sizes are evaluated as a model's input declaration is
    return Flow(ctx).binding.input_type(decl)
