"""Reading spec text safely: regular files only, a size limit, strict UTF-8.

A spec path may come from a spec itself (``from "../x.nn" import B``), so reading one must not
block (a FIFO), run out of memory (``/dev/zero``) or fail on a strange name (a NUL character).
Decoding is strict: a byte that is not UTF-8 is reported with its offset and line.
"""

from __future__ import annotations

import errno
import os
import stat

from nndsl.diagnostics import Diagnostic, Severity, Span
from nndsl.source import Source, printable

#: the largest spec file (bytes) or spec text (characters) nndsl reads: a generous bound on a
#: hand-written spec (ResNet-50 is 3 KB) that keeps a run within seconds (parsing runs at about
#: 100,000 tokens a second) and about 130 MB of memory
MAX_SPEC_SIZE = 1024 * 1024
#: the most spec text one run reads, the spec and every file it imports together
MAX_IMPORTED_SIZE = MAX_SPEC_SIZE

_BOM = b"\xef\xbb\xbf"


class SpecReadError(OSError):
    """A path that cannot be read as a spec: missing, not a regular file, a NUL in its name."""


def read_file(path: str) -> bytes:
    """The bytes of a regular file, at most MAX_SPEC_SIZE + 1 of them (so that a larger file is
    seen to be larger without reading it all). Raises SpecReadError (an OSError)."""
    if "\0" in path:
        raise SpecReadError(errno.EINVAL, "the path contains a NUL character", printable(path))
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)  # POSIX only
    try:
        fd = os.open(path, flags)  # non-blocking: opening a FIFO must not wait for a writer
    except OSError as exc:
        raise SpecReadError(exc.errno or errno.EIO, exc.strerror or str(exc), printable(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise SpecReadError(errno.EISDIR, "is a directory, not a spec file", printable(path))
        if not stat.S_ISREG(mode):
            raise SpecReadError(errno.EINVAL, "not a regular file", printable(path))
        return read_limited(lambda n: os.read(fd, n))
    except SpecReadError:
        raise
    except OSError as exc:
        raise SpecReadError(exc.errno or errno.EIO, exc.strerror or str(exc), printable(path)) from None
    finally:
        os.close(fd)


def read_limited(read) -> bytes:
    """Call ``read(n)`` until it returns nothing or more than MAX_SPEC_SIZE bytes have come."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_SPEC_SIZE:
        chunk = read(min(1 << 20, MAX_SPEC_SIZE + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def too_large(name: str, what: str) -> Diagnostic:
    """E004 for a spec over the size limit (its text is not kept, so the message shows none)."""
    return Diagnostic(
        Severity.ERROR,
        "E004",
        f"the spec is larger than {MAX_SPEC_SIZE:,} {what}, the most nndsl reads",
        Source(name, ""),
        Span(0, 0),
        "too large",
        help="split it into files that import each other",
    )


class UndecodableError(ValueError):
    """Bytes that are not UTF-8: the message says where, without quoting them."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped). Raises UndecodableError naming the first bad byte."""
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + skip  # an offset into the file, as a hex editor shows it
        line = data.count(b"\n", 0, at) + 1
        raise UndecodableError(f"not UTF-8 text: byte 0x{data[at]:02x} at byte offset {at} (line {line})", at) from None


def source_from_bytes(data: bytes, name: str) -> tuple[Source, Diagnostic | None]:
    """The Source of a spec read as bytes, or a Source to point into and the diagnostic (E003,
    E004) that says why it cannot be checked."""
    if len(data) > MAX_SPEC_SIZE:
        return Source(name, ""), too_large(name, "bytes")
    try:
        return Source(name, decode(data)), None
    except UndecodableError as exc:
        skip = len(_BOM) if data.startswith(_BOM) else 0
        text = data[skip:].decode("utf-8", errors="replace")
        offset = len(data[skip : exc.offset].decode("utf-8"))  # the text before it is valid UTF-8
        source = Source(name, text)
        diag = Diagnostic(
            Severity.ERROR,
            "E003",
            str(exc),
            source,
            Span(offset, offset + 1),
            "not UTF-8",
            help="save the spec as UTF-8 text",
        )
        return source, diag
