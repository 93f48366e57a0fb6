"""A Pygments lexer for nndsl specs (``.nn`` files and ```` ```nn ```` blocks).

Registered through the ``pygments.lexers`` entry point, so Sphinx, MkDocs, ``pygmentize`` and
anything else built on Pygments colours ``nn`` code once nndsl is installed with its
``pygments`` extra. It follows ``grammars/nndsl.lark`` token by token and imports nothing from
nndsl: Pygments loads every plugin lexer when it guesses a language, and this module should cost
it no more than its own regexes. Names are coloured by their form and place (a capitalised name
is a layer or block, a name touching ``(`` a function call, ``name=`` in parentheses a keyword
argument), never by a catalogue of layers that could go stale.

Token types, all standard ones so that every style colours them:

- ``Keyword.Declaration``: ``let model block train``; ``Keyword.Namespace``: ``from import``;
  ``Keyword``: ``return if else for``; ``Operator.Word``: ``and or not in``;
  ``Keyword.Constant``: ``True False None``; ``Keyword.Type``: a dtype before a declared shape
  (``tokens: long[N, T]``); ``Keyword.Pseudo``: a setting of a train section (``epochs =``);
- ``Name.Class``: a model or block at its definition, a layer or block used (``Conv2d``,
  ``ReLU``, ``BasicBlock``); single capital letters (``N``, ``C``, ``H``, ``W``) are sizes, plain
  ``Name``; ``Name.Function``: a lower-case name called (``cat(``, ``softmax(``);
  ``Name.Builtin``: ``min max len range``; ``Name.Attribute``: a keyword argument or default
  (``stride=2``) and a selector (``.last``); ``Name.Variable``: a declared input (``x:``);
  ``Name.Constant``: the name a ``let`` defines;
- ``Number.Integer`` / ``Number.Float`` (underscores, exponents, ``1.`` and ``.5``);
  ``String.Double`` / ``String.Single`` with ``String.Escape``;
- ``Comment.Single``; the directive of a suppression comment (``# nndsl: ignore[W301]``) is
  ``Comment.Special``;
- ``Operator``: ``-> + - * / // % ** @ & | ^ ~ =`` and the comparisons; ``Punctuation``:
  brackets, ``, : .`` and ``...``.

What the grammar cannot read (``$``, ``?``, a lone ``!``, a non-ASCII letter outside a comment or
string, an unterminated string: nndsl's E002) is an ``Error`` token; a syntax error made of valid
tokens (a missing comma, an unbalanced bracket) is not, and a bracket left open ends at the next
``}`` or at a keyword that starts an item or statement, so the rest of the file keeps its
colours. The tokens always join back to the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
    _TokenType,
)

__all__ = ["NNDSLLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SPACE = r"[ \t\r\n\f]+"  # the grammar's white space, and no other (no \v, no Unicode spaces)
_DIGITS = r"[0-9](?:_?[0-9])*"
#: a suppression directive, as nndsl.suppression reads it
_DIRECTIVE = re.compile(r"nndsl:[ \t]*ignore\b(?:\[[^\]\n]*\]?)?")


def _nothing(lexer: RegexLexer, match: re.Match) -> Iterator[tuple[int, _TokenType, str]]:
    """No token: for a rule that only changes the state on an empty match."""
    return iter(())


def _comment(lexer: RegexLexer, match: re.Match) -> Iterator[tuple[int, _TokenType, str]]:
    """A comment; a suppression directive in it (``# nndsl: ignore[W301]``) is Comment.Special,
    from its own ``#`` where one stands right before it (as nndsl.suppression spans it)."""
    text, start = match.group(), match.start()
    directive = _DIRECTIVE.search(text)
    if directive is None:
        yield start, Comment.Single, text
        return
    hash_at = text.rfind("#", 0, directive.start())  # its own '#' in a comment of several
    begin = directive.start() if text[hash_at + 1 : directive.start()].strip(" \t") else hash_at
    for at, end, kind in ((0, begin, Comment.Single), (begin, directive.end(), Comment.Special)):
        if end > at:
            yield start + at, kind, text[at:end]
    if directive.end() < len(text):
        yield start + directive.end(), Comment.Single, text[directive.end() :]


class NNDSLLexer(RegexLexer):
    """Lexer for nndsl neural-network architecture specs."""

    name = "nndsl"
    aliases: ClassVar[list[str]] = ["nndsl", "nn"]
    filenames: ClassVar[list[str]] = ["*.nn"]
    mimetypes: ClassVar[list[str]] = ["text/x-nndsl"]

    tokens: ClassVar[dict] = {
        # a file's top level, and the body of a model, block or loop
        "root": [
            include("common"),
            (r"\{", Punctuation, "#push"),
            (r"\}", Punctuation, "#pop"),  # a stray one at the top level stays in root
            (r"[)\]]", Punctuation),  # a stray one
            include("names"),
        ],
        # white space and comments, wherever they may stand
        "space": [
            (_SPACE, Whitespace),
            (r"#[^\n]*", _comment),
        ],
        "common": [
            include("space"),
            (r'"(?:[^"\\\n]|\\[^\n])*\\?(?=\n|\Z)', Error),  # unterminated: the grammar refuses it
            (r"'(?:[^'\\\n]|\\[^\n])*\\?(?=\n|\Z)", Error),
            (r'"', String.Double, "dstring"),
            (r"'", String.Single, "sstring"),
            (r"(" + _DIGITS + r")?\.[0-9](?:_?[0-9])*(?:[eE][+-]?[0-9]+)?", Number.Float),
            (_DIGITS + r"[eE][+-]?[0-9]+", Number.Float),
            (_DIGITS + r"\.(?![0-9A-Za-z_])", Number.Float),
            (_DIGITS, Number.Integer),
            (r"\.\.\.", Punctuation),
            (r"(\.)([ \t\r\n\f]*)(" + _NAME + ")", bygroups(Punctuation, Whitespace, Name.Attribute)),
            (r"->|\*\*|//|==|!=|<=|>=|[-+*/%@&|^~<>=]", Operator),
            (r"\(", Punctuation, "paren"),
            (r"\[", Punctuation, "bracket"),
            (r"[,:.]", Punctuation),
            (r"(model|block)\b", Keyword.Declaration, "definition"),
            (r"(train)\b", Keyword.Declaration, "train-head"),
            (r"(let)(" + _SPACE + r")(" + _NAME + ")", bygroups(Keyword.Declaration, Whitespace, Name.Constant)),
            (r"let\b", Keyword.Declaration),
            (words(("from", "import"), suffix=r"\b"), Keyword.Namespace),
            (words(("return", "if", "else", "for"), suffix=r"\b"), Keyword),
            (words(("and", "or", "not", "in"), suffix=r"\b"), Operator.Word),
            (words(("True", "False", "None"), suffix=r"\b"), Keyword.Constant),
            (words(("min", "max", "len", "range"), suffix=r"\b"), Name.Builtin),
        ],
        # plain names, after every rule that gives a name a special meaning
        "names": [
            (r"[A-Z][0-9_]*(?![A-Za-z0-9_])", Name),  # a symbolic size: N, C, H, W, T, D2
            (r"[A-Z][A-Za-z0-9_]*", Name.Class),
            (_NAME + r"(?=\()", Name.Function),
            (_NAME, Name),
        ],
        # inside ( ): a call's arguments, a tuple, a parenthesised expression
        "paren": [
            (r"(" + _NAME + r")([ \t\r\n\f]*)(=)(?!=)", bygroups(Name.Attribute, Whitespace, Operator)),
            include("unclosed"),
            include("common"),
            (r"[)\]]", Punctuation, "#pop"),  # a "]" for ")" closes it too: the grammar's mistake, not ours
            (r"\{", Punctuation, "root"),  # a loop's body inside a call
            include("names"),
        ],
        # inside [ ]: a shape, a list, an index or slice
        "bracket": [
            include("unclosed"),
            include("common"),
            (r"[)\]]", Punctuation, "#pop"),
            (r"\{", Punctuation, "root"),
            include("names"),
        ],
        # a bracket left open: what cannot stand inside one (a "}", a word that starts an item or
        # a statement) closes it, so that the rest of the file is coloured as it would be
        "unclosed": [
            (r"(?=\})", _nothing, "#pop"),
            (r"(?=(?:model|block|train|let|from|return)\b)", _nothing, "#pop"),
        ],
        # after `model` or `block`: the name, then the parameters
        "definition": [
            include("space"),
            (_NAME, Name.Class),
            (r"\(", Punctuation, ("#pop", "parameters")),
            default("#pop"),
        ],
        "parameters": [
            (r"(" + _NAME + r")([ \t\r\n\f]*)(:)", bygroups(Name.Variable, Whitespace, Punctuation), "declared"),
            include("paren"),
        ],
        # after `x:` in a definition: an optional dtype, then the shape
        "declared": [
            include("space"),
            (_NAME, Keyword.Type),
            (r"\[", Punctuation, ("#pop", "bracket")),
            default("#pop"),
        ],
        # after `train`: the model's name, if any, then the section
        "train-head": [
            include("space"),
            (_NAME, Name.Class),
            (r"\{", Punctuation, ("#pop", "train")),
            default("#pop"),
        ],
        "train": [
            (r"(" + _NAME + r")([ \t\r\n\f]*)(=)(?!=)", bygroups(Keyword.Pseudo, Whitespace, Operator)),
            include("root"),
        ],
        "dstring": [
            (r'[^"\\\n]+', String.Double),
            (r"\\[^\n]", String.Escape),
            (r'"', String.Double, "#pop"),
        ],
        "sstring": [
            (r"[^'\\\n]+", String.Single),
            (r"\\[^\n]", String.Escape),
            (r"'", String.Single, "#pop"),
        ],
    }
