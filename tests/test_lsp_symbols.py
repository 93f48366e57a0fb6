"""Go to definition, references, rename and the outline of a spec, on check results: scopes as
the checker has them, across imported files, on broken files, and renames that keep a spec's
meaning (the renamed spec checks with the same diagnostics and parameter counts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nndsl.api import check_source
from nndsl.check.loading import FileCache
from nndsl.diagnostics import Span
from nndsl.lsp.symbols import RenameError, definition, document_symbols, references, rename, rename_range
from nndsl.lsp.symbols import name_index as index_of

SPECS = Path(__file__).resolve().parent.parent / "specs"
ZOO = SPECS / "zoo"
ALL_SPECS = sorted(SPECS.rglob("*.nn"))
ZOO_SPECS = sorted(ZOO.glob("*.nn"))


def check(text: str, name: str = "<spec>", files: FileCache | None = None):
    return check_source(text, name, files=files)


def check_path(path: Path, files: FileCache | None = None):
    return check_source(path.read_text(), str(path), files=files)


def at(text: str, needle: str, nth: int = 0, inside: int = 0) -> int:
    """The offset of the ``nth`` occurrence of ``needle`` in ``text``, plus ``inside``."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    return offset + inside


def spans(places) -> list[tuple[str, int, int]]:
    return [(Path(p.source.name).name, p.span.start, p.span.end) for p in places]


def written(place) -> str:
    return place.source.text[place.span.start : place.span.end]


def apply(text: str, edits: list[tuple[Span, str]]) -> str:
    for span, new in sorted(edits, key=lambda e: e[0].start, reverse=True):
        text = text[: span.start] + new + text[span.end :]
    return text


def outcome(result) -> tuple[list[str], list[int]]:
    """What a rename must keep: the diagnostics' codes and every model's parameter count."""
    models = result.program.models if result.program is not None else ()
    return sorted(d.code for d in result.diagnostics), [m.param_count for m in models]


# ---------------------------------------------------------------- definition and references


def test_definition_of_an_imported_block_lands_in_its_file():
    text = (ZOO / "resnet50.nn").read_text()
    result = check_path(ZOO / "resnet50.nn")
    blocks = (ZOO / "resnet_blocks.nn").read_text()
    for nth in (1, 2):  # both uses in the loop, and the import's name
        (place,) = definition(result, at(text, "Bottleneck", nth, inside=3))
        assert Path(place.source.name).name == "resnet_blocks.nn"
        assert place.real == str((ZOO / "resnet_blocks.nn").resolve())
        assert place.span.start == at(blocks, "block Bottleneck", inside=6)
        assert written(place) == "Bottleneck"
    (place,) = definition(result, at(text, "Bottleneck", 0))
    assert written(place) == "Bottleneck" and place.source is not result.source


def test_definition_of_an_import_path_is_the_file_it_names():
    text = (ZOO / "resnet50.nn").read_text()
    (place,) = definition(check_path(ZOO / "resnet50.nn"), at(text, '"resnet_blocks.nn"', inside=4))
    assert Path(place.source.name).name == "resnet_blocks.nn" and place.span == Span(0, 0)


def test_references_of_an_import_path_are_the_imports_of_that_file(tmp_path: Path):
    (tmp_path / "blocks.nn").write_text("let width = 8\nblock Dense(n) {\n    Linear(width, n)\n}\n")
    (tmp_path / "more.nn").write_text('from "blocks.nn" import width\nblock Wide(n) {\n    Linear(width, n)\n}\n')
    text = 'from "blocks.nn" import Dense\nfrom "more.nn" import Wide\nmodel M(x: [N, 8]) {\n    x -> Dense(8) -> Wide(4)\n}\n'
    (tmp_path / "main.nn").write_text(text)
    result = check_path(tmp_path / "main.nn")
    assert result.ok, result.diagnostics
    found = references(result, at(text, "blocks.nn"))
    assert sorted(spans(found)) == sorted([("blocks.nn", 0, 0), ("main.nn", 5, 16), ("more.nn", 5, 16)])
    assert spans(references(result, at(text, "blocks.nn"), include_declaration=False)) == [("main.nn", 5, 16)] + [
        ("more.nn", 5, 16)
    ]


