"""The project's own code passes ruff (lint and format)."""

from __future__ import annotations

import subprocess

from conftest import ROOT, ruff_executable


def test_ruff_check():
    run = subprocess.run(
        [ruff_executable(), "check", "nndsl", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_format():
    run = subprocess.run(
        [ruff_executable(), "format", "--check", "nndsl", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
