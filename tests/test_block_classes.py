"""Uses of a block that share a class compute what the checker checked, whatever differs between them.

A generator writes blocks whose tensor methods (Reshape, View, Permute, Transpose, Mean, Sum,
Squeeze, Unsqueeze, Flatten, Unflatten), shortcut conditions and loop bodies take different
arguments or sizes at different uses: arguments computed from the block's parameters and from the
sizes its input pattern matched, loops whose bodies' arguments follow the loop variable,
repetitions and conditional shortcuts whose length differs, residuals present at one use and not
at another. Each spec is compiled, the emitted module built with torch and run on tensors of the
declared shapes; every block use's output shape (caught with hooks, in call order) must be the
checker's, the parameter count and state_dict keys the checker's, and the classes shared between
uses must compute what a class per use computes (``emit_program(share=False)``) with the same
weights; the emitted files pass ruff. Specs that once went wrong are kept as fixed cases.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from math import prod

import pytest
from conftest import assert_ruff_clean
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.backends.torch_module import class_names, emit_program
from nndsl.ir import BlockNode, walk
from nndsl.lowering import lower
from nndsl.shapes import Sym, substitute

torch = pytest.importorskip("torch")

Dims = tuple[int, int, int]  # the sizes a use's input pattern [N, A, B, C] matches
Draw = Callable[[st.SearchStrategy], object]

_SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


# ---------------------------------------------------------------- running a spec


def _sizes(type_, n: int) -> tuple[int, ...]:
    return tuple(substitute(d, {Sym("N"): n}) for d in type_.shape.dims)


def _build(source: str, program, model):
    namespace: dict = {}
    exec(compile(source, "<emitted>", "exec"), namespace)  # our own generated code
    return namespace[class_names(program)[model.name]]().eval()


def _run_recording(module, block_classes: set[str], inputs: list) -> tuple[tuple, list[tuple[int, ...]]]:
    """The module's outputs, and each block module's output shape in the order they were called."""
    shapes: list = []
    handles = []
    for sub in module.modules():
        if type(sub).__name__ in block_classes:

            def before(sub, args):
                sub._nndsl_slot = len(shapes)
                shapes.append(None)

            def after(sub, args, out):
                shapes[sub._nndsl_slot] = tuple(out.shape)

            handles += [sub.register_forward_pre_hook(before), sub.register_forward_hook(after)]
    with torch.no_grad():
        out = module(*inputs)
    for handle in handles:
        handle.remove()
    return (out if isinstance(out, tuple) else (out,)), shapes


def assert_uses_compute_what_was_checked(text: str) -> tuple[str, str]:
    """Checks, builds and runs ``text``; returns the emitted sources (shared classes, a class per use)."""
    result = nndsl.check_source(text, "uses.nn")
    assert result.ok, [d.message for d in result.errors]
    program = result.program
    shared, longhand = emit_program(program), emit_program(program, share=False)
    prefixes = lower(program).prefixes
    for model in program.complete_models:
        uses = [node for node in walk(model.graph) if isinstance(node, BlockNode)]
        module, reference = _build(shared, program, model), _build(longhand, program, model)
        for built in (module, reference):
            assert sum(p.numel() for p in built.parameters()) == model.param_count, text
        # the state_dict keys are those the checked graph predicts (what exports and training rely on)
        keys = {k.rsplit(".", 1)[0] for k in module.state_dict()}
        assert keys == {prefixes[node.id] for node in walk(model.graph) if node.tag == "layer" and node.params}, text
        state = reference.state_dict()  # the same weights, matched in order (the attribute names differ)
        assert [v.shape for v in module.state_dict().values()] == [v.shape for v in state.values()], text
        module.load_state_dict(dict(zip(module.state_dict(), state.values())))
        for n in (2, 3):
            torch.manual_seed(n)
            inputs = [torch.randn(*_sizes(t, n), dtype=getattr(torch, t.dtype)) for t in model.input_types]
            want = [_sizes(use.types[-1], n) for use in uses]
            got, got_uses = _run_recording(module, _block_names(module), inputs)
            expected, reference_uses = _run_recording(reference, _block_names(reference), inputs)
            assert [tuple(g.shape) for g in got] == [_sizes(t, n) for t in model.outputs], text
            assert got_uses == want, f"{text}\nuses give {got_uses}, the checker {want}"
            assert reference_uses == want, f"{text}\na class per use gives {reference_uses}, the checker {want}"
            for g, e in zip(got, expected):
                torch.testing.assert_close(g, e, rtol=0, atol=0, msg=text)
    return shared, longhand


def _block_names(module) -> set[str]:
    """The classes of ``module``'s submodules that are block classes (each states its block)."""
    return {type(m).__name__ for m in module.modules() if (type(m).__doc__ or "").startswith("block ")}


