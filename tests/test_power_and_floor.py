"""``**`` on numbers (constants, block arguments) and on tensors, ``//`` and ``%`` on tensors
(floored, as torch and Python compute them), and a block body that binds its input's name again:
checked, emitted and exported, each compared with torch."""

from __future__ import annotations

import pytest
from conftest import assert_ruff_clean
from onnx_support import export_and_verify

import nndsl
from nndsl.backends.torch_module import emit_program, load_module

torch = pytest.importorskip("torch")


def _check(text: str):
    return nndsl.check_source(text, "p.nn")


def _codes(text: str) -> list[str]:
    return [d.code for d in _check(text).errors]


def _module(text: str, tmp_path):
    result = _check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    (tmp_path / "m.py").write_text(source)
    assert_ruff_clean(tmp_path)
    return result, source, load_module(result.program)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("2 ** 10", 2**10),
        ("-2 ** 2", -(2**2)),
        ("(-2) ** 2", (-2) ** 2),
        ("2 ** 3 ** 2", 2**3**2),
        ("(2 ** 3) ** 2", (2**3) ** 2),
        ("3 * 2 ** 2", 3 * 2**2),
        ("2 ** -1 * 8", 2**-1 * 8),
        ("64 ** 0.5", 64**0.5),
    ],
)
def test_a_power_of_numbers_is_pythons(expr, value):
    result = _check(f"let V = {expr}\nmodel M(x: [N, 4]) {{\n    return x * 0 + V\n}}\n")
    assert result.ok, [d.message for d in result.diagnostics]
    out = load_module(result.program)["M"]()(torch.zeros(2, 4, dtype=torch.float64))
    assert out.tolist() == [[value] * 4] * 2


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("0 ** -1", "division by zero"),
        ("10 ** 10 ** 10", "out of range"),
        ("10.0 ** 400", "out of range"),
        ("(-8) ** 0.5", "not a real number"),
    ],
)
def test_a_power_python_cannot_give_is_an_error_at_its_position(expr, words):
    text = f"let V = {expr}\nmodel M(x: [N, 4]) {{\n    Linear(4, 2)\n}}\n"
    (error,) = _check(text).errors
    assert error.code == "E110" and words in error.message
    assert text[error.span.start : error.span.end] == expr


def test_a_power_of_a_symbolic_size_is_refused():
    (error,) = _check("model M(x: [N, T]) {\n    return x[:, : T ** 2]\n}\n").errors
    assert error.code == "E110" and "'**'" in error.message


def test_a_block_argument_to_a_power_stays_an_expression_in_its_class(tmp_path):
    text = (
        "block Widen(x: [N, C], k) {\n    Linear(C, 2 ** k) -> Linear(2 ** k, C)\n}\n"
        "model M(x: [N, 4]) {\n    x -> Widen(3) -> Widen(5)\n}\n"
    )
    result, source, module = _module(text, tmp_path)
    assert "nn.Linear(C, 2**k)" in source and source.count("class Widen") == 1
    net = module["M"]()
    assert [layer.out_features for layer in net.modules() if isinstance(layer, torch.nn.Linear)] == [8, 4, 32, 4]
    assert result.program.models[0].param_count == sum(p.numel() for p in net.parameters())


SPEC = """\
model Arith(a: long[N, 6], b: [N, 6]) {
    quotient = a // 3
    rest = a % 3
    flipped = 7 // a
    halves = b // 0.5
    mod = b % -1.5
    squared = b ** 2
    power = 2 ** a
    signed = -2 ** a
    root = (b * b + 1) ** -0.5
    return quotient, rest, flipped, halves, mod, squared, power, signed, root
}
"""


def _arith_inputs():
    a = torch.tensor([[-7, -3, -1, 1, 4, 9], [5, -5, 2, -2, 3, -6]])
    b = torch.tensor([[-2.3, -0.5, 0.25, 1.75, 3.0, -4.1], [0.1, -0.1, 2.2, -2.2, 6.5, -6.5]])
    return a, b


def test_floored_division_remainder_and_powers_compute_what_torch_does(tmp_path):
    result, source, module = _module(SPEC, tmp_path)
    assert "quotient = a // 3" in source and "rest = a % 3" in source and "squared = b**2" in source
    a, b = _arith_inputs()
    got = module["Arith"]()(a, b)
    want = (a // 3, a % 3, 7 // a, b // 0.5, b % -1.5, b**2, 2**a, -(2**a), (b * b + 1) ** -0.5)
    model = result.program.models[0]
    for ours, theirs, checked in zip(got, want, model.outputs):
        assert ours.dtype == theirs.dtype and str(ours.dtype).endswith(checked.dtype.replace("long", "int64"))
        torch.testing.assert_close(ours, theirs)


def test_floored_division_remainder_and_powers_export_to_onnx_verified():
    pytest.importorskip("onnxruntime")
    _, verified = export_and_verify(SPEC.replace("7 // a", "7 // (a * a + 1)"))
    assert verified.max_diff <= verified.limit


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ("m // m", "E204"),
        ("m % m", "E204"),
        ("m ** m", "E204"),
        ("a ** -1", "E204"),
        ("a // c", "E208"),
        ("a ** c", "E208"),
    ],
)
def test_what_torch_refuses_in_tensor_arithmetic_is_an_error(expr, code):
    text = f"model M(a: long[2, 3], m: bool[2, 3], c: [4]) {{\n    return {expr}\n}}\n"
    assert code in _codes(text)
    a, m, c = torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.bool), torch.ones(4)
    with pytest.raises(RuntimeError):
        eval(expr, {}, {"a": a, "m": m, "c": c})


def test_a_block_may_bind_its_input_name_again(tmp_path):
    """``x = x + ...`` inside a block: the class reads the block's input, not the new value."""
    text = (
        "block Pre(x: [N, C]) {\n"
        "    x = x + (x -> LayerNorm(C) -> Linear(C, C))\n"
        "    x + (x -> LayerNorm(C) -> Linear(C, C))\n"
        "}\n"
        "model M(x: [N, 8]) {\n    x -> Pre -> Pre\n}\n"
    )
    result, _, module = _module(text, tmp_path)
    net = module["M"]().eval()
    x = torch.randn(3, 8)
    want = x
    for block in (net.pre1, net.pre2):
        ln1, fc1, ln2, fc2 = block.children()
        want = want + fc1(ln1(want))
        want = want + fc2(ln2(want))
    torch.testing.assert_close(net(x), want)
    assert result.program.models[0].param_count == sum(p.numel() for p in net.parameters())