def test_references_of_an_imported_block_cross_files():
    text = (ZOO / "resnet50.nn").read_text()
    result = check_path(ZOO / "resnet50.nn")
    found = references(result, at(text, "Bottleneck", 1))
    assert [name for name, _, _ in spans(found)] == ["resnet50.nn"] * 3 + ["resnet_blocks.nn"]
    assert all(written(p) == "Bottleneck" for p in found)
    without = references(result, at(text, "Bottleneck", 1), include_declaration=False)
    assert spans(without) == spans(found)[:3]


def test_references_of_a_loop_variable_stay_in_the_loop():
    text = (ZOO / "resnet50.nn").read_text()
    result = check_path(ZOO / "resnet50.nn")
    found = references(result, at(text, "for planes", inside=4))
    assert len(found) == 3 and all(written(p) == "planes" for p in found)
    (place,) = definition(result, at(text, "Bottleneck(planes)", inside=12))
    assert place.span.start == at(text, "for planes", inside=4)


def test_block_parameters_and_sizes_are_local_to_their_block():
    text = (ZOO / "resnet_blocks.nn").read_text()
    result = check_path(ZOO / "resnet_blocks.nn")
    basic = references(result, at(text, "planes"))  # BasicBlock's parameter
    bottleneck = references(result, at(text, "planes", text[: text.index("block Bottleneck")].count("planes")))
    assert basic and bottleneck and not set(spans(basic)) & set(spans(bottleneck))
    assert all(p.span.start < text.index("block Bottleneck") for p in basic)
    assert all(p.span.start > text.index("block Bottleneck") for p in bottleneck)
    size = at(text, "C, H, W")  # C in BasicBlock's input pattern
    uses = references(result, size)
    assert len(uses) == 1 + text[: text.index("block Bottleneck")].count("(C,") + 1  # C != planes
    assert all(written(p) == "C" for p in uses)
    (place,) = definition(result, at(text, "Conv2d(C", inside=7))
    assert place.span.start == size


def test_values_constants_models_and_keyword_arguments():
    text = """let hidden = 32
block Dense(x: [N, F], width, scale=1) {
    Linear(F, width * scale) -> ReLU
}
model Net(x: [N, 8]) {
    h = x -> Dense(hidden, scale=2)
    h -> Linear(hidden * 2, hidden)
}
train Net {
    loss = CrossEntropyLoss()
}
"""
    result = check(text)
    assert [d.code for d in result.errors] == ["E501"]  # no data source: the names all resolve
    assert len(references(result, at(text, "hidden"))) == 4
    assert len(references(result, at(text, "h ="))) == 2
    scale = references(result, at(text, "scale=1"))
    assert [text[p.span.start : p.span.end] for p in scale] == ["scale"] * 3  # the keyword at the call too
    assert spans(definition(result, at(text, "Net {")))[0][1] == at(text, "Net(")
    assert definition(result, at(text, "Linear")) == []
    assert references(result, at(text, "Linear")) == []


def test_a_value_used_in_another_model_is_another_name():
    text = "model A(x: [N, 4]) {\n    y = x -> ReLU\n    y\n}\nmodel B(x: [N, 4]) {\n    y = x -> Tanh\n    y\n}\n"
    result = check(text)
    first = references(result, at(text, "y ="))
    second = references(result, at(text, "y =", 1))
    assert len(first) == len(second) == 2 and not set(spans(first)) & set(spans(second))


