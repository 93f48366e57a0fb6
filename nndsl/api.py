"""The Python API: check, compile and build specs in-process, from a string or a file."""

from __future__ import annotations

import gc
import os

from nndsl import ast
from nndsl import check as _check
from nndsl.backends.onnx_opsets import DEFAULT_OPSET
from nndsl.check.loading import FileCache, LoadedFile
from nndsl.diagnostics import Diagnostic, DiagnosticError, DiagnosticSink, Severity, Span, render_text
from nndsl.ir import Program
from nndsl.shapes import TensorType
from nndsl.source import Source
from nndsl.suggest import close_matches
from nndsl.suppression import apply_inline


class Result:
    """The outcome of checking one spec: the checked program and every diagnostic; for tools
    that read the spec's text (an editor's), also its parse (``module``, with the syntax errors
    recovered from) and what its imports resolved to (``loaded``)."""

    def __init__(
        self,
        source: Source,
        program: Program | None,
        diagnostics: list[Diagnostic],
        module: ast.Module | None = None,
        loaded: LoadedFile | None = None,
    ):
        self.source = source
        self.program = program
        self.diagnostics = diagnostics
        self.module = module
        self.loaded = loaded

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


class SpecError(Exception):
    """A spec has errors; ``diagnostics`` holds them all, ``str()`` renders them."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n\n".join(render_text(d) for d in diagnostics if d.severity is Severity.ERROR))


def parse_input_shape(text: str, sink: DiagnosticSink, name: str = "input=") -> TensorType | None:
    """Parse a bare chain's input shape (``[N, 1, 28, 28]``, ``long[N, T]``); errors go to
    ``sink``, located in a source called ``name`` (the parameter or flag that gave it)."""
    from nndsl.syntax import parse_shape

    source = Source(name, text)
    try:
        decl = parse_shape(source)
    except DiagnosticError as exc:
        sink.add(exc.diagnostic)
        return None
    return _check.input_type(decl, source, sink)


def check_source(
    text: str, name: str = "<string>", input: str | TensorType | None = None, files: FileCache | None = None
) -> Result:
    """Parse and check spec text. ``input`` gives a bare chain's input shape; ``files`` keeps the
    imported files' reads and parses from one call to the next (an editor checking as one types)."""
    # Parsing and checking build only acyclic data, so the cyclic collector has nothing to
    # free; left on, its passes over the growing heap make long specs check superlinearly.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _check_source(text, name, input, files)
    finally:
        if paused:
            gc.enable()


def check_bytes(data: bytes, name: str, input: str | TensorType | None = None) -> Result:
    """Check a spec read as bytes (a file, standard input): UTF-8 text, else E003 at the first bad byte."""
    from nndsl.reading import source_from_bytes

    source, problem = source_from_bytes(data, name)
    if problem is not None:
        return Result(source, None, [problem])
    return check_source(source.text, name, input)


def _check_source(text: str, name: str, input: str | TensorType | None, files: FileCache | None) -> Result:
    from nndsl.reading import MAX_SPEC_SIZE, too_large
    from nndsl.syntax import parse_recovering

    if len(text) > MAX_SPEC_SIZE:  # before any work on it: a line table alone would be large
        diag = too_large(name, "characters")
        return Result(diag.source, None, [diag])
    source = Source(name, text.removeprefix("\ufeff"))  # a byte-order mark is not part of the spec
    sink = DiagnosticSink()
    bare_input = input
    if isinstance(input, str):
        bare_input = parse_input_shape(input, sink)
        if bare_input is None:
            return Result(source, None, sink.items)
    module, syntax_errors = parse_recovering(source)
    for diag in syntax_errors:
        sink.add(diag)
    if syntax_errors and not module.items:
        return Result(source, None, sink.items, module)
    program, loaded = _check.check(module, source, sink, bare_input, files)
    ordered = sorted(sink.items, key=lambda d: (d.source is not source, d.span.start))
    diagnostics = apply_inline(ordered, source, _unchecked_blocks(module, ordered))
    return Result(source, program, diagnostics, module, loaded)


def _unchecked_blocks(module: ast.Module, diagnostics: list[Diagnostic]) -> list[Span]:
    """The spans of the file's blocks no model of it checked: all of a file of blocks alone,
    else those reported never used (W305 at the name); a suppression in them cannot be judged."""
    blocks = [item for item in module.items if isinstance(item, ast.Block)]
    if not any(isinstance(item, (ast.Model, ast.Assign)) for item in module.items):
        return [b.span for b in blocks]
    unused = {d.span for d in diagnostics if d.code == "W305"}
    return [b.span for b in blocks if b.name.span in unused]


