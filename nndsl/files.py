"""Writing output files: atomically (a temporary file beside the destination, renamed over it, so
a failure or a check that rejects what was written never leaves a partial file), and never over
a file the command reads nor over a file the user could not have written with the shell's ``>``.

Rules for an existing destination (docs/onnx.md, "Output files"):

- the same file as an input (a spec, an imported spec, a weights file), however it is named
  (a symbolic or hard link, ``./`` or ``..`` in the path), is refused;
- a file the user may not write (``os.access``), or one with no write bit at all, is refused;
  the second rule holds for root too, who bypasses permissions: a file marked read-only is kept;
- otherwise it is replaced keeping its mode (and, for root, its owner and group); a symbolic
  link is written through, as ``>`` does, so the link stays and its target gets the new content;
  a destination that is not a regular file (``/dev/null``, a FIFO) is written into once the
  content is complete, never renamed over.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable


class OutputRefused(OSError):
    """The destination may not be written; ``strerror`` says why (callers print it as for any OSError)."""

    def __init__(self, reason: str):
        super().__init__(errno.EPERM, reason)


def check_output(path: str, inputs: Iterable[str] = ()) -> None:
    """Raise OutputRefused (or IsADirectoryError) when ``path`` may not be written; see the module."""
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    if not os.path.exists(target):
        return
    for name in inputs:
        try:
            same = os.path.samefile(target, name)
        except (OSError, ValueError):
            continue
        if same:
            shown = (
                "it is the input"
                if os.path.abspath(name) == os.path.abspath(path)
                else f"it is the same file as {name}, an input"
            )
            raise OutputRefused(f"{shown} of this command; choose another output path with -o")
    if not os.access(target, os.W_OK) or not os.stat(target).st_mode & 0o222:
        raise OutputRefused(
            "it exists and is read-only (the shell's > would refuse it too); remove it or choose another path"
        )


def write_atomically(path: str, write, inputs: Iterable[str] = ()):
    """``write(temporary path)`` beside ``path``, then the file renamed over it (see the module for
    which destinations are refused, and with which mode the file ends up). Nothing is left behind
    when ``write`` raises (an OSError, or the verdict of a check it runs on what it wrote).
    Returns what ``write`` returns."""
    check_output(path, inputs)
    target = os.path.realpath(path)
    existing = os.stat(target) if os.path.exists(target) else None
    special = existing is not None and not stat.S_ISREG(existing.st_mode)  # /dev/null, a FIFO
    directory = None if special else (os.path.dirname(target) or ".")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        result = write(tmp)
        if special:  # never renamed over: written into, as the shell's > does
            with open(tmp, "rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
        elif existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))
            if os.geteuid() == 0 and (existing.st_uid, existing.st_gid) != (0, 0):
                os.chown(tmp, existing.st_uid, existing.st_gid)
        else:  # mkstemp makes the file private (0600); give it the mode a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if not special:
            os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return result


def spec_files(program) -> list[str]:
    """The spec files a checked program was read from: its own and every file it imports (for
    blocks or for constants alone)."""
    own = [] if program.source.name.startswith("<") else [program.source.name]
    return own + [path for path in program.imported if path not in own]
