"""Names in a spec and the files it imports: go to definition, find references, rename and the
document outline, as pure functions of a check result (``nndsl.api.check_source``).

An index is built from the result's recovered parse (``Result.module``) and the files its
imports resolved to (``Result.loaded``): every name that is defined (a block, a constant, a
model, a value, an input, a block parameter, a size named in an input pattern such as ``C`` in
``x: [N, C, H, W]``, a for-loop variable) and every use of it, with the checker's scopes: a
block's parameters are local to the block, a value to the body of its model or block, a loop
variable to its loop. An imported name refers to its definition in the other file; an import's
path refers to the file it names. A file with syntax errors gives results for the items that
parsed; a file whose check failed gives them all the same (the index needs no program).

Only the files reachable from the result are known: the spec and what it imports, transitively.
References to a block of ``blocks.nn`` found from a check of ``blocks.nn`` itself do not include
the uses in the files that import it (nothing in that result leads to them).
"""

from __future__ import annotations

import bisect
import keyword
from typing import NamedTuple

from nndsl import ast
from nndsl.check.common import BUILTIN_VALUES
from nndsl.check.functions import BUILTINS
from nndsl.check.loading import LoadedFile
from nndsl.check.training import CALLS
from nndsl.diagnostics import Span
from nndsl.layers import lookup
from nndsl.operators import REGISTRY as OPERATORS
from nndsl.source import Source

#: the words of the language, which no name may take
KEYWORDS = frozenset(
    {"model", "block", "let", "from", "import", "train", "for", "in", "if", "else", "and", "or", "not", "return"}
)
#: what may be renamed: every kind of definition but a file
RENAMABLE = frozenset({"model", "block", "constant", "value", "input", "parameter", "size", "loop", "import"})


class Place(NamedTuple):
    """A range of a file's text."""

    source: Source  # the Source it is in (Result.source, or an imported LoadedFile's .source)
    span: Span
    real: str | None  # the file's real path (LoadedFile.real); None for an unsaved, nameless spec


class Symbol(NamedTuple):
    """One entry of the document outline."""

    name: str
    kind: str  # "model" | "block" | "constant" | "value" | "input" | "parameter" | "train" | "import"
    span: Span  # the whole definition
    name_span: Span  # its name
    detail: str  # e.g. the signature "Bottleneck(planes, stride=1)" or "[N, 3, 224, 224]"
    children: tuple[Symbol, ...] = ()


class RenameError(Exception):
    """A rename that cannot be made; ``str(exc)`` is the message shown to the user."""


# ---------------------------------------------------------------- the index


class IndexedFile:
    """One file of the index: its text, its parse and its top-level scope."""

    def __init__(self, source: Source, real: str | None, module: ast.Module, loaded: LoadedFile | None) -> None:
        self.source = source
        self.real = real
        self.module = module
        self.loaded = loaded
        self.scope = Scope(None, self)
        self.occurrences: list[Occurrence] = []
        self.whole = Definition(source.name, "file", self, Span(0, 0), self.scope)  # what its imports name


class Scope:
    """Names defined at one level: a file, a model's or block's parameters and body, a loop."""

    def __init__(self, parent: Scope | None, file: IndexedFile) -> None:
        self.parent = parent
        self.file = file
        self.names: dict[str, Definition] = {}
        self.children: list[Scope] = []
        self.unresolved: set[str] = set()  # names used here that nothing defines (sizes, layers)
        if parent is not None:
            parent.children.append(self)

    def find(self, name: str) -> Definition | None:
        scope: Scope | None = self
        while scope is not None:
            found = scope.names.get(name)
            if found is not None:
                return found
            scope = scope.parent
        return None


class Definition:
    """A definition: where its name is written, and what kind of thing it names."""

    def __init__(self, name: str, kind: str, file: IndexedFile, span: Span, scope: Scope) -> None:
        self.name = name
        self.kind = kind  # one of RENAMABLE, or "file" for the target of an import's path
        self.file = file
        self.span = span
        self.scope = scope
        self.params: dict[str, Definition] = {}  # a block's parameters, for keyword arguments of its calls


class Occurrence(NamedTuple):
    """A name written in a file: a definition, a use of one, or a name no definition has."""

    span: Span
    name: str
    target: Definition | None  # None: a layer, a built-in, a symbolic size
    scope: Scope
    what: str  # "def", "ref", "path", "layer", "builtin" or "unknown"


