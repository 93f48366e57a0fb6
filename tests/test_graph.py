"""``nndsl graph``: the diagrams' structure against the checked IR, their text through the real
parsers (Graphviz's dot, mermaid's own parser), and the command's outputs and errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

from nndsl.api import check_file
from nndsl.backends import graph
from nndsl.ir import walk

ENV = {
    **os.environ,
    "NNDSL_DEBUG": "1",
    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    "NO_COLOR": "1",
}
ZOO = SPECS / "zoo"
MERMAID_CHECK = ROOT / "tools" / "mermaid-check"


def drawable_specs() -> list[Path]:
    """Every valid spec with a model (specs/ and specs/zoo/; a file of blocks only draws nothing)."""
    found = []
    for path in sorted(SPECS.glob("*.nn")) + sorted(ZOO.glob("*.nn")):
        result = check_file(path)
        assert result.ok, path
        if result.program.models:
            found.append(path)
    return found


def diagram_of(path: Path, **options) -> tuple[graph.Diagram, object]:
    model = check_file(path).program.models[0]
    return graph.build([model], **options), model


def nndsl(*args, env=ENV):
    return subprocess.run(
        [sys.executable, "-m", "nndsl", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def clusters(cluster: graph.Cluster):
    for inner in cluster.clusters:
        yield inner
        yield from clusters(inner)


# ---------------------------------------------------------------- real parsers


@pytest.fixture(scope="module")
def specs() -> list[Path]:
    return drawable_specs()


def test_every_specs_dot_renders_without_warnings(specs, tmp_path):
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): DOT rendering not tested")
    for path in specs:
        result = check_file(path)
        text = graph.to_dot(graph.build(result.program.models), path.stem)
        run = subprocess.run([dot, "-Tsvg", "-o", os.devnull], input=text, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and run.stderr == "", f"{path}: {run.stderr}"


def test_every_specs_mermaid_parses_with_mermaids_parser(specs, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: Mermaid parsing not tested")
    if not (MERMAID_CHECK / "node_modules" / "mermaid").is_dir():
        pytest.skip("mermaid is not installed: run `npm ci --prefix tools/mermaid-check` to test Mermaid parsing")
    files = []
    for path in specs:
        result = check_file(path)
        for options in ({}, {"expand_all": True}, {"depth": 0}):
            diagram = graph.build(result.program.models, **options)
            if len(diagram.edges) > graph.MERMAID_MAX_EDGES:  # beyond what Mermaid draws: warned of
                assert options, f"{path.name}: the default picture has {len(diagram.edges)} edges"
                continue
            out = tmp_path / f"{path.stem}-{len(files)}.mmd"
            out.write_text(graph.to_mermaid(diagram))
            files.append(out)
    run = subprocess.run(
        [node, str(MERMAID_CHECK / "check.mjs"), *map(str, files)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok ") == len(files)


def test_the_mermaid_checker_rejects_a_malformed_file(tmp_path):
    """The parser test above can fail: a broken flowchart is refused."""
    node = shutil.which("node")
    if node is None or not (MERMAID_CHECK / "node_modules" / "mermaid").is_dir():
        pytest.skip("node or the mermaid package (npm ci --prefix tools/mermaid-check) is not installed")
    bad = tmp_path / "bad.mmd"
    bad.write_text('flowchart TB\n    a["x"] -->|"unclosed| b\n')
    run = subprocess.run([node, str(MERMAID_CHECK / "check.mjs"), str(bad)], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout.startswith(f"error {bad}")


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("path", sorted(ZOO.glob("*.nn")), ids=lambda p: p.stem)
def test_expanded_fully_each_block_use_is_a_cluster_and_each_layer_a_node(path):
    result = check_file(path)
    if not result.program.models:
        pytest.skip(f"{path.name} defines blocks only")
    model = result.program.models[0]
    diagram = graph.build([model], expand_all=True)
    blocks = [n for n in walk(model.graph) if n.tag == "block"]
    drawn = list(clusters(diagram.root))
    assert len(drawn) == len(blocks)
    assert [c.label for c in drawn] == [graph.block_label(b) for b in blocks]
    # a shared module applied again is one node naming it; its layers are drawn at its first use
    again = {id(n) for s in walk(model.graph) if getattr(s, "again", False) for n in walk(s.body)}
    layers = [n for n in walk(model.graph) if n.tag == "layer" and id(n) not in again]
    kinds = [n.kind for n in diagram.nodes.values()]
    assert kinds.count("layer") == len(layers)


@pytest.mark.parametrize("path", sorted(ZOO.glob("*.nn")), ids=lambda p: p.stem)
def test_edge_labels_are_the_checkers_shapes(path):
    result = check_file(path)
    if not result.program.models:
        pytest.skip(f"{path.name} defines blocks only")
    model = result.program.models[0]
    diagram = graph.build([model], expand_all=True)
    for edge in diagram.edges:
        assert edge.label.split(": ")[-1] == str(model.types[edge.value])
    # every layer's output, as the checker typed it, is on each edge leaving the layer's node
    again = {id(n) for s in walk(model.graph) if getattr(s, "again", False) for n in walk(s.body)}
    for layer in (n for n in walk(model.graph) if n.tag == "layer" and id(n) not in again):
        leaving = {e.label.split(": ")[-1] for e in diagram.edges if e.src == diagram.drawn[layer.id]}
        if layer.unpacked:  # out, h, c = encoder(x): the parts read later leave the node
            assert leaving and leaving <= {str(model.types[v]) for v in layer.unpacked}, layer.text
        else:
            assert leaving == {str(layer.output)}, layer.text


def test_resnet50_has_one_residual_edge_per_residual_sum():
    diagram, model = diagram_of(ZOO / "resnet50.nn", expand_all=True)
    sums = [n for n in walk(model.graph) if n.tag == "residual" and n.active]
    residual = [e for e in diagram.edges if e.style == "residual"]
    assert len(sums) == 16 and len(residual) == len(sums)
    for edge in residual:  # into a "+" node, beside the body's edge into it
        assert diagram.nodes[edge.dst].kind == "add"
        assert sum(e.dst == edge.dst for e in diagram.edges) == 2
    # the identity shortcuts start at the block's input: the node the previous block ended with
    identity = [s for s in sums if s.shortcut is None]
    assert {e.value for e in residual} >= {s.input for s in identity}


def test_a_residual_written_as_a_sum_is_a_residual_edge():
    """ConvNeXt's ``x + (layer_scale * branch -> StochasticDepth(...))``: x was read by the branch."""
    diagram, model = diagram_of(ZOO / "convnext_tiny.nn", expand_all=True)
    blocks = [n for n in walk(model.graph) if n.tag == "block" and n.block == "CNBlock"]
    residual = [e for e in diagram.edges if e.style == "residual"]
    assert len(blocks) == 18 and sorted(e.value for e in residual) == sorted(b.inputs[0] for b in blocks)
    assert {diagram.nodes[e.dst].label for e in residual} == {"+"}


