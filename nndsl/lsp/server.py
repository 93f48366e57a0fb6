"""``nndsl lsp``: the Language Server Protocol server over stdio, built on pygls.

The handlers convert between LSP's positions (UTF-16 columns, or the units the client prefers)
and the text's offsets and call the pure
modules of this package: diagnostics and quick fixes, hover, inlay hints, formatting through
nndsl.fmt, and navigation and completion (nndsl.lsp.symbols, nndsl.lsp.completion).
"""

from __future__ import annotations

import asyncio
import functools
import traceback

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from nndsl.api import Result
from nndsl.diagnostics import Span
from nndsl.lsp.diagnostics import Converter, file_uri, to_range
from nndsl.lsp.positions import LineIndex
from nndsl.lsp.session import Session
from nndsl.lsp.workspace import uri_path
from nndsl.version import __version__

SYMBOL_KINDS = {
    "model": lsp.SymbolKind.Class,
    "block": lsp.SymbolKind.Function,
    "constant": lsp.SymbolKind.Constant,
    "value": lsp.SymbolKind.Variable,
    "input": lsp.SymbolKind.Variable,
    "parameter": lsp.SymbolKind.TypeParameter,
    "train": lsp.SymbolKind.Object,
    "import": lsp.SymbolKind.Module,
}
COMPLETION_KINDS = {
    "layer": lsp.CompletionItemKind.Class,
    "keyword": lsp.CompletionItemKind.Keyword,
    "argument": lsp.CompletionItemKind.Property,
    "block": lsp.CompletionItemKind.Function,
    "constant": lsp.CompletionItemKind.Constant,
    "value": lsp.CompletionItemKind.Variable,
    "function": lsp.CompletionItemKind.Function,
    "operator": lsp.CompletionItemKind.Operator,
    "file": lsp.CompletionItemKind.File,
    "import": lsp.CompletionItemKind.Module,
}


class NndslServer(LanguageServer):
    """The language server: a Session (workspace, settings, checks) and the debounce timers."""

    def __init__(self) -> None:
        super().__init__("nndsl", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.session = Session(self._publish, self._log)
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def _publish(self, uri: str, diagnostics: list[lsp.Diagnostic], version: int | None) -> None:
        params = lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        self.text_document_publish_diagnostics(params)

    def _log(self, message: str) -> None:
        self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error, message=message))

    def check_now(self, uri: str) -> None:
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        self.session.changed(uri)

    def check_later(self, uri: str) -> None:
        """Check after typing pauses (the debounce); a change before then restarts the wait."""
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        delay = self.session.settings.debounce_ms / 1000
        if delay <= 0:
            self.session.changed(uri)
            return
        loop = asyncio.get_running_loop()
        self._timers[uri] = loop.call_later(delay, self._fire, uri)

    def _fire(self, uri: str) -> None:
        self._timers.pop(uri, None)
        self.session.changed(uri)

    def pull_configuration(self) -> None:
        """Ask a client that answers ``workspace/configuration`` for the ``nndsl`` section."""
        workspace = self.client_capabilities.workspace
        if workspace is None or not workspace.configuration:
            return
        params = lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section="nndsl")])

        def take(future) -> None:
            try:
                items = future.result()
            except Exception:  # a client that cannot answer keeps the settings as they are
                return
            hints = self.session.settings.inlay_hints
            if items:
                self.session.settings.update(items[0])
            refresh = workspace.inlay_hint is not None and workspace.inlay_hint.refresh_support
            if refresh and hints != self.session.settings.inlay_hints:
                self.workspace_inlay_hint_refresh(None)

        self.workspace_configuration(params).add_done_callback(take)

    def watch_specs(self) -> None:
        """Ask a client that can to report changes of ``.nn`` files on disk (an import re-read)."""
        workspace = self.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace is not None else None
        if watched is None or not watched.dynamic_registration:
            return
        options = lsp.DidChangeWatchedFilesRegistrationOptions(watchers=[lsp.FileSystemWatcher(glob_pattern="**/*.nn")])
        registration = lsp.Registration(
            id="nndsl-specs", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options
        )
        self.client_register_capability(lsp.RegistrationParams(registrations=[registration]))

    # ---------------------------------------------------------- helpers for the handlers

    def checked(self, uri: str) -> tuple[Result, LineIndex] | None:
        """The document's check for its current text and its line index. A request that comes
        while a change waits for its debounced check runs that check now (and publishes it)."""
        if uri in self._timers:
            self.check_now(uri)
        result = self.session.workspace.result(uri)
        if result is None:
            return None
        return result, LineIndex.of(result.source, self.session.workspace.encoding)

    def place_location(self, uri: str, result: Result, place) -> lsp.Location:
        """An nndsl.lsp.symbols Place as an LSP location."""
        if place.source is result.source:
            target = uri
        elif place.real is not None:
            target = self.session.workspace.uri_of(place.real)
        else:
            target = file_uri(place.source.name)
        return lsp.Location(target, to_range(LineIndex.of(place.source, self.session.workspace.encoding), place.span))