class Index:
    """Every definition and use of a name in a result's spec and the files it imports."""

    def __init__(self, result) -> None:
        self.files: list[IndexedFile] = []
        self._by_loaded: dict[int, IndexedFile] = {}
        self._exports: dict[tuple[int, str], Definition | None] = {}
        module = result.module if result.module is not None else ast.Module((), Span(0, 0))
        loaded = result.loaded
        self.main = IndexedFile(result.source, loaded.real if loaded is not None else None, module, loaded)
        self.files.append(self.main)
        if loaded is not None:
            self._by_loaded[id(loaded)] = self.main
            self._gather(loaded)
        for file in self.files:
            self._declare(file)
        for file in self.files:
            self._link_imports(file)
        for file in self.files:
            self._walk_file(file)
        for file in self.files:
            self._resolve_later(file)
            file.occurrences.sort(key=lambda o: (o.span.start, o.span.end))
        self._starts = [o.span.start for o in self.main.occurrences]

    # -- files and their top-level names

    def _gather(self, loaded: LoadedFile) -> None:
        for target in loaded.imports:
            if isinstance(target, LoadedFile) and id(target) not in self._by_loaded:
                file = IndexedFile(target.source, target.real, target.module, target)
                self._by_loaded[id(target)] = file
                self.files.append(file)
                self._gather(target)

    def _declare(self, file: IndexedFile) -> None:
        for item in file.module.items:
            if isinstance(item, ast.Let):
                self._define(file, file.scope, item.name, "constant")
            elif isinstance(item, ast.Block):
                self._define(file, file.scope, item.name, "block")
            elif isinstance(item, ast.Model):
                self._define(file, file.scope, item.name, "model")

    def _define(self, file: IndexedFile, scope: Scope, name: ast.Name, kind: str) -> Definition:
        """A definition of ``name`` in ``scope``; a second one of the same name there is a use
        of the first (a redefinition, which the checker reports), so a rename keeps them together."""
        existing = scope.names.get(name.text)
        if existing is not None and existing.scope is scope:
            file.occurrences.append(Occurrence(name.span, name.text, existing, scope, "ref"))
            return existing
        found = Definition(name.text, kind, file, name.span, scope)
        scope.names[name.text] = found
        file.occurrences.append(Occurrence(name.span, name.text, found, scope, "def"))
        return found

    def _imports(self, file: IndexedFile) -> list[tuple[ast.Import, object]]:
        items = [i for i in file.module.items if isinstance(i, ast.Import)]
        resolved = file.loaded.imports if file.loaded is not None else ()
        return [(item, resolved[n] if n < len(resolved) else None) for n, item in enumerate(items)]

    def _export(self, file: IndexedFile, name: str, seen: frozenset = frozenset()) -> Definition | None:
        """The definition ``name`` has in ``file``: its own, or what its import of it names."""
        key = (id(file), name)
        if key in self._exports:
            return self._exports[key]
        own = file.scope.names.get(name)
        if own is not None:
            return own
        found = None
        if id(file) not in seen:
            for item, target in self._imports(file):
                if any(n.text == name for n in item.names) and isinstance(target, LoadedFile):
                    other = self._by_loaded.get(id(target))
                    if other is not None:
                        found = self._export(other, name, seen | {id(file)})
                    break
        self._exports[key] = found
        return found

    def _link_imports(self, file: IndexedFile) -> None:
        for item, target in self._imports(file):
            other = self._by_loaded.get(id(target)) if isinstance(target, LoadedFile) else None
            if other is not None:
                file.occurrences.append(Occurrence(item.path.span, item.path.value, other.whole, file.scope, "path"))
            for name in item.names:
                found = self._export(other, name.text) if other is not None else None
                if found is None or name.text in file.scope.names:
                    self._define(file, file.scope, name, "import")
                else:
                    file.scope.names[name.text] = found
                    file.occurrences.append(Occurrence(name.span, name.text, found, file.scope, "ref"))

    # -- bodies

    def _walk_file(self, file: IndexedFile) -> None:
        for item in file.module.items:
            if isinstance(item, ast.Let):
                self._expr(file, file.scope, item.value)
            elif isinstance(item, (ast.Model, ast.Block)):
                self._network(file, item)
            elif isinstance(item, ast.Train):
                if item.model is not None:
                    self._use(file, file.scope, item.model.text, item.model.span)
                for setting in item.settings:
                    self._expr(file, file.scope, setting.value)
            elif isinstance(item, ast.Assign):  # a bare chain, or a top-level assignment
                self._body(file, Scope(file.scope, file), (item,))

    def _network(self, file: IndexedFile, item: ast.Model | ast.Block) -> None:
        scope = Scope(file.scope, file)
        owner = file.scope.names.get(item.name.text)
        is_block = isinstance(item, ast.Block)
        for param in item.params:
            if isinstance(param, ast.InputDecl):
                for dim in param.dims:
                    self._pattern(file, scope, dim)
                defined = self._define(file, scope, param.name, "parameter" if is_block else "input")
            else:
                if param.default is not None:
                    self._expr(file, file.scope, param.default)
                defined = self._define(file, scope, param.name, "parameter")
            if owner is not None and owner.file is file and owner.span == item.name.span:
                owner.params.setdefault(param.name.text, defined)
        self._body(file, scope, item.body.statements)

    def _pattern(self, file: IndexedFile, scope: Scope, dim) -> None:
        """An input pattern's dim: a name nothing defines yet names a size (``C``), defined here."""
        if isinstance(dim, ast.NameRef):
            if scope.find(dim.name) is None and not _is_builtin(dim.name):
                self._define(file, scope, ast.Name(dim.name, dim.span), "size")
                return
        self._expr(file, scope, dim)

    def _body(self, file: IndexedFile, scope: Scope, statements) -> None:
        for stmt in statements:
            if isinstance(stmt, ast.Assign):
                self._expr(file, scope, stmt.value)
                for target in stmt.targets:
                    if target.text != "_":
                        self._define(file, scope, target, "value")
            elif isinstance(stmt, ast.Tie):
                self._expr(file, scope, stmt.layer)
                self._expr(file, scope, stmt.value)
            elif isinstance(stmt, ast.Return):
                for value in stmt.values:
                    self._expr(file, scope, value)

    def _use(self, file: IndexedFile, scope: Scope, name: str, span: Span) -> Definition | None:
        found = scope.find(name)
        if found is not None:
            file.occurrences.append(Occurrence(span, name, found, scope, "ref"))
            return found
        what = "layer" if lookup(name) is not None or name == "Residual" else "unknown"
        if what == "unknown" and (_is_builtin(name) or name in _TRAINING):
            what = "builtin"
        scope.unresolved.add(name)
        file.occurrences.append(Occurrence(span, name, None, scope, what))
        return None

    def _expr(self, file: IndexedFile, scope: Scope, expr) -> None:
        if isinstance(expr, ast.NameRef):
            self._use(file, scope, expr.name, expr.span)
        elif isinstance(expr, ast.Call):
            callee = self._use(file, scope, expr.name.text, expr.name.span)
            for arg in expr.args:
                if arg.keyword is not None and callee is not None and callee.kind == "block":
                    param = callee.params.get(arg.keyword.text)
                    if param is not None:
                        occurrence = Occurrence(arg.keyword.span, arg.keyword.text, param, scope, "ref")
                        file.occurrences.append(occurrence)
                self._expr(file, scope, arg.value)
        elif isinstance(expr, ast.ForLoop):
            self._expr(file, scope, expr.iterable)
            inner = Scope(scope, file)
            for name in expr.names:
                if name.text != "_":
                    self._define(file, inner, name, "loop")
            self._body(file, inner, expr.body.statements)
        elif isinstance(expr, ast.Arg):
            self._expr(file, scope, expr.value)
        elif isinstance(expr, tuple) and not isinstance(expr, (ast.Name, Span)):
            for part in expr:
                if isinstance(part, tuple):
                    self._expr(file, scope, part)

    @staticmethod
    def _resolve_later(file: IndexedFile) -> None:
        """A name used before the statement that defines it (the checker's "defined here,
        later") still leads to that definition."""
        for n, occurrence in enumerate(file.occurrences):
            if occurrence.what == "unknown":
                found = occurrence.scope.find(occurrence.name)
                if found is not None:
                    file.occurrences[n] = occurrence._replace(target=found, what="ref")

    # -- queries

    def at(self, offset: int) -> Occurrence | None:
        """The name in the spec at ``offset`` (inside it, or just after its last character)."""
        occurrences = self.main.occurrences
        here = bisect.bisect_right(self._starts, offset)
        touching = None
        for occurrence in occurrences[max(0, here - 2) : here]:  # names never overlap
            if occurrence.span.start <= offset < occurrence.span.end:
                return occurrence
            if occurrence.span.end == offset:
                touching = occurrence
        return touching

    def uses(self, target: Definition) -> list[tuple[IndexedFile, Occurrence]]:
        return [(f, o) for f in self.files for o in f.occurrences if o.target is target]


