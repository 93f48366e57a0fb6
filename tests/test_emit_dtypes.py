"""The emitted module runs in the dtype the spec declares: a layer's parameters and buffers are
created in the dtype the checker says it computes in (``nn.Linear(4, 2, dtype=torch.float64)``)."""

from __future__ import annotations

import re

import pytest

import nndsl
from nndsl.backends.torch_module import class_names, emit_program, load_module
from nndsl.layers import REGISTRY
from nndsl.shapes import Sym, substitute

torch = pytest.importorskip("torch")

DTYPES = ("float64", "float16", "bfloat16")


def _sizes(tensor_type, n: int = 3) -> tuple[int, ...]:
    out = []
    for d in tensor_type.shape.dims:
        names = set(re.findall(r"[A-Za-z_]\w*", str(d)))
        out.append(substitute(d, {Sym(name): n for name in names}))
    return tuple(out)


def _stateful_examples() -> list[tuple[str, str, str]]:
    """The first accepted example of every layer that holds parameters or buffers."""
    rows = []
    for name, layer in sorted(REGISTRY.items()):
        if name == "TransformerEncoder":  # float32 only (E204): its layer argument is built in float32
            continue
        for call, given, expected in layer.examples:
            if expected.startswith(("E", "W")) or given == "[*]" or not given.startswith("["):
                continue
            result = nndsl.check_source(f"model M(x: {given}) {{ {call} }}")
            node = result.program.models[0].layers[0] if result.ok else None
            if node is not None and node.layer.has_module and (node.params or node.args.get("track_running_stats")):
                rows.append((name, call, given))
                break
    return rows


def _instance(program):
    return load_module(program)[class_names(program)["M"]]()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("layer", "call", "given"), _stateful_examples())
def test_a_layer_holds_its_state_in_the_declared_dtype(layer, call, given, dtype):
    result = nndsl.check_source(f"model M(x: {dtype}{given}) {{ {call} }}")
    assert result.ok, [d.message for d in result.errors]
    model = result.program.models[0]
    torch_dtype = getattr(torch, dtype)
    torch.manual_seed(0)
    x = torch.randn(_sizes(model.input)).to(torch_dtype)
    # the reference: the float32 module converted by hand, as a user would
    reference = _instance(nndsl.check_source(f"model M(x: {given}) {{ {call} }}").program).to(torch_dtype).eval()
    module = _instance(result.program).eval()
    assert {p.dtype for p in module.state_dict().values() if p.is_floating_point()} <= {torch_dtype}
    module.load_state_dict(reference.state_dict())
    try:
        with torch.no_grad():
            want = reference(x)
    except (RuntimeError, NotImplementedError) as exc:  # torch itself has no CPU kernel for it
        with pytest.raises(type(exc)), torch.no_grad():
            module(x)
        pytest.skip(f"torch on CPU: {exc}")
    with torch.no_grad():
        got = module(x)
    got, want = (got[0], want[0]) if isinstance(got, tuple) else (got, want)
    assert str(got.dtype) == f"torch.{model.output.dtype}"
    assert tuple(got.shape) == _sizes(model.output)
    torch.testing.assert_close(got, want)


def test_a_block_used_in_two_dtypes_takes_the_dtype_as_an_argument(tmp_path):
    from conftest import assert_ruff_clean

    text = (
        "block B(x: [N, C]) { Linear(C, 3) -> BatchNorm1d(3) -> ReLU }\n"
        "model Double(x: float64[N, 4]) { Linear(4, 2) -> B }\n"
        "model Half(x: bfloat16[N, 4]) { B }\n"
        "model Single(x: [N, 4]) { B }\n"
    )
    program = nndsl.check_source(text, "dtypes.nn").program
    source = emit_program(program)
    assert "nn.Linear(4, 2, dtype=torch.float64)" in source
    assert "def __init__(self, C: int, *, dtype: torch.dtype) -> None:" in source
    namespace = load_module(program)
    for name, dtype in (("Double", torch.float64), ("Half", torch.bfloat16), ("Single", torch.float32)):
        module = namespace[class_names(program)[name]]()
        assert module(torch.randn(5, 4, dtype=dtype)).dtype == dtype
    (tmp_path / "dtypes.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_float32_and_integer_inputs_write_no_dtype():
    text = "model M(tokens: long[N, T]) { Embedding(10, 4) -> Linear(4, 2) }"
    source = emit_program(nndsl.check_source(text).program)
    assert "dtype" not in source.split("def forward")[0]
