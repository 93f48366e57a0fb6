"""Completion in a spec being typed: what may be written at an offset, from the text around it
(a scan backwards from the offset: the buffer seldom parses there) and the names of the last
good parse (``Result.module`` and its imports, through ``nndsl.lsp.symbols``).

The contexts: the start of a top-level line (keywords); a chain's start or after ``->`` (layers
with their signatures and snippets, blocks in scope, tensor functions, values); inside a call's
parentheses (the keyword arguments not yet given, and the names in scope); any other expression
(constants, values, parameters in scope); a ``from "`` path (the .nn files next to the spec);
after ``import`` (the names the imported file defines); a train section (its settings, and the
losses, optimizers, schedules and data sources a setting may name).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from nndsl import ast
from nndsl.check.binding import signature
from nndsl.check.common import BUILTIN_VALUES
from nndsl.check.functions import BUILTINS, Functions
from nndsl.check.loading import LoadedFile
from nndsl.check.training import ALL_SETTINGS, CALLS, SETTINGS
from nndsl.layers import REGISTRY as LAYERS
from nndsl.layers.base import REQUIRED
from nndsl.lsp import symbols
from nndsl.operators import REGISTRY as OPERATORS


class Item(NamedTuple):
    """One completion."""

    label: str
    kind: str  # "layer" | "keyword" | "argument" | "block" | "constant" | "value" | "function" | "operator" | "file" | "import"
    detail: str = ""  # signature
    documentation: str = ""  # markdown
    snippet: str | None = None  # LSP snippet syntax ($1, ${2:default}); None: insert the label
    sort: str = ""  # sort key, "" = label


#: the words a top-level line starts with
TOP_KEYWORDS = ("model", "block", "let", "from", "train")
_TOP_SNIPPETS = {
    "model": "model ${1:Name}(${2:x}: [${3:N, C}]) {\n    $0\n}",
    "block": "block ${1:Name}(${2:x}: [${3:N, C}], ${4:param}) {\n    $0\n}",
    "let": "let ${1:name} = $0",
    "from": 'from "${1:file.nn}" import ${0:Name}',
    "train": "train ${1:Model} {\n    $0\n}",
}
#: the words a statement of a body may start with, beside names
_BODY_KEYWORDS = ("return", "for")

_QUOTED = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|\'[^\'\\\n]*(?:\\.[^\'\\\n]*)*\'?|#[^\n]*')
_BRACKET = re.compile(r"[{}()\[\]]")
#: stands for an opening bracket being blanked (a private-use character)
_MARK = "\ue000"
#: per kind of bracket: the opener of a pair with no bracket inside, and in the reversed text
#: the closer of a marked opener
_PAIRS = tuple(
    (re.compile(o + r"(?=[^(){}\[\]]*" + c + ")"), re.compile(c + "(?=[^(){}\\[\\]\ue000]*\ue000)"))
    for o, c in (("\\(", "\\)"), ("\\[", "\\]"), ("\\{", "\\}"))
)
_IMPORT_LINE = re.compile(r"""^\s*from\s+(["'])(.*?)\1\s+import\b""")
_PATH_LINE = re.compile(r"""^\s*from\s+["']([^"']*)$""")
# the line patterns start at a newline (the text is searched with one put before it): a literal
# first lets the regex engine skip ahead, where ``^`` with re.M tries every position
_ASSIGNED = re.compile(r"\n[ \t]*([A-Za-z_]\w*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)*)[ \t]*=(?!=)")
_FOR = re.compile(r"for\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+in\b")
_HEADER = re.compile(r"\n[ \t]*(model|block|train|let|from)\b")
_KEYWORD_ARG = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)")


class _Scan(NamedTuple):
    """What the text before the offset says about it."""

    open: list[tuple[str, int]]  # the brackets still open at the offset: (character, offset)
    in_string: bool
    in_comment: bool


