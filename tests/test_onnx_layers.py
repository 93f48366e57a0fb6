"""The ONNX mapping of every layer, run: each accepted example row (and each ``onnx_examples``
row) is exported as a one-layer model and onnxruntime's output compared with torch's."""

from __future__ import annotations

import pytest

import nndsl
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


UNSUPPORTED = [
    ("Embedding(10, 4, max_norm=1.0)", "long[N, T]", 21, "rescales its weight rows"),
    ("AvgPool2d(3, ceil_mode=True, divisor_override=2)", "[N, 1, 8, 8]", 21, "divisor_override"),
    ("AvgPool2d(2)", "long[N, 1, 4, 4]", 21, "average pool of integers"),
    ("AdaptiveAvgPool2d(3)", "[N, 2, H, W]", 21, "symbolic size H to 3"),
    ("AdaptiveMaxPool2d((2, None))", "[N, 2, H, 5]", 21, "symbolic size H to 2"),
    ("Upsample(size=(4, 4), mode='area')", "[N, 2, 8, 8]", 21, "mode='area'"),
    ("Conv2d(2, 2, 3, padding=1, padding_mode='circular')", "[N, 2, 5, 5]", 18, "from opset 19"),
]


@pytest.mark.parametrize(("call", "given", "opset", "reason"), UNSUPPORTED)
def test_configurations_without_onnx_equivalent_are_reported_before_export(call, given, opset, reason):
    from nndsl import export

    result = nndsl.check_source(one_layer_spec(call, given), "<onnx test>")
    assert result.ok, [d.message for d in result.diagnostics]
    model = result.program.models[0]
    with pytest.raises(export.ExportDiagnostics) as caught:
        export.preflight(result.program, model, opset)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E601" and reason in diagnostic.message
    assert diagnostic.line_col == (2, 5)  # the layer's own line in the spec


INPLACE = sorted(name for name, layer in REGISTRY.items() if any(p.name == "inplace" for p in layer.params))


@pytest.mark.parametrize("name", INPLACE)
def test_an_inplace_first_layer_leaves_the_verification_inputs_alone(name):
    """torch runs first on the very inputs onnxruntime reads next: an in-place layer must not change them."""
    required = {"Threshold": "0.5, -1.0, "}.get(name, "")  # arguments without a default
    shape = "[N, 2, 8]" if name == "Dropout1d" else "[N, 2, 3, 8]"  # Dropout1d takes 2-D or 3-D input
    spec = f"model M(x: {shape}) {{\n    {name}({required}inplace=True) -> Linear(8, 3)\n}}\n"
    _, verified = export_and_verify(spec)
    assert verified.max_diff <= 1e-5


def _upsample_grid():
    """Scale factors whose float32 form is not exact (0.9, 1.1, 2.7), or whose output is not
    in * factor (1.5, 2.5 on odd sizes), on fixed sizes from 5 to 37 and on symbolic ones."""
    rows = []
    for mode in ("nearest", "nearest-exact", "bilinear", "bicubic"):
        for factor in (0.9, 1.1, 1.5, 2.5, 2.7, 3.0):
            for size in ("5, 7", "34, 37"):
                rows.append((f"Upsample(scale_factor={factor}, mode='{mode}')", f"[N, 2, {size}]"))
        for extra in (", recompute_scale_factor=True", ", align_corners=True"):
            if not (extra.startswith(", align") and mode.startswith("nearest")):
                rows.append((f"Upsample(scale_factor=1.7, mode='{mode}'{extra})", "[N, 2, H, W]"))
        rows.append((f"Upsample(scale_factor=2.5, mode='{mode}')", "[N, 2, H, W]"))
        rows.append((f"Upsample(size=(40, 3), mode='{mode}')", "[N, 2, 13, 5]"))
    rows.append(("Upsample(scale_factor=0.5, mode='bilinear')", "[N, 2, 2, 3]"))  # an output of length 1
    rows.append(("Upsample(scale_factor=0.5, mode='bicubic')", "[N, 2, 3, 2]"))
    rows.append(("Upsample(scale_factor=0.5)", "[N, 2, 3, 2]"))
    rows.append(("Upsample(scale_factor=1.5, mode='linear')", "[N, 2, 35]"))
    rows.append(("Upsample(scale_factor=0.9, mode='trilinear', align_corners=True)", "[N, 1, D, 6, W]"))
    return rows


@pytest.mark.parametrize(("call", "given"), _upsample_grid())
def test_upsample_reproduces_torch_sizes_and_coordinates(call, given):
    """torch maps output to input coordinates with 1/scale_factor (not in/out) in float32, and sizes
    with floor(in * scale_factor) in float64: the export must agree to the last index."""
    _, verified = export_and_verify(one_layer_spec(call, given))
    assert verified.max_diff <= verified.limit


PAD_UNSUPPORTED = [
    ("ReflectionPad1d((-4, 3))", "[N, 2, 5]", 21, "reads values that the crop removes"),
    ("ReplicationPad1d((-1, 2))", "[N, 2, L]", 21, "reads values that the crop removes"),
    ("CircularPad2d(1)", "[N, 2, 4, 4]", 18, "from opset 19"),
]


@pytest.mark.parametrize(("call", "given", "opset", "reason"), PAD_UNSUPPORTED)
def test_paddings_without_onnx_equivalent_are_reported_before_export(call, given, opset, reason):
    test_configurations_without_onnx_equivalent_are_reported_before_export(call, given, opset, reason)


@pytest.mark.parametrize(
    ("call", "given"),
    [
        ("ReflectionPad1d((-1, 3))", "[N, 2, 6]"),
        ("ReplicationPad2d((-1, 2, 3, -2))", "[N, 2, 4, 5]"),
        ("ReflectionPad3d((1, 0, -1, 1, 2, -1))", "[2, 4, 4, 4]"),
        ("ConstantPad2d((1, -2, 0, 3), 2.5)", "int32[N, 2, 4, 5]"),
    ],
)
def test_a_crop_beside_padding_exports_as_torch_computes_it(call, given):
    _, verified = export_and_verify(one_layer_spec(call, given))
    assert verified.max_diff <= 1e-5
