"""The state one file's check runs in, passed to every part of the checker, and its diagnostics."""

from __future__ import annotations

import itertools

from nndsl import ast, shapes
from nndsl.check.common import INT64_MAX, ITEMSIZE, Abort, producer_label
from nndsl.check.loading import Imports, LoadedFile
from nndsl.check.values import BlockDef, ModelState, Scope, Tensor
from nndsl.diagnostics import Diagnostic, DiagnosticSink, Label, Severity, Span
from nndsl.layers.base import Context as LayerContext
from nndsl.shapes import Dim, Sym, TensorType
from nndsl.source import Source


class Context(LayerContext):
    """One file being checked: its constants and blocks, the model being checked (shared with
    the files whose blocks it uses), and where diagnostics go. Layer rules see it as their
    :class:`nndsl.layers.base.Context`."""

    def __init__(self, file: LoadedFile, sink: DiagnosticSink, imports: Imports, checked: dict[str, Context]):
        self.file = file  # the file being checked, with what its imports resolved to
        self.source: Source = file.source
        self.sink = sink
        self.imports = imports  # the files read through imports in this run
        self.checked = checked  # the imported files checked so far in this run, by real path
        # the file's own definitions
        self.constants: dict[str, object] = {}
        self.constant_spans: dict[str, Span] = {}
        self.broken_constants: set[str] = set()  # defined, but their value had an error
        self.blocks: dict[str, BlockDef] = {}
        self.block_spans: dict[str, Span] = {}
        self.used_blocks: set[str] = set()
        self.broken_names: set[str] = set()  # imported names whose import failed (already reported)
        self.limited = False  # a work or depth limit stopped checking a model
        # per-model state (shared with the files whose blocks the model uses: see share)
        self.state: ModelState | None = None
        self.node_ids = itertools.count()  # the ids of the nodes of this file's models
        self.bindings: dict[Sym, Dim] = {}
        self.used_names: set[str] = set()
        self.instantiating: list[tuple[str, Span, Source]] = []  # the block uses being checked
        self.reported: set = set()  # (file, code, offset) of errors inside blocks, reported once
        # what is being checked now
        self.scope: Scope | None = None
        self.current: ast.Call | None = None
        self.current_arg_spans: dict[str, Span] = {}  # where the current call wrote each argument
        # where the current input came from: (span, "input"/"output", its type); the label
        # text is only formatted when a diagnostic needs it
        self.producer: tuple[Span, str, TensorType] | None = None

    def begin_model(self) -> None:
        """Fresh per-model state, for a model (or a train section, outside every model)."""
        self.bindings = {}
        self.used_names = set()
        self.producer = None
        self.state = ModelState(self.node_ids)
        self.instantiating.clear()

    def share(self, other: Context) -> None:
        """Check a block of this file inside a model of ``other``: share its per-model state."""
        self.state = other.state
        self.bindings = other.bindings
        self.used_names = other.used_names
        self.reported = other.reported
        self.instantiating = other.instantiating

    # ------------------------------------------------------------ diagnostics

    def diag(self, severity, code, message, span, label="", secondary=(), help=None, notes=()):
        # a block used many times, or a loop body run many times, reports a mistake once
        key = (self.source.name, code, span.start)
        if key in self.reported:
            return
        self.reported.add(key)
        if self.instantiating:
            name, use, where = self.instantiating[0]
            if where is self.source:
                secondary = (*secondary, Label(use, f"in this use of {name}"))
            else:
                line, col = where.line_col(use.start)
                notes = (*notes, f"in the use of {name} at {where.name}:{line}:{col}")
        self.sink.add(
            Diagnostic(severity, code, message, self.source, span, label, tuple(secondary), help, tuple(notes))
        )

    def error(self, code, message, span, label="", secondary=(), help=None):
        self.diag(Severity.ERROR, code, message, span, label, secondary, help)

    def kind_error(self, message, span, label="", help=None):
        self.error("E114", message, span, label, help=help)
        raise Abort

    def producer_labels(self) -> tuple[Label, ...]:
        return () if self.producer is None else (producer_label(*self.producer),)

    def text(self, span: Span) -> str:
        """The spec's text at ``span``, on one line."""
        return " ".join(self.source.text[span.start : span.end].split())

    def line(self, span: Span) -> int:
        return self.source.line_col(span.start)[0]

    def poisoned(self, span: Span) -> Tensor:
        """A tensor lost to an error already reported: what follows from it is not an error again."""
        self.state.poisoned = True
        return Tensor(-1, None, span, "output", self.source)

    def fits(self, t: TensorType, span: Span) -> bool:
        """A tensor whose known sizes need more than 2**63 - 1 bytes (torch's storage limit, which
        no backend goes beyond) is E119; symbolic sizes count as 1."""
        total = ITEMSIZE.get(t.dtype, 4)
        for d in t.shape.dims:
            if isinstance(d, int) and d > 0:
                total *= d
        if total <= INT64_MAX:
            return True
        self.error(
            "E119",
            f"a tensor of shape {t.shape} ({t.dtype}) needs more than 2**63 bytes: no backend can hold it",
            span,
            "too large",
        )
        return False

    # ------------------------------------------------------------ what layer rules ask

    def require_equal(self, have, want, message, label, help=None, bind_help=None):
        have = shapes.substitute(have, self.bindings)  # a symbol fixed earlier in this layer counts
        verdict = shapes.known_equal(have, want)
        if verdict:
            return
        if verdict is False:
            self.error("E201", message, self.current.span, label, self.producer_labels(), help)
            return
        symbol = shapes.single_symbol(have)
        if symbol is not None and isinstance(want, int):
            self.bindings[symbol] = want
            if not symbol.free:
                # A declared symbol says "any size"; a layer that needs one size narrows the
                # model to it, which is worth a warning rather than silence.
                self.diag(
                    Severity.WARNING,
                    "W303",
                    f"{self.current.name.text} fixes the input's {symbol} to {want}: "
                    f"the model only accepts {symbol} = {want}",
                    self.current.span,
                    f"needs {symbol} = {want}",
                    self.producer_labels(),
                    bind_help or f"if {symbol} is meant to be {want}, write {want} in the input declaration",
                )
            return
        self.diag(
            Severity.WARNING,
            "W301",
            f"cannot verify statically that {have} equals {want}",
            self.current.span,
            f"needs {have} == {want}",
            self.producer_labels(),
        )

    def note(self, code, message, help=None):
        self.diag(Severity.NOTE, code, message, self.current.span, "", (), help)

    def warn(self, code, message, help=None, param=None):
        span = self.current_arg_spans.get(param, self.current.span) if param else self.current.span
        self.diag(Severity.WARNING, code, message, span, "", (), help)

    def fresh(self, hint):
        name, i = hint, 1
        while name in self.used_names:
            i += 1
            name = f"{hint}{i}"
        self.used_names.add(name)
        return shapes.sym(name, free=True)