# ---------------------------------------------------------------- blocks whose uses differ


@dataclass(frozen=True)
class Block:
    """A block definition over ``x: [N, A, B, C]``, the blocks it uses, and how to draw one use:
    ``use(draw, dims)`` gives the call as written and the sizes of its output."""

    name: str
    text: str
    use: Callable[[Draw, Dims], tuple[str, Dims]]
    needs: tuple[str, ...] = ()
    batch: bool = False  # its body uses the batch size N, which must then be a number


def _divisor(draw: Draw, n: int) -> int:
    return draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))


def _swapped(dims: Dims, a: int, b: int) -> Dims:
    full = [0, *dims]
    full[a], full[b] = full[b], full[a]
    return tuple(full[1:])


def _reduced(dims: Dims, ds) -> Dims:
    ds = {d % 4 for d in (ds if isinstance(ds, tuple) else (ds,))}
    return tuple(1 if i + 1 in ds else size for i, size in enumerate(dims))


def _heads(draw, dims):
    return f"Heads({_divisor(draw, prod(dims))})", dims


def _swap(draw, dims):
    d = draw(st.sampled_from([1, 2, 3, -1, -2]))
    if draw(st.booleans()):
        return f"Swap({d})", _swapped(dims, d % 4, 3)
    e = draw(st.sampled_from([1, 2, 3]))
    return f"Swap({d}, e={e})", _swapped(dims, d % 4, e)


def _order(draw, dims):
    perm = draw(st.permutations([1, 2, 3]))
    return f"Order((0, {', '.join(map(str, perm))}))", tuple(dims[p - 1] for p in perm)


def _reduce(draw, dims):
    d = draw(st.one_of(st.sampled_from([1, 2, 3, -1]), st.sampled_from([(1, 2), (2, 3), (1, 3), (1, 2, 3)])))
    return f"Reduce({d})", _reduced(dims, d)


def _drop(draw, dims):
    d, keep = draw(st.sampled_from([1, 2, 3])), draw(st.booleans())
    return f"Drop({d}, {keep})", _reduced(dims, d)


def _pinch(draw, dims):
    return f"Pinch({draw(st.sampled_from([1, 2, 3]))})", dims


def _fold(draw, dims):
    return f"Refold({_divisor(draw, dims[0] * dims[1])})", dims


def _res(draw, dims):
    k, d = draw(st.integers(0, 2)), draw(st.sampled_from([1, 2, 3]))
    return f"Res({k}, d={d})", dims


def _opt(draw, dims):
    out = draw(st.sampled_from([dims[2], dims[2], 1, dims[2] + 1]))
    return f"Opt({out})", (dims[0], dims[1], out)


def _loop(draw, dims):
    s, k = draw(st.sampled_from([1, 2, 3])), draw(st.integers(0, 3))
    for d in (s, 3):
        dims = _swapped(dims, 1, d)
    for i in range(k):
        dims = _reduced(dims, 1 + (s + i) % 3)
    return f"Loop({s}, {k})", dims


def _rep(draw, dims):
    d, k = draw(st.sampled_from([1, 2, 3])), draw(st.integers(1, 3))
    for _ in range(k):
        dims = _swapped(dims, 1, d)
    return f"Rep({d}, {k})", dims


def _outer(draw, dims):
    h, d = _divisor(draw, prod(dims)), draw(st.sampled_from([1, 2, 3]))
    dims = _swapped(dims, d, 3)
    for e in (d, 1):
        dims = _reduced(dims, e)
    return f"Outer({h}, {d})", dims


