"""What a client chooses: UTF-8 columns (Neovim offers them first), settings the server asks for
through ``workspace/configuration`` (VS Code's way)."""

from __future__ import annotations

import asyncio
import sys

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[sys.executable, "-m", "nndsl", "lsp"]))
async def client(lsp_client: LanguageClient):
    general = lsp.GeneralClientCapabilities(position_encodings=[lsp.PositionEncodingKind.Utf8])
    watched = lsp.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True)
    workspace = lsp.WorkspaceClientCapabilities(configuration=True, did_change_watched_files=watched)
    lsp_client.registrations = []

    @lsp_client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
    def register(client: LanguageClient, params: lsp.RegistrationParams) -> None:
        client.registrations += params.registrations

    lsp_client.set_configuration({"inlayHints": {"enabled": False}, "debounceMs": 0}, section="nndsl")
    params = lsp.InitializeParams(capabilities=lsp.ClientCapabilities(general=general, workspace=workspace))
    result = await lsp_client.initialize_session(params)
    assert result.capabilities.position_encoding == lsp.PositionEncodingKind.Utf8
    yield
    await lsp_client.shutdown_session()


async def test_columns_are_utf8_bytes_when_the_client_chose_them(client: LanguageClient, tmp_path):
    text = 'model M(x: [N, 4]) {\n    x -> Dropout(p="𝔁é") -> ReLu\n}\n'
    uri = (tmp_path / "u.nn").as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "nn", 1, text)))
    for _ in range(2000):
        if uri in client.diagnostics:
            break
        await asyncio.sleep(0.01)
    [_, name] = client.diagnostics[uri]
    line = text.split("\n")[1]
    column = len(line[: line.index("ReLu")].encode("utf-8"))
    assert name.code == "E101" and name.range.start == lsp.Position(1, column)
    assert name.range.end == lsp.Position(1, column + 4)
    [action] = await client.text_document_code_action_async(
        lsp.CodeActionParams(lsp.TextDocumentIdentifier(uri), name.range, lsp.CodeActionContext([name]))
    )
    [edit] = action.edit.changes[uri]
    assert edit.range == name.range and edit.new_text == "ReLU"


async def test_settings_are_asked_for_and_asked_again_when_they_change(client: LanguageClient, tmp_path):
    text = "model M(x: [N, 4]) {\n    x -> Linear(4, 2)\n}\n"
    uri = (tmp_path / "m.nn").as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "nn", 1, text)))
    whole = lsp.Range(lsp.Position(0, 0), lsp.Position(3, 0))
    params = lsp.InlayHintParams(lsp.TextDocumentIdentifier(uri), whole)
    for _ in range(500):  # the server asks for its settings once initialised: off, as the client's say
        hints = await client.text_document_inlay_hint_async(params)
        if not hints:
            break
        await asyncio.sleep(0.01)
    assert not hints
    client.set_configuration({"inlayHints": {"enabled": True}}, section="nndsl")
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    for _ in range(500):
        hints = await client.text_document_inlay_hint_async(params)
        if hints:
            break
        await asyncio.sleep(0.01)
    assert [h.label for h in hints] == ["[N, 2]"]


async def test_the_server_asks_to_be_told_of_changed_spec_files(client: LanguageClient):
    for _ in range(500):
        if client.registrations:
            break
        await asyncio.sleep(0.01)
    [registration] = client.registrations
    assert registration.method == lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES
    assert [w["globPattern"] for w in registration.register_options["watchers"]] == ["**/*.nn"]
