"""Source text of one spec file and the mapping from offsets to line/column."""

from __future__ import annotations

import bisect


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped, for a message: a file
    name may hold terminal escape sequences."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def line_starts(text: str) -> tuple[int, ...]:
    """The offset at which each line of ``text`` starts (the first is 0)."""
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return tuple(starts)


class Source:
    """A spec's text and the name it is reported under (a path, or ``<string>``)."""

    __slots__ = ("name", "text", "_line_starts")

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self._line_starts = line_starts(text)

    def __repr__(self) -> str:
        return f"Source({self.name!r}, <{len(self.text)} characters>)"

    @property
    def line_starts(self) -> tuple[int, ...]:
        """The offset at which each line starts."""
        return self._line_starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        text = self.text[start:] if end == -1 else self.text[start:end]
        return text.rstrip("\r")
