"""``nndsl fmt``: one canonical layout for spec text, which never changes what the spec means.

The formatter works on the token stream, not on a printed AST: it writes the file's own tokens
in their own order, and decides only the white space between them (docs/fmt.md has the rules):

- spaces: one around binary operators, ``->``, a statement's ``=`` and keywords; none inside
  brackets, before ``,``/``:``, around a keyword argument's ``=``, after a unary ``-`` or ``~``, in a
  slice; one after ``,`` and after a parameter's ``:``;
- indentation: 4 spaces per ``{`` (model, block, for and train bodies); a continuation line
  starting with ``->`` is at its statement's indentation, or 4 deeper when the statement gives
  the chain a name (``x = a\\n    -> b``) or it is a keyword argument; any other continuation
  is 4 deeper; inside a bracket left open at the end of a line, 4 deeper than that line; inside
  one with an item after it on its line, aligned with that item;
- line breaks: the author's are kept (a chain broken where its meaning breaks stays so); a line
  longer than the width is broken before a ``->`` at its outer level, as late as fits;
- comments keep their text; a trailing comment keeps its column (aligned comments stay
  aligned), at least two spaces after the code (just two on a line the width broke); a
  comment line takes the indentation of the code after it;
- blank lines: runs become one; none after ``{`` or before ``}``; one after the ``}`` of a
  top-level definition;
- line endings: those of the file's first line (``\\r\\n`` or ``\\n``); one newline at the end.

Line breaks are only ever added before ``->`` and blank space only changed between tokens that
stay apart, so the tokens cannot change; the result is still checked: its tokens and comments
must be the input's, its AST (positions aside) the input's, and formatting it again must give
it back, or ``FormatError`` is raised and nothing is written.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass

from nndsl import ast
from nndsl.diagnostics import Diagnostic, Span

#: the default line width: the widest lines of specs/zoo are about 115 characters, and the
#: project's Python is 120 wide (pyproject.toml); at 120 every spec in the repository is canonical
DEFAULT_WIDTH = 120
INDENT = 4

_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")
_VALUE_KINDS = frozenset(("NAME", "INT", "FLOAT", "STRING"))
_NAMING = (ast.Let, ast.Setting, ast.Return, ast.Tie)  # statements whose chain follows a name


class FormatSyntaxError(Exception):
    """The text does not parse: ``diagnostics`` are those ``nndsl check`` reports for it."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics[0].message if diagnostics else "syntax error")
        self.diagnostics = diagnostics


class FormatError(Exception):
    """The layout would change the spec's tokens, comments or AST, or is not stable: a bug in
    the formatter, and the text is left as it is."""


@dataclass
class _Tok:
    kind: str
    text: str
    start: int
    index: int  # its place among the code tokens of the file


@dataclass
class _Line:
    """A line of the source: its code tokens, its comment (its original column) and whether a
    blank line came before it."""

    tokens: list[_Tok]
    comment: str | None = None
    comment_col: int = 0
    blank_before: bool = False


def _lex(text: str) -> list[tuple[str, str, int]]:
    """Every token of ``text`` (terminal, text, offset), blank space and comments included."""
    from nndsl.syntax.parser import _driver, _parser

    driver = _driver()
    found = driver.scan(text) if driver is not None else None
    if found is None:
        found = [(t.type, str(t), t.start_pos) for t in _parser().lex(text, dont_ignore=True)]
    return found


def _split_lines(text: str) -> tuple[list[_Line], list[_Tok]]:
    """The source's lines (without empty ones) and all its code tokens, in order."""
    lines: list[_Line] = []
    tokens: list[_Tok] = []
    current = _Line([])
    line_start = 0
    for kind, value, start in _lex(text):
        if kind == "COMMENT":
            current.comment = value.rstrip()
            current.comment_col = start - line_start
        elif not value.strip():
            newlines = value.count("\n")
            if newlines:
                lines.append(current)
                current = _Line([], blank_before=newlines > 1)
                line_start = start + value.rfind("\n") + 1
        else:
            token = _Tok(kind, value, start, len(tokens))
            tokens.append(token)
            current.tokens.append(token)
    lines.append(current)
    kept: list[_Line] = []
    blank = False
    for line in lines:
        if not line.tokens and line.comment is None:
            blank = True  # a line of blanks only (the file's first or last)
            continue
        line.blank_before = (line.blank_before or blank) and bool(kept)
        blank = False
        kept.append(line)
    return kept, tokens


def _ends_value(tok: _Tok | None) -> bool:
    """``tok`` can end an operand: a following ``-`` is binary, a ``(`` touching it a call."""
    return tok is not None and (tok.kind in _VALUE_KINDS or tok.text in (")", "]", "}", "..."))


