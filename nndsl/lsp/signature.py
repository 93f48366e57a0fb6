"""Signature help: inside the parentheses of a layer's or block's call being written, its
signature with the parameter the cursor is at."""

from __future__ import annotations

import re
from typing import NamedTuple

from nndsl import ast
from nndsl.api import Result
from nndsl.check.loading import LoadedFile

_NAME_BEFORE = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)\s*\Z")
_KEYWORD = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*=(?!=)")


class Signature(NamedTuple):
    label: str  # ``Linear(in_features, out_features, bias=True)``
    parameters: tuple[str, ...]  # each parameter as the label writes it
    names: tuple[str, ...]  # their names
    active: int | None  # the parameter the cursor is at, if known
    documentation: str = ""


def signature_at(text: str, offset: int, result: Result | None = None) -> Signature | None:
    """The signature of the call whose argument list ``offset`` of ``text`` is in, if it is a
    layer's or a block's (the blocks of ``result``, a check of the text, maybe of an earlier one)."""
    found = _open_call(text, offset)
    if found is None:
        return None
    name, start = found
    parameters = _layer(name) or (_block(result, name) if result is not None else None)
    if parameters is None:
        return None
    written, names, doc = parameters
    argument = _current_argument(text[start:offset])
    active: int | None = argument
    keyword = _KEYWORD.match(text[start:offset].rsplit(",", 1)[-1])
    if keyword is not None:
        active = names.index(keyword.group(1)) if keyword.group(1) in names else None
    elif active is not None and active >= len(names):
        active = None
    label = f"{name}({', '.join(written)})"
    return Signature(label, tuple(written), tuple(names), active, doc)


def _open_call(text: str, offset: int) -> tuple[str, int] | None:
    """The name of the call whose unclosed ``(`` comes before ``offset``, and where its arguments start."""
    depth = 0
    i = offset - 1
    while i >= 0:
        ch = text[i]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth == 0:
                if ch == "[":
                    return None
                name = _NAME_BEFORE.search(text, 0, i)
                return (name.group(1), i + 1) if name else None
            depth -= 1
        elif ch in "{}" or (ch == "#" and depth == 0):
            return None
        i -= 1
    return None


def _current_argument(arguments: str) -> int | None:
    """How many arguments come before the cursor, counting commas outside nested brackets."""
    depth, commas = 0, 0
    for ch in arguments:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            commas += 1
    return commas


def _layer(name: str) -> tuple[list[str], list[str], str] | None:
    from nndsl.check.binding import signature
    from nndsl.layers import lookup

    layer = lookup(name)
    if layer is None:
        return None
    label = signature(layer)
    inner = label[label.index("(") + 1 : -1]
    written = [p for p in _split(inner) if p != "*"]
    names = [p.split("=", 1)[0].lstrip("*") for p in written]
    doc = (layer.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return written, names, doc


def _block(result: Result, name: str) -> tuple[list[str], list[str], str] | None:
    """A block of the spec or of a file it imports: its parameters after the input pattern."""
    for block, source_text in _blocks(result):
        if block.name.text == name:
            params = [p for p in block.params if isinstance(p, ast.Param)]
            written = [source_text[p.span.start : p.span.end] for p in params]
            return written, [p.name.text for p in params], f"block {name}"
    return None


def _blocks(result: Result):
    if result.module is not None:
        for item in result.module.items:
            if isinstance(item, ast.Block):
                yield item, result.source.text
    stack = list(result.loaded.imports) if result.loaded is not None else []
    seen: set[int] = set()
    while stack:
        loaded = stack.pop()
        if isinstance(loaded, LoadedFile) and id(loaded) not in seen:
            seen.add(id(loaded))
            for item in loaded.module.items:
                if isinstance(item, ast.Block):
                    yield item, loaded.source.text
            stack.extend(loaded.imports)


def _split(inner: str) -> list[str]:
    """A signature's parameters, split at the commas outside brackets and quotes."""
    parts, depth, current, quote = [], 0, "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts
