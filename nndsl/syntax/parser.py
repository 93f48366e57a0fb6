"""Parse spec text with the LALR grammar into an AST; turn lark's exceptions, and the rules
checked on the tree (nesting limits, one statement per line), into diagnostics."""

from __future__ import annotations

import os
import re
import stat
import sys
from functools import lru_cache

import lark
from lark import Lark, Token, Transformer

from nndsl import ast
from nndsl.diagnostics import Diagnostic, DiagnosticError, Label, Severity, Span
from nndsl.source import Source
from nndsl.syntax.driver import Driver

_GRAMMAR_NAME = "nndsl.lark"


def grammar_path() -> str:
    """The grammar file: packaged beside the code in a wheel, or in the repository's grammars/."""
    # os.path rather than pathlib: pathlib's imports cost the CLI's start-up several ms
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    packaged = os.path.join(package, "grammars", _GRAMMAR_NAME)
    if os.path.isfile(packaged):
        return packaged
    return os.path.join(os.path.dirname(package), "grammars", _GRAMMAR_NAME)


def cache_path(grammar_text: str) -> str:
    """Where lark keeps the compiled parse table of this grammar, so a cold run skips building
    LALR tables: ``$XDG_CACHE_HOME/nndsl/grammar-<digest>.lark-cache``."""
    import hashlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256((grammar_text + lark.__version__ + sys.version).encode()).hexdigest()[:16]
    return os.path.join(base, "nndsl", f"grammar-{digest}.lark-cache")


