"""Fuzz nndsl: mutated specs and random programs, against oracles that hold for every input.

    python benchmarks/fuzz.py --cases 100000 --seed 1 --timeout 5 --out fuzz-failures

Cases (deterministic by ``--seed``; case i depends only on the seed and i):

* **mutants** of every spec under ``specs/`` (and of generated programs), token-level: delete,
  duplicate or swap tokens; replace a name by a near miss, a keyword, a builtin, a dunder, an
  ``nn.Module`` member, a huge, negative or unicode one; change a number to 0, -1, a huge
  value or a float; unbalance brackets; splice lines from other specs; nest an expression
  deeply; add hostile imports (``/proc/self/environ``, ``/dev/zero``, a FIFO, a directory,
  control characters, a NUL byte, the file itself, a constants-only file) and hostile file
  names (quotes, newlines, backslashes, unicode); multiply repetitions and loops;
* **random programs** from the grammar: models over MLP, convolutional and sequence inputs with
  blocks, ``for`` loops, ``* n`` repetition, residuals, named values, ``+``/``cat``/``split``/
  ``chunk`` between branches, several outputs and ``train`` sections, mostly valid.

Oracles, for every case (in worker processes, one thread each, at most 2):

1. the API (``check_file``, then the PyTorch and training-script writers, and for a sample
   ``nndsl.build`` on torch's meta device) lets no exception but the documented ``SpecError``
   (and ``ValueError`` for a missing model) escape; every diagnostic renders;
2. the CLI, run in-process with ``NNDSL_DEBUG=1`` so that what would be exit 3 surfaces as the
   exception itself (``check``, ``compile``, ``compile --target train``), never exits 3 and never
   prints a traceback or "a bug in nndsl"; for a sample (``--cli-every``) the same commands run
   as real ``python -m nndsl`` subprocesses;
3. no output, file or message echoes the environment (a canary variable is set in the workers);
4. where the check passes, the emitted module and training script compile; a file name changes
   no code in them (the same spec compiled under a plain name gives the same syntax tree, string
   constants aside); a sample of emitted modules is ruff-clean under ruff's defaults;
5. no case runs longer than ``--timeout`` seconds (the worker is killed and replaced).

Each failure is grouped by a signature (oracle, exception type, innermost nndsl frame); the
first cases of each signature are written to ``--out``, the first one delta-reduced (lines,
then tokens) while the signature holds, as ``<signature>.nn`` plus a ``.txt`` with the detail.
The summary prints cases, cases/s, failures by signature, exit-3 count, hangs and the slowest cases.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import io
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
CANARY = "NNDSL_FUZZ_CANARY_8c1f3e"  # set in every worker's environment; no output may contain it
STARTUP_TIMEOUT = 300  # seconds for a worker to import nndsl and torch on a loaded machine
MEMORY_LIMIT = 3 << 30  # address space per worker: a runaway read fails with MemoryError, not the machine


# ---------------------------------------------------------------- cases


@dataclass
class Case:
    """One input: the spec text, its file name, the files beside it, and how it was made."""

    text: str
    name: str = "spec.nn"
    files: dict[str, str] = field(default_factory=dict)  # name -> text; "<fifo>", "<dir>", "<bytes>" special
    input: str | None = None
    origin: str = ""
    index: int = 0
    flags: dict[str, float] = field(default_factory=dict)  # build, cli_subprocess, ruff (, sleep: a test)


def library() -> dict[str, str]:
    """Every spec under specs/ by file name (names are unique there)."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SPECS.rglob("*.nn"))}


TOKEN = re.compile(
    r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\#[^\n]*|[A-Za-z_][A-Za-z0-9_]*"""
    r"""|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+|->|//|==|!=|<=|>=|\s+|.)""",
    re.S,
)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _significant(toks: list[str]) -> list[int]:
    return [i for i, t in enumerate(toks) if not t.isspace() and not t.startswith("#")]


KEYWORDS = ["model", "block", "let", "for", "in", "if", "else", "return", "from", "import", "train", "not",
            "and", "or", "None", "True", "False", "range", "len", "min", "max", "cat", "stack", "split", "chunk"]  # fmt: skip
PYTHON_NAMES = ["lambda", "class", "def", "import", "self", "super", "forward", "training", "__class__",
                "__init__", "__dict__", "print", "open", "exec", "eval", "torch", "nn", "F", "x", "modules",
                "parameters", "state_dict", "cuda", "to", "type", "int", "list", "object", "sum", "id",
                "register_buffer", "_modules", "T_destination", "dump_patches", "call_super_init"]  # fmt: skip
UNICODE_NAMES = ["é", "ℕ", "Ｎ", "x\u200b", "Linéar", "ＲｅＬＵ", "𝑥", "ﬁ", "\u202e", "α", "Ω"]
NUMBERS = ["0", "-1", "1", "2", "00", "1_000", "2147483647", "2147483648", "9223372036854775807",
           "9223372036854775808", "99999999999", "1" + "0" * 40, "1.5", "0.0", "-0.5", "1e308", "1e-320",
           "1e999", ".5", "5.", "3e", "0x10", "10000", "100000"]  # fmt: skip
LAYERS = ["Linear", "Conv2d", "Conv1d", "Conv3d", "ReLU", "LSTM", "GRU", "RNN", "BatchNorm", "BatchNorm2d",
          "LayerNorm", "GroupNorm", "Embedding", "Flatten", "Unflatten", "Reshape", "View", "Permute",
          "Transpose", "Squeeze", "Unsqueeze", "Mean", "Sum", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
          "Upsample", "Dropout", "Softmax", "MultiheadAttention", "TransformerEncoderLayer", "Residual",
          "Identity", "ZeroPad2d", "ConvTranspose2d", "Lienar", "Hardsigmoid"]  # fmt: skip
