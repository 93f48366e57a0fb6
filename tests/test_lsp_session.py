"""The language server's state in-process: the workspace's checks and what they invalidate, a
checker that raises, positions in UTF-16, settings, hover and inlay hints on checked specs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lsprotocol")

from nndsl.api import check_source  # noqa: E402
from nndsl.lsp.hover import hover  # noqa: E402
from nndsl.lsp.inlay import shape_hints  # noqa: E402
from nndsl.lsp.positions import LineIndex  # noqa: E402
from nndsl.lsp.session import Session, Settings  # noqa: E402
from nndsl.lsp.workspace import Workspace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def session() -> tuple[Session, list, list]:
    published, logged = [], []
    s = Session(lambda uri, diags, version: published.append((uri, [d.code for d in diags])), logged.append)
    return s, published, logged


def test_positions_count_utf16_units_both_ways():
    text = "a𝔁b\nüx\n"
    index = LineIndex(text)
    assert index.position(2) == (0, 3)  # after 'a' and the two units of 𝔁
    assert index.position(text.index("x")) == (1, 1)
    for offset in range(len(text) + 1):
        assert index.offset(*index.position(offset)) == offset
    assert index.offset(0, 99) == 3 and index.offset(9, 0) == len(text)


def test_a_checker_that_raises_is_logged_and_the_diagnostics_are_kept(tmp_path):
    s, published, logged = session()
    uri = (tmp_path / "m.nn").as_uri()
    s.workspace.open(uri, "model M(x: [N, 4]) {\n    x -> Linear(5, 2)\n}\n")
    s.changed(uri)
    assert published == [(uri, ["E201"])]
    good = s.workspace.get(uri).result

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    s.workspace.checker = broken
    s.workspace.change(uri, "model M(x: [N, 4]) {\n    x -> Linear(4, 2)\n}\n")
    s.changed(uri)
    assert published == [(uri, ["E201"])]  # nothing new published: the editor keeps the old ones
    assert len(logged) == 1 and "RuntimeError: boom" in logged[0] and "bug in nndsl" in logged[0]
    assert s.workspace.result(uri) is good  # hover and hints answer from the last check
    s.workspace.checker = check_source
    s.changed(uri)
    assert published[-1] == (uri, [])


def test_an_edit_rechecks_the_open_files_that_import_it_transitively(tmp_path):
    (tmp_path / "c.nn").write_text("block C(x: [N, K]) {\n    Linear(K, 3)\n}\n")
    (tmp_path / "b.nn").write_text('from "c.nn" import C\nblock B(x: [N, K]) {\n    C()\n}\n')
    main = 'from "b.nn" import B\nmodel M(x: [N, 4]) {\n    B() -> Linear(3, 1)\n}\n'
    other = "model O(x: [N, 4]) {\n    x -> ReLU\n}\n"
    s, published, _ = session()
    uris = {name: (tmp_path / name).as_uri() for name in ("main.nn", "other.nn", "c.nn")}
    s.workspace.open(uris["main.nn"], main)
    s.workspace.open(uris["other.nn"], other)
    s.refresh([uris["main.nn"], uris["other.nn"]])
    assert published == [(uris["main.nn"], []), (uris["other.nn"], [])]
    published.clear()
    c_text = (tmp_path / "c.nn").read_text().replace("Linear(K, 3)", "Linear(K, 3) -> Linear(4, 3)")
    s.workspace.open(uris["c.nn"], c_text)
    assert s.workspace.affected(uris["c.nn"]) == [uris["c.nn"], uris["main.nn"]]
    s.changed(uris["c.nn"])
    # the unsaved buffer counts; the mistake shows in main.nn at the use and in c.nn where it is
    assert published == [(uris["c.nn"], []), (uris["main.nn"], ["E201"]), (uris["c.nn"], ["E201"])]
    published.clear()
    assert s.closed(uris["main.nn"]) == [uris["c.nn"]]
    s.send(uris["c.nn"])
    assert published == [(uris["c.nn"], [])]  # what main.nn's check lent is gone with it
    reads = s.workspace.files.reads
    s.workspace.open(uris["main.nn"], main)
    s.changed(uris["main.nn"])  # checking again reads nothing from disk: the cache holds it
    assert s.workspace.files.reads == reads


def test_settings_take_initialization_options_and_the_nndsl_section():
    settings = Settings()
    assert settings.inlay_hints and settings.debounce_ms == 150
    settings.update({"inlayHints": False, "debounceMs": 40})
    assert not settings.inlay_hints and settings.debounce_ms == 40
    settings.update({"nndsl": {"inlayHints": {"enabled": True}}})
    assert settings.inlay_hints
    settings.update({"debounceMs": "fast"})  # ignored, not an error
    assert settings.debounce_ms == 40


def test_inlay_hints_only_for_the_requested_range():
    path = ROOT / "specs" / "zoo" / "resnet50.nn"
    text = path.read_text()
    result = check_source(text, str(path))
    index = LineIndex(text)
    hints = shape_hints(result, index, 0, len(text))
    assert [(index.position(o)[0], label) for o, label in hints] == [
        (4, "[N, 64, 112, 112]"),
        (5, "[N, 64, 56, 56]"),
        (7, "[N, 256, 56, 56] (first of 4 uses)"),
        (8, "[N, 2048, 7, 7]"),
        (9, "[N, 1000]"),
    ]
    line9 = index.offset(9, 0)
    assert [label for _, label in shape_hints(result, index, line9, len(text))] == ["[N, 1000]"]


def test_hover_inside_a_block_body_of_the_same_file_gives_each_use():
    text = (
        "block B(x: [N, C], k) {\n    Linear(C, k) -> ReLU\n}\n"
        "model M(x: [N, 4]) {\n    x -> B(8) -> B(16) -> B(16)\n}\n"
    )
    result = check_source(text)
    markdown, span = hover(result, text.index("Linear(C") + 1)
    assert text[span.start : span.end] == "Linear(C, k)"
    assert "`[N, 4] -> [N, 8] (first of 3 uses, shapes differ)`" in markdown
    assert "**parameters** 40" in markdown  # the first use's: 4 * 8 + 8


def test_workspace_close_gives_the_file_on_disk_back(tmp_path):
    path = tmp_path / "b.nn"
    path.write_text("block B(x: [N, C]) {\n    Linear(C, 3)\n}\n")
    ws = Workspace()
    ws.open(path.as_uri(), "block B(x: [N, C]) {\n    Linear(C, 9)\n}\n")
    assert ws.files.read(str(path), str(path.resolve())).decode().count("9") == 1
    ws.close(path.as_uri())
    assert b"Linear(C, 3)" in ws.files.read(str(path), str(path.resolve()))


def test_hover_on_operations_residuals_and_values():
    text = (
        "model M(x: [N, 4]) {\n    a = x -> Linear(4, 8)\n    b = x -> Linear(4, 8)\n    c = a + b\n"
        "    cat(a, c, dim=1) -> Residual(Linear(16, 16)) -> Linear(16, 2)\n}\n"
    )
    result = check_source(text)

    def at(needle: str, delta: int = 0) -> tuple[str, str]:
        markdown, span = hover(result, text.index(needle) + delta)
        return markdown, text[span.start : span.end]

    markdown, covered = at("a + b", 2)
    assert covered == "a + b" and "`[N, 8], [N, 8] -> [N, 8]`" in markdown and "**MACs** 8*N" in markdown
    markdown, covered = at("cat(", 1)
    assert covered == "cat(a, c, dim=1)" and "-> [N, 16]`" in markdown and "**MACs** 0" in markdown
    markdown, covered = at("Residual", 1)
    assert "**parameters** 272" in markdown and "**MACs** 272*N" in markdown  # 16*16 + 16, and the sum
    markdown, covered = at("a, c")
    assert covered == "a" and "a: [N, 8]" in markdown
    markdown, covered = at("x: [N")
    assert covered == "x" and "x: [N, 4]" in markdown and "input of model M" in markdown
    assert hover(result, text.index("{")) is None


def test_hover_on_a_blocks_parameters_and_constants_gives_their_values_in_each_use():
    text = "block B(x: [N, C], k) {\n    h = k * 2\n    Linear(C, h) -> ReLU\n}\n"
    text += "model M(x: [N, 4]) {\n    x -> B(8) -> B(16) -> B(16)\n}\n"
    result = check_source(text)
    assert hover(result, text.index("C, h"))[0] == "```nn\nC = 4, 16, 32\n```\nin block B in 3 uses"
    assert hover(result, text.index("h) ->"))[0].startswith("```nn\nh = 16, 32\n```")
    assert hover(result, text.index("k * 2"))[0].startswith("```nn\nk = 8, 16\n```")


def test_positions_in_utf8_and_utf32_units_when_the_client_prefers_them():
    text = "a𝔁é b\n"
    for encoding, column in (("utf-8", 1 + 4 + 2), ("utf-32", 3), ("utf-16", 1 + 2 + 1)):
        index = LineIndex(text, encoding)
        assert index.position(3) == (0, column)
        assert index.offset(0, column) == 3
        for offset in range(len(text) + 1):
            assert index.offset(*index.position(offset)) == offset


def test_a_request_handler_that_raises_answers_its_default_and_logs():
    pytest.importorskip("pygls")
    from pygls.exceptions import JsonRpcInvalidRequest

    from nndsl.lsp.server import guarded

    class Server:
        def __init__(self) -> None:
            self.logged: list[str] = []

        def _log(self, message: str) -> None:
            self.logged.append(message)

    @guarded(list)
    def inlay_hint(ls, params):
        raise KeyError("boom")

    @guarded(lambda: None)
    def rename(ls, params):
        raise JsonRpcInvalidRequest("'x' is not a name that can be renamed")

    server = Server()
    assert inlay_hint(server, None) == []
    assert server.logged == ["nndsl: internal error in inlay_hint: KeyError: 'boom' (this is a bug in nndsl)"]
    with pytest.raises(JsonRpcInvalidRequest):  # meant for the user: it goes to the editor
        rename(server, None)


def test_an_imported_file_opened_through_a_link_gets_its_diagnostics_at_the_editors_uri(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    blocks = tmp_path / "link" / "blocks.nn"
    blocks.write_text("block B(x: [N, C]) {\n    Linear(C, 3) -> Linear(4, 2)\n}\n")
    main = tmp_path / "link" / "main.nn"
    main.write_text('from "blocks.nn" import B\nmodel M(x: [N, 8]) {\n    B()\n}\n')
    s, published, _ = session()
    s.workspace.open(blocks.as_uri(), blocks.read_text())
    s.workspace.open(main.as_uri(), main.read_text())
    s.changed(main.as_uri())
    assert published == [(main.as_uri(), ["E201"]), (blocks.as_uri(), ["E201"])]  # not real/blocks.nn's URI
