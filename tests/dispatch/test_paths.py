"""tiers.dispatch's `Path`: fastai's `Path.BASE_PATH` display convention (AUDIT2 D17)."""

import pathlib
import pickle

from tiers.dispatch import Path


def test_path_repr_is_relative_to_base_path_when_set(tmp_path, monkeypatch):
    # AUDIT2 D17: fastbook's `Path.BASE_PATH = path; path.ls()` shows `Path('train/3')`, as fastcore does.
    base = Path(tmp_path)
    (base / "train" / "3").mkdir(parents=True)
    (base / "valid").mkdir()
    assert repr(base / "train") == f"Path({(tmp_path / 'train').as_posix()!r})"   # unset: the full path
    monkeypatch.setattr(Path, "BASE_PATH", base)
    assert [repr(p) for p in base.ls()] == ["Path('train')", "Path('valid')"]
    assert repr((base / "train").ls()).endswith("[Path('train/3')]")
    assert repr(base) == "Path('.')"
    assert repr(Path("/elsewhere/x")) == "Path('/elsewhere/x')"                       # not under it: full path
    p = base / "train" / "3"
    assert p.is_absolute() and str(p) == str(tmp_path / "train" / "3") and p.exists()  # only the repr changes
    monkeypatch.setattr(Path, "BASE_PATH", str(tmp_path))                             # a string works too
    assert repr(p) == "Path('train/3')"
    assert pickle.loads(pickle.dumps(p)) == pathlib.Path(tmp_path / "train" / "3")