HOSTILE_IMPORTS = ["/proc/self/environ", "/etc/passwd", "../../../../etc/hostname", "/dev/zero", "/dev/null",
                   "fifo.nn", "dir.nn", "binary.nn", "consts.nn", "self", "missing.nn", "", "\t\x01\x02.nn",
                   "a\\x00b.nn", "\x7f.nn", "é.nn", "x" * 300 + ".nn", "/", ".", "big.nn", "cycle_a.nn",
                   "resnet_blocks.nn", "/proc/self/cmdline", "~/.bashrc"]  # fmt: skip
HOSTILE_NAMES = ['evil""" + str(open("PWNED", "w"))[:0] + """.nn', "a'b.nn", 'q"q.nn', "back\\slash.nn",
                 "new\nline.nn", "tab\tname.nn", "sp ace.nn", "é ℕ.nn", "{x}.nn", "%s.nn", "-o.nn", "--help.nn",
                 "#hash.nn", "x" * 200 + ".nn", ".nn", "spec.py.nn", "$(touch PWNED).nn"]  # fmt: skip


def _near_miss(rng: random.Random, word: str) -> str:
    if len(word) < 2:
        return word + "_"
    i = rng.randrange(len(word))
    op = rng.randrange(5)
    if op == 0:
        return word[:i] + word[i + 1 :]
    if op == 1:
        return word[:i] + rng.choice("aeioulrnst_") + word[i:]
    if op == 2 and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 3:
        return word.swapcase()
    return word.lower()


def _replacement_name(rng: random.Random, word: str) -> str:
    pick = rng.randrange(8)
    if pick < 3:
        return _near_miss(rng, word)
    if pick == 3:
        return rng.choice(KEYWORDS)
    if pick == 4:
        return rng.choice(PYTHON_NAMES)
    if pick == 5:
        return rng.choice(UNICODE_NAMES)
    if pick == 6:
        return rng.choice(LAYERS)
    return rng.choice(["x" * rng.choice([64, 1000, 10000]), "-" + word, "_", "__", "N" * 3, word + word])


def _deep(rng: random.Random, inner: str) -> str:
    depth = rng.choice([50, 200, 500, 1000, 3000])
    kind = rng.randrange(4)
    if kind == 0:
        return "-" * depth + inner
    if kind == 1:
        return "(" * depth + inner + ")" * depth
    if kind == 2:
        return "[" * depth + inner + "]" * depth
    return "max(" * depth + inner + ")" * depth


def mutate_tokens(rng: random.Random, text: str, lines: list[str]) -> tuple[str, str]:
    """One token-level mutation of ``text``; returns (new text, what was done)."""
    toks = tokens(text)
    sig = _significant(toks)
    if not sig:
        return text + rng.choice(lines), "append line"
    i = rng.choice(sig)
    tok = toks[i]
    op = rng.randrange(12)
    if op == 0:
        toks[i] = ""
        what = f"delete {tok!r}"
    elif op == 1:
        toks[i] = tok + " " + tok if tok[0].isalnum() else tok + tok
        what = f"duplicate {tok!r}"
    elif op == 2:
        j = sig[min(sig.index(i) + 1, len(sig) - 1)]
        toks[i], toks[j] = toks[j], toks[i]
        what = f"swap {tok!r} and {toks[i]!r}"
    elif op in (3, 4, 5):
        names = [k for k in sig if re.fullmatch(r"[A-Za-z_]\w*", toks[k])]
        k = rng.choice(names) if names else i
        new = _replacement_name(rng, toks[k])
        what = f"name {toks[k]!r} -> {new!r}"
        toks[k] = new
    elif op in (6, 7):
        numbers = [k for k in sig if toks[k][0].isdigit() or toks[k].startswith(".")]
        k = rng.choice(numbers) if numbers else i
        new = rng.choice(NUMBERS)
        what = f"number {toks[k]!r} -> {new}"
        toks[k] = new
    elif op == 8:
        brackets = [k for k in sig if toks[k] in "()[]{}"]
        if brackets and rng.random() < 0.6:
            k = rng.choice(brackets)
            what = f"drop bracket {toks[k]!r}"
            toks[k] = ""
        else:
            b = rng.choice("()[]{}")
            toks[i] = toks[i] + b
            what = f"insert {b!r}"
    elif op == 9:
        line = rng.choice(lines)
        what = f"splice {line.strip()[:40]!r}"
        toks[i] = toks[i] + "\n" + line + "\n"
    elif op == 10:
        what = "insert " + rng.choice(["->", ",", "=", ".", "*", ":", "-", "+", "'", '"', "\\", "@", "\x00", "\ufeff"])
        toks[i] = toks[i] + " " + what.split(" ", 1)[1] + " "
    else:
        insert = rng.choice(["ReLU", "Linear(out_features=7)", "Flatten", "BatchNorm", "LayerNorm()", "x", "N"])
        toks[i] = toks[i] + " -> " + insert
        what = f"insert -> {insert}"
    return "".join(toks), what


