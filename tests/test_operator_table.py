"""Table tests of the tensor operators: each operator's example rows (call, inputs, outputs or
error code) checked by the checker, run through torch itself, through the emitted module and
through the ONNX export; and the contract every registered operator fulfils."""

from __future__ import annotations

import re

import pytest
from conftest import assert_ruff_clean

import nndsl
from nndsl.backends.torch_module import emit_program, load_module
from nndsl.check.functions import RESERVED_NAMES
from nndsl.operators import REGISTRY, Operator
from nndsl.operators.base import TENSOR

torch = pytest.importorskip("torch")


def _torch_dtype(name: str | None):
    """torch's dtype of a dtype name a spec writes (``"bool"``, ``"long"``)."""
    return None if name is None else getattr(torch, {"long": "int64", "int": "int32"}.get(name, name))


#: each operator as torch's own function, called as a spec writes the call: the ground truth
#: that the shape rule is compared with (an operator without a row here fails the contract)
TORCH = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "floor_divide": torch.floor_divide,
    "remainder": torch.remainder,
    "pow": torch.pow,
    "neg": torch.neg,
    "bitwise_and": torch.bitwise_and,
    "bitwise_or": torch.bitwise_or,
    "bitwise_xor": torch.bitwise_xor,
    "bitwise_not": torch.bitwise_not,
    "cat": lambda *tensors, dim=0: torch.cat(tensors, dim=dim),
    "stack": lambda *tensors, dim=0: torch.stack(tensors, dim=dim),
    "chunk": torch.chunk,
    "split": torch.split,
    "getitem": lambda input, index: input[index],  # rows write the subscript: x[:, 0]
    "matmul": torch.matmul,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "softmax": torch.softmax,
    "log_softmax": torch.log_softmax,
    "arange": torch.arange,
    "zeros_like": torch.zeros_like,
    "ones_like": torch.ones_like,
    "randn_like": torch.randn_like,
    "expand": lambda x, *size: x.expand(*size),
    "roll": torch.roll,
    "masked_fill": torch.masked_fill,
    "where": torch.where,
    "transpose": torch.transpose,
    "ones": lambda *size, dtype=None: torch.ones(*size, dtype=_torch_dtype(dtype)),
    "zeros": lambda *size, dtype=None: torch.zeros(*size, dtype=_torch_dtype(dtype)),
    "full": lambda size, fill_value, dtype=None: torch.full(size, fill_value, dtype=_torch_dtype(dtype)),
    "triu": torch.triu,
    "eq": torch.eq,
    "ne": torch.ne,
    "lt": torch.lt,
    "le": torch.le,
    "gt": torch.gt,
    "ge": torch.ge,
    "tril": torch.tril,
    "sum": lambda x, dim=None, keepdim=False: torch.sum(x, dim, keepdim=keepdim) if dim is not None else torch.sum(x),
    "mean": lambda x, dim=None, keepdim=False: (
        torch.mean(x, dim, keepdim=keepdim) if dim is not None else torch.mean(x)
    ),
    # called from this module's globals: torch's function imports as it runs
    "scaled_dot_product_attention": lambda *a, **k: torch.nn.functional.scaled_dot_product_attention(*a, **k),
}

#: the sizes the symbols of a row's inputs (``x: long[N, T]``) are given when torch runs the row
SIZES = {"N": 2, "T": 5, "L": 3, "S": 4, "C": 6, "H": 4, "W": 4}

