"""Messy data that would otherwise train on garbage: a NaN regression target, a word in a numeric column at
inference, a CSV in another encoding. Each is refused with the column, the rows and the fix."""

import numpy as np
import pandas as pd
import pytest

from tiers.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner


def _reg_frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"c": rng.choice(list("abc"), n), "x": rng.normal(size=n)})
    df["price"] = 3 * df.x + (df.c == "a") + rng.normal(scale=0.1, size=n)
    return df


def test_nan_regression_target_is_refused_with_its_rows():
    df = _reg_frame()
    df.loc[[7, 150], "price"] = np.nan
    with pytest.raises(ValueError) as e:
        TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names="c", cont_names="x",
                                   y_names="price", valid_idx=list(range(160, 200)), bs=16)
    msg = str(e.value)
    assert "'price'" in msg and "[7, 150]" in msg and "NaN" in msg and "dropna" in msg
    df.loc[9, "price"] = np.inf
    df = df.dropna()
    with pytest.raises(ValueError, match=r"'price'.*infinite.*\[9\]"):
        TabularDataLoaders.from_df(df, procs=[Normalize], cont_names="x", y_names="price")


def test_missing_class_label_names_its_rows():
    df = _reg_frame()
    df["y"] = np.where(df.x > 0, "hi", "lo").astype(object)
    df.loc[3, "y"] = None
    with pytest.raises(ValueError, match=r"'y' has 1 missing values \(rows \[3\]\)"):
        TabularDataLoaders.from_df(df, procs=[Normalize], cont_names="x", y_names="y")


def test_a_word_in_a_numeric_column_at_inference_names_the_column():
    df = _reg_frame()
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names="c", cont_names="x",
                                     y_names="price", valid_idx=list(range(160, 200)), bs=16)
    learn = tabular_learner(dls, layers=[8])
    with pytest.raises(ValueError) as e:
        learn.predict({"c": "a", "x": "twelve"})
    assert "'x'" in str(e.value) and "twelve" in str(e.value) and "not numbers" in str(e.value)
    test = df.iloc[:5].drop(columns="price").astype({"x": object})
    test.loc[test.index[2], "x"] = "n/a?"
    with pytest.raises(ValueError, match=r"'x' holds values that are not numbers: \['n/a\?'\] \(rows \[2\]\)"):
        dls.test_dl(test)
    # numbers written as text (a CSV read as strings) are read as numbers
    test.loc[test.index[2], "x"] = "0.5"
    dl = dls.test_dl(test.astype({"x": str}))
    assert dl.dataset["x"].dtype == np.float32 and len(dl.dataset) == 5
    row, _, pred = learn.predict({"c": "a", "x": "0.5"})
    assert np.isfinite(float(pred[0]))


def test_tabular_from_csv_encoding_is_honoured(tmp_path):
    df = pd.DataFrame({"ville": ["Besançon", "Orléans", "Nîmes", "Besançon"] * 10, "x": np.arange(40.0),
                       "y": ["é", "è"] * 20})
    fn = tmp_path / "latin.csv"
    df.to_csv(fn, index=False, encoding="latin-1")
    with pytest.raises(ValueError) as e:
        TabularDataLoaders.from_csv(fn, cat_names="ville", cont_names="x", y_names="y")
    assert str(fn) in str(e.value) and "encoding=" in str(e.value)
    dls = TabularDataLoaders.from_csv(fn, encoding="latin-1", procs=[Categorify], cat_names="ville",
                                      cont_names="x", y_names="y", bs=8)
    assert list(dls.classes["ville"]) == ["#na#", "Besançon", "Nîmes", "Orléans"]
    assert list(dls.vocab) == ["è", "é"]
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        TabularDataLoaders.from_csv(tmp_path / "nope.csv")