def _wrap(draw, dims):
    d, e = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2, 3]))
    dims = _reduced(_swapped(dims, 1, d), e)
    return f"Wrap(Transpose(1, {d}) -> Mean({e}, keepdim=True))", _swapped(_swapped(dims, 1, 3), 1, 3)


def _local(draw, dims):
    return f"Local({_divisor(draw, prod(dims))})", dims


def _inner_wrap(draw, dims):
    d = draw(st.sampled_from([1, 2, 3]))
    return f"Pass({d})", _reduced(_swapped(dims, 1, d), d)


def _project(draw, dims):
    d, k = draw(st.sampled_from([1, 2, 3])), draw(st.integers(0, 2))
    return f"Project({d}, {k})", dims


def _nest(draw, dims):
    return f"Nest({draw(st.integers(0, 3))})", dims


def _sub(draw, dims):
    return f"Sub({draw(st.integers(0, 2))})", dims


def _pick(draw, dims):
    t = draw(st.sampled_from([None, None, 1, 2]))
    step = t or 1
    return f"Pick({t})", (dims[0], (dims[1] - 1) // step + 1, (dims[2] - 1) // step + 1)


def _widen(draw, dims):
    k = draw(st.integers(0, 2 if dims[2] <= 4 else 0))
    return f"Widen({k})", (dims[0], dims[1], dims[2] * (k + 1))


def _zip(draw, dims):
    w = draw(st.sampled_from([1, 2, 3]))
    for a, b in ((w, 2), (1, w)):
        dims = _swapped(dims, a, b)
    return f"Zip({w})", dims


def _batch(draw, dims):
    return f"Batch({_divisor(draw, prod(dims))})", dims


def _hand(draw, dims):
    d, e = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2, 3]))
    dims = _swapped(_swapped(_reduced(_swapped(dims, 1, e), e), 1, d), 1, d)
    return f"Hand(Transpose(1, {e}) -> Mean({e}, keepdim=True), {d})", dims


def _cond(draw, dims):
    return f"Cond({draw(st.integers(0, 6))})", dims


def _pool(draw, dims):
    call, dims = _pick(draw, dims)
    return call.replace("Pick(None)", "Pool()").replace("Pick(", "Pool(s="), dims


def _give(draw, dims):
    return f"Give({draw(st.integers(0, 3))})", dims


def _given(draw, dims):
    c, k = dims[2], draw(st.integers(0, 3))
    return f"Given(Linear({c}, {c}) -> ReLU, {k})", dims


