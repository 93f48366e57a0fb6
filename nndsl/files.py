"""Writing output files atomically: a temporary file beside the destination, renamed over it,
so a failure (or a check that rejects what was written) never leaves a partial file."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path: str, write):
    """``write(temporary path)`` beside ``path``, then the file renamed over ``path`` with the mode
    a plain open() would give. Nothing is left behind when ``write`` raises (an OSError, or the
    verdict of a check it runs on what it wrote). Returns what ``write`` returns."""
    if os.path.isdir(path):
        raise IsADirectoryError(21, "is a directory")
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        result = write(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return result
