"""Helpers of the ONNX tests: export a spec's model with torch's fresh weights made less trivial,
and verify it against torch."""

from __future__ import annotations

import numpy as np

import nndsl
from nndsl.backends import torch_build
from nndsl.backends.onnx_export import DEFAULT_OPSET, export_model
from nndsl.backends.onnx_verify import verify
from nndsl.backends.torch_build import fresh_weights


def varied(weights: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh weights with every constant tensor (a norm's ones and zeros, running statistics,
    zeroed biases) replaced by random values, so that a wrong mapping of them shows."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in weights.items():
        value = np.array(value)
        if value.dtype.kind == "f" and value.size and np.all(value == value.flat[0]):
            if key.endswith("running_var"):
                value = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
            else:
                value = (value + rng.normal(0, 0.3, value.shape)).astype(value.dtype)
        out[key] = value
    return out


def export_and_verify(text: str, opset: int = DEFAULT_OPSET, fold: bool = True, seed: int = 0):
    """Check ``text``, export its first model with varied fresh weights, verify against torch."""
    result = nndsl.check_source(text, "<onnx test>")
    assert result.ok, [d.message for d in result.diagnostics]
    program = result.program
    model = program.models[0]
    weights = varied(fresh_weights(program, model, seed), seed)
    exported = export_model(program, model, weights, opset=opset, fold_batchnorm=fold)
    verified = verify(program, model, exported.proto, weights, exported.output_names, build=torch_build.build_model)
    return exported, verified


def run_both(program, model, weights, exported, feeds: dict) -> tuple[np.ndarray, np.ndarray]:
    """The exported graph's one output under onnxruntime and the built module's under torch, on
    the same ``feeds`` (bool inputs given to torch as bool); the torch output is checked finite."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(exported.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, feeds)
    module = torch_build.build_model(program, model, weights).eval()
    args = [torch.tensor(feeds[n]) for n in model.input_names]
    args = [a.bool() if t.dtype == "bool" else a for a, t in zip(args, model.input_types)]
    with torch.no_grad():
        want = module(*args).numpy()
    assert np.isfinite(want).all()
    return got, want


def one_layer_spec(call: str, shape: str) -> str:
    return f"model OneLayer(x: {shape}) {{\n    {call}\n}}\n"