def _statement_starts(module: ast.Module, tokens: list[_Tok]) -> dict[int, bool]:
    """Token index of the first token of every statement (top-level items, body statements,
    train settings) -> whether the statement names its value (``x = ...``, ``let``, ``return``)."""
    by_offset = {tok.start: tok.index for tok in tokens}
    starts: dict[int, bool] = {}

    def add(node, names: bool) -> None:
        index = by_offset.get(node.span.start)
        if index is None:
            return
        # a unary ``+`` is not in its operand's span; nothing else can come before a statement's
        # first token but the previous statement's last token or a ``{``
        while index > 0 and tokens[index - 1].text in ("+", "-", "~", "(", "[", "not"):
            index -= 1
        starts[index] = names

    pending: list = [module]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Module):
            items = node.items
        elif isinstance(node, ast.Body):
            items = node.statements
        elif isinstance(node, ast.Train):
            items = node.settings
        else:
            items = ()
        for item in items:
            add(item, isinstance(item, _NAMING) or bool(getattr(item, "targets", ())))
        if isinstance(node, tuple):
            pending.extend(child for child in node if isinstance(child, tuple) and not isinstance(child, Span))
    return starts


class _Frame:
    """An open bracket (or the file): where its items and its closer go, and the item being read."""

    __slots__ = ("opener", "indent", "close_indent", "names", "expect_item")

    def __init__(self, opener: str, indent: int, close_indent: int) -> None:
        self.opener = opener  # "" for the file itself
        self.indent = indent  # an item's (statement's) indentation
        self.close_indent = close_indent  # the closer's, at the start of a line
        self.names = False  # the current item names its value: `x = ...` or `key=...`
        self.expect_item = opener in ("(", "[")  # the next token starts an item (after `(` or `,`)


class _Layout:
    """Lays the lines out one by one, keeping the open brackets between them."""

    def __init__(self, tokens: list[_Tok], starts: dict[int, bool], width: int) -> None:
        self.tokens = tokens
        self.starts = starts
        self.width = width
        self.stack = [_Frame("", 0, 0)]
        self.unary = {
            t.index for t in tokens if t.text == "~" or t.text in ("-", "+") and not _ends_value(self._before(t))
        }

    def _before(self, tok: _Tok) -> _Tok | None:
        return self.tokens[tok.index - 1] if tok.index else None

    def indent_of(self, first: _Tok) -> int:
        """The indentation of a line starting with ``first``."""
        frame = self.stack[-1]
        if first.text in _CLOSERS:
            return frame.close_indent
        if frame.expect_item if frame.opener in ("(", "[") else first.index in self.starts:
            return frame.indent
        if first.text == "->":
            return frame.indent + (INDENT if frame.names else 0)
        return frame.indent + INDENT

    def comment_indent(self, first: _Tok | None) -> int:
        """The indentation of a comment line before a line starting with ``first``."""
        if first is None or first.text in _CLOSERS:
            return self.stack[-1].indent
        return self.indent_of(first)

    def _gap(self, prev: _Tok | None, tok: _Tok, inner: str) -> str:
        if prev is None:
            return ""
        before, text = prev.text, tok.text
        if text == ":" and before == ",":  # x[None, :]
            return " "
        if tok.kind == "CALL_OPEN" or before in ("(", "[") or text in (")", "]", ",", ":", "."):
            return ""
        if before == "{" and text == "}" or before == ".":
            return ""
        if prev.index in self.unary:
            return ""
        if before == ":":
            return "" if inner == "[" else " "
        if text == "=" or before == "=":
            return "" if inner in ("(", "[") else " "
        if text == "[" and _ends_value(prev):
            return ""
        return " "

    def spaced(self, tokens: list[_Tok]) -> list[str]:
        """Each token with the blank space before it on a line starting with the first."""
        kinds = [frame.opener for frame in self.stack]
        out = []
        prev = None
        for tok in tokens:
            out.append(self._gap(prev, tok, kinds[-1]) + tok.text)
            if tok.text in _OPENERS:
                kinds.append(tok.text)
            elif tok.text in _CLOSERS and len(kinds) > 1:
                kinds.pop()
            prev = tok
        return out

    def commit(self, tokens: list[_Tok], pieces: list[str], indent: int) -> None:
        """Follow the brackets and items of a laid-out line."""
        column = indent
        last = len(tokens) - 1
        for i, tok in enumerate(tokens):
            frame = self.stack[-1]
            column += len(pieces[i])
            if frame.opener in ("(", "["):
                if frame.expect_item and tok.text not in _CLOSERS:
                    after = self.tokens[tok.index + 1] if tok.index + 1 < len(self.tokens) else None
                    frame.names = tok.kind == "NAME" and after is not None and after.text == "="
                    frame.expect_item = False
                elif tok.text == ",":
                    frame.expect_item = True
            elif tok.index in self.starts:
                frame.names = self.starts[tok.index]
            if tok.text == "{":
                self.stack.append(_Frame("{", indent + INDENT, indent))
            elif tok.text in _OPENERS:
                hanging = i == last
                self.stack.append(_Frame(tok.text, indent + INDENT if hanging else column, indent))
            elif tok.text in _CLOSERS and len(self.stack) > 1:
                self.stack.pop()

    def _break_at(self, tokens: list[_Tok], pieces: list[str], start: int, indent: int) -> int | None:
        """Where to break the line ``tokens[start:]`` when it is too long for the width: before
        the last ``->`` at the line's outer level that leaves the part before it within the
        width, else before the first; None when there is no such ``->``."""
        depth = lowest = 0
        length = indent - len(pieces[start]) + len(pieces[start].lstrip(" "))
        best = None
        for i in range(start, len(tokens)):
            text = tokens[i].text
            if i > start and text == "->" and depth == lowest:
                if length <= self.width:
                    best = i
                else:
                    return best if best is not None else i  # later ones are longer still
            length += len(pieces[i])
            if text in _OPENERS:
                depth += 1
            elif text in _CLOSERS:
                depth -= 1
                lowest = min(lowest, depth)
        return best if length > self.width else None

    def lay_out(self, tokens: list[_Tok]) -> list[tuple[int, str]]:
        """The output lines (indentation, text) of one source line of code."""
        out = []
        pieces = self.spaced(tokens)  # a break changes only the blank space before its `->`
        start = 0
        while True:
            indent = self.indent_of(tokens[start])
            pieces[start] = pieces[start].lstrip(" ")
            cut = self._break_at(tokens, pieces, start, indent)
            end = len(tokens) if cut is None else cut
            self.commit(tokens[start:end], pieces[start:end], indent)
            out.append((indent, "".join(pieces[start:end])))
            if cut is None:
                return out
            start = cut