def mutate_hostile(rng: random.Random, case: Case) -> str:
    """A structural attack on ``case`` (in place); returns what was done."""
    toks = tokens(case.text)
    sig = _significant(toks)
    op = rng.randrange(6)
    if op == 0:
        path = rng.choice(HOSTILE_IMPORTS)
        if path == "self":
            path = case.name
        elif path == "cycle_a.nn":
            case.files["cycle_a.nn"] = f'from "{case.name}" import X\nlet X = 1\n'
        case.text = f'from "{path}" import {rng.choice(["X", "width", "Block", "BasicBlock"])}\n' + case.text
        return f"import {path!r}"
    if op == 1:
        case.name = rng.choice(HOSTILE_NAMES)
        return f"file name {case.name!r}"
    if op == 2 and sig and rng.random() < 0.4:
        k = rng.choice([i for i in sig if toks[i][0].isalnum()] or sig)
        toks[k] = _deep(rng, toks[k])
        case.text = "".join(toks)
        return f"nest {toks[k][:12]!r}..."
    if op == 2:  # where a value is evaluated: a constant, a block default, an input size
        nested = _deep(rng, rng.choice(["2", "4", "N"]))
        form = rng.randrange(3)
        if form == 0:
            case.text += f"\nlet deep = {nested}\nmodel Deep(x: [N, 4]) {{ Linear(4, deep) }}\n"
        elif form == 1:
            case.text += f"\nblock Deep(x: [N, C], k={nested}) {{ ReLU }}\nmodel UsesDeep(x: [N, 4]) {{ Deep() }}\n"
        else:
            case.text += f"\nmodel Deep(x: [N, {nested}]) {{ ReLU }}\n"
        return f"nest {nested[:12]!r}... in {['a let', 'a block default', 'an input size'][form]}"
    if op == 3:
        bomb = rng.choice(
            [
                "ReLU * 10000 * 10000",
                "for i in range(10000) { for j in range(10000) { ReLU } }",
                "LSTM(4, 8, num_layers=2147483647)",
                "Linear(4, 99999999999)",
                "(Linear(4, 4) -> ReLU) * 100000",
                "Conv2d(6, 16, 5) * 1000",
            ]
        )
        case.text = re.sub(r"(\{\s*\n)", r"\1    " + bomb.replace("\\", r"\\") + " ->\n", case.text, count=1)
        return f"bomb {bomb!r}"
    if op == 4:
        case.text = case.text + "\n" + rng.choice(TRAIN_SNIPPETS)
        return "append train section"
    big = rng.choice([100, 2000, 20000])
    case.text = case.text + "\n" + "\n".join(f"let c{i} = {i} * 2" for i in range(big))
    return f"append {big} lets"


TRAIN_SNIPPETS = [
    "train {\n    out_dir = None\n}",
    "train {\n    optimizer = SGD(lr -> 0.5)\n}",
    'train {\n    data = csv("Smith\'s data, 2024.csv", target="y")\n    loss = MSELoss()\n    optimizer = Adam()\n}',
    'train {\n    data = csv("a\\" + __import__(\'os\').system(\'touch PWNED\') + \\".csv", target="y")\n'
    "    loss = MSELoss()\n    optimizer = Adam()\n}",
    "train Missing {\n    data = digits()\n    loss = CrossEntropyLoss()\n    optimizer = Adam(lr=0.001)\n}",
    'train {\n    data = digits()\n    loss = CrossEntropyLoss()\n    optimizer = NAdam()\n    device = "gpu7"\n}',
    "train {\n    data = xor()\n    loss = BCEWithLogitsLoss()\n    optimizer = SGD(lr=0.1, momentum=0.9)\n"
    "    epochs = 0\n    batch_size = -1\n    split = [0.5, 0.6]\n}",
]


# ---------------------------------------------------------------- random programs


ACTS = ["ReLU", "Tanh", "GELU", "Sigmoid", "SiLU", "Identity", "Dropout(0.1)", "LeakyReLU(0.2)", "ELU"]