BLOCKS = {
    b.name: b
    for b in [
        Block(
            "Heads",
            "block Heads(x: [N, A, B, C], h) {\n"
            "    Reshape((-1, A * B * C)) -> View((-1, h, A * B * C // h)) -> Transpose(1, 2)"
            " -> Reshape((-1, A, B, C))\n}",
            _heads,
        ),
        Block("Swap", "block Swap(x: [N, A, B, C], d, e=3) { Transpose(d, e) }", _swap),
        Block("Order", "block Order(x: [N, A, B, C], order) { Permute(order) }", _order),
        Block("Reduce", "block Reduce(x: [N, A, B, C], d) { Sum(d, keepdim=True) -> Mean(d, keepdim=True) }", _reduce),
        Block(
            "Drop",
            "block Drop(x: [N, A, B, C], d, keep) {\n"
            "    Mean(d, keepdim=keep) -> Reshape((-1, 1 if d == 1 else A, 1 if d == 2 else B, 1 if d == 3 else C))\n}",
            _drop,
        ),
        Block(
            "Pinch",
            "block Pinch(x: [N, A, B, C], d) { Unsqueeze(d) -> Squeeze(d) -> Unsqueeze(d) -> Flatten(d, d + 1) }",
            _pinch,
        ),
        Block(
            "Refold",
            "block Refold(x: [N, A, B, C], h) { Flatten(1, 2) -> Unflatten(1, (h, A * B // h)) -> Reshape((-1, A, B, C)) }",
            _fold,
        ),
        Block(
            "Res",
            "block Res(x: [N, A, B, C], k, d=1) {\n"
            "    Residual(Linear(C, C), shortcut=(Transpose(d, 2) -> Transpose(d, 2) -> Linear(C, C)) * k"
            " if k > 0 else None)\n}",
            _res,
        ),
        Block(
            "Opt",
            "block Opt(x: [N, A, B, C], o) { Residual(Linear(C, o) -> Transpose(1, 2) -> Transpose(1, 2))"
            " if C == o else Linear(C, o) }",
            _opt,
        ),
        Block(
            "Loop",
            "block Loop(x: [N, A, B, C], s, k) {\n"
            "    for d in [s, 3] { Transpose(1, d) } -> for i in range(k) { Mean(1 + (s + i) % 3, keepdim=True) }\n}",
            _loop,
        ),
        Block("Rep", "block Rep(x: [N, A, B, C], d, k) { (Transpose(1, d) -> Unsqueeze(d) -> Squeeze(d)) * k }", _rep),
        Block(
            "Outer",
            "block Outer(x: [N, A, B, C], h, d) { Heads(h) -> Swap(d) -> for e in [d, 1] { Reduce(e) } }",
            _outer,
            ("Heads", "Swap", "Reduce"),
        ),
        Block(
            "Local",
            "block Local(x: [N, A, B, C], h) {\n    g = A * B * C // h\n"
            "    Reshape((-1, g, h)) -> Transpose(1, 2) -> Reshape((-1, A, B, C))\n}",
            _local,
        ),
        Block(
            "Pass",
            "block Pass(x: [N, A, B, C], d) { Wrap(Transpose(1, d) -> Mean(d, keepdim=True)) }",
            _inner_wrap,
            ("Wrap",),
        ),
        Block(
            "Project",
            "block Project(x: [N, A, B, C], d, k) {\n"
            "    Residual(Linear(C, C), shortcut=Swap(d) -> Swap(d) -> Reshape((-1, A, B, C)) if d != 3 else None)"
            " if k > 0 else Linear(C, C)\n"
            "    -> for i in range(k) { Residual(Transpose(1, d) -> Transpose(1, d),"
            " shortcut=Linear(C, C) * (i + 1) if d + i > 2 else None) }\n}",
            _project,
            ("Swap",),
        ),
        Block(
            "Nest",
            "block Nest(x: [N, A, B, C], k) {\n"
            "    Residual(Linear(C, C), shortcut=Residual(Linear(C, C), shortcut=Swap(1) -> Swap(1) if k > 2 else None)"
            " if k > 1 else None)\n}",
            _nest,
            ("Swap",),
        ),
        Block(
            "Sub",
            "block Sub(x: [N, A, B, C], k) {\n"
            "    Wrap(Residual(Linear(C, C), shortcut=(Transpose(1, 2) -> Transpose(1, 2)) * k if k > 0 else None))\n}",
            _sub,
            ("Wrap",),
        ),
        Block(
            "Widen",
            "block Widen(x: [N, A, B, C], k) { for i in range(k) { Linear(C * (i + 1), C * (i + 2)) -> Tanh } }",
            _widen,
        ),
        Block("Zip", "block Zip(x: [N, A, B, C], w) { for a, b in [(w, 2), (1, w)] { Transpose(a, b) } }", _zip),
        Block(
            "Batch",
            "block Batch(x: [N, A, B, C], h) { Reshape((N, -1)) -> View((N, h, A * B * C // h)) -> Transpose(1, 2)"
            " -> Reshape((N, A, B, C)) }",
            _batch,
            batch=True,
        ),
        Block(
            "Hand",
            "block Hand(x: [N, A, B, C], f, d) { Wrap(f -> Transpose(1, d)) -> Transpose(1, d) }",
            _hand,
            ("Wrap",),
        ),
        Block(
            "Cond",
            "block Cond(x: [N, A, B, C], k) { Wrap(Residual(Linear(C, C), shortcut=Linear(C, C) if A > k else None)) }",
            _cond,
            ("Wrap",),
        ),
        Block("Pool", "block Pool(x: [N, A, B, C], s=None) { MaxPool2d(1, stride=s) }", _pool),
        Block("Pick", "block Pick(x: [N, A, B, C], t) { Pool(s=t) }", _pick, ("Pool",)),
        Block(
            "Given",
            "block Given(x: [N, A, B, C], f, k) { Residual(Linear(C, C), shortcut=f if k > 1 else None) }",
            _given,
        ),
        Block("Give", "block Give(x: [N, A, B, C], k) { Given(Linear(C, C) -> Tanh, k) }", _give, ("Given",)),
        Block(
            "Wrap",
            "block Wrap(x: [N, A, B, C], f) { f -> Transpose(1, 3) -> Transpose(1, 3) }",
            _wrap,
        ),
    ]
}


