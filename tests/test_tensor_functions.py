"""The tensor functions beyond the operator table's rows: ``a @ b`` through the checker's
binary-operator path, sizes read at run time (arange and expand over symbolic sizes, in models
and blocks, at several sizes, in torch and ONNX), and randn_like's random values."""

from __future__ import annotations

import pytest
from conftest import assert_ruff_clean

import nndsl
from nndsl import ast
from nndsl.backends.torch_module import emit_program, load_module

torch = pytest.importorskip("torch")


def _star_as_matmul(monkeypatch):
    """Parse ``*`` as ``@`` (the checker's path of ``a @ b``, whatever the grammar spells)."""
    import nndsl.syntax

    parse = nndsl.syntax.parse_recovering

    def rewrite(node):
        if isinstance(node, ast.BinOp) and node.op == "*":
            return node._replace(op="@", left=rewrite(node.left), right=rewrite(node.right))
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return node._make(rewrite(v) for v in node)
        if type(node) is tuple:
            return tuple(rewrite(v) for v in node)
        if type(node) is list:
            return [rewrite(v) for v in node]
        return node

    def parse_as_matmul(source):
        module, errors = parse(source)
        return rewrite(module), errors

    monkeypatch.setattr(nndsl.syntax, "parse_recovering", parse_as_matmul)