def _newline_of(text: str) -> str:
    end = text.find("\n")
    return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"


def _layout(text: str, module: ast.Module, width: int, split=None) -> str:
    """``text`` laid out (``split``: its ``_split_lines``, when already made)."""
    lines, tokens = split or _split_lines(text)
    layout = _Layout(tokens, _statement_starts(module, tokens), width)
    out: list[str] = []
    pending: list[_Line] = []  # comment lines waiting for the indentation of the code after them

    ended = False  # the last line closed a top-level definition: a blank line follows it

    def blank(before: bool) -> None:
        nonlocal ended
        if (before or ended) and out and not out[-1].rstrip().endswith("{") and out[-1].strip():
            out.append("")
        ended = False

    def flush(first: _Tok | None) -> None:
        indent = layout.comment_indent(first)
        for line in pending:
            blank(line.blank_before)
            out.append(" " * indent + line.comment)
        pending.clear()

    for line in lines:
        if not line.tokens:
            pending.append(line)
            continue
        first = line.tokens[0]
        flush(first)
        if first.text != "}":
            blank(line.blank_before)
        laid = layout.lay_out(line.tokens)
        for indent, code in laid:
            out.append(" " * indent + code)
        ended = line.tokens[-1].text == "}" and len(layout.stack) == 1
        if line.comment is not None:
            code = out[-1]
            # a broken line's comment goes two spaces after the last part: its column was the long line's
            column = len(code) + 2 if len(laid) > 1 else max(line.comment_col, len(code) + 2)
            out[-1] = code + " " * (column - len(code)) + line.comment
    flush(None)
    if not out:
        return ""
    newline = _newline_of(text)
    return newline.join(out) + newline


def _shape(node):
    """An AST node as nested tuples without its positions, for comparing two parses."""
    if isinstance(node, Span):
        return None
    if isinstance(node, tuple):
        return (type(node).__name__, *(_shape(child) for child in node))
    return node


def _significant(split: tuple[list[_Line], list[_Tok]]) -> tuple[list, list]:
    """The tokens of a text and its comments, each with the number of tokens before it."""
    lines, tokens = split
    comments = []
    before = 0
    for line in lines:
        if line.tokens:
            before = line.tokens[-1].index + 1
        if line.comment is not None:
            comments.append((before, line.comment))
    return [(t.kind, t.text) for t in tokens], comments


def _parse(text: str, name: str) -> ast.Module:
    from nndsl.source import Source
    from nndsl.syntax import parse_recovering

    module, diagnostics = parse_recovering(Source(name, text))
    if diagnostics:
        raise FormatSyntaxError(diagnostics)
    return module


