"""Data flow: named values, tensor operations, blocks, repetition, loops, residuals, imports.

Shapes of the tensor operations are compared with torch itself; every mistake has its code,
its position and the labels that explain it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nndsl
from nndsl.backends.torch_module import emit_program

torch = pytest.importorskip("torch")


def check(text: str, name: str = "t.nn"):
    return nndsl.check_source(text, name)


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def only(result, code: str):
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, [(d.code, d.message) for d in result.diagnostics]
    return found[0]


def labels(diag) -> list[str]:
    return [label.message for label in diag.secondary]


# ---------------------------------------------------------------- combining values


def test_adding_mismatched_branches_points_at_both_producers():
    result = check(
        "model M(x: [N, 3, 32, 32]) {\n"
        "    a = x -> Conv2d(3, 64, 3, padding=1)\n"
        "    b = x -> Conv2d(3, 128, 3, stride=2, padding=1)\n"
        "    return a + b\n"
        "}"
    )
    diag = only(result, "E208")
    assert "[N, 64, 32, 32]" in diag.message and "[N, 128, 16, 16]" in diag.message
    assert "dim 1" in diag.message
    assert labels(diag) == ["output [N, 64, 32, 32] produced here", "output [N, 128, 16, 16] produced here"]
    assert result.source.line_col(diag.span.start) == (4, 12)
    lines = {result.source.line_col(label.span.start)[0] for label in diag.secondary}
    assert lines == {2, 3}


@pytest.mark.parametrize(
    ("a", "b", "out"),
    [
        ("[N, 16]", "[N, 1]", "[N, 16]"),
        ("[N, 3, 4]", "[4]", "[N, 3, 4]"),
        ("[1, 5]", "[7, 1]", "[7, 5]"),
        ("[N, 8, 1, 1]", "[N, 8, 6, 6]", "[N, 8, 6, 6]"),
    ],
)
def test_broadcasting_follows_torch(a, b, out):
    result = check(f"model M(a: {a}, b: {b}) {{ return a * b }}")
    assert result.ok, [d.message for d in result.diagnostics]
    assert str(result.program.models[0].output) == out


_DIM = st.integers(1, 4)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=4),
    st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=4),
    st.sampled_from(["+", "-", "*", "/"]),
)
def test_elementwise_shapes_agree_with_torch(a, b, op):
    def decl(dims):
        return "[" + ", ".join(map(str, dims)) + "]"

    result = check(f"model M(a: {decl(a)}, b: {decl(b)}) {{ return a {op} b }}")
    try:
        expected = tuple((eval(f"x {op} y", {"x": torch.ones(a), "y": torch.ones(b)})).shape)
    except RuntimeError:
        assert not result.ok
        return
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].output.shape.dims == expected


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    st.lists(_DIM, min_size=1, max_size=4),
    st.lists(_DIM, min_size=1, max_size=4),
    st.integers(-4, 3),
    st.sampled_from(["cat", "stack"]),
)
def test_cat_and_stack_agree_with_torch(a, b, dim, op):
    result = check(f"model M(a: {list(a)}, b: {list(b)}) {{ return {op}(a, b, dim={dim}) }}")
    try:
        expected = tuple(getattr(torch, op)((torch.ones(a), torch.ones(b)), dim=dim).shape)
    except (RuntimeError, IndexError):
        assert not result.ok
        return
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].output.shape.dims == expected


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=3),
    st.integers(-3, 2),
    st.one_of(st.integers(1, 5), st.lists(st.integers(0, 5), min_size=1, max_size=4)),
    st.sampled_from(["chunk", "split"]),
)
def test_chunk_and_split_agree_with_torch(shape, dim, size, op):
    if op == "chunk" and isinstance(size, list):
        size = len(size)
    written = size if isinstance(size, int) else list(size)
    try:
        pieces = getattr(torch, op)(torch.ones(shape), written, dim=dim)
    except (RuntimeError, IndexError):
        pieces = None
    result = check(f"model M(x: {list(shape)}) {{\n    parts = {op}(x, {written}, dim={dim})\n    return parts[0]\n}}")
    if pieces is None:
        assert not result.ok
        return
    assert result.ok, [d.message for d in result.diagnostics]
    (node,) = result.program.models[0].graph.nodes
    assert [t.shape.dims for t in node.types] == [tuple(p.shape) for p in pieces]


def test_values_combine_with_numbers():
    result = check("model M(x: [N, 4]) { return (x -> Linear(4, 4)) * 0.5 + x }")
    assert result.ok
    source = emit_program(result.program)
    assert "* 0.5" in source


# ---------------------------------------------------------------- names and flow


def test_use_before_definition_is_an_error_pointing_at_the_definition():
    result = check("model M(x: [N, 4]) {\n    a = b -> ReLU\n    b = x -> ReLU\n    return a\n}")
    diag = only(result, "E108")
    assert "before it is defined" in diag.message
    assert labels(diag) == ["defined here, later"]
    assert "no cycles" in diag.help


def test_undefined_value_suggests_a_close_name():
    result = check("model M(x: [N, 4]) {\n    first = x -> ReLU\n    return firts -> ReLU\n}")
    diag = only(result, "E108")
    assert diag.help == "did you mean 'first'?"


def test_unused_values_and_inputs_are_warned_about():
    result = check(
        "model M(a: [N, 4], unused_input: [N, 4]) {\n    spare = a -> ReLU\n    a -> Tanh\n    return a -> Sigmoid\n}"
    )
    assert result.ok
    messages = sorted(d.message for d in result.diagnostics if d.code == "W305")
    assert messages == ["'spare' is never used", "input 'unused_input' is never used", "this value is never used"]


def test_a_chain_with_several_inputs_in_scope_must_say_which():
    diag = only(check("model M(a: [N, 4], b: [N, 4]) { Linear(4, 2) }"), "E114")
    assert "no input" in diag.message


def test_statements_on_one_line_need_an_arrow():
    diag = only(check("model M(x: [N, 10]) { Flatten Linear(10, 4) }"), "E001")
    assert diag.help == "connect the layers with '->': ... -> Linear"


def test_values_cannot_take_layer_names():
    assert "E109" in codes(check("model M(x: [N, 4]) {\n    ReLU = x -> Tanh\n    return ReLU\n}"))


def test_several_outputs_build_and_run():
    text = (
        "model M(x: [N, 8]) {\n"
        "    h = x -> Linear(8, 6)\n"
        "    left, right = chunk(h, 2, dim=1)\n"
        "    return left -> ReLU, cat(right, x, dim=1)\n"
        "}"
    )
    result = check(text)
    assert result.ok
    model = result.program.models[0]
    assert [str(t) for t in model.outputs] == ["[N, 3]", "[N, 11]"]
    first, second = nndsl.build(text)(torch.randn(5, 8))
    assert tuple(first.shape) == (5, 3) and tuple(second.shape) == (5, 11)


def test_destructuring_needs_the_right_count():
    assert "E117" in codes(check("model M(x: [N, 8]) {\n    a, b, c = chunk(x, 2, dim=1)\n    return a\n}"))


# ---------------------------------------------------------------- repetition and loops


def test_an_empty_loop_runs_no_times():
    result = check("model M(x: [N, 8]) { Linear(8, 4) -> for i in range(0) { Linear(4, 4) } }")
    assert result.ok and str(result.program.models[0].output) == "[N, 4]"


def test_repetition_and_for_loops():
    text = (
        "model M(x: [N, 8]) {\n"
        "    (Linear(8, 8) -> ReLU) * 3\n"
        "    -> for width in [16, 32] { Linear(out_features=width) -> ReLU }\n"
        "    -> Linear(32, 2) * 0\n"
        "}"
    )
    result = check(text)
    assert result.ok
    model = result.program.models[0]
    assert str(model.output) == "[N, 32]"
    assert len(model.layers) == 10
    assert model.param_count == 3 * 72 + (8 * 16 + 16) + (16 * 32 + 32)
    module = nndsl.build(text)
    assert sum(p.numel() for p in module.parameters()) == model.param_count
    assert tuple(module(torch.randn(2, 8)).shape) == (2, 32)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("model M(x: [N, 8]) { Linear(8, 8) * -1 }", "E107"),
        ("model M(x: [N, 8]) { Linear(8, 8) * 2.5 }", "E114"),
        ("model M(x: [N, 8]) { for a, b in [1, 2] { Linear(8, 8) } }", "E117"),
        ("model M(x: [N, 8]) { for a in 3 { Linear(8, 8) } }", "E114"),
        ("model M(x: [N, 8]) { Linear(8, 8) * 20000 }", "E107"),
        ("model M(x: [N, 8]) { for i in range(1, 5, 0) { Linear(8, 8) } }", "E110"),
    ],
)
def test_repetition_mistakes(text, code):
    assert code in codes(check(text))


# ---------------------------------------------------------------- blocks


def test_block_input_pattern_is_checked_at_the_use():
    result = check("block B(x: [N, C, H, W], planes) { Conv2d(C, planes, 3) }\nmodel M(x: [N, 64]) {\n    x -> B(8)\n}")
    diag = only(result, "E202")
    assert result.source.line_col(diag.span.start)[0] == 3
    assert "input pattern declared here" in labels(diag)


def test_block_pattern_sizes_must_agree():
    result = check("block B(x: [N, 64, H, W]) { ReLU }\nmodel M(x: [N, 32, 8, 8]) { B }")
    assert "E201" in codes(result)


def test_errors_inside_a_block_point_at_the_body_and_the_use():
    result = check("block B(x: [N, D], k) { Linear(k, 4) }\nmodel M(x: [N, 8]) { B(8) -> B(3) }")
    diag = only(result, "E201")
    assert result.source.line_col(diag.span.start)[0] == 1
    assert any(message.startswith("in this use of B(3)") for message in labels(diag))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("block B(x: [N, D]) { B }\nmodel M(x: [N, 4]) { B }", "E115"),
        ("block B(x: [N, D], a=1, b) { ReLU }\nmodel M(x: [N, 4]) { B(b=2) }", "E115"),
        ("block B(x: [N, D], a, a) { ReLU }\nmodel M(x: [N, 4]) { B(1) }", "E115"),
        ("block Linear(x: [N, D]) { ReLU }\nmodel M(x: [N, 4]) { ReLU }", "E109"),
        ("block B(x: [N, D], k) { ReLU }\nmodel M(x: [N, 4]) { B }", "E105"),
        ("block B(x: [N, D], k) { ReLU }\nmodel M(x: [N, 4]) { B(kk=1) }", "E102"),
    ],
)
def test_block_definition_and_use_mistakes(text, code):
    assert code in codes(check(text))


def test_residual_shape_mismatch_suggests_a_projection():
    diag = only(check("model M(x: [N, 8]) { Residual(Linear(8, 4)) }"), "E208")
    assert "projection" in diag.help


def test_sub_network_parameter_becomes_a_module_argument(tmp_path):
    text = (
        "block Wrap(x: [N, D], inner, scale=1.0) { Residual(inner) -> LayerNorm(D) }\n"
        "model M(x: [N, 8]) { Wrap(Linear(8, 8) -> ReLU) -> Wrap(Linear(8, 8)) }"
    )
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    assert "inner: nn.Module" in source
    assert "nn.Sequential(nn.Linear(8, 8), nn.ReLU())" in source
    module = nndsl.build(text)
    assert sum(p.numel() for p in module.parameters()) == result.program.models[0].param_count
    assert tuple(module(torch.randn(3, 8)).shape) == (3, 8)


def test_uses_with_different_structure_get_their_own_classes():
    text = (
        "block B(x: [N, D], out) { Linear(D, out) -> ReLU if out > 4 else Linear(D, out) }\n"
        "model M(x: [N, 8]) { B(8) -> B(2) }"
    )
    result = check(text)
    assert result.ok
    source = emit_program(result.program)
    assert "class B(nn.Module)" in source and "class B2(nn.Module)" in source
    assert tuple(nndsl.build(text)(torch.randn(2, 8)).shape) == (2, 2)


def test_block_arguments_become_constructor_parameters():
    text = (
        "block Mlp(x: [N, D], hidden, act=ReLU) { Linear(D, hidden * 2) -> act -> Linear(hidden * 2, D) }\n"
        "model M(x: [N, 8]) { Mlp(4) -> Mlp(16, act=Tanh) }"
    )
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    assert "nn.Linear(D, hidden * 2)" in source
    module = nndsl.build(text)
    assert sum(p.numel() for p in module.parameters()) == result.program.models[0].param_count


# ---------------------------------------------------------------- imports


def test_blocks_import_from_another_file(tmp_path):
    (tmp_path / "blocks.nn").write_text("let width = 16\nblock Pair(x: [N, D]) { Linear(D, width) -> ReLU }\n")
    spec = tmp_path / "model.nn"
    spec.write_text('from "blocks.nn" import Pair, width\nmodel M(x: [N, 4]) { Pair -> Linear(width, 2) }\n')
    result = nndsl.check_file(spec)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program.models[0].param_count == 4 * 16 + 16 + 16 * 2 + 2


def test_errors_in_an_imported_block_name_its_file(tmp_path):
    (tmp_path / "blocks.nn").write_text("block Bad(x: [N, D]) { Linear(5, 2) }\n")
    spec = tmp_path / "model.nn"
    spec.write_text('from "blocks.nn" import Bad\nmodel M(x: [N, 4]) { Bad }\n')
    result = nndsl.check_file(spec)
    diag = only(result, "E201")
    assert diag.source.name.endswith("blocks.nn")
    assert any("in the use of Bad" in note for note in diag.notes)


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({}, "cannot read"),
        ({"blocks.nn": "block Other(x: [N, D]) { ReLU }"}, "did you mean 'Other'?"),
        ({"blocks.nn": 'from "model.nn" import B\nblock Other(x: [N, D]) { ReLU }'}, "imports itself"),
    ],
)
def test_import_mistakes(tmp_path, files, fragment):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    spec = tmp_path / "model.nn"
    spec.write_text('from "blocks.nn" import Othr\nmodel M(x: [N, 4]) { ReLU }\n')
    result = nndsl.check_file(spec)
    found = [d for d in result.diagnostics if d.code == "E116"]
    assert found, [(d.code, d.message) for d in result.diagnostics]
    assert any(fragment in (d.message + " " + (d.help or "")) for d in found)


def test_a_mistake_in_a_loop_body_is_reported_once():
    result = check("model M(x: [N, 8]) { for w in [8, 16, 32] { Lineer(out_features=w) } }")
    assert codes(result) == ["E101"]


def test_a_failed_import_is_not_reported_again_at_each_use(tmp_path):
    spec = tmp_path / "model.nn"
    spec.write_text('from "missing.nn" import Block\nmodel M(x: [N, 4]) { Block -> Block(2) }\n')
    assert codes(nndsl.check_file(spec)) == ["E116"]


def test_view_after_a_transpose_is_an_error_as_torch_raises():
    text = "model M(x: [N, 4, 6]) { Transpose(1, 2) -> ReLU -> View((-1, 24)) }"
    diag = only(check(text), "E209")
    assert "Reshape" in diag.help
    with pytest.raises(RuntimeError, match="view"):  # what the emitted forward would do
        torch.randn(2, 4, 6).transpose(1, 2).relu().view(-1, 24)
    fixed = text.replace("View", "Reshape")
    assert not check(fixed).diagnostics
    assert tuple(nndsl.build(fixed)(torch.randn(2, 4, 6)).shape) == (2, 24)


def test_an_optional_residual_keeps_one_class():
    text = (
        "block B(x: [N, D], out) {\n"
        "    body = Linear(D, out) -> ReLU\n"
        "    Residual(body) if D == out else body\n"
        "}\n"
        "model M(x: [N, 8]) { B(8) -> B(4) -> B(4) }"
    )
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    source = emit_program(result.program)
    assert source.count("(nn.Module)") == 2 and "self.use_residual = D == out" in source
    module = nndsl.build(text)
    x = torch.randn(3, 8)
    assert tuple(module(x).shape) == (3, 4)
    first = module.b1
    assert torch.allclose(first(x), first.fc(x).relu() + x)


def test_an_import_cycle_through_several_files_is_an_error(tmp_path):
    (tmp_path / "a.nn").write_text('from "b.nn" import B\nblock A(x: [N, D]) { ReLU }\n')
    (tmp_path / "b.nn").write_text('from "c.nn" import C\nblock B(x: [N, D]) { ReLU }\n')
    (tmp_path / "c.nn").write_text('from "a.nn" import A\nblock C(x: [N, D]) { ReLU }\n')
    spec = tmp_path / "model.nn"
    spec.write_text('from "a.nn" import A\nmodel M(x: [N, 4]) { A }\n')
    result = nndsl.check_file(spec)
    assert any(d.code == "E116" and "imports itself" in d.message for d in result.diagnostics)


def test_importing_from_a_file_with_models_checks_only_what_is_imported(tmp_path):
    (tmp_path / "lib.nn").write_text("block Ok(x: [N, D]) { ReLU }\nmodel Broken(x: [N, 4]) { Linear(5, 2) }\n")
    spec = tmp_path / "model.nn"
    spec.write_text('from "lib.nn" import Ok\nmodel M(x: [N, 4]) { Ok }\n')
    result = nndsl.check_file(spec)
    assert result.ok and not result.diagnostics


def test_an_error_in_a_nested_imported_block_names_the_use_in_the_model(tmp_path):
    (tmp_path / "inner.nn").write_text("block Inner(x: [N, D]) { Linear(5, 2) }\n")
    (tmp_path / "outer.nn").write_text('from "inner.nn" import Inner\nblock Outer(x: [N, D]) { Inner }\n')
    spec = tmp_path / "model.nn"
    spec.write_text('from "outer.nn" import Outer\nmodel M(x: [N, 4]) { Outer }\n')
    diag = only(nndsl.check_file(spec), "E201")
    assert diag.source.name.endswith("inner.nn")
    assert diag.notes == (f"in the use of Outer at {spec}:2:22",)


def test_imported_files_are_loaded_once_before_checking_with_every_mistake_reported(tmp_path, monkeypatch):
    from nndsl.check import loading

    files = {
        "a.nn": 'from "c.nn" import C, k\nfrom "missing.nn" import Z\nlet q = 1 +\nblock A(x: [N, D]) { ReLU }\n',
        "c.nn": 'from "a.nn" import A\nlet k = 4\nblock C(x: [N, D]) { Linear(5, k) }\nlet broken = (\n',
        "b.nn": 'from "c.nn" import C\nfrom "x.txt" import T\nblock B(x: [N, D]) { C }\n',
        "model.nn": 'from "a.nn" import A, Nope\nfrom "b.nn" import B\nmodel M(x: [N, 4]) { A -> B }\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    reads: list[str] = []
    real_read = loading.read_file
    monkeypatch.setattr(loading, "read_file", lambda path: reads.append(os.path.basename(path)) or real_read(path))
    result = nndsl.check_file(tmp_path / "model.nn")
    assert sorted(reads) == ["a.nn", "b.nn", "c.nn", "missing.nn"]  # each tried once
    found = [(d.code, os.path.basename(d.source.name), d.source.line_col(d.span.start)[0]) for d in result.diagnostics]
    assert found == [
        ("E116", "model.nn", 1),  # Nope
        ("E116", "c.nn", 1),  # the cycle back to a.nn
        ("E116", "b.nn", 2),  # not a .nn file
        ("E116", "a.nn", 2),  # missing.nn
        ("E201", "c.nn", 3),  # C's body, checked where b.nn's block B uses it
        ("E001", "a.nn", 4),  # syntax errors of imported files
        ("E001", "c.nn", 4),
    ]
    assert [os.path.basename(p) for p in result.program.imported] == ["c.nn", "a.nn", "b.nn"]


@pytest.mark.parametrize(
    "body",
    [
        "k = k * 2\n    Linear(D, k)",  # a parameter
        "w = 2\n    w = 3\n    Linear(D, w)",  # a constant
    ],
)
def test_parameters_and_constants_keep_one_meaning(body):
    result = check(f"block B(x: [N, D], k) {{\n    {body}\n}}\nmodel M(x: [N, 4]) {{ B(2) }}")
    assert "E109" in codes(result)


def test_a_tensor_name_may_be_reused():
    result = check("model M(x: [N, 4]) {\n    y = x -> ReLU\n    y = y -> Tanh\n    return y\n}")
    assert result.ok and not result.diagnostics


def test_a_value_used_in_its_own_definition_is_one_error():
    result = check("model M(x: [N, 4]) {\n    y = y -> ReLU\n    return y + x\n}")
    assert codes(result) == ["E108"]
    assert "before it is defined" in result.diagnostics[0].message


def test_an_unused_value_is_computed_but_binds_no_variable(tmp_path):
    from test_golden import assert_ruff_clean

    text = "model M(x: [N, 4]) {\n    spare = x -> Linear(4, 4)\n    x -> ReLU\n    return x -> Tanh\n}"
    source = emit_program(check(text).program)
    assert "        self.fc(x)  # [N, 4]" in source and "spare" not in source.split("def forward")[1]
    (tmp_path / "m.py").write_text(source)
    assert_ruff_clean(tmp_path)


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("model M(x: [N, 4]) {\n    a, b = x\n    return a\n}", "E117", "gives a tensor"),
        ("model M(x: [N, 4]) { return len(x) }", "E114", "got a tensor"),  # x[0] indexes the tensor
        ("model M(x: [N, 4]) { return split(x, x) }", "E106", "got a tensor"),
    ],
)
def test_a_tensor_is_not_taken_for_a_list(text, code, fragment):
    diag = only(check(text), code)
    assert fragment in diag.message


@pytest.mark.parametrize(
    ("body", "count"),
    [
        # one module in two places: its weights are shared, and counted once (tests/test_sharing.py)
        ("tower = Linear(8, 8) -> ReLU\n p = a -> tower\n q = a -> tower\n return p, q", 72),
        ("tower = Linear(8, 8)\n a -> tower -> tower", 72),
        # a repetition makes new copies, apart from the module itself; a loop a copy per iteration
        ("tower = Linear(8, 8)\n a -> tower * 2\n for i in range(2) { tower }", 4 * 72),
        ("tower = Linear(8, 8) -> ReLU\n a -> tower * 3", 3 * 72),
        ("tower = Linear(8, 8)\n for i in range(3) { tower }", 3 * 72),
        # without weights there is nothing to share
        ("act = ReLU -> Dropout(0.1)\n p = a -> act\n q = a -> act\n return p, q", 0),
    ],
)
def test_a_named_sub_network_with_weights_is_one_module(body, count):
    result = check(f"model M(a: [N, 8]) {{\n {body}\n}}")
    assert codes(result) == [], [(d.code, d.message) for d in result.diagnostics]
    assert result.program.models[0].param_count == count


def test_a_named_sub_network_inside_a_block_is_new_at_each_use():
    text = "block B(x: [N, D]) {\n    tower = Linear(D, D) -> ReLU\n    x -> tower\n}\nmodel M(a: [N, 8]) { B -> B }"
    result = check(text)
    assert result.ok and not result.diagnostics, [(d.code, d.message) for d in result.diagnostics]
    assert result.program.models[0].param_count == 2 * (8 * 8 + 8)