#: what a train section's settings may name: data sources, losses, optimizers, schedules
_TRAINING = frozenset(name for table in CALLS.values() for name in table)


def _is_builtin(name: str) -> bool:
    return name in BUILTINS or name in BUILTIN_VALUES or name in OPERATORS or name in ("nn", "torch")


def name_index(result) -> Index:
    """The result's name index, built on first use and kept on the result (a result's text and
    parse never change)."""
    cached = getattr(result, "_nndsl_index", None)
    if cached is None:
        cached = Index(result)
        try:
            result._nndsl_index = cached
        except AttributeError:  # a result that takes no attributes: built each time
            pass
    return cached


def _place(file: IndexedFile, span: Span) -> Place:
    return Place(file.source, span, file.real)


# ---------------------------------------------------------------- the functions


def definition(result, offset: int) -> list[Place]:
    """Where the name at ``offset`` of the spec is defined: a block used here and defined in an
    imported file lands there; an import's path lands at the start of the file it names. Empty
    for a layer, a built-in or no name."""
    occurrence = name_index(result).at(offset)
    if occurrence is None or occurrence.target is None:
        return []
    return [_place(occurrence.target.file, occurrence.target.span)]


def references(result, offset: int, include_declaration: bool = True) -> list[Place]:
    """Every use of the name at ``offset`` in the spec and the files it imports (transitively),
    its definition too with ``include_declaration``; in file order, then by position. Only
    files reachable from ``result`` are searched (see the module's docstring)."""
    index = name_index(result)
    occurrence = index.at(offset)
    if occurrence is None or occurrence.target is None:
        return []
    target = occurrence.target
    places = []
    if include_declaration and target.kind == "file":
        places.append(_place(target.file, target.span))
    for file, use in index.uses(target):
        if use.what == "def" and not include_declaration:
            continue
        places.append(_place(file, use.span))
    return places


