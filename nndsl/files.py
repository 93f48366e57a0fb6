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

from nndsl.atomic import replace_atomically


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
            raise OutputRefused(f"{shown} of this command; choose another output path")
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
    if existing is not None and not stat.S_ISREG(existing.st_mode):  # /dev/null, a FIFO
        return _write_into(target, write)

    def write_keeping_mode(temporary: str):
        result = write(temporary)  # a new file gets the mode a plain open() gives it
        if existing is not None:
            os.chmod(temporary, stat.S_IMODE(existing.st_mode))
            if os.geteuid() == 0 and (existing.st_uid, existing.st_gid) != (0, 0):
                os.chown(temporary, existing.st_uid, existing.st_gid)
        return result

    return replace_atomically(target, write_keeping_mode)


def _write_into(target: str, write):
    """A destination that is not a regular file is never renamed over: the content is made in a
    temporary directory, then written into it, as the shell's > does."""
    with tempfile.TemporaryDirectory() as directory:
        temporary = os.path.join(directory, "output")
        result = write(temporary)
        with open(temporary, "rb") as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
    return result


def spec_files(program) -> list[str]:
    """The spec files a checked program was read from: its own and every file it imports (for
    blocks or for constants alone)."""
    own = [] if program.source.name.startswith("<") else [program.source.name]
    return own + [path for path in program.imported if path not in own]
