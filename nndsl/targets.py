"""The registry of output targets: each backend by name, what it makes, and where its code lives.

A target's function is imported only when the target is used, so checking a spec or writing
PyTorch source never imports torch or onnx. A new backend is one module plus one line here.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NamedTuple


class Target(NamedTuple):
    """One backend as the command line and the API reach it."""

    name: str
    kind: str  # "source": function(program) -> text; "export": writes a file per model; "report": check's output
    help: str  # one phrase for the command line's --target help
    entry: str  # "module:function", imported on first use
    suffix: str = ""  # the default output: the spec's path without .nn, plus this
    extra: str | None = None  # the pip extra it needs (nndsl[extra]), None when it needs none
    training: bool = False  # whether it needs the spec's train section

    def load(self) -> Any:
        """The target's function, or its module when ``entry`` names no function (imports it)."""
        module, _, attribute = self.entry.partition(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, attribute) if attribute else loaded

    def default_output(self, spec_path: str) -> str:
        """The output beside the spec: ``mlp.nn`` -> ``mlp.py`` for the module target."""
        return os.path.splitext(spec_path)[0] + self.suffix

    def help_text(self) -> str:
        return f"{self.name}: {self.help}" + (f" (needs the {self.extra} extra)" if self.extra else "")


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "module", "source", "the nn.Module classes (default)", "nndsl.backends.torch_module:emit_program", ".py"
        ),
        Target(
            "train",
            "source",
            "a standalone training script (needs a train section)",
            "nndsl.backends.train_script:emit_spec_script",
            "_train.py",
            training=True,
        ),
        Target("onnx", "export", "a verified ONNX model per model", "nndsl.export:export", ".onnx", "onnx"),
        Target("summary", "report", "each model's signature, parameters and shapes", "nndsl.backends.summary"),
    )
}


def target(name: str) -> Target:
    """The target called ``name``; ValueError, naming the targets there are, for any other."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"no target {name!r} (there are {', '.join(TARGETS)})") from None


def compile_targets() -> list[Target]:
    """The targets ``nndsl compile --target`` offers, in the registry's order."""
    return [t for t in TARGETS.values() if t.kind in ("source", "export")]
