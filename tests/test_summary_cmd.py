"""``nndsl summary``: the MAC and parameter figures against torch's own counters on the whole zoo,
the symbolic totals, the depth collapse, the three formats (JSON validated against its shipped
schema) and the usage errors (one line, exit 2, nothing on stdout)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest
from conftest import ROOT, SPECS, good_specs, zoo_specs

import nndsl
from nndsl.backends.summary_table import at, summarize
from nndsl.cli import main
from nndsl.costs import LAYER_RULES, OPERATOR_RULES, ZERO_LAYERS, ZERO_OPERATORS
from nndsl.layers import REGISTRY as LAYERS
from nndsl.operators import REGISTRY as OPERATORS
from nndsl.shapes import Sym, substitute

#: the symbols' sizes in the zoo comparison: small, so that the expressions are checked at sizes
#: other than the declared ones cheaply (the computation runs on torch's meta device)
SIZES = {"N": 2, "T": 9, "S": 7}


def _models() -> list:
    return [p for p in zoo_specs() if p.stem != "resnet_blocks"]


def test_every_layer_and_operator_has_a_cost_rule_or_a_documented_zero():
    layers = {cls.dsl_name() for cls in LAYERS.values()}
    assert layers == set(LAYER_RULES) | ZERO_LAYERS
    assert not set(LAYER_RULES) & ZERO_LAYERS
    assert set(OPERATORS) == set(OPERATOR_RULES) | ZERO_OPERATORS
    assert not set(OPERATOR_RULES) & ZERO_OPERATORS


@pytest.mark.parametrize("spec", _models(), ids=lambda p: p.stem)
def test_matrix_product_macs_and_params_equal_torch_counters(spec):
    """Half of FlopCounterMode's FLOPs of the built module, and sum(p.numel()), on every zoo model."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    result = nndsl.check_file(spec)
    (model,) = result.program.models
    bound = {Sym(k): v for k, v in SIZES.items()}
    summary = summarize(model, result.source, 3, bound)
    with torch.device("meta"):
        # training mode: in eval mode a padding-masked TransformerEncoder takes torch's nested-tensor
        # path, which has no meta kernels (and skips padded positions); the dense computation is
        # what the summary counts
        module = nndsl.build(spec).train()
    dtypes = {"int64": torch.long, "bool": torch.bool}
    inputs = [
        torch.empty(
            tuple(substitute(d, bound) for d in t.shape.dims), dtype=dtypes.get(t.dtype, torch.float32), device="meta"
        )
        for t in model.input_types
    ]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    assert 2 * at(summary.totals["matmul_macs"], bound) == counter.get_total_flops()
    assert summary.totals["params"] == sum(p.numel() for p in module.parameters())
    macs, matmul, other = (at(summary.totals[k], bound) for k in ("macs", "matmul_macs", "other_macs"))
    assert macs == matmul + other and other > 0
    assert at(summary.totals["flops"], bound) == 2 * macs