# ---------------------------------------------------------------- what went wrong once

#: uses whose conditional shortcuts differ in length shared the class of the first one
SHORTCUT_LENGTHS = """\
block B(x: [N, C], k) { Residual(Linear(C, C), shortcut=(Linear(C, C) -> Tanh) * k if k > 0 else None) }
model M(a: [N, 4]) {
    a -> B(0) -> B(1) -> B(2)
}
"""

#: a block used only in a later use's conditional shortcut had no class yet when the outer one was grouped
INNER_IN_LATER_SHORTCUT = """\
block Swap(x: [N, C], d) { Transpose(0, d) }
block Project(x: [N, C], k) { Residual(Linear(C, C), shortcut=Swap(1) -> Swap(1) if k > 1 else None) }
model M(x: [N, 4]) {
    x -> Project(1) -> Project(2)
}
"""

#: a conditional shortcut inside another, which some uses lack altogether
NESTED_SHORTCUTS = """\
block B(x: [N, C], k) {
    Residual(Linear(C, C), shortcut=Residual(Linear(C, C), shortcut=Linear(C, C) if k > 2 else None) if k > 1 else None)
}
model M(x: [N, 4]) {
    x -> B(1) -> B(2) -> B(3) -> B(4)
}
"""

#: conditional shortcuts in a sub-network argument, and tensor methods there that follow the parameters
IN_SUB_NETWORKS = """\
block Wrap(x: [N, C], f) { f -> ReLU }
block Outer(x: [N, C], k) {
    Wrap(Residual(Linear(C, C)) if k > 1 else Linear(C, C))
    -> Wrap(Residual(Linear(C, C), shortcut=(Linear(C, C) -> Tanh) * k if k > 1 else None) -> Tanh)
    -> Wrap(Reshape((-1, k, C // k)) -> Flatten)
}
model M(x: [N, 4]) {
    x -> Outer(1) -> Outer(2) -> Outer(4) -> Outer(2)
}
"""


#: an inner block's keyword argument whose default is None was left out where the first use gave None
NONE_DEFAULTS = """\
block Pool(x: [N, C, H, W], s=None) { MaxPool2d(2, stride=s) }
block Pick(x: [N, C, H, W], t) { Pool(s=t) }
model M(x: [N, 2, 8, 8]) {
    p = x -> Pick(None)
    q = x -> Pick(1)
    return p, q
}
"""

#: a conditional shortcut that is a sub-network parameter, which some uses have and some lack
GIVEN_SHORTCUTS = """\
block Given(x: [N, C], f, k) { Residual(Linear(C, C), shortcut=f if k > 1 else None) }
block Give(x: [N, C], k) { Given(Linear(C, C) -> Tanh, k) }
model M(x: [N, 4]) {
    x -> Give(1) -> Give(2) -> Given(Linear(4, 4), 1) -> Given(Linear(4, 4) -> ReLU, 2)
}
"""

#: a condition in a sub-network argument that names a size nothing else in the block names
SIZE_IN_SUB_NETWORK_CONDITION = """\
block Wrap(x: [N, C, L], f) { f -> ReLU }
block Outer(x: [N, C, L], k) { Wrap(Residual(Linear(L, L), shortcut=Linear(L, L) if C > k else None)) }
model M(x: [N, 3, 4]) {
    x -> Outer(1) -> Outer(5)
}
"""

