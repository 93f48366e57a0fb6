"""Completion on text being typed: each context (top-level keywords, chain steps, a call's
arguments, expressions, import paths and names, train sections) on text that does not parse
at the cursor, with non-ASCII text before it, in an empty file and at every offset of every spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from nndsl.api import check_source
from nndsl.lsp.completion import Item, complete

SPECS = Path(__file__).resolve().parent.parent / "specs"
ZOO = SPECS / "zoo"
ALL_SPECS = sorted(SPECS.rglob("*.nn"))


def items(text: str, name: str = "<spec>", offset: int | None = None) -> dict[str, Item]:
    """The completions at ``offset`` (the end of ``text`` by default), by label."""
    result = check_source(text, name)
    found = complete(result, len(text) if offset is None else offset)
    return {item.label: item for item in found}


def kinds(found: dict[str, Item]) -> set[str]:
    return {item.kind for item in found.values()}


HEAD = "let hidden = 64\nmodel M(x: [N, 3, 32, 32], mask: bool[N, T]) {\n"


def test_top_level_keywords():
    for text in ("", "let a = 1\n", "let a = 1\nmo", "model M(x: [N, 4]) {\n    x -> ReLU\n}\n"):
        found = items(text)
        assert {"model", "block", "let", "from", "train"} <= set(found), text
        assert found["model"].kind == "keyword" and found["model"].snippet.startswith("model ${1:Name}")
    assert "Linear" not in items("model M(x: [N, 4]) {\n    x -> ReLU\n}\n")  # no bare chain beside a model


def test_chain_step_after_an_arrow_on_incomplete_text():
    for tail in ("    x -> ", "    x -> Lin", "    y = x -> Flatten -> Li", "    y = "):
        found = items(HEAD + tail)
        assert not check_source(HEAD + tail, "<spec>").ok
        linear = found["Linear"]
        assert linear.kind == "layer"
        assert linear.detail == "Linear(in_features, out_features, bias=True)"
        assert linear.snippet == "Linear(${1:in_features}, ${2:out_features})"
        assert (
            linear.documentation
            == "Applies `y = x W^T + b` to the last dimension: `[*, in_features] -> [*, out_features]`."
        )
        assert found["ReLU"].snippet is None  # nothing required: the name alone
        assert found["cat"].kind == "function" and found["cat"].detail.startswith("cat(")
        assert found["x"].kind == "value" and found["hidden"].kind == "constant"
        assert "model" not in found
    assert "y" not in items(HEAD + "    y = x -> ")  # a value is not in scope in its own definition


def test_statement_start_in_a_body():
    found = items(HEAD + "    h = x -> Flatten\n    ")
    assert {"h", "x", "mask", "Conv2d", "return", "for"} <= set(found)
    assert found["N"].kind == "value" and found["N"].detail == "size"
    assert found["return"].kind == "keyword"


def test_keyword_arguments_not_yet_given():
    found = items(HEAD + "    x -> Conv2d(3, 64, ")
    arguments = {label for label, item in found.items() if item.kind == "argument"}
    assert {"kernel_size=", "stride=", "padding=", "bias="} <= arguments
    assert not {"in_channels=", "out_channels="} & arguments  # given by position
    assert found["stride="].detail == "stride=1"
    assert "hidden" in found and "x" in found
    assert "Linear" not in found  # a layer's argument is no layer
    found = items(HEAD + "    x -> Conv2d(3, 64, 3, stride=2, pad")
    arguments = {label for label, item in found.items() if item.kind == "argument"}
    assert "padding=" in arguments and "stride=" not in arguments and "kernel_size=" not in arguments


def test_arguments_of_a_block_and_residual():
    text = "block B(x: [N, C], width, scale=1) {\n    Linear(C, width * scale)\n}\nmodel M(x: [N, 4]) {\n    x -> B(8, "
    found = items(text)
    assert found["scale="].kind == "argument" and found["scale="].detail == "scale=1"
    assert "width=" not in found
    found = items(text.replace("B(8, ", "Residual(Linear(4, 4), "))
    assert "shortcut=" in found and "Linear" in found  # a sub-network may follow


def test_blocks_in_scope_local_and_imported():
    text = 'from "resnet_blocks.nn" import Bottleneck\nblock Mine(x: [N, C], k) {\n    Linear(C, k)\n}\nmodel M(x: [N, 64, 8, 8]) {\n    x -> '
    found = items(text, str(ZOO / "draft.nn"))
    assert found["Bottleneck"].kind == "block"
    assert found["Bottleneck"].detail == "Bottleneck(planes, stride=1)"
    assert found["Bottleneck"].snippet == "Bottleneck(${1:planes})"
    assert "resnet_blocks.nn" in found["Bottleneck"].documentation
    assert found["Mine"].detail == "Mine(k)"
    assert "BasicBlock" not in found  # not imported


def test_expression_context():
    found = items(HEAD + "    x -> Linear(hidden * ")
    assert {"hidden", "x", "N", "True"} <= set(found)
    assert not kinds(found) & {"layer", "argument"}
    found = items("let a = 2\nlet b = a + ")
    assert "a" in found and "model" not in found


def test_import_paths_and_names(tmp_path: Path):
    (tmp_path / "blocks.nn").write_text(
        "let width = 8\nblock Dense(n) {\n    Linear(width, n)\n}\nmodel Z(x: [N, 8]) {\n    x\n}\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.nn").write_text("block Other(n) {\n    ReLU\n}\n")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "main.nn").write_text("")
    main = str(tmp_path / "main.nn")
    found = items('from "', main)
    assert found["blocks.nn"].kind == "file" and "sub/" in found and "notes.txt" not in found
    assert "main.nn" not in found  # a spec does not import itself
    assert "sub/more.nn" in items('from "sub/', main)
    names = items('from "blocks.nn" import ', main)
    assert set(names) == {"Dense", "width"}  # blocks and constants, not models
    assert names["Dense"].kind == "import" and names["Dense"].detail == "block Dense(n)"
    assert names["width"].detail == "let width = 8"
    assert set(items('from "blocks.nn" import Dense, w', main)) == {"width"}  # Dense is imported already
    assert items('from "missing.nn" import ', main) == {}
    text = 'from "blocks.nn" import Dense\nmodel M(x: [N, 8]) {\n    x -> '
    assert items(text, main)["Dense"].kind == "block"


def test_train_section():
    text = "model M(x: [N, 4]) {\n    x -> Linear(4, 2)\n}\ntrain M {\n    loss = CrossEntropyLoss()\n    "
    found = items(text)
    assert {"data", "optimizer", "epochs", "batch_size"} <= set(found) and "loss" not in found
    assert found["epochs"].snippet == "epochs = $0"
    found = items(text + "optimizer = ")
    assert found["Adam"].kind == "function" and "lr" in found["Adam"].detail
    assert "Conv2d" not in found


def test_strings_comments_and_non_ascii():
    assert items(HEAD + "    # a comment -> ") == {}
    assert items(HEAD + '    x -> Embedding("') == {}
    text = "# Größe: 🙂 images\n" + HEAD + "    y = x -> Conv2d(3, 8, 3)  # → ok\n    y -> "
    found = items(text)
    assert "Linear" in found and "y" in found
    found = items("model Mé(x: [N, 4]) {\n    é = x\n    x -> Lin")
    assert "Linear" in found


def test_offsets_at_the_ends():
    text = (ZOO / "resnet50.nn").read_text()
    result = check_source(text, str(ZOO / "resnet50.nn"))
    assert {"model", "from"} <= {i.label for i in complete(result, 0)}
    assert {"model", "let"} <= {i.label for i in complete(result, len(text))}
    assert complete(result, -5) == complete(result, 0)
    assert complete(result, len(text) + 9) == complete(result, len(text))


def test_completion_inside_a_loop_sees_its_variables():
    text = (ZOO / "resnet50.nn").read_text()
    offset = text.index("Bottleneck(planes)") + len("Bottleneck(")
    found = {i.label: i for i in complete(check_source(text, str(ZOO / "resnet50.nn")), offset)}
    assert {"planes", "blocks", "stride", "images"} <= set(found)
    assert "stride=" in found  # Bottleneck's parameter, not given yet


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_no_completion_raises_at_any_offset(path: Path):
    result = check_source(path.read_text(), str(path))
    for offset in range(len(result.source.text) + 1):
        for item in complete(result, offset):
            assert item.label and item.kind in {
                "layer",
                "keyword",
                "argument",
                "block",
                "constant",
                "value",
                "function",
                "operator",
                "file",
                "import",
            }


def test_selectors_of_a_layer_call():
    found = items("model M(x: [N, T, 4]) {\n    x -> LSTM(4, 8, batch_first=True).")
    assert {"h_n", "c_n", "last"} <= set(found) and "Linear" not in found
    assert items(HEAD + "    y = x.") == {}  # nothing known to select


def test_bare_chain_file():
    found = items("Flatten -> Lin")
    assert found["Linear"].kind == "layer" and "model" not in found
    found = items("Flatten -> Linear(784, 10)\n")
    assert "model" in found and "Linear" in found  # a bare chain file: a new line may continue it
    found = items("Conv2d(3, ")
    assert "out_channels=" in found and "in_channels=" not in found


def test_value_of_a_keyword_argument():
    found = items(HEAD + "    x -> Conv2d(3, 8, 3, stride=")
    assert "hidden" in found and "Linear" not in found and "padding=" not in found
    found = items(HEAD + "    x -> Residual(Conv2d(3, 3, 1), shortcut=")
    assert "Conv2d" in found  # a sub-network


def test_inside_a_block_its_parameters_and_sizes():
    text = (
        "let k = 2\nblock B(x: [N, C, L], width, scale=1) {\n    h = x -> Conv1d(C, width, 3)\n    h -> Conv1d(width, "
    )
    found = items(text)
    assert {"x", "C", "L", "width", "scale", "h", "k"} <= set(found)
    assert found["width"].detail == "parameter" and found["C"].detail == "size" and found["k"].kind == "constant"
    assert "out_channels=" in found and "in_channels=" not in found


def test_a_path_no_folder_can_have():
    assert items('from "a\x00b/', str(ZOO / "draft.nn")) == {}
    assert items('from "no/such/folder/', str(ZOO / "draft.nn")) == {}


def test_a_definitions_header_is_no_call():
    found = items("let k = 2\nblock B(x: [N, C], width=")
    assert "k" in found and "Linear" not in found and not any(label.endswith("=") for label in found)


def test_a_new_name_gets_nothing_and_a_train_section_its_model():
    for text in ("let ", "let hid", "model ", "block Res", HEAD + "    x -> for "):
        assert items(text) == {}, text
    found = items("model Net(x: [N, 4]) {\n    x -> Linear(4, 2)\n}\nlet k = 1\ntrain ")
    assert set(found) == {"Net"} and found["Net"].detail == "model"