def _private(path: str, kind) -> bool:
    """``path`` is a ``kind`` (not a link) owned by this user that no one else may write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return kind(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _cache_file(grammar_text: str) -> str | None:
    """The cache file to use, or None to build the tables (a few ms) without one.

    lark reads its cache with pickle, which runs code: a cache is used only in a directory of
    this user's that no one else may write to, and only a file of this user's that no one else
    may write to, so that nobody else can plant one (a shared or group-writable cache directory).
    """
    if not hasattr(os, "getuid"):
        return None  # no owners to check (Windows): no cache
    path = cache_path(grammar_text)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not _private(directory, stat.S_ISDIR) or not os.access(directory, os.W_OK):
        return None
    if os.path.lexists(path) and not _private(path, stat.S_ISREG):
        return None
    return path


@lru_cache(maxsize=1)
def _parser() -> Lark:
    with open(grammar_path(), encoding="utf-8") as handle:
        text = handle.read()
    cache = _cache_file(text)
    parser = Lark(
        text,
        parser="lalr",
        lexer="basic",
        keep_all_tokens=True,
        maybe_placeholders=True,
        transformer=_ToAst(),
        start=["start", "shape_spec"],
        cache=cache or False,
    )
    if cache is not None:  # a file lark just wrote: private whatever the umask
        try:
            st = os.lstat(cache)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077:
                os.chmod(cache, 0o600)
        except OSError:
            pass
    return parser


@lru_cache(maxsize=1)
def _driver() -> Driver | None:
    return Driver.build(_parser())


def _run(text: str, start: int, end: int, symbol: str):
    """``text[start:end]`` parsed from ``symbol``: by the fast loop when it accepts the text,
    else by lark, which raises UnexpectedInput (so every error is lark's own)."""
    driver = _driver()
    if driver is not None:
        result = driver.parse(text, start, end, symbol)
        if result is not None:
            return result
    if start == 0 and end == len(text):
        return _parser().parse(text, start=symbol)
    return _lark_slice(text, start, end)


# ``_new(Span, (start, end))`` is ``Span(start, end)`` without the NamedTuple's __new__ written
# in Python: the callbacks below run once per token or so, and spend much of their time there
_new = tuple.__new__


def _tok_span(tok: Token) -> Span:
    return _new(Span, (tok.start_pos, tok.end_pos))


def _span_of(children) -> Span:
    """From the first child's start to the last child's end (tokens and AST nodes alike)."""
    first, last = children[0], children[-1]
    if first is None or last is None:
        items = [c for c in children if c is not None]
        first, last = items[0], items[-1]
    start = first.start_pos if isinstance(first, Token) else first.span.start
    end = last.end_pos if isinstance(last, Token) else last.span.end
    return _new(Span, (start, end))


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _unquote(text: str) -> str:
    """The value of a quoted string literal: backslash escapes the next character (\\n, \\t, \\r, \\0 as in Python)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])


def _name(tok: Token) -> ast.Name:
    return ast.Name(str(tok), _tok_span(tok))


def _nodes(children) -> list:
    """Children that are AST nodes (punctuation tokens and empty placeholders dropped)."""
    return [c for c in children if c is not None and not isinstance(c, Token)]


def _tokens(children, kind: str) -> list[Token]:
    return [c for c in children if isinstance(c, Token) and c.type == kind]


class _ToAst(Transformer):
    """Builds the AST while the LALR parser reduces (no parse tree is built).

    The parser keeps every token, so each rule sees its own punctuation and can give its
    node a span from its first to its last character.
    """

    def start(self, children):
        items = _nodes(children)
        return ast.Module(tuple(items), _span_of(items) if items else Span(0, 0))

    def let_stmt(self, children):
        (name,) = _tokens(children, "NAME")
        (value,) = _nodes(children)
        return ast.Let(_name(name), value, _span_of(children))

    def import_stmt(self, children):
        path = ast.StrLit(_unquote(str(children[1])), _tok_span(children[1]))
        names = tuple(_name(t) for t in _tokens(children, "NAME"))
        return ast.Import(path, names, _span_of(children))

    def model_def(self, children):
        name, params, body = self._definition(children)
        return ast.Model(name, params, body, _span_of(children))

    def block_def(self, children):
        name, params, body = self._definition(children)
        return ast.Block(name, params, body, _span_of(children))

    def train_def(self, children):
        names = _tokens(children, "NAME")
        settings = tuple(_nodes(children))
        keyword = children[0]  # the parser keeps punctuation and keywords
        keyword = Span(keyword.start_pos, keyword.end_pos)
        return ast.Train(_name(names[0]) if names else None, settings, _span_of(children), keyword)

    def train_setting(self, children):
        (name,) = _tokens(children, "NAME")
        (value,) = _nodes(children)
        return ast.Setting(_name(name), value, _span_of(children))

    @staticmethod
    def _definition(children):
        name = _tokens(children, "NAME")[0]
        nodes = _nodes(children)
        return _name(name), tuple(nodes[:-1]), nodes[-1]

    def input_decl(self, children):
        name = children[0]
        dtype, dims, span = children[-1]
        return ast.InputDecl(_name(name), dtype, dims, Span(name.start_pos, span.end))

    def param_default(self, children):
        return ast.Param(_name(children[0]), children[-1], _span_of(children))

    def param_plain(self, children):
        (name,) = children
        return ast.Param(_name(name), None, _tok_span(name))

    def tensor_type(self, children):
        dtype = children[0]
        dtype_node = _name(dtype) if isinstance(dtype, Token) and dtype.type == "NAME" else None
        return dtype_node, tuple(_nodes(children)), _span_of(children)

    def shape_spec(self, children):
        dtype, dims, span = children[0]
        return ast.InputDecl(ast.Name("x", Span(0, 0)), dtype, dims, span)

    def body(self, children):
        statements = _nodes(children)
        return ast.Body(tuple(statements), _span_of(statements))

    def assign(self, children):
        targets = tuple(_name(t) for t in _tokens(children, "NAME"))
        return ast.Assign(targets, children[-1], _span_of(children))

    def tie(self, children):
        (weight,) = _tokens(children, "NAME")
        return ast.Tie(children[0], _name(weight), children[-1], _span_of(children))

    def return_stmt(self, children):
        return ast.Return(tuple(_nodes(children)), _span_of(children))

    def chain(self, children):
        (value,) = children
        return ast.Assign((), value, value.span)

    def flow(self, children):
        steps = _nodes(children)
        return ast.Flow(tuple(steps), _span_of(steps))

    def cond(self, children):
        then, test, otherwise = _nodes(children)
        return ast.Cond(then, test, otherwise, _span_of(children))

    def or_(self, children):
        return ast.BoolOp("or", children[0], children[-1], _span_of(children))

    def and_(self, children):
        return ast.BoolOp("and", children[0], children[-1], _span_of(children))

    def not_(self, children):
        return ast.Not(children[-1], _span_of(children))

    def compare(self, children):
        left, op, right = children
        return ast.Compare(str(op), left, right, _span_of(children))

    def call(self, children):
        callee, (args, closing) = children
        span = callee.span
        name = callee.name if type(callee) is ast.NameRef else _dotted(callee) or ""
        if not name and isinstance(callee, (ast.Call, ast.Apply)):  # ``Layer(...)(q, k, v)``
            return _new(ast.Apply, (callee, args, None, _new(Span, (callee.span.start, closing.end_pos))))
        return _new(ast.Call, (_new(ast.Name, (name, span)), args, None, _new(Span, (span.start, closing.end_pos))))

    def arguments(self, children):
        # (args, closing-parenthesis token) so the call's span ends at ')'
        return tuple(_nodes(children)), children[-1]

    def select(self, children):
        base, name = children[0], children[-1]
        span = _span_of(children)
        if isinstance(base, (ast.Call, ast.Apply)) and base.selector is None:
            return base._replace(selector=_name(name), span=span)
        if isinstance(base, ast.NameRef):
            return ast.Call(ast.Name(base.name, base.span), (), _name(name), span)
        return ast.Select(base, _name(name), span)

    def index(self, children):
        base, index = _nodes(children)
        return ast.Index(base, index, _span_of(children))

    def subscript(self, children):
        base, *items = _nodes(children)
        return ast.Subscript(base, tuple(items), _span_of(children))

    def slice(self, children):
        # [start] ":" [stop] [":" [step]]: the parts by their place around the colons
        parts: list = [None]
        for child in children:
            if isinstance(child, Token) and child.type == "COLON":
                parts.append(None)
            elif child is not None:
                parts[-1] = child
        start, stop, step = (parts + [None])[:3]
        colons = [c for c in children if isinstance(c, Token)]
        nodes = [c for c in children if c is not None]
        span = _span_of(nodes) if nodes else _tok_span(colons[0])
        return ast.SliceItem(start, stop, step, span)

    def ellipsis(self, children):
        (tok,) = children
        return ast.EllipsisItem(_tok_span(tok))

    def for_loop(self, children):
        names = tuple(_name(t) for t in _tokens(children, "NAME"))
        iterable, body = _nodes(children)
        return ast.ForLoop(names, iterable, body, _span_of(children))

    def kwarg(self, children):
        name, value = children[0], children[-1]
        return ast.Arg(_name(name), value, _span_of(children))

    def posarg(self, children):
        (value,) = children
        return _new(ast.Arg, (None, value, value.span))

    def _binop(op):  # noqa: N805 - a factory used while building the class
        def build(self, children):
            left, right = children[0], children[-1]
            return ast.BinOp(op, left, right, _span_of(children))

        return build

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    floordiv = _binop("//")
    truediv = _binop("/")
    mod = _binop("%")
    pow = _binop("**")
    bor = _binop("|")
    bxor = _binop("^")
    band = _binop("&")
    matmul = _binop("@")

    def neg(self, children):
        return ast.Neg(children[-1], _span_of(children))

    def invert(self, children):
        return ast.Invert(children[-1], _span_of(children))

    def pos(self, children):
        return children[-1]

    def paren(self, children):
        """``(expr)``: the expression, its span taken with the parentheses (``(a + b) * c`` is
        written from ``(`` to ``c``)."""
        inner = children[1]
        return inner._replace(span=_span_of(children)) if hasattr(inner, "_replace") else inner

    def int(self, children):
        (tok,) = children
        try:
            value = int(tok)
        except ValueError:  # longer than Python converts; the checker reports it
            value = None
        return _new(ast.IntLit, (value, _new(Span, (tok.start_pos, tok.end_pos))))

    def float(self, children):
        (tok,) = children
        return ast.FloatLit(float(tok), _tok_span(tok))

    def string(self, children):
        (tok,) = children
        return ast.StrLit(_unquote(str(tok)), _tok_span(tok))

    def name(self, children):
        (tok,) = children
        return _new(ast.NameRef, (str(tok), _new(Span, (tok.start_pos, tok.end_pos))))

    def tuple(self, children):
        return ast.TupleExpr(tuple(_nodes(children)), _span_of(children))

    def list(self, children):
        return ast.TupleExpr(tuple(_nodes(children)), _span_of(children))


def _dotted(expr) -> str | None:
    """``torch.nn.Linear`` as one dotted name; None for a callee that is not a name."""
    parts: list[str] = []
    while True:  # a loop, not recursion: a chain of selectors may be as long as the file
        if isinstance(expr, ast.NameRef):
            parts.append(expr.name)
            return ".".join(reversed(parts))
        if isinstance(expr, ast.Call) and not expr.args and expr.selector is not None:
            parts += [expr.selector.text, expr.name.text]
            return ".".join(reversed(parts))
        if not isinstance(expr, ast.Select):
            return None
        parts.append(expr.name.text)
        expr = expr.base


# ---------------------------------------------------------------- nesting

#: how deeply expressions, loops and statements may nest (counted in syntax-tree levels: a
#: call and its argument are two): far beyond what people write, and well within what the
#: checker and the code generators handle without running out of Python's stack
MAX_NESTING = 100

_LEAVES = (Span, ast.Name, ast.IntLit, ast.FloatLit, ast.StrLit, ast.NameRef)

#: how deeply brackets of any kind may nest, checked before parsing so that a file of brackets
#: costs no parse (parentheses alone add no syntax-tree level, so this is the looser limit)
MAX_BRACKETS = 1000
_BRACKET_OR_SKIPPED = re.compile(
    r"""[][(){}]|#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
    # a run of prefix operators (``- - -x``, ``not not x``) longer than the nesting limit
    + rf"|(?:(?:[-+]|\bnot\b)[ \t]*){{{MAX_NESTING + 1},}}"
)


_SKIPPED = re.compile(r"""#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'""")
_PREFIX_RUN = re.compile(rf"(?:(?:[-+]|\bnot\b)[ \t]*){{{MAX_NESTING + 1},}}")
_SIGN_THEN_OP = re.compile(r"[-+][ \t]*(?:[-+]|not\b)")
_NOT_THEN_OP = re.compile(r"not\b[ \t]*(?:[-+]|not\b)")
_ONE_KIND = str.maketrans({"[": "(", "{": "(", "]": ")", "}": ")"})
_BRACKETS_ONLY = re.compile(r"[^()]+")


def _surely_shallow(text: str) -> bool:
    """True when ``text`` has neither brackets nested more than MAX_BRACKETS deep nor a long
    run of prefix operators (strings and comments skipped), found without a loop in Python;
    False when it may have either."""
    code = _SKIPPED.sub("~", text)
    # a run has two operators in a row: two cheap searches (they start with a character)
    # before the slow one, which tries every position
    if (_SIGN_THEN_OP.search(code) or _NOT_THEN_OP.search(code)) and _PREFIX_RUN.search(code):
        return False
    brackets = _BRACKETS_ONLY.sub("", code.translate(_ONE_KIND))
    # A pass takes out the innermost pairs, so lowers the depth by at most one: the depth is
    # at most the passes plus the openers left
    passes = 0
    while passes < 16 and "()" in brackets:
        brackets = brackets.replace("()", "")
        passes += 1
    return passes + brackets.count("(") <= MAX_BRACKETS


def _deep_bracket(text: str) -> tuple[int, str] | None:
    """The offset of the first bracket nested more than MAX_BRACKETS deep, or of a run of more
    than MAX_NESTING prefix operators (strings and comments skipped), and what it is; None if
    there is none. Either would cost a parse before the nesting check refused it."""
    return None if _surely_shallow(text) else _first_too_deep(text)


def _first_too_deep(text: str) -> tuple[int, str] | None:
    """What _deep_bracket finds, found a bracket at a time."""
    depth = 0
    for match in _BRACKET_OR_SKIPPED.finditer(text):
        ch = match.group()
        if ch[0] in "-+n":
            return match.start(), f"more than {MAX_NESTING} prefix operators in a row, the most nndsl reads"
        if ch in ("(", "[", "{"):
            depth += 1
            if depth > MAX_BRACKETS:
                return match.start(), f"brackets nested more than {MAX_BRACKETS} deep, the most nndsl reads"
        elif ch in (")", "]", "}") and depth:
            depth -= 1
    return None


def _scan(item) -> tuple[ast.Expr | None, list[ast.Body]]:
    """The first node of ``item`` nested more than MAX_NESTING levels deep, if any, and the
    bodies of more than one statement in it (an explicit stack: the walk must not recurse)."""
    stack = [(item, 0)]
    pop, push = stack.pop, stack.append
    bodies = []
    while stack:
        node, depth = pop()
        if depth > MAX_NESTING:
            return node, bodies
        if type(node) is ast.Body and len(node.statements) > 1:
            bodies.append(node)
        for value in node:
            if isinstance(value, tuple) and not isinstance(value, _LEAVES):
                if hasattr(value, "_fields"):
                    push((value, depth + 1))
                else:  # a tuple of nodes: arguments, items, statements
                    for child in value:
                        if isinstance(child, tuple) and not isinstance(child, _LEAVES):
                            push((child, depth + 1))
    return None, bodies


def _too_deep(item) -> ast.Expr | None:
    """The first node of ``item`` nested more than MAX_NESTING levels deep, if any."""
    return _scan(item)[0]


# ---------------------------------------------------------------- one statement per line

_FIRST_WORD = re.compile(r"\w+|\S")
_LAST_WORD = re.compile(r"\w+$")


def _crowded(source: Source, bodies: list[ast.Body]) -> list[Diagnostic]:
    """E001 where two statements of a body share a line (the grammar ignores new lines, so
    ``Flatten Linear(10, 4)`` parses as two statements): the first such place in each body,
    none inside a body already reported."""
    text = source.text
    found: list[Diagnostic] = []
    reported_end = -1
    for body in sorted(bodies, key=lambda b: b.span.start):
        if body.span.start < reported_end:
            continue  # inside a body already reported
        statements = body.statements
        for before, stmt in zip(statements, statements[1:]):
            if "\n" not in text[before.span.end : stmt.span.start]:
                found.append(_crowded_diagnostic(source, before, stmt))
                reported_end = body.span.end
                break
    return found


def _crowded_diagnostic(source: Source, before, stmt) -> Diagnostic:
    text = source.text
    word = _FIRST_WORD.match(text, stmt.span.start, stmt.span.end).group()
    callee = _LAST_WORD.search(text[before.span.start : before.span.end])
    if word == "(" and callee and not text[before.span.end : stmt.span.start].strip():
        # `Linear (8, 8)`: a call's parenthesis touches the name
        help_text = f"write the arguments right after the name, without a space: {callee.group()}(...)"
    else:
        help_text = f"connect the layers with '->': ... -> {word}"
    return Diagnostic(
        Severity.ERROR,
        "E001",
        "expected '->' or a new line between statements",
        source,
        Span(stmt.span.start, stmt.span.start + len(word)),
        "unexpected here",
        help=help_text,
    )


def _nesting_diagnostic(source: Source, node) -> Diagnostic:
    start = node.span.start
    return Diagnostic(
        Severity.ERROR,
        "E005",
        f"nested more than {MAX_NESTING} levels deep, the most nndsl checks",
        source,
        Span(start, start + 1),
        "too deep",
        help="name the inner parts with `let` or `=` and use the names",
    )


def _shallow(source: Source, items) -> tuple[list, list[Diagnostic], list[str], list[str]]:
    """The items nested within MAX_NESTING and with one statement per line, the E005 or E001
    for each other one, and the names of the constants and blocks, and of the models, among
    those (so that their uses are not reported again)."""
    kept, diagnostics, broken, models = [], [], [], []
    for item in items:
        deep, bodies = _scan(item)
        if deep is not None:
            diagnostics.append(_nesting_diagnostic(source, deep))
        else:
            crowded = _crowded(source, bodies)
            if not crowded:
                kept.append(item)
                continue
            diagnostics.extend(crowded)
        if isinstance(item, (ast.Let, ast.Block)):
            broken.append(item.name.text)
        elif isinstance(item, ast.Model):
            models.append(item.name.text)
    return kept, diagnostics, broken, models


def parse(source: Source) -> ast.Module:
    """Parse a whole spec. Raises DiagnosticError (E001/E002/E005) on the first error."""
    module = _parse(source, "start")
    _, diagnostics, _, _ = _shallow(source, module.items)
    if diagnostics:
        raise DiagnosticError(diagnostics[0])
    return module


# a `model` or `let` at the start of a line begins a new top-level item
_ITEM_START = re.compile(r"^[ \t]*(?:model|block|train|let|from)\b", re.MULTILINE)


def _parse_slice(text: str, start: int, end: int):
    """Parse ``text[start:end]`` as a whole spec, with offsets into ``text``."""
    return _run(text, start, end, "start")


def _lark_slice(text: str, start: int, end: int):
    """Parse ``text[start:end]`` as a whole spec with lark, with offsets into ``text``, in time
    that depends on the slice only (no copy, no scan of what comes before it)."""
    parser = _parser()
    try:
        from lark.lexer import LexerState, LexerThread, LineCounter

        frontend = parser.parser
        counter = LineCounter("\n")
        counter.char_pos = counter.line_start_pos = start  # lines are counted by Source, not lark
        thread = LexerThread(frontend.lexer, LexerState(lark.TextSlice(text, start, end), counter))
        run = frontend.parser.parse
    except (ImportError, AttributeError):  # an older lark: the text before, blanked
        return parser.parse(re.sub(r"[^\n]", " ", text[:start]) + text[start:end], start="start")
    return run(thread, "start")


def parse_recovering(source: Source) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse a spec, reporting one syntax error per broken top-level item.

    When the whole file does not parse, each item (from one line starting with ``model``,
    ``block``, ``let`` or ``from`` to the next) is parsed on its own, at its place in the text
    so that offsets stay true; the items that parse are returned for checking. Items nested
    too deeply for the checker (E005), or with two statements of a body on one line (E001),
    are reported and left out too. Time is linear in the length of the text.
    """
    text = source.text
    deep = _deep_bracket(text)
    if deep is not None:
        offset, what = deep
        diag = _nesting_diagnostic(source, ast.NameRef("", Span(offset, offset + 1)))
        return ast.Module((), Span(0, len(text))), [diag._replace(message=what)]
    try:
        module = _run(text, 0, len(text), "start")
    except lark.exceptions.UnexpectedInput as exc:
        first = _syntax_diagnostic(source, exc)
    else:
        kept, diagnostics, broken, models = _shallow(source, module.items)
        if not diagnostics:
            return module, []
        return ast.Module(tuple(kept), module.span, tuple(broken), tuple(models), True), diagnostics
    bounds = _item_bounds(text)
    items: list = []
    broken: list[str] = []
    broken_models: list[str] = []
    diagnostics: list[Diagnostic] = []
    for a, b in zip(bounds, bounds[1:]):
        if not text[a:b].strip():
            continue
        try:
            parsed = _parse_slice(text, a, b).items
        except lark.exceptions.UnexpectedInput as exc:
            diagnostics.append(_syntax_diagnostic(source, exc, region=(a, b)))
            named = re.match(r"\s*(let|block|model)\s+([A-Za-z_]\w*)", text[a : min(b, a + 200)])
            if named:
                (broken_models if named.group(1) == "model" else broken).append(named.group(2))
            continue
        kept, deep, deep_lets, deep_models = _shallow(source, parsed)
        items.extend(kept)
        diagnostics.extend(deep)
        broken.extend(deep_lets)
        broken_models.extend(deep_models)
    module = ast.Module(tuple(items), Span(0, len(text)), tuple(broken), tuple(broken_models), True)
    return module, diagnostics or [first]


def parse_shape(source: Source) -> ast.InputDecl:
    """Parse the ``--input`` notation, ``[N, 1, 28, 28]`` or ``long[N, T]``."""
    decl = _parse(source, "shape_spec")
    deep = _too_deep(decl)
    if deep is not None:
        raise DiagnosticError(_nesting_diagnostic(source, deep))
    return decl


def _parse(source: Source, start: str):
    try:
        return _run(source.text, 0, len(source.text), start)
    except lark.exceptions.UnexpectedInput as exc:
        raise DiagnosticError(_syntax_diagnostic(source, exc)) from None


# ---------------------------------------------------------------- syntax errors

_READABLE = {
    "CALL_OPEN": "'('",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "$END": "end of file",
}


def _describe_terminal(name: str) -> str:
    if name in _READABLE:
        return _READABLE[name]
    for term in _parser().terminals:
        if term.name == name and term.pattern.type == "str":
            return f"'{term.pattern.value}'"
    return name.lower()


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    kind = _READABLE.get(tok.type)
    return f"{kind} '{tok}'" if kind else f"'{tok}'"


_OPERATORS = {"'+'", "'-'", "'*'", "'/'", "'//'", "'%'", "'@'", "'.'"}


def _expected_list(names) -> str:
    described = sorted({_describe_terminal(n) for n in names})
    # After a complete operand any operator could follow; listing them all hides the real choice.
    if any(d not in _OPERATORS for d in described):
        described = [d for d in described if d not in _OPERATORS]
    if len(described) > 6:
        described = described[:6] + ["..."]
    if len(described) == 1:
        return described[0]
    return ", ".join(described[:-1]) + " or " + described[-1]


def _open_brackets(text: str, upto: int, start: int = 0) -> list[tuple[int, str]]:
    """The brackets opened after ``start`` and still open at ``upto``, outermost first
    (strings and comments skipped)."""
    stack: list[tuple[int, str]] = []
    _scan_brackets(text, start, upto, stack)
    return stack


def _scan_brackets(text: str, start: int, upto: int, stack: list[tuple[int, str]]) -> int:
    """Update ``stack`` (the open brackets, outermost first) with ``text[start:upto]``; returns
    where the scan ended (past ``upto`` when a comment or string runs over it)."""
    i = start
    pairs = {")": "(", "]": "[", "}": "{"}
    while i < upto:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = upto if nl == -1 else nl
            continue
        if ch in "\"'":
            end = text.find(ch, i + 1)
            i = upto if end == -1 else end + 1
            continue
        if ch in "([{":
            stack.append((i, ch))
        elif ch in pairs and stack and stack[-1][1] == pairs[ch]:
            stack.pop()
        i += 1
    return i


def _item_bounds(text: str) -> list[int]:
    """Where the top-level items of a file that does not parse start: at a line that starts with
    ``model``, ``block``, ``train``, ``let`` or ``from``, unless the line is indented inside an
    open ``{`` (a ``let`` written in a body is that body's mistake, not a new item). Linear."""
    bounds = {0, len(text)}
    stack: list[tuple[int, str]] = []
    i = 0
    for match in _ITEM_START.finditer(text):
        pos = match.start()
        if pos < i:
            continue  # inside a comment or string the scan passed over
        i = _scan_brackets(text, i, pos, stack)
        if text[pos] in " \t" and any(kind == "{" for _, kind in stack):
            continue
        bounds.add(pos)
        stack.clear()
    return sorted(bounds)


def _unclosed_bracket(text: str, upto: int, start: int = 0) -> tuple[int, str] | None:
    """The innermost bracket still open at ``upto``."""
    stack = _open_brackets(text, upto, start)
    return stack[-1] if stack else None


_CLOSING = {"(": ")", "[": "]", "{": "}"}


def _opened_here(opened: tuple[int, str]) -> tuple[Label, ...]:
    return (Label(Span(opened[0], opened[0] + 1), f"'{opened[1]}' opened here"),)


def _syntax_help(
    text: str, tok: Token, expected: set[str], region_start: int, region_end: int
) -> tuple[str | None, tuple]:
    """The likely fix for an unexpected token, and a label on the bracket involved, if any
    (``text[region_start:region_end]`` is the part that was parsed)."""
    value = str(tok)
    if tok.type == "$END":
        opened = _unclosed_bracket(text, region_end, region_start)
        if opened is not None:
            return f"add the missing '{_CLOSING[opened[1]]}'", _opened_here(opened)
        return None, ()
    prefixed = re.search(r"(?:\btorch\.)?\bnn\.([A-Za-z_]\w*)", text[max(0, tok.start_pos - 40) : tok.end_pos + 40])
    if prefixed:
        return f"write {prefixed.group(1)} without the '{prefixed.group(0).rsplit('.', 1)[0]}.' prefix", ()
    before = text[region_start : tok.start_pos].rstrip()
    if value == "{" or "'{'" in expected and value in (":", "=") or expected == {"'{'"}:
        item = re.match(r"\s*(model|block)\b", text[region_start : tok.start_pos])
        if item:
            return f"a body is written in braces: {item.group(1)} Name(...) {{ ... }}", ()
    if value == ":" and "'='" in expected and re.search(r"(^|\n)\s*[A-Za-z_]\w*$", before):
        return "a setting is written name = value", ()
    if value == "import" and not before:
        return 'name the file and what to take from it: from "blocks.nn" import Name', ()
    if tok.type == "NAME" and re.search(r"(^|\n)\s*from$", before):
        path = re.match(r"[^\s\"']+", text[tok.start_pos : tok.start_pos + 200]).group()
        return f'the path is a string: from "{path}" import ...', ()
    if value == "(" and re.search(r"[A-Za-z_]\w*\s*:$", before) and "'['" in expected:
        return "a shape is written in brackets: x: [N, 784]", ()
    if value == "}" and before.endswith("->"):
        return "the chain ends with '->': add the next layer, or remove the '->'", ()
    if value == "let" and any(kind == "{" for _, kind in _open_brackets(text, tok.start_pos, region_start)):
        line_end = text.find("\n", tok.end_pos)
        rest = text[tok.end_pos : len(text) if line_end == -1 else line_end].split("#")[0].strip()
        example = rest if "=" in rest and len(rest) <= 60 else "name = value"
        return f"inside a body, a constant is defined without 'let': write {example}", ()
    if value == "=" and text.startswith("=>", tok.start_pos):
        return "layers are chained with '->'", ()
    comparisons = ("<", "<=", ">", ">=", "==", "!=")
    if value in comparisons and re.search(r"(<=?|>=?|==|!=)[^<>=!()\[\]{},\n]*$", text[region_start : tok.start_pos]):
        return f"comparisons do not chain: write (a < b) and (b {value} c)", ()
    if value == ",":
        opened = _unclosed_bracket(text, tok.start_pos, region_start)
        if "'->'" in expected or (opened is not None and opened[1] == "{"):
            return "layers are chained with '->', not ','", ()
    if value in (")", "]", "}"):
        stack = _open_brackets(text, tok.start_pos, region_start)
        if not stack:
            return f"remove this '{value}': nothing is open", ()
        innermost = stack[-1]
        if _CLOSING[innermost[1]] == value:
            return None, ()
        if any(_CLOSING[kind] == value for _, kind in stack):
            return f"add the missing '{_CLOSING[innermost[1]]}'", _opened_here(innermost)
        opens = text.count(innermost[1], region_start, region_end)
        if opens > text.count(_CLOSING[innermost[1]], region_start, region_end):
            # the open bracket is never closed: this closer was meant for it
            return f"close '{innermost[1]}' with '{_CLOSING[innermost[1]]}', not '{value}'", _opened_here(innermost)
        opener = {v: k for k, v in _CLOSING.items()}[value]
        return f"remove this '{value}': it closes no '{opener}'", ()
    if tok.type == "NAME" and ({"'->'", "'}'"} & expected or "end of file" in expected):
        return f"connect the layers with '->': ... -> {value}", ()
    if tok.type in ("INT", "FLOAT", "STRING", "NAME") and "','" in expected:
        return f"separate the values with ',': ..., {value}", ()
    opened = _unclosed_bracket(text, tok.start_pos, region_start)
    if opened is not None and f"'{_CLOSING[opened[1]]}'" in expected:
        return f"add the missing '{_CLOSING[opened[1]]}'", _opened_here(opened)
    return None, ()


def _syntax_diagnostic(
    source: Source, exc: lark.exceptions.UnexpectedInput, region: tuple[int, int] | None = None
) -> Diagnostic:
    """The diagnostic for lark's exception; ``region`` is the slice of text that was parsed."""
    region_start, region_end = region or (0, len(source.text))
    text = source.text  # only text[:region_end] was parsed
    help_text = None
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = text[pos]
        if ch in "\"'":
            message = "unterminated string"
            newline = text.find("\n", pos, region_end)
            span = Span(pos, newline if newline != -1 else region_end)
            help_text = f"close the string with {ch} on the same line"
        else:
            message = f"unexpected character {ch!r}"
            span = Span(pos, pos + 1)
            if ch == ">" and pos > 0 and text[pos - 1] == "=":
                help_text = "layers are chained with '->'"
            elif ch == ";":
                help_text = "a statement ends at the end of its line: remove the ';'"
        return Diagnostic(Severity.ERROR, "E002", message, source, span, "not valid here", help=help_text)
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        tok = exc.token
        # ``accepts`` (after reductions) is the precise set when lark computed it
        expected = set(exc.accepts or ()) or set(exc.expected)
        if tok.type == "$END" and region_end < len(source.text):
            # the item was cut short by the next one
            pos = region_end + len(source.text[region_end:]) - len(source.text[region_end:].lstrip())
            word = source.text[pos:].split(None, 1)[0]
            span = Span(pos, pos + len(word))
            found = f"'{word}'"
        elif tok.type == "$END":
            pos = region_end
            while pos > 0 and text[pos - 1].isspace():
                pos -= 1
            span = Span(pos, pos)
            found = "end of file"
        else:
            span = _tok_span(tok)
            found = _describe_token(tok)
        message = f"expected {_expected_list(expected)}, found {found}"
        help_text, secondary = _syntax_help(
            text, tok, {_describe_terminal(e) for e in expected}, region_start, region_end
        )
        label = "unexpected here"
        return Diagnostic(Severity.ERROR, "E001", message, source, span, label, secondary=secondary, help=help_text)
    pos = getattr(exc, "pos_in_stream", 0) or 0
    return Diagnostic(Severity.ERROR, "E001", "syntax error", source, Span(pos, pos + 1), "here")