def _scan(text: str, end: int) -> _Scan:
    """The brackets open at ``end``, and whether ``end`` is in a string or a comment.

    Strings and comments never span lines: the last line tells whether ``end`` is in one. The
    rest is blanked, then balanced pairs are blanked innermost first (a few passes of the regex
    engine, however long the text), and the brackets left are read in order."""
    line_start = text.rfind("\n", 0, end) + 1
    in_string = in_comment = False
    for match in _QUOTED.finditer(text, line_start, end):
        token = match.group()
        if match.end() == end:
            if token[0] == "#":
                in_comment = True
            else:
                closed = len(token) > 1 and token.endswith(token[0]) and not token.endswith("\\" + token[0])
                in_string = not closed
    code = _QUOTED.sub(_blank, text[:end]).replace(_MARK, " ")
    while True:
        reduced = code
        for opener, closer in _PAIRS:
            # the opener of each innermost pair marked, then (read backwards) the closer that
            # the mark precedes; both blanked: constant replacements, no Python per match
            marked = opener.sub(_MARK, reduced)
            if marked != reduced:
                reduced = closer.sub(" ", marked[::-1])[::-1].replace(_MARK, " ")
        if reduced == code:
            break
        code = reduced
    stack: list[tuple[str, int]] = []
    for match in _BRACKET.finditer(code):
        first = match.group()
        if first in "{([":
            stack.append((first, match.start()))
            continue
        want = {"}": "{", ")": "(", "]": "["}[first]
        while stack and stack[-1][0] != want and first == "}":  # a brace closes what it holds
            stack.pop()
        if stack and stack[-1][0] == want:
            stack.pop()
    return _Scan(stack, in_string, in_comment)


def _blank(match: re.Match) -> str:
    return " " * len(match.group())


def complete(result, offset: int) -> list[Item]:
    """The completions at ``offset`` (a str index into ``result.source.text``) for the text as
    typed, whether it parses or not."""
    text = result.source.text
    offset = max(0, min(offset, len(text)))
    word = _word_before(text, offset)
    start = offset - len(word)
    line_start = text.rfind("\n", 0, start) + 1
    before_line = text[line_start:start]
    scan = _scan(text, offset)
    if scan.in_comment:
        return []
    if scan.in_string:
        path = _PATH_LINE.match(text[line_start:offset])
        return _files(result, path.group(1)) if path is not None else []
    imported = _IMPORT_LINE.match(before_line)
    if imported is not None and not scan.open:
        listed = set(re.findall(r"[A-Za-z_]\w*", before_line[imported.end() :]))
        return [i for i in _imported_names(result, imported.group(2)) if i.label not in listed]
    braces = [pos for char, pos in scan.open if char == "{"]
    if braces and _header(text, braces[0]) == "train":
        return _train(result, text, braces[-1], start, before_line)
    previous = _previous(text, start)
    if previous in ("let", "model", "block", "for") and not scan.in_string:
        return []  # a new name is being written
    if previous == "train" and before_line.strip() == "train":  # the model a section trains
        models = [d for d in _file_names(result).values() if d.kind == "model"]
        return [Item(d.name, "value", "model", sort="0" + d.name) for d in models]
    if previous == ".":
        return _selectors(text, start - 1)
    innermost = scan.open[-1][0] if scan.open else ""
    if innermost == "(":
        callee = _callee(text, scan.open[-1][1])
        if callee is not None and previous in ("(", ",", "="):
            takes_networks = callee == "Residual" or (callee not in LAYERS and callee not in OPERATORS)
            if previous == "=":  # a keyword argument's value
                return _chain(result, text, offset) if takes_networks else _expression(result, text, offset)
            items = _arguments(result, text, callee, scan.open[-1][1], start)
            return items + (_chain(result, text, offset) if takes_networks else _expression(result, text, offset))
    if not scan.open and not before_line.strip():
        return _keywords() + (_chain(result, text, offset) if _bare_chain_file(result) else [])
    if previous == "->" or (braces and (previous in ("=", "{") or _statement_start(text, start))):
        items = _chain(result, text, offset)
        if innermost == "{" and not before_line.strip():
            items += [Item(k, "keyword", sort="3" + k) for k in _BODY_KEYWORDS]
        return items
    return _expression(result, text, offset)


