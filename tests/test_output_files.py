"""Output files of ``compile`` (every target) and ``export``: never written over a file the command
reads, however it is named, nor over a file the user could not write; a replaced file keeps its mode."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import ROOT

from nndsl import files
from nndsl.cli import main

XOR = (ROOT / "specs" / "xor.nn").read_text()  # a model and a train section


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "xor.nn"
    path.write_text(XOR)
    return path


def _refused(capsys, argv, *unchanged):
    before = [(p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in unchanged]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "error: cannot write" in err and "Traceback" not in err
    assert "choose another output path with -o" in err or "read-only" in err or "directory" in err
    assert [(p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in unchanged] == before
    assert not [p for p in unchanged[0].parent.iterdir() if p.name.endswith(".tmp")]
    return err


TARGETS = [["--target", "module"], ["--target", "train"]]


@pytest.mark.parametrize("target", TARGETS, ids=["module", "train"])
def test_compile_never_writes_over_its_spec(capsys, spec, target):
    err = _refused(capsys, ["compile", spec, "-o", spec, *target], spec)
    assert "it is the input" in err
    _refused(capsys, ["compile", spec, "-o", f"./../{spec.parent.name}/xor.nn", *target], spec)


def test_compile_of_a_py_spec_never_writes_its_default_output_over_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "net.py"
    spec.write_text(XOR)
    _refused(capsys, ["compile", spec], spec)


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_the_same_file_under_another_name_is_refused(capsys, spec, link):
    other = spec.parent / "other.nn"
    (os.symlink if link == "symlink" else os.link)(spec, other)
    err = _refused(capsys, ["compile", spec, "-o", other], spec)
    assert "same file as" in err


def test_an_imported_spec_is_an_input_too(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocks.nn").write_text("block Mlp(x: [N, 2]) { Linear(2, 2) -> ReLU }\n")
    main_spec = tmp_path / "main.nn"
    main_spec.write_text('from "blocks.nn" import Mlp\nmodel M(x: [N, 2]) { Mlp() }\n')
    _refused(capsys, ["compile", main_spec, "-o", tmp_path / "blocks.nn"], main_spec, tmp_path / "blocks.nn")


def test_a_spec_imported_for_its_constants_alone_is_an_input_too(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "consts.nn").write_text("let width = 4\n")
    main_spec = tmp_path / "main.nn"
    main_spec.write_text('from "consts.nn" import width\nmodel M(x: [N, 2]) { Linear(2, width) }\n')
    _refused(capsys, ["compile", main_spec, "-o", tmp_path / "consts.nn"], main_spec, tmp_path / "consts.nn")


def test_a_read_only_output_is_kept(capsys, spec):
    out = spec.parent / "xor.py"
    out.write_text("keep me\n")
    out.chmod(0o444)
    err = _refused(capsys, ["compile", spec, "-o", out], out)
    assert "read-only" in err


def test_an_output_the_user_may_not_write_is_kept(capsys, spec, monkeypatch):
    """A file of another user (os.access says no; as root it never does, hence the stand-in)."""
    out = spec.parent / "xor.py"
    out.write_text("keep me\n")
    real = os.access
    monkeypatch.setattr(files.os, "access", lambda p, m: False if os.fspath(p) == str(out) else real(p, m))
    _refused(capsys, ["compile", spec, "-o", out], out)


def test_a_replaced_file_keeps_its_mode_and_a_link_is_written_through(capsys, spec):
    out = spec.parent / "xor.py"
    out.write_text("old\n")
    out.chmod(0o640)
    link = spec.parent / "link.py"
    link.symlink_to(out.name)
    assert main(["compile", str(spec), "-o", str(link)]) == 0
    assert link.is_symlink() and "class XOR" in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


def test_onnx_target_and_export_never_write_over_their_inputs(capsys, spec):
    _refused(capsys, ["compile", spec, "--target", "onnx", "-o", spec], spec)
    from nndsl.api import check_file
    from nndsl.backends.torch_build import fresh_weights

    program = check_file(spec).program
    weights = spec.parent / "w.pt"
    torch.save({k: torch.from_numpy(v) for k, v in fresh_weights(program, program.models[0]).items()}, weights)
    err = _refused(capsys, ["export", spec, "--weights", weights, "-o", weights], spec, weights)
    assert "it is the input" in err
    out = spec.parent / "xor.onnx"
    out.write_text("keep me\n")
    out.chmod(0o444)
    _refused(capsys, ["export", spec, "--weights", weights, "-o", out], out)


def test_a_destination_that_is_not_a_regular_file_is_written_into_never_replaced(capsys, spec):
    """``-o /dev/null`` or a FIFO: renaming a file over it (as root, over /dev/null) would replace it."""
    import threading

    fifo = spec.parent / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["compile", str(spec), "-o", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and b"class XOR" in received[0]
    assert not [p for p in spec.parent.iterdir() if p.name.endswith(".tmp")]


def test_the_library_refuses_without_naming_the_command_lines_flag(spec):
    import nndsl
    from nndsl.export import ExportFailure

    with pytest.raises(ExportFailure) as failure:
        nndsl.export_onnx(spec, spec)
    assert str(failure.value).endswith("it is the input of this command; choose another output path")
