"""A named module applied more than once is one module (torch's semantics): its weights exist
and count once, every use is checked with its own input, the emitted module calls one attribute
at each use, and the ONNX export feeds every use from the same initializers."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.backends.torch_module import emit_program

torch = pytest.importorskip("torch")
nn = torch.nn

SIAMESE = """\
model Siamese(x1: [N, 1, 28, 28], x2: [N, 1, 28, 28]) {
    tower = Conv2d(1, 8, 3) -> ReLU -> Flatten -> Linear(out_features=16)
    a = x1 -> tower
    b = tower(x2)
    return a, b
}
"""


class _TowerTwin(nn.Module):
    """The Siamese pair written by hand: one tower, applied to both inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.tower = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 26 * 26, 16))

    def forward(self, x1, x2):
        return self.tower(x1), self.tower(x2)


def check(text: str):
    return nndsl.check_source(text, "<sharing test>")


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def test_a_siamese_pair_has_one_towers_weights_and_equals_its_twin():
    result = check(SIAMESE)
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    twin = _TowerTwin()
    reference = sum(p.numel() for p in twin.parameters())
    model = result.program.models[0]
    assert model.param_count == reference
    built = nndsl.build(SIAMESE)
    assert sum(p.numel() for p in built.parameters()) == reference
    assert list(built.state_dict()) == list(twin.state_dict())  # tower.0.weight, ..., tower.3.bias
    built.load_state_dict(twin.state_dict())
    built.eval(), twin.eval()
    x1, x2 = torch.randn(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    for got, want in zip(built(x1, x2), twin(x1, x2)):
        assert torch.equal(got, want)
    # one module: a change to its weights changes both outputs
    with torch.no_grad():
        built.tower[3].bias.add_(1.0)
    a, b = built(x1, x2)
    want_a, want_b = twin(x1, x2)
    assert torch.allclose(a, want_a + 1) and torch.allclose(b, want_b + 1)


def test_the_emitted_module_calls_one_attribute_at_each_use():
    source = emit_program(check(SIAMESE).program)
    assert source.count("self.tower = nn.Sequential(") == 1
    assert "a = self.tower(x1)" in source and "b = self.tower(x2)" in source


@pytest.mark.parametrize(
    ("definition", "count"),
    [
        ("Linear(8, 4)", 36),  # one layer: the attribute is the layer itself
        ("Linear(8, 8) -> ReLU -> Linear(out_features=4)", 72 + 36),
        ("Residual(Linear(8, 8) -> ReLU)", 72),  # not a chain of modules: a class of its own
    ],
)
def test_a_shared_module_of_any_form_runs_as_checked_with_its_weights_once(definition, count):
    text = (
        f"model M(a: [N, 8], b: [N, 8]) {{\n    f = {definition}\n    p = a -> f\n    q = f(b)\n    return p, q\n}}\n"
    )
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == count
    built = nndsl.build(text)
    assert sum(p.numel() for p in built.parameters()) == count
    x = torch.randn(2, 8)
    p, q = built.eval()(x, x)
    assert torch.equal(p, q)  # one module: the same input gives the same output


def test_a_module_applied_twice_in_one_chain_is_shared():
    text = "model M(a: [N, 8]) {\n    f = Linear(8, 8)\n    a -> f -> ReLU -> f\n}\n"
    built = nndsl.build(text)
    assert sum(p.numel() for p in built.parameters()) == 72
    x = torch.randn(2, 8)
    f = built.f
    assert torch.allclose(built(x), f(torch.relu(f(x))))


def test_an_inferred_argument_the_later_use_disagrees_with_is_an_error_at_it():
    text = "model M(a: [N, 8], b: [N, 6]) {\n    f = Linear(out_features=4)\n    p = a -> f\n    q = b -> f\n    return p, q\n}\n"
    result = check(text)
    assert codes(result) == ["E122"]
    diag = result.diagnostics[0]
    assert result.program.source.line_col(diag.span.start) == (4, 14)
    assert "[N, 6]" in diag.message and "[N, 8]" in diag.message and "in_features" in diag.message
    assert [result.program.source.line_col(label.span.start)[0] for label in diag.secondary] == [3]
    # torch fails the same way: one Linear(8, 4) cannot take 6 features
    layer = nn.Linear(8, 4)
    layer(torch.randn(2, 8))
    with pytest.raises(RuntimeError):
        layer(torch.randn(2, 6))


def test_a_block_instance_shared_with_other_matched_sizes_is_an_error():
    text = (
        "block Enc(x: [N, C], width) {\n    Linear(C, width) -> ReLU\n}\n"
        "model M(a: [N, 8], b: [N, 4]) {\n    enc = Enc(16)\n    p = a -> enc\n    q = enc(b)\n    return p, q\n}\n"
    )
    result = check(text)
    assert codes(result) == ["E122"]
    assert "[N, 4]" in result.diagnostics[0].message


def test_a_block_instance_is_shared_and_counts_once():
    text = (
        "block Enc(x: [N, C], width) {\n    Linear(C, width) -> ReLU\n}\n"
        "model M(a: [N, 8], b: [M, 8]) {\n    enc = Enc(16)\n    p = a -> enc\n    q = enc(b)\n    return p, q\n}\n"
    )
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == 8 * 16 + 16
    built = nndsl.build(text)
    assert sum(p.numel() for p in built.parameters()) == 8 * 16 + 16
    x = torch.randn(3, 8)
    p, q = built.eval()(x, x)
    assert torch.equal(p, q)


def test_a_repetition_still_makes_copies():
    text = "model M(a: [N, 8]) {\n    f = Linear(8, 8)\n    a -> f -> f * 3\n}\n"
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == 4 * 72  # f itself, then three new copies


def test_unnamed_layers_written_twice_are_two_modules():
    text = "model M(a: [N, 8]) {\n    a -> Linear(8, 8) -> Linear(8, 8)\n}\n"
    assert check(text).program.models[0].param_count == 2 * 72


def test_a_module_applied_once_is_as_before():
    named = check("model M(a: [N, 8]) {\n    f = Linear(8, 4) -> ReLU\n    a -> f\n}\n").program
    plain = check("model M(a: [N, 8]) {\n    a -> Linear(8, 4) -> ReLU\n}\n").program
    assert [n.tag for n in named.models[0].graph.nodes] == ["layer", "layer"]
    assert emit_program(named) == emit_program(plain)


def test_sharing_inside_a_block_body_is_one_module_of_each_use():
    text = "block B(x: [N, D]) {\n    f = Linear(D, D)\n    x -> f -> f\n}\nmodel M(a: [N, 8]) { B -> B }\n"
    result = check(text)
    assert codes(result) == []
    assert result.program.models[0].param_count == 2 * (8 * 8 + 8)


def test_a_shared_module_inside_another_is_refused():
    text = (
        "model M(a: [N, 8], b: [N, 8]) {\n    f = Linear(8, 8)\n    g = f -> ReLU\n"
        "    p = a -> g\n    q = b -> g\n    r = b -> f\n    return p, q, r\n}\n"
    )
    assert "E122" in codes(check(text))


def test_calling_a_module_with_two_tensors_is_an_error():
    text = "model M(a: [N, 8]) {\n    f = Linear(8, 8)\n    f(a, a)\n}\n"
    assert codes(check(text)) == ["E216"]  # Linear takes one tensor


def test_the_onnx_export_feeds_every_use_from_one_initializer():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from tests.onnx_support import export_and_verify

    exported, verified = export_and_verify(SIAMESE)
    assert verified.ok if hasattr(verified, "ok") else verified
    assert sorted(exported.weights) == ["tower.0.bias", "tower.0.weight", "tower.3.bias", "tower.3.weight"]


# ---------------------------------------------------------------- weight tying

TIED_LM = """\
model TinyLM(tokens: long[N, T]) {
    wte = Embedding(100, 16)
    lm_head = Linear(16, 100, bias=False)
    lm_head.weight = wte.weight
    tokens -> wte -> LayerNorm(16) -> lm_head
}
"""


class _TiedTwin(nn.Module):
    """TinyLM written by hand: the head's weight is the embedding's."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(100, 16)
        self.layer_norm = nn.LayerNorm(16)
        self.lm_head = nn.Linear(16, 100, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, tokens):
        return self.lm_head(self.layer_norm(self.wte(tokens)))


def test_a_tied_lm_head_counts_once_and_equals_its_twin():
    result = check(TIED_LM)
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    twin = _TiedTwin()
    reference = sum(p.numel() for p in twin.parameters())
    assert result.program.models[0].param_count == reference == 100 * 16 + 32
    built = nndsl.build(TIED_LM)
    assert sum(p.numel() for p in built.parameters()) == reference
    assert built.lm_head.weight is built.wte.weight
    built.load_state_dict(twin.state_dict())
    tokens = torch.randint(0, 100, (2, 7))
    assert torch.equal(built.eval()(tokens), twin.eval()(tokens))
    source = emit_program(result.program)
    assert "        self.lm_head.weight = self.wte.weight\n" in source
    assert source.index("self.lm_head.weight = self.wte.weight") > source.index("self.lm_head = nn.Linear(")


def test_a_tie_may_come_before_the_layers_are_applied_or_after():
    after = TIED_LM.replace("    lm_head.weight = wte.weight\n", "").replace(
        "lm_head\n}", "lm_head\n    lm_head.weight = wte.weight\n}"
    )
    result = check(after)  # the last statement: the chain before it gives the output
    assert result.ok and not result.diagnostics, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == 100 * 16 + 32
    assert result.program.models[0].output.shape.dims[-1] == 100
    inferred = TIED_LM.replace("Linear(16, 100, bias=False)", "Linear(out_features=100, bias=False)")
    result = check(inferred)  # in_features is known once lm_head is applied, after the statement
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == 100 * 16 + 32


def test_gpt2_small_with_the_head_tied_has_its_published_count():
    text = """\
model GPT2Counts(tokens: long[N, T], positions: long[N, T]) {
    wte = Embedding(50257, 768)
    wpe = Embedding(1024, 768)
    lm_head = Linear(768, 50257, bias=False)
    lm_head.weight = wte.weight
    x = (tokens -> wte) + (positions -> wpe)
    x -> TransformerEncoderLayer(768, 12, 3072, activation="gelu", batch_first=True, norm_first=True) * 12
    -> LayerNorm(768) -> lm_head
}
"""
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == 124_439_808


def _tie_error(text: str):
    result = check(text)
    assert codes(result) == ["E123"], [(d.code, d.message) for d in result.diagnostics]
    return result.diagnostics[0], result.program.source


def test_tying_weights_of_different_shapes_is_an_error_at_the_statement():
    diag, source = _tie_error(TIED_LM.replace("Embedding(100, 16)", "Embedding(90, 16)"))
    assert source.line_col(diag.span.start) == (4, 5)
    assert "[100, 16]" in diag.message and "[90, 16]" in diag.message
    assert sorted(source.line_col(label.span.start)[0] for label in diag.secondary) == [2, 3]
    # torch accepts the assignment silently, and the head then gives 90 features, not the 100 written
    twin = nn.Linear(16, 100, bias=False)
    twin.weight = nn.Embedding(90, 16).weight
    assert twin(torch.randn(2, 16)).shape == (2, 90)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("lm_head.weight = wte.weight", "lm_head.bias = wte.weight"), "has no 'bias'"),
        (("lm_head = Linear(16, 100, bias=False)", "lm_head = Linear(16, 100) -> ReLU"), "not a layer"),
        (("-> lm_head\n", "\n"), "never applied"),
        (("lm_head.weight = wte.weight", "lm_head.weight = lm_head.weight"), "to itself"),
        (("lm_head.weight = wte.weight", "lm_head.weight = wte.weight\n    lm_head.weight = wte.weight"), "tied twice"),
        (("lm_head.weight = wte.weight", "lm_head.weight = 3"), "named layer's weight"),
    ],
)
def test_a_tie_that_cannot_be_made_is_an_error(change, fragment):
    diag, _ = _tie_error(TIED_LM.replace(*change))
    assert fragment in diag.message


def test_a_tie_of_a_layer_defined_later_is_used_before_definition():
    text = TIED_LM.replace("    lm_head = Linear(16, 100, bias=False)\n", "").replace(
        "    tokens ->", "    lm_head = Linear(16, 100, bias=False)\n    tokens ->"
    )
    assert "E108" in codes(check(text))


def test_a_tie_inside_a_block_ties_the_layers_of_each_use():
    text = (
        "block B(x: [N, D]) {\n    a = Linear(D, D)\n    b = Linear(D, D)\n    b.weight = a.weight\n"
        "    x -> a -> b\n}\nmodel M(x: [N, 8]) { B -> B }\n"
    )
    result = check(text)
    assert codes(result) == []
    assert result.program.models[0].param_count == 2 * (8 * 8 + 2 * 8)


def test_the_onnx_export_of_a_tied_head_has_one_initializer():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from tests.onnx_support import export_and_verify

    exported, _ = export_and_verify(TIED_LM)
    assert sorted(exported.weights) == ["layer_norm.bias", "layer_norm.weight", "wte.weight"]
    ops = [(n.op_type, list(n.input)) for n in exported.proto.graph.node]
    assert ("Gather", ["wte.weight", "tokens"]) in ops
    assert ("Transpose", ["wte.weight"]) in ops


def test_an_error_in_a_later_use_shows_that_use_and_the_first():
    text = SIAMESE.replace("x2: [N, 1, 28, 28]", "x2: [N, 3, 28, 28]")
    result = check(text)
    assert codes(result) == ["E201"]
    diag = result.diagnostics[0]
    lines = {result.program.source.line_col(label.span.start)[0]: label.message for label in diag.secondary}
    assert "[N, 3, 28, 28]" in lines[4] and "[N, 1, 28, 28]" in lines[3]
    # torch fails the same way: one Conv2d(1, 8, 3) cannot take 3 channels
    with pytest.raises(RuntimeError):
        nn.Conv2d(1, 8, 3)(torch.randn(2, 3, 28, 28))


def test_a_shared_layer_can_be_tied_and_exports_one_initializer():
    text = (
        "model M(a: [N, 8], b: [N, 8]) {\n    f = Linear(8, 8)\n    g = Linear(out_features=8)\n"
        "    g.weight = f.weight\n    p = a -> f -> g\n    q = b -> g\n    return p, q\n}\n"
    )
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == 64 + 8 + 8
    built = nndsl.build(text)
    assert sum(p.numel() for p in built.parameters()) == 80 and built.g.weight is built.f.weight
    pytest.importorskip("onnxruntime")
    from tests.onnx_support import export_and_verify

    exported, _ = export_and_verify(text)
    assert sorted(exported.weights) == ["f.bias", "f.weight", "g.bias"]


def test_a_shared_module_reading_a_tensor_of_the_model_is_refused_at_its_read():
    """Applied twice, the module is emitted as one class whose only input is what it is applied to."""
    text = (
        "model M(x: [N, 4]) {\n    f = for i in range(2) {\n        y = x * 2\n        y -> Linear(4, 4)\n    }\n"
        "    a = x -> Linear(4, 4) -> f\n    return a -> f\n}\n"
    )
    result = check(text)
    assert codes(result) == ["E108"]
    (diag,) = result.diagnostics
    assert (diag.span.start, "shared module 'f'" in diag.message) == (text.index("x * 2"), True)


def test_a_module_applied_once_may_read_a_tensor_of_the_model():
    text = "model M(x: [N, 4]) {\n    f = for i in range(2) {\n        y = x * 2\n        y -> Linear(4, 4)\n    }\n    return x -> f\n}\n"
    assert codes(check(text)) == []
