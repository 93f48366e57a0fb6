"""Inside a block, the numbers a tensor operation takes (``x * scale``, ``roll``'s shifts,
``arange``'s bounds, a comparison's bound) may differ between uses and the uses still share one
class: its constructor computes each from the block's parameters, as a person writes it."""

from __future__ import annotations

import pytest
from conftest import assert_ruff_clean

import nndsl
from nndsl.backends.torch_module import emit_program, load_module

torch = pytest.importorskip("torch")

SPEC = """\
block Shifted(x: [N, L, C], shift, scale) {
    positions = arange(L - shift)
    late = where(positions >= L - 2 * shift, 1.0, 0.0)
    y = roll(x, -shift, 1) * (scale / C) + 2 ** shift
    y[:, : L - shift] + late[None, :, None]
}
model M(x: [N, 12, 4]) {
    x -> Shifted(1, 0.5) -> Shifted(3, 2.0) -> Shifted(2, 1.0)
}
"""


def _reference(x: torch.Tensor) -> torch.Tensor:
    for shift, scale in ((1, 0.5), (3, 2.0), (2, 1.0)):
        length = x.size(1)
        positions = torch.arange(length - shift)
        late = torch.where(positions >= length - 2 * shift, 1.0, 0.0)
        y = torch.roll(x, -shift, 1) * (scale / x.size(2)) + 2**shift
        x = y[:, : length - shift] + late[None, :, None]
    return x


def test_uses_differing_in_operation_numbers_share_one_class(tmp_path):
    result = nndsl.check_source(SPEC, "s.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    (tmp_path / "m.py").write_text(source)
    assert_ruff_clean(tmp_path)
    assert source.count("class Shifted") == 1, source
    for computed in (
        "self.end = L - shift",
        "self.shifts = -shift",
        "self.scale = scale / C",
        "self.offset = 2**shift",
        "L - 2 * shift",
    ):
        assert computed in source, computed
    module = load_module(result.program)["M"]()
    x = torch.randn(2, 12, 4)
    out = module(x)
    assert str(result.program.models[0].outputs[0]) == "[N, 6, 4]"
    torch.testing.assert_close(out, _reference(x))


def test_a_number_alike_in_every_use_is_written_in_forward():
    text = "block B(x: [N, C], k) {\n    x * 3 + k\n}\nmodel M(x: [N, 4]) {\n    x -> B(1) -> B(2)\n}\n"
    source = emit_program(nndsl.check_source(text, "b.nn").program)
    assert source.count("class B") == 1
    assert "x = x * 3" in source and "self.k = k" in source and "x + self.k" in source
