"""Reading specs safely and within bounds: imports of files that are not specs, sizes, encodings,
nesting, syntax-error recovery and the checker's work limits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import nndsl
from nndsl import reading
from nndsl.check.values import MAX_APPLY_DEPTH
from nndsl.diagnostics import render_text
from nndsl.syntax.parser import MAX_BRACKETS, MAX_NESTING

MODEL = "model M(x: [N, 4]) { ReLU }\n"


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def run_cli(*args, stdin: bytes | None = None, cwd=None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "nndsl", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
    )


# ---------------------------------------------------------------- imports


@pytest.mark.parametrize("path", ["/proc/self/environ", "/etc/passwd", "/dev/zero", "../../etc/hostname"])
def test_an_import_of_a_file_that_is_not_a_spec_is_refused_without_reading_it(tmp_path, path, monkeypatch):
    monkeypatch.setenv("NNDSL_SECRET_TOKEN", "s3cr3t-value")
    spec = tmp_path / "model.nn"
    spec.write_text(f'from "{path}" import X\n{MODEL}')
    run = run_cli("check", spec, timeout=30)
    out = run.stdout.decode() + run.stderr.decode()
    assert run.returncode == 1, out
    assert "E116" in out and "imports read .nn spec files only" in out
    assert "s3cr3t-value" not in out and "root:" not in out


def test_an_import_of_a_fifo_or_a_device_named_nn_is_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo.nn")
    os.symlink("/dev/zero", tmp_path / "zero.nn")
    os.symlink("/proc/self/environ", tmp_path / "environ.nn")
    spec = tmp_path / "model.nn"
    spec.write_text(f'from "fifo.nn" import A\nfrom "zero.nn" import B\nfrom "environ.nn" import C\n{MODEL}')
    result = nndsl.check_file(spec)  # returns: nothing blocks or reads without end
    messages = [d.message for d in result.diagnostics]
    assert codes(result) == ["E116"] * 3, messages
    assert "not a regular file" in messages[0]
    assert all("spec files only" in m for m in messages[1:])
    with pytest.raises(OSError, match="not a regular file"):
        nndsl.build(str(tmp_path / "fifo.nn"))  # a path, not spec text, even if it is no regular file
    run = run_cli("check", tmp_path / "fifo.nn", timeout=30)
    assert run.returncode == 2 and b"not a regular file" in run.stderr


@pytest.mark.parametrize("path", ["a\\0b.nn", "\\x01\\x02\\x1b[2J.nn", "\\x01\\x02"])
def test_an_import_path_with_control_characters_is_a_diagnostic_printed_safely(path):
    result = nndsl.check_source(f'from "{path}" import X\n{MODEL}')
    (diag,) = result.diagnostics
    assert diag.code == "E116"
    assert diag.message.isprintable(), diag.message


def test_an_imported_file_that_is_not_utf8_is_reported_without_its_content(tmp_path):
    (tmp_path / "lib.nn").write_bytes(b"block B(x: [N, D]) { ReLU }\nsecret \xff\xfe line\n")
    spec = tmp_path / "model.nn"
    spec.write_text(f'from "lib.nn" import B\n{MODEL}')
    (diag,) = nndsl.check_file(spec).diagnostics
    assert diag.code == "E116" and diag.source.name == str(spec)
    assert "byte 0xff at byte offset 35 (line 2)" in diag.message
    assert "secret" not in render_text(diag)


def test_a_spec_may_import_only_constants(tmp_path):
    (tmp_path / "consts.nn").write_text("let width = 4\n")
    spec = tmp_path / "model.nn"
    spec.write_text('from "consts.nn" import width\nmodel M(x: [N, 4]) { Linear(width, 2) }\n')
    result = nndsl.check_file(spec)
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    assert run_cli("compile", spec, "-o", tmp_path / "out.py").returncode == 0


def test_each_imported_file_is_read_and_checked_once(tmp_path, monkeypatch):
    files = 12  # each file imports the next twice: 2**12 loads if imports were not shared
    for i in range(files):
        last = i == files - 1
        text = "" if last else f'from "f{i + 1}.nn" import B{i + 1}\nfrom "f{i + 1}.nn" import C{i + 1}\n'
        inner = "ReLU" if last else f"B{i + 1} -> C{i + 1}"
        text += f"block B{i}(x: [N, D]) {{ {inner} }}\nblock C{i}(x: [N, D]) {{ {inner} }}\n"
        (tmp_path / f"f{i}.nn").write_text(text)
    reads: list[str] = []
    real_read = reading.read_file

    def counting(path):
        reads.append(os.path.realpath(path))
        return real_read(path)

    monkeypatch.setattr("nndsl.check.loading.read_file", counting)
    spec = tmp_path / "model.nn"
    spec.write_text('from "f0.nn" import B0\nfrom "f1.nn" import B1\nmodel M(x: [N, 4]) { B1 }\n')
    result = nndsl.check_file(spec)
    assert result.ok, [d.message for d in result.diagnostics]
    assert sorted(reads) == sorted({os.path.realpath(tmp_path / f"f{i}.nn") for i in range(files)})


def test_a_syntax_error_in_a_file_imported_twice_is_reported_once(tmp_path):
    (tmp_path / "base.nn").write_text("block Base(x: [N, D]) { ReLU ) }\nlet k = 2\n")
    (tmp_path / "a.nn").write_text('from "base.nn" import k\nlet a = k\n')
    (tmp_path / "b.nn").write_text('from "./base.nn" import k\nlet b = k\n')
    spec = tmp_path / "model.nn"
    spec.write_text('from "a.nn" import a\nfrom "b.nn" import b\nmodel M(x: [N, 4]) { Linear(4, a + b) }\n')
    result = nndsl.check_file(spec)
    assert codes(result) == ["E001"], [d.message for d in result.diagnostics]


def test_an_import_cycle_is_reported(tmp_path):
    (tmp_path / "a.nn").write_text('from "b.nn" import B\nblock A(x: [N, D]) { ReLU }\n')
    (tmp_path / "b.nn").write_text('from "a.nn" import A\nblock B(x: [N, D]) { ReLU }\n')
    spec = tmp_path / "model.nn"
    spec.write_text('from "a.nn" import A\nfrom "b.nn" import B\nmodel M(x: [N, 4]) { A -> B }\n')
    result = nndsl.check_file(spec)
    assert "E116" in codes(result) and any("imports itself" in d.message for d in result.diagnostics)


# ---------------------------------------------------------------- sizes and encodings


def test_non_utf8_standard_input_is_an_error_with_its_position():
    run = run_cli("check", "-", stdin=b"model M(x: [N, 4]) { ReLU }\n# caf\xe9\n")
    assert run.returncode == 2, run.stderr
    assert b"not UTF-8 text: byte 0xe9 at byte offset 33 (line 2)" in run.stderr


def test_a_non_utf8_file_through_the_api_is_a_diagnostic(tmp_path):
    spec = tmp_path / "model.nn"
    spec.write_bytes(b"\xef\xbb\xbfmodel M(x: [N, 4]) {\n  ReLU \x80 }\n")
    (diag,) = nndsl.check_file(spec).diagnostics
    assert diag.code == "E003" and diag.line_col == (2, 8)
    assert "byte offset 31 (line 2)" in diag.message
    with pytest.raises(nndsl.SpecError):
        nndsl.build(spec)


def test_a_spec_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_SPEC_SIZE", 1000)
    text = "let a = 1\n" * 101
    (diag,) = nndsl.check_source(text).diagnostics
    assert diag.code == "E004"
    spec = tmp_path / "big.nn"
    spec.write_text(text)
    assert codes(nndsl.check_file(spec)) == ["E004"]
    (tmp_path / "lib.nn").write_text(text)
    spec.write_text(f'from "lib.nn" import a\n{MODEL}')
    result = nndsl.check_file(spec)
    assert codes(result) == ["E116"], [d.message for d in result.diagnostics]
    assert "1,000 bytes" in result.diagnostics[0].message


def test_the_spec_and_its_imports_share_one_size_limit(tmp_path, monkeypatch):
    """Each file is under the limit; together they are over it (the spec's own text counts)."""
    monkeypatch.setattr(reading, "MAX_IMPORTED_SIZE", 1000)
    (tmp_path / "lib.nn").write_text("".join(f"let a{i} = {i}\n" for i in range(50)))
    spec = tmp_path / "spec.nn"
    spec.write_text(f'from "lib.nn" import a1\n{MODEL}' + "# padding\n" * 50)
    result = nndsl.check_file(spec)
    assert (
        codes(result) == ["E116"]
        and "the spec and the files it imports exceed 1,000 bytes" in result.diagnostics[0].message
    )
    spec.write_text(f'from "lib.nn" import a1\n{MODEL}')
    assert nndsl.check_file(spec).ok


def test_the_cli_refuses_a_spec_over_the_size_limit():
    data = b"let a = 1\n" + b" " * reading.MAX_SPEC_SIZE
    run = run_cli("check", "-", stdin=data)
    assert run.returncode == 2 and b"larger than" in run.stderr


# ---------------------------------------------------------------- the grammar cache

_PLANT = """
import os, pickle, sys
from nndsl.syntax.parser import cache_path, grammar_path

class Payload:
    def __reduce__(self):
        return (open, (sys.argv[1], "w"))

path = cache_path(open(grammar_path(), encoding="utf-8").read())
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "wb") as handle:
    handle.write(b"0\\n" + pickle.dumps(Payload()))
os.chmod(path, int(sys.argv[2], 8))
os.chmod(os.path.dirname(path), int(sys.argv[3], 8))
"""


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="file owners are a POSIX notion")
@pytest.mark.parametrize(
    ("file_mode", "dir_mode", "runs"),
    [("600", "770", False), ("620", "700", False), ("600", "700", True)],  # the last: the payload works
)
def test_the_grammar_cache_is_read_only_from_a_private_directory(tmp_path, file_mode, dir_mode, runs):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    marker = tmp_path / "PWNED"
    subprocess.run([sys.executable, "-c", _PLANT, marker, file_mode, dir_mode], env=env, check=True, timeout=60)
    check = "import nndsl; assert nndsl.check_source('model M(x: [N, 4]) { ReLU }').ok"
    subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, timeout=60)
    assert marker.exists() is runs


