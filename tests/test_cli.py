"""The real ``nndsl`` command, run in a subprocess: exit codes, outputs, files written or not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

ENV = {
    **os.environ,
    "NNDSL_DEBUG": "1",
    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    "NO_COLOR": "1",
}


def nndsl(*args, cwd=ROOT, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "nndsl", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        timeout=120,
    )


def test_check_clean_spec_exits_0():
    run = nndsl("check", "specs/fashion_mlp.nn")
    assert run.returncode == 0, run.stderr
    assert "FashionMLP: [N, 1, 28, 28] -> [N, 10], 669,706 parameters" in run.stdout


def test_check_shapes_table():
    run = nndsl("check", "specs/cnn.nn", "--shapes")
    assert run.returncode == 0
    assert "[N, 16, 16, 16]" in run.stdout and "Linear(4096, 120)" in run.stdout


def test_check_reports_errors_with_position_and_exits_1():
    run = nndsl("check", "specs/bad/mlp_mismatch.nn")
    assert run.returncode == 1
    assert "error[E201]: Linear expects 256 input features, got 512" in run.stdout
    assert "--> specs/bad/mlp_mismatch.nn:2:32" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_check_all_files_worst_exit_code_wins():
    run = nndsl("check", "specs/cnn.nn", "specs/bad/typos.nn", "missing.nn")
    assert run.returncode == 2
    assert "CNN:" in run.stdout
    assert "E101" in run.stdout
    assert "missing.nn: no such file" in run.stderr


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "nope.nn", "no such file"),
        (lambda d: d, "is a directory"),
    ],
)
def test_io_problems_exit_2(tmp_path, make, message):
    run = nndsl("check", make(tmp_path))
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_empty_and_binary_files(tmp_path):
    empty = tmp_path / "empty.nn"
    empty.write_text("")
    run = nndsl("check", empty)
    assert run.returncode == 1 and "E113" in run.stdout and "the file is empty" in run.stdout
    comments = tmp_path / "comments.nn"
    comments.write_text("# nothing here\nlet a = 3\n")
    run = nndsl("check", comments)
    assert run.returncode == 1 and "defines no model" in run.stdout
    binary = tmp_path / "bin.nn"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    run = nndsl("check", binary)
    assert run.returncode == 2 and "not UTF-8" in run.stderr


def test_short_format():
    run = nndsl("check", "--format", "short", "specs/bad/typos.nn")
    assert run.returncode == 1
    lines = run.stdout.strip().splitlines()
    assert lines[0] == "specs/bad/typos.nn:5:5: error: unknown layer 'Flaten' [E101]"
    assert len(lines) == 6


def test_json_format_schema():
    run = nndsl("check", "--format", "json", "specs/cnn.nn", "specs/bad/mlp_mismatch.nn")
    assert run.returncode == 1
    payload = json.loads(run.stdout)
    assert payload["version"] == 1
    assert payload["summary"] == {"files": 2, "errors": 1, "warnings": 0}
    good, bad = payload["files"]
    assert good["ok"] and good["diagnostics"] == []
    (model,) = good["models"]
    assert model["name"] == "CNN" and model["params"] == 503102
    assert model["input"]["shape"] == ["N", 3, 32, 32]
    first = model["layers"][0]
    assert first["layer"] == "Conv2d" and first["output"]["shape"] == ["N", 16, 32, 32]
    assert first["span"]["line"] == 3 and first["span"]["column"] == 5
    (diag,) = bad["diagnostics"]
    assert diag["code"] == "E201" and diag["severity"] == "error"
    assert diag["span"]["line"] == 2 and diag["span"]["column"] == 32
    assert diag["labels"][0]["message"] == "output [N, 512] produced here"
    assert diag["help"].startswith("change in_features to 512")


def test_json_names_each_layers_module_as_the_emitted_class_holds_it(tmp_path):
    """``module`` is the layer's path in the emitted module (its state_dict prefix), null where the
    layer is a tensor method written in forward."""
    pytest.importorskip("torch")
    from nndsl.api import build

    spec = SPECS / "zoo" / "resnet18.nn"
    (model,) = json.loads(nndsl("check", "--format", "json", str(spec)).stdout)["files"][0]["models"]
    paths = {name for name, _ in build(spec, model=model["name"]).named_modules()}
    assert all(layer["module"] in paths for layer in model["layers"])
    assert "stage.0.conv1" in paths and any(layer["module"] == "stage.0.conv1" for layer in model["layers"])
    small = tmp_path / "small.nn"
    small.write_text("model M(x: [N, 3, 4]) {\n    x -> Reshape((-1, 12)) -> Linear(12, 2)\n}\n")
    (model,) = json.loads(nndsl("check", "--format", "json", str(small)).stdout)["files"][0]["models"]
    assert [(layer["layer"], layer["module"]) for layer in model["layers"]] == [("Reshape", None), ("Linear", "fc")]


def test_bare_chain_input_flag():
    run = nndsl("check", "specs/design_card.nn", "--input", "[N, 1, 28, 28]", "--shapes")
    assert run.returncode == 0
    assert "DesignCard: [N, 1, 28, 28] -> [N, 10]" in run.stdout
    run = nndsl("check", "specs/design_card.nn", "--input", "[N, 3, 32, 32]")
    assert run.returncode == 1
    assert "Linear expects 784 input features, got 3072" in run.stdout


def test_bad_input_flag_is_a_usage_error_with_a_diagnostic():
    run = nndsl("check", "specs/design_card.nn", "--input", "[N, 1, 28")
    assert run.returncode == 2
    assert "--> --input:1:" in run.stderr


def test_a_bad_input_shape_is_located_in_the_api_parameter_for_api_users():
    from nndsl.api import check_source

    (diag,) = check_source("Linear(3, 4)", input="[N, 3").diagnostics
    assert diag.code == "E001" and diag.source.name == "input="


def test_file_names_may_follow_options():
    run = nndsl("check", "specs/cnn.nn", "--shapes", "specs/simple_nn.nn")
    assert run.returncode == 0
    assert "CNN:" in run.stdout and "SimpleNN:" in run.stdout


def test_compile_writes_importable_module(tmp_path):
    out = tmp_path / "cnn_model.py"
    run = nndsl("compile", "specs/cnn.nn", "-o", out)
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert "class CNN(nn.Module):" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_compile_default_output_beside_spec(tmp_path):
    spec = tmp_path / "tiny.nn"
    spec.write_text("model Tiny(x: [N, 4]) { Linear(4, 2) }\n")
    run = nndsl("compile", spec)
    assert run.returncode == 0
    assert (tmp_path / "tiny.py").read_text().count("class Tiny(nn.Module):") == 1


def test_compile_to_stdout():
    run = nndsl("compile", "specs/simple_nn.nn", "-o", "-")
    assert run.returncode == 0
    assert run.stdout.startswith('"""PyTorch modules generated by nndsl')


