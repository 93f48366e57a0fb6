"""The checker's diagnostics as LSP diagnostics: the CLI's codes, spans, messages, labels, help and
notes; secondary labels and notes naming a position become related information.

A diagnostic located in an imported file (an error inside an imported block, for the use that
reached it) is published on the file being edited: at that use when a note names it, else at the
import statement that reads the file; its related information points at the place in the other
file. It is also published on the imported file itself, at its own span (``elsewhere``), with a
related location at the use: a file of blocks alone checks nothing (its blocks are checked where
models use them), so this is where its mistakes show while it is edited. Quick fixes travel in
each diagnostic's ``data`` (see nndsl.lsp.fixes).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from lsprotocol import types as lsp

from nndsl import ast
from nndsl.api import Result
from nndsl.check.loading import LoadedFile
from nndsl.diagnostics import Diagnostic, Severity, Span
from nndsl.lsp.fixes import quick_fixes
from nndsl.lsp.positions import UTF16, LineIndex
from nndsl.source import Source

SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.NOTE: lsp.DiagnosticSeverity.Information,
}
_AT = re.compile(r"^in the use of (.+) at (.+):(\d+):(\d+)$")


def file_uri(path: str) -> str:
    from pathlib import Path

    return Path(os.path.abspath(path)).as_uri()


def to_range(index: LineIndex, span: Span) -> lsp.Range:
    (l0, c0), (l1, c1) = index.position(span.start), index.position(max(span.start, span.end))
    return lsp.Range(lsp.Position(l0, c0), lsp.Position(l1, c1))


class Converter:
    """Converts one check's diagnostics for the document ``uri`` (whose text ``result`` read)."""

    def __init__(
        self, uri: str, result: Result, encoding: str = UTF16, uri_of: Callable[[str], str] | None = None
    ) -> None:
        self.uri = uri
        self._uri_of_real = uri_of or file_uri  # a real path -> its URI (an open document's, if any)
        self.result = result
        self.encoding = encoding
        self.index = LineIndex.of(result.source, encoding)
        self._indexes: dict[int, LineIndex] = {id(result.source): self.index}
        self._files: dict[int, LoadedFile] = {}  # id(source) -> the imported file it is
        self._via: dict[int, int] = {}  # id(source) -> which import of the spec reads it
        imports = [i for i in result.module.items if isinstance(i, ast.Import)] if result.module else []
        if result.loaded is not None:
            for n, first in enumerate(result.loaded.imports):
                stack = [first]
                while stack:
                    item = stack.pop()
                    if isinstance(item, LoadedFile) and id(item.source) not in self._files:
                        self._files[id(item.source)] = item
                        self._via.setdefault(id(item.source), n)
                        stack.extend(item.imports)
        self._imports = imports

    def index_of(self, source: Source) -> LineIndex:
        index = self._indexes.get(id(source))
        if index is None:
            index = self._indexes[id(source)] = LineIndex.of(source, self.encoding)
        return index

    def uri_of(self, source: Source) -> str:
        if source is self.result.source:
            return self.uri
        loaded = self._files.get(id(source))
        if loaded is not None and loaded.real:
            return self._uri_of_real(loaded.real)
        return file_uri(source.name)

    def location(self, source: Source, span: Span) -> lsp.Location:
        return lsp.Location(self.uri_of(source), to_range(self.index_of(source), span))

    def convert(self, diag: Diagnostic) -> lsp.Diagnostic:
        """The diagnostic for the edited file: where it is, or (located in an imported file) at the
        use or import that reached it."""
        if diag.source is self.result.source:
            return self.native(diag)
        line, col = diag.line_col
        where = f"{diag.source.name}:{line}:{col}"
        inner = self.location(diag.source, diag.span)
        related = [lsp.DiagnosticRelatedInformation(inner, diag.label or diag.message)]
        related += [
            lsp.DiagnosticRelatedInformation(self.location(diag.source, label.span), label.message)
            for label in diag.secondary
        ]
        lines = [diag.message, f"in {where}" + (f": {diag.label}" if diag.label else "")]
        return self._build(diag, self._anchor(diag), self.index, lines, related, None)

    def native(self, diag: Diagnostic) -> lsp.Diagnostic:
        """The diagnostic in the coordinates of the file it is located in, with its quick fixes."""
        related = [
            lsp.DiagnosticRelatedInformation(self.location(diag.source, label.span), label.message)
            for label in diag.secondary
        ]
        lines = [diag.message + (f" ({diag.label})" if diag.label else "")]
        fixes = quick_fixes(diag, self.result.module) if diag.source is self.result.source else []
        data = {"fixes": [[f.title, f.span.start, f.span.end, f.text, f.preferred] for f in fixes]} if fixes else None
        return self._build(diag, diag.span, self.index_of(diag.source), lines, related, data)

    def _build(self, diag, span, index, lines, related, data) -> lsp.Diagnostic:
        for note in diag.notes:
            at = self._note_place(note)
            if at is not None:
                related.append(lsp.DiagnosticRelatedInformation(at, note))
            else:
                lines.append(f"note: {note}")
        if diag.help:
            lines.append(f"help: {diag.help}")
        return lsp.Diagnostic(
            range=to_range(index, span),
            message="\n".join(lines),
            severity=SEVERITY[diag.severity],
            code=diag.code,
            source="nndsl",
            related_information=related or None,
            data=data,
        )

    def elsewhere(self) -> dict[str, list[lsp.Diagnostic]]:
        """The diagnostics located in imported files, in those files' coordinates, by their URI."""
        out: dict[str, list[lsp.Diagnostic]] = {}
        for diag in self.result.diagnostics:
            if diag.source is not self.result.source and id(diag.source) in self._files:
                out.setdefault(self.uri_of(diag.source), []).append(self.native(diag))
        return out

    def _note_place(self, note: str) -> lsp.Location | None:
        """The place a note such as ``in the use of B(8) at main.nn:3:5`` names, if it is a file's."""
        found = _AT.match(note)
        if found is None:
            return None
        name, line, col = found.group(2), int(found.group(3)), int(found.group(4))
        source = self._source_named(name)
        if source is None:
            return None
        offset = _offset(source, line, col)
        return lsp.Location(self.uri_of(source), to_range(self.index_of(source), Span(offset, offset)))

    def _source_named(self, name: str) -> Source | None:
        if name == self.result.source.name:
            return self.result.source
        for loaded in self._files.values():
            if loaded.source.name == name:
                return loaded.source
        return None

    def _anchor(self, diag: Diagnostic) -> Span:
        """Where in the edited file a diagnostic of an imported file shows: the use a note names,
        else the import that reads the file, else the file's start."""
        for note in diag.notes:
            found = _AT.match(note)
            if found and found.group(2) == self.result.source.name:
                offset = _offset(self.result.source, int(found.group(3)), int(found.group(4)))
                return _use_span(self.result, offset)
        n = self._via.get(id(diag.source))
        if n is not None and n < len(self._imports):
            return self._imports[n].span
        return Span(0, 0)

    def all(self) -> list[lsp.Diagnostic]:
        return [self.convert(d) for d in self.result.diagnostics]


def _offset(source: Source, line: int, col: int) -> int:
    text = source.text
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return len(text)
    return min(start + col - 1, len(text))


def _use_span(result: Result, offset: int) -> Span:
    """The span of the block use starting at ``offset`` (its whole call), else the name there."""
    from nndsl.ir import walk

    for model in result.program.models if result.program else ():
        for node in walk(model.graph, into_blocks=False):
            if node.span.start == offset:
                return node.span
    text = result.source.text
    end = offset
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return Span(offset, end)


def convert(uri: str, result: Result, encoding: str = UTF16) -> list[lsp.Diagnostic]:
    """Every diagnostic of ``result`` for the document at ``uri``."""
    return Converter(uri, result, encoding).all()
