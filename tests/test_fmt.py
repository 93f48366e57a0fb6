"""``nndsl fmt``: the layout rules, and on every spec of the repository and on fuzzed specs that
formatting is idempotent, keeps the AST (positions aside) and keeps every comment; the command's
--check, --diff, standard input, syntax errors, CRLF, BOM, a missing final newline, unicode."""

from __future__ import annotations

import io
import os
import random
import re
import sys
from pathlib import Path

import pytest
from conftest import ROOT, bad_specs, good_specs, zoo_specs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndsl import fmt
from nndsl.cli import main
from nndsl.source import Source
from nndsl.syntax import parse_recovering
from nndsl.syntax.parser import _parser

sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz  # noqa: E402


def _ast(text: str):
    module, diagnostics = parse_recovering(Source("<t>", text))
    assert not diagnostics, [d.message for d in diagnostics]
    return fmt._shape(module)


def _comments(text: str) -> list[str]:
    return [str(t).rstrip() for t in _parser().lex(text, dont_ignore=True) if t.type == "COMMENT"]


def _parses(text: str) -> bool:
    return not parse_recovering(Source("<t>", text))[1]


def assert_formats_well(text: str, width: int = fmt.DEFAULT_WIDTH) -> str:
    """Format ``text``: the result parses to the same AST, holds the same comments, is a fixed
    point, ends with one newline, and its lines keep to the width unless no ``->`` could break them."""
    out = fmt.format_text(text, "<t>", width)
    assert _ast(out) == _ast(text)
    assert _comments(out) == _comments(text)
    assert fmt.format_text(out, "<t>", width) == out
    if out:
        assert out.endswith("\n") and not out.endswith("\n\n")
    return out


# ---------------------------------------------------------------- every spec in the repository


