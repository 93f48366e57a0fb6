"""Every hint that names something to install says it the one way that works where nndsl runs:
from a checkout (editable), from a local directory it was built from, or as a package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nndsl import install

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh(monkeypatch):
    cached = (install.checkout, install.installed_from)
    for function in cached:
        function.cache_clear()
    yield monkeypatch
    for function in cached:
        function.cache_clear()


def test_from_the_checkout_the_hint_installs_the_checkout_editable(fresh, tmp_path):
    assert install.checkout() == ROOT  # these tests run from the repository
    fresh.chdir(ROOT)
    assert install.install_command("train") == "pip install -e '.[train]'"
    fresh.chdir(tmp_path)
    assert install.install_command("onnx") == f"pip install -e '{ROOT}[onnx]'"
    assert install.install_hint("onnx").endswith("(onnx, onnxruntime, safetensors)")


def test_an_installed_copy_names_its_source_directory_or_the_package(fresh, tmp_path):
    fresh.setattr(install, "checkout", lambda: None)
    fresh.setattr(install, "installed_from", lambda: tmp_path)
    fresh.chdir(ROOT)
    assert install.install_command("torch") == f"pip install '{tmp_path}[torch]'"
    fresh.setattr(install, "installed_from", lambda: None)
    assert install.install_command("torch") == "pip install 'nndsl[torch]'"


def test_every_extra_a_hint_names_is_one_pyproject_declares():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(install.EXTRAS) <= set(declared)


def test_no_hint_in_the_code_spells_an_install_command_itself():
    """The commands come from nndsl.install, so a checkout and a package get the form that works."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "nndsl").rglob("*.py")
        if path.name != "install.py" and "pip install 'nndsl[" in path.read_text()
    ]
    assert offenders == []


def test_the_train_usage_names_the_command_for_this_copy(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "nndsl", "train", "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert run.returncode == 0
    assert f"pip install -e '{ROOT}[train]'" in run.stdout
