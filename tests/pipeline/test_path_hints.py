"""A missing file whose path repeats its leading folder (`data/data/a.txt`, file names that already start with the
folder a getter prefixes) gets a note naming the repetition and the fix (audit 3, E27); other missing files do not."""

import pytest

from tiers.pipeline import Pipeline, Transform


def _read(p):
    with open(p) as f:
        return f.read()


def _notes(f, x):
    with pytest.raises(FileNotFoundError) as info:
        f(x)
    return "\n".join(getattr(info.value, "__notes__", []))


def test_a_repeated_folder_is_named_with_the_fix(tmp_path, monkeypatch):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "a.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    notes = _notes(Pipeline([lambda o: f"data/{o}", _read]), "data/train/a.txt")
    assert "The path repeats its folder 'data': data/data/train/a.txt does not exist, data/train/a.txt does" in notes
    assert "pass path='.'" in notes
    # two folders repeated
    assert "repeats its folder 'data/train'" in _notes(Transform(_read), "data/train/data/train/a.txt")


def test_other_missing_files_get_no_folder_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "repeats its folder" not in _notes(Transform(_read), "data/data/nothing.txt")  # no shorter path either
    assert "repeats its folder" not in _notes(Transform(_read), "other/a.txt")
