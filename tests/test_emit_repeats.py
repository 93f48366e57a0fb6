"""A repetition of equal modules is emitted as a person writes it, one constructor in a generator
(``nn.Sequential(*(nn.Linear(8, 8) for _ in range(4)))``), with the state_dict keys, the weights
drawn at initialisation and the outputs of the modules written one by one."""

from __future__ import annotations

import pytest
from conftest import assert_ruff_clean

import nndsl
from nndsl.backends import torch_module
from nndsl.backends.torch_module import class_names, emit_program, load_module

torch = pytest.importorskip("torch")

SPEC = """\
block Pair(x: [N, F], w) {
    x -> Linear(w, w) -> ReLU
}
block Stack(x: [N, S, F], layers) {
    x -> TransformerEncoderLayer(F, 2, 4 * F, dropout=0.0, activation="gelu", layer_norm_eps=1e-6,
                                 batch_first=True, norm_first=True) * layers
}
model M(x: [N, 8]) {
    x -> Linear(8, 8) * 4 -> Linear(8, 8) * 2 -> Pair(8) * 3 -> (Linear(8, 8) -> Tanh) * 3
    -> Unsqueeze(1) -> Stack(3) -> Flatten
}
"""


def _program():
    result = nndsl.check_source(SPEC, "repeats.nn")
    assert result.ok, [d.message for d in result.errors]
    return result.program


def test_equal_copies_are_one_constructor_in_a_generator():
    source = emit_program(_program())
    assert "nn.Sequential(*(nn.Linear(8, 8) for _ in range(4)))" in source
    assert "nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))" in source  # two short copies stay
    assert "nn.Sequential(*(Pair(8) for _ in range(3)))" in source  # a block's equal uses too
    assert source.count("nn.ReLU") == 1 and source.count("nn.Tanh()") == 3  # alternating: one by one
    assert source.count("nn.TransformerEncoderLayer(") == 1 and "for _ in range(layers)" in source


def _built(program, seed: int = 0):
    torch.manual_seed(seed)
    return load_module(program)[class_names(program)[program.models[0].name]]()


def test_keys_initial_weights_and_outputs_are_those_of_the_copies_written_out(monkeypatch):
    program = _program()
    module = _built(program)
    monkeypatch.setattr(torch_module, "REPEAT_AS_GENERATOR", 10**9)
    monkeypatch.setattr(torch_module, "LINE_LENGTH", 10**9)  # no pair is long either
    written_out = emit_program(program)
    # only the count a block parameter gives stays a loop: the class's uses may differ in it
    assert written_out.count("for _ in range") == written_out.count("for _ in range(layers)") == 1
    assert written_out.count("nn.Linear(8, 8)") == 9
    reference = _built(program)
    # the same keys, and the generator builds the copies in order: the same random draws
    assert list(module.state_dict()) == list(reference.state_dict())
    assert {"blocks1.0.weight", "blocks1.3.bias", "blocks3.2.fc.weight", "stack.blocks.2.linear1.weight"} <= set(
        module.state_dict()
    )
    for key, value in reference.state_dict().items():
        assert torch.equal(module.state_dict()[key], value), key
    assert len({id(m) for m in module.blocks1}) == 4  # each copy a module of its own
    module.eval()
    reference.eval()
    x = torch.randn(5, 8)
    with torch.no_grad():
        assert torch.equal(module(x), reference(x))


def test_the_emitted_file_is_ruff_clean(tmp_path):
    (tmp_path / "repeats.py").write_text(emit_program(_program()))
    assert_ruff_clean(tmp_path)