def test_uses_of_one_block_in_a_row_are_one_node_named_without_arguments_that_differ():
    diagram, model = diagram_of(ZOO / "convnext_tiny.nn")
    collapsed = [n.label for n in diagram.nodes.values() if n.kind == "block" and n.label.startswith("CNBlock")]
    assert collapsed == ["CNBlock × 2", "CNBlock × 3", "CNBlock × 9", "CNBlock × 3"]


def test_unet_skip_connections_are_skip_edges_from_the_encoder():
    diagram, model = diagram_of(ZOO / "unet.nn")
    names = {value: name for value, name in model.names.items()}
    skips = [e for e in diagram.edges if e.style == "skip"]
    assert sorted(names[e.value] for e in skips) == ["e1", "e2", "e3"]
    for edge in skips:
        assert edge.label == f"{'skip: ' if diagram.nodes[edge.dst].kind == 'block' else ''}{model.types[edge.value]}"


def test_default_expands_each_block_structure_once_and_counts_the_rest():
    diagram, model = diagram_of(ZOO / "resnet50.nn")
    drawn = list(clusters(diagram.root))
    # the first Bottleneck with a projection shortcut and the first without one
    assert [c.label for c in drawn] == ["Bottleneck(planes=64)", "Bottleneck(planes=64)"]
    collapsed = [n.label for n in diagram.nodes.values() if n.kind == "block"]
    assert collapsed == [
        "Bottleneck(planes=64)",
        "Bottleneck(planes=128, stride=2)",
        "Bottleneck(planes=128) × 3",
        "Bottleneck(planes=256, stride=2)",
        "Bottleneck(planes=256) × 5",
        "Bottleneck(planes=512, stride=2)",
        "Bottleneck(planes=512) × 2",
    ]
    times = sum(int(label.split("× ")[1]) if "×" in label else 1 for label in collapsed)
    assert times + len(drawn) == sum(n.tag == "block" for n in walk(model.graph)) == 16


def test_depth_zero_collapses_every_block_to_a_node_between_its_shapes():
    diagram, model = diagram_of(ZOO / "unet.nn", depth=0)
    assert not diagram.root.clusters
    blocks = [n for n in model.graph.nodes if n.tag == "block"]
    drawn = [n for n in diagram.nodes.values() if n.kind == "block"]
    assert [n.label for n in drawn] == [graph.block_label(b) for b in blocks]
    for block, node in zip(blocks, drawn):
        into = [e for e in diagram.edges if e.dst == node.id]
        out = [e for e in diagram.edges if e.src == node.id]
        assert {e.value for e in into} == set(block.inputs)
        assert {e.label.split(": ")[-1] for e in out} == {str(block.types[-1])}


