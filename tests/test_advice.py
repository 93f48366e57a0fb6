"""Diagnostics that advise: did-you-mean only for plausible typos, torch layers nndsl lacks,
argument names from other frameworks, and where a cat could go."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.layers import REGISTRY
from nndsl.layers.registry import TORCH_LAYERS


def diagnostic(text: str, code: str):
    found = [d for d in nndsl.check_source(text, "<advice>").diagnostics if d.code == code]
    assert found, [(d.code, d.message) for d in nndsl.check_source(text, "<advice>").diagnostics]
    return found[0]


def layer_help(name: str) -> str:
    return diagnostic(f"model M(x: [N, 4]) {{ {name} }}", "E101").help


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("Lienar", "Linear"),
        ("Linaer", "Linear"),
        ("Liner", "Linear"),
        ("Sigmiod", "Sigmoid"),
        ("Sigmod", "Sigmoid"),
        ("Relu", "ReLU"),
        ("Conv2D", "Conv2d"),
        ("Conv2", "Conv2d"),
        ("BatchNorm2", "BatchNorm2d"),
        ("Dropuot", "Dropout"),
        ("Softmx", "Softmax"),
        ("Flaten", "Flatten"),
        ("Embeding", "Embedding"),
        ("LeakyRelu", "LeakyReLU"),
        ("Lstm", "LSTM"),
    ],
)
def test_a_plausible_typo_gets_the_layer_it_misspells(typed, meant):
    assert f"'{meant}'" in layer_help(typed)


# real torch layers near a name nndsl has, but another function: never "did you mean"
NEAR_MISSES = ["LPPool2d", "LPPool1d", "GRUCell", "LSTMCell", "RNNCell", "MaxUnpool2d", "EmbeddingBag"]


@pytest.mark.parametrize("name", NEAR_MISSES)
def test_a_torch_layer_nndsl_lacks_is_not_supported_yet(name):
    if name in REGISTRY:
        pytest.skip(f"{name} is a layer of nndsl now")
    text = layer_help(name)
    assert "not supported" in text and "did you mean" not in text


@pytest.mark.parametrize("name", ["Sparsemax2", "Perceptron", "Dense3", "Convolution"])
def test_a_name_far_from_every_layer_gets_no_guess(name):
    assert "did you mean" not in layer_help(name)


def test_the_torch_layer_list_is_torchs():
    torch = pytest.importorskip("torch")
    import inspect

    nn = torch.nn
    names = {
        n
        for n, c in vars(nn).items()
        if inspect.isclass(c) and issubclass(c, nn.Module) and not n.startswith("_") and not n.endswith("Loss")
    } - {"Module"}
    assert names == set(TORCH_LAYERS)
    # every layer of nndsl is torch's, or a tensor method, or the rank-resolved BatchNorm, or one
    # whose class the generated file defines (StochasticDepth and its alias DropPath)
    for name, layer in REGISTRY.items():
        assert name in TORCH_LAYERS or not layer.has_module or name == "BatchNorm" or layer.helper, name


@pytest.mark.parametrize(
    ("call", "want"),
    [
        ("Dropout(rate=0.5)", "p=0.5"),
        ("Linear(4, units=3)", "out_features=3"),
        ("Conv1d(4, filters=8, kernel_size=3)", "out_channels=8"),
        ("LSTM(5, units=8)", "hidden_size=8"),
        ("Linear(4, 3, use_bias=False)", "bias=False"),
        ("MaxPool1d(pool_size=2)", "kernel_size=2"),
        ("Linear(4, 3, activation='relu')", "-> ReLU"),
    ],
)
def test_keras_argument_names_are_mapped_to_torchs(call, want):
    diag = diagnostic(f"model M(x: [N, 4, 5]) {{ {call} }}", "E102")
    assert want in diag.help


@pytest.mark.parametrize(
    ("a", "b"),
    [([2, 4, 5], [2, 4, 6]), ([2, 4, 5], [2, 3, 6]), ([2, 4, 5, 7], [2, 3, 6, 7]), ([2, 4, 5], [3, 4, 6])],
)
def test_cat_suggests_another_dim_only_where_torch_would_cat(a, b):
    torch = pytest.importorskip("torch")
    text = f"model M(x: {a}, y: {b}) {{ cat(x, y, dim=1) }}"
    diag = diagnostic(text, "E208")
    suggested = diag.help.rsplit("cat along dim ", 1)[1] if diag.help and "cat along dim" in diag.help else None
    workable = []
    for d in range(len(a)):
        try:
            torch.cat([torch.zeros(a), torch.zeros(b)], d)
            workable.append(str(d))
        except RuntimeError:
            pass
    assert suggested == (workable[0] if workable else None)


def test_a_short_name_gaining_a_letter_is_no_typo():
    from nndsl.layers import suggest

    assert suggest("nn") is None  # not RNN: torch's module prefix
    assert suggest("Gru") == "GRU"


@pytest.mark.parametrize(
    ("written", "want"),
    [
        ("nn.ReLU", "write ReLU"),
        ("nn.Linear(4, 2)", "write Linear"),
        ("torch.nn.Tanh", "write Tanh"),
        ("nn.Hardsigmoid", "write Hardsigmoid"),
        ("nn.LPPool2d(2, 3)", "not supported"),
    ],
)
def test_torchs_module_path_is_named_with_or_without_parentheses(written, want):
    found = diagnostic(f"model M(x: [N, 4]) {{ {written} }}", "E101")
    assert "without the '" in found.message and want in found.help


def test_only_names_of_a_near_length_are_scored(monkeypatch):
    """A misspelt name is compared with the layers whose length is within the edits allowed: a
    name of 10,000 letters costs no edit-distance table at all (it took seconds)."""
    from nndsl import suggest as did_you_mean
    from nndsl.layers import suggest

    scored = []
    real = did_you_mean._edits
    monkeypatch.setattr(did_you_mean, "_edits", lambda a, b: scored.append(b) or real(a, b))
    assert suggest("X" * 10_000) is None and scored == []
    assert suggest("Lienar") == "Linear" and all(abs(len(c) - 6) <= 2 for c in scored)