def _fenced_specs() -> list:
    """The spec examples of the README and the docs that parse (fragments are left out)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for number, block in enumerate(re.findall(r"```(?:nn)?\n(.*?)```", page.read_text(encoding="utf-8"), re.S)):
            if re.search(r"^(model|block) \w+\(", block, re.M) and _parses(block):
                found.append(pytest.param(block, id=f"{page.name}:{number}"))
    return found


REPO_SPECS = [p for p in good_specs() + zoo_specs() + bad_specs() if _parses(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("path", REPO_SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_of_the_repository_is_already_in_the_canonical_layout(path):
    text = path.read_text(encoding="utf-8")
    assert assert_formats_well(text) == text


@pytest.mark.parametrize("path", REPO_SPECS, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize("width", [30, 60, 90])
def test_every_spec_keeps_its_meaning_at_any_width(path, width):
    out = assert_formats_well(path.read_text(encoding="utf-8"), width)
    for line in out.splitlines():
        code = [t for t in _parser().lex(line) if t.type != "COMMENT"]
        if code and code[-1].end_pos > width:
            assert not _breakable(code), line


def _breakable(tokens) -> bool:
    """A line has a `->` after its first token outside the brackets it opens."""
    depth = lowest = 0
    for i, tok in enumerate(tokens):
        if i and str(tok) == "->" and depth == lowest:
            return True
        if str(tok) in "([{":
            depth += 1
        elif str(tok) in ")]}":
            depth -= 1
            lowest = min(lowest, depth)
    return False


@pytest.mark.parametrize("text", _fenced_specs())
def test_the_examples_of_the_docs_format_well(text):
    assert_formats_well(text)


def test_the_repository_has_specs_of_every_kind():
    assert len(REPO_SPECS) >= 30 and len(_fenced_specs()) >= 2


# ---------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    "before, after",
    [
        ("let  w=4", "let w = 4"),
        ("let v = - w+1", "let v = -w + 1"),
        ("let v = 2*-3", "let v = 2 * -3"),
        ("let t = ( 1,2 , )", "let t = (1, 2,)"),
        ("let b = not(1==2)and 3>=2 or not (1)", "let b = not(1 == 2) and 3 >= 2 or not (1)"),
        ("let c = 1 if 2<3 else 4", "let c = 1 if 2 < 3 else 4"),
        ("let d = 7//2 % 3", "let d = 7 // 2 % 3"),
        ("let p = - 2**3 ** 2", "let p = -2 ** 3 ** 2"),
        ("let q = ~ 5|6&3^1", "let q = ~5 | 6 & 3 ^ 1"),
        ("model M(x: [N, 4]) {\nx[None,:, : 2,...,::2]\n}", "model M(x: [N, 4]) {\n    x[None, :, :2, ..., ::2]\n}"),
        ("model M(m: bool[N, 4]) {\n~ m| ~m\n}", "model M(m: bool[N, 4]) {\n    ~m | ~m\n}"),
        ('from "a.nn" import A ,B', 'from "a.nn" import A, B'),
        ("model M( x :[ N,4 ] , y: long [N , T],k = 2 ){\nx\n}", "model M(x: [N, 4], y: long[N, T], k=2) {\n    x\n}"),
        (
            "model M(x: [N, 4]) {\ny = x [ : , 0:-1 , ... ]\ny\n}",
            "model M(x: [N, 4]) {\n    y = x[:, 0:-1, ...]\n    y\n}",
        ),
        (
            "model M(x: [N, 4]) {\nx->Linear( 4,2 , bias = False )\n}",
            "model M(x: [N, 4]) {\n    x -> Linear(4, 2, bias=False)\n}",
        ),
        ("model M(x: [N, 4]) {\nl = Linear(4, 4)\nl . weight = l.weight\nl(x)\n}", None),
        ("model M(x: [N, 4]) { Linear(4, 2) }", "model M(x: [N, 4]) { Linear(4, 2) }"),
        ("train M {  }", "train M {}"),
    ],
)
def test_spacing(before, after):
    out = assert_formats_well(before + "\n")
    if after is not None:
        assert out == after + "\n"


def test_a_parenthesis_after_a_space_stays_apart_from_what_precedes_it():
    # `(` touching a name is a call; after a space or a new line it opens a new expression
    text = "model M(x: [N, 4]) {\n    a = x\n    (a) -> ReLU\n}\n"
    assert assert_formats_well(text) == text


def test_indentation_follows_the_braces_and_the_statements():
    text = (
        "model M(x: [N, 4]) {\n"
        "  a = x\n"
        "-> ReLU\n"
        "            -> Linear(4, 4)\n"
        "   x + a\n"
        "-> for i in range(2) {\n"
        "Linear(4, 4)\n"
        "         -> ReLU\n"
        "}\n"
        "-> ReLU\n"
        "   }\n"
    )
    assert assert_formats_well(text) == (
        "model M(x: [N, 4]) {\n"
        "    a = x\n"
        "        -> ReLU\n"  # a named chain continues 4 deeper
        "        -> Linear(4, 4)\n"
        "    x + a\n"
        "    -> for i in range(2) {\n"  # a bare chain continues at its statement's indentation
        "        Linear(4, 4)\n"
        "        -> ReLU\n"
        "    }\n"
        "    -> ReLU\n"
        "}\n"
    )


def test_brackets_open_at_a_line_end_hang_and_others_align():
    text = (
        "block B(x: [N, C], w) {\n"
        "Residual(\n"
        "Linear(C, C) -> ReLU\n"
        "-> Linear(C, C),\n"
        "shortcut=Identity\n"
        "if w > 1 else None,\n"
        ")\n"
        "-> Add(Linear(C, C),\n"
        "Identity)\n"
        "}\n"
    )
    assert fmt.format_text(text) == (
        "block B(x: [N, C], w) {\n"
        "    Residual(\n"
        "        Linear(C, C) -> ReLU\n"
        "        -> Linear(C, C),\n"
        "        shortcut=Identity\n"
        "            if w > 1 else None,\n"
        "    )\n"
        "    -> Add(Linear(C, C),\n"
        "           Identity)\n"
        "}\n"
    )


def test_comments_keep_their_text_and_trailing_ones_their_column():
    text = (
        "# head ü 注 🎉\n"
        "model M(x: [N, 4]) {\n"
        "        # about the chain\n"
        "    Linear(4,4)              # aligned\n"
        "    -> ReLU -> Linear(4,4)   # with this one\n"
        "-> ReLU -> Linear(4, 4)# tight   \n"
        "    # before the end\n"
        "}\n"
        "# tail"
    )
    assert assert_formats_well(text) == (
        "# head ü 注 🎉\n"
        "model M(x: [N, 4]) {\n"
        "    # about the chain\n"
        "    Linear(4, 4)             # aligned\n"
        "    -> ReLU -> Linear(4, 4)  # with this one\n"
        "    -> ReLU -> Linear(4, 4)  # tight\n"
        "    # before the end\n"
        "}\n"
        "\n"
        "# tail\n"
    )


def test_blank_lines_become_one_and_none_open_or_close_a_body():
    text = "\n\nlet a = 1\n\n\n\nlet b = 2\nmodel M(x: [N, 4]) {\n\n    x\n\n    -> ReLU\n\n}\nlet c = 3\n\n\n"
    assert assert_formats_well(text) == (
        "let a = 1\n\nlet b = 2\nmodel M(x: [N, 4]) {\n    x\n\n    -> ReLU\n}\n\nlet c = 3\n"
    )


def test_a_long_chain_is_broken_before_an_arrow_as_late_as_fits():
    chain = " -> ".join(f"Linear(8, 8, bias=True) -> ReLU{i}" for i in range(6))
    text = f"model M(x: [N, 8]) {{\n    y = x -> {chain}\n    y\n}}\n"
    out = assert_formats_well(text, 80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) > 4 and all(line.startswith("        -> ") for line in lines[2:-2])
    # as late as fits: the next step would not have fitted on the line before
    for line, following in zip(lines[1:-2], lines[2:-2]):
        step = following.strip().split(" -> ")[0]
        assert len(line) + 1 + len(step) > 80


def test_an_unbreakable_line_is_left_long():
    text = f"model M(x: [N, 8]) {{\n    Linear({'1' * 100}, 8)\n}}\n"
    assert assert_formats_well(text, 40) == text


def test_arrows_inside_brackets_are_not_broken():
    text = f"model M(x: [N, 8]) {{\n    Residual({' -> '.join(['Linear(8, 8)'] * 12)})\n}}\n"
    assert assert_formats_well(text, 60) == text


def test_crlf_stays_crlf_and_lf_stays_lf():
    text = (ROOT / "specs" / "cnn.nn").read_text(encoding="utf-8")
    crlf = text.replace("\n", "\r\n")
    assert assert_formats_well(crlf) == crlf
    messy = "model M(x: [N, 4]) {\r\nLinear(4,2) # c\r\n}"
    assert fmt.format_text(messy) == "model M(x: [N, 4]) {\r\n    Linear(4, 2)  # c\r\n}\r\n"


def test_a_missing_final_newline_is_added_and_an_empty_file_stays_empty():
    text = (ROOT / "specs" / "xor.nn").read_text(encoding="utf-8")
    assert fmt.format_text(text.rstrip("\n")) == text
    assert fmt.format_text("") == "" and fmt.format_text("\n\n  \n") == ""
    assert fmt.format_text("# only a comment") == "# only a comment\n"


def test_a_syntax_error_raises_the_checkers_diagnostics():
    with pytest.raises(fmt.FormatSyntaxError) as raised:
        fmt.format_text("model M(x: [N, 4]) {\n    Linear(4 2)\n}\n", "s.nn")
    (diag,) = raised.value.diagnostics
    assert diag.code == "E001" and diag.span.start == len("model M(x: [N, 4]) {\n    Linear(4 ")
    with pytest.raises(fmt.FormatSyntaxError):  # two statements on one line (E001 from the tree)
        fmt.format_text("model M(x: [N, 4]) { Flatten ReLU }")


# ---------------------------------------------------------------- fuzzed specs


_SPACES = [" ", "  ", "\t", "   ", "\f "]
_BREAKS = ["\n", "\n\n", "\n   ", "\n\t\t", " \n ", "\r\n", "\n\n\n    "]
_COMMENTS = ["# c", "#", "# ü 注 🎉 ", "#->(", "# a, b = c"]


@st.composite
def _respaced(draw, base: st.SearchStrategy) -> str:
    """A spec with its blank space drawn anew and comments added: the same tokens, the same
    line breaks at least (a newline ends a comment and separates statements)."""
    text = draw(base)
    out = []
    previous = None
    for tok in _parser().lex(text, dont_ignore=True):
        value = str(tok)
        if value.strip():
            if previous is not None and previous.strip() and tok.type != "CALL_OPEN" and draw(st.integers(0, 3)) == 0:
                out.append(" ")  # a space where there was none (never before a call's `(`)
            out.append(value)
        elif "\n" in value:
            if draw(st.integers(0, 3)) == 0 and previous is not None and not previous.startswith("#"):
                out.append(draw(st.sampled_from(_SPACES)) + draw(st.sampled_from(_COMMENTS)))
            out.append(draw(st.sampled_from(_BREAKS)))
            if draw(st.integers(0, 5)) == 0:
                out.append(draw(st.sampled_from(_COMMENTS)) + "\n")
        else:
            out.append(draw(st.sampled_from(_SPACES + _BREAKS if draw(st.integers(0, 4)) == 0 else _SPACES)))
        previous = value
    return "".join(out)


_programs = st.integers(0, 2**32 - 1).map(lambda seed: fuzz.Generator(random.Random(seed)).program()).filter(_parses)
_repo_texts = st.sampled_from([p.read_text(encoding="utf-8") for p in REPO_SPECS])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_respaced(st.one_of(_programs, _repo_texts)), st.sampled_from([40, 80, 120]))
def test_fuzzed_specs_format_idempotently_keeping_their_meaning_and_comments(text, width):
    assert _parses(text)
    assert_formats_well(text, width)


@settings(max_examples=60, deadline=None)
@given(_programs)
def test_generated_programs_format_well(text):
    assert_formats_well(text)


# ---------------------------------------------------------------- the command

MESSY = "model M(x:[N,4]){\nLinear(4,2)->ReLU # keep\n}"
NEAT = "model M(x: [N, 4]) {\n    Linear(4, 2) -> ReLU  # keep\n}\n"


def _spec(tmp_path: Path, text: str, name: str = "m.nn") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_fmt_rewrites_files_in_place(tmp_path, capsys):
    messy, neat = _spec(tmp_path, MESSY), _spec(tmp_path, NEAT, "n.nn")
    assert main(["fmt", str(messy), str(neat)]) == 0
    assert messy.read_text() == NEAT and neat.read_text() == NEAT
    err = capsys.readouterr().err
    assert f"reformatted {messy}" in err and str(neat) not in err.replace(f"reformatted {messy}", "")
    assert "1 file reformatted, 1 left unchanged" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nn", "n.nn"]  # no temporary left


def test_check_lists_the_files_that_would_change_and_writes_nothing(tmp_path, capsys):
    messy, neat = _spec(tmp_path, MESSY), _spec(tmp_path, NEAT, "n.nn")
    assert main(["fmt", "--check", str(messy), str(neat)]) == 1
    assert capsys.readouterr().out == f"would reformat {messy}\n"
    assert messy.read_text() == MESSY
    assert main(["fmt", "--check", str(neat)]) == 0
    assert capsys.readouterr().out == ""


def test_diff_prints_a_unified_diff_and_writes_nothing(tmp_path, capsys):
    messy = _spec(tmp_path, MESSY)
    assert main(["fmt", "--diff", str(messy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"--- {messy} (original)\n+++ {messy} (formatted)\n@@ ")
    assert "-Linear(4,2)->ReLU # keep\n" in out and "+    Linear(4, 2) -> ReLU  # keep\n" in out
    assert "\\ No newline at end of file" in out
    assert messy.read_text() == MESSY
    assert main(["fmt", "--diff", "--check", str(messy)]) == 1


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_standard_input_goes_to_standard_output(monkeypatch, capsys):
    _stdin(monkeypatch, MESSY.encode())
    assert main(["fmt", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out == NEAT and captured.err == ""
    _stdin(monkeypatch, MESSY.encode())
    assert main(["fmt", "--check", "-"]) == 1
    assert capsys.readouterr().out == "would reformat <stdin>\n"
    _stdin(monkeypatch, NEAT.encode())
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == NEAT


def test_a_syntax_error_is_reported_as_check_reports_it_and_the_file_is_untouched(tmp_path, capsys):
    text = "model M(x: [N, 4]) {\n    Linear(4 2)\n}\n"
    path = _spec(tmp_path, text)
    assert main(["check", str(path)]) == 1
    checked = capsys.readouterr().out.strip()
    assert main(["fmt", str(path)]) == 1
    err = capsys.readouterr().err
    assert checked and checked in err and f"{path}:2:14" in err
    assert path.read_text() == text


def test_io_and_usage_errors(tmp_path, capsys):
    assert main(["fmt", str(tmp_path / "missing.nn")]) == 2
    assert "missing.nn: no such file" in capsys.readouterr().err
    assert main(["fmt", "-", "x.nn"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["fmt", "--line-width", "0", "x.nn"]) == 2
    with pytest.raises(SystemExit) as raised:
        main(["fmt"])
    assert raised.value.code == 2


def test_a_read_only_file_is_refused_and_kept(tmp_path, capsys):
    path = _spec(tmp_path, MESSY)
    path.chmod(0o444)
    assert main(["fmt", str(path)]) == 2
    assert "read-only" in capsys.readouterr().err and path.read_text() == MESSY


def test_a_failed_write_leaves_the_file_whole(tmp_path, monkeypatch, capsys):
    path = _spec(tmp_path, MESSY)

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    assert main(["fmt", str(path)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert path.read_text() == MESSY and [p.name for p in tmp_path.iterdir()] == ["m.nn"]


def test_a_layout_that_would_change_the_meaning_is_refused(tmp_path, monkeypatch, capsys):
    path = _spec(tmp_path, MESSY)
    monkeypatch.setattr(fmt, "_layout", lambda text, *rest: text.replace("4,2", "4,3"))
    assert main(["fmt", str(path)]) == 3
    assert "internal error" in capsys.readouterr().err and path.read_text() == MESSY
    monkeypatch.setattr(fmt, "_layout", lambda text, *rest: text + "\n# new\n")
    with pytest.raises(fmt.FormatError):
        fmt.format_text(MESSY)


def test_a_byte_order_mark_is_kept(tmp_path):
    path = tmp_path / "b.nn"
    path.write_bytes(b"\xef\xbb\xbf" + MESSY.encode())
    assert main(["fmt", str(path)]) == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + NEAT.encode()


def test_line_width_option(tmp_path):
    chain = " -> ".join(["Linear(8, 8)"] * 10)
    path = _spec(tmp_path, f"model M(x: [N, 8]) {{\n    {chain}\n}}\n")
    assert main(["fmt", "--line-width", "50", str(path)]) == 0
    lines = path.read_text().splitlines()
    assert max(map(len, lines)) <= 50 and len(lines) == 7  # 3 + 2 + 2 + 2 + 1 steps


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(_respaced(_repo_texts), st.text(alphabet=st.sampled_from("ab1_.(){}[]:,=-># \"'\n\r\t\\é"), max_size=80))
)
def test_the_fast_scan_gives_larks_tokens(text):
    from nndsl.syntax.parser import _driver

    try:
        expected = [(t.type, str(t), t.start_pos) for t in _parser().lex(text, dont_ignore=True)]
    except Exception:  # a character no terminal matches
        expected = None
    assert _driver().scan(text) == expected


def test_a_layout_that_moves_a_comment_among_the_tokens_is_refused(monkeypatch):
    text = "model M(x: [N, 4]) {\n    Linear(4, 4)  # one\n    -> ReLU\n}\n"
    moved = text.replace("  # one\n    -> ReLU", " -> ReLU  # one")
    monkeypatch.setattr(fmt, "_layout", lambda *args: moved)
    with pytest.raises(fmt.FormatError, match="comments"):
        fmt.format_text(text)


def test_the_comment_of_a_line_the_width_broke_goes_after_its_last_part():
    text = (
        "model M(x: [N, 4]) {\n    h = x -> Linear(4, 8) -> ReLU -> Linear(8, 8) -> ReLU -> Dropout(0.1)  # hidden\n}\n"
    )
    assert assert_formats_well(text, 60) == (
        "model M(x: [N, 4]) {\n    h = x -> Linear(4, 8) -> ReLU -> Linear(8, 8) -> ReLU\n        -> Dropout(0.1)  # hidden\n}\n"
    )


def test_a_file_already_in_the_layout_is_not_rewritten(tmp_path):
    path = _spec(tmp_path, NEAT)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert main(["fmt", str(path)]) == 0
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_the_command_runs_as_a_process(tmp_path):
    import subprocess

    messy = _spec(tmp_path, MESSY)
    done = subprocess.run(
        [sys.executable, "-m", "nndsl", "fmt", "--check", str(messy)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and done.stdout == f"would reformat {messy}\n"
    assert "Traceback" not in done.stderr


def _layer_spec(case) -> str:
    """A layer call of the differential tests' strategies as the body of a model."""
    text, shape, dtype = case
    dims = ", ".join(map(str, shape))
    return f"model M(x: {'' if dtype == 'float32' else dtype}[{dims}]) {{\n    {text}\n}}\n"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_differential_tests_specs_format_well(data):
    pytest.importorskip("torch")
    import strategies

    layers = st.sampled_from(sorted(strategies.STRATEGIES)).flatmap(lambda name: strategies.STRATEGIES[name])
    specs = st.one_of(strategies.graph_case().map(lambda case: case.text), layers.map(_layer_spec))
    text = data.draw(_respaced(specs.filter(_parses)))
    assert_formats_well(text, data.draw(st.sampled_from([30, 120])))


def test_a_directory_stands_for_its_spec_files(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    first, second = _spec(tmp_path, MESSY, "a.nn"), _spec(tmp_path / "sub", MESSY, "b.nn")
    hidden, other = _spec(tmp_path / ".hidden", MESSY, "c.nn"), _spec(tmp_path, MESSY, "notes.txt")
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"would reformat {first}\nwould reformat {second}\n"
    assert main(["fmt", str(tmp_path)]) == 0
    assert first.read_text() == second.read_text() == NEAT
    assert hidden.read_text() == other.read_text() == MESSY
