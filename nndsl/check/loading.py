"""Imports, before checking: every file a spec imports, resolved, read and parsed once per run;
with a FileCache, read and parsed again only when it changed (an editor's session)."""

from __future__ import annotations

import os
from typing import NamedTuple, Union

from nndsl import ast, reading
from nndsl.diagnostics import Diagnostic
from nndsl.reading import UndecodableError, decode, printable, read_file
from nndsl.source import Source

#: how many files deep imports may nest (a.nn imports b.nn, which imports c.nn, ...)
MAX_IMPORT_DEPTH = 64


class Refusal(NamedTuple):
    """An import that cannot be made: its E116, reported at the path in the import statement."""

    message: str
    label: str
    help: str | None = None


class LoadedFile:
    """A spec file and what each of its imports resolved to, in the order it writes them."""

    def __init__(
        self, real: str | None, source: Source, module: ast.Module, syntax_errors: tuple[Diagnostic, ...] = ()
    ) -> None:
        self.real = real  # its real path; None for the spec itself when it is no file
        self.source = source
        self.module = module
        self.syntax_errors = syntax_errors  # reported where the checker first reaches an import of it
        self.imports: tuple[Resolved, ...] = ()  # one per ast.Import item of the module, in order


Resolved = Union[LoadedFile, Refusal]


class FileCache:
    """What several runs read through imports, kept between them: a file is read again only
    when its size or modification time changed, and parsed again only when its text did. The
    text of an open, unsaved editor buffer stands in for its file (``set_text``)."""

    def __init__(self) -> None:
        self._overlay: dict[str, bytes] = {}  # real path -> an editor buffer's text, as UTF-8
        self._read: dict[str, tuple[tuple[int, int, int], bytes]] = {}  # real path -> (stat key, bytes)
        #: a file's name -> the parse of its last text (``Source.text`` is that text)
        self._parsed: dict[str, tuple[Source, ast.Module, tuple[Diagnostic, ...]]] = {}
        self.reads = 0  # files read from disk, for tests of the cache
        self.parses = 0  # texts parsed

    def set_text(self, path: str, text: str | None) -> None:
        """An editor buffer's text for the file at ``path``; None when the buffer is closed
        (its file on disk counts again)."""
        real = os.path.realpath(path)
        if text is None:
            self._overlay.pop(real, None)
        else:
            self._overlay[real] = text.encode("utf-8", "surrogatepass")

    def read(self, path: str, real: str) -> bytes:
        """The bytes of the spec at ``path``: its buffer's, else the file's (read when it changed).
        Raises OSError as ``reading.read_file`` does."""
        buffer = self._overlay.get(real)
        if buffer is not None:
            return buffer
        try:
            st = os.stat(path)
        except OSError:
            self._read.pop(real, None)
            return read_file(path)  # raises the error the user sees
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        kept = self._read.get(real)
        if kept is not None and kept[0] == key:
            return kept[1]
        data = read_file(path)
        self.reads += 1
        self._read[real] = (key, data)
        return data

    def parse(self, name: str, text: str) -> tuple[Source, ast.Module, tuple[Diagnostic, ...]]:
        """The parse of a file's text, kept while its text stays the same."""
        from nndsl.syntax import parse_recovering

        kept = self._parsed.get(name)
        if kept is None or kept[0].text != text:
            source = Source(name, text)
            module, errors = parse_recovering(source)
            self.parses += 1
            kept = self._parsed[name] = (source, module, tuple(errors))
        return kept


class Imports:
    """The files one run reads through imports, by real path: each is read and parsed once
    however often it is imported."""

    def __init__(self, size: int, cache: FileCache | None = None) -> None:
        self.files: dict[str, LoadedFile] = {}  # real path -> the file, in the order loading them ended
        self.failed: dict[str, str] = {}  # real path -> why it cannot be imported
        self.active: set[str] = set()  # files being imported now, to refuse a cycle
        self.size = size  # bytes read so far
        self.cache = cache  # reads and parses kept from earlier runs, if any