# ---------------------------------------------------------------- the text around the offset


def _word_before(text: str, end: int) -> str:
    """The letters, digits and underscores just before ``end`` (the word being typed there)."""
    start = end
    while start > 0 and (text[start - 1] == "_" or (text[start - 1].isascii() and text[start - 1].isalnum())):
        start -= 1
    return text[start:end]


def _previous(text: str, start: int) -> str:
    """The token before ``start`` (``->``, one punctuation character, a word), "" at the start."""
    at = start
    while at > 0 and text[at - 1] in " \t\r\n\f":
        at -= 1
    if at == 0:
        return ""
    if text[at - 2 : at] == "->":
        return "->"
    if text[at - 1] in "=" and text[at - 2 : at] not in ("==", "!=", "<=", ">="):
        return "="
    if not ((text[at - 1].isascii() and text[at - 1].isalnum()) or text[at - 1] == "_"):
        return text[at - 1]
    return _word_before(text, at)


def _selectors(text: str, dot: int) -> list[Item]:
    """After ``Layer(...).``: the parts of the layer's result it may select (``LSTM(...).h_n``)."""
    if dot == 0 or text[dot - 1] != ")":
        return []
    depth, at = 0, dot - 1
    while at >= 0:
        if text[at] == ")":
            depth += 1
        elif text[at] == "(":
            depth -= 1
            if depth == 0:
                break
        at -= 1
    layer = LAYERS.get(_callee(text, at) or "") if at > 0 else None
    if layer is None:
        return []
    return [Item(name, "value", f"{layer.dsl_name()}(...).{name}", doc) for name, doc in layer.selectors.items()]


def _statement_start(text: str, start: int) -> bool:
    """Whether ``start`` begins a line of a body (the statement before it ended on a line before)."""
    line_start = text.rfind("\n", 0, start) + 1
    if text[line_start:start].strip():
        return False
    at = line_start
    while at > 0 and text[at - 1] in " \t\r\n\f":
        at -= 1
    before = text[text.rfind("\n", 0, at) + 1 : at].split("#")[0].rstrip()
    return not before.endswith(
        ("->", ",", "(", "[", "=", "+", "-", "*", "/", "%", "@", "|", "&", "^", "~", "and", "or")
    )


def _callee(text: str, paren: int) -> str | None:
    """The name a call's ``(`` at ``paren`` touches (``Conv2d`` in ``Conv2d(``), if any."""
    name = _word_before(text, paren)
    if not name or name[0].isdigit():
        return None
    before = text[text.rfind("\n", 0, paren) + 1 : paren - len(name)].split()
    return None if before and before[-1] in ("model", "block") else name  # a definition's header


def _headers(text: str, end: int) -> list[tuple[str, int]]:
    """(keyword, where its line starts) of each line before ``end`` that starts an item."""
    return [(m.group(1), m.start()) for m in _HEADER.finditer("\n" + text[:end])]


def _header(text: str, brace: int) -> str | None:
    """The keyword of the top-level item whose body opens at ``brace``."""
    found = _headers(text, brace + 1)
    return found[-1][0] if found else None


def _item_start(text: str, offset: int) -> int:
    """Where the top-level item holding ``offset`` begins (its ``model``/``block`` line)."""
    found = [start for keyword, start in _headers(text, offset) if keyword in ("model", "block")]
    return found[-1] if found else 0


# ---------------------------------------------------------------- names in scope


def _file_names(result) -> dict[str, symbols.Definition]:
    """The spec's top-level names, its imported names among them, from its last good parse."""
    return dict(symbols.name_index(result).main.scope.names)


