"""ONNX export of whole models: every spec and the zoo verified against torch, names and symbolic
dimensions, opsets, weights files, BatchNorm and constant folding, and every way it can fail."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nndsl
from nndsl import export as onnx_api
from nndsl.backends import onnx_export

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from conftest import ROOT, good_specs, zoo_specs  # noqa: E402
from onnx_support import export_and_verify, varied  # noqa: E402

from nndsl.backends.torch_build import build_model, fresh_weights  # noqa: E402

MODELS = [
    pytest.param(path, model.name, id=f"{path.name}:{model.name}")
    for path in good_specs() + zoo_specs()
    for model in (nndsl.check_file(path).program.complete_models if nndsl.check_file(path).ok else ())
    if not model.input.shape.rest
]


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _program(path):
    result = nndsl.check_file(path)
    assert result.ok
    return result.program


@pytest.mark.parametrize(("path", "name"), MODELS)
def test_every_model_exports_and_matches_torch(path, name):
    """Each model of specs/ and the zoo: varied weights (BatchNorm statistics included), folded."""
    program = _program(path)
    model = program.model(name)
    weights = varied(fresh_weights(program, model))
    exported = onnx_export.export_model(program, model, weights)
    from nndsl.backends.onnx_verify import verify

    verified = verify(program, model, exported.proto, weights, exported.output_names, build=build_model)
    assert verified.reference == "torch"
    assert len(verified.cases) == (2 if any(not isinstance(d, int) for d in model.input.shape.dims) else 1)
    assert verified.max_diff <= verified.limit  # 1e-5 of the outputs' magnitude (at least 1e-5)
    ops = {n.op_type for n in exported.proto.graph.node}
    assert "Dropout" not in ops
    if exported.folded:
        batch_norms = sum(n.layer.dsl_name().startswith("BatchNorm") for n in model.layers)
        assert (
            sum(n.op_type == "BatchNormalization" for n in exported.proto.graph.node) == batch_norms - exported.folded
        )


def test_names_and_symbolic_dimensions_come_from_the_spec():
    text = """
model Pair(tokens: long[N, T], extra: [N, 4]) {
    h = tokens -> Embedding(50, 8) -> GRU(8, 16, batch_first=True).last
    logits = cat(h, extra, dim=1) -> Linear(20, 3)
    return logits, h
}
"""
    exported, verified = export_and_verify(text)
    graph = exported.proto.graph
    assert [i.name for i in graph.input] == ["tokens", "extra"]
    assert [o.name for o in graph.output] == ["logits", "h"]

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert dims(graph.input[0]) == ["N", "T"]
    assert dims(graph.input[1]) == ["N", 4]
    assert dims(graph.output[0]) == ["N", 3]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [c.sizes for c in verified.cases] == [{"N": 1, "T": 5}, {"N": 2, "T": 9}]


def test_recurrent_export_keeps_batch_and_sequence_dynamic():
    """An LSTM exported once runs at batch 1 and 7, sequences 2 and 11 (the exporter never saw them)."""
    program = _program(ROOT / "specs" / "lstm_classifier.nn")
    model = program.models[0]
    weights = fresh_weights(program, model)
    exported = onnx_export.export_model(program, model, weights)
    session = _session(exported.proto)
    from nndsl.backends.torch_build import build_model

    module = build_model(program, model, weights)
    for batch, steps in ((1, 2), (7, 11)):
        x = np.random.default_rng(batch).standard_normal((batch, steps, 10)).astype(np.float32)
        (got,) = session.run(None, {"x": x})
        with torch.no_grad():
            want = module(torch.from_numpy(x)).numpy()
        assert got.shape == (batch, 2)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


CONV_BN = """
model ConvBN(x: [N, 3, H, W]) {
    Conv2d(3, 8, 3, padding=1, bias=False) -> BatchNorm2d(8) -> ReLU
    -> Conv2d(8, 8, 3, stride=2) -> BatchNorm2d(8) -> ReLU
    -> AdaptiveAvgPool2d(1) -> Flatten -> Linear(8, 4) -> BatchNorm1d(4) -> Dropout(0.5) -> Linear(4, 2)
}
"""


def test_batchnorm_folds_into_the_layer_before_and_parity_holds():
    folded, verified = export_and_verify(CONV_BN)
    ops = [n.op_type for n in folded.proto.graph.node]
    assert folded.folded == 3
    assert "BatchNormalization" not in ops and "Dropout" not in ops
    assert verified.max_diff <= verified.limit  # 1e-5 of the outputs' magnitude (at least 1e-5)
    unfolded, verified = export_and_verify(CONV_BN, fold=False)
    assert [n.op_type for n in unfolded.proto.graph.node].count("BatchNormalization") == 3
    assert len(folded.proto.graph.node) == len(unfolded.proto.graph.node) - 3


def test_no_node_computes_only_constants():
    exported, _ = export_and_verify(CONV_BN)
    constants = {t.name for t in exported.proto.graph.initializer}
    for node in exported.proto.graph.node:
        assert not all(i in constants for i in node.input if i), node.op_type


def test_batchnorm_with_two_readers_is_not_folded():
    text = """