def test_a_file_with_syntax_errors_keeps_its_valid_items():
    text = "let width = 16\nblock Dense(n) {\n    Linear(width, n) -> ReLU\n}\nmodel Broken(x: [N, 16]) {\n    x -> Linear(16 8)\n}\nmodel Good(x: [N, 16]) {\n    x -> Dense(width)\n}\n"
    result = check(text)
    assert not result.ok
    assert len(references(result, at(text, "width"))) == 3
    (place,) = definition(result, at(text, "Dense(width)", inside=2))
    assert place.span.start == at(text, "Dense")


def test_a_failed_check_still_navigates():
    text = "let w = 10\nmodel M(x: [N, 4]) {\n    x -> Linear(5, w) -> Linear(w, 2)\n}\n"
    result = check(text)
    assert any(d.code == "E201" for d in result.diagnostics)
    assert len(references(result, at(text, "w ="))) == 3


def test_no_module_gives_nothing():
    result = check("")
    assert definition(result, 0) == [] and references(result, 0) == [] and document_symbols(result) == []
    assert rename_range(result, 0) is None
    with pytest.raises(RenameError):
        rename(result, 0, "x")


def test_unsaved_buffer_of_an_imported_file(tmp_path: Path):
    (tmp_path / "blocks.nn").write_text("block Dense(width) {\n    Linear(8, width) -> ReLU\n}\n")
    main = tmp_path / "main.nn"
    text = 'from "blocks.nn" import Dense\nmodel M(x: [N, 8]) {\n    Dense(16) -> Linear(16, 2)\n}\n'
    main.write_text(text)
    files = FileCache()
    files.set_text(str(tmp_path / "blocks.nn"), "# edited\nblock Dense(width) {\n    Linear(8, width)\n}\n")
    result = check_source(text, str(main), files=files)
    (place,) = definition(result, at(text, "Dense(16)"))
    assert place.source.text.startswith("# edited") and written(place) == "Dense"


# ---------------------------------------------------------------- rename


def test_rename_an_imported_block_edits_both_files(tmp_path: Path):
    for name in ("resnet50.nn", "resnet_blocks.nn"):
        (tmp_path / name).write_text((ZOO / name).read_text())
    text = (tmp_path / "resnet50.nn").read_text()
    before = check_path(tmp_path / "resnet50.nn")
    edits = rename(before, at(text, "Bottleneck", 2), "Bneck")
    assert len(edits) == 4 and all(new == "Bneck" for _, new in edits)
    for path in {p.real for p, _ in edits}:
        changed = apply(Path(path).read_text(), [(p.span, new) for p, new in edits if p.real == path])
        Path(path).write_text(changed)
    after = check_path(tmp_path / "resnet50.nn")
    assert outcome(after) == outcome(before) and after.ok
    assert "Bneck" in (tmp_path / "resnet_blocks.nn").read_text()


def test_rename_refusals():
    text = (ZOO / "resnet_blocks.nn").read_text()
    result = check_path(ZOO / "resnet_blocks.nn")
    planes = at(text, "planes", text[: text.index("block Bottleneck")].count("planes"))
    with pytest.raises(RenameError, match="already"):
        rename(result, planes, "width")  # Bottleneck's own value
    with pytest.raises(RenameError, match="layer"):
        rename(result, at(text, "Conv2d"), "Conv")
    assert rename_range(result, at(text, "Conv2d")) is None
    for bad in ("model", "for", "9lives", "a-b", "", "Linear", "cat", "True", "_"):
        with pytest.raises(RenameError):
            rename(result, planes, bad)
    with pytest.raises(RenameError, match="no name"):
        rename(result, at(text, "# The"), "x")
    assert rename(result, planes, "planes") == []
    assert rename_range(result, planes + 2) == Span(planes, planes + len("planes"))


