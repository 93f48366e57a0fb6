"""The Pygments lexer (``nndsl.pygments_lexer``): on every spec and every ``nn`` block of the docs
it gives no error token, its tokens join back to the text and they agree with the grammar's own
tokens (the same boundaries, a kind that fits: a number is a Number, a keyword a Keyword, ...).
On any text at all it never raises and still joins back. Pygments finds it through the entry
point, by name, by file name, from ``pygmentize`` and from Markdown's code highlighting."""

from __future__ import annotations

import ast
import random
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from conftest import ROOT, SPECS
from hypothesis import given
from hypothesis import strategies as st
from lark import Lark
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace
from test_docs_examples import code_blocks, tagged

from nndsl.pygments_lexer import NNDSLLexer
from nndsl.syntax.parser import grammar_path

sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz  # noqa: E402

LEXER = NNDSLLexer()
SPEC_FILES = sorted(SPECS.rglob("*.nn"))
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: docs blocks that show a mistake no valid spec can contain: an Error token is right there
LEXICAL_MISTAKES = {"E002"}  # an invalid character or an unterminated literal


def _nn_blocks() -> list:
    """Every ``nn`` and ``nn-error`` block of the README and the docs."""
    found = []
    for page in PAGES:
        for block in code_blocks(page):
            if tagged(block, "nn") is not None or tagged(block, "nn-error") is not None:
                found.append(pytest.param(block, id=block.where))
    return found


NN_BLOCKS = _nn_blocks()


def tokens(text: str) -> list[tuple[int, object, str]]:
    return list(LEXER.get_tokens_unprocessed(text))


@lru_cache(maxsize=1)
def _grammar() -> Lark:
    return Lark(Path(grammar_path()).read_text(), parser="lalr", lexer="basic")


@pytest.fixture
def grammar() -> Lark:
    """The grammar's own lexer (``lexer='basic'``, the one nndsl parses with)."""
    return _grammar()


def _fits(terminal: str, value: str, kind) -> bool:
    """Whether a lexer token of ``kind`` fits a grammar token of type ``terminal``."""
    if terminal == "COMMENT":
        return kind in Comment
    if terminal == "STRING":
        return kind in String
    if terminal == "INT":
        return kind is Number.Integer
    if terminal == "FLOAT":
        return kind is Number.Float
    if terminal == "NAME":  # True, None, a dtype and a train setting are names to the grammar
        return kind in Name or kind in (Keyword.Constant, Keyword.Type, Keyword.Pseudo)
    if terminal == value.upper():  # a keyword: MODEL, LET, IN, ...
        return kind in Keyword or kind is Operator.Word
    if terminal.startswith("__IGNORE"):
        return kind is Whitespace
    return kind in Operator or kind in Punctuation


def assert_agrees_with_the_grammar(text: str, grammar: Lark) -> None:
    """Every grammar token starts and ends on a lexer token boundary, is one lexer token (a
    string or comment may be several) and the lexer's tokens inside it are of a kind that fits it."""
    ours = tokens(text)
    assert "".join(value for _, _, value in ours) == text
    starts = {at: (kind, value) for at, kind, value in ours}
    boundaries = set(starts) | {len(text)}
    for tok in grammar.lex(text, dont_ignore=True):
        start, end = tok.start_pos, tok.end_pos
        assert start in boundaries and end in boundaries, (tok.type, str(tok), start)
        inside = [(kind, value) for at, (kind, value) in starts.items() if start <= at < end]
        bad = [(str(kind), value) for kind, value in inside if not _fits(tok.type, str(tok), kind)]
        if len(inside) > 1 and tok.type not in ("STRING", "COMMENT") and not tok.type.startswith("__IGNORE"):
            bad.append(("split", str(tok)))  # only a string (at its quotes) or a comment is split
        assert not bad, f"{tok.type} {str(tok)!r} at {start}: {bad}"


def test_the_agreement_check_is_not_blind(monkeypatch, grammar):
    """A lexer that called a number a name, or split a name in two, would fail it."""
    real = tokens
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "tokens", lambda text: [(a, Name if k in Number else k, v) for a, k, v in real(text)])
    with pytest.raises(AssertionError, match="INT"):
        assert_agrees_with_the_grammar("let w = 2\n", grammar)
    split = [
        (0, Keyword.Declaration, "let"),
        (3, Whitespace, " "),
        (4, Name, "wi"),
        (6, Name, "de"),
        (8, Whitespace, "\n"),
    ]
    monkeypatch.setattr(module, "tokens", lambda text: split)
    with pytest.raises(AssertionError, match="NAME"):
        assert_agrees_with_the_grammar("let wide\n", grammar)


