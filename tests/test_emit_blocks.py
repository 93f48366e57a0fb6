"""A block used with different arguments is the model the checker checked: tensor methods whose
arguments come from the block's parameters or input sizes follow each use, and the shared class
computes what a class per use computes."""

from __future__ import annotations

import pytest
from conftest import assert_ruff_clean

import nndsl
from nndsl.backends.torch_module import class_names, emit_program
from nndsl.lowering import lower
from nndsl.shapes import Sym, substitute

torch = pytest.importorskip("torch")

USES = """\
block Heads(x: [N, T, E], heads) { Reshape((-1, T, heads, E // heads)) -> Transpose(1, 2) }
block Merge(x: [N, H, T, D]) { Transpose(1, 2) -> Reshape((-1, T, H * D)) -> View((-1, H * D)) }
block Swap(x: [N, A, B, C], d) { Transpose(1, d) }
block Order(x: [N, A, B, C], order) { Permute(order) }
block Reduce(x: [N, T, E], d, keep=False) { Mean(d, keepdim=keep) }
block Total(x: [N, T, E], d) { Sum((1, d), keepdim=True) }
block Grow(x: [N, A, B, C], d) { Unsqueeze(d) -> Squeeze(d) -> Unsqueeze(d) }
block Rnn(x: [N, T, E], first) { LSTM(E, 4, batch_first=first).last }
block Pieces(x: [N, T, E], k) {
    a, b = split(x, [k, E - k], dim=2)
    return a
}
block Attend(x: [N, T, E], heads) { Heads(heads) -> Merge }
model Uses(a: [N, 5, 8], b: [N, 5, 12], c: [N, 2, 3, 4]) {
    p = a -> Heads(2)
    q = b -> Heads(3)
    r = c -> Swap(2)
    s = c -> Swap(3)
    t = c -> Order((0, 2, 1, 3))
    u = c -> Order((3, 1, 0, 2))
    v = a -> Reduce(1)
    w = a -> Reduce(2, keep=True)
    y = b -> Total(2)
    z = a -> Total(0)
    g = c -> Grow(0)
    h = c -> Grow(3)
    i = a -> Rnn(True)
    j = a -> Rnn(False)
    k = a -> Attend(2)
    l = b -> Attend(4)
    m = a -> Pieces(2)
    n = b -> Pieces(3)
    return p, q, r, s, t, u, v, w, y, z, g, h, i, j, k, l, m, n
}
"""

SPLIT_HEADS = """\
block Heads(x: [N, T, E], heads) { Reshape((-1, T, heads, E // heads)) -> Transpose(1, 2) }
model SplitHeads(a: [N, 5, 8], b: [N, 5, 12]) {
    p = a -> Heads(2)
    q = b -> Heads(3)
    return p, q
}
"""


SUB_NETWORKS = """\
block Wrap(x: [N, C], f) { f -> ReLU }
block Opt(x: [N, C], s=1) { Residual(Linear(C, C), shortcut=(Reshape((-1, C)) -> Linear(C, C)) if s != 1 else None) }
block Outer(x: [N, C], k) { Wrap(Linear(C, C) -> Reshape((-1, k, C // k)) -> Flatten) }
block Through(x: [N, C], g) { Wrap(g -> Reshape((-1, C))) }
block Pass(x: [N, C], g) { Wrap(g) -> Linear(C, C) }
model SubNetworks(x: [N, 8]) {
    Wrap(Linear(8, 8) -> Reshape((-1, 2, 4)) -> Flatten) -> Opt(1) -> Opt(2) -> Outer(2) -> Outer(4)
    -> Wrap(Residual(Linear(8, 8)) -> Tanh) -> Through(Linear(8, 8) -> Tanh) -> Pass(Linear(8, 8))
}
"""


def _module(source: str, program, model):
    namespace: dict = {}
    exec(compile(source, "<emitted>", "exec"), namespace)
    return namespace[class_names(program)[model.name]]()


