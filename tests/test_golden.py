"""Golden files: the emitted source of every good spec, the diagnostics of every bad one.

Refresh with ``pytest tests/test_golden.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import shutil

import pytest
from conftest import GOLDEN, ROOT, SPECS, assert_ruff_clean, bad_specs, good_specs, zoo_specs

from nndsl import check_file
from nndsl.backends.torch_module import emit_program
from nndsl.diagnostics import Severity, render_text


def _compare(path, actual: str, update: bool) -> None:
    if update or not path.exists():
        path.write_text(actual, encoding="utf-8")
        if not update:
            pytest.fail(f"golden file {path.name} was missing and has been written; review and commit it")
        return
    assert actual == path.read_text(encoding="utf-8"), f"output differs from {path}; rerun with --update-golden"


@pytest.mark.parametrize("spec", good_specs() + zoo_specs(), ids=lambda p: str(p.relative_to(SPECS)))
def test_emitted_source_matches_golden(spec, update_golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = check_file(spec.relative_to(ROOT))
    assert result.ok, [render_text(d) for d in result.errors]
    golden = GOLDEN / spec.relative_to(SPECS).with_suffix(".py")
    _compare(golden, emit_program(result.program), update_golden)


@pytest.mark.parametrize("spec", bad_specs(), ids=lambda p: p.name)
def test_bad_spec_diagnostics_match_golden(spec, update_golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = check_file(spec.relative_to(ROOT))
    assert not result.ok
    assert all(d.severity is not Severity.ERROR or d.code.startswith("E") for d in result.diagnostics)
    rendered = "\n\n".join(render_text(d) for d in result.diagnostics) + "\n"
    _compare(GOLDEN / "bad" / (spec.stem + ".txt"), rendered, update_golden)


def test_golden_sources_are_ruff_clean(tmp_path):
    files = sorted(GOLDEN.rglob("*.py"))
    assert files
    for f in files:
        shutil.copy(f, tmp_path / "_".join(f.relative_to(GOLDEN).parts))
    assert_ruff_clean(tmp_path)


def test_emission_is_deterministic():
    spec = good_specs()[0]
    first = emit_program(check_file(spec).program)
    second = emit_program(check_file(spec).program)
    assert first == second


def test_emission_of_every_layer_example_is_ruff_clean(tmp_path):
    """Each layer's accepted example rows, compiled, pass ruff's default lint and format."""
    from nndsl import check_source
    from nndsl.layers import REGISTRY

    sources = 0
    for name, layer in sorted(REGISTRY.items()):
        for index, (call, given, expected) in enumerate(layer.examples):
            if expected.startswith(("E", "W")):
                continue
            result = check_source(call, f"{name}.nn", input=None if given == "[*]" else given)
            assert result.ok, (call, [d.message for d in result.errors])
            (tmp_path / f"{name}_{index}.py").write_text(emit_program(result.program))
            sources += 1
    assert sources > 100
    assert_ruff_clean(tmp_path)


def test_long_names_are_laid_out_as_ruff_formats_them(tmp_path):
    from nndsl import check_source

    long_input = "t" * 75
    specs = [
        f"model M({long_input}: long[N, T]) {{ Embedding(10, 4) -> GRU(4, 8, batch_first=True).hidden }}",
        f"model {'A' * 85}(x: [N, 3]) {{ Linear(3, 2) }}",
        "model U(x: [N, 64]) { Unflatten(1, (" + ", ".join(["1"] * 37) + ", -1)) }",
        "model S(x: [N, 4, 8, 8]) { Conv2d(4, 8, 3, padding='same', padding_mode='reflect', bias=False) }",
    ]
    for index, text in enumerate(specs):
        result = check_source(text, f"long{index}.nn")
        assert result.ok, [d.message for d in result.errors]
        (tmp_path / f"long{index}.py").write_text(emit_program(result.program))
    assert_ruff_clean(tmp_path)