class Generator:
    """Random, mostly valid programs: it follows widths (and conv heights) so that chains fit."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.blocks: list[str] = []
        self.block_names: dict[str, str] = {}

    def act(self) -> str:
        return self.rng.choice(ACTS)

    # ---- MLP: [N, f]
    def dense(self, f: int, depth: int = 0) -> tuple[str, int]:
        rng = self.rng
        parts: list[str] = []
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(11 if depth < 2 else 6)
            w = rng.choice([4, 8, 12, 16])
            if op == 0:
                parts.append(f"Linear({f}, {w})")
                f = w
            elif op == 1:
                parts.append(f"Linear(out_features={w})")
                f = w
            elif op == 2:
                parts.append(self.act())
            elif op == 3:
                parts.append(rng.choice([f"LayerNorm({f})", "LayerNorm()", f"BatchNorm1d({f})", "BatchNorm"]))
            elif op == 4:
                parts.append(f"Linear({f}, {f}, bias={rng.choice(['True', 'False'])})")
            elif op == 5:
                parts.append(rng.choice(["Dropout(p=0.2)", "Identity", "Softmax(dim=1)", "LogSoftmax(dim=-1)"]))
            elif op == 6:
                inner, g = self.dense(f, depth + 1)
                if g == f:
                    parts.append(f"Residual({inner})")
            elif op == 7:
                parts.append(f"(Linear({f}, {f}) -> {self.act()}) * {rng.choice([0, 1, 2, 3])}")
            elif op == 8:
                ws = [rng.choice([4, 8, 16]) for _ in range(rng.randint(1, 3))]
                parts.append(f"for w in {ws} {{ Linear(out_features=w) -> {self.act()} }}")
                f = ws[-1]
            elif op == 9:
                n = rng.randint(1, 3)
                parts.append(f"for i in range({n}) {{ Linear({f}, {f}) -> {self.act()} }}")
            else:
                parts.append(f"{self.dense_block()}({w})")
                f = w
        return " -> ".join(parts), f

    def dense_block(self) -> str:
        if "Dense" not in self.block_names:
            self.blocks.append(
                f"block Dense(x: [N, C], out, act={self.act()}) {{\n    Linear(C, out) -> act -> Dropout(0.0)\n}}"
            )
            self.block_names["Dense"] = "Dense"
        return "Dense"

    # ---- conv: [N, c, h, w]
    def convs(self, c: int, h: int) -> tuple[str, int, int]:
        rng = self.rng
        parts: list[str] = []
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(8)
            k = rng.choice([4, 8, 16])
            if op == 0:
                parts.append(f"Conv2d({c}, {k}, 3, padding=1)")
                c = k
            elif op == 1:
                parts.append(f"Conv2d(out_channels={k}, kernel_size=1, bias=False)")
                c = k
            elif op == 2:
                parts.append(rng.choice([f"BatchNorm2d({c})", "BatchNorm", f"GroupNorm(1, {c})"]))
            elif op == 3:
                parts.append(self.act())
            elif op == 4 and h % 2 == 0 and h >= 4:
                parts.append(rng.choice(["MaxPool2d(2)", "AvgPool2d(2, stride=2)"]))
                h //= 2
            elif op == 5:
                if "ConvBlock" not in self.block_names:
                    self.blocks.append(
                        "block ConvBlock(x: [N, C, H, W], planes, stride=1) {\n"
                        "    Residual(\n        Conv2d(C, planes, 3, stride=stride, padding=1, bias=False)"
                        " -> BatchNorm2d(planes) -> ReLU\n        -> Conv2d(planes, planes, 3, padding=1),\n"
                        "        shortcut=Conv2d(C, planes, 1, stride=stride) if stride != 1 or C != planes"
                        " else None,\n    ) -> ReLU\n}"
                    )
                    self.block_names["ConvBlock"] = "ConvBlock"
                parts.append(f"ConvBlock({k})")
                c = k
            elif op == 6:
                parts.append(f"(Conv2d({c}, {c}, 3, padding=1) -> ReLU) * {rng.randint(0, 2)}")
            else:
                parts.append(f"Upsample(scale_factor=2) -> Conv2d({c}, {k}, 3, stride=2, padding=1)")
                c = k
        return " -> ".join(parts), c, h

    # ---- a whole model
    def model(self, name: str) -> str:
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            f = rng.choice([4, 8, 16])
            inp = f"x: [{rng.choice(['N', '2', 'B'])}, {f}]"
            return f"model {name}({inp}) {{\n{self.graph(f, lambda g: self.dense(g))}\n}}"
        if kind == 1:
            c, h = rng.choice([1, 3]), rng.choice([8, 16])
            hw = rng.choice([f"{h}, {h}", "H, W"])
            body, c2, _ = self.convs(c, h if hw[0] != "H" else 1)
            tail = f"AdaptiveAvgPool2d(1) -> Flatten -> Linear({c2}, {rng.choice([2, 10])})"
            return f"model {name}(x: [N, {c}, {hw}]) {{\n    {body} -> {tail}\n}}"
        if kind == 2:
            e = rng.choice([8, 16])
            h = rng.choice([4, 8])
            rnn = rng.choice(["LSTM", "GRU", "RNN"])
            sel = rng.choice(["last", "hidden", None])
            seq = [f"Linear({e}, {e})", f"LayerNorm({e})", f"TransformerEncoderLayer({e}, 2, batch_first=True)"]
            first = rng.choice(seq)
            tail = (
                f"{rnn}({e}, {h}, batch_first=True).{sel} -> Linear({h}, 3)"
                if sel
                else f"{rnn}({e}, {h}, batch_first=True) -> Mean(1) -> Linear({h}, 3)"
            )
            if rng.random() < 0.5:
                return f"model {name}(tokens: long[N, T]) {{\n    Embedding(50, {e}) -> {first} -> {tail}\n}}"
            return f"model {name}(x: [N, T, {e}]) {{\n    {first} -> {tail}\n}}"
        f = rng.choice([4, 8])
        return (
            f"model {name}(a: [N, {f}], b: [N, {f}]) {{\n    u = a -> Linear({f}, 8)\n    v = b -> Linear({f}, 8)\n"
            f"    s = u {rng.choice(['+', '-', '*'])} v\n    c = stack(u, v, dim=1) -> Flatten\n    return s, c\n}}"
        )

    def graph(self, f: int, chain) -> str:
        """A model body over named values: branches joined by + / cat, split / chunk, returns."""
        rng = self.rng
        if rng.random() < 0.4:
            body, _ = chain(f)
            return "    " + body
        lines = []
        a_body, fa = chain(f)
        lines.append(f"    a = x -> {a_body}")
        b_body, fb = chain(f)
        lines.append(f"    b = x -> {b_body}")
        if fa == fb and rng.random() < 0.5:
            lines.append("    s = a + b")
            last, width = "s", fa
        else:
            lines.append("    s = cat(a, b, dim=1)")
            last, width = "s", fa + fb
        op = rng.randrange(3)
        if op == 0:
            lines.append(f"    p, q = split({last}, [{fa}, {width - fa}], dim=1)" if width > fa else "    p, q = a, b")
            lines.append("    return p -> ReLU, q")
        elif op == 1 and width % 2 == 0:
            lines.append(f"    h1, h2 = chunk({last}, 2, dim=1)")
            lines.append(f"    h1 -> Linear({width // 2}, 2)")
        else:
            lines.append(f"    {last} -> Linear(out_features=3)")
        return "\n".join(lines)

    def program(self) -> str:
        rng = self.rng
        models = [self.model(f"M{i}") for i in range(rng.randint(1, 2))]
        lets = [f"let width{i} = {rng.randint(1, 64)}" for i in range(rng.randint(0, 2))]
        parts = lets + self.blocks + models
        if rng.random() < 0.35:
            parts.append(random_train(rng, "M0" if len(models) > 1 or rng.random() < 0.5 else ""))
        return "\n\n".join(parts) + "\n"


def random_train(rng: random.Random, model: str) -> str:
    data = rng.choice(['digits()', 'xor()', 'sum3()', 'csv("data.csv", target="y")', 'npz("d.npz")',
                       'mnist("data/mnist")', 'fashion_mnist("f")'])  # fmt: skip
    settings = [
        f"data = {data}",
        f"loss = {rng.choice(['CrossEntropyLoss()', 'MSELoss()', 'BCEWithLogitsLoss()', 'L1Loss()'])}",
        f"optimizer = {rng.choice(['Adam(lr=0.001)', 'SGD(lr=0.1, momentum=0.9)', 'AdamW()', 'RMSprop(lr=1e-3)'])}",
    ]
    optional = [
        f"epochs = {rng.choice([1, 5, 40])}",
        f"batch_size = {rng.choice([1, 32, 64])}",
        f"split = {rng.choice(['[0.8, 0.2]', '[0.6, 0.2, 0.2]', '[1.0]'])}",
        f"seed = {rng.randint(0, 9)}",
        f"schedule = {rng.choice(['CosineAnnealingLR()', 'StepLR(step_size=2)', 'None'])}",
        f"early_stopping = {rng.choice([3, 8])}",
        f'device = "{rng.choice(["cpu", "cuda", "auto"])}"',
        "init = " + rng.choice(['kaiming_normal(nonlinearity="relu")', "xavier_uniform()"]),
    ]
    settings += rng.sample(optional, rng.randint(0, 4))
    rng.shuffle(settings)
    body = "\n".join("    " + s for s in settings)
    return f"train {model}{' ' if model else ''}{{\n{body}\n}}"


def make_case(seed: int, index: int, lib: dict[str, str], lib_lines: list[str]) -> Case:
    """Case ``index`` of the run with ``seed``: depends on nothing else."""
    rng = random.Random(f"{seed}:{index}")
    roll = rng.random()
    if roll < 0.3:
        text, origin = Generator(rng).program(), "generated"
    else:
        name = rng.choice(sorted(lib))
        text, origin = lib[name], name
    case = Case(text, origin=origin, index=index)
    if rng.random() < 0.08:  # an attack on a spec that is otherwise as written (so that it checks)
        case.origin += f" | {mutate_hostile(rng, case)}"
    elif roll >= 0.2:  # 10% of the generated programs stay as they are, the rest are mutated
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            case.text, what = mutate_tokens(rng, case.text, lib_lines)
            case.origin += f" | {what}"
        if rng.random() < 0.03:
            case.origin += f" | {mutate_hostile(rng, case)}"
    if 'from "resnet_blocks.nn"' in case.text:
        case.files.setdefault("resnet_blocks.nn", lib["resnet_blocks.nn"])
    if rng.random() < 0.03:
        case.input = rng.choice(["[N, 8]", "[2, 3, 8, 8]", "long[N, T]", "[", "[N, -1]", "bool[3]", "[" * 500])
    return case


# ---------------------------------------------------------------- the oracles (in a worker)


def _innermost_nndsl_frame(tb) -> str:
    package = str(REPO / "nndsl")
    frames = [f for f in traceback.extract_tb(tb) if f.filename.startswith(package)]
    if not frames:
        return "?"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.name}"


def _exception(oracle: str, exc: BaseException) -> dict:
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-3000:]
    where = _innermost_nndsl_frame(exc.__traceback__)
    return {"oracle": oracle, "kind": f"{type(exc).__name__} at {where}", "detail": detail}


def _prepare(case: Case, directory: Path) -> Path:
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for name, text in case.files.items():
        (directory / name).write_text(text, encoding="utf-8")
    specials = {
        "dir.nn": lambda p: p.mkdir(),
        "binary.nn": lambda p: p.write_bytes(b"\xff\xfe model \x80\x81"),
        "consts.nn": lambda p: p.write_text("let width = 4\nlet X = 2\n", encoding="utf-8"),
        "big.nn": lambda p: p.write_text("let a = 1\n" * 150_000, encoding="utf-8"),
        "fifo.nn": os.mkfifo,
    }
    for name, make in specials.items():
        if name in case.text and name not in case.files:
            make(directory / name)
    path = directory / case.name
    try:
        path.write_text(case.text, encoding="utf-8", errors="surrogatepass")
    except (OSError, ValueError):
        path = directory / "spec.nn"  # a name this file system refuses: the case keeps its text
        path.write_text(case.text, encoding="utf-8", errors="surrogatepass")
    return path


def _structure(source: str) -> str:
    """The syntax tree with every string constant blanked: what a file name must not change."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


