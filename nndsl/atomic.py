"""Replacing a file atomically: written to a temporary file beside it, then renamed over it
(standard library only, so that generated training scripts can hold a copy of it)."""

import contextlib
import os


def replace_atomically(path, write, durable=False):
    """Call write(temporary) for a temporary file beside path, then rename it over path: a
    crash, a full disk or an exception from write leaves the previous file whole and no
    temporary behind. durable: on the disk itself before the rename (fsync). Returns what
    write returns."""
    # named by the process id, unique among running processes; open() applies the umask
    name = f".{os.path.basename(path)}.{os.getpid()}.tmp"
    temporary = os.path.join(os.path.dirname(path), name)
    try:
        result = write(temporary)
        if durable:
            with open(temporary, "rb+") as file:
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    return result
