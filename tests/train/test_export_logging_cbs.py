"""AUDIT C11: exporting a learner that keeps CSVLogger / ShowGraphCallback in its cbs after a fit works and loads with
the safe `load_learner`; a callback that still cannot be pickled is named in the error with the fix."""

import threading

import matplotlib
import pytest
import torch
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter
from tiers.train import Callback, CSVLogger, Learner, ShowGraphCallback, load_learner

matplotlib.use("Agg")
torch.set_num_threads(1)


def _cb(learn, cls):
    return next(cb for cb in learn.cbs if isinstance(cb, cls))


def _learner(tmp_path, cbs):
    g = torch.Generator().manual_seed(0)
    items = [[x, "pos" if x[0] > 0 else "neg"] for x in torch.randn(60, 3, generator=g)]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=IndexSplitter(range(50, 60))(items))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    return Learner(dsets.dataloaders(bs=8), model, path=tmp_path, cbs=cbs), items


def test_export_after_fit_with_csvlogger_and_showgraph(tmp_path):
    learn, items = _learner(tmp_path, [CSVLogger(), ShowGraphCallback()])
    learn.fit(2, 1e-2)
    assert _cb(learn, ShowGraphCallback).fig is not None  # the fit drew its figure
    assert len(_cb(learn, CSVLogger).read_log()) == 2
    expected = learn.predict(items[3])
    fname = learn.export()  # raised "cannot pickle '_csv.writer' object" before the fix

    loaded = load_learner(fname)  # safe: the figure was refused before the fix
    got = loaded.predict(items[3])
    assert got[0] == expected[0]
    assert torch.allclose(got[2], expected[2])
    names = {type(cb).__name__ for cb in loaded.cbs}
    assert {"CSVLogger", "ShowGraphCallback"} <= names
    # the callbacks still work after the load: a new fit logs and draws again
    loaded2, _ = _learner(tmp_path / "again", [])
    moved = [_cb(loaded, CSVLogger), _cb(loaded, ShowGraphCallback)]
    loaded.remove_cbs(moved)
    loaded2.add_cbs(moved)
    loaded2.fit(1, 1e-2)
    assert len(_cb(loaded2, CSVLogger).read_log()) == 1 and _cb(loaded2, ShowGraphCallback).fig is not None
    # the learner that exported still has its figure: export did not touch it
    assert _cb(learn, ShowGraphCallback).fig is not None


class LockHolder(Callback):
    """A callback with state pickle cannot store (a lock)."""

    def __init__(self):
        self.lock = threading.Lock()


def test_unpicklable_callback_is_named_with_the_fix(tmp_path):
    learn, _ = _learner(tmp_path, [LockHolder()])
    with pytest.raises(TypeError) as ei:
        learn.export()
    notes = "\n".join(getattr(ei.value, "__notes__", []))
    assert "LockHolder" in notes and "learn.remove_cb(LockHolder)" in notes and "fit(" in notes
    assert not list((tmp_path / "models").glob("export*")) if (tmp_path / "models").exists() else True
