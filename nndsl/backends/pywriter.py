"""Writes Python source: safe names, literals through repr() of whitelisted types, and the layout
of every statement (those layers and operators return as data, nndsl.statements) as ruff formats it.

The only routes from spec or path text into emitted source are here: ``literal`` (``repr()`` of a
checked type), ``comment`` and ``docstring`` (one printable line, quotes and backslashes escaped)
and ``nndsl.lowering.Names`` (identifiers). Everything else the backend writes is text it built
itself.
"""

from __future__ import annotations

import ast
import os

from nndsl.backends.pysource import literal as _literal
from nndsl.statements import Assign, BinOp, Call, Code

LINE_LENGTH = 88


class Construct:
    """A constructor call written as an argument of another (``nn.Sequential(nn.Conv2d(...))``)."""

    def __init__(self, func: str, positional: list, keywords: list[tuple[str, object]]):
        self.func = func
        self.positional = positional
        self.keywords = keywords

    def flat(self) -> str:
        items = [(None, v) for v in self.positional] + list(self.keywords)
        return f"{self.func}({', '.join(_arg(k, v) for k, v in items)})"


class Repeated:
    """``count`` modules built alike, as a starred argument: ``*(nn.Linear(8, 8) for _ in range(4))``."""

    def __init__(self, item: Construct, count: int):
        self.item = item
        self.count = count

    def flat(self) -> str:
        return f"*({self.item.flat()} for _ in range({self.count}))"

    def lines(self, indent: int, suffix: str) -> list[str]:
        """Laid out over several lines, as ruff formats a generator too long for one."""
        pad, inner = " " * indent, " " * (indent + 4)
        loop = f"for _ in range({self.count})"
        text = f"{inner}{self.item.flat()}"
        if len(text) <= LINE_LENGTH:
            body = [text]
        else:
            body = call("", self.item.func, self.item.positional, self.item.keywords, indent + 4)
        return [f"{pad}*(", *body, f"{inner}{loop}", f"{pad}){suffix}"]


def literal(value) -> str:
    """Source for a constant, or for code the backend built (``Code``, ``Construct``, ``Call``,
    ``BinOp``, or a tuple or list holding some)."""
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, (Construct, Repeated)):
        return value.flat()
    if isinstance(value, Call):
        return f"{value.func}({', '.join(_arg(k, v) for k, v in _items(value))})"
    if isinstance(value, BinOp):
        left, right = literal(value.left), literal(value.right)
        if value.op != "**":
            return f"{left} {value.op} {right}"
        if left.startswith("-"):  # -2 ** x would be -(2 ** x)
            return f"({left}) ** {right}"
        return f"{left}**{right}"  # a name or number on both sides: hugged, as ruff formats it
    if type(value) in (tuple, list) and any(isinstance(v, (Code, Call, BinOp, tuple, list)) for v in value):
        inner = ", ".join(literal(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return _literal(value)


def _items(value: Call) -> list[tuple[str | None, object]]:
    return [(None, v) for v in value.args] + list(value.kwargs)


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
        elif isinstance(value, Repeated):
            lines += value.lines(indent + 4, ",")
        elif type(value) in (tuple, list) and value:  # a tuple or list constant, not a Call
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


def source(stmt: Assign | str) -> str:
    """A statement on one line, as written before any layout (a backend's own text as it is)."""
    if isinstance(stmt, str):
        return stmt
    value = literal(stmt.value)
    if not stmt.targets:
        return value
    targets = f"({stmt.targets[0]},)" if stmt.unpack else ", ".join(stmt.targets)
    return f"{targets} = {value}"


def discarded(stmt: Assign | str) -> Assign | str:
    """A statement whose result nothing reads: ``_ = value`` becomes ``value``, still computed."""
    if isinstance(stmt, str):
        return stmt[len("_ = ") :] if stmt.startswith("_ = ") else stmt
    return Assign((), stmt.value) if stmt.targets == ("_",) else stmt


def statements(body: list, indent: int, note: str | None = None) -> list[str]:
    """Statements (``Assign``, or a backend's own line of text) laid out at ``indent`` as ruff
    formats them, with ``note`` as a comment beside the last, or above it when it does not fit."""
    pad = " " * indent
    lines: list[str] = []
    for index, stmt in enumerate(body):
        text = pad + source(stmt)
        last = index == len(body) - 1
        if last and note is not None:
            joined = f"{text}  # {comment(note)}"
            if len(joined) <= LINE_LENGTH:
                lines.append(joined)
                break
            lines.append(f"{pad}# {comment(note)}")
        lines += statement(text, indent) if isinstance(stmt, str) else _laid_out(stmt, text, indent)
    return lines


def _laid_out(stmt: Assign, flat: str, indent: int) -> list[str]:
    """One statement too long for a line: its call's arguments split as ``call`` does; a call
    whose opening does not fit, several targets one a line; anything else in parentheses."""
    if len(flat) <= LINE_LENGTH:
        return [flat]
    pad = " " * indent
    value = stmt.value
    prefix = flat[indent : len(flat) - len(literal(value))]
    if isinstance(value, Call) and len(f"{pad}{prefix}{value.func}(") <= LINE_LENGTH:
        return call(prefix, value.func, list(value.args), list(value.kwargs), indent)
    if len(stmt.targets) > 1:
        return [f"{pad}(", *(f"{pad}    {t}," for t in stmt.targets), f"{pad}) = {literal(value)}"]
    if not stmt.targets:
        return [flat]
    target, inner = prefix[: -len(" = ")], " " * (indent + 4)
    if isinstance(value, BinOp) and len(f"{inner}{literal(value)}") > LINE_LENGTH:  # split before the operator
        return [
            f"{pad}{target} = (",
            inner + literal(value.left),
            f"{inner}{value.op} {literal(value.right)}",
            f"{pad})",
        ]
    return assignment(target, literal(value), indent)


def call_text(call) -> str | None:
    """A train section's call (``nndsl.ir.TrainCall``) as a script's flag takes it: ``Adam(lr=0.001)``."""
    if call is None:
        return None
    args = ", ".join(f"{k}={literal(_plain(v))}" for k, v in call.args.items())
    return f"{call.name}({args})"


def _plain(value):
    return list(value) if isinstance(value, tuple) and all(not isinstance(v, tuple) for v in value) else value