def rename_range(result, offset: int) -> Span | None:
    """The span of the name at ``offset`` when it can be renamed (a value, constant, block,
    model, parameter, size or loop variable), else None."""
    occurrence = name_index(result).at(offset)
    if occurrence is None or occurrence.target is None or occurrence.target.kind not in RENAMABLE:
        return None
    if occurrence.target.kind == "import":  # an import whose file or name did not resolve
        return None
    return occurrence.span


def rename(result, offset: int, new_name: str) -> list[tuple[Place, str]]:
    """The edits that rename the name at ``offset`` to ``new_name`` everywhere it is used, in
    the spec and the files it imports (a block defined in an imported file is renamed there, in
    every import of it and at every use). Raises RenameError when it cannot be done: no name
    there, a layer or built-in, a keyword or non-identifier as the new name, a name the new one
    would clash with or be hidden by."""
    index = name_index(result)
    occurrence = index.at(offset)
    if occurrence is None:
        raise RenameError("there is no name here to rename")
    target = occurrence.target
    if target is None:
        if occurrence.what == "layer":
            raise RenameError(f"cannot rename '{occurrence.name}': it is a layer, not a name of this spec")
        if occurrence.what == "builtin":
            raise RenameError(f"cannot rename '{occurrence.name}': it is a built-in name")
        raise RenameError(f"cannot rename '{occurrence.name}': no definition of it was found")
    if target.kind == "file":
        raise RenameError("cannot rename a file path: rename the file instead")
    if target.kind == "import":
        raise RenameError(f"cannot rename '{target.name}': its import did not resolve")
    _check_new_name(new_name)
    if new_name == target.name:
        return []
    uses = index.uses(target)
    for file, _ in uses:
        if file is not index.main and file.real is None:
            raise RenameError(f"cannot rename '{target.name}': it is used in '{file.source.name}', which is no file")
    _check_clash(target, new_name, [use.scope for _, use in uses])
    return [(_place(file, use.span), new_name) for file, use in uses]


def _check_new_name(new_name: str) -> None:
    if not new_name.isascii() or not new_name.isidentifier():
        raise RenameError(f"'{new_name}' is not a name: use letters, digits and _, not starting with a digit")
    if new_name in KEYWORDS or keyword.iskeyword(new_name) or new_name == "_":
        raise RenameError(f"'{new_name}' is a keyword")
    if lookup(new_name) is not None or new_name == "Residual":
        raise RenameError(f"'{new_name}' is the name of a layer")
    if _is_builtin(new_name):
        raise RenameError(f"'{new_name}' is a built-in name")


