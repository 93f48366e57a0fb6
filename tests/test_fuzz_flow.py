"""Random programs in the data-flow language, checked, compiled and run against torch.

A generator writes mostly-valid specs: models with several inputs, named values, chains,
``+ - * /`` between tensors (broadcasting) and with numbers, cat/stack/chunk/split, residuals
with and without (conditional) shortcuts, blocks with input patterns, defaults, sub-network
parameters, body constants and nested blocks, ``* n`` repetition (0 included), ``for`` loops over
lists of tuples, several outputs, constants and imports. It follows every shape itself, with
concrete values for the symbolic sizes, so it knows what each program computes. Broken
variants (a number changed, an arrow dropped, a name misspelled, an input of the wrong rank,
a line dropped or moved, ...) check that mistakes end in diagnostics, never in exceptions.

Properties:

1. ``check_source`` never raises, and every diagnostic has a catalogued code and renders.
2. Where the checker accepts, the built module runs on inputs of the declared shapes (symbols
   given values), gives exactly the checked output shapes and the checked parameter count, and
   the emitted source passes ruff's default lint and format (checked in one batch).
3. Checking and emission are deterministic.
4. The generator's valid programs are accepted, with the output shapes it computed.

Runs are derandomized; ``NNDSL_FUZZ_EXAMPLES=2000`` raises the number of examples for a bug hunt.
The tests at the end pin down the bugs the generators found, all fixed.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import ROOT, ruff_executable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.backends.torch_module import emit_program
from nndsl.diagnostics import CATALOGUE, render_short, render_text
from nndsl.shapes import Poly, Sym, substitute

torch = pytest.importorskip("torch")

EXAMPLES = int(os.environ.get("NNDSL_FUZZ_EXAMPLES", "0"))
_SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}

ACTIVATIONS = ["ReLU", "Tanh", "GELU", "Sigmoid()", "Identity", "Dropout(0.1)", "LeakyReLU(0.2)", "SiLU"]
PLAIN_ACTIVATIONS = ["ReLU", "Tanh", "GELU", "Sigmoid", "SiLU"]  # for `act=` arguments


# ---------------------------------------------------------------- the generator's model of sizes


class D(NamedTuple):
    """A size in a model: its value, and the symbolic size it stands for (None: a literal size).
    The generator combines two sizes only where both agree."""

    value: int
    key: str | None = None


Shape = tuple  # of D


def lit(v: int) -> D:
    return D(v)


def broadcast(a: Shape, b: Shape) -> Shape | None:
    rank = max(len(a), len(b))
    a = (lit(1),) * (rank - len(a)) + tuple(a)
    b = (lit(1),) * (rank - len(b)) + tuple(b)
    out = []
    for p, q in zip(a, b):
        if p == q or q == lit(1):
            out.append(p)
        elif p == lit(1):
            out.append(q)
        else:
            return None
    return tuple(out)


def dim_sum(a: D, b: D) -> D:
    if a.key is None and b.key is None:
        return lit(a.value + b.value)
    return D(a.value + b.value, f"({a.key or a.value})+({b.key or b.value})")


def halve(d: D) -> D:
    return lit(d.value // 2) if d.key is None else D(d.value // 2, f"({d.key})//2")


def strided(d: D, s: int) -> D:
    """The size after a 3x3 convolution with padding 1 and stride ``s``."""
    if s == 1:
        return d
    value = (d.value - 1) // s + 1
    return lit(value) if d.key is None else D(value, f"({d.key}-1)//{s}+1")


class E(NamedTuple):
    """A size inside a block body: its text in the spec (None where it has none) and its value
    in one use (``env`` maps the block's parameters and pattern names to their values)."""

    text: str | None
    fn: Callable[[dict], int]


def name_e(name: str) -> E:
    return E(name, lambda env: env[name])


def lit_e(v: int) -> E:
    return E(str(v), lambda env: v)


def _flow_step(text: str) -> str:
    """A step written after ``->``: a conditional needs parentheses (``x -> (f if c else g)``)."""
    depth = 0
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if depth == 0 and text.startswith(" if ", i):
            return f"({text})"
    return text


def _atom(text: str) -> str:
    return text if re.fullmatch(r"\w+", text) else f"({text})"


# ---------------------------------------------------------------- statements


class Pending:
    """An unnamed tensor statement. If a later statement does not continue from it, it gets a
    name, to be returned, joined with the output, or (now and then) left unused."""

    def __init__(self, index: int, text: str, out, src):
        self.index = index
        self.text = text
        self.out = out
        self.src = src  # the value it continues from (a name or a Pending); None for an expression
        self.name: str | None = None


class Statements:
    """The statements of a body, the values they name, and the value a layer-led statement
    continues from (``current``: a name, a Pending, or None after a destructuring)."""

    def __init__(self, g: Gen, inputs: dict):
        self.g = g
        self.lines: list[str] = []
        self.inputs = set(inputs)
        self.values: dict = dict(inputs)
        self.defined_at: dict[str, int] = {}
        self.current = None
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def out_of(self, value):
        return self.values[value] if isinstance(value, str) else value.out

    def name(self, value) -> str:
        if isinstance(value, str):
            return value
        if value.name is None:
            name = self.fresh("t")
            lead = "" if value.src is None else f"{self.name(value.src)} -> "
            self.lines[value.index] = f"{name} = {lead}{_flow_step(value.text) if lead else value.text}"
            value.name = name
            self.values[name] = value.out
            self.defined_at[name] = value.index
        if self.current is value:
            self.current = value.name
        return value.name

    def settle(self) -> None:
        """The next statement does not continue from the current value: name it."""
        if isinstance(self.current, Pending):
            self.name(self.current)

    def define(self, name: str, text: str, out) -> None:
        self.settle()
        self.lines.append(f"{name} = {text}")
        self.values[name] = out
        self.defined_at[name] = len(self.lines) - 1
        self.current = name

    def expression(self, text: str, out, name: str | None = None) -> None:
        """A statement computing a tensor from named values (``a + b``, ``src -> f``)."""
        if name is not None:
            self.define(name, text, out)
            return
        self.settle()
        self.current = Pending(len(self.lines), text, out, None)
        self.lines.append(text)

    def continue_with(self, text: str, out) -> None:
        """A layer-led statement, applied to the current value."""
        self.current = Pending(len(self.lines), text, out, self.current)
        self.lines.append(text)

    def destructure(self, names: list[str], text: str, outs: list) -> None:
        self.settle()
        self.lines.append(f"{', '.join(names)} = {text}")
        for name, out in zip(names, outs):
            self.values[name] = out
            self.defined_at[name] = len(self.lines) - 1
        self.current = None

    def unused(self) -> list[str]:
        out = []
        for name, index in sorted(self.defined_at.items(), key=lambda item: item[1]):
            if not any(re.search(rf"\b{name}\b", line) for line in self.lines[index + 1 :]):
                out.append(name)
        return out

    def tensors(self) -> list[str]:
        return sorted(self.values)


# ---------------------------------------------------------------- blocks


class BlockSpec:
    """A generated block: its text and how a use of it transforms shapes."""

    def __init__(self, name: str, land: str, rank: int):
        self.name = name
        self.land = land  # "last": works on the last dim; "conv": on the channels of [N, C, H, W]
        self.rank = rank
        self.pattern: list[str] = []
        self.ints: list[tuple[str, int | None, str]] = []  # (name, default, "size" or "count")
        #: sub-network parameters: name -> (size in, size out, a shortcut that may be None)
        self.subnets: dict[str, tuple[E, E, bool]] = {}
        self.acts: dict[str, str] = {}  # layer parameters (`act=ReLU`) -> default
        self.extra: str | None = None  # a second input `skip`: its worked-on dim's name
        self.stride = False  # an int parameter `stride` strides the spatial dims
        self.order: list[str] = []  # parameters in declaration order, besides the first input
        self.tested: set[str] = set()  # parameters that conditions (`if C != out`) compare
        self.text = ""
        self.out: E = lit_e(0)

    @property
    def dim_index(self) -> int:
        return -1 if self.land == "last" else 1

    def env_for(self, shape: Shape, args: dict) -> dict:
        env = dict(args)
        for name, default, _ in self.ints:
            env.setdefault(name, default)
        env[self.pattern[self.dim_index]] = shape[self.dim_index].value
        return env

    def transfer(self, shape: Shape, env: dict) -> Shape | None:
        out = self.out.fn(env)
        if out < 1:
            return None
        new = list(shape)
        new[self.dim_index] = lit(out)
        if self.stride and env.get("stride", 1) != 1:
            new[2] = strided(new[2], env["stride"])
            new[3] = strided(new[3], env["stride"])
        return tuple(new)


class BodyGen(Statements):
    """The body of one block, written in terms of its parameters (sizes are E's)."""

    def __init__(self, g: Gen, spec: BlockSpec, inputs: dict, sizes: list[E], counts: list[E]):
        super().__init__(g, inputs)
        self.spec = spec
        self.sizes = sizes  # what a size argument may be written as
        self.counts = counts  # what a repetition count may be written as
        self.used_subnets: set[str] = set()
        self.act_used = False
        self.strided = False

    def size(self) -> E:
        g = self.g
        base = g.pick(self.sizes)
        other = g.pick(self.sizes)
        roll = g.int(0, 9)
        if roll == 0:
            return E(f"{base.text} + {other.text}", lambda env: base.fn(env) + other.fn(env))
        if roll == 1:
            k = g.int(2, 3)
            return E(f"{_atom(base.text)} * {k}", lambda env: base.fn(env) * k)
        if roll == 2:
            return E(f"{_atom(base.text)} * 4 // 2", lambda env: base.fn(env) * 4 // 2)
        if roll == 3:
            name = g.pick(["max", "min"])
            f = max if name == "max" else min
            return E(f"{name}({base.text}, {other.text})", lambda env: f(base.fn(env), other.fn(env)))
        if roll == 4:
            k = g.int(2, 6)
            return E(f"({base.text} if {base.text} > {k} else {k})", lambda env: max(base.fn(env), k))
        if roll == 5:
            return E(f"{base.text} + {other.text} - 1", lambda env: base.fn(env) + other.fn(env) - 1)
        return base

    # -- the layers of the block's land

    def proj(self, cur: E, out: E) -> str:
        """A layer from size ``cur`` to ``out`` (the sizes written, or inferred)."""
        g = self.g
        if self.spec.land == "last":
            if cur.text is None or g.int(0, 4) == 0:
                return f"Linear(out_features={out.text})"
            return f"Linear({cur.text}, {out.text}{g.pick(['', '', ', bias=False'])})"
        if cur.text is None or g.int(0, 4) == 0:
            return f"Conv2d(out_channels={out.text}, kernel_size=1)"
        return f"Conv2d({cur.text}, {out.text}, " + g.pick(["1)", "3, padding=1)"])

    def norm(self, cur: E) -> str:
        name = "LayerNorm" if self.spec.land == "last" else "BatchNorm2d"
        return f"{name}()" if cur.text is None or self.g.int(0, 3) == 0 else f"{name}({cur.text})"

    def act(self, repeated: bool = False) -> str:
        """An activation: sometimes the block's `act` parameter, applied once at most and never in
        a loop or a repetition (twice is refused, even for ReLU: test_an_activation_argument_applied_twice)."""
        if self.spec.acts and not self.act_used and not repeated and self.g.int(0, 2) == 0:
            self.act_used = True
            return self.g.pick(sorted(self.spec.acts))
        return self.g.pick(ACTIVATIONS)

    def preserving(self, cur: E, repeated: bool = False) -> str:
        """A chain that keeps the size ``cur``."""
        g = self.g
        parts = []
        for _ in range(g.int(1, 3)):
            roll = g.int(0, 5)
            if roll == 0 and cur.text is not None:
                parts.append(self.proj(cur, cur))
            elif roll == 1:
                parts.append(self.norm(cur))
            elif roll == 2 and cur.text is not None:
                mid = self.size()
                parts.append(f"{self.proj(cur, mid)} -> {self.act(repeated)} -> {self.proj(mid, cur)}")
            else:
                parts.append(self.act(repeated))
        return " -> ".join(parts)

    def cat_dim(self) -> str:
        if self.spec.land == "last":
            return self.g.pick(["-1", str(self.spec.rank - 1)])
        return self.g.pick(["1", "-3"])

    # -- statements

    def start(self) -> tuple[str | None, E]:
        """Where a statement starts: (a named value to write first, or None to continue, its size)."""
        g = self.g
        if self.current is not None and g.int(0, 2):
            if isinstance(self.current, str) and g.int(0, 1):
                return self.current, self.values[self.current]
            return None, self.out_of(self.current)
        name = g.pick(self.tensors())
        return name, self.values[name]

    def flow(self, src: str | None, text: str, out: E, name: str | None = None) -> None:
        """``src -> text`` (or ``text`` continuing), named ``name`` if given."""
        if src is None and name is not None:
            src = self.name(self.current)
        if src is None:
            self.continue_with(text, out)
        else:
            self.expression(f"{src} -> {_flow_step(text)}", out, name)

    def apply_subnet(self, name: str, src: str | None, cur: E) -> None:
        """Apply a sub-network parameter once (twice is refused: test_a_sub_network_argument_applied_twice)."""
        g = self.g
        if self.spec.subnets[name][2]:  # a shortcut parameter: Residual(f, shortcut=param)
            out = self.size()
            self.spec.subnets[name] = (cur, out, True)
            self.flow(src, f"Residual({self.proj(cur, out)}, shortcut={name})", out)
        else:
            self.spec.subnets[name] = (cur, cur, False)
            self.flow(src, g.pick([name, f"Residual({name})", f"{name} -> {self.act()}"]), cur)
        self.used_subnets.add(name)

    def step(self) -> None:
        g = self.g
        spec = self.spec
        kind = g.pick(
            ["chain", "chain", "named", "residual", "cond_shortcut", "cond_shortcut", "optional", "optional"]
            + ["cat", "chunk", "binop", "repeat", "loop", "tuple_loop", "constant", "nested", "subnet"]
            + ["stride"] * (3 if spec.stride and not self.strided else 0)
        )
        src, cur = self.start()
        if kind == "chain":
            out = self.size()
            steps = [self.proj(cur, out)] + [self.act()] * g.int(0, 1)
            if g.int(0, 2) == 0:
                steps.append(self.norm(out))
            self.flow(src, " -> ".join(steps), out, self.fresh("h") if g.int(0, 1) else None)
        elif kind == "named":
            out = self.size()
            name = g.pick(self.tensors())
            self.flow(name, self.proj(self.values[name], out), out, self.fresh("h"))
        elif kind == "residual":
            if g.int(0, 2) == 0:
                out = self.size()
                text = f"Residual({self.proj(cur, out)} -> {self.act()}, shortcut={self.proj(cur, out)})"
                self.flow(src, text, out)
            else:
                self.flow(src, f"Residual({self.preserving(cur)})", cur)
        elif kind == "cond_shortcut" and cur.text is not None:
            out = g.pick([self.size(), g.pick(self.sizes)])
            if out.text == cur.text:  # `C != C` is emitted as written: ruff's PLR0124
                return
            short = self.proj(cur, out)
            if g.int(0, 1):
                cond = f"{short} if {cur.text} != {out.text} else None"
            else:  # negated in the constructor: test_a_negated_condition
                cond = f"None if {cur.text} == {out.text} else {short}"
            self.spec.tested.update(re.findall(r"[a-z]\w*", f"{cur.text} {out.text}"))
            sep = g.pick([", shortcut=", ",\n        shortcut="])
            self.flow(src, f"Residual({self.proj(cur, out)} -> {self.act()}{sep}{cond})", out)
        elif kind == "optional" and self.current is not None and self.out_of(self.current).text is not None:
            # `Residual(body) if C == out else body`: one class, the sum decided per use
            cur = self.out_of(self.current)
            out = g.pick(self.sizes)
            if out.text == cur.text:
                return
            self.spec.tested.update(re.findall(r"[a-z]\w*", f"{cur.text} {out.text}"))
            body = self.fresh("body")
            self.lines.append(f"{body} = {self.proj(cur, out)} -> {self.act()}")
            if g.int(0, 1):
                self.flow(None, f"Residual({body}) if {cur.text} == {out.text} else {body}", out)
            else:  # negated in the constructor: test_a_negated_condition
                self.flow(None, f"{body} if {cur.text} != {out.text} else Residual({body})", out)
        elif kind == "cat":
            items = [g.pick(self.tensors()) for _ in range(g.int(2, 3))]
            sizes = [self.values[n] for n in items]
            if any(e.text is None for e in sizes):
                return
            total = E(" + ".join(e.text for e in sizes), lambda env: sum(e.fn(env) for e in sizes))
            name = self.fresh("c") if g.int(0, 1) else None
            self.expression(f"cat({', '.join(items)}, dim={self.cat_dim()})", total, name)
        elif kind == "chunk":
            half = self.size()
            name = g.pick(self.tensors())
            whole = E(f"{_atom(half.text)} * 2", lambda env: half.fn(env) * 2)
            p, q = self.fresh("p"), self.fresh("q")
            call = f"chunk({name} -> {self.proj(self.values[name], whole)}, 2, dim={self.cat_dim()})"
            self.destructure([p, q], call, [half, half])
            op = g.pick(["*", "+", "-", "/"])
            self.expression(f"{p} {op} {q}", half, self.fresh("g") if g.int(0, 1) else None)
        elif kind == "binop":
            a = g.pick(self.tensors())
            ea = self.values[a]
            same = [n for n in self.tensors() if ea.text is not None and self.values[n].text == ea.text]
            op = g.pick(["+", "-", "*", "/"])
            if same and g.int(0, 2):
                text = f"{a} {op} {g.pick(same)}"
            else:
                number = g.pick(["0.5", "2", "1.5", "3"])
                text = f"{a} {op} {number}" if g.int(0, 1) else f"{number} {op} {a}"
            self.expression(text, ea, self.fresh("s") if g.int(0, 1) else None)
        elif kind == "repeat":
            count = g.pick(self.counts)
            chain = self.preserving(cur, repeated=True)
            body = f"({chain})" if "->" in chain or g.int(0, 1) else chain
            self.flow(src, f"{body} * {count.text}", cur)
        elif kind == "loop":
            if spec.land != "last" or g.int(0, 1):
                count = g.pick(self.counts)  # range(0) is refused (E114), unlike `* 0`
                self.flow(
                    src, f"for i in range({_atom(count.text)} + 1) {{ {self.preserving(cur, repeated=True)} }}", cur
                )
                return
            widths = [self.size() for _ in range(g.int(1, 3))]
            body = f"{self.proj(E(None, cur.fn), name_e('w'))} -> {self.act(repeated=True)}"
            self.flow(src, f"for w in [{', '.join(w.text for w in widths)}] {{ {body} }}", widths[-1])
        elif kind == "tuple_loop":
            rows = [(self.size(), g.int(0, 2)) for _ in range(g.int(1, 3))]
            items = ", ".join(f"({w.text}, {r})" for w, r in rows)
            inner = "Linear(out_features=w)" if spec.land == "last" else "Conv2d(out_channels=w, kernel_size=1)"
            self.flow(
                src,
                f"for w, r in [{items}] {{\n        {inner} -> ({self.act(repeated=True)}) * r\n    }}",
                rows[-1][0],
            )
        elif kind == "constant":
            base = self.size()
            name = self.fresh("k")
            k = g.int(1, 3)
            self.lines.append(f"{name} = {_atom(base.text)} * {k}")
            self.sizes.append(E(name, lambda env: base.fn(env) * k))
        elif kind == "nested":
            self.nested(src, cur)
        elif kind == "subnet":
            free = [n for n in spec.subnets if n not in self.used_subnets]
            if free:
                self.apply_subnet(g.pick(sorted(free)), src, cur)
        elif kind == "stride" and spec.stride and not self.strided and self.current is not None:
            # a torchvision-style BasicBlock; the values before it have other spatial sizes
            src, cur = None, self.out_of(self.current)
            out = self.size()
            if cur.text is None or out.text == cur.text or [n for n in self.unused() if n != self.current]:
                return
            self.strided = True
            body = f"Conv2d({cur.text}, {out.text}, 3, stride=stride, padding=1, bias=False) -> BatchNorm2d({out.text})"
            short = f"Conv2d({cur.text}, {out.text}, 1, stride=stride, bias=False)"
            text = (
                f"Residual(\n        {body} -> ReLU,\n        shortcut={short}\n"
                f"            if stride != 1 or {cur.text} != {out.text} else None,\n    )"
            )
            name = self.fresh("down")
            self.flow(src, text, out, name)
            self.values = {name: out}

    def nested(self, src: str | None, cur: E) -> None:
        g = self.g
        spec = self.spec
        inner = [b for b in g.blocks if b.land == spec.land and b.rank == spec.rank and b.extra is None]
        inner = [b for b in inner if not any(shortcut for _, _, shortcut in b.subnets.values())]
        if not inner:
            return
        b = g.pick(inner)
        positional, keywords, fns = [], [], {}
        for pname, default, pkind in b.ints:
            if pname == "stride" or default is not None and g.int(0, 1):
                continue
            value = g.pick(self.counts) if pkind == "count" else self.size()
            fns[pname] = value.fn
            if default is None and not keywords and g.int(0, 3):
                positional.append(value.text)
            else:
                keywords.append(f"{pname}={value.text}")
        for pname in b.subnets:  # preserving sub-networks (`inner`): an activation fits every use
            keywords.append(f"{pname}={self.act(repeated=True)}")
        g.used_blocks.add(b.name)

        def out_fn(env, b=b, fns=fns, cur=cur):
            inner_env = {k: f(env) for k, f in fns.items()}
            for pname, default, _ in b.ints:
                inner_env.setdefault(pname, default)
            inner_env[b.pattern[b.dim_index]] = cur.fn(env)
            return b.out.fn(inner_env)

        args = positional + keywords
        self.flow(src, f"{b.name}({', '.join(args)})" if args or g.int(0, 1) else b.name, E(None, out_fn))

    def finish(self) -> E:
        """The output: the current value, joined with any value nothing used."""
        g = self.g
        spec = self.spec
        if not self.lines:
            self.continue_with(g.pick(ACTIVATIONS), self.out_of(self.current))
        for name in spec.subnets:  # a parameter the body never applied: apply it at the end
            if name not in self.used_subnets:
                src, cur = (None, self.out_of(self.current)) if self.current is not None else self.start()
                self.apply_subnet(name, src, cur)
        if isinstance(self.current, Pending) and not self.unused() and g.int(0, 3):
            return self.current.out  # the last statement's value
        if self.current is None:
            self.current = g.pick(self.tensors())
        out = self.name(self.current)
        rest = [n for n in self.unused() if n != out and g.int(0, 3)]  # a few left unused
        if not rest:
            self.lines.append(f"return {out}")
            return self.values[out]
        items = [out, *rest]
        sizes = [self.values[n] for n in items]
        total = E(None, lambda env: sum(e.fn(env) for e in sizes))
        self.lines.append(f"return cat({', '.join(items)}, dim={self.cat_dim()})")
        return total


# ---------------------------------------------------------------- models


class ModelGen(Statements):
    """One model: statements over named values of concrete shapes."""

    def __init__(self, g: Gen, name: str):
        super().__init__(g, {})
        self.model = name

    # -- steps of a chain: (text, shape out)

    def layer(self, s: Shape) -> tuple[str, Shape]:
        g = self.g
        rank = len(s)
        options = ["act"]
        if rank in (2, 3) and s[-1].key is None:
            options += ["linear", "linear", "norm"]
        if rank == 3:
            options += ["mean"]
        if rank == 2:
            options += ["unsqueeze"]
        if rank == 4 and s[1].key is None:
            options += ["conv", "conv", "adaptive"] + ([] if _one_per_channel(s) else ["bn"])
            if s[2].value >= 2 and s[3].value >= 2:
                options.append("pool")
        if rank > 2 and all(d.key is None for d in s[1:]):
            options.append("flatten")
        kind = g.pick(options)
        last = s[-1].value
        if kind == "act":
            return g.pick(ACTIVATIONS), s
        if kind == "linear":
            out = g.int(1, 12)
            if g.int(0, 3) == 0:
                return f"Linear(out_features={g.size_text(out)})", s[:-1] + (lit(out),)
            return f"Linear({g.size_text(last)}, {g.size_text(out)})", s[:-1] + (lit(out),)
        if kind == "norm":
            return g.pick([f"LayerNorm({g.size_text(last)})", "LayerNorm()"]), s
        if kind == "mean":
            if g.int(0, 1):
                return "Mean(1, keepdim=True)", (s[0], lit(1), s[2])
            return "Mean(1)", (s[0], s[2])
        if kind == "unsqueeze":
            return "Unsqueeze(1)", (s[0], lit(1), s[1])
        if kind == "conv":
            out = g.int(1, 8)
            if g.int(0, 3) == 0:
                return f"Conv2d(out_channels={out}, kernel_size=1)", (s[0], lit(out), s[2], s[3])
            k = g.pick(["1", "3, padding=1"])
            return f"Conv2d({g.size_text(s[1].value)}, {out}, {k})", (s[0], lit(out), s[2], s[3])
        if kind == "bn":
            return g.pick([f"BatchNorm2d({s[1].value})", "BatchNorm"]), s
        if kind == "adaptive":
            return "AdaptiveAvgPool2d(1)", (s[0], s[1], lit(1), lit(1))
        if kind == "pool":
            return "MaxPool2d(2)", (s[0], s[1], halve(s[2]), halve(s[3]))
        total = 1
        for d in s[1:]:
            total *= d.value
        return "Flatten", (s[0], lit(total))

    def preserving(self, s: Shape, depth: int = 0) -> str:
        """A chain from ``s`` back to ``s``."""
        g = self.g
        parts = []
        flat = len(s) in (2, 3) and s[-1].key is None
        for _ in range(g.int(1, 2)):
            roll = g.int(0, 5)
            if roll == 0 and flat:
                d = g.size_text(s[-1].value)
                mid = g.int(1, 12)
                parts.append(g.pick([f"Linear({d}, {d})", f"Linear({d}, {mid}) -> ReLU -> Linear({mid}, {d})"]))
            elif roll == 1 and flat:
                parts.append(f"LayerNorm({s[-1].value})")
            elif roll in (0, 1) and len(s) == 4 and s[1].key is None:
                c = s[1].value
                norm = "" if _one_per_channel(s) else f" -> BatchNorm2d({c})"
                parts.append(f"Conv2d({c}, {c}, 3, padding=1){norm}")
            elif roll == 2 and depth < 2:
                use = self.block_use(s, preserving=True)
                parts.append(use[0] if use is not None else g.pick(ACTIVATIONS))
            elif roll == 3 and depth < 2:
                parts.append(f"Residual({self.preserving(s, depth + 1)})")
            else:
                parts.append(g.pick(ACTIVATIONS))
        return " -> ".join(parts)

    def block_use(self, s: Shape, preserving: bool = False) -> tuple[str, Shape] | None:
        """A use of a generated block on ``s`` (giving ``s`` back where ``preserving``)."""
        g = self.g
        land = "conv" if len(s) == 4 else "last"
        fits = [b for b in g.blocks if b.land == land and b.rank == len(s) and s[b.dim_index].key is None]
        fits = [b for b in fits if b.extra is None or self._joinable(s, b) is not None]
        if not fits or _one_per_channel(s):
            return None
        b = g.pick(fits)
        for _attempt in range(3):
            args: dict = {}
            for pname, default, kind in b.ints:
                if default is not None and g.int(0, 1):
                    continue
                if pname == "stride":
                    args[pname] = 1 if preserving else g.pick([1, 2])
                elif kind == "count":
                    args[pname] = g.int(0, 2)
                elif preserving and g.int(0, 1):
                    args[pname] = s[b.dim_index].value
                else:
                    args[pname] = g.int(1, 10)
            env = b.env_for(s, args)
            skip = None
            if b.extra is not None:
                skip = self._joinable(s, b)
                env[b.extra] = self.values[skip][b.dim_index].value
            out = b.transfer(s, env)
            if out is None or (preserving and out != s) or not self._subnets_ok(b, env):
                continue
            given: dict[str, str] = {}
            for pname in b.order:
                if pname == "skip":
                    given[pname] = skip
                elif pname in b.subnets:
                    ein, eout, may_none = b.subnets[pname]
                    a, z = ein.fn(env), eout.fn(env)
                    if not (may_none and a == z and g.int(0, 1)):
                        given[pname] = self._subnet_arg(b, a, z)
                elif pname in b.acts:
                    if g.int(0, 1):
                        given[pname] = g.pick(PLAIN_ACTIVATIONS)
                elif pname in args:
                    given[pname] = str(args[pname]) if pname in ("depth", "stride") else g.size_text(args[pname])
            texts = []
            positional = True
            for pname in b.order:
                if pname not in given:
                    positional = False
                    continue
                positional = positional and g.int(0, 3) > 0
                texts.append(given[pname] if positional else f"{pname}={given[pname]}")
            g.used_blocks.add(b.name)
            return (f"{b.name}({', '.join(texts)})" if texts or g.int(0, 1) else b.name), out
        return None

    def block_loop(self, s: Shape) -> tuple[str, Shape] | None:
        """``for w, r in [...] { B(w) -> B(w) * r }``: uses of one block that differ (a
        shortcut or a residual in some and not in others), as in a ResNet."""
        g = self.g
        land = "conv" if len(s) == 4 else "last"
        fits = [b for b in g.blocks if b.land == land and b.rank == len(s) and b.extra is None]
        fits = [b for b in fits if any(k == "size" and p != "stride" for p, _, k in b.ints)]
        if not fits or s[fits[0].dim_index].key is not None or _one_per_channel(s):
            return None
        b = g.pick(fits)
        sizes = [p for p, _, k in b.ints if k == "size" and p != "stride"]
        param = g.pick([p for p in sizes if p in b.tested] or sizes)
        required = [p for p, d, _ in b.ints if d is None and p != param]
        fixed = {p: g.int(1, 4) if k == "count" else g.int(1, 10) for p, _, k in b.ints if p in required}
        rows = [(g.pick([s[b.dim_index].value, g.int(1, 10)]), g.int(0, 2)) for _ in range(g.int(1, 3))]
        twice = g.int(0, 1)
        out = s
        for w, r in rows:
            for _ in range(1 + (r if twice else 0)):
                env = b.env_for(out, {**fixed, param: w})
                if not self._subnets_ok(b, env) or any(
                    shortcut and ein.fn(env) != eout.fn(env) for ein, eout, shortcut in b.subnets.values()
                ):
                    return None
                out = b.transfer(out, env)
                if out is None:
                    return None
        args = [f"{param}=w"] + [f"{p}={v}" for p, v in fixed.items()]
        args += [f"{p}={g.pick(PLAIN_ACTIVATIONS)}" for p, (_, _, shortcut) in b.subnets.items() if not shortcut]
        call = f"{b.name}({', '.join(args)})"
        g.used_blocks.add(b.name)
        if twice:
            items = "[" + ", ".join(f"({w}, {r})" for w, r in rows) + "]"
            return f"for w, r in {items} {{\n        {call} -> {call} * r\n    }}", out
        return f"for w in [{', '.join(str(w) for w, _ in rows)}] {{ {call} }}", out

    def _subnets_ok(self, b: BlockSpec, env: dict) -> bool:
        return all(ein.fn(env) >= 1 and eout.fn(env) >= 1 for ein, eout, _ in b.subnets.values())

    def _subnet_arg(self, b: BlockSpec, a: int, z: int) -> str:
        g = self.g
        if b.land == "last":
            if a != z:
                return g.pick([f"Linear({a}, {z})", f"Linear({a}, {z}) -> {g.pick(ACTIVATIONS)}"])
            return g.pick([g.pick(ACTIVATIONS), f"Linear({a}, {a})", f"LayerNorm({a}) -> ReLU"])
        if a != z:
            return f"Conv2d({a}, {z}, 1)"
        return g.pick([g.pick(ACTIVATIONS), f"Conv2d({a}, {a}, 3, padding=1)", f"BatchNorm2d({a})"])

    def _joinable(self, s: Shape, b: BlockSpec) -> str | None:
        """A named value that ``b``'s second input takes beside ``s``."""
        axis = b.dim_index % len(s)
        for name in self.tensors():
            t = self.values[name]
            if (
                len(t) == len(s)
                and t[axis].key is None
                and all(p == q for i, (p, q) in enumerate(zip(s, t)) if i != axis)
            ):
                return name
        return None

    def step(self, s: Shape, depth: int = 0) -> tuple[str, Shape]:
        g = self.g
        kind = g.pick(
            ["layer", "layer", "layer", "block", "block", "block", "block", "residual", "repeat", "for"]
            + ["tuple_for", "block_for", "block_for"]
        )
        flat = len(s) in (2, 3) and s[-1].key is None
        if kind == "block":
            return self.block_use(s) or self.layer(s)
        if kind == "residual" and depth < 2:
            if flat and g.int(0, 2) == 0:
                out, d = g.int(1, 12), s[-1].value
                short = g.pick([f"Linear({d}, {out})", f"Linear(out_features={out}) -> LayerNorm({out})"])
                if g.int(0, 1):
                    short = f"{short} if {d} != {out} else None"
                where = g.pick(["shortcut=", ""])
                return f"Residual(Linear({d}, {out}) -> ReLU, {where}{short})", s[:-1] + (lit(out),)
            none = g.pick(["", "", ", shortcut=None", ", None"])
            return f"Residual({self.preserving(s, depth + 1)}{none})", s
        if kind == "repeat":
            n = g.pick([0, 1, 2, 3])
            chain = self.preserving(s, depth + 1)
            n_text = g.pick([str(n), f"({n} + 0)"])
            if "->" in chain or g.int(0, 1):
                return f"({chain}) * {n_text}", s
            return f"{chain} * {n_text}", s
        if kind == "for":
            if flat:
                widths = [g.int(1, 10) for _ in range(g.int(1, 3))]
                body = g.pick([f"Linear(out_features=w) -> {g.pick(ACTIVATIONS)}", "Linear(out_features=w)"])
                return f"for w in {widths} {{ {body} }}", s[:-1] + (lit(widths[-1]),)
            if len(s) == 4 and s[1].key is None:
                widths = [g.int(1, 6) for _ in range(g.int(1, 2))]
                body = "Conv2d(out_channels=c, kernel_size=3, padding=1) -> ReLU"
                return f"for c in {widths} {{\n        {body}\n    }}", (s[0], lit(widths[-1]), s[2], s[3])
            return f"for i in range({g.int(1, 3)}) {{ {self.preserving(s, depth + 1)} }}", s
        if kind == "block_for":
            return self.block_loop(s) or self.layer(s)
        if kind == "tuple_for" and flat:
            rows = [(g.int(1, 10), g.int(0, 2)) for _ in range(g.int(1, 3))]
            if g.int(0, 1):
                items = f"stages{len(g.lets)}"
                g.lets[items] = rows
            else:
                items = "[" + ", ".join(f"({w}, {r})" for w, r in rows) + "]"
            body = f"Linear(out_features=w) -> ({g.pick(ACTIVATIONS)}) * r"
            return f"for w, r in {items} {{\n        {body}\n    }}", s[:-1] + (lit(rows[-1][0]),)
        return self.layer(s)

    def chain(self, s: Shape) -> tuple[str, Shape]:
        g = self.g
        parts = []
        for _ in range(g.int(1, 3)):
            text, s = self.step(s)
            parts.append(text)
        return g.pick([" -> ", " -> ", "\n        -> "]).join(parts), s

    # -- statements

    def statement(self) -> None:
        g = self.g
        kind = g.pick(["continue", "named"] * 3 + ["binop", "scalar", "cat", "stack", "chunk", "split"])
        kind = g.pick([kind] * 6 + ["subnet"])
        if kind == "continue" and self.current is not None:
            text, out = self.chain(self.out_of(self.current))
            if g.int(0, 2) == 0:
                self.expression(f"{self.name(self.current)} -> {text}", out, self.fresh("v"))
            else:
                self.continue_with(text, out)
            return
        src = g.pick(self.tensors())
        s = self.values[src]
        if kind in ("named", "continue"):
            text, out = self.chain(s)
            self.expression(f"{src} -> {text}", out, self.fresh("v") if g.int(0, 2) else None)
        elif kind == "binop":
            other = g.pick([n for n in self.tensors() if broadcast(s, self.values[n]) is not None])
            out = broadcast(s, self.values[other])
            left, right = (src, other) if g.int(0, 1) else (other, src)
            if g.int(0, 3) == 0:
                self.expression(f"{g.pick(['add', 'sub', 'mul', 'div'])}({left}, {right})", out, self.fresh("v"))
                return
            if g.int(0, 2) == 0:  # one side through a chain first
                left = f"({left} -> {self.preserving(self.values[left])})"
            op = g.pick(["+", "-", "*", "/"])
            self.expression(f"{left} {op} {right}", out, self.fresh("v") if g.int(0, 2) else None)
        elif kind == "scalar":
            number = g.pick(["0.5", "2", "1e-3", "3.0", "1"])
            op = g.pick(["+", "-", "*", "/"])
            text = f"{src} {op} {number}" if g.int(0, 1) else f"{number} {op} {src}"
            self.expression(text, s, self.fresh("v") if g.int(0, 2) else None)
        elif kind == "cat":
            axis = g.int(0, len(s) - 1)
            mates = [n for n in self.tensors() if _same_but(s, self.values[n], axis)]
            if len(mates) < 2 and len(s) in (2, 3) and s[-1].key is None:
                extra = self.fresh("v")
                width = g.int(1, 8)
                self.define(extra, f"{src} -> Linear({s[-1].value}, {width})", s[:-1] + (lit(width),))
                mates, axis = [src, extra], len(s) - 1
            items = [g.pick(mates) for _ in range(g.int(1, 3))]  # one alone: test_cat_or_stack_of_one_tensor
            total = self.values[items[0]][axis]
            for item in items[1:]:
                total = dim_sum(total, self.values[item][axis])
            first = self.values[items[0]]
            out = first[:axis] + (total,) + first[axis + 1 :]
            dim = g.pick([axis, axis - len(s)])
            keyword = f", dim={dim}" if dim or g.int(0, 1) else ""
            self.expression(f"cat({', '.join(items)}{keyword})", out, self.fresh("v") if g.int(0, 3) else None)
        elif kind == "stack":
            mates = [n for n in self.tensors() if self.values[n] == s]
            items = [g.pick(mates) for _ in range(g.int(1, 3))]
            axis = g.int(0, len(s))
            dim = g.pick([axis, axis - len(s) - 1])
            out = s[:axis] + (lit(len(items)),) + s[axis:]
            keyword = f", dim={dim}" if dim or g.int(0, 1) else ""
            self.expression(f"stack({', '.join(items)}{keyword})", out, self.fresh("v"))
        elif kind in ("chunk", "split"):
            axes = [i for i, d in enumerate(s) if d.key is None]
            if not axes:
                return
            axis = g.pick(axes)
            size = s[axis].value
            dim = g.pick([axis, axis - len(s)])
            if kind == "chunk":
                chunks = g.int(1, 4)
                piece = -(-size // chunks)
                sizes = [piece] * (size // piece) + ([size % piece] if size % piece else [])
                call = f"chunk({src}, {chunks}, dim={dim})"
            elif size > 1 and g.int(0, 1):  # (no piece of size 0: a Linear after it would be refused)
                cut = g.int(1, size - 1)
                sizes = [cut, size - cut]
                call = f"split({src}, [{cut}, {size - cut}], dim={dim})"
            else:
                piece = g.int(1, size)
                sizes = [piece] * (size // piece) + ([size % piece] if size % piece else [])
                call = f"split({src}, {piece}, dim={dim})"
            pieces = [s[:axis] + (lit(n),) + s[axis + 1 :] for n in sizes]
            if len(pieces) >= 2 and g.int(0, 1):
                self.destructure([self.fresh("p") for _ in pieces], call, pieces)
            else:
                whole = self.fresh("parts")
                self.settle()
                self.lines.append(f"{whole} = {call}")
                # some pieces taken, in any order (test_an_unindexed_piece, test_a_single_piece)
                order = self.g.draw(st.permutations(range(len(pieces))))
                for index in order[: g.int(1, len(pieces))]:
                    written = index - len(pieces) if g.int(0, 1) else index
                    self.expression(f"{whole}[{written}]", pieces[index], self.fresh("v"))
        elif kind == "subnet":
            f = self.fresh("f")
            self.lines.append(f"{f} = {self.preserving(s)}")
            target = g.pick([n for n in self.tensors() if self.values[n] == s])
            # applied once, or repeated (copies): a second application would share its weights (E115)
            self.expression(f"{target} -> {f}" + (" * 2" if g.int(0, 1) else ""), s, self.fresh("v"))

    def generate(self) -> tuple[str, list[Shape]]:
        g = self.g
        first = g.input_shape()
        inputs = {"x": first}
        for i in range(g.int(0, 2)):
            roll = g.int(0, 3)
            if roll == 0:
                shape = first
            elif roll == 1:  # broadcasts against the first: leading dims dropped, some sizes 1
                shape = tuple(lit(1) if g.int(0, 2) == 0 else d for d in first[g.int(0, len(first) - 1) :])
            elif roll == 2 and first[-1].key is None:
                shape = first[:-1] + (lit(g.int(1, 8)),)
            else:
                shape = g.input_shape()
            inputs[g.pick(["y", "z", "skip", "mask"]) + str(i)] = shape
        self.values.update(inputs)
        self.inputs = set(inputs)
        if len(inputs) == 1:
            self.current = "x"
        decls = [f"{n}: {g.shape_text(t)}" for n, t in inputs.items()]
        if g.int(0, 5) == 0:  # token indices, embedded first: the only integer tensor
            tokens = (first[0], g.symbol("T", 2, 5) if g.int(0, 1) else lit(g.int(1, 5)))
            decls.append(f"tokens: long{g.shape_text(tokens)}")
            width = g.int(1, 8)
            options = g.pick(["", ", padding_idx=0", ", max_norm=1.0"])
            self.define("emb", f"tokens -> Embedding({g.int(2, 20)}, {width}{options})", tokens + (lit(width),))
        for _ in range(g.int(1, 6)):
            self.statement()
        if isinstance(self.current, Pending) and not self.unused() and g.int(0, 2):
            outputs = [self.current.out]  # the last statement's value
        else:
            self.settle()
            names = [g.pick(self.tensors()) for _ in range(g.int(1, 2))]
            names += [n for n in self.unused() if n not in names and g.int(0, 3)]  # a few left unused
            if len(names) > 4 and g.int(0, 1):  # some of them folded into one scalar
                rest, names = names[3:], names[:3]
                total = self.fresh("total")
                self.lines.append(f"{total} = " + " + ".join(f"({n} -> Mean(()))" for n in rest))
                self.values[total] = ()
                names.append(total)
            self.lines.append("return " + ", ".join(names))
            outputs = [self.values[n] for n in names]
        body = "".join(f"    {line}\n" for line in self.lines)
        return f"model {self.model}({', '.join(decls)}) {{\n{body}}}\n", outputs


def _one_per_channel(s: Shape) -> bool:
    """[1, C, 1, 1]: BatchNorm refuses it, as torch does in training."""
    return len(s) == 4 and all(d.key is None for d in s[::2]) and s[0].value * s[2].value * s[3].value == 1


def _same_but(a: Shape, b: Shape, axis: int) -> bool:
    return len(a) == len(b) and all(p == q for i, (p, q) in enumerate(zip(a, b)) if i != axis)


# ---------------------------------------------------------------- the whole program


class Gen:
    """One program: constants, blocks, models; every choice drawn from hypothesis."""

    def __init__(self, draw):
        self.draw = draw
        self.blocks: list[BlockSpec] = []
        self.used_blocks: set[str] = set()
        self.lets: dict[str, object] = {}
        self.symbols: dict[str, int] = {}

    def pick(self, items):
        return self.draw(st.sampled_from(list(items)))

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def size_text(self, v: int) -> str:
        """A literal size as a spec writes it: a number, a constant, a little arithmetic."""
        roll = self.int(0, 9)
        named = [n for n, value in self.lets.items() if value == v and type(value) is int]
        if roll < 2 and named:
            return self.pick(named)
        if roll == 2 and v > 1:
            return f"{v - 1} + 1"
        if roll == 3 and v % 2 == 0:
            return f"2 * {v // 2}"
        return str(v)

    def symbol(self, name: str, lo: int, hi: int) -> D:
        if name not in self.symbols:
            self.symbols[name] = self.int(lo, hi)
        return D(self.symbols[name], name)

    def input_shape(self) -> Shape:
        ranks = [b.rank for b in self.blocks]  # mostly a rank some block takes
        rank = self.pick(ranks) if ranks and self.int(0, 2) else self.pick([2, 2, 3, 4])
        batch = self.symbol("N", 1, 3) if self.int(0, 4) else lit(self.int(1, 3))
        if rank == 2:
            return (batch, lit(self.int(1, 12)))
        if rank == 3:
            steps = self.symbol("T", 2, 5) if self.int(0, 1) else lit(self.int(1, 5))
            return (batch, steps, lit(self.int(1, 10)))
        h = self.symbol("H", 4, 9) if self.int(0, 1) else lit(self.int(2, 9))
        w = self.symbol("W", 4, 9) if self.int(0, 2) == 0 else lit(self.int(2, 9))
        return (batch, lit(self.int(1, 6)), h, w)

    def shape_text(self, shape: Shape) -> str:
        return "[" + ", ".join(d.key if d.key else self.size_text(d.value) for d in shape) + "]"

    def block(self, index: int) -> BlockSpec:
        land = self.pick(["last", "last", "conv"])
        rank = 4 if land == "conv" else self.pick([2, 3])
        spec = BlockSpec(f"{self.pick(['Block', 'Unit', 'Stage', 'Mix'])}{index}", land, rank)
        if land == "conv":
            spec.pattern = [self.pick(["N", "B"]), self.pick(["C", "F"]), "H", "W"]
        else:
            spec.pattern = [self.pick(["N", "B"]), *(["T"] if rank == 3 else []), self.pick(["D", "C", "E"])]
        worked = spec.pattern[spec.dim_index]
        inputs = {"x": name_e(worked)}
        decls = [f"x: [{', '.join(spec.pattern)}]"]
        if self.int(0, 4) == 0:  # a second input, joined with the first along the worked-on dim
            spec.extra = "S"
            other = list(spec.pattern)
            other[spec.dim_index] = "S"
            decls.append(f"skip: [{', '.join(other)}]")
            inputs["skip"] = name_e("S")
        required, optional = [], []
        names = self.draw(st.lists(st.sampled_from(["out", "hidden", "width"]), min_size=1, max_size=3, unique=True))
        for pname in names:
            default = self.pick([None, None, 4, 8])
            spec.ints.append((pname, default, "size"))
            (required if default is None else optional).append(pname if default is None else f"{pname}={default}")
        if self.int(0, 2) == 0:
            default = self.pick([None, 1, 2])
            spec.ints.append(("depth", default, "count"))
            (required if default is None else optional).append("depth" if default is None else f"depth={default}")
        if land == "conv" and self.int(0, 1):
            spec.stride = True
            spec.ints.append(("stride", 1, "size"))
            optional.append("stride=1")
        if self.int(0, 2) == 0:
            spec.subnets["inner"] = (lit_e(0), lit_e(0), False)
            required.append("inner")
        if self.int(0, 3) == 0:
            spec.subnets["proj"] = (lit_e(0), lit_e(0), True)
            optional.append("proj=None")
        if self.int(0, 2) == 0:
            spec.acts["act"] = self.pick(PLAIN_ACTIVATIONS)
            optional.append(f"act={spec.acts['act']}")
        params = required + optional
        spec.order = (["skip"] if spec.extra else []) + [p.split("=")[0] for p in params]
        sizes = [name_e(worked)] + [name_e(p) for p, _, k in spec.ints if k == "size" and p != "stride"]
        counts = [lit_e(self.int(0, 2))] + [name_e(p) for p, _, k in spec.ints if k == "count"]
        body = BodyGen(self, spec, inputs, sizes, counts)
        if spec.extra is not None:
            joined = E(f"{worked} + S", lambda env: env[worked] + env["S"])
            body.expression(f"cat(x, skip, dim={body.cat_dim()})", joined, "joined" if self.int(0, 1) else None)
        else:
            body.current = "x"
        for _ in range(self.int(1, 4)):
            body.step()
        spec.out = body.finish()
        spec.stride = body.strided
        pieces = decls + params
        signature = ", ".join(pieces)
        if len(signature) > 60 and self.int(0, 1):
            signature = "\n    " + ",\n    ".join(pieces) + ",\n"
        spec.text = f"block {spec.name}({signature}) {{\n" + "".join(f"    {line}\n" for line in body.lines) + "}\n"
        return spec


class Case(NamedTuple):
    files: dict  # file name -> text; "main.nn" is the one checked
    symbols: dict  # symbol -> its value
    outputs: list | None  # per model, its output shapes; None for a broken variant
    mutation: str | None = None

    @property
    def text(self) -> str:
        return self.files["main.nn"]


@st.composite
def programs(draw) -> Case:
    g = Gen(draw)
    for name, value in (("width", 8), ("hidden", 4), ("classes", 3)):
        if g.int(0, 2) == 0:
            g.lets[name.upper() if g.int(0, 3) == 0 else name] = value
    for index in range(g.pick([2, 1, 3, 0])):
        g.blocks.append(g.block(index))
    models, outputs = [], []
    for index in range(g.int(1, 2)):
        text, outs = ModelGen(g, f"M{index}").generate()
        models.append(text)
        outputs.append([tuple(d.value for d in shape) for shape in outs])
    lets = "".join(f"let {n} = {_let_text(v)}\n" for n, v in g.lets.items())
    used = [b for b in g.blocks if b.name in g.used_blocks]
    unused = [b for b in g.blocks if b.name not in g.used_blocks]
    blocks = used + unused[: g.int(0, 1)]
    if blocks and g.int(0, 3) == 0:  # the blocks and constants come from another file
        library = lets + "\n".join(b.text for b in blocks)
        names = ", ".join([b.name for b in blocks] + list(g.lets))
        files = {"main.nn": f'from "lib.nn" import {names}\n\n' + "\n".join(models), "lib.nn": library}
    else:
        order = blocks + models if g.int(0, 3) else models + blocks
        files = {"main.nn": lets + "\n".join(b.text if isinstance(b, BlockSpec) else b for b in order)}
    return Case(files, dict(g.symbols), outputs)


def _let_text(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f"({w}, {r})" for w, r in value) + "]"
    return str(value)


# ---------------------------------------------------------------- broken variants

_MUTATIONS = ["number", "arrow", "name", "rank", "drop_line", "swap_lines", "paren", "operator", "keyword"]


@st.composite
def broken(draw) -> Case:
    case = draw(programs())
    text = case.text
    kind = draw(st.sampled_from(_MUTATIONS))
    mutated = _mutate(draw, text, kind)
    files = dict(case.files)
    files["main.nn"] = mutated
    return case._replace(files=files, outputs=None, mutation=kind)


def _pick_match(draw, pattern: str, text: str):
    found = list(re.finditer(pattern, text))
    if not found:
        return None
    return draw(st.sampled_from(found))


def _mutate(draw, text: str, kind: str) -> str:
    def at(m, replacement: str) -> str:
        return text[: m.start()] + replacement + text[m.end() :]

    if kind == "number":
        m = _pick_match(draw, r"(?<![\w.])\d+(?![\w.])", text)
        if m:
            numbers = [0, 1, 2, 3, 5, 16, 100]
            before = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
            if before.startswith(("model ", "block ")) and before.rfind("[") > before.rfind("]"):
                numbers.append(2**40)  # in a declared shape; as a count: test_a_huge_repetition_count
            return at(m, str(draw(st.sampled_from(numbers))))
    elif kind == "arrow":
        m = _pick_match(draw, r"->", text)
        if m:
            return at(m, draw(st.sampled_from(["", " ", "-", ">", ",", "+"])))
    elif kind == "name":
        m = _pick_match(draw, r"\b[A-Za-z_]\w*\b", text)
        if m:
            word = m.group()
            how = draw(st.integers(0, 3))
            if how == 0 and len(word) > 1:
                i = draw(st.integers(0, len(word) - 1))
                word = word[:i] + word[i + 1 :]
            elif how == 1 and len(word) > 1:
                word = word[1] + word[0] + word[2:]
            elif how == 2:
                word = word + draw(st.sampled_from(["s", "x", "1", "_"]))
            else:
                word = word.swapcase()
            return at(m, word)
    elif kind == "rank":
        m = _pick_match(draw, r"(\w+): \[([^\]]*)\]", text)
        if m:
            dims = [d.strip() for d in m.group(2).split(",") if d.strip()]
            if draw(st.booleans()) and dims:
                dims.pop(draw(st.integers(0, len(dims) - 1)))
            else:
                dims.insert(draw(st.integers(0, len(dims))), draw(st.sampled_from(["1", "3", "K"])))
            return at(m, f"{m.group(1)}: [{', '.join(dims)}]")
    elif kind in ("drop_line", "swap_lines"):
        lines = text.split("\n")
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "drop_line":
            del lines[i]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    elif kind == "paren":
        m = _pick_match(draw, r"[()\[\]{}]", text)
        if m:
            return at(m, draw(st.sampled_from(["", "(", ")", "]", "}"])))
    elif kind == "operator":
        m = _pick_match(draw, r" [-+*/] | = |==|!=", text)
        if m:
            return at(m, draw(st.sampled_from([" + ", " * ", " // ", " % ", " == ", " -> ", " = "])))
    elif kind == "keyword":
        m = _pick_match(draw, r"\b(dim|shortcut|out_features|padding|kernel_size|keepdim)=", text)
        if m:
            return at(m, draw(st.sampled_from(["dims=", "shortcut=None, shortcut=", "", "bias="])))
    return text + draw(st.sampled_from(["\n}", "\nmodel", "\nReLU", " ->"]))


# ---------------------------------------------------------------- the properties


def _check(case: Case, tmp: Path | None):
    """Check ``case`` (from files in ``tmp`` when it imports); never raises."""
    if len(case.files) == 1:  # named as build() names it: a bare chain's model is named after its file
        return nndsl.check_source(case.text), case.text
    assert tmp is not None
    for name, text in case.files.items():
        (tmp / name).write_text(text)
    return nndsl.check_file(tmp / "main.nn"), tmp / "main.nn"


def _fingerprint(result) -> list:
    return [
        (d.severity, d.code, d.message, d.span, d.label, d.secondary, d.help, d.notes, d.source.name)
        for d in result.diagnostics
    ]


def _symbols(d) -> set:
    out = set()
    for atom in d.atoms():
        if isinstance(atom, Sym):
            out.add(atom)
        else:  # a floor or a scaled size: the symbols inside
            out |= _symbols(atom.num if hasattr(atom, "num") else atom.base)
    return out


def _concrete(t, values: dict) -> tuple[int, ...]:
    """The sizes of a checked type, its symbols given ``values`` (3 for a symbol they lack)."""
    out = []
    for d in t.shape.dims:
        if isinstance(d, Poly):
            d = substitute(d, {a: values.get(a.name, 3) for a in _symbols(d)})
        assert isinstance(d, int), f"size {d} left symbolic"
        out.append(d)
    return tuple(out)


def _input(t, values: dict):
    dims = _concrete(t, values)
    if t.dtype in ("int64", "int32"):
        return torch.randint(0, 2, dims, dtype=getattr(torch, t.dtype))
    return torch.randn(dims, dtype=getattr(torch, t.dtype))


def check_case(case: Case, tmp: Path, sources: list[str]) -> None:
    """Properties 1 to 4 for one program; the emitted source goes to ``sources`` for ruff."""
    try:
        result, spec = _check(case, tmp)
        for d in result.diagnostics:
            assert d.code in CATALOGUE, (d.code, d.message)
            render_text(d)
            render_short(d)
            d.to_json()
    except Exception as exc:  # property 1: any exception is a bug
        raise AssertionError(f"check raised {exc!r} on:\n{case.text}") from exc
    again, _ = _check(case, tmp)
    assert _fingerprint(again) == _fingerprint(result), "checking twice gave different diagnostics"
    errors = [f"{d.code} {d.message} at {d.line_col}" for d in result.errors]
    if case.outputs is not None:  # property 4: what the generator built as valid is valid
        assert result.ok, f"a valid program is rejected: {errors}\n{case.text}"
        got = [[_concrete(t, case.symbols) for t in m.outputs] for m in result.program.models]
        assert got == case.outputs, f"checked outputs {got}, the generator computed {case.outputs}\n{case.text}"
    if not result.ok:
        assert result.errors
        with pytest.raises(nndsl.SpecError):
            nndsl.compile_spec(spec)
        return
    source = emit_program(result.program)
    assert source == emit_program(again.program), "emission is not deterministic"
    compiled = nndsl.compile_spec(spec)
    assert compiled.count("\n") == source.count("\n")  # the same, but for the file's name
    sources.append(source)
    if any(d.code == "W301" for d in result.diagnostics):
        return  # a size the checker could not verify: the symbols' values decide
    for model in result.program.models:
        sizes = [math.prod(_concrete(t, case.symbols)) for t in model.input_types]
        if model.param_count > 10**7 or sum(sizes) > 10**6:
            continue  # a mutated number made it too large to run
        module = nndsl.build(spec, model=model.name).eval()
        symbolic = any(isinstance(d, Poly) for t in model.input_types for d in t.shape.dims)
        if case.outputs is None and symbolic:
            # the generator's values for the symbols fit the program it wrote; a broken variant
            # may need others (a 3x3 kernel applied twice needs W >= 5), which nothing checks
            continue
        inputs = [_input(t, case.symbols) for t in model.input_types]
        with torch.no_grad():
            out = module(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        want = [_concrete(t, case.symbols) for t in model.outputs]
        assert [tuple(o.shape) for o in outs] == want, f"{model.name}: torch gives other shapes\n{case.text}"
        count = sum(p.numel() for p in module.parameters())
        assert count == model.param_count, (
            f"{model.name}: torch has {count} parameters, the checker {model.param_count}"
        )


def assert_ruff_clean(directory: Path, sources: list[str]) -> None:
    """Every source passes ``ruff check`` and ``ruff format --check`` under ruff's defaults."""
    for index, source in enumerate(sources):
        (directory / f"generated_{index}.py").write_text(source)
    (directory / "ruff.toml").write_text("")
    config = ["--config", str(directory / "ruff.toml")]
    for command in (["check"], ["format", "--check"]):
        run = subprocess.run([ruff_executable(), *command, *config, str(directory)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


def _run(strategy, n: int, tmp_path: Path) -> None:
    sources: list[str] = []
    work = tmp_path / "specs"
    work.mkdir()

    @settings(max_examples=EXAMPLES or n, **_SETTINGS)
    @given(strategy)
    def prop(case):
        check_case(case, work, sources)

    prop()
    out = tmp_path / "generated"
    out.mkdir()
    assert_ruff_clean(out, sources)


def test_generated_programs_check_build_and_run(tmp_path):
    _run(programs(), 250, tmp_path)


def test_broken_programs_give_diagnostics(tmp_path):
    _run(broken(), 250, tmp_path)


# ---------------------------------------------------------------- bugs the fuzzing found

# Each was found by the generators above, and fixed.


def _emitted_is_ruff_clean(tmp_path: Path, text: str) -> None:
    result = nndsl.check_source(text)
    assert result.ok, [d.message for d in result.errors]
    assert_ruff_clean(tmp_path, [emit_program(result.program)])


def _runs_as_checked(text: str, *inputs) -> None:
    result = nndsl.check_source(text)
    assert result.ok, [d.message for d in result.errors]
    model = result.program.models[0]
    module = nndsl.build(text).eval()
    with torch.no_grad():
        out = module(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    sizes = {"N": inputs[0].shape[0]}
    assert [tuple(o.shape) for o in outs] == [_concrete(t, sizes) for t in model.outputs]
    assert sum(p.numel() for p in module.parameters()) == model.param_count


def test_cat_or_stack_of_one_tensor():
    # was E114 "expected a tensor, got an integer": a tensor taken for a tuple of tensors
    result = nndsl.check_source("model M(x: [N, 4]) { return cat(x, dim=1), stack(x) }")
    assert result.ok, [d.message for d in result.diagnostics]
    assert [str(t) for t in result.program.models[0].outputs] == ["[N, 4]", "[1, N, 4]"]


def test_a_statement_opening_with_a_paren_starts_a_new_statement():
    # was E106 "inplace of ReLU must be True or False": the line was read as a call of `ReLU`
    text = "model M(x: [N, 8]) {\n    y = x -> ReLU\n    (Linear(8, 8) -> ReLU) * 2\n}"
    _runs_as_checked(text, torch.randn(2, 8))


def test_an_unused_value_is_no_dead_variable(tmp_path):
    # was F841: `v = x + x` bound a variable nothing read
    _emitted_is_ruff_clean(tmp_path, "model M(x: [N, 4]) {\n    v = x + x\n    return x -> ReLU\n}")


@pytest.mark.parametrize(
    "body",
    [
        "parts = chunk(x, 2, dim=1)\n    return parts[0]",  # was RUF059: the unindexed piece
        "a, b = chunk(x, 2, dim=1)\n    return a",  # was RUF059
        "parts = chunk(x, 1, dim=1)\n    return parts[0]",  # was `x, = torch.chunk(...)`, unformatted
    ],
)
def test_pieces_are_ruff_clean(tmp_path, body):
    _emitted_is_ruff_clean(tmp_path, f"model M(x: [N, 4]) {{\n    {body}\n}}")


def test_many_pieces_and_outputs_are_laid_out_as_ruff_does(tmp_path):
    # were unformatted: a long unpacking line, and a return annotation of six tensors
    names = ", ".join(f"piece{i}" for i in range(12))
    _emitted_is_ruff_clean(
        tmp_path, f"model M(x: [N, 12]) {{\n    {names} = split(x, 1, dim=1)\n    return {names}\n}}"
    )
    _emitted_is_ruff_clean(tmp_path, "model M(x: [N, 4], y: [N, 4]) { return x, x, x, y, y, y }")


@pytest.mark.parametrize(
    "body",
    [
        "Residual(Linear(D, out), shortcut=None if D == out else Linear(D, out))",  # was SIM201
        "body = Linear(D, out)\n    body if D != out else Residual(body)",  # was SIM202
    ],
)
def test_a_negated_condition(tmp_path, body):
    _emitted_is_ruff_clean(
        tmp_path, f"block B(x: [N, D], out) {{\n    {body}\n}}\nmodel M(x: [N, 8]) {{ B(8) -> B(4) }}"
    )


@pytest.mark.parametrize(
    "body",
    [
        "body = Linear(out_features=out)\n    Residual(body) if D == out else body",
        "Residual(Linear(out_features=out), shortcut=Linear(out_features=out) if D != out else None)",
    ],
)
def test_a_condition_on_a_size_no_layer_names(body):
    # was NameError: name 'D' is not defined, in the constructor
    text = f"block B(x: [N, D], out) {{\n    {body}\n}}\nmodel M(x: [N, 8]) {{ B(8) -> B(4) }}"
    _runs_as_checked(text, torch.randn(2, 8))


def test_a_sub_network_argument_applied_twice():
    # was accepted with 144 parameters counted, where the module shares one Linear (72)
    text = "block W(x: [N, D], inner) { x -> inner -> inner }\nmodel M(x: [N, 8]) { W(Linear(8, 8)) }"
    assert nndsl.check_source(text).program.models[0].param_count == 72
    _runs_as_checked(text, torch.randn(2, 8))


def test_a_split_of_a_symbolic_size():
    # was accepted silently: the model only runs for H == 4
    result = nndsl.check_source("model M(x: [N, H]) {\n    a, b = split(x, [1, 3], dim=1)\n    return a, b\n}")
    assert {"W301", "W303"} & {d.code for d in result.diagnostics}


@pytest.mark.parametrize(
    "text",
    [
        # AttributeError in blocks._match: a second input whose value had an error
        "block B(x: [N, D], skip: [N, S]) { cat(x, skip, dim=1) }\n"
        "model M(x: [N, 4]) {\n    y = x -> Lineer(4, 4)\n    x -> B(y)\n}",
        # AssertionError in apply: `Residual(f) if c else f` where f had an error
        "block B(x: [N, D], w) {\n    f = Lineer(D, w)\n    Residual(f) if D == w else f\n}\nmodel M(x: [N, 4]) { B(8) }",
    ],
)
def test_an_error_upstream_is_reported_once(text):
    assert [d.code for d in nndsl.check_source(text).diagnostics] == ["E101"]


def test_a_label_repeated_on_one_span_renders():
    # was IndexError in diagnostics._underlines (an internal error from the CLI)
    (diag,) = nndsl.check_source("model M(x: [N, 4]) { return cat(x, x, dim=2) }").diagnostics
    assert "dim 2 is out of range" in render_text(diag)


def test_mul_of_two_numbers():
    # was IndexError in _tensor_binop
    result = nndsl.check_source("model M(x: [N, 4]) { return x * mul(2, 3) }")
    assert result.ok or result.errors


def test_a_tensor_as_a_parameter_default():
    # was accepted, and compiling it raised TypeError: not a literal type: Source
    text = "block B(x: [N, D], extra=x) { x -> ReLU }\nmodel M(x: [N, 4]) { B }"
    result = nndsl.check_source(text)
    if result.ok:
        nndsl.compile_spec(text)


@pytest.mark.parametrize(
    "body",
    [
        "Linear(D, D) -> act -> Linear(D, D) -> act",
        "for w in [4, 8] { Linear(out_features=w) -> act }",
        "act * 2",
    ],
)
def test_an_activation_argument_applied_twice(body):
    # an activation has no weights to share: an MLP block with `act=ReLU` is a common pattern
    _runs_as_checked(f"block B(x: [N, D], act=ReLU) {{ {body} }}\nmodel M(x: [N, 4]) {{ B }}", torch.randn(2, 4))


@pytest.mark.parametrize("body", ["ReLU * 10000000000", "for i in range(10000000000) { ReLU }"])
def test_a_huge_repetition_count(body):
    # a count beyond what any network needs is a diagnostic, not an endless unrolling
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))\n"
        "import nndsl\n"
        "result = nndsl.check_source(sys.argv[1])\n"
        "print([d.code for d in result.diagnostics])\n"
    )
    text = f"model M(x: [N, 4]) {{ {body} }}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        run = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True, timeout=3, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("checking did not end in 3 s")
    assert run.returncode == 0, run.stderr[-300:]
    assert run.stdout.strip() in ("['E107']", "['E110']"), run.stdout