def test_compile_errors_write_nothing(tmp_path):
    out = tmp_path / "out.py"
    run = nndsl("compile", "specs/bad/typos.nn", "-o", out)
    assert run.returncode == 1
    assert not out.exists()
    assert "nothing written" in run.stderr
    out.write_text("previous contents")
    nndsl("compile", "specs/bad/typos.nn", "-o", out)
    assert out.read_text() == "previous contents"


def test_compile_to_unwritable_path_exits_2(tmp_path):
    run = nndsl("compile", "specs/simple_nn.nn", "-o", tmp_path / "no" / "such" / "dir.py")
    assert run.returncode == 2
    assert "cannot write" in run.stderr


def test_version_help_and_usage():
    assert nndsl("--version").stdout.startswith("nndsl ")
    assert "check" in nndsl("--help").stdout
    assert nndsl().returncode == 2
    assert nndsl("check").returncode == 2
    assert nndsl("frobnicate").returncode == 2


def test_layers_and_codes_listing():
    run = nndsl("layers")
    assert "Linear(in_features, out_features, bias=True)" in run.stdout
    assert "E201" in nndsl("codes").stdout


def test_check_and_compile_never_import_torch(tmp_path):
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['nndsl', 'compile', 'specs/lstm_classifier.nn', '-o', sys.argv[1]]\n"
        "try:\n    runpy.run_module('nndsl', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "sys.argv = ['nndsl', 'check', 'specs/inferred_cnn.nn']\n"
        "try:\n    runpy.run_module('nndsl', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('clean')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "o.py")], capture_output=True, text=True, cwd=ROOT, env=ENV
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("clean")