def _run_cli(argv: list[str]) -> tuple[int, str]:
    from nndsl import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue() + err.getvalue()


def _text_failures(oracle: str, text: str) -> list[dict]:
    failures = []
    if CANARY in text:  # the output itself is not kept: it holds the environment
        detail = f"the output ({len(text)} characters) contains the workers' {CANARY} variable"
        failures.append({"oracle": oracle, "kind": "echoes the environment", "detail": detail})
    elif "Traceback (most recent call last)" in text or "bug in nndsl" in text:
        failures.append({"oracle": oracle, "kind": "traceback or internal error printed", "detail": text[-2000:]})
    return failures


def run_case(case: Case, workdir: Path, stage=lambda name: None) -> dict:
    """Every oracle on one case; returns failures, whether it checked, time, and source for ruff.
    ``stage(name)`` is called as each stage starts (the pool times stages)."""
    import nndsl
    from nndsl.api import SpecError
    from nndsl.backends.torch_module import emit_program
    from nndsl.check import model_name_for
    from nndsl.diagnostics import render_short, render_text

    time.sleep(case.flags.get("sleep", 0))  # a planted hang: how the harness's own test checks the timeout
    stages: dict[str, float] = {}  # seconds of each nndsl command; none may pass the timeout
    failures: list[dict] = []
    emitted: str | None = None
    ok = False
    cwd = os.getcwd()
    path = _prepare(case, workdir / "case")
    os.chdir(path.parent)
    try:
        # 1. the API
        result = None
        stage("api check")
        try:
            started = time.perf_counter()
            result = nndsl.check_file(path, input=case.input)
            stages["api check"] = time.perf_counter() - started
            shown = "\n".join(render_text(d) + render_short(d) + str(d.to_json()) for d in result.diagnostics)
            failures += _text_failures("api check", shown)
        except Exception as exc:  # noqa: BLE001 - the oracle: nothing escapes
            failures.append(_exception("api check", exc))
        if result is not None and result.ok and result.program is not None:
            ok = True
            stage("api emit")
            try:
                if result.program.models:
                    emitted = emit_program(result.program)
                    compile(emitted, "<emitted>", "exec")
                    failures += _text_failures("emitted module", emitted)
                    if case.name != "spec.nn":
                        # a bare chain's class is named after its file: the plain name keeps that name
                        plain_name = model_name_for(case.name) + ".nn"
                        plain = nndsl.check_source(case.text, str(path.parent / plain_name), case.input)
                        if plain.ok and _structure(emit_program(plain.program)) != _structure(emitted):
                            failures.append({"oracle": "emitted module", "kind": "file name changes the code",
                                             "detail": emitted[:3000]})  # fmt: skip
                for config in result.program.trainings[:1]:
                    from nndsl.backends.train_script import emit_train_script

                    script = emit_train_script(result.program, config)
                    compile(script, "<train script>", "exec")
                    failures += _text_failures("train script", script)
            except SyntaxError as exc:
                failures.append({"oracle": "emitted source", "kind": "SyntaxError in emitted source",
                                 "detail": f"{exc}\n{(emitted or '')[:3000]}"})  # fmt: skip
            except Exception as exc:  # noqa: BLE001
                failures.append(_exception("api emit", exc))
        # building measures torch more than nndsl for large models: only small ones are built
        if ok and case.flags.get("build") and stages.get("api check", 1.0) < 0.1:
            stage("api build")
            try:
                import torch

                torch.set_num_threads(1)
                with torch.device("meta"):
                    nndsl.build(path, input=case.input)
            except (SpecError, ValueError):
                pass
            except Exception as exc:  # noqa: BLE001
                failures.append(_exception("api build", exc))
            if Path("PWNED").exists():
                failures.append({"oracle": "api build", "kind": "spec text ran as code", "detail": case.name})
        # 2. the CLI, in-process: NNDSL_DEBUG=1 makes what would be exit 3 raise here
        commands = [["check", str(path)], ["compile", str(path), "-o", str(path.parent / "out.py")]]
        if "train" in case.text:
            commands.append(["compile", str(path), "--target", "train", "-o", str(path.parent / "out_train.py")])
        if case.input is not None:
            commands = [[*c, "--input", case.input] for c in commands if "train" not in c]
        for argv in commands:
            stage("cli " + " ".join(a for a in argv if a.startswith("-") or a in ("check", "compile")))
            started = time.perf_counter()
            try:
                code, shown = _run_cli(argv)
            except Exception as exc:  # noqa: BLE001
                failures.append(_exception(f"cli {argv[0]} (exit 3)", exc))
                continue
            finally:
                stages[f"cli {' '.join(a for a in argv if a.startswith('-') or a in ('check', 'compile'))}"] = (
                    time.perf_counter() - started
                )
            failures += _text_failures(f"cli {argv[0]}", shown)
            if code == 3:
                failures.append({"oracle": f"cli {argv[0]}", "kind": "exit 3", "detail": shown[-2000:]})
        if Path("PWNED").exists():
            failures.append({"oracle": "cli", "kind": "spec text ran as code", "detail": case.name})
        # the real thing, for a sample
        if case.flags.get("cli_subprocess"):
            stage("cli subprocess")
            env = dict(os.environ, PYTHONPATH=str(REPO))
            env.pop("NNDSL_DEBUG", None)
            for argv in commands:
                try:
                    run = subprocess.run([sys.executable, "-m", "nndsl", *argv], capture_output=True, text=True,
                                         env=env, timeout=60, errors="replace")  # fmt: skip
                except subprocess.TimeoutExpired:
                    failures.append({"oracle": f"cli subprocess {argv[0]}", "kind": "hang", "detail": ""})
                    continue
                failures += _text_failures(f"cli subprocess {argv[0]}", run.stdout + run.stderr)
                if run.returncode == 3:
                    failures.append({"oracle": f"cli subprocess {argv[0]}", "kind": "exit 3",
                                     "detail": run.stderr[-2000:]})  # fmt: skip
    finally:
        os.chdir(cwd)
    return {
        "index": case.index,
        "failures": failures,
        "ok": ok,
        "seconds": max(stages.values(), default=0.0),
        "stages": stages,
        "emitted": emitted if case.flags.get("ruff") else None,
    }


