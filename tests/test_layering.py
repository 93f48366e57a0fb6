"""The package's layering: no import cycles anywhere (function-level imports included), and the
import-linter contracts in pyproject.toml (pipeline order, independent backends) hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from import_cycles import import_cycles  # noqa: E402


def test_the_package_has_no_import_cycles():
    assert import_cycles() == []


def test_the_cycle_counter_finds_a_cycle(tmp_path, monkeypatch):
    """The counter is not blind: a package whose modules import each other has one cycle."""
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from loopy import b\n")  # inside a function
    (package / "b.py").write_text("from loopy.c import g\n")
    (package / "c.py").write_text("import loopy.a\n\ndef g():\n    pass\n")
    (package / "d.py").write_text("from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("loopy") == [["loopy.a", "loopy.b", "loopy.c"]]


def test_the_import_contracts_hold():
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert executable is not None, "import-linter is part of the test extra: pip install -e '.[test]'"
    run = subprocess.run([executable, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
