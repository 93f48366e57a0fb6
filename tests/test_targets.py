"""The target registry: every target's code loads, the command line offers what it registers,
and a target's module is imported only when the target is used."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

import nndsl
from nndsl import targets
from nndsl.cli import main


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_every_target_loads(name):
    chosen = targets.target(name)
    assert chosen.name == name and chosen.kind in ("source", "export", "report")
    assert chosen.load() is not None


def test_compile_offers_the_registered_targets(capsys):
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--target {" + ",".join(t.name for t in targets.compile_targets()) + "}" in shown
    assert "onnx: a verified ONNX model per model (needs the onnx extra)" in shown
    with pytest.raises(SystemExit) as usage:  # a report, not a compile target
        main(["compile", str(ROOT / "specs" / "xor.nn"), "--target", "summary"])
    assert usage.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_an_unknown_target_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="no target 'tflite' \\(there are module, train, onnx, summary\\)"):
        targets.target("tflite")


def test_compile_spec_dispatches_through_the_registry():
    spec = ROOT / "specs" / "digits_mlp.nn"
    assert nndsl.compile_spec(spec) == targets.target("module").load()(nndsl.check_file(spec).program)
    assert "def main(" in nndsl.compile_spec(spec, target="train")
    with pytest.raises(ValueError, match="writes no source text"):
        nndsl.compile_spec(spec, target="onnx")
    with pytest.raises(ValueError, match="no train section"):
        nndsl.compile_spec("model M(x: [N, 4]) {\n    Linear(4, 2)\n}\n", target="train")


def test_default_outputs_sit_beside_the_spec():
    assert targets.target("module").default_output("a/mlp.nn") == "a/mlp.py"
    assert targets.target("train").default_output("a/mlp.nn") == "a/mlp_train.py"


def test_checking_and_compiling_to_source_import_no_backend_they_do_not_use(tmp_path):
    code = (
        "import sys; from nndsl.cli import main\n"
        f"main(['check', {str(ROOT / 'specs' / 'digits_mlp.nn')!r}, '--shapes'])\n"
        f"main(['compile', {str(ROOT / 'specs' / 'digits_mlp.nn')!r}, '-o', {str(tmp_path / 'm.py')!r}])\n"
        "loaded = [m for m in ('torch', 'onnx', 'numpy', 'nndsl.export', 'nndsl.backends.train_script') "
        "if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
