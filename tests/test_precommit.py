"""The pre-commit hooks of .pre-commit-hooks.yaml, installed and run by ``pre-commit try-repo`` in
a temporary git repository, as a user's project would run them.

pre-commit installs the hook repository with pip from its local path; the package's build
backend and dependencies come from the package index pip is configured with. Where that cannot
be reached the run tests are skipped, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

HOOKS = ROOT / ".pre-commit-hooks.yaml"
PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which("pre-commit")
#: what pip needs to install nndsl, and the hooks' manifest
PACKAGE_FILES = ("pyproject.toml", "README.md", "grammars", "nndsl", ".pre-commit-hooks.yaml")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=nndsl tests", "-c", "user.email=tests@nndsl.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_the_manifest_is_valid_and_names_both_hooks():
    clientlib = pytest.importorskip("pre_commit.clientlib")
    hooks = {hook["id"]: hook for hook in clientlib.load_manifest(str(HOOKS))}
    assert set(hooks) == {"nndsl-check", "nndsl-fmt"}
    assert hooks["nndsl-check"]["entry"] == "nndsl check" and hooks["nndsl-fmt"]["entry"] == "nndsl fmt"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert re.search(hook["files"], "models/net.nn") and not re.search(hook["files"], "net.nn.py")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> Path:
    """A git repository holding this checkout's package and hooks, committed (try-repo installs
    the committed tree)."""
    if PRE_COMMIT is None:
        pytest.skip("pre-commit is not installed (pip install 'nndsl[test]')")
    repo = tmp_path_factory.mktemp("hooks")
    for name in PACKAGE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q", ".")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hooks")
    return repo


@pytest.fixture(scope="module")
def try_repo(hook_repo, tmp_path_factory):
    """Run one hook on files of a fresh project repository: (exit code, output). The first run
    installs the hook's environment; a failure of that install with pip skips the tests."""
    home = tmp_path_factory.mktemp("pre-commit-home")  # the hook environment, shared by the runs
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1", "PRE_COMMIT_COLOR": "never"}
    env.pop("NNDSL_DEBUG", None)

    def run(hook: str, files: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        project = tmp_path_factory.mktemp("project")
        git(project, "init", "-q", ".")
        for name, text in files.items():
            (project / name).write_text(text)
        git(project, "add", "-A")
        done = subprocess.run(
            [PRE_COMMIT, "try-repo", str(hook_repo), hook, "--files", *files],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        output = done.stdout + done.stderr
        if "An unexpected error has occurred" in output and "pip" in output and "install" in output:
            log = home / "pre-commit.log"
            text = log.read_text() if log.exists() else output
            errors = [line.strip() for line in text.splitlines() if line.strip().startswith("ERROR:")]
            why = errors[0] if errors else text.strip().splitlines()[-1]
            pytest.skip(f"pre-commit could not install the hooks with pip (is a package index reachable?): {why}")
        return done.returncode, output, {name: (project / name).read_text() for name in files}

    return run


@pytest.mark.slow
def test_the_check_hook_passes_a_good_spec_and_fails_a_bad_one(try_repo):
    good = (SPECS / "cnn.nn").read_text()
    bad = (SPECS / "bad" / "mlp_mismatch.nn").read_text()
    code, output, _ = try_repo("nndsl-check", {"good.nn": good, "notes.txt": "not a spec"})
    assert code == 0, output
    assert "nndsl check" in output and "Passed" in output
    code, output, _ = try_repo("nndsl-check", {"good.nn": good, "bad.nn": bad})
    assert code == 1, output
    assert "Failed" in output and "error[E201]: Linear expects 256 input features, got 512" in output
    assert "--> bad.nn:2:32" in output


@pytest.mark.slow
def test_the_fmt_hook_formats_a_spec_in_place(try_repo):
    messy = "model M(x:[N,4]){Linear(4,2)->ReLU}\n"
    code, output, after = try_repo("nndsl-fmt", {"m.nn": messy})
    assert code == 1 and "files were modified by this hook" in output, output
    assert after["m.nn"] != messy
    code, output, again = try_repo("nndsl-fmt", {"m.nn": after["m.nn"]})
    assert code == 0 and again == after, output
