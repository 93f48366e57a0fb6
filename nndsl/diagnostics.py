"""Spans, diagnostics, the error-code catalogue and the three renderers (text, short, JSON)."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from nndsl.source import Source, printable


class Span(NamedTuple):
    """A half-open range of character offsets ``[start, end)`` in one source."""

    start: int
    end: int


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


# Stable codes: tools and tests key on these, so a code is never reused for another meaning.
CATALOGUE: dict[str, str] = {
    "E001": "syntax error",
    "E002": "invalid character or unterminated literal",
    "E003": "spec text that is not UTF-8",
    "E004": "spec larger than the most nndsl reads (1 MiB)",
    "E005": "expression, loop or block use nested deeper than the checker allows",
    "E101": "unknown layer",
    "E102": "unknown argument",
    "E103": "argument given twice",
    "E104": "too many positional arguments",
    "E105": "missing required argument",
    "E106": "argument of the wrong type",
    "E107": "invalid argument value",
    "E108": "undefined name",
    "E109": "name defined twice",
    "E110": "invalid constant expression",
    "E111": "invalid output selector",
    "E112": "invalid input declaration",
    "E113": "spec defines no model",
    "E114": "value of the wrong kind (a tensor, a layer or a constant where another is needed)",
    "E115": "invalid block definition or use of a block inside itself",
    "E116": "import failed",
    "E117": "invalid statement or return",
    "E118": "more work than the checker allows (nested repetitions, loops and num_layers multiply)",
    "E119": "tensor size beyond 64 bits, which no backend can hold",
    "E122": "a shared module used where its first use built a different module (or inside another shared one)",
    "E123": "invalid weight tying (not two named layers holding that weight, or weights of different shapes)",
    "E201": "size mismatch between a layer and its input",
    "E202": "input of the wrong rank",
    "E203": "input too small for the layer",
    "E204": "input of the wrong dtype",
    "E205": "argument cannot be inferred from the input",
    "E206": "invalid reshape",
    "E207": "layer configuration rejected for this input",
    "E208": "shapes of combined values do not match (element-wise, cat, residual)",
    "E216": "invalid extra input or forward argument in a layer call (unknown, repeated, too many)",
    "E209": "view of reordered memory that torch cannot make without a copy",
    "E210": "index a tensor refuses (out of range, a step not positive, too many indices, two '...')",
    "E211": "tensor index nndsl does not support (a tensor as index, a bound not computable at run time)",
    "E212": "a symbolic size needed at run time that no tensor in scope has",
    "W301": "size constraint that cannot be verified statically",
    "W302": "configuration torch accepts with a warning",
    "W303": "declared input dimension fixed by a layer",
    "W304": "--input given for a file without a bare chain",
    "W305": "value, input or block never used",
    "W306": "view of reordered memory that torch may refuse, depending on symbolic sizes",
    "W308": "Squeeze of a symbolic size: kept, as torch keeps every size but 1",
    "W309": "configuration torch refuses in training mode only (a train section refuses it)",
    "W310": "suppression comment that hides nothing, or that names an unknown code or an error",
    "E501": "invalid train section or setting",
    "E502": "unknown loss, optimizer, schedule, data source or initialisation",
    "E503": "train section without a model it can train",
    "E504": "loss does not fit the model's output",
    "E505": "data does not fit the model",
    "W501": "loss and the model's last layer disagree (Softmax before CrossEntropyLoss, no Sigmoid before BCELoss)",
    "E601": "layer or configuration with no ONNX equivalent",
    "E602": "weights that do not fit the model",
    "E603": "input shape needed for an ONNX export",
    "E604": "ONNX export failed verification",
    "E605": "no input sizes the model accepts to verify an ONNX export with",
    "N401": "layer resolved from the input's rank",
    "N502": "training data chosen by default",
}


class Label(NamedTuple):
    """A secondary annotation: a span and what happened there."""

    span: Span
    message: str


class Diagnostic(NamedTuple):
    """One message for the user, anchored to a primary span in a source."""

    severity: Severity
    code: str
    message: str
    source: Source
    span: Span
    label: str = ""
    secondary: tuple[Label, ...] = ()
    help: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def line_col(self) -> tuple[int, int]:
        return self.source.line_col(self.span.start)

    def to_json(self) -> dict:
        """The documented JSON form (see docs/json-schema.md)."""
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "file": self.source.name,
            "span": span_json(self.source, self.span),
            "label": self.label,
            "labels": [{"span": span_json(self.source, lab.span), "message": lab.message} for lab in self.secondary],
            "help": self.help,
            "notes": list(self.notes),
        }


def span_json(source: Source, span: Span) -> dict:
    line, col = source.line_col(span.start)
    end_line, end_col = source.line_col(max(span.start, span.end))
    return {
        "start": span.start,
        "end": span.end,
        "line": line,
        "column": col,
        "end_line": end_line,
        "end_column": end_col,
    }


class DiagnosticError(Exception):
    """Raised inside a stage to abandon the current item with a diagnostic already built."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