def _worker(conn, workdir: str) -> None:
    """A worker process: one thread, bounded memory, the canary in its environment."""
    import resource

    os.environ[CANARY] = CANARY
    os.environ["NNDSL_DEBUG"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    import nndsl  # noqa: F401 - loaded before the first case, so it is not timed

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))
    base = Path(workdir)
    conn.send("ready")  # the pool times cases from here: starting a worker is not part of any case
    while True:
        case = conn.recv()
        if case is None:
            return
        try:
            conn.send(run_case(case, base, lambda name: conn.send(("stage", name))))
        except MemoryError:
            conn.send({"index": case.index, "ok": False, "seconds": 0.0, "emitted": None, "stages": {},
                       "failures": [{"oracle": "worker", "kind": "MemoryError", "detail": ""}]})  # fmt: skip


# ---------------------------------------------------------------- the pool (parent)


class Pool:
    """At most ``size`` worker processes; a case past ``timeout`` seconds is a hang, its worker replaced."""

    def __init__(self, size: int, timeout: float):
        self.size = max(1, min(size, 2))
        self.timeout = timeout
        self.ctx = multiprocessing.get_context("spawn")
        # in the workers' environment from their start, so that /proc/self/environ holds it too
        os.environ[CANARY] = CANARY
        self.root = Path(tempfile.mkdtemp(prefix="nndsl-fuzz-"))
        self.workers: list[list] = []
        for i in range(self.size):
            self.workers.append(self._spawn(i))
        for w in self.workers:
            self._await_ready(w)

    def _spawn(self, i: int) -> list:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, str(self.root / f"w{i}")), daemon=True)
        proc.start()
        child.close()
        return [proc, parent, None, 0.0, ""]  # process, pipe, case, stage start, stage

    @staticmethod
    def _await_ready(w: list) -> None:
        if not w[1].poll(STARTUP_TIMEOUT) or w[1].recv() != "ready":
            raise RuntimeError(f"a fuzz worker did not start within {STARTUP_TIMEOUT} s")

    def run(self, cases):
        """Yield (case, result) as they finish; results of hangs and crashed workers are made here.

        A worker announces each stage of a case (``("stage", name)``); a stage that runs past its
        limit is a hang, and the worker is replaced."""
        pending = iter(cases)
        busy = 0
        exhausted = False
        while True:
            for w in self.workers:
                if w[2] is None and not exhausted:
                    case = next(pending, None)
                    if case is None:
                        exhausted = True
                        break
                    w[1].send(case)
                    w[2], w[3], w[4] = case, time.perf_counter(), "prepare"
                    busy += 1
            if busy == 0:
                return
            now = time.perf_counter()
            limits = [w[3] + self._limit(w[4]) - now for w in self.workers if w[2] is not None]
            ready = wait([w[1] for w in self.workers if w[2] is not None], timeout=max(0.0, min(limits)))
            now = time.perf_counter()
            for i, w in enumerate(self.workers):
                if w[2] is None:
                    continue
                case = w[2]
                if w[1] in ready:
                    try:
                        result = w[1].recv()
                    except (EOFError, OSError):
                        result = self._dead(case, now - w[3], "worker died", w[4])
                        self._replace(i)
                    else:
                        if isinstance(result, tuple):  # ("stage", name): the next stage starts now
                            w[3], w[4] = now, result[1]
                            continue
                        w[2] = None
                        slow = [name for name, seconds in result["stages"].items() if seconds > self.timeout]
                        if slow:
                            result["failures"].append({"oracle": "timeout", "kind": f"{slow[0]} over the timeout",
                                                       "detail": str(result["stages"])})  # fmt: skip
                    busy -= 1
                    yield case, result
                elif now - w[3] > self._limit(w[4]):
                    stage = w[4]
                    self._replace(i)
                    busy -= 1
                    yield case, self._dead(case, now - w[3], "hang", stage)

    def _limit(self, stage: str) -> float:
        """How long one stage may run: nndsl's commands the timeout (and a little for the harness);
        building on torch's meta device and real CLI subprocesses (a cold start each) longer."""
        if stage == "cli subprocess":
            return 120.0
        if stage == "api build":
            return max(30.0, self.timeout)
        return self.timeout + 1.0

    @staticmethod
    def _dead(case: Case, seconds: float, kind: str, stage: str) -> dict:
        oracle = "timeout" if kind == "hang" else "worker"
        return {"index": case.index, "ok": False, "seconds": seconds, "emitted": None, "stages": {stage: seconds},
                "failures": [{"oracle": oracle, "kind": f"{kind} in {stage}", "detail": ""}]}  # fmt: skip

    def _replace(self, i: int) -> None:
        proc = self.workers[i][0]
        proc.kill()
        proc.join(5)
        self.workers[i] = self._spawn(i)
        self._await_ready(self.workers[i])

    def close(self) -> None:
        for _proc, conn, *_ in self.workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(None)
        for proc, *_ in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------- reduction and reports


