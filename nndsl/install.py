"""What to install for an optional feature, said the same way by every hint nndsl prints.

nndsl is installed from its repository (``pip install '.[train]'`` in a checkout, as the README
says) or as a package (``pip install 'nndsl[train]'``); a hint names the form that works where
this copy of nndsl runs: the checkout's own directory when the code runs from a checkout (an
editable install, or the repository on ``PYTHONPATH``), the package name otherwise.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

#: what each extra brings, for the hints' wording (pyproject.toml lists the exact requirements)
EXTRAS = {
    "torch": "PyTorch",
    "train": "PyTorch, scikit-learn, rich, matplotlib, tensorboard, safetensors",
    "onnx": "onnx, onnxruntime, safetensors",
    "lsp": "pygls, for `nndsl lsp`",
}


@functools.cache
def checkout() -> Path | None:
    """The repository this copy of nndsl runs from, or None for an installed package."""
    root = Path(__file__).resolve().parent.parent
    project = root / "pyproject.toml"
    try:
        text = project.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "nndsl"' in text else None


@functools.cache
def installed_from() -> Path | None:
    """The local directory an installed nndsl was built from (pip's direct_url.json), if any."""
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        text = metadata.distribution("nndsl").read_text("direct_url.json")
        url = urlparse(json.loads(text)["url"]) if text else None
    except (metadata.PackageNotFoundError, ValueError, KeyError, TypeError):
        return None
    if url is None or url.scheme != "file" or not Path(unquote(url.path)).is_dir():
        return None
    return Path(unquote(url.path))


def install_command(extra: str) -> str:
    """The pip command that installs nndsl with ``extra`` where this copy runs."""
    root, editable = checkout(), True
    if root is None:
        root, editable = installed_from(), False
    if root is None:
        return f"pip install {shlex.quote(f'nndsl[{extra}]')}"
    target = "." if root == Path.cwd().resolve() else str(root)
    return f"pip install {'-e ' if editable else ''}{shlex.quote(f'{target}[{extra}]')}"


def install_hint(extra: str) -> str:
    """``pip install -e '.[train]' (PyTorch, scikit-learn, ...)``: the command and what it brings."""
    return f"{install_command(extra)} ({EXTRAS[extra]})"