# ---------------------------------------------------------------- rendering

_COLORS = {
    "error": "\033[1;31m",
    "warning": "\033[1;33m",
    "note": "\033[1;36m",
    "help": "\033[1;36m",
    "gutter": "\033[1;34m",
    "bold": "\033[1m",
    "reset": "\033[0m",
}


class _Paint:
    def __init__(self, color: bool):
        self.color = color

    def __call__(self, kind: str, text: str) -> str:
        if not self.color or not text:
            return text
        return f"{_COLORS[kind]}{text}{_COLORS['reset']}"


def render_short(diag: Diagnostic) -> str:
    """``file:line:col: severity: message [CODE]``, one line, for CI logs and editors."""
    line, col = diag.line_col
    return f"{printable(diag.source.name)}:{line}:{col}: {diag.severity.value}: {diag.message} [{diag.code}]"


def render_text(diag: Diagnostic, color: bool = False) -> str:
    """The full rustc-style rendering with the source line, carets and labels."""
    paint = _Paint(color)
    sev = diag.severity.value
    src = diag.source
    line, col = diag.line_col
    labels = [(diag.span, diag.label, True)] + [(lab.span, lab.message, False) for lab in diag.secondary]
    by_line: dict[int, list[tuple[int, int, str, bool]]] = {}
    for span, message, primary in labels:
        l0, c0 = src.line_col(span.start)
        l1, c1 = src.line_col(max(span.start, span.end - 1)) if span.end > span.start else (l0, c0)
        text = src.line_text(l0)
        end_col = c1 + 1 if l1 == l0 else len(text) + 1
        end_col = max(end_col, c0 + 1)
        by_line.setdefault(l0, []).append((c0, end_col, message, primary))
    width = len(str(max(by_line)))
    gutter = paint("gutter", " " * width + " |")
    out = [f"{paint(sev, f'{sev}[{diag.code}]')}{paint('bold', ': ' + diag.message)}"]
    out.append(f"{' ' * width}{paint('gutter', '-->')} {printable(src.name)}:{line}:{col}")
    out.append(gutter)
    previous = None
    for lineno in sorted(by_line):
        if previous is not None and lineno > previous + 1:
            out.append(paint("gutter", "..."))
        previous = lineno
        text = src.line_text(lineno).replace("\t", " ")
        out.append(f"{paint('gutter', str(lineno).rjust(width) + ' |')} {text}")
        out.extend(_underlines(sorted(by_line[lineno]), gutter, paint, sev))
    out.append(gutter)
    for note in diag.notes:
        out.append(f"{' ' * width} {paint('gutter', '=')} {paint('bold', 'note')}: {note}")
    if diag.help:
        out.append(f"{' ' * width} {paint('gutter', '=')} {paint('help', 'help')}: {diag.help}")
    return "\n".join(out)


def _underlines(labels, gutter: str, paint, sev: str) -> list[str]:
    """Marker line plus hanging label lines, rightmost label inline (as rustc does)."""
    merged: dict[int, tuple] = {}  # labels starting in one column share one hanging line
    for c0, c1, message, primary in labels:
        if c0 in merged:
            _, d1, before, was_primary = merged[c0]
            text = "; ".join(m for m in dict.fromkeys((before, message)) if m)
            merged[c0] = (c0, max(c1, d1), text, was_primary or primary)
        else:
            merged[c0] = (c0, c1, message, primary)
    labels = [merged[c] for c in sorted(merged)]
    marks: list[str] = []
    for c0, c1, _, primary in labels:
        while len(marks) < c1 - 1:
            marks.append(" ")
        for i in range(c0 - 1, c1 - 1):
            if marks[i] == " ":
                marks[i] = "^" if primary else "-"

    def colored(chars: list[str], strip: bool = True) -> str:
        text = "".join(chars)
        text = text.rstrip() if strip else text
        out = []
        for ch in text:
            if ch == "^":
                out.append(paint(sev, ch))
            elif ch in "-|":
                out.append(paint("gutter", ch))
            else:
                out.append(ch)
        return "".join(out)

    last = labels[-1]
    first_line = colored(marks)
    if last[2]:
        first_line += " " + (paint(sev, last[2]) if last[3] else last[2])
    lines = [f"{gutter} {first_line}"]
    hanging = [lab for lab in labels[:-1] if lab[2]]
    for index in range(len(hanging) - 1, -1, -1):
        pipes = [" "] * (max(lab[0] for lab in hanging))
        for lab in hanging[: index + 1]:
            pipes[lab[0] - 1] = "|"
        lines.append(f"{gutter} {colored(pipes)}")
        c0, _, message, primary = hanging[index]
        prefix = [" "] * (c0 - 1)
        for lab in hanging[:index]:
            prefix[lab[0] - 1] = "|"
        lines.append(f"{gutter} {colored(prefix, strip=False)}{paint(sev, message) if primary else message}")
    return lines


class DiagnosticSink:
    """Collects every diagnostic of a run, in the order they were found."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def add(self, diag: Diagnostic) -> None:
        self.items.append(diag)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)
