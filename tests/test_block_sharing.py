"""Sharing and tying inside a block's body: a named module applied twice in the body is one
module of each use of the block (torch's semantics: each use builds its own, shared by the
applications within it); ``a.weight = b.weight`` ties two of the body's layers in the block's
class. Values against hand-written torch modules on copied weights, parameter counts, the
emitted class, ONNX, and the mistakes."""

from __future__ import annotations

import pytest
import torch
from onnx_support import export_and_verify
from torch import nn

import nndsl
from nndsl.api import check_source

SIAMESE = """\
block Siamese(x: [N, F], y: [N, F], hidden) {
    tower = Linear(F, hidden) -> ReLU -> Linear(hidden, hidden)
    a = tower(x)
    b = y -> tower
    return a - b
}
model M(x: [N, 8], y: [N, 8]) {
    d = x -> Siamese(y=y, hidden=16)
    e = x -> Siamese(y=y, hidden=16)
    return d + e
}
"""


class _Siamese(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.tower = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

    def forward(self, x, y):
        return self.tower(x) - self.tower(y)


class _TwoSiamese(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = _Siamese(8, 16), _Siamese(8, 16)

    def forward(self, x, y):
        return self.first(x, y) + self.second(x, y)


ENCODE = """\
block Encode(x: [N, L, F], hidden) {
    rnn = GRU(F, hidden, batch_first=True)
    out, h = rnn(x)
    again = out -> Linear(hidden, F) -> rnn
    return again
}
model M(x: [N, 5, 8]) {
    x -> Encode(16) -> Encode(16)
}
"""


class _Encode(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, features)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.rnn(self.fc(out))[0]


PAIR = """\
block Mlp(x: [N, F], hidden) {
    Linear(F, hidden) -> ReLU -> Linear(hidden, F)
}
block Pair(x: [N, 8]) {
    enc = Mlp(16)
    a = x -> enc
    return a -> Linear(8, 8) -> enc
}
model M(y: [N, 8]) {
    y -> Pair -> Pair
}
"""


class _Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.enc(self.fc(self.enc(x)))


TIED = """\
block Head(tokens: long[N, T], vocab, dim) {
    wte = Embedding(vocab, dim)
    lm_head = Linear(dim, vocab, bias=False)
    lm_head.weight = wte.weight
    tokens -> wte -> LayerNorm(dim) -> lm_head
}
model M(tokens: long[N, T]) {
    a = tokens -> Head(50, 8)
    b = tokens -> Head(50, 8)
    return a + b
}
"""


class _Head(nn.Module):
    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.layer_norm = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, tokens):
        return self.lm_head(self.layer_norm(self.wte(tokens)))


class _TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = _Head(50, 8), _Head(50, 8)

    def forward(self, tokens):
        return self.a(tokens) + self.b(tokens)


CASES = [
    (SIAMESE, _TwoSiamese, lambda: (torch.randn(3, 8), torch.randn(3, 8))),
    (ENCODE, lambda: nn.Sequential(_Encode(8, 16), _Encode(16, 16)), lambda: (torch.randn(3, 5, 8),)),
    (PAIR, lambda: nn.Sequential(_Pair(), _Pair()), lambda: (torch.randn(3, 8),)),
    (TIED, _TwoHeads, lambda: (torch.randint(0, 50, (3, 6)),)),
]


def _copy_by_position(built: nn.Module, reference: nn.Module) -> None:
    """The built module's tensors into the reference, in registration order (shapes equal)."""
    got, want = list(built.state_dict().values()), reference.state_dict()
    assert [list(t.shape) for t in got] == [list(t.shape) for t in want.values()]
    reference.load_state_dict(dict(zip(want, got)))


@pytest.mark.parametrize("spec, reference, inputs", CASES, ids=["siamese", "encode", "pair", "tied"])
def test_block_with_shared_modules_equals_torch(spec, reference, inputs):
    result = check_source(spec)
    assert result.ok, result.errors
    model = result.program.models[0]
    reference = reference().eval()
    assert model.param_count == sum(p.numel() for p in reference.parameters())
    torch.manual_seed(0)
    built = nndsl.build(spec).eval()
    assert sum(p.numel() for p in built.parameters()) == model.param_count
    _copy_by_position(built, reference)
    args = inputs()
    with torch.no_grad():
        got, want = built(*args), reference(*args)
    sizes = {"N": 3, "T": 6}  # the inputs' sizes of the declared symbols
    assert list(got.shape) == [sizes.get(str(d)) or int(str(d)) for d in model.output.shape.dims]
    torch.testing.assert_close(got, want)
    exported, verified = export_and_verify(spec)
    assert verified.reference == "torch" and verified.max_diff <= verified.limit


def test_each_use_of_the_block_has_its_own_shared_module():
    result = check_source(SIAMESE)
    built = nndsl.build(SIAMESE)
    keys = list(built.state_dict())
    assert keys == [f"siamese{i}.tower.{j}.{w}" for i in (1, 2) for j in (0, 2) for w in ("weight", "bias")]
    assert result.program.models[0].param_count == 2 * (8 * 16 + 16 + 16 * 16 + 16)


def test_the_block_class_calls_one_attribute_at_each_application():
    source = nndsl.compile_spec(SIAMESE)
    assert source.count("self.tower = nn.Sequential(") == 1
    assert "a = self.tower(x)" in source and "b = self.tower(y)" in source


def test_the_tie_is_written_in_the_block_class():
    source = nndsl.compile_spec(TIED)
    block = source[source.index("class Head") : source.index("class M")]
    assert "self.lm_head.weight = self.wte.weight" in block
    assert source.count("self.lm_head.weight = ") == 1  # in the block's class only, not in the model's
    built = nndsl.build(TIED)
    assert built.head1.lm_head.weight is built.head1.wte.weight
    assert built.head1.wte.weight is not built.head2.wte.weight


def test_a_later_use_in_a_block_must_build_the_first_uses_module():
    spec = SIAMESE.replace("b = y -> tower", "b = y -> Linear(F, 4) -> tower").replace(
        "Linear(F, hidden)", "Linear(out_features=hidden)"
    )
    errors = check_source(spec).errors
    assert errors and errors[0].code == "E122", errors
    assert spec[errors[0].span.start : errors[0].span.end] == "tower"
    assert "in_features=4" in errors[0].message


@pytest.mark.parametrize(
    "tie, fragment",
    [
        ("lm_head.weight = norm.weight", "[50, 8] and norm.weight is [8]"),
        ("lm_head.bias = wte.weight", "has no 'bias'"),
        ("lm_head.weight = lm_head.weight", "to itself"),
    ],
)
def test_tie_mistakes_in_a_block_are_positioned(tie, fragment):
    spec = (
        "block Head(tokens: long[N, T], vocab, dim) {\n"
        "    wte = Embedding(vocab, dim)\n"
        "    norm = LayerNorm(dim)\n"
        "    lm_head = Linear(dim, vocab, bias=False)\n"
        f"    {tie}\n"
        "    tokens -> wte -> norm -> lm_head\n"
        "}\n"
        "model M(tokens: long[N, T]) {\n"
        "    tokens -> Head(50, 8)\n"
        "}\n"
    )
    errors = check_source(spec).errors
    assert errors and errors[0].code == "E123", errors
    assert fragment in errors[0].message
    assert tie.split(" = ")[0].split(".")[0] in spec[errors[0].span.start : errors[0].span.end]


def test_a_tie_mistake_names_the_use_of_the_block():
    spec = TIED.replace("Linear(dim, vocab, bias=False)", "Linear(dim, vocab + 1, bias=False)")
    (error,) = check_source(spec).errors
    assert error.code == "E123" and "[51, 8] and wte.weight is [50, 8]" in error.message
    assert [spec[label.span.start : label.span.end] for label in error.secondary][-1] == "Head(50, 8)"


def test_a_tie_in_an_imported_block(tmp_path):
    lib = TIED[: TIED.index("model M")]
    (tmp_path / "lib.nn").write_text(lib, encoding="utf-8")
    main = tmp_path / "main.nn"
    main.write_text('from "lib.nn" import Head\nmodel M(tokens: long[N, T]) {\n    tokens -> Head(50, 8)\n}\n')
    result = nndsl.check_file(main)
    assert result.ok, result.errors
    assert result.program.models[0].param_count == 50 * 8 + 2 * 8
    (lib_file := tmp_path / "bad.nn").write_text(lib.replace("vocab, bias", "vocab + 1, bias"), encoding="utf-8")
    main.write_text(main.read_text().replace("lib.nn", lib_file.name))
    (error,) = nndsl.check_file(main).errors
    assert error.code == "E123" and error.source.name.endswith("bad.nn")
    assert error.source.text[error.span.start : error.span.end] == "lm_head.weight = wte.weight"


ARGUMENT = """\
block Twice(x: [N, F], f) {
    x -> f -> ReLU -> f
}
model M(x: [N, 8]) {
    x -> Twice(Linear(8, 8)) -> Twice(Linear(8, 8) -> Tanh)
}
"""


class _Twice(nn.Module):
    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(torch.relu(self.f(x)))


def test_a_sub_network_argument_applied_twice_is_one_module_of_the_use():
    result = check_source(ARGUMENT)
    assert result.ok, result.errors
    model = result.program.models[0]
    reference = nn.Sequential(_Twice(nn.Linear(8, 8)), _Twice(nn.Sequential(nn.Linear(8, 8), nn.Tanh()))).eval()
    assert model.param_count == sum(p.numel() for p in reference.parameters()) == 2 * 72
    torch.manual_seed(0)
    built = nndsl.build(ARGUMENT).eval()
    _copy_by_position(built, reference)
    x = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(built(x), reference(x))
    source = nndsl.compile_spec(ARGUMENT)
    assert source.count("x = self.f(x)") == 2 and "self.f = f" in source
    _, verified = export_and_verify(ARGUMENT)
    assert verified.reference == "torch" and verified.max_diff <= verified.limit


def test_a_sub_network_argument_applied_again_must_build_the_same_module():
    spec = ARGUMENT.replace("x -> f -> ReLU -> f", "x -> f -> Linear(8, 4) -> f").replace(
        "x -> Twice(Linear(8, 8)) -> Twice(Linear(8, 8) -> Tanh)", "x -> Twice(Linear(out_features=8))"
    )
    errors = check_source(spec).errors
    assert errors and errors[0].code == "E122", errors
    assert "in_features=4" in errors[0].message
