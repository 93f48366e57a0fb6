"""Every spec in specs/ builds, runs on a random tensor, and matches the checker and a hand-written model."""

from __future__ import annotations

import pytest
from conftest import good_specs

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import nndsl  # noqa: E402
from nndsl.shapes import Sym, substitute  # noqa: E402

# Concrete values for the symbolic dims the specs use; odd sizes exercise the floor in strided layers.
SIZES = {"N": 3, "T": 7, "H": 37, "W": 29}


def concrete(shape) -> tuple[int, ...]:
    bindings = {Sym(name): value for name, value in SIZES.items()}
    dims = tuple(substitute(d, bindings) for d in shape.dims)
    assert all(isinstance(d, int) for d in dims), f"unbound symbol in {shape}"
    return dims


def random_input(tensor_type) -> torch.Tensor:
    dims = concrete(tensor_type.shape)
    if tensor_type.dtype == "int64":
        return torch.randint(0, 10, dims)
    return torch.randn(dims)


class _LastStep(nn.Module):
    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def forward(self, x):
        return self.lstm(x)[0][:, -1]


class _TextClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(1000, 64)
        self.gru = nn.GRU(64, 128, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.LayerNorm(256), nn.Linear(256, 4))

    def forward(self, tokens):
        _, h_n = self.gru(self.embedding(tokens))
        return self.head(torch.cat((h_n[-2], h_n[-1]), dim=-1))


def _mlp(*sizes, tail=()):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1], *tail)


# Hand-written torch equivalents, written independently of nndsl's output.
HAND_WRITTEN = {
    ("simple_nn", "SimpleNN"): lambda: _mlp(10, 5, 1),
    ("simple_nn_sigmoid", "SimpleNNSigmoid"): lambda: _mlp(10, 5, 1, tail=(nn.Sigmoid(),)),
    ("softmax_mlp", "SoftmaxMLP"): lambda: nn.Sequential(nn.Flatten(), _mlp(784, 128, 64, 10), nn.Softmax(dim=1)),
    ("fashion_mlp", "FashionMLP"): lambda: nn.Sequential(nn.Flatten(), _mlp(784, 512, 512, 10)),
    ("design_card", "DesignCard"): lambda: nn.Sequential(nn.Flatten(), _mlp(784, 512, 512, 10)),
    ("cnn", "CNN"): lambda: nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(), _mlp(4096, 120, 84, 10)
    ),
    ("lstm_classifier", "LSTMClassifier"): lambda: nn.Sequential(
        _LastStep(nn.LSTM(10, 20, num_layers=2, batch_first=True)), nn.Linear(20, 2)
    ),
    ("sum_regressor", "SumRegressor"): lambda: _mlp(3, 4, 1),
    ("xor", "XOR"): lambda: nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid()),
    ("digits_mlp", "DigitsMLP"): lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10)
    ),
    ("inferred_cnn", "InferredCNN"): lambda: nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(64, 10),
    ),
    ("inferred_cnn", "TextClassifier"): _TextClassifier,
}

# Inputs for bare chains, which declare none.
BARE_INPUTS = {"design_card": "[N, 1, 28, 28]"}


def _models():
    for spec in good_specs():
        result = nndsl.check_file(spec, input=BARE_INPUTS.get(spec.stem))
        assert result.ok, spec
        for model in result.program.models:
            yield pytest.param(spec, model.name, id=f"{spec.stem}:{model.name}")


def test_every_model_has_a_hand_written_twin():
    listed = {(spec.stem, name) for spec, name in (p.values for p in _models())}
    assert listed == set(HAND_WRITTEN)


@pytest.mark.parametrize(("spec", "name"), list(_models()))
def test_built_module_runs_and_matches_checker(spec, name):
    torch.manual_seed(0)
    program = nndsl.check_file(spec, input=BARE_INPUTS.get(spec.stem)).program
    model_ir = program.model(name)
    module = nndsl.build(spec, model=name, input=BARE_INPUTS.get(spec.stem))
    assert isinstance(module, nn.Module)

    # every intermediate shape: hook each submodule, in the order the checker lists the layers
    seen: list[tuple[int, ...]] = []
    children = list(module.children())
    assert len(children) == len(model_ir.layers)
    for child in children:
        child.register_forward_hook(
            lambda _m, _i, out: seen.append(tuple((out[0] if isinstance(out, tuple) else out).shape))
        )
    x = random_input(model_ir.input)
    with torch.no_grad():
        y = module(x)
    for node, got in zip(model_ir.layers, seen):
        if node.selector in (None, "output"):
            assert got == concrete(node.output.shape), f"{node.text}: torch {got}, checker {node.output}"
    assert tuple(y.shape) == concrete(model_ir.output.shape)

    # parameter count: checker == built module == hand-written equivalent
    built = sum(p.numel() for p in module.parameters())
    hand = sum(p.numel() for p in HAND_WRITTEN[(spec.stem, name)]().parameters())
    assert model_ir.param_count == built == hand


def test_build_from_string_and_model_selection():
    text = "model A(x: [N, 4]) { Linear(4, 2) }\nmodel B(x: [N, 4]) { Linear(4, 3) -> Tanh }"
    assert nndsl.build(text, model="B")(torch.zeros(1, 4)).shape == (1, 3)
    assert nndsl.build(text)(torch.zeros(1, 4)).shape == (1, 2)


def test_build_names_a_missing_model_and_takes_a_file_name():
    with pytest.raises(ValueError, match="no model 'Cnn'.*did you mean 'CNN'"):
        nndsl.build("specs/cnn.nn", model="Cnn")
    assert nndsl.build(str(good_specs()[0].parent / "simple_nn.nn"))(torch.zeros(2, 10)).shape == (2, 1)


def test_build_raises_spec_error_with_all_diagnostics():
    with pytest.raises(nndsl.SpecError) as info:
        nndsl.build("model A(x: [N, 4]) { Linear(5, 2) -> Lnear(2, 2) }")
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["E101", "E201"]
    assert "Lnear" in str(info.value)


def test_build_a_model_named_like_a_builtin():
    module = nndsl.build("model list(x: [N, 3]) { Linear(3, 2) }", model="list")
    assert module(torch.zeros(1, 3)).shape == (1, 2)
