"""The wheel works on its own: build it, install it in a fresh venv (not editable), run ``nndsl check``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert run.returncode == 0, f"{cmd}\n{run.stdout}\n{run.stderr}"
    return run


def test_wheel_installs_and_checks_a_spec(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("nndsl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nndsl/grammars/nndsl.lark" in names, "the grammar must ship inside the wheel"
    assert not any(n.startswith(("tests/", "specs/")) for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([str(bindir / "python"), "-m", "pip", "install", "--quiet", str(wheel)])

    # run from a directory with no checkout around it, so only the installed package can answer
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "specs" / "cnn.nn", work / "cnn.nn")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    run = _run([str(bindir / "nndsl"), "check", "cnn.nn"], cwd=work, env=env)
    assert "CNN: [N, 3, 32, 32] -> [N, 10], 503,102 parameters" in run.stdout
    run = _run([str(bindir / "nndsl"), "compile", "cnn.nn"], cwd=work, env=env)
    assert "class CNN(nn.Module)" in (work / "cnn.py").read_text()
    located = _run([str(bindir / "python"), "-c", "import nndsl; print(nndsl.__file__)"], cwd=work, env=env)
    assert str(venv) in located.stdout