def signature(failure: dict) -> str:
    return f"{failure['oracle']}: {failure['kind']}"


def _fails_with(pool: Pool, case: Case, sig: str) -> bool:
    for _, result in pool.run([case]):
        return any(signature(f) == sig for f in result["failures"])
    return False


def reduce_case(pool: Pool, case: Case, sig: str, budget: int, seconds: float = 60.0) -> Case:
    """Delta-reduce ``case.text`` (chunks of lines, then single tokens) while ``sig`` still fails,
    for at most ``budget`` tries and about ``seconds`` seconds."""
    tries = 0
    deadline = time.perf_counter() + seconds

    def attempt(text: str) -> bool:
        nonlocal tries
        tries += 1
        if time.perf_counter() > deadline:
            tries = budget
            return False
        trial = Case(text, case.name, case.files, case.input, case.origin, case.index, dict(case.flags))
        return _fails_with(pool, trial, sig)

    lines = case.text.splitlines(keepends=True)
    chunk = max(1, len(lines) // 2)
    while chunk >= 1 and tries < budget:
        i = 0
        while i < len(lines) and tries < budget:
            trial = lines[:i] + lines[i + chunk :]
            if trial and attempt("".join(trial)):
                lines = trial
            else:
                i += chunk
        chunk //= 2
    toks = tokens("".join(lines))
    i = len(toks) - 1
    while i >= 0 and tries < budget:
        if not toks[i].isspace() and attempt("".join(toks[:i] + toks[i + 1 :])):
            toks = toks[:i] + toks[i + 1 :]
        i -= 1
    case = Case("".join(toks), case.name, case.files, case.input, case.origin, case.index, dict(case.flags))
    return case


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:80] or "failure"