def guarded(default):
    """A request handler that answers ``default()`` and logs the error when it raises (a bug in
    nndsl), rather than sending the editor an error for each hover or keystroke."""

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(ls: NndslServer, params):
            try:
                return handler(ls, params)
            except JsonRpcException:  # an answer meant for the user (a rename refused)
                raise
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                ls._log(f"nndsl: internal error in {handler.__name__}: {detail} (this is a bug in nndsl)")
                return default()

        return wrapper

    return decorate


def _offset(found: tuple[Result, LineIndex], position: lsp.Position) -> int:
    return found[1].offset(position.line, position.character)


def create_server() -> NndslServer:  # noqa: C901 (one registration per LSP feature)
    """A server with every handler registered."""
    server = NndslServer()
    session = server.session
    workspace = session.workspace

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: NndslServer, params: lsp.InitializeParams) -> None:
        session.settings.update(params.initialization_options)
        # pygls chose the column units from the client's preferences (UTF-16 unless it prefers another)
        encoding = ls.workspace.position_encoding
        workspace.encoding = str(getattr(encoding, "value", encoding) or "utf-16")

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: NndslServer, params: lsp.InitializedParams) -> None:
        ls.pull_configuration()
        ls.watch_specs()

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: NndslServer, params: None) -> None:
        for timer in ls._timers.values():
            timer.cancel()
        ls._timers.clear()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: NndslServer, params: lsp.DidChangeConfigurationParams) -> None:
        session.settings.update(params.settings)  # the settings pushed, if any
        ls.pull_configuration()  # VS Code sends none: they are asked for

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NndslServer, params: lsp.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        workspace.open(doc.uri, doc.text, doc.version)
        ls.check_now(doc.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: NndslServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        text = ls.workspace.get_text_document(uri).source  # pygls applied the (incremental) changes
        workspace.change(uri, text, params.text_document.version)
        ls.check_later(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: NndslServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.check_now(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NndslServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        timer = ls._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        doc = workspace.get(uri)
        workspace.close(uri)
        for target in session.closed(uri):  # what its check located in the files it imports
            session.send(target)
        session.send(uri)  # only what open importers locate in it, if any
        if doc is not None and doc.real is not None:  # importers read the file on disk again
            session.refresh(workspace.importers([doc.real]))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: NndslServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        paths = [p for p in (uri_path(change.uri) for change in params.changes) if p is not None]
        session.refresh(workspace.files_changed(paths))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded(lambda: None)
    def hover(ls: NndslServer, params: lsp.HoverParams) -> lsp.Hover | None:
        from nndsl.lsp.hover import hover as describe

        found = ls.checked(params.text_document.uri)
        if found is None:
            return None
        answer = describe(found[0], _offset(found, params.position))
        if answer is None:
            return None
        text, span = answer
        content = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text)
        return lsp.Hover(contents=content, range=to_range(found[1], span))

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT, lsp.InlayHintOptions(resolve_provider=False))
    @guarded(list)
    def inlay_hint(ls: NndslServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        from nndsl.lsp.inlay import shape_hints

        if not session.settings.inlay_hints:
            return []
        found = ls.checked(params.text_document.uri)
        if found is None:
            return []
        result, index = found
        start = _offset(found, params.range.start)
        end = _offset(found, params.range.end)
        hints = []
        for offset, label in shape_hints(result, index, start, end):
            line, col = index.position(offset)
            hints.append(lsp.InlayHint(lsp.Position(line, col), label, kind=lsp.InlayHintKind.Type, padding_left=True))
        return hints

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix])
    )
    @guarded(list)
    def code_action(ls: NndslServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        found = ls.checked(uri)
        if found is None:
            return []
        result, index = found
        wanted = params.range
        actions = []
        for diagnostic in Converter(uri, result, workspace.encoding, workspace.uri_of).all():
            if not diagnostic.data or not _overlaps(diagnostic.range, wanted):
                continue
            for title, start, end, text, preferred in diagnostic.data["fixes"]:
                edit = lsp.TextEdit(to_range(index, Span(start, end)), text)
                actions.append(
                    lsp.CodeAction(
                        title=title,
                        kind=lsp.CodeActionKind.QuickFix,
                        diagnostics=[diagnostic],
                        edit=lsp.WorkspaceEdit(changes={uri: [edit]}),
                        is_preferred=preferred,
                    )
                )
        return actions

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @guarded(list)
    def formatting(ls: NndslServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        from nndsl.fmt import FormatError, FormatSyntaxError, format_text

        doc = workspace.get(params.text_document.uri)
        if doc is None:
            return []
        try:
            formatted = format_text(doc.text, doc.name)
        except (FormatSyntaxError, FormatError):
            return []  # a file that does not parse is left as it is; its diagnostics say why
        if formatted == doc.text:
            return []
        index = doc.index
        return [lsp.TextEdit(to_range(index, Span(0, len(doc.text))), formatted)]

    @server.feature(lsp.TEXT_DOCUMENT_SIGNATURE_HELP, lsp.SignatureHelpOptions(trigger_characters=["(", ","]))
    @guarded(lambda: None)
    def signature_help(ls: NndslServer, params: lsp.SignatureHelpParams) -> lsp.SignatureHelp | None:
        from nndsl.lsp.signature import signature_at

        doc = workspace.get(params.text_document.uri)
        if doc is None:
            return None
        offset = doc.index.offset(params.position.line, params.position.character)
        found = signature_at(doc.text, offset, doc.result)  # the text as typed; blocks from the last check
        if found is None:
            return None
        documentation = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found.documentation)
        information = lsp.SignatureInformation(
            label=found.label,
            documentation=documentation if found.documentation else None,
            parameters=[lsp.ParameterInformation(label=p) for p in found.parameters],
        )
        return lsp.SignatureHelp(signatures=[information], active_signature=0, active_parameter=found.active)

    # ------------------------------------------------ navigation and completion (nndsl.lsp.symbols)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded(list)
    def definition(ls: NndslServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
        from nndsl.lsp import symbols

        uri = params.text_document.uri
        found = ls.checked(uri)
        if found is None:
            return []
        places = symbols.definition(found[0], _offset(found, params.position))
        return [ls.place_location(uri, found[0], p) for p in places]

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    @guarded(list)
    def references(ls: NndslServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
        from nndsl.lsp import symbols

        uri = params.text_document.uri
        found = ls.checked(uri)
        if found is None:
            return []
        include = params.context.include_declaration
        places = symbols.references(found[0], _offset(found, params.position), include)
        return [ls.place_location(uri, found[0], p) for p in places]

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
    @guarded(list)
    def document_highlight(ls: NndslServer, params: lsp.DocumentHighlightParams) -> list[lsp.DocumentHighlight]:
        from nndsl.lsp import symbols

        found = ls.checked(params.text_document.uri)
        if found is None:
            return []
        result, index = found
        places = symbols.references(result, _offset(found, params.position), True)
        return [lsp.DocumentHighlight(to_range(index, p.span)) for p in places if p.source is result.source]

    @server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    @guarded(lambda: None)
    def prepare_rename(ls: NndslServer, params: lsp.PrepareRenameParams) -> lsp.Range | None:
        from nndsl.lsp import symbols

        found = ls.checked(params.text_document.uri)
        if found is None:
            return None
        span = symbols.rename_range(found[0], _offset(found, params.position))
        return None if span is None else to_range(found[1], span)

    @server.feature(lsp.TEXT_DOCUMENT_RENAME, lsp.RenameOptions(prepare_provider=True))
    @guarded(lambda: None)
    def rename(ls: NndslServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
        from pygls.exceptions import JsonRpcInvalidRequest

        from nndsl.lsp import symbols

        uri = params.text_document.uri
        found = ls.checked(uri)
        if found is None:
            return None
        try:
            edits = symbols.rename(found[0], _offset(found, params.position), params.new_name)
        except symbols.RenameError as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        changes: dict[str, list[lsp.TextEdit]] = {}
        for place, text in edits:
            location = ls.place_location(uri, found[0], place)
            changes.setdefault(location.uri, []).append(lsp.TextEdit(location.range, text))
        return lsp.WorkspaceEdit(changes=changes)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded(list)
    def document_symbol(ls: NndslServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        from nndsl.lsp import symbols

        found = ls.checked(params.text_document.uri)
        if found is None:
            return []
        index = found[1]

        def convert(symbol) -> lsp.DocumentSymbol:
            return lsp.DocumentSymbol(
                name=symbol.name,
                kind=SYMBOL_KINDS.get(symbol.kind, lsp.SymbolKind.Variable),
                range=to_range(index, symbol.span),
                selection_range=to_range(index, symbol.name_span),
                detail=symbol.detail or None,
                children=[convert(c) for c in symbol.children] or None,
            )

        return [convert(s) for s in symbols.document_symbols(found[0])]

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["(", ",", ">", ".", '"']))
    @guarded(lambda: lsp.CompletionList(is_incomplete=False, items=[]))
    def completion(ls: NndslServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        from nndsl.lsp import completion as complete

        found = ls.checked(params.text_document.uri)
        if found is None:
            return lsp.CompletionList(is_incomplete=False, items=[])
        items = []
        for item in complete.complete(found[0], _offset(found, params.position)):
            doc = (
                lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=item.documentation)
                if item.documentation
                else None
            )
            items.append(
                lsp.CompletionItem(
                    label=item.label,
                    kind=COMPLETION_KINDS.get(item.kind, lsp.CompletionItemKind.Text),
                    detail=item.detail or None,
                    documentation=doc,
                    insert_text=item.snippet,
                    insert_text_format=lsp.InsertTextFormat.Snippet if item.snippet else None,
                    sort_text=item.sort or None,
                )
            )
        return lsp.CompletionList(is_incomplete=False, items=items)

    return server


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    def key(p: lsp.Position) -> tuple[int, int]:
        return p.line, p.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def serve() -> int:
    """Run the server on standard input and output until the client ends the session."""
    create_server().start_io()
    return 0
