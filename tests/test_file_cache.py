"""The FileCache an editor's session checks with: imported files are read and parsed again only
when they change, an open buffer's text stands in for its file, and results equal a fresh check's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nndsl.api import check_file, check_source
from nndsl.check.loading import FileCache

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"

BLOCKS = """block Dense(width) {
    Linear(8, width) -> ReLU
}
"""
MAIN = """from "blocks.nn" import Dense

model M(x: [N, 8]) {
    Dense(16) -> Linear(16, 2)
}
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    _write(tmp_path / "blocks.nn", BLOCKS)
    _write(tmp_path / "main.nn", MAIN)
    return tmp_path / "main.nn"


def test_an_unchanged_import_is_read_and_parsed_once(spec: Path) -> None:
    cache = FileCache()
    first = check_source(MAIN, str(spec), files=cache)
    second = check_source(MAIN, str(spec), files=cache)
    assert first.ok and second.ok
    assert (cache.reads, cache.parses) == (1, 1)
    assert second.program.models[0].param_count == first.program.models[0].param_count == 8 * 16 + 16 + 16 * 2 + 2


def test_a_changed_import_is_read_and_checked_again(spec: Path) -> None:
    cache = FileCache()
    assert check_source(MAIN, str(spec), files=cache).ok
    _write(spec.parent / "blocks.nn", BLOCKS.replace("ReLU", "ReLU -> Linear(width, 3)"))
    result = check_source(MAIN, str(spec), files=cache)
    assert _codes(result) == ["E201"]  # Linear(16, 2) now reads 3 features
    assert (cache.reads, cache.parses) == (2, 2)


def test_a_buffer_stands_in_for_its_file_until_closed(spec: Path) -> None:
    cache = FileCache()
    blocks = str(spec.parent / "blocks.nn")
    cache.set_text(blocks, BLOCKS.replace("Linear(8, width)", "Linear(8, 4)"))
    assert _codes(check_source(MAIN, str(spec), files=cache)) == ["E201"]
    assert cache.reads == 0  # the buffer, not the file
    cache.set_text(blocks, None)
    assert check_source(MAIN, str(spec), files=cache).ok


def test_a_deleted_import_is_the_error_a_fresh_check_gives(spec: Path) -> None:
    cache = FileCache()
    assert check_source(MAIN, str(spec), files=cache).ok
    os.remove(spec.parent / "blocks.nn")
    cached = check_source(MAIN, str(spec), files=cache)
    assert _codes(cached) == _codes(check_source(MAIN, str(spec))) and "E116" in _codes(cached)


def test_the_result_keeps_the_parse_and_the_resolved_imports(spec: Path) -> None:
    result = check_source(MAIN, str(spec), files=FileCache())
    assert result.module is not None and len(result.module.items) == 2
    (imported,) = result.loaded.imports
    assert imported.real == os.path.realpath(spec.parent / "blocks.nn")


@pytest.mark.parametrize("name", ["resnet50.nn", "resnet18.nn", "unet.nn"])
def test_the_zoo_checks_the_same_with_a_cache(name: str, tmp_path: Path) -> None:
    for path in ZOO.glob("*.nn"):
        shutil.copy(path, tmp_path / path.name)
    spec = tmp_path / name
    cache = FileCache()
    fresh = check_file(spec)
    for _ in range(2):
        cached = check_source(spec.read_text(), str(spec), files=cache)
        assert [d.to_json() for d in cached.diagnostics] == [d.to_json() for d in fresh.diagnostics]
        assert [m.param_count for m in cached.program.models] == [m.param_count for m in fresh.program.models]
