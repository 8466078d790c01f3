"""AUDIT3 E18: `TabularPandas.export(fname)` / `load_pandas(fname)` (fastai's way to reuse fitted procs without a
Learner, e.g. for a random forest at inference): the row-less object is written atomically and read back through
load_learner's safe loader; `to2.new(test_df).process()` gives the `xs` (and `ys`) the original gives. Corrupted,
foreign and malicious files are refused, saying what they are."""

import hashlib
import io
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.tabular.all import *  # noqa: F403  (the user's import line: load_pandas comes with it)

PROCS = [Categorify, FillMissing, Normalize]  # noqa: F405


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"c1": rng.choice(list("abcde"), n), "c2": rng.choice(["u", "v"], n),
                       "x1": rng.normal(size=n), "x2": rng.normal(2.0, 3.0, size=n)})
    df["y"] = np.where(df.c1.isin(["a", "b"]) | (df.x1 > 0.5), "hi", "lo")
    df["r"] = 2 * df.x1.fillna(0) - df.x2
    df.loc[rng.random(n) < 0.15, "x1"] = np.nan
    df.loc[rng.random(n) < 0.05, "c1"] = None
    return df


def _test_frame() -> pd.DataFrame:
    test = _frame(50, seed=1)
    test.loc[[0, 3], "c1"] = "never-seen"  # a category not in the training rows
    test.loc[[1, 2], "x1"] = np.nan
    return test


@pytest.fixture
def to() -> TabularPandas:  # noqa: F405
    return TabularPandas(_frame(300), PROCS, ["c1", "c2"], ["x1", "x2"], "y",  # noqa: F405
                         splits=(list(range(240)), list(range(240, 300))))


def _processed(t: TabularPandas, df: pd.DataFrame) -> TabularPandas:  # noqa: F405
    with pytest.warns(UserWarning, match="never-seen"):  # Categorify says which values it did not see in training
        return t.new(df).process()


def test_export_load_process_gives_the_same_xs(to, tmp_path):
    path = to.export(tmp_path / "to.pkl")
    assert path == tmp_path / "to.pkl" and path.is_file()
    assert len(to) == 300  # the original keeps its rows
    to2 = load_pandas(path)  # noqa: F405
    assert type(to2) is TabularPandas and len(to2) == 0  # noqa: F405  (no rows in the file)
    assert (to2.cat_names, to2.cont_names, to2.y_names) == (to.cat_names, to.cont_names, to.y_names)
    assert list(to2.vocab) == list(to.vocab) and to2.y_kind == "category"
    assert {k: list(v) for k, v in to2.classes.items()} == {k: list(v) for k, v in to.classes.items()}
    assert to2.normalize.means == to.normalize.means and to2.fill_missing.na_dict == to.fill_missing.na_dict
    test = _test_frame()
    new, ref = _processed(to2, test), _processed(to, test)
    pd.testing.assert_frame_equal(new.xs, ref.xs)
    pd.testing.assert_frame_equal(new.ys, ref.ys)
    assert "x1_na" in new.xs.columns and new.xs["x1_na"].iloc[1] == ref.xs["x1_na"].iloc[1]
    # test rows without the target, as at inference
    unlabelled = test.drop(columns=["y", "r"])
    pd.testing.assert_frame_equal(_processed(to2, unlabelled).xs, ref.xs)
    # decoding goes back to readable values with the loaded state
    pd.testing.assert_frame_equal(new.decode().items[["c2", "x2"]], ref.decode().items[["c2", "x2"]])


