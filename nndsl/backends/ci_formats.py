"""Diagnostics for CI services: GitHub Actions workflow commands and SARIF 2.1.0 (code scanning).

Both read the diagnostics of ``nndsl check`` only (they need no checked program). Positions are
1-based; an end column is the column after the span's last character, as in the JSON output
(SARIF defines ``endColumn`` so; GitHub draws the annotation up to it).
"""

from __future__ import annotations

import json
from pathlib import PurePath
from urllib.parse import quote

from nndsl.diagnostics import CATALOGUE, Diagnostic, Severity, Span
from nndsl.source import Source
from nndsl.version import __version__

#: the workflow command for each severity
_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
#: names nndsl gives a spec that is no file
_NO_FILE = ("<stdin>", "<string>")

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def _region(source: Source, span: Span) -> tuple[int, int, int, int]:
    """(line, column, end line, end column) of a span, the end being the character after it."""
    line, col = source.line_col(span.start)
    end_line, end_col = source.line_col(max(span.start, span.end))
    return line, col, end_line, end_col


def _details(diag: Diagnostic) -> list[str]:
    """The lines after a diagnostic's message: its notes and its help."""
    return [f"note: {n}" for n in diag.notes] + ([f"help: {diag.help}"] if diag.help else [])


# ---------------------------------------------------------------- GitHub Actions


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's actions/toolkit does (``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``escapeProperty``): also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(command: str, message: str, **properties: object) -> str:
    """``::command key=value,...::message``; properties that are None are left out."""
    given = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items() if v is not None)
    return f"::{command}{' ' + given if given else ''}::{escape_data(message)}"


def github_annotation(diag: Diagnostic) -> str:
    """One workflow command for a diagnostic: the message, then on lines of their own the primary
    label, the secondary labels (with their positions), the notes and the help."""
    src = diag.source
    lines = [diag.message] + ([diag.label] if diag.label else [])
    for label in diag.secondary:
        line, col = src.line_col(label.span.start)
        lines.append(f"{src.name}:{line}:{col}: {label.message}")
    lines += _details(diag)
    if src.name in _NO_FILE:
        return github_command(_GITHUB_COMMAND[diag.severity], "\n".join(lines), title=diag.code)
    line, col, end_line, end_col = _region(src, diag.span)
    return github_command(
        _GITHUB_COMMAND[diag.severity],
        "\n".join(lines),
        file=src.name,
        line=line,
        col=col,
        endLine=end_line,
        endColumn=end_col,
        title=diag.code,
    )


def github_io_error(problem: str) -> str:
    """A file that could not be read, as an error annotation of the run."""
    return github_command("error", problem, title="nndsl")


# ---------------------------------------------------------------- SARIF 2.1.0


def _level(code: str) -> str:
    return {"E": "error", "W": "warning", "N": "note"}[code[0]]


def artifact_uri(path: str) -> str:
    """A path as a SARIF artifact URI: relative paths stay relative (code scanning resolves them
    against the repository), absolute ones become ``file://`` URIs."""
    pure = PurePath(path)
    if pure.is_absolute():
        return pure.as_uri()
    return quote(pure.as_posix())


def _physical(source: Source, span: Span) -> dict:
    line, col, end_line, end_col = _region(source, span)
    return {
        "artifactLocation": {"uri": artifact_uri(source.name)},
        "region": {"startLine": line, "startColumn": col, "endLine": end_line, "endColumn": end_col},
    }


def sarif_result(diag: Diagnostic, rule_index: dict[str, int]) -> dict:
    """One SARIF result: the rule, its level, the message (with notes and help), the primary
    location (its label as the location's message) and the secondary labels as related ones."""
    result: dict = {
        "ruleId": diag.code,
        "ruleIndex": rule_index[diag.code],
        "level": diag.severity.value,
        "message": {"text": "\n".join([diag.message, *_details(diag)])},
    }
    if diag.source.name in _NO_FILE:
        return result  # no artifact to point at
    location: dict = {"physicalLocation": _physical(diag.source, diag.span)}
    if diag.label:
        location["message"] = {"text": diag.label}
    result["locations"] = [location]
    if diag.secondary:
        result["relatedLocations"] = [
            {"id": number, "physicalLocation": _physical(diag.source, label.span), "message": {"text": label.message}}
            for number, label in enumerate(diag.secondary, 1)
        ]
    return result


def sarif_rules() -> list[dict]:
    """Every catalogued code as a reporting descriptor (a rule), in the catalogue's order."""
    return [
        {
            "id": code,
            "shortDescription": {"text": title},
            "defaultConfiguration": {"level": _level(code)},
        }
        for code, title in CATALOGUE.items()
    ]


def sarif_log(diagnostics: list[Diagnostic], io_errors: list[str] = ()) -> dict:
    """The SARIF log of one run: one run of the tool nndsl with every diagnostic as a result;
    files that could not be read are tool execution notifications and make the run unsuccessful."""
    rule_index = {code: index for index, code in enumerate(CATALOGUE)}
    invocation: dict = {"executionSuccessful": not io_errors}
    if io_errors:
        invocation["toolExecutionNotifications"] = [{"level": "error", "message": {"text": p}} for p in io_errors]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "nndsl", "version": __version__, "rules": sarif_rules()}},
                "columnKind": "unicodeCodePoints",
                "results": [sarif_result(d, rule_index) for d in diagnostics],
                "invocations": [invocation],
            }
        ],
    }


def sarif_text(diagnostics: list[Diagnostic], io_errors: list[str] = ()) -> str:
    """The SARIF log as the JSON text ``nndsl check --format sarif`` prints."""
    return json.dumps(sarif_log(diagnostics, io_errors), indent=2)