def _json(capsys, *args) -> dict:
    assert main(["summary", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_totals_are_expressions_in_the_symbols_evaluated_at_the_bindings(capsys):
    spec = SPECS / "zoo" / "text_transformer.nn"
    one = _json(capsys, spec)["models"][0]
    assert one["bindings"] == {"N": 1} and one["symbols"] == ["N", "T"]
    macs = one["totals"]["macs"]
    assert macs["value"] is None and "N*T*T" in macs["expr"]  # attention is quadratic in T
    bound = _json(capsys, spec, "--input", "[4, 16]")["models"][0]
    assert bound["bindings"] == {"N": 4, "T": 16}
    assert bound["totals"]["macs"]["expr"] == macs["expr"]
    # the one expression is the count at every size: torch's counter at two others agrees with it
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    result = nndsl.check_file(spec)
    matmul = summarize(result.program.models[0], result.source).totals["matmul_macs"]
    with torch.device("meta"):
        # training mode: in eval mode a padding-masked TransformerEncoder takes torch's nested-tensor
        # path, which has no meta kernels (and skips padded positions); the dense computation is
        # what the summary counts
        module = nndsl.build(spec).train()
    for n, t in ((1, 5), (3, 11)):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(torch.empty((n, t), dtype=torch.long, device="meta"))
        assert 2 * at(matmul, {Sym("N"): n, Sym("T"): t}) == counter.get_total_flops()


def test_batch_scales_a_conv_net_linearly(capsys):
    spec = SPECS / "zoo" / "resnet18.nn"
    one = _json(capsys, spec)["models"][0]["totals"]
    eight = _json(capsys, spec, "--batch", "8")["models"][0]["totals"]
    assert eight["macs"]["value"] == 8 * one["macs"]["value"]
    assert eight["activation_bytes"]["value"] == 8 * one["activation_bytes"]["value"]
    assert eight["params"] == one["params"] == 11_689_512
    assert one["input_bytes"]["value"] == 3 * 224 * 224 * 4
    assert one["param_bytes"] == 4 * one["params"]


def test_the_costs_of_a_small_model(tmp_path, capsys):
    spec = tmp_path / "m.nn"
    spec.write_text(
        "model M(x: [N, 3, 8, 8]) {\n"
        "    Conv2d(3, 4, 3, padding=1, groups=1) -> ReLU -> MaxPool2d(2)\n"
        "    -> Flatten -> Linear(64, 10)\n"
        "}\n"
    )
    out = _json(capsys, spec, "--batch", "2")["models"][0]
    rows = {r["name"].split("(")[0]: r for r in out["rows"]}
    assert rows["Conv2d"]["matmul_macs"]["value"] == 2 * 8 * 8 * 4 * 3 * 9
    assert rows["ReLU"]["other_macs"]["value"] == 2 * 4 * 8 * 8
    assert rows["MaxPool2d"]["other_macs"]["value"] == 2 * 4 * 4 * 4 * 4
    assert rows["Linear"]["matmul_macs"]["value"] == 2 * 64 * 10
    assert rows["Linear"]["activation_bytes"]["value"] == 2 * 10 * 4
    assert rows["Linear"]["params"] == 650
    total = sum(r["macs"]["value"] for r in out["rows"])
    assert out["totals"]["macs"]["value"] == total


def test_depth_collapses_blocks_without_changing_the_totals(capsys):
    spec = SPECS / "zoo" / "resnet50.nn"
    deep = _json(capsys, spec, "--depth", "9")["models"][0]
    flat = _json(capsys, spec, "--depth", "0")["models"][0]
    assert deep["totals"] == flat["totals"]
    assert {r["depth"] for r in flat["rows"]} == {0}
    assert max(r["depth"] for r in deep["rows"]) >= 3
    assert len(flat["rows"]) < len(deep["rows"])
    assert sum(r["params"] for r in flat["rows"]) == flat["totals"]["params"]
    assert sum(r["macs"]["value"] for r in flat["rows"]) == flat["totals"]["macs"]["value"]


def _schema() -> dict:
    return json.loads(resources.files("nndsl").joinpath("schemas/summary.schema.json").read_text())


@pytest.mark.parametrize("spec", good_specs() + _models(), ids=lambda p: p.stem)
def test_json_output_validates_against_the_shipped_schema(spec, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(_schema())
    validator.validate(_json(capsys, spec, "--depth", "1"))


def test_the_schema_is_a_valid_2020_12_schema_that_rejects_a_wrong_report():
    jsonschema = pytest.importorskip("jsonschema")
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "file": "x.nn", "models": [{"name": "M"}]}, schema)


def test_text_and_markdown(capsys):
    spec = SPECS / "zoo" / "lenet5.nn"
    assert main(["summary", str(spec)]) == 0
    text = capsys.readouterr().out
    assert "Parameters:                 61,706" in text
    assert "MACs:" in text and "FLOPs (2 x MACs):" in text and "Forward activations:" in text
    assert main(["summary", str(spec), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| layer | where | output | params | MACs | activations |" in markdown
    assert "| Parameters | 61,706" in markdown


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "Nope"], "has no model 'Nope' (it has LeNet5)"),
        (["--depth", "-1"], "--depth must be 0 or more"),
        (["--batch", "0"], "--batch must be 1 or more"),
        (["--input", "[1, 1, 32"], "is not a shape"),
        (["--input", "[1, 32, 32]"], "has rank 3"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message, capsys):
    assert main(["summary", str(SPECS / "zoo" / "lenet5.nn"), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and message in err


def test_a_spec_with_errors_exits_1(capsys):
    assert main(["summary", str(SPECS / "bad" / "mlp_mismatch.nn")]) == 1
    assert capsys.readouterr().out == ""


def test_the_command_imports_no_torch():
    code = (
        "import sys; from nndsl.cli import main; "
        f"rc = main(['summary', {str(SPECS / 'zoo' / 'vit_b_16.nn')!r}, '--format', 'json']); "
        "assert rc == 0 and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_bare_chain_takes_its_input_from_the_command_line(tmp_path, capsys):
    spec = tmp_path / "chain.nn"
    spec.write_text("Conv2d(3, 8, 3) -> ReLU -> Flatten\n")
    unknown = _json(capsys, spec)["models"][0]
    assert unknown["totals"]["input_bytes"] == {"value": None, "expr": "unknown"}
    assert unknown["totals"]["macs"]["value"] is None
    given = _json(capsys, spec, "--input", "[2, 3, 10, 10]")["models"][0]
    assert given["totals"]["input_bytes"]["value"] == 2 * 3 * 10 * 10 * 4
    assert given["totals"]["matmul_macs"]["value"] == 2 * 8 * 8 * 8 * 3 * 9
    assert given["symbols"] == []


def test_a_file_without_a_model_is_a_usage_error(tmp_path, capsys):
    spec = tmp_path / "blocks.nn"
    spec.write_text("block B(x: [N, 4]) {\n    Linear(4, 4)\n}\n")
    assert main(["summary", str(spec)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "defines no model" in err


@pytest.mark.parametrize("spec", _models(), ids=lambda p: p.stem)
def test_the_rows_add_up_to_the_totals_at_every_depth(spec):
    """Top-level rows (depth 0) and leaf rows (fully expanded) each sum to the totals: a shared
    module applied again holds no weights, a tied weight is one row of minus its size."""
    result = nndsl.check_file(spec)
    model = result.program.models[0]
    bound = {Sym(k): v for k, v in SIZES.items()}
    flat = summarize(model, result.source, 0, bound)
    deep = summarize(model, result.source, 99, bound)
    leaves = [r for r in deep.rows if r.kind in ("layer", "op", "tensor", "sum", "tie")]
    for rows in (flat.rows, leaves):
        assert sum(r.params for r in rows) == model.param_count
        assert sum(at(r.cost.total, bound) for r in rows) == at(flat.totals["macs"], bound)
    assert sum(at(r.activation_bytes, bound) for r in leaves) == at(deep.totals["activation_bytes"], bound)
