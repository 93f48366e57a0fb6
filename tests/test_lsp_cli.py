"""``nndsl lsp`` on the command line: without pygls it names what to install and exits 2."""

from __future__ import annotations

import subprocess
import sys


def test_lsp_without_pygls_names_the_extra_and_exits_2():
    code = "import sys; sys.modules['pygls'] = None; from nndsl.cli import main; sys.exit(main(['lsp']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith("error: the language server needs pygls: pip install ")
    assert "[lsp]" in line


def test_lsp_is_listed_in_the_help():
    run = subprocess.run([sys.executable, "-m", "nndsl", "--help"], capture_output=True, text=True, timeout=60)
    assert "lsp" in run.stdout and "language server" in run.stdout
