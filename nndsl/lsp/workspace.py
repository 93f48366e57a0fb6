"""The open documents and their checks: one FileCache shared by every check, every open buffer's
text standing in for its file, so that files importing each other see unsaved edits; which open
documents need checking again when one of them or a file on disk changes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from urllib.parse import unquote, urlparse

from nndsl.api import Result, check_source
from nndsl.check.loading import FileCache, LoadedFile
from nndsl.lsp.positions import UTF16, LineIndex


def uri_path(uri: str) -> str | None:
    """The file system path of a ``file:`` URI, None for another scheme (an unsaved, nameless buffer)."""
    parts = urlparse(uri)
    if parts.scheme != "file":
        return None
    path = unquote(parts.path)
    if os.name == "nt" and path.startswith("/") and path[2:3] == ":":
        path = path[1:]
    return os.path.normpath(path)


def imported_files(loaded: LoadedFile | None) -> set[str]:
    """The real paths of every file a check read through imports, transitively."""
    seen: set[str] = set()
    stack = list(loaded.imports) if loaded is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, LoadedFile) and item.real is not None and item.real not in seen:
            seen.add(item.real)
            stack.extend(item.imports)
    return seen


class Document:
    """One open buffer: its text, version, path, and its last successful check."""

    def __init__(self, uri: str, text: str, version: int | None, encoding: str = UTF16) -> None:
        self.uri = uri
        self.encoding = encoding
        self.path = uri_path(uri)
        self.real = os.path.realpath(self.path) if self.path is not None else None
        self.text = text
        self.version = version
        self.result: Result | None = None  # the last check that ran to its end
        self.checked_text: str | None = None  # the text that check read
        self.index = LineIndex(text, encoding)
        self.imports: set[str] = set()  # real paths its last check read through imports

    @property
    def name(self) -> str:
        """The name checks report it under: its path, else ``<uri>`` (a name that is no file)."""
        return self.path if self.path is not None else f"<{self.uri}>"

    def set_text(self, text: str, version: int | None) -> None:
        self.text = text
        self.version = version
        self.index = LineIndex(text, self.encoding)


Checker = Callable[..., Result]


class Workspace:
    """The open documents, the shared FileCache, and the checks: ``check`` runs one document's
    check (an internal error propagates to the caller, the document keeping its last result)."""

    def __init__(self, checker: Checker = check_source) -> None:
        self.files = FileCache()
        self.documents: dict[str, Document] = {}
        self.checker = checker
        self.encoding = UTF16  # of LSP positions' columns, as the client and the server agreed

    def open(self, uri: str, text: str, version: int | None = None) -> Document:
        doc = self.documents[uri] = Document(uri, text, version, self.encoding)
        if doc.path is not None:
            self.files.set_text(doc.path, text)
        return doc

    def change(self, uri: str, text: str, version: int | None = None) -> Document:
        doc = self.documents.get(uri)
        if doc is None:
            return self.open(uri, text, version)
        doc.set_text(text, version)
        if doc.path is not None:
            self.files.set_text(doc.path, text)
        return doc

    def close(self, uri: str) -> None:
        doc = self.documents.pop(uri, None)
        if doc is not None and doc.path is not None:
            self.files.set_text(doc.path, None)  # its file on disk counts again

    def get(self, uri: str) -> Document | None:
        return self.documents.get(uri)

    def uri_of(self, real: str) -> str:
        """The URI of the file at a real path: the open document's (as the editor names it, a
        link perhaps), else a ``file:`` URI of the path."""
        for uri, doc in self.documents.items():
            if doc.real == real:
                return uri
        from pathlib import Path

        return Path(real).as_uri()

    def check(self, uri: str) -> Result:
        """Check an open document now; its result is kept for hover, hints and navigation."""
        doc = self.documents[uri]
        text = doc.text
        result = self.checker(text, doc.name, files=self.files)
        doc.result, doc.checked_text = result, text
        doc.imports = imported_files(result.loaded)
        return result

    def result(self, uri: str) -> Result | None:
        """The document's result for its current text, checking it first if it changed since."""
        doc = self.documents.get(uri)
        if doc is None:
            return None
        if doc.result is None or doc.checked_text != doc.text:
            try:
                self.check(uri)
            except Exception:  # the caller answers from the last good result
                pass
        return doc.result

    def affected(self, uri: str) -> list[str]:
        """The open documents to check again after ``uri`` changed: itself first, then those
        that import it, directly or through other files."""
        doc = self.documents.get(uri)
        if doc is None:
            return []
        out = [uri]
        if doc.real is not None:
            out += self.importers([doc.real], skip=uri)
        return out

    def importers(self, reals: Iterable[str], skip: str | None = None) -> list[str]:
        """The open documents whose last check read one of these files (real paths) through imports."""
        changed = set(reals)
        return [u for u, d in self.documents.items() if u != skip and d.imports & changed]

    def files_changed(self, paths: Iterable[str]) -> list[str]:
        """Files on disk changed (created, edited, deleted): the open documents to check again,
        those that import one of them and those whose imports failed (a file may have appeared)."""
        reals = {os.path.realpath(p) for p in paths}
        out = self.importers(reals)
        for u, d in self.documents.items():
            if u not in out and d.result is not None and any(x.code == "E116" for x in d.result.diagnostics):
                out.append(u)
        return out
