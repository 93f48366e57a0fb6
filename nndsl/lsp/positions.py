"""Offsets into a text (Python ``str`` indices, code points) and LSP positions: a 0-based line and
a column in the units the client and server agreed on (UTF-16 by default, as LSP has it; UTF-8
or UTF-32 when the client prefers them)."""

from __future__ import annotations

import bisect

from nndsl.source import Source, line_starts

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"


def _width(ch: str, encoding: str) -> int:
    """How many units of ``encoding`` one code point takes."""
    if encoding == UTF32:
        return 1
    code = ord(ch)
    if encoding == UTF16:
        return 2 if code > 0xFFFF else 1
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


class LineIndex:
    """A text's line starts, converting code-point offsets to and from (line, column in units)."""

    __slots__ = ("text", "starts", "encoding")

    def __init__(self, text: str, encoding: str = UTF16, starts: tuple[int, ...] | None = None) -> None:
        self.text = text
        self.encoding = encoding if encoding in (UTF8, UTF32) else UTF16
        self.starts = line_starts(text) if starts is None else starts

    @classmethod
    def of(cls, source: Source, encoding: str = UTF16) -> LineIndex:
        """The index of a checked source's text, from the line starts the source already holds."""
        return cls(source.text, encoding, source.line_starts)

    def position(self, offset: int) -> tuple[int, int]:
        """The 0-based line and column of a code-point offset (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        piece = self.text[start:offset]
        if piece.isascii() or self.encoding == UTF32:
            return line, len(piece)
        return line, sum(_width(ch, self.encoding) for ch in piece)

    def offset(self, line: int, character: int) -> int:
        """The code-point offset of a 0-based line and column (clamped to the line's end)."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        start = self.starts[line]
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        text = self.text[start:end]
        if text.isascii() or self.encoding == UTF32:
            return start + min(max(character, 0), len(text))
        units = 0
        for i, ch in enumerate(text):
            if units >= character:
                return start + i
            units += _width(ch, self.encoding)
        return end