@pytest.mark.parametrize("text", [SPLIT_HEADS, USES, SUB_NETWORKS], ids=["split_heads", "every_method", "sub_networks"])
def test_each_use_gets_its_own_arguments(text, tmp_path):
    result = nndsl.check_source(text, "uses.nn")
    assert result.ok, [d.message for d in result.errors]
    program, model = result.program, result.program.models[0]
    shared, longhand = emit_program(program), emit_program(program, share=False)
    assert shared.count("class ") < longhand.count("class ")  # uses do share classes
    module, reference = _module(shared, program, model), _module(longhand, program, model)
    state = reference.state_dict()  # the same weights, matched in order (the attribute names differ)
    assert [v.shape for v in module.state_dict().values()] == [v.shape for v in state.values()]
    module.load_state_dict(dict(zip(module.state_dict(), state.values())))
    # the state_dict keys are those the checked graph predicts (what exports and training rely on)
    keys = {k.rsplit(".", 1)[0] for k in module.state_dict()}
    prefixes = lower(program).prefixes
    assert keys == {prefixes[node.id] for node in model.layers if node.params}
    module.eval()
    reference.eval()
    for n in (2, 3):
        torch.manual_seed(n)
        inputs = [torch.randn(*(substitute(d, {Sym("N"): n}) for d in t.shape.dims)) for t in model.input_types]
        with torch.no_grad():
            got, want = module(*inputs), reference(*inputs)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        shapes = [tuple(substitute(d, {Sym("N"): n}) for d in t.shape.dims) for t in model.outputs]
        assert [tuple(g.shape) for g in got] == shapes
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=0, atol=0)
    (tmp_path / "shared.py").write_text(shared)
    (tmp_path / "longhand.py").write_text(longhand)
    assert_ruff_clean(tmp_path)


def test_arguments_that_differ_are_attributes_the_constructor_computes():
    source = emit_program(nndsl.check_source(SPLIT_HEADS, "heads.nn").program)
    assert "self.shape = (-1, T, heads, E // heads)" in source
    assert "x = x.reshape(self.shape)" in source
    assert source.count("class Heads") == 1
    # the same in every use: written as values, as before
    single = emit_program(
        nndsl.check_source(SPLIT_HEADS.replace("Heads(3)", "Heads(2)").replace("12]", "8]"), "h.nn").program
    )
    assert "x = x.reshape(-1, 5, 2, 4)" in single


@pytest.mark.parametrize("name", ["inception", "mobilenet_v2", "text_transformer", "unet"])
def test_zoo_models_compute_the_same_with_shared_classes(name):
    from conftest import SPECS

    program = nndsl.check_file(SPECS / "zoo" / f"{name}.nn").program
    model = program.complete_models[0]
    shared = _module(emit_program(program), program, model).eval()
    longhand = _module(emit_program(program, share=False), program, model).eval()
    state = longhand.state_dict()
    shared.load_state_dict(dict(zip(shared.state_dict(), state.values())))
    torch.manual_seed(0)
    inputs = []
    for t in model.input_types:
        dims = tuple(substitute(d, {Sym("N"): 1, Sym("T"): 7}) for d in t.shape.dims)
        inputs.append(torch.randint(0, 10, dims) if t.dtype == "int64" else torch.randn(dims))
    with torch.no_grad():
        torch.testing.assert_close(shared(*inputs), longhand(*inputs), rtol=0, atol=0)


def test_a_residual_inside_a_sub_network_argument_keeps_its_skip():
    text = "block Wrap(x: [N, C], f) { f -> ReLU }\nmodel M(x: [N, 8]) { Wrap(Residual(Linear(8, 8)) -> Tanh) }\n"
    program = nndsl.check_source(text).program
    module = _module(emit_program(program), program, program.models[0])
    (linear,) = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    x = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), torch.relu(torch.tanh(linear(x) + x)))


def test_long_computed_arguments_are_laid_out_as_ruff_formats_them(tmp_path):
    from conftest import assert_ruff_clean

    names = ["long_name_number1", "long_name_number2", "long_name_number3"]
    text = (
        f"block Long(x: [N, C], {', '.join(names)}) {{ Reshape((-1, {', '.join(names)}, C // ({' * '.join(names)}))) }}\n"
        "model M(x: [N, 8]) {\n    a = x -> Long(2, 2, 2)\n    b = x -> Long(1, 2, 4)\n    return a, b\n}\n"
    )
    result = nndsl.check_source(text)
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    program = result.program
    source = emit_program(program)
    assert "x = x.reshape(self.shape)" in source
    module = _module(source, program, program.models[0])
    assert [tuple(y.shape) for y in module(torch.randn(3, 8))] == [(3, 2, 2, 2, 1), (3, 1, 2, 4, 1)]
    (tmp_path / "long.py").write_text(source)
    assert_ruff_clean(tmp_path)