model Two(x: [N, 4, 8, 8]) {
    c = x -> Conv2d(4, 4, 3, padding=1)
    b = c -> BatchNorm2d(4)
    return b + c
}
"""
    exported, verified = export_and_verify(text)
    assert exported.folded == 0
    assert [n.op_type for n in exported.proto.graph.node].count("BatchNormalization") == 1


@pytest.mark.parametrize("opset", range(onnx_export.MIN_OPSET, onnx_export.MAX_OPSET + 1))
def test_every_supported_opset(opset):
    text = """
model Mixed(x: [N, 3, 16, 16]) {
    Conv2d(3, 4, 3) -> BatchNorm2d(4) -> GELU -> MaxPool2d(2) -> Flatten -> LayerNorm(196) -> Linear(196, 5)
    -> Mish -> Softmax(dim=1)
}
"""
    exported, verified = export_and_verify(text, opset=opset)
    assert exported.proto.opset_import[0].version == opset
    assert verified.max_diff <= verified.limit  # 1e-5 of the outputs' magnitude (at least 1e-5)


def test_the_command_line_default_opset_is_the_library_default():
    run = _nndsl("export", "--help")
    assert f"ONNX opset (default {onnx_export.DEFAULT_OPSET})" in " ".join(run.stdout.split())


# ---------------------------------------------------------------- the command


def _nndsl(*args, cwd=None, env=None, python_prefix: str = ""):
    code = f"{python_prefix}import sys; from nndsl.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_compile_target_onnx_writes_a_verified_file(tmp_path):
    out = tmp_path / "fashion.onnx"
    run = _nndsl("compile", ROOT / "specs" / "fashion_mlp.nn", "--target", "onnx", "-o", out)
    assert run.returncode == 0, run.stderr
    assert "verified: onnx.checker full check; onnxruntime vs torch at N=1 and N=2" in run.stderr
    assert "Traceback" not in run.stderr
    proto = onnx.load(out)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].name == "x"


def test_compile_writes_one_file_per_model(tmp_path):
    spec = tmp_path / "two.nn"
    spec.write_text((ROOT / "specs" / "inferred_cnn.nn").read_text())
    run = _nndsl("compile", spec, "--target", "onnx")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["two_InferredCNN.onnx", "two_TextClassifier.onnx"]
    run = _nndsl("compile", spec, "--target", "onnx", "-o", tmp_path / "x.onnx")
    assert run.returncode == 2 and "--model" in run.stderr
    run = _nndsl("compile", spec, "--target", "onnx", "--model", "TextClassifier", "-o", tmp_path / "t.onnx")
    assert run.returncode == 0 and (tmp_path / "t.onnx").exists()


def test_unsupported_opset_is_an_error_never_replaced(tmp_path):
    out = tmp_path / "m.onnx"
    for opset in (onnx_export.MIN_OPSET - 1, onnx_export.MAX_OPSET + 1):
        run = _nndsl("compile", ROOT / "specs" / "xor.nn", "--target", "onnx", "--opset", opset, "-o", out)
        assert run.returncode == 2
        assert f"opset {opset} cannot be honoured" in run.stderr and "pass --opset N with N from" in run.stderr
        assert not out.exists()


def test_a_layer_without_onnx_equivalent_is_reported_at_its_line_before_any_work(tmp_path):
    spec = tmp_path / "renorm.nn"
    spec.write_text("model M(t: long[N, T]) {\n    Embedding(10, 4, max_norm=1.0) -> Mean(dim=1)\n}\n")
    run = _nndsl("compile", spec, "--target", "onnx")
    assert run.returncode == 1
    assert "error[E601]: Embedding cannot be exported to ONNX" in run.stderr
    assert f"{spec}:2:5" in run.stderr
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*tmp"))


def test_unknown_input_rank_needs_input(tmp_path):
    run = _nndsl("compile", ROOT / "specs" / "design_card.nn", "--target", "onnx", "-o", tmp_path / "d.onnx")
    assert run.returncode == 1 and "E603" in run.stderr and "--input" in run.stderr
    run = _nndsl(
        "compile",
        ROOT / "specs" / "design_card.nn",
        "--target",
        "onnx",
        "--input",
        "[B, 784]",
        "-o",
        tmp_path / "d.onnx",
    )
    assert run.returncode == 0, run.stderr
    assert onnx.load(tmp_path / "d.onnx").graph.input[0].type.tensor_type.shape.dim[0].dim_param == "B"


# ---------------------------------------------------------------- trained weights


def _trained(tmp_path, spec="digits_mlp.nn"):
    """A state_dict and a checkpoint as nndsl's training writes them, with weights unlike a fresh init."""
    program = _program(ROOT / "specs" / spec)
    model = program.models[0]
    weights = varied(fresh_weights(program, model, seed=5), seed=5)
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    torch.save(state, tmp_path / "model.pt")
    torch.save({"model": state, "optimizer": {}, "epoch": 3}, tmp_path / "checkpoint.pt")
    from safetensors.numpy import save_file

    save_file(weights, str(tmp_path / "model.safetensors"))
    return program, model, weights


