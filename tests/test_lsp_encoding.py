"""A client that prefers UTF-8 columns (Neovim offers them first) gets UTF-8 columns."""

from __future__ import annotations

import asyncio
import sys

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "nndsl", "lsp"]))
async def client(lsp_client: LanguageClient):
    general = lsp.GeneralClientCapabilities(position_encodings=[lsp.PositionEncodingKind.Utf8])
    params = lsp.InitializeParams(capabilities=lsp.ClientCapabilities(general=general))
    result = await lsp_client.initialize_session(params)
    assert result.capabilities.position_encoding == lsp.PositionEncodingKind.Utf8
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
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