def test_a_new_grammar_cache_file_is_private_whatever_the_umask(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import os; os.umask(0o002); import nndsl; assert nndsl.check_source('model M(x: [N, 4]) { ReLU }').ok"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    (cache,) = (tmp_path / "cache" / "nndsl").iterdir()
    assert cache.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- nesting

NEST = MAX_NESTING


def _nested_forms(n: int) -> dict[str, str]:
    """Specs with one expression nested ``n`` levels deep, in each place an expression goes."""
    neg = "-" * n + "1"
    calls = "min(" * (n // 2) + "4" + ")" * (n // 2)
    lists = "[" * n + "4" + "]" * n
    fors = "for i in [1] { " * (n // 4) + "ReLU" + " }" * (n // 4)
    return {
        "let": f"let a = ({neg}) * 0 + 4\nmodel M(x: [N, 4]) {{ Linear(4, a) }}",
        "block default": f"block B(x: [N, D], k={neg}) {{ ReLU }}\nmodel M(x: [N, 4]) {{ B }}",
        "list default": f"block B(x: [N, D], k={lists}) {{ ReLU }}\nmodel M(x: [N, 4]) {{ B }}",
        "input size": f"model M(x: [N, {calls}]) {{ ReLU }}",
        "argument": f"model M(x: [N, 4]) {{ Linear(4, {'+'.join(['1'] * n)}) }}",
        "condition": f"model M(x: [N, 4]) {{ Linear(4, 2 if {'not ' * n}True else 3) }}",
        "loops": f"model M(x: [N, 4]) {{ {fors} }}",
        "loops in a block": f"block B(x: [N, D]) {{ {fors} }}\nmodel M(x: [N, 4]) {{ B -> B }}",
    }


@pytest.mark.parametrize("form", list(_nested_forms(2)))
def test_nesting_up_to_the_limit_checks_compiles_and_builds(form):
    text = _nested_forms(NEST - 12)[form]
    result = nndsl.check_source(text)
    assert result.ok, [d.message for d in result.diagnostics]
    nndsl.build(text)


@pytest.mark.parametrize("form", list(_nested_forms(2)))
def test_nesting_beyond_the_limit_is_a_diagnostic_at_the_spot(form):
    text = _nested_forms(50 * NEST)[form]
    result = nndsl.check_source(text)
    assert codes(result) == ["E005"], [d.message for d in result.diagnostics]
    (diag,) = result.diagnostics
    assert text[diag.span.start] in "-[m+nf1(" and diag.line_col[0] == 1  # inside the nested part
    with pytest.raises(nndsl.SpecError):
        nndsl.build(text)


@pytest.mark.parametrize("inner", ["-" * 50_000 + "1", "[" * 20_000 + "1" + "]" * 20_000, "x" + ".a" * 20_000])
def test_deep_nesting_anywhere_is_a_diagnostic_not_a_crash(inner):
    result = nndsl.check_source(f"let a = {inner}\nmodel M(x: [N, 4]) {{ ReLU }}")
    assert codes(result) == ["E005"]


def test_parentheses_add_no_level_and_brackets_are_bounded_before_parsing(monkeypatch):
    parens = "(" * 900 + "4" + ")" * 900
    assert nndsl.check_source(f"model M(x: [N, 4]) {{ Linear(4, {parens}) }}").ok
    text = "model M(x: [N, 4]) { ReLU }\nlet a = " + "(" * 1_000_000
    monkeypatch.setattr("nndsl.syntax.parser._parser", None)  # refused without parsing
    (diag,) = nndsl.check_source(text).diagnostics
    assert diag.code == "E005" and diag.line_col == (2, 9 + MAX_BRACKETS)
    monkeypatch.undo()
    assert nndsl.check_source('let a = "((((" # ' + "(" * 2000 + "\n" + MODEL).ok  # strings, comments skipped


def _block_chain(depth: int) -> str:
    text = "block B0(x: [N, D]) { ReLU }\n"
    text += "".join(f"block B{i}(x: [N, D]) {{ B{i - 1} }}\n" for i in range(1, depth))
    return text + f"model M(x: [N, 4]) {{ B{depth - 1} }}\n"


def test_blocks_used_inside_blocks_beyond_the_limit_are_a_diagnostic():
    result = nndsl.check_source(_block_chain(MAX_APPLY_DEPTH + 20))
    assert codes(result) == ["E005"], [d.message for d in result.diagnostics]  # no "never used" after it
    text = _block_chain(MAX_APPLY_DEPTH - 5)
    assert nndsl.check_source(text).ok
    torch = pytest.importorskip("torch")
    assert nndsl.build(text)(torch.randn(2, 4)).shape == (2, 4)


# ---------------------------------------------------------------- syntax errors


def test_syntax_error_recovery_reads_each_item_once(monkeypatch):
    from nndsl.syntax import parser

    items = [f"model M{i}(x: [N, 4]) {{ Linear(4, 2) }}\n" for i in range(200)]
    items[100] = "model Broken(x: [N, 4]) { Linear(4, 2)) }\n"
    text = "".join(items)
    lexed: list[int] = []
    real = parser._parse_slice

    def counting(whole, start, end):
        lexed.append(end - start)
        return real(whole, start, end)

    monkeypatch.setattr(parser, "_parse_slice", counting)
    result = nndsl.check_source(text)
    assert codes(result) == ["E001"] and result.diagnostics[0].line_col[0] == 101
    assert sum(lexed) <= len(text)  # each item once, not the text before it again
    assert len(result.program.models) == 199


def test_a_broken_block_is_not_reported_again_where_it_is_used():
    text = "block B(x: [N, D]) { ReLU ) }\nmodel M(x: [N, 4]) { B -> B }\n"
    assert codes(nndsl.check_source(text)) == ["E001"]


@pytest.mark.parametrize(
    ("expr", "shape"), [("x[:, 0]", "[N]"), ("x[1:3]", "[2, 4]"), ("x[0, 1]", "[]"), ("x[:]", "[N, 4]")]
)
def test_slicing_parses_and_checks(expr, shape):
    result = nndsl.check_source(f"model M(x: [N, 4]) {{ y = {expr}\n y }}")
    assert not result.errors and str(result.program.models[0].outputs[0].shape) == shape


def test_a_comma_in_a_shape_is_not_taken_for_a_slice():
    (diag,) = nndsl.check_source("model M(x: long[N T, 4]) { ReLU }").diagnostics
    assert "slicing" not in diag.message


# ---------------------------------------------------------------- work limits


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("for i in range(10000) { for j in range(10000) { ReLU } }", "E118"),
        ("Linear(4, 4) * 10000 * 10000", "E118"),
        ("(Linear(4, 4) * 1000 -> ReLU) * 1000", "E118"),
        ("for i in range(1000) { Linear(4, 4) * 1000 }", "E118"),
        ("LSTM(4, 8, num_layers=2147483647)", "E118"),
        ("for i in range(100) { LSTM(4, 4, num_layers=1001) }", "E118"),
    ],
)
def test_work_limits_apply_to_the_total_before_the_work_is_done(body, code):
    result = nndsl.check_source(f"model M(x: [N, 4, 4]) {{ {body} }}")
    assert codes(result) == [code], [d.message for d in result.diagnostics]


def test_a_repeated_body_with_an_error_is_checked_once(monkeypatch):
    from nndsl.check.binding import Binding

    calls: list[int] = []
    real = Binding.apply

    def counting(self, *args):
        calls.append(1)
        return real(self, *args)

    monkeypatch.setattr(Binding, "apply", counting)
    result = nndsl.check_source("model M(x: [N, 6, 32, 32]) { Conv2d(6, 16, 5) * 200 * 200 }")
    assert "E201" in codes(result)
    assert len(calls) < 10


def test_a_use_of_blocks_that_doubles_at_each_level_stops_at_the_limit(monkeypatch):
    monkeypatch.setattr("nndsl.check.flow.MAX_APPLIED", 5000)  # the same path as 250,000, sooner
    lines = ["block I(x: [N, D]) { x }", "model M(x: [N, 4]) {", " c1 = I -> I"]
    lines += [f" c{i} = c{i - 1} -> c{i - 1}" for i in range(2, 40)]
    lines += [" c39", "}"]
    assert codes(nndsl.check_source("\n".join(lines))) == ["E118"]  # 2**39 uses: stops at MAX_APPLIED


@pytest.mark.parametrize(
    "text",
    [
        "model M(x: [99999999999, 99999999999, 99999999999]) { ReLU }",
        "model M(x: [2147483648, 1073741824]) { ReLU }",
        "model M(x: [N, 4]) { Linear(4, 4611686018427387904) -> ReLU }",
        "model M(x: [N, 65536, 65536]) { Unsqueeze(1) -> Upsample(scale_factor=65536) }",
        # the weights, not the activations: [N, 2**31, 1, 1] fits, 2**62 * 9 parameters do not
        "model M(x: [N, 2147483648, 3, 3]) { Conv2d(2147483648, 2147483648, 3) }",
        "model M(x: [N, 8, 8, 8]) { Flatten -> Linear(512, 99999999999999999) }",
    ],
)
def test_sizes_beyond_what_torch_can_hold_are_a_diagnostic(text):
    assert codes(nndsl.check_source(text)) == ["E119"]


def test_the_size_limit_agrees_with_torch():
    torch = pytest.importorskip("torch")
    for shape, dtype, fits in [((2**31, 2**30), "float32", False), ((2**31, 2**29), "float32", True)]:
        result = nndsl.check_source(f"model M(x: {dtype}[{shape[0]}, {shape[1]}]) {{ ReLU }}")
        assert result.ok is fits
        try:
            torch.empty(shape, dtype=getattr(torch, dtype), device="meta")
            allowed = True
        except RuntimeError:
            allowed = False
        assert allowed is fits


@pytest.mark.parametrize(
    "text",
    [
        "model M(x: [N, 4]) { Lienar(4, 2) }",
        "model M(x: [N, -4]) { ReLU }",
        "model M(x: [N, 4]) { for i in range(1000) { Linear(4, 4) * 1000 } }",
        "model M(x: [99999999999, 99999999999, 99999999999]) { ReLU }",
    ],
)
def test_json_output_of_a_model_with_errors(text):
    import json

    run = run_cli("check", "--format", "json", "-", stdin=text.encode())
    assert run.returncode == 1, run.stderr
    (model,) = json.loads(run.stdout)["files"][0]["models"]
    assert model["complete"] is False


def test_a_file_name_with_control_characters_is_printed_escaped(tmp_path):
    spec = tmp_path / "evil\x1b]0;title\x07.nn"
    spec.write_text("model M(x: [N, 4]) { Lienar(4, 2) }\n")
    for fmt in ("text", "short"):
        run = run_cli("check", "--format", fmt, spec)
        assert run.returncode == 1
        assert b"\x1b" not in run.stdout + run.stderr and b"\\x1b]0;title\\x07.nn" in run.stdout + run.stderr


@pytest.mark.parametrize("run", ["-" * 1_000_000, "- " * 500_000, "not " * 250_000, "+-" * 500_000])
def test_a_run_of_prefix_operators_is_refused_before_parsing(monkeypatch, run):
    """A megabyte of ``-`` would cost seconds of parsing before the nesting check refused it."""
    monkeypatch.setattr("nndsl.syntax.parser._parser", None)  # refused without parsing
    (diag,) = nndsl.check_source(f"let a = {run}1\nmodel M(x: [N, 4]) {{ ReLU }}").diagnostics
    assert diag.code == "E005" and diag.line_col == (1, 9) and "prefix operators" in diag.message
    monkeypatch.undo()
    signs = "- " * 50
    assert nndsl.check_source(f"# {'-' * 500}\nlet a = {signs}1\nlet s = '{'+' * 500}'\n" + MODEL).ok


def test_building_weights_beyond_memory_is_a_memory_error_that_says_so():
    pytest.importorskip("torch")
    with pytest.raises(MemoryError, match="not enough memory for M's 500,000,000,000 parameters"):
        nndsl.build("model M(x: [N, 4]) { Linear(4, 100000000000) }")