def test_rename_refuses_a_name_that_a_block_parameter_would_hide():
    text = "let k = 3\nblock B(x: [N, C], n) {\n    Linear(C, n * k)\n}\nmodel M(x: [N, 4]) {\n    x -> B(2)\n}\n"
    result = check(text)
    with pytest.raises(RenameError):
        rename(result, at(text, "k ="), "n")  # n is B's parameter, which would hide the constant
    with pytest.raises(RenameError):
        rename(result, at(text, "n)"), "C")
    assert len(rename(result, at(text, "n)"), "width")) == 2


def _renamable(result) -> list:
    index = index_of(result)
    return [o for o in index.main.occurrences if o.what == "def" and rename_range(result, o.span.start) is not None]


GOOD_SPECS = [*sorted(SPECS.glob("*.nn")), *ZOO_SPECS]


@pytest.mark.parametrize("path", GOOD_SPECS, ids=lambda p: p.name)
def test_renames_keep_the_specs_meaning(path: Path):
    """Every third name of each good spec (every one of them passes; a third keeps it quick)."""
    text = path.read_text()
    before = check_path(path)
    names = _renamable(before)
    assert names or path.name == "design_card.nn"  # a bare chain names nothing
    for occurrence in names[::3]:
        edits = rename(before, occurrence.span.start, occurrence.name + "_renamed")
        local = [(p.span, new) for p, new in edits if p.source is before.source]
        files = FileCache()
        for place, _ in edits:
            if place.source is not before.source:
                mine = [(p.span, n) for p, n in edits if p.source is place.source]
                files.set_text(place.real, apply(place.source.text, mine))
        after = check_source(apply(text, local), str(path), files=files)
        assert outcome(after) == outcome(before), (path.name, occurrence.name)


# ---------------------------------------------------------------- the outline


def test_document_symbols_of_blocks_and_models():
    blocks = document_symbols(check_path(ZOO / "resnet_blocks.nn"))
    assert [(s.name, s.kind) for s in blocks] == [("BasicBlock", "block"), ("Bottleneck", "block")]
    assert blocks[1].detail == "Bottleneck(x: [N, C, H, W], planes, stride=1)"
    assert [(c.name, c.kind) for c in blocks[1].children] == [
        ("x", "parameter"),
        ("planes", "parameter"),
        ("stride", "parameter"),
        ("width", "value"),
    ]
    assert blocks[1].children[2].detail == "= 1"
    resnet = document_symbols(check_path(ZOO / "resnet50.nn"))
    assert [(s.name, s.kind, s.detail) for s in resnet] == [
        ("resnet_blocks.nn", "import", "Bottleneck"),
        ("ResNet50", "model", "ResNet50(images: [N, 3, 224, 224])"),
    ]
    assert [(c.name, c.kind, c.detail) for c in resnet[1].children] == [("images", "input", "[N, 3, 224, 224]")]


def test_document_symbols_of_constants_and_train_sections():
    text = (SPECS / "fashion_mlp.nn").read_text()
    found = document_symbols(check(text, str(SPECS / "fashion_mlp.nn")))
    kinds = {s.kind for s in found}
    assert {"model", "train"} <= kinds
    for symbol in found:
        assert symbol.span.start <= symbol.name_span.start <= symbol.name_span.end <= symbol.span.end
    train = next(s for s in found if s.kind == "train")
    assert "loss" in [c.name for c in train.children]
    constants = document_symbols(check("let hidden = 4 * 8\n"))
    assert constants == [constants[0]._replace(name="hidden", kind="constant", detail="4 * 8")]


# ---------------------------------------------------------------- properties on every spec


def _definitions(path: Path):
    result = check_path(path)
    return result, [o for o in index_of(result).main.occurrences if o.what == "def"]


