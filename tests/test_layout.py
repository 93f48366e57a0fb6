"""Memory layout against torch: the strides the checker follows, and when View raises (E209/W306)."""

from __future__ import annotations

import itertools
import math
import re

import pytest

import nndsl
from nndsl.layers import REGISTRY

torch = pytest.importorskip("torch")


def checked(text: str):
    result = nndsl.check_source(text, "<layout>")
    return result, [d.code for d in result.diagnostics]


def _concrete_rows():
    """Accepted example rows on float32 inputs of known sizes, rank 2 or more."""
    for _, layer in sorted(REGISTRY.items()):
        for call, given, expected in layer.examples:
            match = re.fullmatch(r"\[([\d, ]+)\]", given)
            if expected.startswith(("E", "W")) or not match:
                continue
            dims = [int(d) for d in match.group(1).split(",")]
            if len(dims) >= 2:
                yield pytest.param(call, dims, id=f"{call} on {given}")


def _agrees(predicted, y) -> bool:
    """The checker's layout (None: row-major, a tuple of strides, "unknown") against a tensor."""
    if predicted == "unknown":
        return True
    if predicted is None:
        return y.is_contiguous()
    return all(size == 1 or int(s) == t for size, s, t in zip(y.shape, predicted, y.stride()))


@pytest.mark.parametrize(("call", "dims"), list(_concrete_rows()))
def test_each_layers_output_layout_is_torchs(call, dims):
    """Every layer on row-major, transposed and channels-last memory: the layout the checker
    predicts is the one torch's module gives, in training and in eval mode."""
    swapped = dims[:-2] + [dims[-1], dims[-2]]
    cases = [("", dims, lambda: torch.randn(*dims))]
    cases.append(("Transpose(-1, -2) -> ", swapped, lambda: torch.randn(*swapped).transpose(-1, -2)))
    if len(dims) == 4:
        last = [dims[0], dims[2], dims[3], dims[1]]
        cases.append(("Permute((0, 3, 1, 2)) -> ", last, lambda: torch.randn(*last).permute(0, 3, 1, 2)))
    module = nndsl.build(f"model M(x: [{', '.join(map(str, dims))}]) {{ {call} }}")
    for prefix, declared, make in cases:
        result, codes = checked(f"model M(x: [{', '.join(map(str, declared))}]) {{ {prefix}{call} }}")
        if codes == ["E209"]:  # a View that torch cannot make on this memory
            with pytest.raises(RuntimeError, match="view"):
                module(make())
            continue
        assert result.ok, codes
        predicted = result.program.models[0].output.strides
        for training in (True, False):
            module.train(training)
            try:
                y = module(make())
            except RuntimeError:
                continue  # a batch norm on one value per channel, in training
            assert _agrees(predicted, y), (prefix, training, predicted, y.stride())


