"""The training-script backend: one standalone script from a checked spec and its train section.

The script is the model classes (from the torch backend), the parts of the training runtime the
spec needs (copied from ``train_runtime/``, with everything they refer to), and a short tail
written here: the model's input and output sizes, the data loaders, and the command-line flags
whose defaults are the spec's settings. ``nndsl train`` runs this same script in-process.
"""

from __future__ import annotations

import ast
import os
import sys
import types
from functools import cache

from nndsl.backends.pysource import string_literal
from nndsl.backends.pywriter import Code, call, call_text, comment, literal
from nndsl.backends.torch_module import class_names, emit_classes
from nndsl.ir import ModelIR, Program, TrainConfig
from nndsl.train_catalogue import DATA_LOADERS
from nndsl.version import __version__

_RUNTIME = os.path.join(os.path.dirname(__file__), "train_runtime")
_PACKAGE = os.path.dirname(os.path.dirname(__file__))
#: nndsl's own standard-library-only modules the runtime imports from: the script holds a copy
#: of the definitions it uses, never the import (it runs without nndsl)
_SHARED = {
    "nndsl.atomic": "atomic.py",
    "nndsl.suggest": "suggest.py",
    "nndsl.train_catalogue": "train_catalogue.py",
}
_FILES = (
    *(os.path.join(_PACKAGE, name) for name in _SHARED.values()),
    *(os.path.join(_RUNTIME, name) for name in ("data.py", "loop.py", "flags.py")),
)
_HEADINGS = {
    "atomic.py": "writing files",
    "suggest.py": "did-you-mean",
    "train_catalogue.py": "the training catalogue",
    "data.py": "data",
    "loop.py": "the training loop",
    "flags.py": "command-line flags",
}
#: what the tail calls; everything these refer to is copied too
_ROOTS = ("prepare_data", "parse_call", "run", "given_flags")
_STDLIB = set(sys.stdlib_module_names)


class _Definition:
    """A top-level statement of a runtime file: the names it defines and the names it uses."""

    def __init__(self, text: str, defines: set[str], uses: set[str], heading: str):
        self.heading = heading  # the runtime file's part of the script
        self.text = text
        self.defines = defines
        self.uses = uses


@cache
def _runtime() -> tuple[list[_Definition], dict[str, str]]:
    """Every definition of the runtime files, in order, and each imported name's import line."""
    definitions: list[_Definition] = []
    imports: dict[str, str] = {}
    for path in _FILES:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        lines = text.splitlines()
        tree = ast.parse(text)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in _SHARED:
                continue  # the definitions themselves are copied
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    imports[bound] = ast.unparse(
                        ast.Import([alias]) if isinstance(node, ast.Import) else _one(node, alias)
                    )
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # a module docstring
                continue
            if isinstance(node, ast.ImportFrom) or _is_future(node):
                continue
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
            while first > 1 and lines[first - 2].lstrip().startswith("#"):
                first -= 1  # the comments just above a definition belong to it
            source = "\n".join(lines[first - 1 : node.end_lineno])
            heading = _HEADINGS[os.path.basename(path)]
            definitions.append(_Definition(source, _defined(node), _used(node), heading))
    return definitions, imports


def _one(node: ast.ImportFrom, alias: ast.alias) -> ast.ImportFrom:
    return ast.ImportFrom(node.module, [alias], node.level)


def _is_future(node) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return {n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}