def write_reproducer(out: Path, sig: str, case: Case, failure: dict, rank: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{_slug(sig)}_{hashlib.sha1(sig.encode()).hexdigest()[:6]}_{rank}"
    (out / f"{stem}.nn").write_text(case.text, encoding="utf-8", errors="surrogatepass")
    notes = [f"signature: {sig}", f"case: {case.index}", f"origin: {case.origin}", f"file name: {case.name!r}",
             f"--input: {case.input!r}", f"other files: {sorted(case.files)}", "", failure.get("detail", "")]  # fmt: skip
    (out / f"{stem}.txt").write_text("\n".join(notes), encoding="utf-8", errors="replace")
    return out / f"{stem}.nn"


def ruff_sample(sources: list[str]) -> list[str]:
    """Problems ruff (its defaults) finds in a sample of emitted modules; [] when all are clean."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not sources or not Path(ruff).exists():
        return []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "ruff.toml").write_text("")
        for i, source in enumerate(sources):
            (d / f"m{i}.py").write_text(source, encoding="utf-8")
        problems = []
        for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
            run = subprocess.run([ruff, *command, "--config", str(d / "ruff.toml"), str(d)],
                                 capture_output=True, text=True)  # fmt: skip
            if run.returncode != 0:
                problems.append(f"ruff {command[0]}: {(run.stdout + run.stderr)[-1500:]}")
        return problems


@dataclass
class Summary:
    cases: int = 0
    checked_ok: int = 0
    seconds: float = 0.0
    by_signature: dict[str, list[tuple[Case, dict]]] = field(default_factory=dict)
    slowest: list[tuple[float, int, str]] = field(default_factory=list)
    exit3: int = 0
    hangs: int = 0
    ruff: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"cases: {self.cases} in {self.seconds:.0f} s = {self.cases / max(self.seconds, 1e-9):.1f} cases/s"
            f" ({self.checked_ok} checked without errors)",
            f"failing cases: {len({c.index for v in self.by_signature.values() for c, _ in v})}",
            f"exit 3 (CLI): {self.exit3}",
            f"hangs over the timeout: {self.hangs}",
            f"ruff on the emitted sample: {'clean' if not self.ruff else 'PROBLEMS'}",
            "failures by signature (cases):",
        ]
        for sig, items in sorted(self.by_signature.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"  {len(items):6d}  {sig}")
        lines.append("slowest cases (s, case, origin):")
        for seconds, index, origin in sorted(self.slowest, reverse=True)[:8]:
            lines.append(f"  {seconds:6.2f}  #{index}  {origin[:100]}")
        lines += [f"  {p}" for p in self.ruff]
        return "\n".join(lines)


def run(cases: int, seed: int, timeout: float = 5.0, workers: int = 2, out: Path | None = None,
        cli_every: int = 500, build_every: int = 5, ruff_every: int = 50, reduce_budget: int = 150,
        keep: int = 3, start: int = 0, progress: bool = False, pool: Pool | None = None,
        reduce_seconds: float = 20.0) -> Summary:  # fmt: skip
    """Run cases ``start`` .. ``start + cases - 1`` of ``seed``; returns the summary. A ``pool``
    given is used and left open (its ``timeout`` applies); otherwise one is made and closed."""
    lib = library()
    lib_lines = [line for text in lib.values() for line in text.splitlines() if line.strip()]

    def generate():
        for i in range(start, start + cases):
            case = make_case(seed, i, lib, lib_lines)
            case.flags = {"build": i % build_every == 0, "cli_subprocess": cli_every > 0 and i % cli_every == 0,
                          "ruff": i % ruff_every == 0}  # fmt: skip
            yield case

    summary = Summary()
    sources: list[str] = []
    own = pool is None
    pool = pool or Pool(workers, timeout)
    timeout = pool.timeout
    began = time.perf_counter()
    try:
        for case, result in pool.run(generate()):
            summary.cases += 1
            summary.checked_ok += result["ok"]
            summary.slowest = sorted([*summary.slowest, (result["seconds"], case.index, case.origin)])[-20:]
            for failure in result["failures"]:
                sig = signature(failure)
                summary.by_signature.setdefault(sig, []).append((case, failure))
                summary.exit3 += "exit 3" in sig
                summary.hangs += failure["oracle"] == "timeout"
            if result["emitted"] and len(sources) < 400:
                sources.append(result["emitted"])
            if progress and summary.cases % 1000 == 0:
                rate = summary.cases / (time.perf_counter() - began)
                print(f"  {summary.cases} cases, {rate:.1f}/s, {len(summary.by_signature)} signatures", flush=True)
        summary.seconds = time.perf_counter() - began
        summary.ruff = ruff_sample(sources)
        if progress:
            print(summary.text(), flush=True)
        if out is not None:
            for sig, items in summary.by_signature.items():
                first = min(items, key=lambda cf: len(cf[0].text))
                budget = 4 if "timeout" in sig else reduce_budget
                reduced = reduce_case(pool, first[0], sig, budget, reduce_seconds) if budget else first[0]
                write_reproducer(out, sig, reduced, first[1], 0)
                for rank, (case, failure) in enumerate(items[:keep], start=1):
                    write_reproducer(out, sig, case, failure, rank)
    finally:
        if own:
            pool.close()
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--start", type=int, default=0, help="first case index (to replay one case: --start i --cases 1)"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a case counts as a hang")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (at most 2)")
    parser.add_argument("--out", type=Path, help="folder for the reproducers of failing cases")
    parser.add_argument("--cli-every", type=int, default=500, help="real CLI subprocesses on every n-th case (0: none)")
    parser.add_argument("--build-every", type=int, default=5, help="nndsl.build (meta device) on every n-th case")
    parser.add_argument("--reduce-budget", type=int, default=150, help="tries to reduce each signature's reproducer")
    parser.add_argument("--show", action="store_true", help="print the cases instead of running them")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.show:
        lib = library()
        lines = [line for text in lib.values() for line in text.splitlines() if line.strip()]
        for i in range(args.start, args.start + args.cases):
            case = make_case(args.seed, i, lib, lines)
            print(f"### case {i}: {case.origin}  (file {case.name!r}, input {case.input!r})\n{case.text}")
        return 0
    summary = run(args.cases, args.seed, args.timeout, args.workers, args.out, args.cli_every, args.build_every,
                  reduce_budget=args.reduce_budget, start=args.start, progress=True)  # fmt: skip
    failed = summary.by_signature or summary.ruff
    if failed and args.out:
        print(f"reproducers in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
