"""Parse spec text with the LALR grammar into an AST; turn lark's exceptions into diagnostics."""

from __future__ import annotations

import ast as pyast
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import lark
from lark import Lark, Token, Transformer, v_args

from nndsl import ast
from nndsl.diagnostics import Diagnostic, DiagnosticError, Label, Severity, Span
from nndsl.source import Source

_GRAMMAR_NAME = "nndsl.lark"


def grammar_path() -> Path:
    """The grammar file: packaged beside the code in a wheel, or in the repository's grammars/."""
    packaged = Path(__file__).resolve().parent.parent / "grammars" / _GRAMMAR_NAME
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "grammars" / _GRAMMAR_NAME


def _cache_file(grammar_text: str) -> str | None:
    """Where lark keeps its compiled parse table, so a cold run skips building LALR tables."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "nndsl")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        directory = tempfile.gettempdir()
    if not os.access(directory, os.W_OK):
        return None
    import hashlib

    digest = hashlib.sha256((grammar_text + lark.__version__ + sys.version).encode()).hexdigest()[:16]
    return os.path.join(directory, f"grammar-{digest}.lark-cache")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    text = grammar_path().read_text(encoding="utf-8")
    return Lark(
        text,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "shape_spec"],
        cache=_cache_file(text) or False,
    )


def _span(meta) -> Span:
    return Span(meta.start_pos, meta.end_pos)


def _tok_span(tok: Token) -> Span:
    return Span(tok.start_pos, tok.end_pos)


@v_args(meta=True)
class _ToAst(Transformer):
    """Parse tree -> AST. Every node keeps its span."""

    def start(self, meta, items):
        span = _span(meta) if not meta.empty else Span(0, 0)
        return ast.Module(tuple(items), span)

    def let_stmt(self, meta, children):
        name, value = children
        return ast.Let(ast.Name(str(name), _tok_span(name)), value, _span(meta))

    def model_def(self, meta, children):
        name, *rest = children
        chain = rest[-1]
        inputs = tuple(c for c in rest[:-1] if c is not None)
        return ast.Model(ast.Name(str(name), _tok_span(name)), inputs, chain, _span(meta))

    def input_decl(self, meta, children):
        name, (dtype, dims) = children
        return ast.InputDecl(ast.Name(str(name), _tok_span(name)), dtype, dims, _span(meta))

    def tensor_type(self, meta, children):
        dtype, *dims = children
        dtype_node = None if dtype is None else ast.Name(str(dtype), _tok_span(dtype))
        return dtype_node, tuple(d for d in dims if d is not None)

    def shape_spec(self, meta, children):
        (dtype, dims) = children[0]
        return ast.InputDecl(ast.Name("x", Span(0, 0)), dtype, dims, _span(meta))

    def chain(self, meta, calls):
        return ast.Chain(tuple(calls), _span(meta))

    def call(self, meta, children):
        name, arguments, selector = children
        return ast.Call(
            ast.Name(str(name), _tok_span(name)),
            arguments if arguments is not None else (),
            selector,
            _span(meta),
        )

    def arguments(self, meta, children):
        return tuple(c for c in children if c is not None)

    def selector(self, meta, children):
        (name,) = children
        return ast.Name(str(name), _tok_span(name))

    def kwarg(self, meta, children):
        name, value = children
        return ast.Arg(ast.Name(str(name), _tok_span(name)), value, _span(meta))

    def posarg(self, meta, children):
        (value,) = children
        return ast.Arg(None, value, _span(meta))

    def _binop(op):  # noqa: N805 - a factory used while building the class
        def build(self, meta, children):
            left, right = children
            return ast.BinOp(op, left, right, _span(meta))

        return build

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    floordiv = _binop("//")
    truediv = _binop("/")
    mod = _binop("%")

    def neg(self, meta, children):
        (operand,) = children
        return ast.Neg(operand, _span(meta))

    def int(self, meta, children):
        (tok,) = children
        return ast.IntLit(int(tok), _tok_span(tok))

    def float(self, meta, children):
        (tok,) = children
        return ast.FloatLit(float(tok), _tok_span(tok))

    def string(self, meta, children):
        (tok,) = children
        return ast.StrLit(pyast.literal_eval(str(tok)), _tok_span(tok))

    def name(self, meta, children):
        (tok,) = children
        return ast.NameRef(str(tok), _tok_span(tok))

    def tuple(self, meta, children):
        return ast.TupleExpr(tuple(c for c in children if c is not None), _span(meta))

    def list(self, meta, children):
        return ast.TupleExpr(tuple(c for c in children if c is not None), _span(meta), is_list=True)


_TRANSFORMER = _ToAst()


def parse(source: Source) -> ast.Module:
    """Parse a whole spec. Raises DiagnosticError (E001/E002) on the first syntax error."""
    return _parse(source, "start")


def parse_shape(source: Source) -> ast.InputDecl:
    """Parse the ``--input`` notation, ``[N, 1, 28, 28]`` or ``long[N, T]``."""
    return _parse(source, "shape_spec")


def _parse(source: Source, start: str):
    try:
        tree = _parser().parse(source.text, start=start)
    except lark.exceptions.UnexpectedInput as exc:
        raise DiagnosticError(_syntax_diagnostic(source, exc)) from None
    return _TRANSFORMER.transform(tree)


# ---------------------------------------------------------------- syntax errors

_READABLE = {
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
    return f"{kind} '{tok}'" if kind and tok.type != "$END" else f"'{tok}'"


_OPERATORS = {"'+'", "'-'", "'*'", "'/'", "'//'", "'%'", "'.'"}


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


def _unclosed_bracket(text: str, upto: int) -> tuple[int, str] | None:
    """The innermost bracket still open at ``upto`` (strings and comments skipped)."""
    stack: list[tuple[int, str]] = []
    i = 0
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
    return stack[-1] if stack else None


def _syntax_diagnostic(source: Source, exc: lark.exceptions.UnexpectedInput) -> Diagnostic:
    text = source.text
    secondary: tuple[Label, ...] = ()
    help_text = None
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = text[pos]
        if ch in "\"'":
            message = "unterminated string"
            span = Span(pos, text.find("\n", pos) if "\n" in text[pos:] else len(text))
            help_text = f"close the string with {ch} on the same line"
        else:
            message = f"unexpected character {ch!r}"
            span = Span(pos, pos + 1)
            if ch == ">" and pos > 0 and text[pos - 1] == "=":
                help_text = "layers are chained with '->'"
        return Diagnostic(Severity.ERROR, "E002", message, source, span, "not valid here", help=help_text)
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        tok = exc.token
        # ``accepts`` (after reductions) is the precise set when lark computed it
        expected = set(exc.accepts or ()) or set(exc.expected)
        if tok.type == "$END":
            pos = len(text.rstrip())
            span = Span(pos, pos)
            found = "end of file"
        else:
            span = _tok_span(tok)
            found = _describe_token(tok)
        message = f"expected {_expected_list(expected)}, found {found}"
        if tok.type == "$END":
            opened = _unclosed_bracket(text, len(text))
            if opened is not None:
                secondary = (Label(Span(opened[0], opened[0] + 1), f"'{opened[1]}' opened here"),)
                closing = {"(": ")", "[": "]", "{": "}"}[opened[1]]
                help_text = f"add the missing '{closing}'"
        elif str(tok) == "=" and text.startswith("=>", tok.start_pos):
            help_text = "layers are chained with '->'"
        elif tok.type == "NAME" and (
            any(_describe_terminal(e) == "'->'" for e in expected)
            or text[: tok.start_pos].rstrip()[-1:].isalnum()
            or text[: tok.start_pos].rstrip().endswith(")")
        ):
            help_text = f"connect the layers with '->': ... -> {tok}"
        label = "unexpected here"
        return Diagnostic(Severity.ERROR, "E001", message, source, span, label, secondary=secondary, help=help_text)
    pos = getattr(exc, "pos_in_stream", 0) or 0
    return Diagnostic(Severity.ERROR, "E001", "syntax error", source, Span(pos, pos + 1), "here")
