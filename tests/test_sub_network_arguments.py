"""A sub-network given to a block is a module of its own with one input: reading a tensor of the
caller by name from inside it is refused at the name (E108), never an internal error later."""

from __future__ import annotations

import pytest

import nndsl
from nndsl.backends.torch_module import emit_program, load_module

torch = pytest.importorskip("torch")

WRAP = "block Wrap(x: [N, C], f) {\n    x -> Linear(C, C) -> f\n}\n\n"


def _check(model: str):
    return nndsl.check_source(WRAP + model, "wrap.nn")


def test_a_caller_tensor_read_by_a_sub_network_argument_is_refused_at_the_name():
    result = _check(
        "model M(x: [N, 4]) {\n    x -> Wrap(for i in range(2) {\n        y = x * 2\n        y -> ReLU\n    })\n}\n"
    )
    assert [(d.code, d.line_col) for d in result.errors] == [("E108", (7, 13))]
    error = result.errors[0]
    assert "'x' is a tensor of the caller" in error.message and "'f'" in error.message
    assert error.label == "not visible in 'f'"
    assert [label.message for label in error.secondary][:1] == ["given as 'f' here"]


def test_a_caller_tensor_is_refused_in_a_nested_block_and_in_a_composition():
    nested = (
        "block Outer(x: [N, C], g) {\n    h = x -> ReLU\n    x -> Wrap(g -> for i in range(1) {\n"
        "        y = h + 1\n        y -> ReLU\n    })\n}\n\n"
        "model M(x: [N, 4]) {\n    x -> Outer(ReLU)\n}\n"
    )
    result = _check(nested)
    assert [(d.code, d.line_col) for d in result.errors] == [("E108", (8, 13))]


def test_the_sub_network_argument_reading_its_own_values_is_correct_code():
    """Reading what the argument itself computes, or the very tensor it is applied to, stays legal."""
    model = "model M(x: [N, 4]) {\n    x -> Wrap(for i in range(2) {\n        y = ReLU\n        y -> Tanh\n    })\n}\n"
    result = _check(model)
    assert result.ok, [d.message for d in result.diagnostics]
    same = "block Apply(x: [N, C], f) {\n    x -> f\n}\n\nmodel M(x: [N, 4]) {\n    x -> Apply(for i in range(2) {\n        y = x * 2\n        y -> ReLU\n    })\n}\n"
    result = nndsl.check_source(same, "apply.nn")
    assert result.ok, [d.message for d in result.diagnostics]
    emit_program(result.program)
    x = torch.randn(3, 4)
    assert torch.equal(load_module(result.program)["M"]()(x), torch.relu(x * 2))


def test_compile_of_the_refused_spec_reports_the_diagnostic(tmp_path, capsys):
    from nndsl.cli import main

    spec = tmp_path / "wrap.nn"
    spec.write_text(
        WRAP
        + "model M(x: [N, 4]) {\n    x -> Wrap(for i in range(2) {\n        y = x * 2\n        y -> ReLU\n    })\n}\n"
    )
    assert main(["compile", str(spec), "-o", str(tmp_path / "wrap.py")]) == 1
    err = capsys.readouterr().err
    assert "error[E108]" in err and "internal error" not in err
    assert not (tmp_path / "wrap.py").exists()
