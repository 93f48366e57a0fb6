"""``nndsl check`` for CI: GitHub Actions annotations, SARIF 2.1.0 (validated against the official
schema), code selection, --warnings-as-errors and inline suppressions."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, bad_specs, good_specs, zoo_specs

import nndsl
from nndsl.backends import ci_formats
from nndsl.cli import main
from nndsl.diagnostics import CATALOGUE, Severity, span_json
from nndsl.source import Source
from nndsl.suppression import choose, directives, parse_codes

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
ALL_SPECS = good_specs() + bad_specs() + zoo_specs()
#: a spec with one warning (W301) on line 2, the Linear call starting in column 16
WARNED = "model M(x: [N, H, W]) {\n    Flatten -> Linear(784, 10)\n}\n"


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NO_COLOR", "1")


# ---------------------------------------------------------------- GitHub workflow commands


def parse_workflow_command(line: str) -> tuple[str, dict[str, str], str]:
    """A workflow command read back as GitHub's runner reads it (ActionCommand.TryParseV2): the
    command, its properties split at ``,`` and the first ``=``, the message; then unescaped."""

    def unescape(text: str, props: bool) -> str:
        pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if props else []) + [("%25", "%")]
        for escaped, char in pairs:
            text = text.replace(escaped, char)
        return text

    assert line.startswith("::")
    end = line.index("::", 2)
    info, data = line[2:end], line[end + 2 :]
    command, _, props = info.partition(" ")
    properties = {}
    for pair in filter(None, props.split(",")):
        key, _, value = pair.partition("=")
        properties[key] = unescape(value, True)
    return command, properties, unescape(data, False)


def test_escaping_follows_the_actions_toolkit():
    assert ci_formats.escape_data("100% a:b,c\r\nnext") == "100%25 a:b,c%0D%0Anext"
    assert ci_formats.escape_property("100% a:b,c\r\nnext") == "100%25 a%3Ab%2Cc%0D%0Anext"
    assert ci_formats.escape_data("%0A") == "%250A"  # an escape sequence written literally stays literal


def test_every_diagnostic_is_one_annotation_with_its_position(capsys):
    code, out, _ = run(capsys, "check", "--format", "github", "specs/bad/mlp_mismatch.nn")
    assert code == 1
    (diag,) = nndsl.check_file("specs/bad/mlp_mismatch.nn").diagnostics
    (line,) = out.splitlines()
    command, props, message = parse_workflow_command(line)
    span = span_json(diag.source, diag.span)
    assert command == "error"
    assert props == {
        "file": "specs/bad/mlp_mismatch.nn",
        "line": str(span["line"]),
        "col": str(span["column"]),
        "endLine": str(span["end_line"]),
        "endColumn": str(span["end_column"]),
        "title": "E201",
    }
    assert line.startswith("::error file=specs/bad/mlp_mismatch.nn,line=2,col=32,endLine=2,endColumn=47,title=E201::")
    lines = message.split("\n")
    assert lines[0] == diag.message and lines[1] == diag.label
    assert lines[2] == f"specs/bad/mlp_mismatch.nn:2:12: {diag.secondary[0].message}"
    assert lines[-1] == f"help: {diag.help}"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: relative(p))
def test_annotations_of_every_spec_read_back_as_its_diagnostics(capsys, spec):
    code, out, _ = run(capsys, "check", "--format", "github", relative(spec))
    diagnostics = nndsl.check_file(relative(spec)).diagnostics
    assert code == (1 if any(d.severity is Severity.ERROR for d in diagnostics) else 0)
    lines = out.splitlines()
    assert len(lines) == len(diagnostics)
    commands = {"error": Severity.ERROR, "warning": Severity.WARNING, "notice": Severity.NOTE}
    for line, diag in zip(lines, diagnostics):
        command, props, message = parse_workflow_command(line)
        assert commands[command] is diag.severity and props["title"] == diag.code
        assert props["file"] == diag.source.name and int(props["line"]) == diag.line_col[0]
        assert message.split("\n")[0] == diag.message


def test_a_file_name_with_commas_colons_and_percents_survives(capsys, tmp_path):
    spec = tmp_path / "a,b:c%2C 100%.nn"
    spec.write_text(WARNED)
    code, out, _ = run(capsys, "check", "--format", "github", spec)
    assert code == 0
    command, props, message = parse_workflow_command(out.strip())
    assert command == "warning" and props["file"] == str(spec) and props["title"] == "W301"
    assert (props["line"], props["col"]) == ("2", "16")
    assert message.startswith("cannot verify statically that H*W equals 784\n")


def test_standard_input_and_unreadable_files(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(WARNED.encode())))
    code, out, _ = run(capsys, "check", "--format", "github", "-", "specs/missing.nn")
    assert code == 2
    first, second = (parse_workflow_command(line) for line in out.splitlines())
    assert first == ("warning", {"title": "W301"}, first[2])  # no file to point at
    assert second == ("error", {"title": "nndsl"}, "specs/missing.nn: no such file")


# ---------------------------------------------------------------- SARIF


def sarif(capsys, *args) -> tuple[int, dict]:
    code, out, _ = run(capsys, "check", "--format", "sarif", *args)
    log = json.loads(out)
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)
    return code, log


def test_the_shipped_schema_is_the_official_one():
    jsonschema.Draft4Validator.check_schema(SARIF_SCHEMA)
    assert SARIF_SCHEMA["id"] == ci_formats.SARIF_SCHEMA
    # the validator rejects what the format forbids: it is not a schema that accepts anything
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"tool": {}}]}, SARIF_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.0.0", "runs": []}, SARIF_SCHEMA)


def test_every_spec_in_one_valid_sarif_log(capsys):
    code, log = sarif(capsys, *map(relative, ALL_SPECS))
    assert code == 1
    (run_,) = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CATALOGUE)
    diagnostics = [d for spec in ALL_SPECS for d in nndsl.check_file(relative(spec)).diagnostics]
    assert len(run_["results"]) == len(diagnostics) > 20
    for result, diag in zip(run_["results"], diagnostics):
        assert result["ruleId"] == diag.code == rules[result["ruleIndex"]]["id"]
        assert result["level"] == diag.severity.value
        assert result["message"]["text"].split("\n")[0] == diag.message
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == diag.source.name
        span = span_json(diag.source, diag.span)
        region = physical["region"]
        assert (region["startLine"], region["startColumn"]) == (span["line"], span["column"])
        assert (region["endLine"], region["endColumn"]) == (span["end_line"], span["end_column"])
        assert [r["message"]["text"] for r in result.get("relatedLocations", [])] == [
            lab.message for lab in diag.secondary
        ]
        if diag.help:
            assert result["message"]["text"].endswith(f"\nhelp: {diag.help}")
    assert run_["invocations"] == [{"executionSuccessful": True}]


def test_sarif_region_is_the_caret_span(capsys):
    _, log = sarif(capsys, "specs/bad/mlp_mismatch.nn")
    (result,) = log["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 2,
        "startColumn": 32,
        "endLine": 2,
        "endColumn": 47,
    }
    assert result["locations"][0]["message"]["text"] == "expected [N, 256], got [N, 512]"
    related = result["relatedLocations"][0]["physicalLocation"]["region"]
    assert (related["startLine"], related["startColumn"]) == (2, 12)


def test_sarif_of_a_clean_run_unreadable_file_and_odd_paths(capsys, tmp_path):
    code, log = sarif(capsys, "specs/cnn.nn")
    assert code == 0 and log["runs"][0]["results"] == []
    code, log = sarif(capsys, "specs/cnn.nn", "specs/missing.nn")
    assert code == 2
    (invocation,) = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["message"]["text"] == "specs/missing.nn: no such file"
    spec = tmp_path / "with space#1.nn"
    spec.write_text(WARNED)
    _, log = sarif(capsys, spec)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == spec.as_uri() and uri.endswith("with%20space%231.nn")
    assert ci_formats.artifact_uri("specs/a b.nn") == "specs/a%20b.nn"


# ---------------------------------------------------------------- --select, --ignore, --warnings-as-errors

#: a spec with W305 on line 2 (an unused value) and W301 on line 3
TWO_WARNINGS = "model M(x: [N, H, W]) {\n    spare = x -> ReLU\n    return x -> Flatten -> Linear(784, 10)\n}\n"


def codes(capsys, *args, text=TWO_WARNINGS, tmp_path) -> tuple[int, list[str]]:
    spec = tmp_path / "w.nn"
    spec.write_text(text)
    code, out, _ = run(capsys, "check", "--format", "json", spec, *args)
    (file,) = json.loads(out)["files"]
    return code, [f"{d['severity']}:{d['code']}" for d in file["diagnostics"]]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), ["warning:W305", "warning:W301"]),
        (("--ignore", "W305"), ["warning:W301"]),
        (("--ignore", "W3"), []),
        (("--ignore", "w"), []),
        (("--select", "W301"), ["warning:W301"]),
        (("--select", "W30"), ["warning:W305", "warning:W301"]),
        (("--select", "N"), []),
        (("--select", "W3", "--ignore", "W301"), ["warning:W305"]),  # the more specific prefix decides
        (("--select", "W305", "--ignore", "W3"), ["warning:W305"]),
        (("--select", "W3", "--ignore", "W3"), []),  # a tie: ignored
        (("--ignore", " W305 , W301 "), []),
    ],
)
def test_select_and_ignore_take_codes_and_prefixes(capsys, tmp_path, options, expected):
    assert codes(capsys, *options, tmp_path=tmp_path) == (0, expected)


def test_warnings_as_errors_fails_the_run_and_says_why(capsys, tmp_path):
    code, found = codes(capsys, "--warnings-as-errors", "--ignore", "W305", tmp_path=tmp_path)
    assert (code, found) == (1, ["error:W301"])
    spec = tmp_path / "w.nn"
    code, out, err = run(capsys, "check", spec, "--warnings-as-errors")
    assert code == 1 and "error[W301]" in out and "reported as an error because of --warnings-as-errors" in out
    assert "M: [N, H, W]" not in out  # no summary for a file with errors
    assert "2 errors, 0 warnings in 1 file" in err
    code, out, _ = run(capsys, "check", spec, "--format", "sarif", "--warnings-as-errors")
    assert code == 1 and {r["level"] for r in json.loads(out)["runs"][0]["results"]} == {"error"}


def test_warnings_as_errors_leaves_notes_and_a_clean_spec_alone(capsys, tmp_path):
    spec = tmp_path / "n.nn"
    spec.write_text("Softmax")
    code, out, _ = run(capsys, "check", spec, "--input", "[N, 10]", "--format", "short", "--warnings-as-errors")
    assert code == 0 and ": note: " in out and "[N401]" in out
    assert run(capsys, "check", "specs/cnn.nn", "--warnings-as-errors")[0] == 0


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--ignore", "E201", "errors are always reported"),
        ("--select", "W3,E", "errors are always reported"),
        ("--ignore", "W999", "W999: no diagnostic code starts so"),
        ("--select", "X1", "X1: no diagnostic code starts so"),
        ("--ignore", ",", "expected codes or prefixes"),
    ],
)
def test_a_code_no_diagnostic_has_is_a_usage_error(capsys, option, value, says):
    for fmt in ("text", "json", "sarif", "github"):
        code, out, err = run(capsys, "check", "specs/cnn.nn", "--format", fmt, option, value)
        assert code == 2 and out == ""
        (line,) = err.splitlines()
        assert line.startswith(f"nndsl check: error: {option}: ") and says in line


def test_errors_cannot_be_deselected():
    error = nndsl.check_file("specs/bad/mlp_mismatch.nn").diagnostics
    assert choose(error, select=parse_codes("W3")) == error
    assert [d.code for d in choose(error, ignore=parse_codes("W,N"))] == ["E201"]


# ---------------------------------------------------------------- inline suppressions


def check(text: str) -> list[str]:
    """``line:col CODE`` of each diagnostic of a spec."""
    result = nndsl.check_source(text, "t.nn")
    return [f"{d.line_col[0]}:{d.line_col[1]} {d.code}" for d in result.diagnostics]


def test_a_comment_hides_the_named_warning_on_its_line_only():
    assert check(TWO_WARNINGS) == ["2:5 W305", "3:28 W301"]
    hide_first = TWO_WARNINGS.replace("ReLU\n", "ReLU  # nndsl: ignore[W305]\n")
    assert check(hide_first) == ["3:28 W301"]
    both = TWO_WARNINGS.replace("ReLU\n", "ReLU  # nndsl: ignore[W305]\n").replace(
        "10)\n", "10)  # why: sizes come from data  # nndsl:ignore[ W301 ,W305]\n"
    )
    assert check(both) == ["3:74 W310"]  # W305 named on line 3 hides nothing there
    assert check(both.replace(",W305]", "]")) == []


def test_a_suppression_that_hides_nothing_is_a_warning_at_the_comment():
    text = "model M(x: [N, 4]) {\n    Linear(4, 2)  # nndsl: ignore[W301]\n}\n"
    result = nndsl.check_source(text, "t.nn")
    (diag,) = result.diagnostics
    assert diag.code == "W310" and diag.severity is Severity.WARNING and result.ok
    assert diag.line_col == (2, 19) and text[diag.span.start : diag.span.end] == "# nndsl: ignore[W301]"
    assert diag.message == "suppression of W301 hides nothing on this line"
    assert check(text.replace("[W301]", "[W305, W301]")) == ["2:19 W310"]


@pytest.mark.parametrize(
    ("comment", "says"),
    [
        ("# nndsl: ignore", "names the codes it hides"),
        ("# nndsl: ignore[]", "names the codes it hides"),
        ("# nndsl: ignore[W301", "names the codes it hides"),
        ("# nndsl: ignore[W399]", "unknown code 'W399'"),
        ("# nndsl: ignore[E201]", "E201 is an error, which cannot be suppressed"),
    ],
)
def test_a_malformed_suppression_is_a_warning(comment, says):
    result = nndsl.check_source(f"model M(x: [N, 4]) {{\n    Linear(4, 2) {comment}\n}}\n", "t.nn")
    (diag,) = result.diagnostics
    assert diag.code == "W310" and says in diag.message and diag.line_col == (2, 18)


def test_an_error_is_never_hidden_and_idle_suppressions_wait_for_a_clean_check():
    text = "model M(x: [N, 4]) {\n    Linear(5, 2)  # nndsl: ignore[W301]\n}\n"
    assert check(text) == ["2:5 E201"]  # the check stopped at the error: W301 may be there once fixed
    assert check(text.replace("W301", "E201")) == ["2:5 E201", "2:19 W310"]


def test_only_real_comments_count():
    source = Source("t.nn", "from 'x # nndsl: ignore[W301]' import B  # nndsl: ignore[W305]\n# nndsl: ignore[N401]\n")
    assert [(d.line, d.codes) for d in directives(source)] == [(1, ("W305",)), (2, ("N401",))]
    assert directives(Source("t.nn", "model M(x: [N, 4]) { Linear(4, 2) }\n")) == []


def test_a_suppressed_warning_leaves_check_and_compile(capsys, tmp_path):
    spec = tmp_path / "w.nn"
    spec.write_text(WARNED.replace("10)\n", "10)  # nndsl: ignore[W301]\n"))
    code, out, err = run(capsys, "check", spec)
    assert code == 0 and "W301" not in out + err and "M: [N, H, W] -> [N, 10]" in out
    code, out, err = run(capsys, "compile", spec, "-o", tmp_path / "w.py")
    assert code == 0 and "W301" not in err


# ---------------------------------------------------------------- the JSON output's schema


def check_schema() -> dict:
    """The schema as the installed package ships it."""
    from importlib.resources import files

    return json.loads((files("nndsl") / "schemas" / "check.schema.json").read_text(encoding="utf-8"))


def validate_report(text: str) -> dict:
    report = json.loads(text)
    jsonschema.Draft202012Validator(check_schema()).validate(report)
    return report


def test_the_check_schema_is_a_2020_12_schema():
    schema = check_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_json_of_every_spec_fits_the_schema(capsys):
    code, out, _ = run(capsys, "check", "--format", "json", *map(relative, ALL_SPECS))
    assert code == 1
    report = validate_report(out)
    files = report["files"]
    assert len(files) == len(ALL_SPECS) and not all(f["ok"] for f in files)
    # the schema has met every kind of value: imported layers, learned tensors, every severity
    layers = [layer for f in files for m in f["models"] for layer in m["layers"]]
    assert any(layer["span"] is None for layer in layers) and any(layer["module"] is None for layer in layers)
    assert any(m["tensors"] for f in files for m in f["models"])
    assert any(not m["complete"] for f in files for m in f["models"])
    assert any(d["labels"] for f in files for d in f["diagnostics"])


def test_the_json_of_odd_runs_fits_the_schema(capsys, tmp_path, monkeypatch):
    import io

    spec = tmp_path / "odd.nn"
    spec.write_text(
        "model M(x: [N, 4]) {\n    s = Parameter([4], init='constant', value=-1e400)\n    return x * s -> Linear(4, 2)\n}\n"
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"Linear(784, 10) -> ReLU -> Linear(11, 2)")))
    code, out, _ = run(capsys, "check", "--format", "json", spec, "-", "specs/missing.nn", "--warnings-as-errors")
    assert code == 2
    odd, stdin, missing = validate_report(out)["files"]
    assert odd["models"][0]["tensors"][0]["init_args"] == {"value": "-inf"}
    assert stdin["models"][0]["input"]["shape"][0] == "*" and stdin["diagnostics"][0]["severity"] == "error"
    assert missing["io_error"] == "specs/missing.nn: no such file"
    code, out, _ = run(capsys, "check", "--format", "json", "--input", "[N, 1, 28, 28]", "specs/xor.nn")
    validate_report(out)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.pop("summary"),
        lambda r: r.update(version=2),
        lambda r: r["files"][0]["diagnostics"][0].update(severity="fatal"),
        lambda r: r["files"][0]["diagnostics"][0].update(code="E21"),
        lambda r: r["files"][0]["diagnostics"][0]["span"].update(line=0),
        lambda r: r["files"][0]["models"][0]["layers"][0]["output"].update(shape=[1.5]),
        lambda r: r["files"][0]["models"][0]["layers"][0].update(extra=1),
        lambda r: r["files"][0].update(io_error="cannot read"),  # an unreadable file has no models
    ],
)
def test_the_schema_rejects_what_the_documentation_rules_out(capsys, change):
    _, out, _ = run(capsys, "check", "--format", "json", "specs/bad/mlp_mismatch.nn")
    report = validate_report(out)
    change(report)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(check_schema()).validate(report)


def test_a_suppression_in_a_block_counts_where_a_model_checks_the_block(tmp_path):
    (tmp_path / "blocks.nn").write_text(
        'from "more.nn" import Other\nblock B(x: [N, C]) {\n    spare = x -> ReLU  # nndsl: ignore[W305]\n    return x -> Tanh\n}\n'
    )
    (tmp_path / "more.nn").write_text("block Other(x: [N, C]) {\n    x -> ReLU\n}\n")
    (tmp_path / "m.nn").write_text('from "blocks.nn" import B\nmodel M(x: [N, 4]) {\n    B -> Linear(4, 2)\n}\n')
    assert nndsl.check_file(tmp_path / "m.nn").diagnostics == []  # the block's W305 is hidden
    # alone, a file of blocks checks none of them: its suppressions cannot be judged there
    assert nndsl.check_file(tmp_path / "blocks.nn").diagnostics == []
    unused = (
        "model M(x: [N, 4]) {\n    Linear(4, 2)\n}\nblock B(x: [N, C]) {\n    x -> ReLU  # nndsl: ignore[W301]\n}\n"
    )
    assert check(unused) == ["4:7 W305"]  # B is never used, so never checked
    assert check(unused.replace("Linear(4, 2)", "B -> Linear(4, 2)")) == ["5:16 W310"]


def test_the_sarif_schema_copy_is_unchanged():
    import hashlib

    notice = (Path(__file__).parent / "data" / "sarif-schema-2.1.0.NOTICE.md").read_text()
    digest = hashlib.sha256((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_bytes()).hexdigest()
    assert f"SHA-256: {digest}" in notice