def test_matrix_product_operator_is_the_matmul_operator(monkeypatch):
    _star_as_matmul(monkeypatch)
    result = nndsl.check_source("model M(a: [N, 2, 3], b: [3, 5]) {\n    return a * b\n}\n", "m.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    assert str(result.program.models[0].outputs[0]) == "[N, 2, 5]"
    assert "x = a @ b  # [N, 2, 5]" in emit_program(result.program)
    bad = nndsl.check_source("model M(a: [2, 3], b: [4, 5]) {\n    return a * b\n}\n", "m.nn")
    (error,) = bad.errors
    assert error.code == "E208" and "3 columns against 4 rows" in error.message
    number = nndsl.check_source("model M(a: [2, 3]) {\n    return a * 2\n}\n", "m.nn")
    assert [d.code for d in number.errors] == ["E114"]  # torch.matmul takes no number
    numbers = nndsl.check_source("model M(a: [2, 3]) {\n    return a -> Linear(3, 2 * 3)\n}\n", "m.nn")
    assert [d.code for d in numbers.errors] == ["E110"]  # 2 @ 3 is no product of numbers


SPEC = """\
block Pool(x: [B, L, d], d) {
    p = arange(L) * 1.0
    return expand(matmul(p, x), 2, B, d)
}

model M(tokens: long[N, T], h: [N, T, 4], c: [1, 1, 4]) {
    y = h -> Pool(4)
    q = arange(2 * T - 1)
    cls = expand(c, N, -1, -1)
    return y, q, cat(cls, h, dim=1), roll(h, 1, 1)
}
"""


def test_runtime_sizes_are_read_from_tensors_that_have_them(tmp_path):
    result = nndsl.check_source(SPEC, "m.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    assert "torch.arange(2 * tokens.size(1) - 1, device=tokens.device)" in source
    assert "c.expand(tokens.size(0), -1, -1)" in source
    (tmp_path / "m.py").write_text(source)
    assert_ruff_clean(tmp_path)
    module = load_module(result.program)["M"]()
    for n, t in ((1, 5), (3, 9)):
        tokens, h, c = torch.zeros(n, t, dtype=torch.long), torch.randn(n, t, 4), torch.randn(1, 1, 4)
        y, q, joined, rolled = module(tokens, h, c)
        positions = torch.arange(t) * 1.0
        assert torch.allclose(y, (positions @ h).expand(2, n, 4))
        assert torch.equal(q, torch.arange(2 * t - 1))
        assert torch.equal(joined, torch.cat((c.expand(n, -1, -1), h), dim=1))
        assert torch.equal(rolled, torch.roll(h, 1, 1))


def test_runtime_sizes_export_to_onnx():
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    exported, verified = export_and_verify(SPEC)
    ops = {n.op_type for n in exported.proto.graph.node}
    assert {"Shape", "Gather", "Range", "Expand"} <= ops
    assert len(verified.cases) == 2 and verified.cases[0].sizes != verified.cases[1].sizes


@pytest.mark.parametrize(
    ("spec", "code", "where"),
    [
        ("model M(x: [N, 2*T]) {\n    return arange(T)\n}\n", "E212", "T"),
        ("model M(x: [N]) {\n    return arange(K)\n}\n", "E108", "K"),
        ("model M(x: [N, 3]) {\n    return expand(x, M2, 3)\n}\n", "E108", "M2"),
        ("model M(x: [N, 3]) {\n    return arange(0, N, 0)\n}\n", "E207", "0"),
        ("model M(x: [N, 3]) {\n    return expand(x, 2, N, 4)\n}\n", "E208", "expand(x, 2, N, 4)"),
    ],
)
def test_size_arguments_are_diagnosed_where_written(spec, code, where):
    result = nndsl.check_source(spec, "m.nn")
    (error,) = result.errors
    assert error.code == code, error.message
    assert spec[error.span.start : error.span.end] == where


def test_randn_like_draws_standard_normal_values():
    result = nndsl.check_source("model V(mu: [N, D], std: [N, D]) {\n    return mu + randn_like(std) * std\n}\n")
    assert result.ok
    assert "torch.randn_like(std)" in emit_program(result.program)
    module = load_module(result.program)["V"]()
    mu, std = torch.full((400, 500), 3.0), torch.full((400, 500), 2.0)
    first, second = module(mu, std), module(mu, std)
    assert first.shape == (400, 500) and not torch.equal(first, second)  # fresh noise every call
    assert abs(first.mean().item() - 3.0) < 0.05 and abs(first.std().item() - 2.0) < 0.05


def test_randn_like_exports_as_random_normal_like():
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    from nndsl.backends.onnx_export import export_model
    from nndsl.backends.torch_build import fresh_weights

    result = nndsl.check_source("model V(mu: [N, D], std: [N, D]) {\n    return mu + randn_like(std) * std\n}\n")
    program = result.program
    model = program.models[0]
    exported = export_model(program, model, fresh_weights(program, model, 0))
    assert "RandomNormalLike" in {n.op_type for n in exported.proto.graph.node}
    session = ort.InferenceSession(exported.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {"mu": np.full((400, 500), 3.0, np.float32), "std": np.full((400, 500), 2.0, np.float32)}
    (out,) = session.run(None, feeds)
    assert out.shape == (400, 500) and out.dtype == np.float32
    assert abs(out.mean() - 3.0) < 0.05 and abs(out.std() - 2.0) < 0.05


def test_chunk_of_a_symbolic_size_that_does_not_divide_is_refused_with_a_way_out():
    result = nndsl.check_source("model M(x: [N, T]) {\n    a, b = chunk(x, 2, dim=1)\n    return a, b\n}\n")
    (error,) = result.errors
    assert error.code == "E207" and "T into 2" in error.message and "2*T" in error.help


def test_matmul_warns_of_sizes_it_cannot_compare():
    result = nndsl.check_source("model M(a: [B, N, K], b: [C, M, 3]) {\n    return matmul(a, b)\n}\n")
    assert result.ok
    assert [d.message for d in result.diagnostics] == ["cannot verify statically that K == M and B == C"]
    same = nndsl.check_source("model M(a: [N, K], b: [K, 3]) {\n    return matmul(a, b)\n}\n")
    assert not same.diagnostics


def test_matmul_agrees_with_torch_on_random_shapes():
    """Ranks 1 to 4 with sizes 1 to 3 (so that batch dims often broadcast and inner sizes often
    differ): the checker accepts exactly what torch.matmul accepts, with torch's result shape."""
    import random

    rng = random.Random(13)
    accepted = refused = 0
    for _ in range(150):
        a = [rng.randint(1, 3) for _ in range(rng.randint(1, 4))]
        b = [rng.randint(1, 3) for _ in range(rng.randint(1, 4))]
        spec = f"model M(a: {a}, b: {b}) {{\n    return matmul(a, b)\n}}\n"
        result = nndsl.check_source(spec)
        try:
            want = list(torch.matmul(torch.ones(a), torch.ones(b)).shape)
        except RuntimeError:
            assert [d.code for d in result.errors] == ["E208"], (a, b)
            refused += 1
            continue
        assert result.ok, (a, b, [d.message for d in result.diagnostics])
        assert str(result.program.models[0].outputs[0]) == str(want)
        accepted += 1
    assert accepted > 30 and refused > 30


@pytest.mark.parametrize(
    ("call", "inputs", "warning"),
    [
        ("expand(a, N, K)", "a: [N, M]", "K == M"),
        ("masked_fill(a, m, 0.0)", "a: [N, L], m: bool[N, S]", "L == S"),
        ("where(c, a, 0.0)", "c: bool[A], a: [B]", "A == B"),
    ],
)
def test_sizes_that_cannot_be_compared_are_warned_of(call, inputs, warning):
    result = nndsl.check_source(f"model M({inputs}, k: [K]) {{\n    return {call}\n}}\n")
    assert result.ok
    assert [d.message for d in result.diagnostics if d.code == "W301"] == [f"cannot verify statically that {warning}"]


def test_masks_of_symbolic_sizes_export_to_onnx():
    """A padding mask ``bool[N, S]`` given to the model: verified at two sizes (bool inputs are
    given to torch as bool, to onnxruntime as 0 and 1)."""
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    spec = (
        "model M(scores: [N, L, S], pad: bool[N, S]) {\n"
        "    masked = masked_fill(scores, expand(pad, L, N, S) -> Transpose(0, 1), -1e9)\n"
        "    return softmax(masked, dim=-1), where(pad, 0.0, sum(scores, 1))\n"
        "}\n"
    )
    _, verified = export_and_verify(spec)
    assert len(verified.cases) == 2
