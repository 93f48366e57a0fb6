"""Differential tests: every registered layer's shape rule against torch itself.

For each layer, the strategy in ``strategies.py`` draws calls and input shapes, many of them
configurations torch rejects. The checker must accept exactly what torch accepts, and then give
torch's output shape and parameter count. A layer registered without a strategy fails here.
Runs are derandomized, so CI sees the same examples every time.

The second half widens the cases (``strategies.judge``): other dtypes (float64, float16,
bfloat16, bool; the emitted module must run on them too), symbolic input sizes, zero sizes,
inferred arguments, chains of layers and graphs over inputs of mixed dtypes (broadcasting,
cat, stack, split, chunk). ``benchmarks/differential.py`` runs the same families at scale.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from strategies import (
    STRATEGIES,
    STRICTER,
    WARNED,
    Skip,
    chain_case,
    graph_case,
    judge,
    torch_input,
    torch_outcome,
    wide_case,
)

import nndsl
from nndsl.layers import REGISTRY

_SETTINGS = {"derandomize": True, "deadline": None, "database": None, "print_blob": False}


def _input_text(shape: tuple[int, ...], dtype: str) -> str:
    return f"{dtype}[{', '.join(map(str, shape))}]"


def _check(text: str, shape: tuple[int, ...], dtype: str):
    return nndsl.check_source(text, "<differential>", input=_input_text(shape, dtype))


#: layers of two tensors, which a chain cannot call (tests/test_attention_calls.py runs them in torch)
TWO_INPUTS = {"CosineSimilarity", "PairwiseDistance", "Bilinear", "TransformerDecoderLayer", "TransformerDecoder"}
#: layers whose argument is a layer value, which the strategies' literal calls cannot write
#: (tests/test_transformer_layers.py runs them in torch)
LAYER_ARGUMENTS = {"TransformerEncoder"}
CHAINABLE = sorted(set(REGISTRY) - TWO_INPUTS - LAYER_ARGUMENTS)


def test_every_strategy_names_a_registered_layer():
    assert sorted(set(STRATEGIES) - set(REGISTRY)) == []


@pytest.mark.parametrize("name", CHAINABLE)
def test_checker_agrees_with_torch(name):
    assert name in STRATEGIES, f"{name} is registered but tests/strategies.py has no strategy for it"

    @settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], **_SETTINGS)
    @given(STRATEGIES[name])
    def agrees(case):
        text, shape, dtype = case
        truth = torch_outcome(text, shape, dtype)
        result = _check(text, shape, dtype)
        if not truth.accepted:
            assert not result.ok, f"nndsl accepts {text} on {dtype}{list(shape)}, torch raises {truth.error}"
            return
        if truth.training_only and not result.ok:
            return  # torch raises in training mode; refusing what only eval mode runs is the checker's choice
        errors = [f"{d.code} {d.message}" for d in result.errors]
        assert result.ok, f"nndsl rejects {text} on {dtype}{list(shape)} ({errors}), torch gives {truth.shape}"
        node = result.program.models[0].layers[0]
        assert node.output.shape.dims == truth.shape, f"{text} on {list(shape)}"
        warned = any(d.code == "W309" for d in result.diagnostics)
        assert warned == truth.training_only, f"{text} on {list(shape)}: W309 {warned}, torch: {truth.error}"
        assert node.params == truth.params, f"{text}: nndsl counts {node.params} parameters, torch has {truth.params}"

    agrees()


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's own warnings (e.g. Dropout2d on 3-D) are fine
@pytest.mark.parametrize("name", CHAINABLE)
def test_emitted_module_gives_the_checked_shape(name):
    """What nndsl emits for an accepted call runs and produces the shape the checker inferred."""

    @settings(max_examples=15, suppress_health_check=list(HealthCheck), **_SETTINGS)
    @given(STRATEGIES[name])
    def runs(case):
        text, shape, dtype = case
        result = _check(text, shape, dtype)
        assume(result.ok)
        module = nndsl.build(text, input=_input_text(shape, dtype))
        module.train(not any(d.code == "W309" for d in result.diagnostics))  # W309: torch runs eval mode only
        out = module(torch_input(shape, dtype))
        assert tuple(out.shape) == result.program.models[0].output.shape.dims, text

    runs()


@pytest.mark.parametrize("name", CHAINABLE)
def test_integer_input_agrees_with_torch(name):
    """dtype matters: the same calls on int64 tensors are accepted exactly where torch accepts them."""

    @settings(max_examples=20, suppress_health_check=list(HealthCheck), **_SETTINGS)
    @given(STRATEGIES[name])
    def agrees(case):
        text, shape, _ = case
        # Configurations that leave torch nothing to compute (an empty adaptive-pool output,
        # dropout with p=0 or 1) skip its dtype check; nndsl judges the layer, not the no-op.
        assume(not re.match(r"Adaptive\w+\([^)]*\b0\b|(Feature)?(Alpha)?Dropout[123]?d?\((p=)?[01](\.0*)?[,)]", text))
        truth = torch_outcome(text, shape, "int64")
        result = _check(text, shape, "int64")
        if truth.training_only and not result.ok:
            return  # torch raises in training mode; refusing what only eval mode runs is the checker's choice
        if truth.accepted and 0 in truth.shape and {d.code for d in result.errors} == {"E204"}:
            return  # an empty output leaves torch nothing to compute, so it skips its dtype check
        assert result.ok == truth.accepted, (
            f"{text} on int64{list(shape)}: nndsl {'accepts' if result.ok else 'rejects'}, "
            f"torch {'accepts' if truth.accepted else 'raises ' + str(truth.error)}"
        )
        if truth.accepted:
            out = result.program.models[0].output
            assert (out.shape.dims, out.dtype) == (truth.shape, truth.dtype), text

    agrees()


def _judged(case, run_emitted: bool = False) -> None:
    try:
        verdict = judge(case, run_emitted)
    except Skip:  # torch has no CPU kernel for this dtype: nothing to compare with
        return
    assert verdict in (None, STRICTER, WARNED), (
        f"{case.text!r} on {getattr(case, 'dtype', '')}{list(getattr(case, 'shape', []))}: {verdict}"
    )


#: layers with an argument nndsl may leave to the input (Linear's in_features, Conv2d's in_channels, ...)
INFERRING = sorted(name for name in CHAINABLE if any(p.infer for p in REGISTRY[name].params))


@pytest.mark.parametrize("family", ["dtype", "symbolic", "zero"])
@pytest.mark.parametrize("name", CHAINABLE)
def test_wider_cases_agree_with_torch(name, family):
    """Other dtypes (and the emitted module on them), symbolic sizes, a zero-size dim."""

    @settings(max_examples=6, suppress_health_check=list(HealthCheck), **_SETTINGS)
    @given(wide_case(name, family))
    def agrees(case):
        _judged(case, run_emitted=family == "dtype")

    agrees()


@pytest.mark.parametrize("name", INFERRING)
def test_inferred_arguments_agree_with_torch(name):
    """``Linear(out_features=3)`` is ``Linear(<the input's last size>, 3)``, and so on."""

    @settings(max_examples=15, suppress_health_check=list(HealthCheck), **_SETTINGS)
    @given(wide_case(name, "inferred"))
    def agrees(case):
        _judged(case)

    agrees()


@settings(max_examples=120, suppress_health_check=list(HealthCheck), **_SETTINGS)
@given(chain_case())
def test_chains_agree_with_torch(case):
    _judged(case, run_emitted=True)


@settings(max_examples=120, suppress_health_check=list(HealthCheck), **_SETTINGS)
@given(graph_case())
def test_graphs_agree_with_torch(case):
    _judged(case, run_emitted=True)