FIXED = {
    "shortcut_lengths": SHORTCUT_LENGTHS,
    "inner_in_later_shortcut": INNER_IN_LATER_SHORTCUT,
    "nested_shortcuts": NESTED_SHORTCUTS,
    "in_sub_networks": IN_SUB_NETWORKS,
    "none_defaults": NONE_DEFAULTS,
    "given_shortcuts": GIVEN_SHORTCUTS,
    "size_in_sub_network_condition": SIZE_IN_SUB_NETWORK_CONDITION,
}


@pytest.mark.parametrize("text", FIXED.values(), ids=FIXED.keys())
def test_uses_compute_what_was_checked(text, tmp_path):
    for name, source in zip(("shared.py", "longhand.py"), assert_uses_compute_what_was_checked(text)):
        (tmp_path / name).write_text(source)
    assert_ruff_clean(tmp_path)


def test_uses_without_a_conditional_shortcut_still_share_a_class():
    program = nndsl.check_source(SHORTCUT_LENGTHS).program
    source = emit_program(program)
    assert source.count("class B") == 2  # B(0) and B(1) share one class, B(2) has a longer shortcut
    assert "self.b1 = B(4, 0)" in source and "self.b2 = B(4, 1)" in source


# ---------------------------------------------------------------- the generator


@st.composite
def specs(draw) -> str:
    """Two to four of the blocks, and a model that uses them two to six times on each of its inputs."""
    chosen = draw(st.lists(st.sampled_from(sorted(BLOCKS)), min_size=2, max_size=4, unique=True))
    defined: list[str] = []
    for name in chosen:
        for needed in (*BLOCKS[name].needs, name):
            if needed not in defined:
                defined.append(needed)
    inputs, lines = [], []
    numbered = any(BLOCKS[name].batch for name in chosen)
    for index in range(draw(st.integers(1, 2))):
        dims = tuple(draw(st.integers(1, 6)) for _ in range(3))
        batch = draw(st.sampled_from([2, 3] if numbered else ["N", "N", 2, 3]))
        dtype = draw(st.sampled_from(["", "", "float64"]))  # the weights of a use follow its input's dtype
        inputs.append(f"x{index}: {dtype}[{batch}, {', '.join(map(str, dims))}]")
        calls = []
        for _ in range(draw(st.integers(2, 6))):
            call, dims = BLOCKS[draw(st.sampled_from(chosen))].use(draw, dims)
            calls.append(call)
        lines.append(f"    y{index} = x{index} -> {' -> '.join(calls)}")
    outputs = ", ".join(f"y{i}" for i in range(len(inputs)))
    model = f"model Uses({', '.join(inputs)}) {{\n" + "\n".join(lines) + f"\n    return {outputs}\n}}"
    return "\n".join([*(BLOCKS[name].text for name in defined), model]) + "\n"


def test_generated_uses_compute_what_was_checked(tmp_path):
    sources: list[str] = []

    @settings(max_examples=int(os.environ.get("NNDSL_FUZZ_EXAMPLES", "0")) or 150, **_SETTINGS)
    @given(specs())
    def prop(text):
        sources.extend(assert_uses_compute_what_was_checked(text))

    prop()
    for index, source in enumerate(sources):  # the emitted files stay ruff-clean (one ruff run)
        (tmp_path / f"generated_{index}.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_parameters_left_none_are_annotated_as_what_the_uses_give():
    blocks = """\
block Pool(x: [N, C, H, W], s=None) { MaxPool2d(2, stride=s) }
block Skip(x: [N, C, H, W], f=None) { Residual(Conv2d(C, C, 1), shortcut=f) }
"""
    left = emit_program(nndsl.check_source(blocks + "model M(x: [N, 2, 8, 8]) { x -> Pool() -> Skip() }\n").program)
    assert "def __init__(self, s: None = None)" in left  # a stride no use gives: not a module
    assert "f: nn.Module | None = None" in left  # a shortcut no use gives is still a module
    given = emit_program(nndsl.check_source(blocks + "model M(x: [N, 2, 8, 8]) { x -> Pool(s=1) }\n").program)
    assert "def __init__(self, s: int | None = None)" in given  # a stride every use gives
