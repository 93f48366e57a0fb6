"""Result dtypes against torch: type promotion of element-wise operations, cat and stack."""

from __future__ import annotations

import itertools

import pytest

import nndsl

torch = pytest.importorskip("torch")

DTYPES = ["bool", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def output_dtypes(text: str) -> list[str] | list[str | None]:
    result = nndsl.check_source(text, "<dtypes>")
    if not result.ok:
        return [d.code for d in result.diagnostics]
    return [t.dtype for t in result.program.models[0].outputs]


def sample(dtype: str):
    return torch.ones(2, 3, dtype=getattr(torch, dtype))


@pytest.mark.parametrize(("a", "b"), list(itertools.product(DTYPES, DTYPES)))
def test_two_tensor_results_follow_torch_promotion(a, b):
    text = f"model M(x: {a}[2, 3], y: {b}[2, 3]) {{ return x + y, x * y, cat(x, y, dim=1), stack(x, y) }}"
    got = output_dtypes(text)
    x, y = sample(a), sample(b)
    want = [str(r.dtype).removeprefix("torch.") for r in (x + y, x * y, torch.cat([x, y], 1), torch.stack([x, y]))]
    assert got == want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scalar", ["2", "2.5"])
@pytest.mark.parametrize("op", ["+", "*", "/", "-"])
def test_tensor_and_number_results_follow_torch(dtype, scalar, op):
    text = f"model M(x: {dtype}[2, 3]) {{ x {op} {scalar} }}"
    got = output_dtypes(text)
    try:
        want = [str(eval(f"x {op} {scalar}", {"x": sample(dtype)}).dtype).removeprefix("torch.")]
    except RuntimeError:
        want = ["E204"]  # torch refuses: bool - number
    assert got == want


@pytest.mark.parametrize(("a", "body"), [("int64", "Sigmoid"), ("float32", "Identity"), ("bool", "Sigmoid")])
def test_a_residual_sum_follows_torch_promotion(a, body):
    got = output_dtypes(f"model M(x: {a}[2, 3]) {{ Residual({body}) }}")
    x = sample(a)
    y = torch.sigmoid(x) if body == "Sigmoid" else x
    assert got == [str((x + y).dtype).removeprefix("torch.")]