def error_tokens(text: str) -> list[tuple[int, str]]:
    return [(at, value) for at, kind, value in tokens(text) if kind in Error]


# ---------------------------------------------------------------- every spec and docs block


def test_the_corpus_is_all_there():
    assert len(SPEC_FILES) >= 40 and any(path.parent.name == "bad" for path in SPEC_FILES)
    assert len(NN_BLOCKS) >= 80


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda path: str(path.relative_to(SPECS)))
def test_a_spec_lexes_without_errors_as_the_grammar_does(path, grammar):
    """specs/bad/ included: their mistakes are shapes, arguments and one syntax error (a missing
    comma), all made of valid tokens, so none of them needs an Error token."""
    text = path.read_text()
    assert error_tokens(text) == []
    assert_agrees_with_the_grammar(text, grammar)


@pytest.mark.parametrize("block", NN_BLOCKS)
def test_a_docs_block_lexes_without_errors_as_the_grammar_does(block, grammar):
    codes = tagged(block, "nn-error") or ()
    errors = error_tokens(block.text)
    if LEXICAL_MISTAKES & set(codes):
        assert errors, "the block shows an invalid character: the lexer marks it"
        return
    assert errors == []
    assert_agrees_with_the_grammar(block.text, grammar)


def test_the_invalid_character_of_the_docs_is_the_error_token():
    (block,) = [b.values[0] for b in NN_BLOCKS if "E002" in (tagged(b.values[0], "nn-error") or ())]
    assert [value for _, value in error_tokens(block.text)] == ["$"]


# ---------------------------------------------------------------- what each construct is

SAMPLE = """\
# a comment
from "blocks.nn" import BasicBlock, width
let hidden = 1_000 // 2
model Net(x: [N, 3, H, W], tokens: long[N, T], act=ReLU, depth) {
    y = x -> Conv2d(3, 16, 3, padding=1) -> act -> BasicBlock(16) * 2   # nndsl: ignore[W305]
    h = LSTM(16, 8, batch_first=True).last
    m = (tokens == 0) & ~mask | a ^ b
    s = q @ k ** 2 % 7 - 1.5e-3 + .5 / 2.
    for i in range(4) { y = y -> ReLU }
    z = x[..., :-2] if depth > 1 and not False else None
    return cat(y, z, dim=1), len([1, 2])
}
train Net {
    loss = CrossEntropyLoss(label_smoothing=0.1)
    optimizer = Adam(lr=1e-3)
    epochs = 10
    device = "cuda:0\\t"
}
"""


def kinds(text: str) -> dict[str, object]:
    """The kind of each token text's first occurrence."""
    found: dict[str, object] = {}
    for _, kind, value in tokens(text):
        found.setdefault(value, kind)
    return found


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("# a comment", Comment.Single),
        ("# nndsl: ignore[W305]", Comment.Special),
        ("from", Keyword.Namespace),
        ("import", Keyword.Namespace),
        ('"blocks.nn"', None),  # checked below: a string is split at its quotes
        ("let", Keyword.Declaration),
        ("hidden", Name.Constant),
        ("1_000", Number.Integer),
        ("//", Operator),
        ("model", Keyword.Declaration),
        ("Net", Name.Class),
        ("x", Name.Variable),
        ("N", Name),
        ("long", Keyword.Type),
        ("act", Name.Attribute),
        ("ReLU", Name.Class),
        ("->", Operator),
        ("Conv2d", Name.Class),
        ("padding", Name.Attribute),
        ("BasicBlock", Name.Class),
        ("LSTM", Name.Class),
        ("batch_first", Name.Attribute),
        ("True", Keyword.Constant),
        ("last", Name.Attribute),
        ("==", Operator),
        ("&", Operator),
        ("~", Operator),
        ("|", Operator),
        ("^", Operator),
        ("@", Operator),
        ("**", Operator),
        ("%", Operator),
        ("1.5e-3", Number.Float),
        (".5", Number.Float),
        ("2.", Number.Float),
        ("for", Keyword),
        ("in", Operator.Word),
        ("range", Name.Builtin),
        ("...", Punctuation),
        ("if", Keyword),
        ("and", Operator.Word),
        ("not", Operator.Word),
        ("None", Keyword.Constant),
        ("return", Keyword),
        ("cat", Name.Function),
        ("dim", Name.Attribute),
        ("len", Name.Builtin),
        ("train", Keyword.Declaration),
        ("loss", Keyword.Pseudo),
        ("CrossEntropyLoss", Name.Class),
        ("label_smoothing", Name.Attribute),
        ("epochs", Keyword.Pseudo),
        ("device", Keyword.Pseudo),
        ("\\t", String.Escape),
    ],
)
def test_each_construct_has_its_token(value, kind):
    found = kinds(SAMPLE)
    if kind is None:
        assert found['"'] is String.Double and found["blocks.nn"] is String.Double
        return
    assert found.get(value) is kind, (value, found.get(value))