def format_text(text: str, name: str = "<string>", width: int = DEFAULT_WIDTH) -> str:
    """``text`` in the canonical layout. Raises FormatSyntaxError when it does not parse, and
    FormatError when the layout would not keep its meaning (see the module docstring)."""
    module = _parse(text, name)
    split = _split_lines(text)
    formatted = _layout(text, module, width, split)
    if formatted == text:
        return text
    split_again = _split_lines(formatted)
    if _significant(split_again) != _significant(split):
        raise FormatError(f"{name}: the layout would change its tokens or comments")
    try:
        again = _parse(formatted, name)
    except FormatSyntaxError:
        raise FormatError(f"{name}: the layout would not parse") from None
    if _shape(again) != _shape(module):
        raise FormatError(f"{name}: the layout would change its meaning")
    if _layout(formatted, again, width, split_again) != formatted:
        raise FormatError(f"{name}: the layout is not stable (formatting it again changes it)")
    return formatted


# ---------------------------------------------------------------- the command


def _read(path: str) -> tuple[bytes, str] | str:
    """(the file's bytes, its text), or a message saying why it cannot be read."""
    from nndsl.reading import MAX_SPEC_SIZE, UndecodableError, decode, printable, read_file, read_limited

    shown = "<stdin>" if path == "-" else printable(path)
    try:
        if path == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            read = stdin.read if stdin is not None else lambda n: sys.stdin.read(n).encode("utf-8", "surrogateescape")
            data = read_limited(read)
        elif not os.path.exists(path):
            return f"{shown}: no such file"
        else:
            data = read_file(path)
    except OSError as exc:
        return f"{shown}: cannot read: {exc.strerror or exc}"
    if len(data) > MAX_SPEC_SIZE:
        return f"{shown}: larger than {MAX_SPEC_SIZE:,} bytes, the most nndsl reads"
    try:
        return data, decode(data)
    except UndecodableError as exc:
        return f"{shown}: {exc}"


def _diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"{name} (original)", f"{name} (formatted)"
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _write(path: str, data: bytes) -> None:
    from nndsl.files import write_atomically

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(data)

    write_atomically(path, write)


def _expand(paths: list[str]) -> list[str]:
    """The files to format: a directory stands for the .nn files under it (hidden ones left out)."""
    files = []
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            files.append(path)
            continue
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".nn") and not n.startswith(".")]
    return files


def run(args, color: bool = False) -> int:
    """``nndsl fmt``: exit 0 when every file is (now) canonical, 1 when one has a syntax error
    or would change under --check, 2 for a file that cannot be read or written, 3 for a bug."""
    from nndsl.diagnostics import render_text
    from nndsl.reading import printable

    status = 0
    changed = unchanged = failed = 0
    for path in _expand(args.files):
        name = "<stdin>" if path == "-" else path
        shown = printable(name)
        read = _read(path)
        if isinstance(read, str):
            print(f"error: {read}", file=sys.stderr)
            status, failed = max(status, 2), failed + 1
            continue
        data, text = read
        try:
            formatted = format_text(text, name, args.line_width)
        except FormatSyntaxError as exc:
            print("\n\n".join(render_text(d, color) for d in exc.diagnostics) + "\n", file=sys.stderr)
            print(f"error: {shown}: not formatted (a syntax error)", file=sys.stderr)
            status, failed = max(status, 1), failed + 1
            continue
        except FormatError as exc:
            print(f"nndsl: internal error: {exc}; left as it is. This is a bug in nndsl fmt.", file=sys.stderr)
            status, failed = 3, failed + 1
            continue
        if formatted == text:
            unchanged += 1
            if path == "-" and not (args.check or args.diff):
                sys.stdout.write(text)
            continue
        changed += 1
        if args.diff:
            sys.stdout.write(_diff(text, formatted, shown))
        if args.check:
            print(f"would reformat {shown}")
            status = max(status, 1)
        if args.check or args.diff:
            continue
        if path == "-":
            sys.stdout.write(formatted)
            continue
        bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
        try:
            _write(path, bom + formatted.encode("utf-8"))
        except OSError as exc:
            print(f"error: cannot write {shown}: {exc.strerror or exc}", file=sys.stderr)
            status, changed, failed = max(status, 2), changed - 1, failed + 1
            continue
        print(f"reformatted {shown}", file=sys.stderr)
    if args.files != ["-"]:
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        parts = [f"{changed} file{'s' * (changed != 1)} {verb}", f"{unchanged} left unchanged"]
        if failed:
            parts.append(f"{failed} failed")
        print(", ".join(parts), file=sys.stderr)
    return status
