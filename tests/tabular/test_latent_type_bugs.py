"""Bugs the type checker found in the tabular layer (issue 19), each pinned by a test that failed before the fix."""

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.tabular.core import Tabular, TabularPandas
from tiers.tabular.data import TabDataLoader, TabularDataLoaders
from tiers.tabular.procs import Categorify, FillMissing, Normalize
from tiers.tensors.semantic import TensorCategory

NAMES = dict(cat_names=["c1", "c2"], cont_names=["x1", "x2"], y_names="y")


def test_bs_none_is_refused_when_the_loader_is_made(frame):
    # bs=None means "no batching" to a DataLoader; a TabDataLoader indexes rows by batch, so it used to be accepted
    # and fail at the first batch inside torch (`split()` of None), far from the cause.
    to = TabularPandas(frame, [Categorify, FillMissing, Normalize], **NAMES)
    with pytest.raises(ValueError, match=r"TabDataLoader: bs=None is not supported.*pass bs=<rows per batch>"):
        TabDataLoader(to, bs=None)
    with pytest.raises(ValueError, match=r"TabularPandas.dataloaders: bs=None is not supported"):
        to.dataloaders(bs=None)  # used to fail on `len(to) > None` with an unrelated TypeError
    with pytest.raises(ValueError, match=r"bs=None is not supported"):
        TabularDataLoaders.from_df(frame, procs=[Categorify], bs=None, **NAMES)
    dl = TabDataLoader(to, bs=32)
    with pytest.raises(ValueError, match=r"bs=None is not supported"):
        dl.new(bs=None)


def test_normalize_setup_on_a_table_without_training_rows_says_what_to_pass(frame):
    class Plain(Tabular):  # a Tabular that is not a TabularPandas: no splits, no training rows
        def __init__(self, df):
            self.items, self.cat_names, self.cont_names, self.y_names = df, [], ["x1", "x2"], []

    with pytest.raises(TypeError, match=r"Normalize.setup: got a Plain, not a TabularPandas.*TabularPandas\(df, "):
        Normalize().setup(Plain(frame.copy()))
    # A TabularPandas and its training subset (a view that forwards to it) still learn from the training rows.
    to = TabularPandas(frame, [FillMissing], **NAMES, splits=(list(range(300)), list(range(300, 400))))
    a, b = Normalize(), Normalize()
    a.setup(to)
    b.setup(to.train)
    train_x2 = frame["x2"].iloc[:300].to_numpy(np.float64)
    assert a.means == b.means and a.means["x2"] == pytest.approx(train_x2.mean())


def test_show_results_takes_ctxs_where_every_loader_does(frame):
    # DataLoader.show_results(b, out, max_n, ctxs, show): the tabular override had no `ctxs`, so a positional call
    # read `ctxs` as `show` (and one more argument was a TypeError).
    dls = TabularDataLoaders.from_df(frame, procs=[Categorify, FillMissing, Normalize], bs=16, **NAMES)
    dl = dls.valid
    b = dl.one_batch()
    out = TensorCategory(torch.zeros(len(b[0]), dtype=torch.long))
    df = dl.show_results(b, out, 4, None, False)
    assert isinstance(df, pd.DataFrame) and len(df) == 4
    assert (df["y_pred"] == dls.train_ds.vocab[0]).all()
    assert dl.show_results(b, out, max_n=3, show=False).equals(df.iloc[:3])