def check_file(path: str | os.PathLike, input: str | TensorType | None = None) -> Result:
    """Read and check a spec file (a regular file, UTF-8). A file that cannot be read raises
    OSError; one that is not UTF-8 or is too large gives a Result with its diagnostic."""
    from nndsl.reading import read_file

    path = os.fspath(path)
    return check_bytes(read_file(path), path, input)


def _is_path(spec) -> bool:
    """A PathLike, or a one-line string naming an existing ``.nn`` file (spec text never ends so)."""
    if isinstance(spec, os.PathLike):
        return True
    return spec.endswith(".nn") and "\n" not in spec and os.path.exists(spec)


def _checked(spec, input) -> Result:
    if _is_path(spec):
        result = check_file(spec, input)
    else:
        result = check_source(spec, "<string>", input)
    if not result.ok:
        raise SpecError(result.diagnostics)
    return result


def compile_spec(spec: str | os.PathLike, input: str | None = None, target: str = "module") -> str:
    """Python source for a spec: its text, or its file (a Path, or a string naming an existing
    ``.nn`` file). ``target`` names the source target (nndsl.targets): ``module``, the PyTorch
    modules (default), or ``train``, the training script of the spec's train section. Raises
    SpecError for a spec with errors and ValueError for a target that is not source text or
    that the spec lacks what it needs for."""
    from nndsl.targets import target as find_target

    chosen = find_target(target)
    if chosen.kind != "source":
        raise ValueError(f"target {target!r} writes no source text; compile_spec takes {_source_targets()}")
    return chosen.load()(_checked(spec, input).program)


def _source_targets() -> str:
    from nndsl.targets import TARGETS

    return ", ".join(repr(t.name) for t in TARGETS.values() if t.kind == "source")


def build(spec: str | os.PathLike, model: str | None = None, input: str | None = None):
    """Check a spec and instantiate one of its models as a ``torch.nn.Module`` (imports torch).

    ``spec`` is spec text or a file, as for :func:`compile_spec`; ``model`` names the model to
    build, by default the file's first. Raises SpecError for a spec with errors, ValueError
    for a model name the spec does not define, and MemoryError for weights beyond this machine's
    memory.
    """
    from nndsl.backends.torch_module import class_names, load_module

    program = _checked(spec, input).program
    names = [m.name for m in program.models]
    if not names:
        raise ValueError("the spec defines no model")
    if model is not None and model not in names:
        guess = close_matches(model, names, ignore_case=True)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise ValueError(f"the spec defines no model {model!r} (it defines {', '.join(names)}){hint}")
    namespace = load_module(program)
    chosen = program.model(model)
    try:
        return namespace[class_names(program)[chosen.name]]()
    except RuntimeError as exc:  # torch's allocator says RuntimeError
        if "allocate" not in str(exc):
            raise
        raise MemoryError(
            f"not enough memory for {chosen.name}'s {chosen.param_count:,} parameters "
            f"({chosen.param_count * 4:,} bytes as float32)"
        ) from None


def export_onnx(
    spec: str | os.PathLike,
    out: str | os.PathLike,
    model: str | None = None,
    weights: str | os.PathLike | None = None,
    opset: int | None = None,
    input: str | None = None,
    fold_batchnorm: bool = True,
    verify: bool = True,
):
    """Export one model of a spec to a verified ONNX file (needs nndsl[onnx]; torch too unless
    ``weights`` is a .safetensors file) and return its ``nndsl.export.ExportResult``.
    ``verify=False`` skips the verification (the result's ``verified`` is then None).

    Raises SpecError for errors in the spec or positioned export errors (a layer with no ONNX
    equivalent, weights that do not fit, a failed verification), ``nndsl.export.ExportFailure``
    for the rest (a missing package, an unreadable weights file, an opset out of range).
    """
    from nndsl import export as onnx_export
    from nndsl.targets import target

    program = _checked(spec, input).program
    chosen = onnx_export.models_to_export(program, model)
    if not chosen:
        raise ValueError("the spec defines no model")
    try:
        return target("onnx").load()(
            program,
            chosen[0],
            os.fspath(out),
            None if weights is None else os.fspath(weights),
            DEFAULT_OPSET if opset is None else opset,
            fold_batchnorm,
            verify=verify,
        )
    except onnx_export.ExportDiagnostics as exc:
        raise SpecError(exc.diagnostics) from None
