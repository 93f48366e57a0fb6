"""Quick fixes: the exact edits a diagnostic's help names, located by the parse's spans.

The help texts that name one exact edit (what to write, where is known from the diagnostic):

- ``did you mean 'ReLU'?`` (unknown layer, name, argument, block, setting...): the diagnostic's
  span is the name as written; the fix writes the suggested one there (one fix for each name
  of ``did you mean Conv1d, Conv2d or Conv3d?``, none of them preferred).
- ``change in_features to 512`` (E201 and the other size mismatches of Linear, convolutions,
  norms, recurrent layers): the fix rewrites that argument of the call at the diagnostic's span,
  found in the parse (by keyword, else by its position in the layer's signature).
- ``insert Flatten before this layer`` / ``insert Linear(512, 256) before this layer``: the fix
  writes the layer and an arrow before the call.

A diagnostic reported inside a block for one of its uses (a note names the use) gets no fix: an
edit of the block's text changes every use.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from nndsl import ast
from nndsl.diagnostics import Diagnostic, Span

_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_DID_YOU_MEAN = re.compile(r"did you mean (.+?)\?")
_QUOTED = re.compile(r"'([A-Za-z_][A-Za-z_0-9]*)'")
_CHANGE = re.compile(r"change ([a-z_]+) to (-?\d+)")
_INSERT = re.compile(r"insert ((?:Flatten|Linear\(\d+, \d+\))) before this layer")


class Fix(NamedTuple):
    """One edit of the spec's text: replace ``span`` with ``text``."""

    title: str
    span: Span
    text: str
    preferred: bool = False  # the one an editor applies by itself ("fix all", a shortcut)


def quick_fixes(diag: Diagnostic, module: ast.Module | None) -> list[Fix]:
    """The exact edits ``diag``'s help names, in the file ``diag`` is located in (whose parse is
    ``module``); none when its help names no exact edit."""
    help_text = diag.help or ""
    if not help_text or _in_a_use(diag):
        return []
    text = diag.source.text
    written = text[diag.span.start : diag.span.end]
    fixes: list[Fix] = []
    if help_text.startswith("did you mean") and _NAME.match(written):
        found = _DID_YOU_MEAN.match(help_text)
        names = _suggested(found.group(1)) if found else []
        for name in names:
            fixes.append(Fix(f"Change '{written}' to '{name}'", diag.span, name, len(names) == 1))
    if module is None:
        return fixes
    call = _call_at(module, diag.span)
    if call is None:
        return fixes
    change = _CHANGE.match(help_text)
    if change is not None:
        arg = _argument(call, change.group(1))
        if arg is not None:
            key, value = change.groups()
            fixes.append(Fix(f"Change {key} to {value}", arg.value.span, value, True))
    for layer in _INSERT.findall(help_text):
        fixes.append(Fix(f"Insert {layer} before this layer", Span(call.span.start, call.span.start), f"{layer} -> "))
    return fixes


def _in_a_use(diag: Diagnostic) -> bool:
    """Reported inside a block's body for one use of it (a note or a label names the use)."""
    return any(n.startswith("in the use of ") for n in diag.notes) or any(
        label.message.startswith("in this use of ") for label in diag.secondary
    )


def _suggested(text: str) -> list[str]:
    """The names a did-you-mean offers: ``'ReLU'``, or ``Conv1d, Conv2d or Conv3d``."""
    quoted = _QUOTED.findall(text)
    if quoted:
        return quoted
    names = re.split(r",\s*|\s+or\s+", text)
    return names if all(_NAME.match(n) for n in names) else []


def _call_at(module: ast.Module, span: Span) -> ast.Call | None:
    """The layer call whose span is ``span``."""
    stack: list[Any] = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call) and node.span == span:
            return node
        if isinstance(node, tuple):
            span_of = getattr(node, "span", None)
            if span_of is not None and isinstance(span_of, Span) and not _covers(span_of, span):
                continue
            stack.extend(child for child in node if isinstance(child, tuple))
    return None


def _covers(outer: Span, inner: Span) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def _argument(call: ast.Call, key: str) -> ast.Arg | None:
    """The argument of ``call`` that gives parameter ``key``: by keyword, else by its position."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.text == key:
            return arg
    from nndsl.layers import lookup

    layer = lookup(call.name.text)
    if layer is None:
        return None
    names = [p.name for p in layer.params]
    if key not in names:
        return None
    positional = [arg for arg in call.args if arg.keyword is None]
    index = names.index(key)
    return positional[index] if index < len(positional) else None
