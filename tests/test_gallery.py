"""The zoo gallery (docs/zoo.md) is generated from the code: it stays in sync with the specs, the
summary tables and the pictures, and shows every zoo model."""

from __future__ import annotations

from conftest import ROOT

from nndsl import gallery


def test_the_gallery_is_up_to_date():
    """Regenerate with ``python -m nndsl.gallery`` after changing the zoo, summary or graph."""
    assert gallery.main(["--check", "--root", str(ROOT)]) == 0


def test_the_gallery_shows_every_zoo_model_with_its_table_and_picture():
    text = (ROOT / "docs" / "zoo.md").read_text()
    for spec in sorted((ROOT / "specs" / "zoo").glob("*.nn")):
        if "model " not in spec.read_text():
            continue  # blocks that other specs import
        section = text.split(f"\n## {spec.stem}\n", 1)[1].split("\n## ", 1)[0]
        assert spec.read_text().rstrip("\n") in section
        assert "| total | value | expression |" in section and "```mermaid\nflowchart TB" in section


def test_a_stale_gallery_is_reported(tmp_path, capsys):
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zoo.md").write_text("# old\n")
    assert gallery.main(["--check", "--root", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert gallery.main(["--root", str(tmp_path)]) == 0
    assert gallery.main(["--check", "--root", str(tmp_path)]) == 0