def test_fresh_process_reads_it(to, tmp_path):
    path = to.export(tmp_path / "to.pkl")
    _test_frame().to_pickle(tmp_path / "test.pkl")
    code = ("import pandas as pd, warnings; warnings.simplefilter('ignore')\n"
            "from tiers.tabular.all import *\n"
            f"to2 = load_pandas({str(path)!r})\n"
            f"new = to2.new(pd.read_pickle({str(tmp_path / 'test.pkl')!r})); new.process()\n"
            f"new.xs.to_pickle({str(tmp_path / 'xs.pkl')!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "xs.pkl"), _processed(to, _test_frame()).xs)


def test_regression_target_and_a_tensor_held_by_a_proc(tmp_path):
    to = TabularPandas(_frame(200), PROCS, ["c1", "c2"], ["x1", "x2"], "r")  # noqa: F405
    to.normalize.extra = torch.arange(3.0)  # a custom proc state held as a tensor
    to2 = load_pandas(to.export(tmp_path / "reg.pkl"))  # noqa: F405
    assert to2.y_kind == "regression" and torch.equal(to2.normalize.extra, torch.arange(3.0))
    test = _frame(40, seed=2)
    a, b = to2.new(test).process(), to.new(test).process()
    pd.testing.assert_frame_equal(a.xs, b.xs)
    pd.testing.assert_frame_equal(a.ys, b.ys)
    assert all(torch.equal(x, y) for x, y in zip(a.tensors(), b.tensors(), strict=True))


def test_default_name_is_relative_to_the_working_folder(to, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert to.export().resolve() == (tmp_path / "export.pkl").resolve()
    assert len(load_pandas("export.pkl").procs) == 3  # noqa: F405


def _members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {m: z.read(m) for m in z.namelist()}


def _write(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for m, b in members.items():
            z.writestr(m, b)


def test_corrupted_and_foreign_files_refused(to, tmp_path):
    good = to.export(tmp_path / "to.pkl")
    data = good.read_bytes()
    (tmp_path / "trunc.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="load_pandas: .*trunc.pkl is .*corrupted"):
        load_pandas(tmp_path / "trunc.pkl")  # noqa: F405
    m = _members(good)
    m["pandas.pkl"] = m["pandas.pkl"][:-10] + b"x" * 10
    _write(tmp_path / "flip.pkl", m)
    with pytest.raises(ValueError, match=r"flip.pkl is corrupted \(pandas.pkl fails its checksum\)"):
        load_pandas(tmp_path / "flip.pkl")  # noqa: F405
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(to, f)
    with pytest.raises(ValueError, match="plain.pkl is a plain pickle .*load_pickle"):
        load_pandas(tmp_path / "plain.pkl")  # noqa: F405
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt is not an export of TabularPandas.export \(it starts with b'hell'\)"):
        load_pandas(tmp_path / "notes.txt")  # noqa: F405
    _write(tmp_path / "other.zip", {"a.txt": b"x"})
    with pytest.raises(ValueError, match="other.zip is a zip file but not an export"):
        load_pandas(tmp_path / "other.zip")  # noqa: F405
    m = _members(good)
    m["manifest.json"] = json.dumps({**json.loads(m["manifest.json"]), "format": "tiers-tabular-pandas/9"})
    _write(tmp_path / "future.pkl", m)
    with pytest.raises(ValueError, match="format 'tiers-tabular-pandas/9', this version reads"):
        load_pandas(tmp_path / "future.pkl")  # noqa: F405
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pkl is empty"):
        load_pandas(tmp_path / "empty.pkl")  # noqa: F405
    with pytest.raises(FileNotFoundError, match="load_pandas: no file at"):
        load_pandas(tmp_path / "missing.pkl")  # noqa: F405
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_pandas(tmp_path)  # noqa: F405


def test_learner_export_is_pointed_to_load_learner(to, tmp_path):
    dls = to.dataloaders(bs=32)
    learn = tabular_learner(dls, layers=[8], path=tmp_path)  # noqa: F405
    path = learn.export()
    with pytest.raises(ValueError, match="a Learner export .*load_learner"):
        load_pandas(path)  # noqa: F405
    # what that message suggests works: the loaded learner's TabularPandas exports alone
    to2 = load_pandas(load_learner(path).dls.train_ds.export(tmp_path / "from_learner.pkl"))  # noqa: F405
    pd.testing.assert_frame_equal(_processed(to2, _test_frame()).xs, _processed(to, _test_frame()).xs)


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_malicious_file_is_refused_without_running_code(to, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkl = pickle.dumps(_Evil(), protocol=4)
    buf = io.BytesIO()
    torch.save({}, buf)
    manifest = {"format": "tiers-tabular-pandas/1", "pandas.pkl": hashlib.sha256(pkl).hexdigest(),
                "tensors.pt": hashlib.sha256(buf.getvalue()).hexdigest()}
    _write(tmp_path / "evil.pkl", {"manifest.json": json.dumps(manifest), "tensors.pt": buf.getvalue(),
                                   "pandas.pkl": pkl})
    with pytest.raises(UnsafeExportError) as e:  # noqa: F405
        load_pandas(tmp_path / "evil.pkl")  # noqa: F405
    assert "system" in str(e.value) and any("load_pandas" in n for n in e.value.__notes__)
    assert not (tmp_path / "pwned").exists()


def test_failed_export_keeps_the_previous_file(to, tmp_path):
    path = to.export(tmp_path / "to.pkl")
    before = path.read_bytes()
    to.normalize.hook = lambda x: x  # a lambda cannot be pickled
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)) as e:
        to.export(path)
    assert any("TabularPandas.export" in n for n in e.value.__notes__)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["to.pkl"]
    del to.normalize.hook
    assert len(load_pandas(path).procs) == 3  # noqa: F405


class Doubler(TabularProc):  # noqa: F405  (a proc class of the user's own module)
    "Doubles the continuous columns; its state (`factor`) is learned from the training rows."

    def setups(self, to):
        self.factor = 2.0

    def encodes(self, to):
        to.items[to.cont_names] = to.items[to.cont_names] * self.factor


def test_own_proc_class_needs_allowed(tmp_path):
    to = TabularPandas(_frame(100), [FillMissing, Doubler], [], ["x1", "x2"], "r")  # noqa: F405
    path = to.export(tmp_path / "own.pkl")
    with pytest.raises(UnsafeExportError, match="Doubler") as e:  # noqa: F405
        load_pandas(path)  # noqa: F405
    assert any("allowed=" in n and "load_pandas" in n for n in e.value.__notes__)
    to2 = load_pandas(path, allowed=[Doubler])  # noqa: F405
    test = _frame(30, seed=3)
    pd.testing.assert_frame_equal(to2.new(test).process().xs, to.new(test).process().xs)
    assert load_pandas(path, trusted=True).doubler.factor == 2.0  # noqa: F405
