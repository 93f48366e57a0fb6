"""Whatever the text, checking it ends in diagnostics or a program, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.backends.torch_module import emit_program
from nndsl.diagnostics import render_short, render_text

TOKENS = [
    "model", "let", "M", "x", "N", "H", ":", "[", "]", "(", ")", "{", "}", ",", "->", "=", ".", "-", "+", "*",
    "//", "/", "%", "0", "1", "3", "784", "2.5", "1e3", "'same'", '"a', "True", "None", "long", "Linear",
    "Conv2d", "ReLU", "LSTM", "BatchNorm", "Softmax", "Flatten", "Unflatten", "Embedding", "kernel_size",
    "padding", "dim", "in_features", "last", "hidden", "# c", "\n", "\t", "@", "é",
]  # fmt: skip

token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(token_soup, st.text(max_size=60)))
def test_any_text_gives_diagnostics_not_exceptions(text):
    result = nndsl.check_source(text, "fuzz.nn")
    for diag in result.diagnostics:
        assert diag.code
        render_text(diag)
        render_short(diag)
        diag.to_json()
    if result.ok and result.program is not None and result.program.models:
        source = emit_program(result.program)
        compile(source, "<generated>", "exec")  # the emitted module is valid Python


chains = st.lists(
    st.sampled_from(
        [
            "Linear(out_features=8)",
            "ReLU",
            "Dropout(0.1)",
            "LayerNorm()",
            "BatchNorm",
            "Softmax",
            "Unflatten(1, (2, 4))",
            "Flatten",
            "Conv1d(out_channels=4, kernel_size=1)",
            "GELU",
        ]
    ),
    min_size=1,
    max_size=8,
).map(" -> ".join)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(chains, st.sampled_from(["[N, 8]", "[4, 8]", "[N, 2, 8]", "[*]"]))
def test_random_chains_check_and_emit(chain, given_input):
    result = nndsl.check_source(chain, "chain.nn", input=None if given_input == "[*]" else given_input)
    for diag in result.diagnostics:
        render_text(diag)
    if result.ok:
        compile(emit_program(result.program), "<generated>", "exec")


@settings(max_examples=60, derandomize=True, deadline=None)
@given(chains, st.sampled_from([(4, 8), (4, 2, 8), (3, 4, 8)]))
def test_random_chains_that_check_run_in_torch_with_the_predicted_shape(chain, dims):
    import pytest

    torch = pytest.importorskip("torch")
    given_input = "[" + ", ".join(map(str, dims)) + "]"
    result = nndsl.check_source(chain, "chain.nn", input=given_input)
    if not result.ok:
        return
    module = nndsl.build(chain, input=given_input)
    with torch.no_grad():
        out = module(torch.randn(dims))
    assert tuple(out.shape) == result.program.models[0].output.shape.dims
