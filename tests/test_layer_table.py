"""Table tests: every layer's own example rows (call, input shape, output shape or error code)."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.layers import REGISTRY
from nndsl.layers.base import Layer

ROWS = [
    pytest.param(name, call, given, expected, id=f"{call} on {given}")
    for name, layer in sorted(REGISTRY.items())
    for call, given, expected in layer.examples
]


@pytest.mark.parametrize(("name", "call", "given", "expected"), ROWS)
def test_example_row(name, call, given, expected):
    assert call.split("(")[0].split(".")[0] == name
    # "[*]" stands for a bare chain checked without --input (unknown leading dims)
    result = nndsl.check_source(call, "<row>", input=None if given == "[*]" else given)
    if expected.startswith(("E", "W")):
        codes = [d.code for d in result.diagnostics]
        assert expected in codes, (codes, [d.message for d in result.diagnostics])
    else:
        assert result.ok, [d.message for d in result.diagnostics]
        assert str(result.program.models[0].output.shape) == expected


def test_registry_contract():
    """Every registered layer is complete: docstring, example rows with both outcomes, a rule."""
    for name, layer in REGISTRY.items():
        assert issubclass(layer, Layer)
        assert (layer.__doc__ or "").strip(), f"{name} has no docstring"
        assert layer.examples, f"{name} has no example rows"
        assert layer.output is not Layer.output, f"{name} has no shape rule"
        two_inputs = name in (
            "CosineSimilarity",
            "PairwiseDistance",
            "Bilinear",
            "TransformerDecoderLayer",
            "TransformerDecoder",
        )  # a chain gives one tensor
        accepted = any(not exp.startswith("E") for _, _, exp in layer.examples)
        assert accepted or two_inputs, f"{name} has no accepted example"
        for p in layer.params:
            assert p.name.isidentifier()


REQUIRED_LAYERS = """Linear Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d MaxPool1d MaxPool2d MaxPool3d
AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveMaxPool2d BatchNorm1d BatchNorm2d
BatchNorm3d LayerNorm GroupNorm InstanceNorm2d Dropout Dropout2d Flatten Unflatten Identity Embedding RNN LSTM
GRU Upsample ZeroPad2d ReLU ReLU6 LeakyReLU PReLU ELU SELU GELU SiLU Mish Hardswish Hardsigmoid Sigmoid Tanh Softplus
Softmax LogSoftmax BatchNorm""".split()


def test_required_layers_are_registered():
    missing = [n for n in REQUIRED_LAYERS if n not in REGISTRY]
    assert not missing


def test_torch_classes_exist():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    for name, layer in REGISTRY.items():
        if name == "BatchNorm":
            continue  # an alias: emitted as the BatchNorm1d/2d/3d it resolves to
        if layer.helper is not None:  # torch.nn has none: the generated file defines the class
            assert f"class {layer.torch_name()}(nn.Module):" in layer.helper, name
            continue
        if not layer.has_module:  # a tensor method, named Tensor.<method>
            assert hasattr(torch.Tensor, layer.torch_name().removeprefix("Tensor.")), name
            continue
        torch_class = getattr(nn, layer.torch_name(), None)
        assert torch_class is not None, f"torch.nn has no {layer.torch_name()}"
        import inspect

        signature = inspect.signature(torch_class.__init__).parameters.values()
        torch_params = [p.name for p in signature if p.kind is not p.KEYWORD_ONLY][1:]
        torch_keywords = [p.name for p in signature if p.kind is p.KEYWORD_ONLY]
        ours = [p.name for p in layer.params if not p.keyword_only]
        # positional order and names follow torch's signature, keyword-only ones are torch's
        if not any(p in ("args", "kwargs") for p in torch_params):
            assert ours == torch_params[: len(ours)], (name, ours, torch_params)
        for p in layer.params:
            assert not p.keyword_only or p.name in torch_keywords, (name, p.name)