def _output_for(path, feeds):
    return _session(onnx.load(path)).run(None, feeds)[0]


@pytest.mark.parametrize("name", ["model.pt", "checkpoint.pt", "model.safetensors"])
def test_export_with_trained_weights(tmp_path, name):
    program, model, weights = _trained(tmp_path)
    out = tmp_path / "digits.onnx"
    run = _nndsl("export", ROOT / "specs" / "digits_mlp.nn", "--weights", tmp_path / name, "-o", out)
    assert run.returncode == 0, run.stderr
    assert f"weights: {tmp_path / name}" in run.stderr
    from nndsl.backends.torch_build import build_model

    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = build_model(program, model, weights)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_output_for(out, {"x": x}), want, atol=1e-5, rtol=0)


def test_safetensors_export_works_without_torch(tmp_path):
    _trained(tmp_path)
    out = tmp_path / "digits.onnx"
    block = "import sys; sys.modules['torch'] = None; "
    run = _nndsl(
        "export", ROOT / "specs" / "digits_mlp.nn", "--weights", tmp_path / "model.safetensors", "-o", out,
        python_prefix=block,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "onnxruntime vs onnx.reference" in run.stderr and "torch is not installed" in run.stderr
    run = _nndsl("export", ROOT / "specs" / "digits_mlp.nn", "--weights", tmp_path / "model.pt", python_prefix=block)
    assert run.returncode == 2 and "needs torch" in run.stderr and ".safetensors" in run.stderr
    run = _nndsl("compile", ROOT / "specs" / "digits_mlp.nn", "--target", "onnx", python_prefix=block)
    assert run.returncode == 2 and "pip install -e" in run.stderr and "[torch]'" in run.stderr  # from the checkout


def test_train_then_export_the_safetensors_without_torch(tmp_path):
    """What nndsl's training writes is what export reads: model.safetensors equals model.pt."""
    run = _nndsl("train", ROOT / "specs" / "digits_mlp.nn", "--epochs", "1", "--out-dir", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    assert "model.pt, model.safetensors" in run.stdout
    from safetensors.numpy import load_file

    pt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    st = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert pt.keys() == st.keys() and all(np.array_equal(pt[k].numpy(), st[k]) for k in pt)
    out = tmp_path / "digits.onnx"
    run = _nndsl(
        "export", ROOT / "specs" / "digits_mlp.nn", "--weights", tmp_path / "run" / "model.safetensors", "-o", out,
        python_prefix="import sys; sys.modules['torch'] = None; ",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    program = _program(ROOT / "specs" / "digits_mlp.nn")
    from nndsl.backends.torch_build import build_model

    module = build_model(program, program.models[0], {k: v.numpy() for k, v in pt.items()})
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_output_for(out, {"x": x}), want, atol=1e-5, rtol=0)
    # the training's own checkpoint (optimizer and random states beside the model) reads too
    checkpoint = _nndsl(
        "export", ROOT / "specs" / "digits_mlp.nn", "--weights", tmp_path / "run" / "checkpoint.pt", "-o", out
    )
    assert checkpoint.returncode == 0, checkpoint.stderr


def test_missing_onnx_names_the_extra(tmp_path):
    run = _nndsl(
        "compile", ROOT / "specs" / "xor.nn", "--target", "onnx", "-o", tmp_path / "x.onnx",
        python_prefix="import sys; sys.modules['onnxruntime'] = None; ",
    )  # fmt: skip
    assert run.returncode == 2
    assert "pip install -e" in run.stderr and "[onnx]'" in run.stderr and "onnxruntime" in run.stderr
    assert "Traceback" not in run.stderr


def test_weights_of_another_shape_are_reported_at_the_layer(tmp_path):
    _trained(tmp_path)
    spec = tmp_path / "wider.nn"
    text = (ROOT / "specs" / "digits_mlp.nn").read_text()
    spec.write_text(text.replace("Linear(64, 128)", "Linear(64, 100)").replace("Linear(128,", "Linear(100,"))
    run = _nndsl("export", spec, "--weights", tmp_path / "model.pt", "-o", tmp_path / "w.onnx")
    assert run.returncode == 1, run.stderr
    assert "error[E602]" in run.stderr and "[128, 64], this layer's is [100, 64]" in run.stderr
    assert not (tmp_path / "w.onnx").exists()


def test_weights_from_another_spec(tmp_path):
    _trained(tmp_path)
    run = _nndsl("export", ROOT / "specs" / "xor.nn", "--weights", tmp_path / "model.pt", "-o", tmp_path / "x.onnx")
    assert run.returncode == 1 and "E602" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("content", [b"", b"not a torch file", b"\x80\x04garbage"])
def test_unreadable_weights_file(tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    run = _nndsl("export", ROOT / "specs" / "xor.nn", "--weights", bad, "-o", tmp_path / "x.onnx")
    assert run.returncode == 2 and "not a readable torch weights file" in run.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    run = _nndsl("export", ROOT / "specs" / "xor.nn", "--weights", bad, "-o", tmp_path / "x.onnx")
    assert run.returncode == 2 and "not a readable safetensors file" in run.stderr
    run = _nndsl("export", ROOT / "specs" / "xor.nn", "--weights", tmp_path / "missing.pt")
    assert run.returncode == 2 and "no such file" in run.stderr


def test_export_requires_weights():
    run = _nndsl("export", ROOT / "specs" / "xor.nn")
    assert run.returncode == 2 and "--weights" in run.stderr


# ---------------------------------------------------------------- torch's own exporter as a reference


def test_agrees_with_torch_onnx_export(tmp_path):
    """torch.onnx.export (dynamo) of the emitted module and nndsl's graph give the same outputs."""
    pytest.importorskip("onnxscript")
    program = _program(ROOT / "specs" / "cnn.nn")
    model = program.models[0]
    weights = fresh_weights(program, model)
    from nndsl.backends.torch_build import build_model

    module = build_model(program, model, weights)
    example = torch.randn(2, 3, 32, 32)
    torch.onnx.export(module, (example,), tmp_path / "torch.onnx", dynamo=True, verbose=False)
    ours = onnx_export.export_model(program, model, weights).proto
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    theirs = _session(onnx.load(tmp_path / "torch.onnx")).run(None, {"x": x})[0]
    mine = _session(ours).run(None, {"x": x})[0]
    np.testing.assert_allclose(mine, theirs, atol=1e-5, rtol=0)


def test_python_api(tmp_path):
    done = nndsl.export_onnx(ROOT / "specs" / "xor.nn", tmp_path / "xor.onnx")
    assert done.model == "XOR" and done.verified.max_diff <= 1e-5 and (tmp_path / "xor.onnx").exists()
    with pytest.raises(nndsl.SpecError, match="E601|max_norm"):
        nndsl.export_onnx("model M(t: long[N]) {\n    Embedding(5, 2, max_norm=1.0)\n}\n", tmp_path / "m.onnx")
    with pytest.raises(onnx_api.ExportFailure, match="opset 99") as failure:
        nndsl.export_onnx(ROOT / "specs" / "xor.nn", tmp_path / "x.onnx", opset=99)
    assert "pass opset=N with N from" in str(failure.value) and "--" not in str(failure.value)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "x.onnx").exists()


def test_tensor_operations():
    text = """
model Ops(a: [N, 6, 4], b: [N, 6, 4]) {
    s = a + b
    d = 2.0 - a
    p = s * d / 3.0
    q = b / s
    c = cat(p, q, dim=1)
    t = stack(p, q, dim=-1) -> Flatten(2)
    x, y = chunk(c, 2, dim=1)
    u, v, w = split(t, [4, 2, 2], dim=2)
    return x * y + u, v - w
}
"""
    exported, verified = export_and_verify(text)
    assert verified.max_diff <= verified.limit  # 1e-5 of the outputs' magnitude (at least 1e-5)
    assert len(exported.proto.graph.output) == 2


def test_an_unexportable_layer_in_an_imported_block_is_reported_at_the_use(tmp_path):
    (tmp_path / "blocks.nn").write_text("block Lookup(t: [N, T]) {\n    Embedding(10, 4, max_norm=1.0)\n}\n")
    spec = tmp_path / "main.nn"
    spec.write_text('from "blocks.nn" import Lookup\n\nmodel M(t: long[N, T]) {\n    Lookup -> Mean(dim=1)\n}\n')
    run = _nndsl("compile", spec, "--target", "onnx")
    assert run.returncode == 1, run.stderr
    assert "error[E601]" in run.stderr and f"{spec}:4:5" in run.stderr
    assert "at line 2 of" in run.stderr and "blocks.nn" in run.stderr


# ---------------------------------------------------------------- the verification's sizes, and skipping it


@pytest.mark.parametrize(
    "text",
    [
        "model M(x: [1, N, 4, L]) { MaxPool3d(3) }",  # N is a depth here, not a batch: 1 is too small
        "model M(x: [C, 3, 1, L]) { Reshape((4, 3, 1, 1)) }",  # C * L must be 4
        "model M(x: [N, C, L]) { MaxPool1d(3) -> Reshape((2, 5)) }",  # N * C * (L // 3) must be 10
    ],
)
def test_verification_finds_sizes_every_constraint_accepts(text):
    exported, verified = export_and_verify(text)
    assert len(verified.cases) == 2 and verified.cases[0].sizes != verified.cases[1].sizes


def test_no_sizes_to_verify_with_is_explained_at_the_model(tmp_path):
    spec = tmp_path / "m.nn"
    spec.write_text("model M(x: [N, 3, H, W]) {\n    Reshape((7, 5))\n}\n")  # 3 * N * H * W is never 35
    run = _nndsl("compile", spec, "--target", "onnx")
    assert run.returncode == 1, run.stderr
    assert "error[E605]: cannot verify the ONNX export of M: found no sizes for N, H, W" in run.stderr
    assert "torch says: shape '[7, 5]' is invalid" in run.stderr and "--no-verify" in run.stderr
    assert "bug in nndsl" not in run.stderr and not list(tmp_path.glob("*.onnx"))


def test_no_verify_writes_an_unverified_file_and_says_so(tmp_path):
    out = tmp_path / "xor.onnx"
    run = _nndsl(
        "compile", ROOT / "specs" / "xor.nn", "--target", "onnx", "--no-verify", "-o", out,
        python_prefix="import sys; sys.modules['onnxruntime'] = None; ",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "NOT verified (--no-verify)" in run.stderr and "verified: onnx.checker" not in run.stderr
    onnx.checker.check_model(onnx.load(out), full_check=True)
    done = nndsl.export_onnx(ROOT / "specs" / "xor.nn", tmp_path / "api.onnx", verify=False)
    assert done.verified is None and (tmp_path / "api.onnx").read_bytes() == out.read_bytes()
    for target in ("train", "module"):
        run = _nndsl("compile", ROOT / "specs" / "xor.nn", "--target", target, "--no-verify", "-o", tmp_path / "x.py")
        assert run.returncode == 2 and "--no-verify apply to --target onnx" in run.stderr
        assert not (tmp_path / "x.py").exists()


def test_verification_checks_the_graph_without_reading_the_weights_again(tmp_path, monkeypatch):
    """onnx.checker gets the graph with its weights declared, not the written file; onnxruntime
    runs the file; a fresh export builds the torch module once."""
    from nndsl.backends import torch_build

    checked, built = [], []
    real_check, real_build = onnx.checker.check_model, torch_build.build_model
    monkeypatch.setattr(
        onnx.checker, "check_model", lambda proto, **kw: checked.append(proto) or real_check(proto, **kw)
    )
    monkeypatch.setattr(torch_build, "build_model", lambda *a, **kw: built.append(a) or real_build(*a, **kw))
    done = nndsl.export_onnx(ROOT / "specs" / "cnn.nn", tmp_path / "cnn.onnx")
    (proto,) = checked
    assert isinstance(proto, onnx.ModelProto) and proto.ByteSize() * 10 < (tmp_path / "cnn.onnx").stat().st_size
    assert len(built) == 1 and done.verified.max_diff <= done.verified.limit


# ---------------------------------------------------------------- problems of the spec are never "a bug in nndsl"


def _compile_onnx(tmp_path, text: str):
    spec = tmp_path / "m.nn"
    spec.write_text(text)
    run = _nndsl("compile", spec, "--target", "onnx")
    assert "bug in nndsl" not in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert not list(tmp_path.glob("*.onnx"))
    return spec, run


@pytest.mark.parametrize("shape", ["[N, 3, 4]", "[N, 3, L]"])
def test_view_of_reordered_memory_is_refused_at_the_view(tmp_path, shape):
    """torch's view raises after Permute unless the sizes line up; ONNX's Reshape never would."""
    spec, run = _compile_onnx(tmp_path, f"model V(x: {shape}) {{\n    Permute((0, 2, 1)) -> View((-1, 3))\n}}\n")
    assert run.returncode == 1 and "error[E601]: View cannot be exported to ONNX" in run.stderr
    assert f"{spec}:2:27" in run.stderr and "use Reshape" in run.stderr


def test_sizes_beyond_64_bits_are_refused_where_they_arise(tmp_path):
    """The checker refuses a tensor no backend can hold (E119) before the export starts."""
    spec, run = _compile_onnx(tmp_path, "model M(x: [N, 3037000500, 3037000500]) {\n    Flatten -> ReLU\n}\n")
    assert run.returncode == 1 and "error[E119]" in run.stderr and f"{spec}:1:9" in run.stderr


def test_too_large_to_build_or_verify_is_a_message(tmp_path):
    _, run = _compile_onnx(tmp_path, "model M(x: [N, 4]) {\n    Linear(4, 100000000000)\n}\n")
    assert run.returncode == 2 and "not enough memory for M's 500,000,000,000 parameters" in run.stderr
    _, run = _compile_onnx(tmp_path, "model M(x: [N, 100000000000]) {\n    ReLU\n}\n")
    assert run.returncode == 1 and "error[E605]" in run.stderr and "--no-verify" in run.stderr
    _, run = _compile_onnx(tmp_path, "model M(x: [1, 300000000]) {\n    ReLU\n}\n")
    assert run.returncode == 1 and "error[E605]" in run.stderr and "help: export with --no-verify" in run.stderr


def test_the_library_names_its_parameters_where_the_command_names_its_flags(tmp_path):
    with pytest.raises(nndsl.SpecError) as failure:
        nndsl.export_onnx("model M(x: [1, 300000000]) {\n    ReLU\n}\n", tmp_path / "m.onnx")
    (diag,) = failure.value.diagnostics
    assert diag.help == "export with verify=False (the file is then not checked)"
    assert diag.message.endswith("export with verify=False")
    _, run = _compile_onnx(tmp_path, "model M(x: [1, 300000000]) {\n    ReLU\n}\n")
    assert "help: export with --no-verify (the file is then not checked)" in run.stderr
    assert "verify=False" not in run.stderr


def test_batchnorm_verifies_in_eval_mode_at_batch_1():
    """BatchNorm at a batch of one raises in training mode; the verification runs eval mode."""
    _, verified = export_and_verify("model M(x: [N, 8]) {\n    Linear(8, 4) -> BatchNorm1d(4)\n}\n")
    assert verified.cases[0].sizes == {"N": 1}
    result = nndsl.check_source("model M(x: [1, 8]) {\n    Linear(8, 4) -> BatchNorm1d(4)\n}\n")
    if result.ok:  # a batch-1 declaration: only inference is asked, which torch runs
        export_and_verify("model M(x: [1, 8]) {\n    Linear(8, 4) -> BatchNorm1d(4)\n}\n")


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_an_input_dtype_the_export_would_turn_into_float32_is_refused(tmp_path, dtype):
    _, run = _compile_onnx(tmp_path, f"model M(x: {dtype}[N, 4]) {{\n    Flatten\n}}\n")
    assert run.returncode == 1 and f"error[E601]: input x is {dtype}" in run.stderr
    assert "declare x as float32" in run.stderr


def test_the_size_search_runs_for_real_where_the_meta_device_cannot_build(monkeypatch):
    from nndsl.backends import torch_build

    real = torch_build.build_model

    def no_meta(*args, **kwargs):
        if torch.empty(0).device.type == "meta":
            raise NotImplementedError("no meta kernel")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch_build, "build_model", no_meta)
    _, verified = export_and_verify("model M(x: [1, N, 4, L]) { MaxPool3d(3) }")
    assert verified.cases[0].sizes["N"] >= 3
