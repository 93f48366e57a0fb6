"""The server's state apart from the protocol: the workspace, the settings, and the update path
from a changed document to the diagnostics to publish. The benchmark drives this directly."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from lsprotocol import types as lsp

from nndsl.lsp.diagnostics import Converter
from nndsl.lsp.workspace import Workspace

#: how long typing must pause before a changed document is checked (initializationOptions "debounceMs")
DEBOUNCE_MS = 150


class Settings:
    """What the client configures (initializationOptions, or the ``nndsl`` section of its settings)."""

    def __init__(self) -> None:
        self.debounce_ms = DEBOUNCE_MS
        self.inlay_hints = True

    def update(self, options: Any) -> None:
        """Take the settings an options object gives; ``{"nndsl": {...}}`` and ``{...}`` both work."""
        if not isinstance(options, dict):
            return
        options = options.get("nndsl", options) if isinstance(options.get("nndsl"), dict) else options
        hints = options.get("inlayHints")
        if isinstance(hints, bool):
            self.inlay_hints = hints
        elif isinstance(hints, dict) and isinstance(hints.get("enabled"), bool):
            self.inlay_hints = hints["enabled"]
        debounce = options.get("debounceMs", options.get("debounce"))
        if isinstance(debounce, (int, float)) and not isinstance(debounce, bool) and 0 <= debounce <= 10_000:
            self.debounce_ms = debounce


Publish = Callable[[str, list[lsp.Diagnostic], int | None], None]
Log = Callable[[str], None]


class Session:
    """Checks documents and hands their diagnostics to ``publish``; a check that raises is
    reported to ``log`` and the document keeps the diagnostics it had.

    A file's published diagnostics are its own check's and those that the checks of the open
    files importing it located in it (an imported block's mistake, for a use): a file of blocks
    alone checks nothing, so that is where its mistakes show while it is edited."""

    def __init__(self, publish: Publish, log: Log, workspace: Workspace | None = None) -> None:
        self.workspace = workspace or Workspace()
        self.settings = Settings()
        self.publish = publish
        self.log = log
        self.own: dict[str, list[lsp.Diagnostic]] = {}  # uri -> its own check's diagnostics
        self.lent: dict[str, dict[str, list[lsp.Diagnostic]]] = {}  # importer uri -> file uri -> those

    def refresh(self, uris: list[str]) -> None:
        """Check these open documents (in order) and publish each one's diagnostics."""
        for uri in dict.fromkeys(uris):
            doc = self.workspace.get(uri)
            if doc is None:
                continue
            try:
                result = self.workspace.check(uri)
                converter = Converter(uri, result, self.workspace.encoding, self.workspace.uri_of)
                own, elsewhere = converter.all(), converter.elsewhere()
            except Exception as exc:  # a bug in the checker must not take the editor's server down
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                self.log(f"nndsl: internal error checking {uri}: {detail} (this is a bug in nndsl)")
                continue
            self.own[uri] = own
            before = self.lent.pop(uri, {})
            if elsewhere:
                self.lent[uri] = elsewhere
            self.send(uri)
            for target in sorted(set(before) | set(elsewhere)):
                if target != uri and before.get(target) != elsewhere.get(target):
                    self.send(target)

    def send(self, uri: str) -> None:
        """Publish a file's diagnostics: its own and those its importers' checks located in it."""
        diagnostics = list(self.own.get(uri, ()))
        seen = {_key(d) for d in diagnostics}
        for lent in self.lent.values():
            for d in lent.get(uri, ()):
                if _key(d) not in seen:
                    seen.add(_key(d))
                    diagnostics.append(d)
        doc = self.workspace.get(uri)
        self.publish(uri, diagnostics, doc.version if doc is not None else None)

    def closed(self, uri: str) -> list[str]:
        """Forget a closed document: its own diagnostics and those it lent; the files to publish again."""
        self.own.pop(uri, None)
        lent = self.lent.pop(uri, {})
        return sorted(t for t in lent if t != uri)

    def changed(self, uri: str) -> None:
        """A document's text changed: check it and the open documents that import it."""
        self.refresh(self.workspace.affected(uri))


def _key(d: lsp.Diagnostic) -> tuple:
    r = d.range
    return (r.start.line, r.start.character, r.end.line, r.end.character, d.code, d.message)