def _locals(text: str, offset: int) -> list[tuple[str, str]]:
    """(name, what) for the parameters, input sizes, values and loop variables written in the
    model or block holding ``offset`` before it: a scan of its text, which need not parse."""
    start = _item_start(text, offset)
    chunk = text[start:offset]
    if not re.match(r"\s*(model|block)\b", chunk):
        return []
    found: dict[str, str] = {}
    open_paren = chunk.find("(")
    if open_paren >= 0:
        depth, at, params_end = 0, open_paren, len(chunk)
        while at < len(chunk):
            if chunk[at] in "([":
                depth += 1
            elif chunk[at] in ")]":
                depth -= 1
                if depth == 0:
                    params_end = at
                    break
            at += 1
        header = chunk[open_paren + 1 : params_end]
        for part in _split_top(header):
            name = re.match(r"\s*([A-Za-z_]\w*)", part)
            if name is None:
                continue
            rest = part[name.end() :].strip()
            if rest.startswith(":"):
                for size in re.findall(r"[A-Za-z_]\w*", rest.split("[", 1)[-1]):
                    if size not in BUILTIN_VALUES and size not in symbols.KEYWORDS:
                        found.setdefault(size, "size")
                found[name.group(1)] = "input" if chunk.lstrip().startswith("model") else "parameter"
            else:
                found[name.group(1)] = "parameter"
        body = chunk[params_end:]
    else:
        body = ""
    body = body[: body.rfind("\n") + 1]  # the statement being typed defines nothing yet
    for match in _ASSIGNED.finditer("\n" + body):
        for name in match.group(1).split(","):
            name = name.strip()
            if name and name != "_" and name not in symbols.KEYWORDS:
                found.setdefault(name, "value")
    for match in _FOR.finditer(body):
        if match.start() > 0 and (body[match.start() - 1].isalnum() or body[match.start() - 1] == "_"):
            continue  # a name ending in "for"
        for name in match.group(1).split(","):
            found.setdefault(name.strip(), "loop variable")
    return list(found.items())


def _split_top(text: str) -> list[str]:
    parts, depth, last = [], 0, 0
    for at, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[last:at])
            last = at + 1
    parts.append(text[last:])
    return parts


def _expression(result, text: str, offset: int) -> list[Item]:
    """Constants, values and parameters in scope at ``offset``."""
    items = [Item(name, "value", what, sort="0" + name) for name, what in _locals(text, offset)]
    seen = {item.label for item in items}
    for name, found in _file_names(result).items():
        if found.kind in ("constant", "import") and name not in seen:
            items.append(Item(name, "constant", _definition_text(found), sort="1" + name))
            seen.add(name)
    items += [Item(name, "constant", sort="2" + name) for name in BUILTIN_VALUES]
    return items


def _chain(result, text: str, offset: int) -> list[Item]:
    """What a chain's step may be: layers, blocks in scope, tensor functions, values."""
    items = _expression(result, text, offset)
    for found in _file_names(result).values():
        if found.kind == "block":
            items.append(_block_item(found))
    items += _layer_items()
    items += _function_items()
    return items


def _definition_text(found: symbols.Definition) -> str:
    """A constant's definition as written (``let hidden = 512``), for the detail."""
    for item in found.file.module.items:
        if isinstance(item, ast.Let) and item.name.span == found.span:
            return found.file.source.text[item.span.start : item.span.end].split("\n")[0]
    return ""


def _block_node(found: symbols.Definition) -> ast.Block | None:
    for item in found.file.module.items:
        if isinstance(item, ast.Block) and item.name.span == found.span:
            return item
    return None


def _block_item(found: symbols.Definition) -> Item:
    block = _block_node(found)
    if block is None:
        return Item(found.name, "block", sort="1" + found.name)
    text = found.file.source.text
    params = [p for p in block.params if isinstance(p, ast.Param)]
    written = ", ".join(" ".join(text[p.span.start : p.span.end].split()) for p in params)
    required = [p.name.text for p in params if p.default is None]
    snippet = _snippet(found.name, required) if required else None
    where = f"block defined in `{found.file.source.name}`"
    return Item(found.name, "block", f"{found.name}({written})", where, snippet, "1" + found.name)


