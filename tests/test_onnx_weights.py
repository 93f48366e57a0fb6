"""Weights files as people have them: narrow floats widen exactly (bfloat16, float16, float8, in
.pt and .safetensors, the latter without torch), sparse tensors densify; what has no exact float32
form (complex, quantized, meta tensors, block-scaled formats) and keys that are not names are
refused with a message naming the key."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

import nndsl
from nndsl import export as onnx_api

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from test_onnx_export import _nndsl  # noqa: E402

from nndsl.backends.torch_build import build_model, fresh_weights  # noqa: E402

SPEC = "model W(x: [N, 4]) {\n    Linear(4, 3) -> ReLU -> Linear(3, 2)\n}\n"


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "w.nn"
    path.write_text(SPEC)
    return path


def _state(spec) -> dict:
    program = nndsl.check_file(spec).program
    rng = np.random.default_rng(1)
    return {k: torch.from_numpy(rng.standard_normal(v.shape).astype(np.float32)) for k, v in fresh_weights(program, program.models[0]).items()}  # fmt: skip


def _exported_weights(path) -> dict:
    return {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


NARROW = [torch.bfloat16, torch.float16, torch.float8_e4m3fn, torch.float8_e5m2]


@pytest.mark.parametrize("dtype", NARROW, ids=str)
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_narrow_floats_widen_exactly(tmp_path, spec, dtype, suffix):
    state = {k: v.to(dtype).contiguous() for k, v in _state(spec).items()}
    path = tmp_path / f"w{suffix}"
    (torch.save if suffix == ".pt" else safetensors_torch.save_file)(state, str(path))
    out = tmp_path / "w.onnx"
    done = nndsl.export_onnx(spec, out, weights=path)
    assert done.verified.max_diff <= 1e-5
    got = _exported_weights(out)
    for key, value in state.items():
        assert got[key].dtype == np.float32
        assert np.array_equal(got[key], value.float().numpy()), key  # bit for bit: the widening is exact


def test_bfloat16_safetensors_needs_no_torch(tmp_path, spec):
    path = tmp_path / "w.safetensors"
    safetensors_torch.save_file({k: v.bfloat16() for k, v in _state(spec).items()}, str(path))
    run = _nndsl(
        "export", spec, "--weights", path, "-o", tmp_path / "w.onnx",
        python_prefix="import sys; sys.modules['torch'] = None; sys.modules['safetensors'] = None; ",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "onnx.reference" in run.stderr


def test_a_sparse_tensor_is_made_dense(tmp_path, spec):
    state = _state(spec)
    path = tmp_path / "w.pt"
    torch.save({k: v.to_sparse() for k, v in state.items()}, path)
    out = tmp_path / "w.onnx"
    nndsl.export_onnx(spec, out, weights=path)
    got = _exported_weights(out)
    assert all(np.array_equal(got[k], v.numpy()) for k, v in state.items())


def _quantized(v):
    return torch.quantize_per_tensor(v, 0.1, 0, torch.qint8)


REFUSED = [
    ("complex", lambda s: {k: v.to(torch.complex64) for k, v in s.items()}, "'fc1.weight' is complex"),
    ("meta", lambda s: {k: v.to("meta") for k, v in s.items()}, "'fc1.weight' is a meta tensor"),
    ("quantized", lambda s: {k: _quantized(v) for k, v in s.items()}, "'fc1.weight' is quantized"),
    ("integer key", lambda s: {**s, 3: torch.zeros(1)}, "has the key 3 (int)"),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("kind", "make", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_has_no_exact_float32_form_is_refused_by_key(tmp_path, spec, kind, make, message):
    path = tmp_path / "w.pt"
    torch.save(make(_state(spec)), path)
    with pytest.raises(onnx_api.ExportFailure, match=re.escape(message)):
        nndsl.export_onnx(spec, tmp_path / "w.onnx", weights=path)
    assert not (tmp_path / "w.onnx").exists()


def _raw_safetensors(path, key, dtype, shape, data: bytes) -> None:
    header = json.dumps({key: {"dtype": dtype, "shape": shape, "data_offsets": [0, len(data)]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


@pytest.mark.parametrize(
    ("dtype", "shape", "size", "message"),
    [
        ("C64", [3], 24, "'fc1.bias' is complex (C64)"),
        ("F4", [3], 2, "'fc1.bias' is F4, a format nndsl does not convert"),
        ("F32", [3], 8, "does not match its shape [3]"),
    ],
)
def test_safetensors_without_an_exact_float32_form_or_broken_is_refused(tmp_path, spec, dtype, shape, size, message):
    path = tmp_path / "w.safetensors"
    _raw_safetensors(path, "fc1.bias", dtype, shape, bytes(size))
    with pytest.raises(onnx_api.ExportFailure, match=re.escape(message)):
        onnx_api.read_weights(str(path))


def test_float64_rounds_as_load_state_dict_does(tmp_path, spec):
    state = {k: v.double() / 3 for k, v in _state(spec).items()}
    path = tmp_path / "w.pt"
    torch.save(state, path)
    out = tmp_path / "w.onnx"
    nndsl.export_onnx(spec, out, weights=path)
    program = nndsl.check_file(spec).program
    module = build_model(program, program.models[0])
    module.load_state_dict(state)
    got = _exported_weights(out)
    assert all(np.array_equal(got[k], v.detach().numpy()) for k, v in module.state_dict().items())