def test_inputs_and_outputs_are_named_nodes():
    result = check_file(ZOO / "siamese.nn")
    model = result.program.models[0]
    diagram = graph.build([model])
    inputs = [n.label for n in diagram.nodes.values() if n.kind == "input"]
    outputs = [n for n in diagram.nodes.values() if n.kind == "output"]
    assert inputs == list(model.input_names)
    assert len(outputs) == len(model.graph.outputs)


def test_labels_are_escaped_for_each_format():
    diagram, _ = diagram_of(ZOO / "gpt2_small.nn")
    mermaid = graph.to_mermaid(diagram)
    dot = graph.to_dot(diagram)
    assert "dtype=#quot;bool#quot;" in mermaid and 'dtype="bool"' not in mermaid
    assert 'dtype=\\"bool\\"' in dot


# ---------------------------------------------------------------- the command


def test_graph_writes_mermaid_to_stdout_and_dot_to_a_file(tmp_path):
    run = nndsl("graph", "specs/zoo/unet.nn")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("flowchart TB\n")
    out = tmp_path / "unet.dot"
    run = nndsl("graph", "specs/zoo/unet.nn", "-o", out)
    assert run.returncode == 0, run.stderr
    assert out.read_text().startswith('digraph "UNet" {')


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("fmt,magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_svg_and_png_through_graphviz(tmp_path, fmt, magic):
    out = tmp_path / f"resnet.{fmt}"
    run = nndsl("graph", "specs/zoo/resnet50.nn", "-o", out)
    assert run.returncode == 0, run.stderr
    assert out.read_bytes().startswith(magic)


def _one_line_usage_error(run) -> str:
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_unknown_model_negative_depth_and_missing_graphviz_are_one_line_errors(tmp_path):
    out = tmp_path / "g.mmd"
    line = _one_line_usage_error(nndsl("graph", "specs/zoo/unet.nn", "--model", "Nope", "-o", out))
    assert "no model 'Nope'" in line and "UNet" in line
    line = _one_line_usage_error(nndsl("graph", "specs/zoo/unet.nn", "--depth", "-1", "-o", out))
    assert "--depth" in line
    no_dot = {**ENV, "PATH": str(tmp_path)}  # python is run by its full path; no dot on this PATH
    png = tmp_path / "g.png"
    line = _one_line_usage_error(nndsl("graph", "specs/zoo/unet.nn", "--format", "png", "-o", png, env=no_dot))
    assert "graphviz" in line and "apt-get install graphviz" in line
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_failing_graphviz_leaves_no_partial_file(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    dot = fake / "dot"
    dot.write_text(
        '#!/bin/sh\nfor a; do out="$a"; done\nprintf partial > "$out"\necho "Error: out of memory" >&2\nexit 1\n'
    )
    dot.chmod(0o755)
    out = tmp_path / "g.svg"
    out.write_text("previous")
    run = nndsl("graph", "specs/zoo/unet.nn", "-o", out, env={**ENV, "PATH": f"{fake}{os.pathsep}{ENV['PATH']}"})
    line = _one_line_usage_error(run)
    assert "out of memory" in line and "nothing written" in line
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "g.svg"]


def test_a_spec_with_errors_writes_nothing(tmp_path):
    out = tmp_path / "g.mmd"
    run = nndsl("graph", "specs/bad/mlp_mismatch.nn", "-o", out)
    assert run.returncode == 1 and not out.exists()


def test_graph_never_imports_torch():
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['nndsl', 'graph', 'specs/zoo/resnet50.nn', '--format', 'dot']\n"
        "try:\n    runpy.run_module('nndsl', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('clean', file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert run.returncode == 0 and run.stderr.strip().endswith("clean"), run.stderr


def test_the_docs_example_is_the_commands_output():
    page = (ROOT / "docs" / "graph.md").read_text()
    shown = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    diagram, _ = diagram_of(ZOO / "unet.nn", depth=0)
    assert shown == graph.to_mermaid(diagram)


def test_graph_reads_standard_input():
    run = subprocess.run(
        [sys.executable, "-m", "nndsl", "graph", "-", "--format", "dot"],
        input=(ZOO / "inception.nn").read_text(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith('digraph "InceptionNet" {') and "cat(dim=1)" in run.stdout


def test_the_commands_exit_codes_are_the_command_lines():
    from nndsl import cli, graph_command

    assert (graph_command.EXIT_OK, graph_command.EXIT_USAGE) == (cli.EXIT_OK, cli.EXIT_USAGE)


def test_a_picture_beyond_mermaids_edge_limit_is_warned_of(capsys):
    from nndsl.cli import main

    assert main(["graph", str(ROOT / "specs" / "zoo" / "swin_t.nn"), "--all"]) == 0
    err = capsys.readouterr().err
    assert "Mermaid (GitHub's too) draws at most 500" in err
    assert main(["graph", str(ROOT / "specs" / "zoo" / "swin_t.nn")]) == 0
    assert "warning" not in capsys.readouterr().err
