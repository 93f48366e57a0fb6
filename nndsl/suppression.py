"""Which diagnostics a run reports: inline suppression comments, code selection and promotion.

An inline comment ``# nndsl: ignore[W305]`` (several codes: ``# nndsl: ignore[W305, W301]``)
hides the named warnings and notes whose primary span starts on the comment's line; a comment
that hides nothing, names an unknown code or an error's code gives W310 at the comment. Errors
cannot be hidden, by a comment or by ``--ignore``: a spec with an error cannot be compiled, and
a check that passed it would promise what ``nndsl compile`` refuses.

``--select``/``--ignore`` take codes or prefixes (``W3`` is every W3xx code, as ruff's rule
prefixes); for a code both name, the longer (more specific) prefix decides, ``--ignore`` on a tie.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from nndsl.diagnostics import CATALOGUE, Diagnostic, Severity, Span
from nndsl.source import Source

#: the directive inside a comment; the codes in brackets, if any
_DIRECTIVE = re.compile(r"nndsl:[ \t]*ignore\b(\[[^\]\n]*\]?)?")
#: comments, and the strings they may not start inside (as the grammar's COMMENT and STRING)
_COMMENT_OR_STRING = re.compile(r"""#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'""")
SUPPRESSION_EXAMPLE = "# nndsl: ignore[W305]"


class Directive(NamedTuple):
    """One ``# nndsl: ignore[...]`` comment: its line, its span (from ``#``) and its codes."""

    line: int
    span: Span
    codes: tuple[str, ...]
    problem: str | None  # why it is malformed, or None


def directives(source: Source) -> list[Directive]:
    """Every suppression comment of a source, in order."""
    found: list[Directive] = []
    if "nndsl:" not in source.text:
        return found
    for match in _COMMENT_OR_STRING.finditer(source.text):
        if match.group()[0] != "#":
            continue
        directive = _DIRECTIVE.search(match.group())
        if directive is None:
            continue
        hash_at = match.group().rfind("#", 0, directive.start())  # its own '#' in a comment of several
        span = Span(match.start() + hash_at, match.start() + directive.end())
        codes, problem = _directive_codes(directive.group(1))
        found.append(Directive(source.line_col(span.start)[0], span, codes, problem))
    return found


def _directive_codes(bracketed: str | None) -> tuple[tuple[str, ...], str | None]:
    if not bracketed or not bracketed.endswith("]"):
        return (), f"a suppression names the codes it hides: write {SUPPRESSION_EXAMPLE}"
    codes = tuple(c.strip() for c in bracketed[1:-1].split(",") if c.strip())
    if not codes:
        return (), f"a suppression names the codes it hides: write {SUPPRESSION_EXAMPLE}"
    for code in codes:
        if code not in CATALOGUE:
            return codes, f"unknown code '{code}' in a suppression (`nndsl codes` lists them)"
        if code.startswith("E"):
            return codes, f"{code} is an error, which cannot be suppressed: a spec with an error cannot be compiled"
    return codes, None


def apply_inline(diagnostics: list[Diagnostic], source: Source, unchecked: Sequence[Span] = ()) -> list[Diagnostic]:
    """``diagnostics`` without those an inline comment hides, plus W310 for each comment of
    ``source`` that is malformed or, when the check found no error, hides nothing (outside the
    ``unchecked`` spans: blocks no model of the file uses, checked where another file does).
    With an error the check may have stopped before the warning a comment is there for."""
    tables: dict[Source, dict[int, list[Directive]]] = {}  # a Source hashes by identity

    def on_line(src: Source, line: int) -> list[Directive]:
        if src not in tables:
            tables[src] = {}
            for directive in directives(src):
                tables[src].setdefault(directive.line, []).append(directive)
        return tables[src].get(line, [])

    own = directives(source)
    if not own and all(d.source is source for d in diagnostics):
        return diagnostics  # the usual case: no comment to honour
    used: set[tuple[Source, int, str]] = set()  # (source, directive start, code)
    kept = []
    for diag in diagnostics:
        hidden = False
        if diag.severity is not Severity.ERROR:
            for directive in on_line(diag.source, diag.line_col[0]):
                if directive.problem is None and diag.code in directive.codes:
                    used.add((diag.source, directive.span.start, diag.code))
                    hidden = True
        if not hidden:
            kept.append(diag)
    has_errors = any(d.severity is Severity.ERROR for d in diagnostics)
    for directive in own:
        if directive.problem is not None:
            kept.append(_unused(source, directive, directive.problem))
        elif not has_errors and not any(s.start <= directive.span.start < s.end for s in unchecked):
            idle = [c for c in directive.codes if (source, directive.span.start, c) not in used]
            if idle:
                what = ", ".join(idle)
                kept.append(_unused(source, directive, f"suppression of {what} hides nothing on this line"))
    if len(kept) != len(diagnostics):
        kept.sort(key=lambda d: (d.source is not source, d.span.start))
    return kept


def _unused(source: Source, directive: Directive, message: str) -> Diagnostic:
    return Diagnostic(
        Severity.WARNING,
        "W310",
        message,
        source,
        directive.span,
        "this suppression",
        help="remove the comment, or name the code of a warning reported on this line",
    )


# ---------------------------------------------------------------- the command line's choices


def parse_codes(text: str) -> tuple[str, ...]:
    """A comma-separated list of codes or prefixes (``W3,N401``); ValueError, saying why, for a
    prefix no warning or note code starts with, or an error's code."""
    codes = tuple(c.strip().upper() for c in text.split(",") if c.strip())
    if not codes:
        raise ValueError("expected codes or prefixes separated by commas, such as W305,W3")
    for code in codes:
        if code.startswith("E"):
            raise ValueError(f"{code}: errors are always reported; only warnings (W) and notes (N) can be chosen")
        if not any(known.startswith(code) for known in CATALOGUE):
            raise ValueError(f"{code}: no diagnostic code starts so (`nndsl codes` lists them)")
    return codes


def _specificity(code: str, prefixes: tuple[str, ...]) -> int:
    """The length of the longest prefix of ``code`` in ``prefixes``; -1 when none matches."""
    return max((len(p) for p in prefixes if code.startswith(p)), default=-1)


def choose(
    diagnostics: list[Diagnostic],
    select: tuple[str, ...] | None = None,
    ignore: tuple[str, ...] = (),
    warnings_as_errors: bool = False,
) -> list[Diagnostic]:
    """The diagnostics a run reports: errors always; a warning or note when ``select`` (None:
    every code) names it more specifically than ``ignore`` does; with ``warnings_as_errors``,
    warnings reported as errors (notes stay notes)."""
    chosen = []
    for diag in diagnostics:
        if diag.severity is not Severity.ERROR:
            selected = _specificity(diag.code, ("",) if select is None else select)
            if selected < 0 or _specificity(diag.code, ignore) >= selected:
                continue
            if warnings_as_errors and diag.severity is Severity.WARNING:
                note = "reported as an error because of --warnings-as-errors"
                diag = diag._replace(severity=Severity.ERROR, notes=(*diag.notes, note))
        chosen.append(diag)
    return chosen
