"""Writes Python source: safe names, literals through repr() of whitelisted types, ruff-style layout.

The only routes from spec or path text into emitted source are here: ``literal`` (``repr()`` of a
checked type), ``comment`` and ``docstring`` (one printable line, quotes and backslashes escaped)
and ``nndsl.lowering.Names`` (identifiers). Everything else the backend writes is text it built
itself.
"""

from __future__ import annotations

import ast
import os

from nndsl.pysource import literal as _literal

LINE_LENGTH = 88


class Code(str):
    """Source text the backend built itself (a parameter's name, ``planes * 4``): written as is."""


class Construct:
    """A constructor call written as an argument of another (``nn.Sequential(nn.Conv2d(...))``)."""

    def __init__(self, func: str, positional: list, keywords: list[tuple[str, object]]):
        self.func = func
        self.positional = positional
        self.keywords = keywords

    def flat(self) -> str:
        items = [(None, v) for v in self.positional] + list(self.keywords)
        return f"{self.func}({', '.join(_arg(k, v) for k, v in items)})"


def literal(value) -> str:
    """Source for a constant, or for code the backend built (``Code``, ``Construct``)."""
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, Construct):
        return value.flat()
    return _literal(value)


def call(
    prefix: str, func: str, positional: list, keywords: list[tuple[str, object]], indent: int, suffix: str = ""
) -> list[str]:
    """``prefix + func(args) + suffix`` laid out as ruff format would: one line, else hugged, else
    one per line, where a tuple, list or nested call too long for its own line is split in turn."""
    items = [(None, v) for v in positional] + list(keywords)
    args = [_arg(k, v) for k, v in items]
    pad = " " * indent
    flat = f"{pad}{prefix}{func}({', '.join(args)}){suffix}"
    if len(flat) <= LINE_LENGTH:
        return [flat]
    inner = " " * (indent + 4)
    joined = f"{inner}{', '.join(args)}"
    if len(joined) <= LINE_LENGTH:
        return [f"{pad}{prefix}{func}(", joined, f"{pad}){suffix}"]
    lines = [f"{pad}{prefix}{func}("]
    for (key, value), text in zip(items, args):
        head = "" if key is None else key + "="
        if len(f"{inner}{text},") <= LINE_LENGTH:
            lines.append(f"{inner}{text},")
        elif isinstance(value, Construct):
            lines += call(head, value.func, value.positional, value.keywords, indent + 4, ",")
        elif isinstance(value, (tuple, list)) and value:
            opening, closing = ("(", ")") if isinstance(value, tuple) else ("[", "]")
            lines.append(f"{inner}{head}{opening}")
            lines += [f"{inner}    {literal(v)}," for v in value]
            lines.append(f"{inner}{closing},")
        else:
            lines.append(f"{inner}{text},")
    return lines + [f"{pad}){suffix}"]


def _arg(key: str | None, value) -> str:
    return literal(value) if key is None else f"{key}={literal(value)}"


def comment(text: str) -> str:
    """A comment body from untrusted text: one line, no control characters."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def docstring(text: str, indent: int = 4) -> str:
    """A one-line docstring from untrusted text: ``comment``'s line, every backslash and double quote
    escaped, so that no text can close the string early (``\"\"\"`` in a file name stays text)."""
    body = comment(text).replace("\\", "\\\\").replace('"', '\\"')
    return " " * indent + f'"""{body}"""'


def file_name(path: str) -> str:
    """How emitted code names a spec file: its name alone, so that no directory leaks into the
    output and outputs do not differ between checkouts (``<stdin>`` stays as it is)."""
    return path if path.startswith("<") else os.path.basename(path)


def statement(line: str, indent: int) -> list[str]:
    """A one-call statement (``x = self.fc(tokens)``), its argument wrapped as ruff would if too long."""
    if len(line) <= LINE_LENGTH or not line.endswith(")") or "(" not in line:
        return [line]
    head, _, inner = line[:-1].partition("(")
    return [f"{head}(", " " * (indent + 4) + inner, " " * indent + ")"]


def assignment(target: str, source: str, indent: int) -> list[str]:
    """``target = source`` for an expression the backend built, laid out as ruff formats it: on
    one line, else its value in parentheses on a line of its own, else (a tuple) one item a line."""
    pad, inner = " " * indent, " " * (indent + 4)
    line = f"{pad}{target} = {source}"
    if len(line) <= LINE_LENGTH:
        return [line]
    tree = ast.parse(source, mode="eval").body
    is_tuple = isinstance(tree, ast.Tuple) and source.startswith("(") and source.endswith(")")
    body = source[1:-1] if is_tuple else source
    if len(inner + body) <= LINE_LENGTH:
        return [f"{pad}{target} = (", inner + body, f"{pad})"]
    if is_tuple:
        return [f"{pad}{target} = (", *(f"{inner}{ast.get_source_segment(source, e)}," for e in tree.elts), f"{pad})"]
    return [line]


def with_trailing_comment(line: str, note: str, indent: int) -> list[str]:
    """``line  # note`` if it fits, else the comment on its own line above."""
    note = comment(note)
    joined = f"{line}  # {note}"
    if len(joined) <= LINE_LENGTH:
        return [joined]
    return [" " * indent + f"# {note}", *statement(line, indent)]
