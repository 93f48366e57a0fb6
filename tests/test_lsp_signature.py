"""Signature help: the layer's or block's signature inside the call being written."""

from __future__ import annotations

from nndsl.api import check_source
from nndsl.lsp.signature import signature_at

TEXT = """\
block B(x: [N, C], k, stride=1) {
    Linear(C, k)
}
model M(x: [N, 4]) {
    x -> Linear(4, 8, bias=Fa) -> B(3, str
}
"""


def at(needle: str, delta: int):
    return signature_at(TEXT, TEXT.index(needle) + delta, check_source(TEXT))


def test_a_layers_signature_with_the_argument_at_the_cursor():
    first = at("Linear(4, 8", len("Linear("))
    assert first.label == "Linear(in_features, out_features, bias=True)"
    assert first.parameters == ("in_features", "out_features", "bias=True") and first.active == 0
    assert "last dimension" in first.documentation
    assert at("Linear(4, 8", len("Linear(4, ")).active == 1
    assert at("bias=Fa", len("bias=F")).active == 2  # by keyword


def test_a_blocks_signature_from_the_spec_even_while_it_does_not_parse():
    block = at("B(3, str", len("B(3, st"))
    assert block.label == "B(k, stride=1)" and block.active == 1


def test_no_signature_outside_a_call_or_for_an_unknown_name():
    assert at("x -> Linear", 0) is None
    assert signature_at("x -> Nope(1, ", 12) is None
    assert signature_at("x[1, ", 5) is None  # an index, not a call
    text = "Conv2d(3, 8, 3, stride=2, padding=(1, 1), dilation="
    found = signature_at(text, len(text))
    assert found.names[found.active] == "dilation"
    assert signature_at(text, text.index("(1, 1)") + 3) is None  # inside a tuple, not a call