def test_the_sample_is_a_valid_spec_to_the_grammar(grammar):
    assert error_tokens(SAMPLE) == []
    assert_agrees_with_the_grammar(SAMPLE, grammar)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x # why nndsl: ignore[W301] here", ["# why ", "nndsl: ignore[W301]", " here"]),
        ("# see # nndsl: ignore[W301, W305]", ["# see ", "# nndsl: ignore[W301, W305]"]),
        ("#nndsl:ignore", ["#nndsl:ignore"]),  # malformed (W310), still the directive
        ("# nndsl is great", ["# nndsl is great"]),
    ],
)
def test_a_suppression_directive_is_special_within_its_comment(text, expected):
    comment = [(kind, value) for _, kind, value in tokens(text) if kind in Comment]
    assert [value for _, value in comment] == expected
    assert [kind is Comment.Special for kind, _ in comment] == ["nndsl:" in value for value in expected]


def test_a_hash_inside_a_string_is_no_comment():
    assert all(kind not in Comment for _, kind, _ in tokens('x = "# nndsl: ignore[W301]"'))


def test_a_keyword_argument_is_told_from_an_assignment_and_a_comparison():
    found = kinds("a = f(b=1, c == 2, d <= 3)\n")
    assert found["a"] is Name and found["b"] is Name.Attribute and found["c"] is Name and found["d"] is Name


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("x -> $", ["$"]),
        ("a ? b", ["?"]),
        ("a ! b", ["!"]),
        ("x -> Linéar", ["é"]),
        ('s = "open\ny', ['"open']),  # an unterminated string, up to the line's end
        ("s = 'open\\", ["'open\\"]),
        ("a;b", [";"]),
        ("a\vb", ["\v"]),  # the grammar's white space is space, tab, CR, LF and FF only
    ],
)
def test_what_the_grammar_cannot_read_is_an_error_token(text, bad):
    assert [value for _, value in error_tokens(text)] == bad
    assert "".join(value for _, _, value in tokens(text)) == text


def test_non_ascii_text_is_fine_in_comments_and_strings():
    assert error_tokens('# größe ≥ 2\nx = "naïve"\n') == []


def test_a_definition_split_over_lines_still_types_its_inputs():
    found = kinds("model\n  Net # the net\n  (\n    tokens :\n long\n [N]) {}\ntrain # it\n Net {\n epochs = 2\n}\n")
    assert found["Net"] is Name.Class and found["tokens"] is Name.Variable
    assert found["long"] is Keyword.Type and found["epochs"] is Keyword.Pseudo


def test_a_setting_is_a_train_key_only_inside_a_train_section():
    found = kinds("model M(x: [N, 2]) {\n    epochs = x\n}\ntrain {\n    seed = 1\n}\nlet lr = 2\n")
    assert found["epochs"] is Name and found["seed"] is Keyword.Pseudo and found["lr"] is Name.Constant


def test_unbalanced_brackets_are_no_lexical_error():
    text = "model M(x: [N, 2) {\n    x -> Linear(2, 3]\n}}}\n)))\n]]\ntrain M {\n    epochs = 1\n}\n"
    assert "".join(value for _, _, value in tokens(text)) == text
    assert error_tokens(text) == []
    assert kinds(text)["epochs"] is Keyword.Pseudo


