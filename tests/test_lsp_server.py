"""The language server end to end: a real LSP client (pytest-lsp) starts ``python -m nndsl lsp``
and opens, edits, hovers, formats and fixes specs as an editor would."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.asyncio(loop_scope="module")

BAD_MLP = """\
# a Linear that does not fit the layer before it
model Mlp(x: [N, 1, 28, 28]) {
    Flatten -> Linear(784, 512) -> ReLU
    -> Linear(256, 10)
}
"""


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[sys.executable, "-m", "nndsl", "lsp"]))
async def client(lsp_client: LanguageClient):
    params = lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), initialization_options={"debounceMs": 10})
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("specs")


async def published(client: LanguageClient, uri: str, timeout: float = 20.0) -> list[lsp.Diagnostic]:
    """The next diagnostics published for ``uri`` (the caller pops the old ones first)."""
    for _ in range(int(timeout / 0.01)):
        if uri in client.diagnostics:
            return list(client.diagnostics.pop(uri))
        await asyncio.sleep(0.01)
    raise AssertionError(f"no diagnostics published for {uri}")


async def settles(client: LanguageClient, uri: str, codes: list[str], timeout: float = 20.0) -> list[lsp.Diagnostic]:
    """The diagnostics published for ``uri`` once their codes are ``codes``."""
    for _ in range(int(timeout / 0.01)):
        if [d.code for d in client.diagnostics.get(uri, [None])] == codes:
            return list(client.diagnostics[uri])
        await asyncio.sleep(0.01)
    raise AssertionError(f"diagnostics of {uri}: {client.diagnostics.get(uri)}, not {codes}")


def open_doc(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "nn", version, text)))
    return uri


def change(client: LanguageClient, uri: str, version: int, edits: list[tuple[lsp.Range | None, str]]) -> None:
    client.diagnostics.pop(uri, None)
    events = [
        lsp.TextDocumentContentChangeWholeDocument(text)
        if where is None
        else lsp.TextDocumentContentChangePartial(range=where, text=text)
        for where, text in edits
    ]
    identifier = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(identifier, events))


def pos(text: str, needle: str, delta: int = 0) -> lsp.Position:
    """The LSP position (UTF-16) of ``needle`` in ``text`` plus ``delta`` characters."""
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return lsp.Position(line, len(text[start:offset].encode("utf-16-le")) // 2)


def apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """The text with LSP edits applied (last first)."""
    lines = text.split("\n")

    def offset(p: lsp.Position) -> int:
        before = sum(len(line) + 1 for line in lines[: p.line])
        units, i, line = 0, 0, lines[p.line] if p.line < len(lines) else ""
        while units < p.character and i < len(line):
            units += 2 if ord(line[i]) > 0xFFFF else 1
            i += 1
        return before + i

    spans = sorted(((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


async def test_a_new_user_sees_the_error_and_the_shapes_and_applies_the_quick_fix(client, folder):
    path = folder / "mlp.nn"
    path.write_text(BAD_MLP)
    uri = open_doc(client, path, BAD_MLP)
    diagnostics = await published(client, uri)
    assert [d.code for d in diagnostics] == ["E201"]
    error = diagnostics[0]
    assert error.source == "nndsl" and error.severity == lsp.DiagnosticSeverity.Error
    assert error.message.startswith("Linear expects 256 input features, got 512")
    assert "help: change in_features to 512" in error.message
    assert error.range.start == pos(BAD_MLP, "Linear(256")
    assert error.range.end == pos(BAD_MLP, "Linear(256, 10)", len("Linear(256, 10)"))
    [producer] = error.related_information
    assert producer.message == "output [N, 512] produced here"
    assert producer.location.range.start == pos(BAD_MLP, "ReLU")

    hints = await client.text_document_inlay_hint_async(
        lsp.InlayHintParams(lsp.TextDocumentIdentifier(uri), lsp.Range(lsp.Position(0, 0), lsp.Position(9, 0)))
    )
    assert [(h.position.line, h.label) for h in hints] == [(2, "[N, 512]"), (3, "[N, 10]")]

    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(lsp.TextDocumentIdentifier(uri), error.range, lsp.CodeActionContext([error]))
    )
    titles = [a.title for a in actions]
    assert titles == ["Change in_features to 512", "Insert Linear(512, 256) before this layer"]
    for action in actions:  # each fix alone makes the error go away
        fixed = apply(BAD_MLP, action.edit.changes[uri])
        change(client, uri, 2, [(None, fixed)])
        assert await published(client, uri) == []
    change(client, uri, 3, [(None, BAD_MLP)])
    assert [d.code for d in await published(client, uri)] == ["E201"]
    # the preferred fix, sent as the incremental edit an editor makes
    [edit] = actions[0].edit.changes[uri]
    change(client, uri, 4, [(edit.range, edit.new_text)])
    assert await published(client, uri) == []


async def test_the_bad_spec_of_the_repository_is_fixed_by_its_preferred_quick_fix(client):
    path = ROOT / "specs" / "bad" / "mlp_mismatch.nn"
    text = path.read_text()
    uri = open_doc(client, path, text)
    [error] = await published(client, uri)
    assert error.code == "E201"
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(lsp.TextDocumentIdentifier(uri), error.range, lsp.CodeActionContext([error]))
    )
    [preferred] = [a for a in actions if a.is_preferred]
    [edit] = preferred.edit.changes[uri]
    change(client, uri, 2, [(edit.range, edit.new_text)])
    assert await published(client, uri) == []
    whole = lsp.Range(lsp.Position(0, 0), lsp.Position(2, 0))
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(lsp.TextDocumentIdentifier(uri), whole))
    assert [h.label for h in hints] == ["[N, 10]"]
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri)))


async def test_columns_count_utf16_units_after_non_ascii_text(client, folder):
    # 𝔁 is one code point and two UTF-16 units: the columns after it differ by one
    text = 'model M(x: [N, 4]) {\n    x -> Linear(4, 8) -> Dropout(p="𝔁é") -> ReLu\n}\n'
    uri = open_doc(client, folder / "utf16.nn", text)
    string, name = await published(client, uri)
    assert (string.code, name.code) == ("E106", "E101")
    assert string.range.end == pos(text, '"𝔁é"', 4)
    assert name.range.start == lsp.Position(1, text.split("\n")[1].index("ReLu") + 1)
    assert name.range.start == pos(text, "ReLu") and name.range.end == pos(text, "ReLu", 4)
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(lsp.TextDocumentIdentifier(uri), name.range, lsp.CodeActionContext([name]))
    )
    assert [a.title for a in actions] == ["Change 'ReLu' to 'ReLU'"]
    assert "-> ReLU\n" in apply(text, actions[0].edit.changes[uri])


async def test_an_unknown_layer_gets_a_did_you_mean_fix_after_astral_text(client, folder):
    text = "# 𝔁𝔂 🙂\nmodel M(x: [N, 4]) {\n    x -> Linear(4, 8) -> ReLu  # 𝔁\n}\n"
    uri = open_doc(client, folder / "typo.nn", text)
    [error] = await published(client, uri)
    assert error.code == "E101"
    assert error.range.start == pos(text, "ReLu") and error.range.end == pos(text, "ReLu", 4)
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(lsp.TextDocumentIdentifier(uri), error.range, lsp.CodeActionContext([error]))
    )
    assert [a.title for a in actions] == ["Change 'ReLu' to 'ReLU'"]
    fixed = apply(text, actions[0].edit.changes[uri])
    assert "-> ReLU  # 𝔁" in fixed
    change(client, uri, 2, [(None, fixed)])
    assert await published(client, uri) == []


async def test_hover_gives_shapes_parameters_macs_and_the_signature(client):
    path = ROOT / "specs" / "zoo" / "resnet50.nn"
    text = path.read_text()
    uri = open_doc(client, path, text)
    assert await published(client, uri) == []
    hover = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), pos(text, "Linear(2048", 2))
    )
    value = hover.contents.value
    assert "`[N, 2048] -> [N, 1000]`" in value
    assert "**parameters** 2,049,000" in value and "**MACs** 2048000*N" in value
    assert "Linear(in_features, out_features, bias=True)" in value
    assert "torch.nn.Linear.html" in value
    assert hover.range.start == pos(text, "Linear(2048")
    block = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), pos(text, "Bottleneck(planes, stride)", 1))
    )
    assert "[N, 64, 56, 56] -> [N, 256, 56, 56] (first of 4 uses, shapes differ)" in block.contents.value
    assert "block `Bottleneck` defined at" in block.contents.value
    images = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), pos(text, "images:", 1))
    )
    assert "images: [N, 3, 224, 224]" in images.contents.value


async def test_hover_in_a_block_body_shows_each_use(client):
    path = ROOT / "specs" / "zoo" / "resnet_blocks.nn"
    importer = ROOT / "specs" / "zoo" / "resnet50.nn"
    open_doc(client, importer, importer.read_text())  # already open: the block file's uses come from it
    text = path.read_text()
    uri = open_doc(client, path, text)
    await published(client, uri)
    hover = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), pos(text, "Conv2d(C, planes, 1", 1))
    )
    # a file of blocks alone checks no model: its layers still get their documentation
    assert "Conv2d(in_channels, out_channels, kernel_size" in hover.contents.value


async def test_files_that_import_each_other_see_unsaved_edits(client, folder):
    blocks = folder / "blocks.nn"
    blocks_text = "block Head(x: [N, C], k) {\n    Linear(C, k)\n}\n"
    blocks.write_text(blocks_text)
    main = folder / "main.nn"
    main_text = 'from "blocks.nn" import Head\nmodel M(x: [N, 8]) {\n    Head(4) -> Linear(4, 2)\n}\n'
    main.write_text(main_text)
    main_uri = open_doc(client, main, main_text)
    assert await published(client, main_uri) == []
    blocks_uri = open_doc(client, blocks, blocks_text)
    await published(client, blocks_uri)
    await settles(client, main_uri, [])  # opening a file checks the open files importing it too
    # an unsaved edit of the imported file: the importer is checked again, against the buffer
    client.diagnostics.pop(main_uri, None)
    edited = blocks_text.replace("Linear(C, k)", "Linear(C, k) -> Linear(5, k)")
    change(client, blocks_uri, 2, [(None, edited)])
    [error] = await published(client, main_uri)
    assert error.code == "E201"
    # reported at the use in the edited file, pointing into the imported one
    assert error.range.start == pos(main_text, "Head(4)")
    assert error.range.end == pos(main_text, "Head(4)", len("Head(4)"))
    inner = error.related_information[0].location
    assert inner.uri == blocks_uri and inner.range.start == pos(edited, "Linear(5")
    assert f"in {blocks}:2:21" in error.message
    # and in the imported file itself, where a file of blocks alone would show nothing
    [own] = await settles(client, blocks_uri, ["E201"])
    assert own.range.start == pos(edited, "Linear(5") and own.message.startswith("Linear expects 5 input")
    assert own.related_information[-1].message == f"in the use of Head(4) at {main}:3:5"
    assert own.related_information[-1].location.uri == main_uri
    assert own.related_information[-1].location.range.start == pos(main_text, "Head(4)")
    # closing the buffer without saving: the file on disk counts again
    client.diagnostics.pop(main_uri, None)
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(blocks_uri)))
    assert await published(client, main_uri) == []
    await settles(client, blocks_uri, [])


async def test_a_file_changed_on_disk_is_read_again(client, folder):
    blocks = folder / "watched_blocks.nn"
    blocks.write_text("block B(x: [N, C]) {\n    Linear(C, 3)\n}\n")
    main = folder / "watched.nn"
    text = 'from "watched_blocks.nn" import B\nmodel M(x: [N, 8]) {\n    B() -> Linear(3, 2)\n}\n'
    uri = open_doc(client, main, text)
    assert await published(client, uri) == []
    blocks.write_text("block B(x: [N, C]) {\n    Linear(C, 30)\n}\n")
    event = lsp.FileEvent(blocks.as_uri(), lsp.FileChangeType.Changed)
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams([event]))
    [error] = await published(client, uri)
    assert error.code == "E201" and error.range.start == pos(text, "Linear(3, 2)")


async def test_formatting_is_nndsl_fmt_and_a_broken_file_gets_no_edits(client, folder):
    from nndsl.fmt import format_text

    messy = "model M(x:[N,4]){\n  x->Linear(4,8)  ->ReLU\n}\n"
    uri = open_doc(client, folder / "messy.nn", messy)
    await published(client, uri)
    options = lsp.FormattingOptions(tab_size=4, insert_spaces=True)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(lsp.TextDocumentIdentifier(uri), options)
    )
    assert apply(messy, edits) == format_text(messy) != messy
    broken = "model M(x: [N, 4]) {\n    x -> Linear(4,\n"
    uri = open_doc(client, folder / "broken.nn", broken)
    await published(client, uri)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(lsp.TextDocumentIdentifier(uri), options)
    )
    assert not edits
    assert not client.messages  # no error popup


async def test_a_broken_file_still_gives_hover_for_its_valid_parts(client, folder):
    text = "model M(x: [N, 4]) {\n    x -> Linear(4, 8) -> ReLU\n}\nmodel Broken(x: [N, 4]) {\n    x -> (\n}\n"
    uri = open_doc(client, folder / "half.nn", text)
    diagnostics = await published(client, uri)
    assert any(d.code == "E001" for d in diagnostics)
    hover = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), pos(text, "Linear(4, 8)", 1))
    )
    assert "`[N, 4] -> [N, 8]`" in hover.contents.value


async def test_inline_suppressions_work_as_in_the_cli(client, folder):
    text = "model M(x: [N, 4]) {\n    y = x -> ReLU\n    x -> Linear(4, 2)\n}\n"
    uri = open_doc(client, folder / "unused.nn", text)
    assert [d.code for d in await published(client, uri)] == ["W305"]
    quiet = text.replace("y = x -> ReLU", "y = x -> ReLU  # nndsl: ignore[W305]")
    change(client, uri, 2, [(None, quiet)])
    assert await published(client, uri) == []


async def test_changes_wait_for_the_debounce_and_a_save_checks_at_once(client, folder):
    text = "model M(x: [N, 4]) {\n    x -> Linear(4, 2)\n}\n"
    uri = open_doc(client, folder / "debounced.nn", text)
    assert await published(client, uri) == []
    settings = {"nndsl": {"debounceMs": 5000, "inlayHints": False}}
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings))
    change(client, uri, 2, [(None, text.replace("Linear(4, 2)", "Linear(5, 2)"))])
    await asyncio.sleep(0.5)
    assert uri not in client.diagnostics  # still waiting for typing to pause
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
    assert [d.code for d in await published(client, uri, timeout=2.0)] == ["E201"]
    # a request while a check waits runs it first: the answer and the diagnostics are the text's
    change(client, uri, 3, [(None, text)])
    hover = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), pos(text, "Linear(4, 2)", 1))
    )
    assert "`[N, 4] -> [N, 2]`" in hover.contents.value
    assert await published(client, uri, timeout=1.0) == []
    whole = lsp.Range(lsp.Position(0, 0), lsp.Position(3, 0))
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(lsp.TextDocumentIdentifier(uri), whole))
    assert not hints  # turned off
    settings = {"nndsl": {"debounceMs": 10, "inlayHints": True}}
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings))
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(lsp.TextDocumentIdentifier(uri), whole))
    assert [h.label for h in hints] == ["[N, 2]"]


# ---------------------------------------------------------------- navigation and completion

NAV_BLOCKS = "block Head(x: [N, C], k) {\n    Linear(C, k)\n}\n"
NAV_MAIN = (
    'from "nav_blocks.nn" import Head\n'
    "let width = 8\n"
    "model M(x: [N, 4]) {\n"
    "    hidden = x -> Linear(4, width) -> ReLU\n"
    "    hidden -> Head(2)\n"
    "}\n"
)


def nav_files(folder: Path) -> tuple[Path, Path]:
    (folder / "nav_blocks.nn").write_text(NAV_BLOCKS)
    main = folder / "nav_main.nn"
    main.write_text(NAV_MAIN)
    return main, folder / "nav_blocks.nn"


async def test_definition_goes_to_a_block_in_the_imported_file(client, folder):
    pytest.importorskip("nndsl.lsp.symbols")
    main, blocks = nav_files(folder)
    uri = open_doc(client, main, NAV_MAIN)
    assert await published(client, uri) == []
    where = lsp.TextDocumentPositionParams(lsp.TextDocumentIdentifier(uri), pos(NAV_MAIN, "Head(2)", 1))
    found = await client.text_document_definition_async(lsp.DefinitionParams(where.text_document, where.position))
    locations = found if isinstance(found, list) else [found]
    assert [loc.uri for loc in locations] == [blocks.as_uri()]
    assert locations[0].range.start.line == 0
    # a constant of this file
    found = await client.text_document_definition_async(
        lsp.DefinitionParams(lsp.TextDocumentIdentifier(uri), pos(NAV_MAIN, "width)", 1))
    )
    locations = found if isinstance(found, list) else [found]
    assert [(loc.uri, loc.range.start.line) for loc in locations] == [(uri, 1)]


async def test_references_and_rename_of_a_value(client, folder):
    pytest.importorskip("nndsl.lsp.symbols")
    main, _ = nav_files(folder)
    uri = open_doc(client, main, NAV_MAIN)
    await published(client, uri)
    at = pos(NAV_MAIN, "hidden ->", 2)
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            context=lsp.ReferenceContext(include_declaration=True),
            text_document=lsp.TextDocumentIdentifier(uri),
            position=at,
        )
    )
    assert sorted(r.range.start.line for r in refs) == [3, 4]
    highlights = await client.text_document_document_highlight_async(
        lsp.DocumentHighlightParams(lsp.TextDocumentIdentifier(uri), at)
    )
    assert sorted(h.range.start.line for h in highlights) == [3, 4]
    prepared = await client.text_document_prepare_rename_async(
        lsp.PrepareRenameParams(lsp.TextDocumentIdentifier(uri), at)
    )
    prepared_range = getattr(prepared, "range", prepared)
    assert prepared_range.start == pos(NAV_MAIN, "hidden ->")
    edit = await client.text_document_rename_async(lsp.RenameParams(lsp.TextDocumentIdentifier(uri), at, "features"))
    renamed = apply(NAV_MAIN, edit.changes[uri])
    assert "features = x ->" in renamed and "features -> Head(2)" in renamed and "hidden" not in renamed
    change(client, uri, 2, [(None, renamed)])
    assert await published(client, uri) == []


async def test_document_symbols_even_in_a_broken_file(client, folder):
    pytest.importorskip("nndsl.lsp.symbols")
    main, _ = nav_files(folder)
    broken = NAV_MAIN + "model Broken(x: [N, 4]) {\n    x -> (\n}\n"
    uri = open_doc(client, main, broken)
    assert any(d.code == "E001" for d in await published(client, uri))
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(lsp.TextDocumentIdentifier(uri))
    )
    names = {s.name for s in symbols}
    assert {"M", "width"} <= names
    [model] = [s for s in symbols if s.name == "M"]
    assert model.kind == lsp.SymbolKind.Class and model.range.start.line == 2


async def test_completion_offers_layers_with_snippets_and_names_in_scope(client, folder):
    pytest.importorskip("nndsl.lsp.completion")
    main, _ = nav_files(folder)
    text = NAV_MAIN.replace("    hidden -> Head(2)\n", "    hidden -> Lin\n")
    uri = open_doc(client, main, text)
    await published(client, uri)
    answer = await client.text_document_completion_async(
        lsp.CompletionParams(lsp.TextDocumentIdentifier(uri), pos(text, "-> Lin\n", 6))
    )
    items = {item.label: item for item in answer.items}
    linear = items["Linear"]
    assert linear.kind == lsp.CompletionItemKind.Class
    assert "in_features" in (linear.detail or "") + (linear.insert_text or "")
    if linear.insert_text is not None:
        assert linear.insert_text_format == lsp.InsertTextFormat.Snippet


async def test_signature_help_inside_a_call_being_typed(client, folder):
    text = "model M(x: [N, 4]) {\n    x -> Linear(4, \n}\n"
    uri = open_doc(client, folder / "typing.nn", text)
    await published(client, uri)
    help = await client.text_document_signature_help_async(
        lsp.SignatureHelpParams(lsp.TextDocumentIdentifier(uri), pos(text, "Linear(4, ", len("Linear(4, ")))
    )
    [signature] = help.signatures
    assert signature.label == "Linear(in_features, out_features, bias=True)"
    assert help.active_parameter == 1 and signature.parameters[1].label == "out_features"