def _snippet(name: str, required: list[str]) -> str:
    return f"{name}(" + ", ".join(f"${{{n}:{p}}}" for n, p in enumerate(required, 1)) + ")"


_LAYER_ITEMS: list[Item] = []


def _layer_items() -> list[Item]:
    if not _LAYER_ITEMS:
        for name, layer in sorted(LAYERS.items()):
            doc = (layer.__doc__ or "").strip().splitlines()
            required = [p for p in layer.params if p.default is REQUIRED]
            snippet = None
            if required:
                snippet = (
                    f"{name}("
                    + ", ".join(
                        f"{p.name}=${{{n}:{p.name}}}" if p.keyword_only else f"${{{n}:{p.name}}}"
                        for n, p in enumerate(required, 1)
                    )
                    + ")"
                )
            _LAYER_ITEMS.append(
                Item(name, "layer", signature(layer), _markdown(doc[0]) if doc else "", snippet, "2" + name)
            )
    return list(_LAYER_ITEMS)


def _markdown(doc: str) -> str:
    """A docstring's line as markdown: reStructuredText's ``code`` becomes `code`."""
    return doc.replace("``", "`")


def _function_items() -> list[Item]:
    items = []
    for name in sorted(BUILTINS):
        if name == "getitem":
            continue
        operator = OPERATORS.get(name)
        method = getattr(Functions, BUILTINS[name], None)
        doc = (operator.__doc__ if operator is not None else getattr(method, "__doc__", None)) or ""
        detail = f"{name}(...)"
        if operator is not None:
            detail = f"{name}(" + ", ".join(_param_text(p) for p in operator.params) + ")"
        first = doc.strip().splitlines()
        items.append(Item(name, "function", detail, _markdown(first[0]) if first else "", None, "3" + name))
    return items


def _param_text(param) -> str:
    return param.name if param.default is REQUIRED else f"{param.name}={param.default!r}"


def _arguments(result, text: str, callee: str, paren: int, start: int) -> list[Item]:
    """The keyword arguments of the call of ``callee`` opened at ``paren`` not given yet."""
    written = _split_top(text[paren + 1 : start])[:-1]  # the arguments before the one being typed
    given = {m.group(1) for m in (_KEYWORD_ARG.match(a.strip()) for a in written) if m is not None}
    positional = sum(1 for a in written if _KEYWORD_ARG.match(a.strip()) is None)
    params: list[tuple[str, str]] = []
    layer = LAYERS.get(callee)
    if layer is not None:
        params = [(p.name, _param_text(p)) for p in (*layer.params, *layer.forward_params)]
    elif callee in OPERATORS:
        params = [(p.name, _param_text(p)) for p in OPERATORS[callee].params]
    elif callee == "Residual":
        params = [("shortcut", "shortcut=None")]
    else:
        found = _file_names(result).get(callee)
        block = _block_node(found) if found is not None and found.kind == "block" else None
        if block is not None:
            source = found.file.source.text
            params = [
                (p.name.text, " ".join(source[p.span.start : p.span.end].split()))
                for p in block.params
                if isinstance(p, ast.Param)
            ]
    params = params[positional:] if callee != "Residual" else params
    return [Item(f"{name}=", "argument", shown, sort="0" + name) for name, shown in params if name not in given]


# ---------------------------------------------------------------- top level, imports, train


def _keywords() -> list[Item]:
    return [Item(k, "keyword", snippet=_TOP_SNIPPETS[k], sort="0" + k) for k in TOP_KEYWORDS]


def _bare_chain_file(result) -> bool:
    """Whether the spec is (or may become) a bare chain: no model in its last good parse."""
    module = result.module
    return module is not None and not any(isinstance(i, ast.Model) for i in module.items)