@pytest.mark.parametrize("closer", ["\n}\n", "\nreturn y\n}\n"])
def test_a_bracket_left_open_ends_where_the_body_or_a_statement_does(closer):
    """`Linear(64, 10` without its ")": the next lines are coloured as if it were there."""
    text = "model M(x: [N, 64]) {\n    y = x -> Linear(64, 10" + closer + "train M {\n    loss = L(w=1)\n}\n"
    found = kinds(text)
    assert found["loss"] is Keyword.Pseudo and found["w"] is Name.Attribute and found["train"] is Keyword.Declaration


# ---------------------------------------------------------------- any text


@given(st.text(max_size=300))
def test_any_text_lexes_and_joins_back(text):
    assert "".join(value for _, _, value in tokens(text)) == text


_SPEC_ALPHABET = st.sampled_from(
    list("abcxyzNTW0123456789_.,:;()[]{}+-*/%@&|^~<>=!#\"'\\ \t\n\r\f$?é")
    + ["model ", "block ", "train ", "let ", "for ", " in ", "->", "**", "//", "...", "# nndsl: ignore[W3"]
)


@given(st.lists(_SPEC_ALPHABET, max_size=80).map("".join))
def test_spec_like_garbage_lexes_and_joins_back(text):
    assert "".join(value for _, _, value in tokens(text)) == text


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_programs_lex_as_the_grammar_does(seed):
    """The fuzz harness's random programs: valid text, so no error token and the grammar's tokens."""
    text = fuzz.Generator(random.Random(seed)).program()
    assert error_tokens(text) == []
    assert_agrees_with_the_grammar(text, _grammar())


def test_the_fuzz_harness_mutants_lex_and_join_back():
    """Its mutated specs (hostile bytes included): never a raise, always the same text back."""
    library = fuzz.library()
    lines = [line for text in library.values() for line in text.splitlines() if line.strip()]
    for index in range(150):
        text = fuzz.make_case(7, index, library, lines).text
        assert "".join(value for _, _, value in tokens(text)) == text


# ---------------------------------------------------------------- found by Pygments and its users


def test_the_entry_point_gives_the_lexer_by_name_and_file_name():
    assert isinstance(get_lexer_by_name("nn"), NNDSLLexer)
    assert isinstance(get_lexer_by_name("nndsl"), NNDSLLexer)
    assert isinstance(get_lexer_for_filename("resnet.nn"), NNDSLLexer)


def test_highlight_writes_html():
    html = highlight((SPECS / "fashion_mlp.nn").read_text(), get_lexer_by_name("nn"), HtmlFormatter())
    assert '<span class="kd">model</span>' in html
    assert '<span class="nc">FashionMLP</span>' in html
    assert '<span class="err">' not in html


def test_pygmentize_colours_a_spec():
    pygmentize = shutil.which("pygmentize", path=str(Path(sys.executable).parent))
    if pygmentize is None:
        pytest.skip("no pygmentize console script beside this interpreter")
    spec = str(SPECS / "fashion_mlp.nn")
    command = [sys.executable, pygmentize]  # this interpreter: a copied venv's scripts may name another
    run = subprocess.run([*command, "-l", "nn", "-f", "html", spec], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert '<span class="nc">Linear</span>' in run.stdout
    named = subprocess.run([*command, "-N", spec], capture_output=True, text=True, timeout=60)
    assert named.stdout.strip() == "nndsl"


def test_markdown_fenced_nn_blocks_are_coloured():
    """Python-Markdown's code highlighting (what MkDocs uses) finds the lexer by the fence's name."""
    markdown = pytest.importorskip("markdown")
    html = markdown.markdown("```nn\nlet w = 2\n```\n", extensions=["fenced_code", "codehilite"])
    assert '<span class="kd">let</span>' in html and '<span class="no">w</span>' in html


def test_the_lexer_imports_nothing_from_nndsl():
    """Pygments imports every plugin lexer when it guesses a language: this one costs it no nndsl import."""
    tree = ast.parse((ROOT / "nndsl" / "pygments_lexer.py").read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert imported and not [name for name in imported if name and name.split(".")[0] == "nndsl"]


def test_pygments_finding_the_lexer_loads_neither_the_grammar_nor_the_checker():
    """Pygments imports every plugin lexer when it looks a file name up: nndsl costs it one module."""
    code = (
        "import sys; from pygments.lexers import get_lexer_for_filename; get_lexer_for_filename('a.nn')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('nndsl', 'lark'))\n"
        "assert loaded == ['nndsl', 'nndsl.pygments_lexer', 'nndsl.version'], loaded"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