def _views():
    """Transposed and permuted inputs of small sizes and every way to view them in two or three dims."""
    for sizes in [(2, 3, 4), (1, 3, 4), (2, 1, 4), (2, 3, 1), (4, 4, 2), (2, 6)]:
        total = math.prod(sizes)
        targets = [(total,)] + [(a, total // a) for a in range(1, total + 1) if total % a == 0]
        targets += [
            (a, b, total // a // b) for a, b in itertools.product((1, 2, 3, 4), (1, 2, 3, 6)) if total % (a * b) == 0
        ]
        for order in itertools.permutations(range(len(sizes))):
            if list(order) != sorted(order):
                for target in targets:
                    yield sizes, order, target


def test_view_is_an_error_exactly_where_torch_raises():
    """Known sizes decide: E209 where torch's view raises, no diagnostic where it works."""
    for sizes, order, target in _views():
        dims = ", ".join(map(str, sizes))
        text = f"model M(x: [{dims}]) {{ Permute({tuple(order)}) -> View({tuple(target)}) }}"
        _, codes = checked(text)
        try:
            torch.randn(*sizes).permute(*order).view(*target)
            raises = False
        except RuntimeError:
            raises = True
        assert codes == (["E209"] if raises else []), (text, codes, raises)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # torch raises for every batch size: the symbolic N does not matter
        ("model M(x: [N, 4, 6]) { Transpose(1, 2) -> View((-1, 24)) }", "E209"),
        # a view that keeps the batch dim and splits a dim whose memory is in order works
        ("model M(x: [N, 4, 6]) { Transpose(1, 2) -> View((-1, 3, 2, 4)) }", "ok"),
        # works only for N = 1: a warning
        ("model M(x: [N, 4, 6]) { Transpose(0, 1) -> View((-1, 6)) }", "W306"),
        # batch_first recurrent layers return the transpose of an [L, N, H] result
        ("model M(x: [N, 5, 3]) { LSTM(3, 4, batch_first=True) -> View((-1, 20)) }", "W306"),
        ("model M(x: [2, 5, 3]) { LSTM(3, 4, batch_first=True) -> View((-1, 20)) }", "E209"),
        ("model M(x: [2, 5, 3]) { LSTM(3, 4, batch_first=True) -> Reshape((-1, 20)) -> View((4, 10)) }", "ok"),
        # a convolution of channels-last memory keeps it: not followed, so only a warning
        ("model M(x: [2, 5, 5, 3]) { Permute((0, 3, 1, 2)) -> Conv2d(3, 4, 3) -> View((2, -1)) }", "W306"),
        # a row-major copy in between makes the view safe again
        ("model M(x: [2, 5, 3]) { Transpose(1, 2) -> Linear(5, 4) -> View((2, -1)) }", "ok"),
        # a piece of a split is a view with its parent's strides
        ("model M(x: [2, 8]) {\n a, b = chunk(x, 2, dim=1)\n return a -> View(-1)\n}", "E209"),
    ],
)
def test_view_verdicts_on_symbolic_and_traced_layouts(text, code):
    _, codes = checked(text)
    if code == "ok":
        assert codes == [], codes
    else:
        assert code in codes, codes
        assert ("E209" in codes) == (code == "E209")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_symbolic_verdicts_hold_for_each_size(n):
    """E209 on a symbolic batch holds for every size; a W306 case is one where sizes disagree."""
    x = torch.randn(n, 4, 6)
    with pytest.raises(RuntimeError):
        x.transpose(1, 2).view(-1, 24)
    assert x.transpose(1, 2).view(-1, 3, 2, 4).shape == (n, 3, 2, 4)
    works = True
    try:
        x.transpose(0, 1).view(-1, 6)
    except RuntimeError:
        works = False
    assert works == (n == 1)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    y, _ = lstm(torch.randn(n, 5, 3))
    works = True
    try:
        y.view(-1, 20)
    except RuntimeError:
        works = False
    assert works == (n == 1)


def test_symbolic_view_verdicts_hold_for_every_size():
    """With a symbolic size N: E209 only where torch raises for every N, no diagnostic only where
    it works for every N, W306 where the sizes decide (checked for N = 1..4)."""
    for rest in [(3, 4), (1, 4), (2, 2)]:
        total = math.prod(rest)
        targets = [(-1,), (-1, total)] + [(-1, a, total // a) for a in range(1, total + 1) if total % a == 0]
        targets += [(a, -1) for a in (1, 2, 3) if total % a == 0]
        for order in itertools.permutations(range(3)):
            for target in targets:
                text = f"model M(x: [N, {rest[0]}, {rest[1]}]) {{ Permute({order}) -> View({target}) }}"
                _, codes = checked(text)
                outcomes = set()
                for n in range(1, 5):
                    try:
                        torch.randn(n, *rest).permute(*order).view(*target)
                        outcomes.add("works")
                    except RuntimeError:
                        outcomes.add("raises")
                codes = [c for c in codes if c != "W303"]  # (a, -1) may fix N
                if codes == ["E209"]:
                    assert outcomes == {"raises"}, text
                elif not codes:
                    assert outcomes == {"works"}, text
                else:
                    assert codes == ["W306"], (text, codes)


def test_an_onnx_export_of_an_impossible_view_is_a_spec_error(tmp_path):
    """Where torch's view raises for every input, compile --target onnx reports it at the spec
    line (exit 1), rather than failing in the verifier's torch run."""
    import subprocess
    import sys

    spec = tmp_path / "m.nn"
    spec.write_text("model M(x: [N, 4, 6]) { Transpose(1, 2) -> View((-1, 24)) }\n")
    run = subprocess.run(
        [sys.executable, "-m", "nndsl", "compile", "--target", "onnx", str(spec), "-o", str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stderr
    assert "E209" in run.stderr and "m.nn:1:44" in run.stderr
    assert not (tmp_path / "m.onnx").exists()
