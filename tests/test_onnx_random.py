"""Verifying the ONNX export of a model with a random operation (a VAE's reparameterisation):
outputs that do not depend on the random values are compared by value, the others by shape,
dtype and finiteness, and the verification result says which."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.backends import onnx_verify
from nndsl.operators import REGISTRY

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

VAE = """model VAE(x: [N, 16]) {
    h = x -> Linear(16, 12) -> ReLU
    mu = h -> Linear(12, 4)
    logvar = h -> Linear(12, 4)
    scale = exp(logvar * 0.5)
    z = mu + randn_like(scale) * scale
    out = z -> Linear(4, 16) -> Sigmoid
    return out, mu, logvar, scale
}
"""


def _model():
    result = nndsl.check_source(VAE, "vae.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    return result.program.models[0]


def test_outputs_depending_on_random_values_are_found():
    assert onnx_verify.random_outputs(_model()) == (0,)


def test_vae_export_verifies_its_deterministic_outputs_by_value():
    from onnx_support import export_and_verify

    exported, verified = export_and_verify(VAE)
    assert verified.by_shape == (exported.output_names[0],)
    assert len(verified.cases) == 2


def test_a_wrong_mapping_of_a_deterministic_output_still_fails(monkeypatch):
    from onnx_support import export_and_verify

    def wrong(cls, g, node, inputs, types):
        return [g.op("Sigmoid", inputs)]

    monkeypatch.setattr(REGISTRY["exp"], "to_onnx", classmethod(wrong))
    with pytest.raises(onnx_verify.VerifyError, match="disagree"):
        export_and_verify(VAE)


def test_a_random_output_that_is_not_finite_still_fails(monkeypatch):
    from onnx_support import export_and_verify

    def wrong(cls, g, node, inputs, types):  # log(-exp(x)): NaN everywhere
        return [g.op("Log", [g.op("Neg", [g.op("Exp", inputs)])])]

    monkeypatch.setattr(REGISTRY["randn_like"], "to_onnx", classmethod(wrong))
    with pytest.raises(onnx_verify.VerifyError, match="'out' is not finite"):
        export_and_verify(VAE)


def test_export_summary_names_the_outputs_compared_by_shape(tmp_path, capsys):
    from nndsl.cli import main

    spec = tmp_path / "vae.nn"
    spec.write_text(VAE)
    assert main(["compile", str(spec), "--target", "onnx", "-o", str(tmp_path / "vae.onnx")]) == 0
    assert "(out: compared by shape, dtype and finiteness only" in capsys.readouterr().err