def _check_clash(target: Definition, new_name: str, scopes: list[Scope]) -> None:
    """RenameError when ``new_name`` is defined where the renamed name is seen (it would clash
    or be hidden), or is written in a scope inside the definition's or inside a file that
    imports it (it would be captured)."""
    for scope in [target.scope, *scopes]:
        found = scope.find(new_name)
        if found is not None and found is not target:
            raise RenameError(f"cannot rename '{target.name}' to '{new_name}': '{new_name}' is already defined there")
    pending = [target.scope, *(s for s in scopes if s.parent is None and s is not target.scope)]
    while pending:
        scope = pending.pop()
        found = scope.names.get(new_name)
        if (found is not None and found is not target) or new_name in scope.unresolved:
            raise RenameError(f"cannot rename '{target.name}' to '{new_name}': '{new_name}' is already used there")
        pending.extend(scope.children)


# ---------------------------------------------------------------- the outline


def document_symbols(result) -> list[Symbol]:
    """The spec's outline: models (their inputs and named values), blocks (their parameters),
    constants, train sections and imports, each with a detail (signature, shape or value)."""
    module = result.module
    if module is None:
        return []
    text = result.source.text
    shapes = _value_shapes(result)
    symbols = []
    for item in module.items:
        if isinstance(item, ast.Model):
            children = [_param_symbol(text, p, "input") for p in item.params]
            children += _value_symbols(text, item.body, shapes.get(item.name.text, {}))
            symbols.append(
                Symbol(item.name.text, "model", item.span, item.name.span, _signature(text, item), tuple(children))
            )
        elif isinstance(item, ast.Block):
            children = [_param_symbol(text, p, "parameter") for p in item.params]
            children += _value_symbols(text, item.body)
            symbols.append(
                Symbol(item.name.text, "block", item.span, item.name.span, _signature(text, item), tuple(children))
            )
        elif isinstance(item, ast.Let):
            symbols.append(Symbol(item.name.text, "constant", item.span, item.name.span, _text(text, item.value.span)))
        elif isinstance(item, ast.Train):
            name = f"train {item.model.text}" if item.model is not None else "train"
            name_span = item.model.span if item.model is not None else item.keyword
            children = tuple(
                Symbol(s.name.text, "value", s.span, s.name.span, _text(text, s.value.span)) for s in item.settings
            )
            symbols.append(Symbol(name, "train", item.span, name_span, "", children))
        elif isinstance(item, ast.Import):
            children = tuple(Symbol(n.text, "import", n.span, n.span, item.path.value) for n in item.names)
            detail = ", ".join(n.text for n in item.names)
            symbols.append(Symbol(item.path.value, "import", item.span, item.path.span, detail, children))
    return symbols


def _text(text: str, span: Span, limit: int = 60) -> str:
    """The source of ``span`` on one line, shortened to ``limit`` characters."""
    written = " ".join(text[span.start : span.end].split())
    return written if len(written) <= limit else written[: limit - 3] + "..."


def _signature(text: str, item: ast.Model | ast.Block) -> str:
    params = ", ".join(_text(text, p.span, 200) for p in item.params)
    return f"{item.name.text}({params})"


def _param_symbol(text: str, param, kind: str) -> Symbol:
    if isinstance(param, ast.InputDecl):
        detail = _text(text, Span(param.name.span.end, param.span.end)).lstrip(": ")
        return Symbol(param.name.text, kind if kind == "parameter" else "input", param.span, param.name.span, detail)
    detail = _text(text, param.default.span) if param.default is not None else ""
    return Symbol(param.name.text, "parameter", param.span, param.name.span, f"= {detail}" if detail else "")


def _value_shapes(result) -> dict[str, dict[str, str]]:
    """model name -> the shape of each tensor value its body names, where the check got that far."""
    program = getattr(result, "program", None)
    found: dict[str, dict[str, str]] = {}
    for model in program.models if program is not None else ():
        named = found.setdefault(model.name, {})
        for value, name in model.names.items():
            if value in model.types:
                named.setdefault(name, str(model.types[value]))
    return found


def _value_symbols(text: str, body: ast.Body, shapes: dict[str, str] | None = None) -> list[Symbol]:
    """The values a body names: the shape of each where known, else the expression it is given."""
    values = []
    for stmt in body.statements:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if target.text != "_":
                    detail = (shapes or {}).get(target.text) or _text(text, stmt.value.span)
                    values.append(Symbol(target.text, "value", stmt.span, target.span, detail))
    return values
