"""A shared layer called with a selector or with further inputs: each call of the one module
keeps its own selector, masks and state (the emitted call is the layer's own, on the shared attribute)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import nndsl  # noqa: E402

LSTM_STATES = """
model M(x: [N, S, 8]) {
    enc = LSTM(8, 6, batch_first=True)
    h = enc(x).h_n
    c = enc(x).c_n
    return h, c
}
"""

ATTENTION_MASKS = """
model M(x: [N, S, 16], y: [N, S, 16], pad: bool[N, S]) {
    attn = MultiheadAttention(16, 2, batch_first=True)
    a = attn(x, x, x, key_padding_mask=pad)
    b = attn(y, x, x, key_padding_mask=pad)
    return a, b
}
"""


def test_a_shared_lstm_gives_each_call_its_selected_state():
    module = nndsl.build(LSTM_STATES).eval()
    assert sum(p.numel() for p in module.parameters()) == 4 * 6 * (8 + 6) + 2 * 4 * 6
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        h, c = module(x)
        _, (want_h, want_c) = module.enc(x)
    torch.testing.assert_close(h, want_h, rtol=0, atol=0)
    torch.testing.assert_close(c, want_c, rtol=0, atol=0)


def test_a_shared_attention_keeps_each_calls_key_value_and_mask():
    source = nndsl.compile_spec(ATTENTION_MASKS)
    assert "self.attn(y, x, x, key_padding_mask=pad, need_weights=False)" in source
    module = nndsl.build(ATTENTION_MASKS).eval()
    assert sum(p.numel() for p in module.parameters()) == 4 * 16 * 16 + 4 * 16
    x, y = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    pad[0, -2:] = True
    with torch.no_grad():
        a, b = module(x, y, pad)
        want_a, _ = module.attn(x, x, x, key_padding_mask=pad, need_weights=False)
        want_b, _ = module.attn(y, x, x, key_padding_mask=pad, need_weights=False)
    torch.testing.assert_close(a, want_a, rtol=0, atol=0)
    torch.testing.assert_close(b, want_b, rtol=0, atol=0)