def _used(node: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def runtime_source(roots: tuple[str, ...]) -> tuple[list[str], list[str], set[str]]:
    """The import lines, definition texts (each file's under a heading comment) and defined
    names that ``roots`` need, in file order."""
    definitions, imports = _runtime()
    by_name = {name: d for d in definitions for name in d.defines}
    wanted: set[int] = set()
    todo = [by_name[r] for r in roots]
    while todo:
        d = todo.pop()
        if id(d) in wanted:
            continue
        wanted.add(id(d))
        todo += [by_name[n] for n in d.uses if n in by_name]
    chosen = [d for d in definitions if id(d) in wanted]
    used = set().union(*(d.uses for d in chosen))
    lines = [imports[n] for n in sorted(imports) if n in used]
    names = set().union(*(d.defines for d in chosen))
    texts, heading = [], None
    for d in chosen:
        if d.heading != heading:
            heading = d.heading
            texts.append(f"# {'-' * 64} {heading}")
        texts.append(d.text)
    return lines, texts, names


def _sorted_imports(lines: list[str]) -> list[str]:
    """Standard library, then third party, each as isort orders them (``import`` before ``from``)."""

    def module(line: str) -> str:
        return line.split()[1]

    def section(first_party: bool) -> list[str]:
        mine = sorted({ln for ln in lines if (module(ln).split(".")[0] in _STDLIB) != first_party})
        plain = sorted((ln for ln in mine if ln.startswith("import ")), key=lambda ln: module(ln).lower())
        froms = sorted((ln for ln in mine if ln.startswith("from ")), key=lambda ln: (module(ln).lower(), ln))
        return plain + froms

    std, other = section(False), section(True)
    return std + ([""] if std and other else []) + other


def _dims(model: ModelIR, shape) -> tuple:
    return tuple(d if isinstance(d, int) else None for d in shape.dims[1:])


# ---------------------------------------------------------------- the tail


def _flags(config: TrainConfig) -> list[tuple[str, list[tuple[str, object]], str]]:
    """(flag, argparse keywords, help) for every setting, defaults from the spec. A keyword's value
    is a constant (written by the literal writer) or ``Code`` the backend built itself."""
    s = config.settings
    bool_flag = Code("argparse.BooleanOptionalAction")

    def typed(kind: str, default) -> list[tuple[str, object]]:
        return [("type", Code(kind)), ("default", default)]

    return [
        ("--data", [("default", call_text(s["data"]))], "data source"),
        ("--split", typed("fractions", ",".join(repr(f) for f in s["split"])), "train,validation,test fractions"),
        ("--loss", [("default", call_text(s["loss"]))], "loss"),
        ("--optimizer", [("default", call_text(s["optimizer"]))], "optimizer"),
        ("--lr", typed("float", None), "learning rate (replaces the optimizer's)"),
        ("--schedule", typed("optional_call", call_text(s["schedule"])), "learning-rate schedule"),
        ("--epochs", typed("int", s["epochs"]), "epochs"),
        ("--batch-size", typed("int", s["batch_size"]), "batch size (per process)"),
        ("--early-stopping", typed("optional_int", s["early_stopping"]), "patience in epochs, or none"),
        ("--min-delta", typed("float", s["min_delta"]), "least improvement that counts"),
        ("--clip-grad-norm", typed("optional_float", s["clip_grad_norm"]), "max gradient norm"),
        ("--clip-grad-value", typed("optional_float", s["clip_grad_value"]), "max gradient value"),
        ("--init", typed("optional_call", call_text(s["init"])), "weight initialisation"),
        ("--seed", typed("int", s["seed"]), "random seed"),
        (
            "--deterministic",
            [("action", bool_flag), ("default", s["deterministic"])],
            "deterministic algorithms only",
        ),
        ("--device", [("default", s["device"])], "auto, cpu, cuda, cuda:N or mps"),
        ("--threads", typed("optional_int", None), "CPU threads; none: the idle cores, at most 8"),
        ("--out-dir", [("default", s["out_dir"])], "output directory"),
        (
            "--resume",
            [("action", "store_true")],
            "continue the run whose checkpoint is in --out-dir, with its settings",
        ),
        ("--extend", [("action", "store_true")], "with --resume: train the run on to a larger --epochs"),
        (
            "--metrics-format",
            [("choices", ("jsonl", "csv")), ("default", s["metrics_format"])],
            "metrics file format",
        ),
        ("--metrics", typed("names", ",".join(s["metrics"])), "metrics shown each epoch"),
        (
            "--plot",
            [("action", bool_flag), ("default", s["plot"])],
            "draw the curves into curves.png (needs matplotlib)",
        ),
        (
            "--progress",
            [("action", bool_flag), ("default", Code("sys.stderr.isatty()"))],
            "show a progress bar",
        ),
    ]


def _tail(program: Program, config: TrainConfig, model: ModelIR, class_name: str) -> list[str]:
    loader = config.settings["data"].name
    # token ids load as int64; a float model takes its declared dtype (float64, float16, ...)
    dtype = "int64" if model.input.dtype in ("int64", "long", "int32", "int") else model.input.dtype
    out = [
        "",
        "",
        f"# {'-' * 64} this spec's training",
        "",
        f"INPUT_SHAPE = {literal(_dims(model, model.input.shape))}  # {comment(str(model.input))}, batch first",
        f"INPUT_DTYPE = {literal(dtype)}",
        f"OUTPUT_SHAPE = {literal(_dims(model, model.output.shape))}  # {comment(str(model.output))}",
        f"LOADERS = {{{literal(loader)}: {DATA_LOADERS[loader]}}}",
        "",
        "",
        "def parse_args(argv=None, prog=None):",
        '    """The train section\'s settings as flags; the defaults are the spec\'s values."""',
    ]
    description = f"Train {class_name}, generated by nndsl."
    keywords = [("prog", Code("prog")), ("description", _constant(description))]
    out += call("parser = ", "argparse.ArgumentParser", [], keywords, 4)
    for flag, keywords, help_text in _flags(config):
        keywords = [*keywords, ("help", help_text + " (default: %(default)s)")]
        out += call("", "parser.add_argument", [flag], [(k, _constant(v)) for k, v in keywords], 4)
    out += [
        "    args = parser.parse_args(argv)",
        "    args.given = given_flags(parser, argv, args)",
        "    return args",
        "",
        "",
        "def load_data(args):",
        '    """The data of --data, fitted to the model\'s input and split."""',
        "    return prepare_data(args, LOADERS, INPUT_SHAPE, INPUT_DTYPE, OUTPUT_SHAPE)",
        "",
        "",
        "def main(argv=None, prog=None) -> int:",
        '    """Train as the flags in argv (default: the command line) say; the exit code."""',
        "    args = parse_args(argv, prog)",
        f"    return run(args, {class_name}, load_data, parse_call)",
        "",
        "",
        'if __name__ == "__main__":',
        "    sys.exit(main())",
    ]
    return out


def _constant(value):
    """A flag's value for the writer: strings as ruff format quotes them (the spec's own strings
    may hold any quote, backslash or control character)."""
    if isinstance(value, str) and not isinstance(value, Code):
        return Code(string_literal(value))
    if isinstance(value, tuple):
        return tuple(_constant(v) for v in value)
    return value


def _file_name(path: str) -> str:
    """The spec's file name alone: no directory leaks into the script, and scripts do not
    differ between checkouts (``<stdin>`` stays as it is)."""
    return path if path.startswith("<") else os.path.basename(path)


def emit_train_script(program: Program, config: TrainConfig) -> str:
    """The whole script for ``config``'s model: ruff-clean, deterministic, runnable on its own."""
    model = program.model(config.model)
    loader = DATA_LOADERS[config.settings["data"].name]
    imports, parts, names = runtime_source(
        (*_ROOTS, "fractions", "optional_call", "optional_int", "optional_float", "names", loader)
    )
    reserved = frozenset(names | {"INPUT_SHAPE", "INPUT_DTYPE", "OUTPUT_SHAPE", "LOADERS", "parse_args", "main"})
    reserved |= {"load_data", "argparse", "sys"}
    class_name = class_names(program, reserved)[model.name]
    single = program._replace(models=(model,))
    out = [
        f'"""Trains {class_name}: a training script generated by nndsl. Run it with --help for its flags.',
        "",
        "Its parts, in order: the model; writing files, did-you-mean and the training catalogue",
        "(the losses, optimizers, schedules and initialisations the flags accept); data (loading,",
        "fitting to the model, splitting); the training loop (metrics, checkpoints, distributed",
        "training); command-line flags; and this spec's training: the model's sizes, the flags",
        "with the spec's settings as defaults, main().",
        "Edit the spec and regenerate rather than this file.",
        '"""',
        "",
        f"# generated by nndsl {__version__} from {comment(_file_name(program.source.name))}",
        "",
        *_sorted_imports([*imports, "import argparse", "import sys", "import torch", "from torch import nn"]),
        *emit_classes(single, reserved),
    ]
    for part in parts:
        out += ["", "", part]
    out += _tail(program, config, model, class_name)
    return "\n".join(out) + "\n"


def emit_spec_script(program: Program) -> str:
    """The script for the spec's (first) train section; ValueError when it has none."""
    if not program.trainings:
        raise ValueError("the spec has no train section")
    return emit_train_script(program, program.trainings[0])


def load_script(program: Program, config: TrainConfig) -> types.ModuleType:
    """The training script executed as a fresh module (imports torch); ``main(argv)`` runs it."""
    source = emit_train_script(program, config)
    module = types.ModuleType(f"nndsl_train_{config.model}")
    module.__file__ = f"<nndsl train {program.source.name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own generated code
    return module
