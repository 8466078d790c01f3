"""AUDIT3 E21h: a CSV with another delimiter (';', tab) read as one column named 'c1;c2;x1;x2;y': the KeyError says
so and how to read it (`pd.read_csv(path, sep=';')` and from_df), and `TabularDataLoaders.from_csv(path, sep=';')`
reads it (it was handed to the loaders, which refused it). Real files, real training."""

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.tabular.all import (
    Categorify,
    FillMissing,
    Normalize,
    TabularDataLoaders,
    accuracy,
    tabular_learner,
)


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    "Two categorical and two continuous columns (one with missing values) and a learnable class target."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"c1": rng.choice(list("abcde"), n), "c2": rng.choice(["u", "v"], n),
                       "x1": rng.normal(size=n), "x2": rng.normal(2.0, 3.0, size=n)})
    logit = np.where(df.c1.isin(["a", "b"]), 1.5, -1.5) + 1.5 * df.x1.to_numpy()
    df["y"] = np.where(logit > 0, "hi", "lo")
    df.loc[rng.random(n) < 0.1, "x1"] = np.nan
    return df


NAMES = dict(cat_names=["c1", "c2"], cont_names=["x1", "x2"], y_names="y")
PROCS = [Categorify, FillMissing, Normalize]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_wrong_delimiter_is_named_with_the_fix(tmp_path, sep):
    csv = tmp_path / "data.csv"
    make_frame(60).to_csv(csv, sep=sep, index=False)
    with pytest.raises(KeyError) as e:
        TabularDataLoaders.from_csv(csv, procs=PROCS, **NAMES)
    msg = e.value.args[0]
    assert repr("c1;c2;x1;x2;y".replace(";", sep)) in msg  # the one column it read
    assert f"pd.read_csv(path, sep={sep!r})" in msg and "from_df" in msg
    assert f"sep={sep!r} to TabularDataLoaders.from_csv" in msg


def test_single_column_frame_gets_the_hint_whatever_is_missing():
    df = pd.DataFrame({"a;b;y": ["1;x;0", "2;y;1"]})
    with pytest.raises(KeyError, match=r"holds ';'.*sep=';'"):
        TabularDataLoaders.from_df(df, cat_names=["zz"], y_names="y")


def test_no_hint_for_a_plain_misspelling():
    df = pd.DataFrame({"x;y ratio": [1.0, 2.0, 3.0, 4.0], "b": list("abab"), "t": [0, 1, 0, 1]})
    with pytest.raises(KeyError) as e:
        TabularDataLoaders.from_df(df, cat_names=["bb"], cont_names=["x;y ratio"], y_names="t")
    assert "['bb'] not found" in e.value.args[0] and "delimiter" not in e.value.args[0]


def test_from_csv_takes_sep_and_trains(tmp_path):
    from tiers.tensors import set_seed

    set_seed(0)  # the split, the shuffling and the weights: the accuracy below does not depend on earlier tests
    df = make_frame(400)
    csv = tmp_path / "data.csv"
    df.to_csv(csv, sep=";", index=False)
    dls = TabularDataLoaders.from_csv(csv, sep=";", procs=PROCS, bs=64, **NAMES)
    ref = TabularDataLoaders.from_df(pd.read_csv(csv, sep=";", skipinitialspace=True), path=tmp_path, procs=PROCS,
                                     bs=64, **NAMES)
    assert list(dls.train_ds.items.columns) == list(ref.train_ds.items.columns)
    pd.testing.assert_frame_equal(dls.train_ds.xs, ref.train_ds.xs)
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=[16], metrics=accuracy)
    learn.fit_one_cycle(6, 3e-2)
    assert learn.recorder.values[-1][-1] > 0.8  # the target is learnable from these columns
    # the default (no sep) still reads a comma file
    df.to_csv(tmp_path / "comma.csv", index=False)
    assert list(TabularDataLoaders.from_csv(tmp_path / "comma.csv", procs=PROCS, **NAMES).train_ds.y_names) == ["y"]