def _spec_dir(result) -> str:
    """The folder the spec's imports resolve in, as the checker has it: the spec's own, or the
    working directory for a spec that is no file."""
    name = result.source.name
    return os.path.dirname(os.path.abspath(name)) if not name.startswith("<") else os.getcwd()


def _files(result, typed: str) -> list[Item]:
    """The .nn files (and folders) in the folder of the path typed so far, relative to the spec."""
    base = _spec_dir(result)
    folder = os.path.dirname(typed)
    try:
        entries = sorted(os.scandir(os.path.join(base, folder)), key=lambda e: e.name)
    except (OSError, ValueError):  # no such folder, or a path no folder can have (a NUL)
        return []
    name = result.source.name
    own = os.path.realpath(name) if not name.startswith("<") else None
    items = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        label = os.path.join(folder, entry.name) if folder else entry.name
        try:
            if entry.is_dir():
                items.append(Item(label + "/", "file", "folder", sort="1" + label))
            elif entry.name.endswith(".nn") and os.path.realpath(entry.path) != own:
                items.append(Item(label, "file", "spec", sort="0" + label))
        except OSError:
            continue
    return items


def _imported_names(result, path: str) -> list[Item]:
    """The blocks and constants the file an import names defines."""
    loaded = _loaded_import(result, path)
    if loaded is None:
        return []
    items = []
    for item in loaded.module.items:
        if isinstance(item, ast.Block):
            text = loaded.source.text
            params = ", ".join(" ".join(text[p.span.start : p.span.end].split()) for p in item.params)
            items.append(Item(item.name.text, "import", f"block {item.name.text}({params})", sort="0" + item.name.text))
        elif isinstance(item, ast.Let):
            written = " ".join(loaded.source.text[item.span.start : item.span.end].split())
            items.append(Item(item.name.text, "import", written, sort="1" + item.name.text))
    return items


def _loaded_import(result, path: str):
    """The imported file ``path`` names: from the check's imports, else read and parsed now."""
    module = result.module
    loaded = result.loaded
    if module is not None and loaded is not None:
        imports = [i for i in module.items if isinstance(i, ast.Import)]
        for item, target in zip(imports, loaded.imports):
            if item.path.value == path and isinstance(target, LoadedFile):
                return target
    base = _spec_dir(result)
    if not path.endswith(".nn"):
        return None
    from nndsl.reading import decode, read_file
    from nndsl.source import Source
    from nndsl.syntax import parse_recovering

    try:
        file = os.path.join(base, path)
        if os.path.getsize(file) > 1_000_000:
            return None
        text = decode(read_file(file))
    except Exception:  # an unreadable or undecodable file offers nothing
        return None
    source = Source(path, text)
    parsed, _ = parse_recovering(source)
    return LoadedFile(None, source, parsed)


def _train(result, text: str, brace: int, start: int, before_line: str) -> list[Item]:
    """A train section: its settings at a line's start, the options of a setting after ``=``."""
    section = text[brace:start]
    if not before_line.strip():
        given = set(re.findall(r"^\s*([A-Za-z_]\w*)\s*=", section, re.M))
        items = []
        for name in ALL_SETTINGS:
            if name in given:
                continue
            doc = SETTINGS[name].doc if name in SETTINGS else f"the {name} (a call)"
            items.append(Item(name, "keyword", doc, snippet=f"{name} = $0", sort="0" + name))
        return items
    setting = re.match(r"\s*([A-Za-z_]\w*)\s*=\s*$", before_line)
    if setting is not None and setting.group(1) in CALLS:
        items = []
        for option in CALLS[setting.group(1)].values():
            required = [p.name for p in option.params if p.required]
            snippet = _snippet(option.name, required) if required else f"{option.name}()"
            items.append(Item(option.name, "function", option.signature(), _markdown(option.doc), snippet))
        return items
    return _expression(result, text, start)