@settings(max_examples=60)
@given(st.data())
def test_every_definition_is_among_its_references(data):
    path = data.draw(st.sampled_from(ZOO_SPECS))
    result, defs = _definitions(path)
    if not defs:
        return
    occurrence = data.draw(st.sampled_from(defs))
    found = references(result, occurrence.span.start)
    mine = (result.source.name, occurrence.span)
    assert mine in [(p.source.name, p.span) for p in found]
    (place,) = definition(result, occurrence.span.start)
    for reference in found:
        if reference.source is result.source:
            assert definition(result, reference.span.start) == [place]


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_no_function_raises_at_any_offset(path: Path):
    result = check_path(path)
    for offset in range(len(result.source.text) + 1):
        definition(result, offset)
        references(result, offset, include_declaration=offset % 2 == 0)
        if rename_range(result, offset) is None:
            with pytest.raises(RenameError):
                rename(result, offset, "renamed_name")
        else:
            edits = rename(result, offset, "renamed_name")  # no spec uses the name: no clash
            assert edits and all(written(p) == written(edits[0][0]) for p, _ in edits)
    document_symbols(result)


def test_document_symbols_give_the_shapes_the_check_found():
    found = document_symbols(check_path(ZOO / "seq2seq_lstm.nn"))
    details = {c.name: (c.kind, c.detail) for c in found[0].children}
    assert details["source"] == ("input", "long[N, S]")
    assert details["h"] == ("value", "[1, N, 128]")  # a part of an unpacking
    assert details["encoder"] == ("value", "LSTM(64, 128, batch_first=True)")  # a layer: its expression
    assert "_" not in details


def test_rename_refuses_a_name_an_importer_uses(tmp_path: Path):
    (tmp_path / "blocks.nn").write_text("block Dense(width) {\n    Linear(8, width) -> ReLU\n}\n")
    text = 'from "blocks.nn" import Dense\nmodel M(x: [N, 8]) {\n    y = x -> Dense(16)\n    y -> Linear(16, 2)\n}\n'
    (tmp_path / "main.nn").write_text(text)
    result = check_path(tmp_path / "main.nn")
    for taken in ("M", "N", "y", "x"):  # the model, a size, a value that sees it, an input
        with pytest.raises(RenameError):
            rename(result, at(text, "Dense(16)"), taken)
    assert len(rename(result, at(text, "Dense(16)"), "Wide")) == 3


@settings(max_examples=40)
@given(st.data())
def test_text_being_typed_never_raises(data):
    """A spec cut anywhere (a buffer half typed), asked anything anywhere."""
    from nndsl.lsp.completion import complete

    path = data.draw(st.sampled_from(ALL_SPECS))
    text = path.read_text()
    cut = data.draw(st.integers(0, len(text)))
    typed = text[:cut] + data.draw(st.sampled_from(["", " -> ", "(", ", ", "\n", "é", "Lin", '"', "{", "}"]))
    result = check_source(typed, str(path))
    for offset in data.draw(st.lists(st.integers(0, len(typed)), min_size=1, max_size=8)):
        definition(result, offset)
        references(result, offset)
        complete(result, offset)
        if rename_range(result, offset) is None:
            with pytest.raises(RenameError):
                rename(result, offset, "fresh_name")
    document_symbols(result)


def test_a_name_used_before_its_definition_still_leads_there():
    text = (SPECS / "bad" / "flow_errors.nn").read_text()
    result = check_path(SPECS / "bad" / "flow_errors.nn")
    (place,) = definition(result, at(text, "later ->"))
    assert place.span.start == at(text, "later =")
    assert len(references(result, at(text, "later ="))) == 2


def test_a_train_sections_losses_and_optimizers_are_not_the_specs_names():
    text = (SPECS / "fashion_mlp.nn").read_text()
    result = check_path(SPECS / "fashion_mlp.nn")
    with pytest.raises(RenameError, match="built-in"):
        rename(result, at(text, "CrossEntropyLoss"), "Loss")
    assert definition(result, at(text, "CrossEntropyLoss")) == []


def test_a_value_may_be_renamed_to_a_data_sources_name():
    text = "model M(x: [N, 4]) {\n    h = x -> ReLU\n    h\n}\n"
    result = check(text)
    assert len(rename(result, at(text, "h ="), "digits")) == 2  # only a train section's setting names it