def load(module: ast.Module, source: Source, cache: FileCache | None = None) -> tuple[LoadedFile, Imports]:
    """The spec and every file it imports, transitively; the path of a spec that is a file
    (its source's name) is where its imports resolve, else the working directory. ``cache``
    keeps reads and parses of imported files from run to run."""
    imports = Imports(len(source.text), cache)  # the spec counts towards what one run reads
    path = None if source.name.startswith("<") else source.name
    real = None
    if path is not None:
        real = os.path.realpath(path)
        imports.active.add(real)
    spec = LoadedFile(real, source, module)
    spec.imports = _resolve_all(module, path, imports)
    return spec, imports


def _resolve_all(module: ast.Module, path: str | None, imports: Imports) -> tuple[Resolved, ...]:
    return tuple(_resolve(item, path, imports) for item in module.items if isinstance(item, ast.Import))


def _resolve(item: ast.Import, importer: str | None, imports: Imports) -> Resolved:
    """The file an import names, read and parsed (its own imports in turn), or why it cannot be."""
    from nndsl.syntax import parse_recovering  # the parser, only for a spec that imports

    written = item.path.value
    shown = printable(written)

    def refuse(reason: str, help: str | None = None, verb: str = "import") -> Refusal:
        return Refusal(f"cannot {verb} '{shown}': {reason}", "imported here", help)

    if "\0" in written:
        return refuse("the path contains a NUL character")
    if not written.endswith(".nn"):
        return refuse("imports read .nn spec files only", help='name a spec file, e.g. from "blocks.nn" import B')
    base = os.path.dirname(importer) if importer is not None else os.getcwd()
    path = os.path.normpath(os.path.join(base, written))
    real = os.path.realpath(path)
    if not real.endswith(".nn"):  # a link to a file that is not a spec
        return refuse("imports read .nn spec files only")
    if real in imports.active:
        return Refusal(f"'{shown}' imports itself, directly or through other files", "")
    if real in imports.failed:
        return refuse(imports.failed[real], verb="read")
    if real in imports.files:
        return imports.files[real]
    if len(imports.active) >= MAX_IMPORT_DEPTH:
        return refuse(f"imports are nested more than {MAX_IMPORT_DEPTH} files deep")
    try:
        data = read_file(path) if imports.cache is None else imports.cache.read(path, real)
    except OSError as exc:
        imports.failed[real] = exc.strerror or "cannot read it"
        return refuse(imports.failed[real], verb="read")
    imports.size += len(data)
    if len(data) > reading.MAX_SPEC_SIZE or imports.size > reading.MAX_IMPORTED_SIZE:
        one = len(data) > reading.MAX_SPEC_SIZE
        what = "the file exceeds" if one else "the spec and the files it imports exceed"
        limit = reading.MAX_SPEC_SIZE if one else reading.MAX_IMPORTED_SIZE
        imports.failed[real] = f"{what} {limit:,} bytes, the most nndsl reads"
        return refuse(imports.failed[real], verb="read")
    try:
        text = decode(data)
    except UndecodableError as exc:
        imports.failed[real] = str(exc)  # where, never what: the bytes are not shown
        return refuse(imports.failed[real], verb="read")
    if imports.cache is None:
        source = Source(printable(path), text)
        module, syntax_errors = parse_recovering(source)
    else:
        source, module, syntax_errors = imports.cache.parse(printable(path), text)
    # what an import needs: the file's constants and blocks; its models are its own business
    wanted = tuple(i for i in module.items if isinstance(i, (ast.Let, ast.Import, ast.Block)))
    loaded = LoadedFile(real, source, module._replace(items=wanted), tuple(syntax_errors))
    imports.active.add(real)
    try:
        loaded.imports = _resolve_all(loaded.module, path, imports)
    finally:
        imports.active.discard(real)
    imports.files[real] = loaded
    return loaded