def test_every_spec_checks_from_the_cli():
    specs = sorted(str(p.relative_to(ROOT)) for p in SPECS.glob("*.nn"))
    run = nndsl("check", *specs)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_traceback_on_garbage(tmp_path):
    f = tmp_path / "g.nn"
    for text in ["->", "Linear(", "model", "let = 3", "model M(x: [N, -3]) { ReLU }", "Linear(1e999, 2)", "@@@"]:
        f.write_text(text)
        run = nndsl("check", f)
        assert run.returncode == 1, (text, run.stdout, run.stderr)
        assert "Traceback" not in run.stderr, (text, run.stderr)


def test_python_m_and_console_script_entry_point():
    assert Path(ROOT / "nndsl" / "__main__.py").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert 'nndsl = "nndsl.cli:main"' in text


def test_check_reads_standard_input():
    run = subprocess.run(
        [sys.executable, "-m", "nndsl", "check", "--format", "short", "-"],
        input="model M(x: long[N, 10]) { Linear(10, 2) }\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=120,
    )
    assert run.returncode == 1
    assert run.stdout.strip() == "<stdin>:1:27: error: Linear expects a floating-point input, got int64[N, 10] [E204]"


def test_spec_path_never_becomes_code(tmp_path):
    spec = tmp_path / 'a"""+print("pwned")+"""\\N.nn'
    spec.write_text("model M(x: [N, 3]) { Linear(3, 2) }\n")
    out = tmp_path / "out.py"
    assert nndsl("compile", spec, "-o", out).returncode == 0
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, env=ENV)
    assert run.returncode == 0 and "pwned" not in run.stdout, run.stderr


def test_compiled_file_has_ordinary_permissions(tmp_path):
    out = tmp_path / "m.py"
    old = os.umask(0o022)
    try:
        assert nndsl("compile", "specs/simple_nn.nn", "-o", out).returncode == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_byte_order_mark_and_stdin_compile(tmp_path):
    spec = tmp_path / "bom.nn"
    spec.write_bytes(b"\xef\xbb\xbfmodel M(x: [N, 3]) { Linear(3, 2) }\n")
    assert nndsl("check", spec).returncode == 0
    run = subprocess.run(
        [sys.executable, "-m", "nndsl", "compile", "-"],
        input="model M(x: [N, 3]) { Linear(3, 2) }\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=ENV,
    )
    assert run.returncode == 0 and "class M(nn.Module):" in run.stdout
    assert not (tmp_path / "-.py").exists()


def test_compile_to_a_full_device_is_an_io_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "nndsl", "compile", "specs/simple_nn.nn", "-o", "-"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=ENV,
        )
    assert run.returncode == 2 and "cannot write standard output" in run.stderr


def test_check_the_zoo_from_another_directory(tmp_path):
    run = nndsl("check", SPECS / "zoo" / "resnet50.nn", SPECS / "zoo" / "resnet_blocks.nn", "--shapes", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "ResNet50: [N, 3, 224, 224] -> [N, 1000], 25,557,032 parameters" in run.stdout
    assert "Bottleneck(planes=128, stride=2)" in run.stdout  # a block use, with the values a loop gave it
    assert "blocks BasicBlock, Bottleneck" in run.stdout


def test_json_lists_every_input_and_output():
    run = nndsl("check", "--format", "json", "specs/zoo/autoencoder.nn")
    assert run.returncode == 0, run.stderr
    (model,) = json.loads(run.stdout)["files"][0]["models"]
    assert [o["name"] for o in model["outputs"]] == ["reconstruction", "code"]
    assert [o["text"] for o in model["outputs"]] == ["[N, 1, 28, 28]", "[N, 64, 1, 1]"]
    assert model["inputs"][0]["name"] == "images"


def test_compiled_zoo_module_imports_and_runs(tmp_path):
    torch = pytest.importorskip("torch")
    out = tmp_path / "unet_model.py"
    run = nndsl("compile", "specs/zoo/unet.nn", "-o", out)
    assert run.returncode == 0, run.stderr
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)
    net = namespace["UNet"]().eval()
    with torch.no_grad():
        assert tuple(net(torch.randn(1, 1, 64, 64)).shape) == (1, 2, 64, 64)
