"""The ONNX mapping of every layer, run: each accepted example row (and each ``onnx_examples``
row) is exported as a one-layer model and onnxruntime's output compared with torch's."""

from __future__ import annotations

import pytest

from nndsl.layers import REGISTRY

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from onnx_support import export_and_verify, one_layer_spec  # noqa: E402

ROWS = [
    pytest.param(call, given, id=f"{call} on {given}")
    for name, layer in sorted(REGISTRY.items())
    for call, given in [(c, g) for c, g, want in layer.examples if not want.startswith(("E", "W"))]
    + list(layer.onnx_examples)
    if "*" not in given
]


@pytest.mark.parametrize(("call", "given"), ROWS)
def test_layer_matches_torch(call, given):
    _, verified = export_and_verify(one_layer_spec(call, given))
    assert verified.reference == "torch"
    assert verified.max_diff <= 1e-5


def test_every_layer_has_an_onnx_mapping():
    missing = [name for name, layer in REGISTRY.items() if not layer.exports_to_onnx()]
    assert not missing, f"layers without an ONNX mapping: {missing}"