_DTYPES = {"": torch.float32, "long": torch.int64, "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}

ROWS = [
    pytest.param(name, call, inputs, expected, id=f"{call} on {inputs}")
    for name, op in sorted(REGISTRY.items())
    for call, inputs, expected in op.examples
]
ACCEPTED = [row for row in ROWS if not row.values[3].startswith("E")]


def _spec(call: str, inputs: str, pieces: int) -> str:
    if pieces > 1:  # ``p = split(...)`` is one tensor: a tuple of pieces needs a name each
        targets = ", ".join(f"p{i}" for i in range(pieces))
        return f"model T({inputs}) {{\n    {targets} = {call}\n    return {targets}\n}}\n"
    return f"model T({inputs}) {{\n    return {call}\n}}\n"


def _tensors(inputs: str) -> dict:
    """Random tensors for ``a: long[2, 3], b: [3]``; a symbolic size takes its size in SIZES, and
    the symbol names that size too (``arange(T)``)."""
    out = {}
    for name, dtype, dims in re.findall(r"(\w+):\s*(\w*)\[([^\]]*)\]", inputs):
        shape = [int(eval(d, {"__builtins__": {}}, SIZES)) for d in dims.split(",") if d.strip()]
        out[name] = (torch.randn(shape) * 4).to(_DTYPES[dtype])
    return out


def _in_torch(call: str, inputs: str) -> list[str]:
    """The types torch gives the row's call, written as the checker writes them; raises as torch does."""
    value = _run(call, _tensors(inputs))
    values = value if isinstance(value, tuple) else (value,)
    return [_written(v) for v in values]


def _run(call: str, tensors: dict):
    """The row's call run by torch's functions on ``tensors``."""
    namespace = {"__builtins__": {"__import__": __import__}, **TORCH}  # torch.arange imports lazily
    return eval(call, namespace, {**SIZES, **tensors})  # a row of this file's operators


def _sized(types: str) -> str:
    """The checker's types of a row with the symbols replaced by their sizes in SIZES."""
    return re.sub(r"\[([^\]]*)\]", lambda m: "[" + ", ".join(_size(d) for d in m[1].split(", ") if d) + "]", types)


def _size(dim: str) -> str:
    return str(eval(re.sub(r"(\d)([A-Z])", r"\1*\2", dim), {"__builtins__": {}}, SIZES))


def _parses(call: str) -> None:
    """Skips a row written with ``@`` while the grammar has no matrix-product operator."""
    if "@" in call:
        probe = nndsl.check_source("model P(a: [2, 2]) {\n    return a @ a\n}\n", "<probe>")
        if any(d.code == "E002" for d in probe.diagnostics):
            pytest.skip("the grammar has no '@' operator")


def _written(t) -> str:
    dtype = str(t.dtype).removeprefix("torch.")
    shape = "[" + ", ".join(str(d) for d in t.shape) + "]"
    return shape if dtype == "float32" else dtype + shape


@pytest.mark.parametrize(("name", "call", "inputs", "expected"), ROWS)
def test_example_row_agrees_with_torch(name, call, inputs, expected):
    _parses(call)
    result = nndsl.check_source(_spec(call, inputs, expected.count("[")), "<row>")
    if expected.startswith("E"):
        assert expected in [d.code for d in result.errors], [d.message for d in result.diagnostics]
        with pytest.raises((RuntimeError, IndexError, TypeError)):  # every torch error is a refusal
            _in_torch(call, inputs)
        return
    assert result.ok, [d.message for d in result.diagnostics]
    checked = [str(t) for t in result.program.models[0].outputs]
    assert ", ".join(checked) == expected
    assert _in_torch(call, inputs) == [_sized(t) for t in checked]


@pytest.mark.parametrize(("name", "call", "inputs", "expected"), ACCEPTED)
def test_emitted_module_computes_what_torch_does(name, call, inputs, expected):
    """The operator's torch emission, run: the same values as torch's function on the same tensors
    (for a random operator: the same shapes and dtypes; its statistics are tested on their own)."""
    _parses(call)
    result = nndsl.check_source(_spec(call, inputs, expected.count("[")), "<row>")
    assert result.ok
    tensors = _tensors(inputs)
    names = list(result.program.models[0].input_names)
    got = load_module(result.program)["T"]()(*(tensors[n] for n in names))
    got = got if isinstance(got, tuple) else (got,)
    want = _run(call, tensors)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert REGISTRY[name].random or torch.equal(g, w)


@pytest.mark.parametrize(("name", "call", "inputs", "expected"), ACCEPTED)
def test_onnx_mapping_agrees_with_torch(name, call, inputs, expected):
    pytest.importorskip("onnxruntime")
    from onnx_support import export_and_verify

    _parses(call)
    if REGISTRY[name].random:
        pytest.skip("random values: the ONNX mapping is tested by its statistics")
    export_and_verify(_spec(call, inputs, expected.count("[")))


def test_operator_registry_contract():
    """Every registered operator is complete: a docstring, a signature, a shape rule, a torch
    emission, an ONNX mapping, example rows with both outcomes and a torch function in TORCH."""
    for name, op in REGISTRY.items():
        assert issubclass(op, Operator) and op.name == name
        assert (op.__doc__ or "").strip(), f"{name} has no docstring"
        for hook in ("output", "forward_statements", "to_onnx"):
            assert getattr(op, hook).__func__ is not getattr(Operator, hook).__func__, f"{name} lacks {hook}"
        assert op.params or op.variadic, f"{name} has no signature"
        assert all(p.name.isidentifier() for p in op.params)
        assert op.variadic or op.device or any(p.kind is TENSOR for p in op.params), f"{name} takes no tensor"
        assert any(not e.startswith("E") for _, _, e in op.examples), f"{name} has no accepted example"
        assert any(e.startswith("E") for _, _, e in op.examples), f"{name} has no refused example"
        assert name in TORCH, f"{name} has no torch function in this test's table"
        assert name in RESERVED_NAMES, f"{name} is not reserved in specs"


def test_long_operator_statements_are_laid_out_as_ruff_formats_them(tmp_path):
    """The writer lays out an operator's statement too long for one line: a call's arguments
    split, several targets one a line, a one-piece unpacking, an arithmetic expression."""
    long, longer = "a" * 40, "x" * 70
    specs = [
        f"model C({long}1: [N, 2], {long}2: [N, 3]) {{ return cat({long}1, {long}2, {long}1, dim=1) }}",
        f"model P({long}: [N, 6]) {{\n    {long}1, {long}2 = chunk({long}, 2, dim=1)\n    return {long}1, {long}2\n}}",
        f"model O({longer}: [N, 6]) {{ return cat(split({longer}, [6], dim=1), dim=1) }}",
        f"model A({long}1: [N, 2], {long}2: [N, 2]) {{ return {long}1 * 0.5 + {long}2 - {long}1 }}",
        f"model B({longer}1: [N, 2], {long}2: [N, 2]) {{ return {longer}1 + {long}2 }}",
    ]
    for index, text in enumerate(specs):
        result = nndsl.check_source(text, f"long{index}.nn")
        assert result.ok, [d.message for d in result.diagnostics]
        source = emit_program(result.program)
        forward = re.split(r"\) -> .*:\n", source.split("def forward")[1], maxsplit=1)[1]
        assert all(len(line) <= 88 for line in forward.splitlines() if "#" not in line), forward
        (tmp_path / f"long{index}.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_layers_and_operators_do_not_lay_out_text():
    """Only the writer knows the line length and the indent: no layer or operator reads them."""
    import pathlib

    package = pathlib.Path(nndsl.__file__).parent
    for path in [*(package / "layers").glob("*.py"), *(package / "operators").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "LINE_LENGTH" not in text and "pywriter" not in text, path.name
