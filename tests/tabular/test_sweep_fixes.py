"""Bad inputs found by the bad-input sweep (tests/integration/test_bad_input_sweep.py) that trained on garbage or
failed with an internal error: each is now refused naming the column, the values or the rows, and the fix."""

import numpy as np
import pandas as pd
import pytest

from tiers.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders


def _frame(n=60):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"colour": rng.choice(["red", "blue"], n), "size": rng.normal(size=n),
                       "age": rng.integers(18, 80, n).astype(float)})
    df["y"] = df["size"] * 2.0
    return df


def _dls(df, **kw):
    kw = {"procs": [Categorify, FillMissing, Normalize], "cat_names": ["colour"], "cont_names": ["size", "age"],
          "y_names": "y", "bs": 8, **kw}
    return TabularDataLoaders.from_df(df, **kw)


def test_a_target_that_is_also_an_input_is_refused():
    with pytest.raises(ValueError, match=r"target column\(s\) \['y'\] are also in cont_names"):
        _dls(_frame(), cont_names=["size", "age", "y"])
    with pytest.raises(ValueError, match=r"\['y'\] are also in cat_names"):
        _dls(_frame().assign(y=lambda d: np.where(d["size"] > 0, "a", "b")), cat_names=["colour", "y"])


def test_infinite_values_in_a_continuous_column_name_the_rows():
    df = _frame()
    df.loc[[6, 40], "size"] = [np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"'size' holds infinite values in rows \[6, 40\].*replace"):
        _dls(df)
    dls = _dls(df.replace([np.inf, -np.inf], np.nan))  # the fix the message gives works
    assert "size_na" in dls.cat_names


def test_words_in_a_continuous_column_are_named_with_their_rows():
    df = _frame().astype({"age": object})
    df.loc[7, "age"] = "forty"
    with pytest.raises(TypeError, match=r"'age'.*not numeric; values that are not numbers: \['forty'\] \(rows \[7\]\)"):
        _dls(df)


def test_a_date_column_among_continuous_ones_points_to_add_datepart():
    df = _frame().assign(when=pd.date_range("2020-01-01", periods=60, freq="D"))
    with pytest.raises(TypeError, match=r"'when' holds dates.*add_datepart\(df, 'when'\)"):
        _dls(df, cont_names=["size", "age", "when"])


def test_valid_idx_out_of_range_names_the_positions():
    with pytest.raises(IndexError, match=r"valid_idx holds row positions outside 0\.\.59.*\[500, 501\]"):
        _dls(_frame(), valid_idx=[3, 5, 500, 501])


def test_duplicate_column_names_are_named():
    df = _frame()
    df = pd.concat([df, df[["size"]]], axis=1)
    with pytest.raises(ValueError, match=r"several columns named \['size'\]"):
        _dls(df)
    _dls(df.loc[:, ~df.columns.duplicated()])  # the fix the message gives works


def test_an_integer_target_with_unseen_values_points_to_regression():
    from tiers.data import RegressionBlock

    df = _frame(200)
    df["y"] = (df["size"] * 1000 + 50_000).round().astype(np.int64)  # a price in whole euros
    with pytest.raises(ValueError, match=r"'y' holds numbers \(\d+ distinct.*y_block=RegressionBlock\(\)"):
        _dls(df)
    dls = _dls(df, y_block=RegressionBlock())  # the fix the message gives works
    assert dls.train_ds.y_kind == "regression"
