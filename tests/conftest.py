"""Shared test options: ``--update-golden`` rewrites the expected files instead of comparing;
hypothesis runs without a per-example deadline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

# the machines are shared: a property test's time per example says nothing, so no deadline
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/ from the current output")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def ruff_executable() -> str:
    """The ruff of the running environment (on PATH, or beside the interpreter)."""
    import shutil
    import sys

    return shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))


def good_specs() -> list[Path]:
    return sorted(SPECS.glob("*.nn"))


def zoo_specs() -> list[Path]:
    """The model zoo, and the block library its ResNets import."""
    return sorted((SPECS / "zoo").glob("*.nn"))


def bad_specs() -> list[Path]:
    return sorted((SPECS / "bad").glob("*.nn"))


def assert_ruff_clean(directory) -> None:
    """Every .py file in ``directory`` passes ``ruff check`` and ``ruff format --check`` under
    ruff's defaults (an empty config there), not only this project's settings."""
    (directory / "ruff.toml").write_text("")
    cfg = ["--config", str(directory / "ruff.toml")]
    for command in (["check"], ["format", "--check"]):
        run = subprocess.run([ruff_executable(), *command, *cfg, str(directory)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
