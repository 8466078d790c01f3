"""A new user's mistakes with the tabular layer, and the messages that tell them what to do."""

import pandas as pd
import pytest
import torch

from tiers.tabular.core import TabularPandas
from tiers.tabular.data import TabularDataLoaders
from tiers.tabular.learner import tabular_learner
from tiers.tabular.procs import Categorify, FillMissing, Normalize

NAMES = dict(cat_names=["c1", "c2"], cont_names=["x1", "x2"], y_names="y")


@pytest.fixture
def learn(frame):
    torch.manual_seed(0)
    dls = TabularDataLoaders.from_df(frame, procs=[Categorify, FillMissing, Normalize], bs=64, **NAMES)
    return tabular_learner(dls, layers=[8])


def test_predict_takes_a_dict_as_one_row(learn, frame):
    # The review's user passed row.to_dict() and was told "got dict with 5 rows" (it had 5 columns).
    for i in (0, 1):  # row 0 has a missing value (FillMissing's `_na` column), row 1 none
        by_series, by_dict = learn.predict(frame.iloc[i]), learn.predict(frame.iloc[i].to_dict())
        assert by_dict[1] == by_series[1] and torch.equal(by_dict[2], by_series[2])
        pd.testing.assert_series_equal(by_dict[0], by_series[0])
    # Only the input columns are needed.
    inputs = {c: frame.iloc[0][c] for c in ["c1", "c2", "x1", "x2"]}
    assert torch.equal(learn.predict(inputs)[2], learn.predict(frame.iloc[0])[2])


def test_predict_dict_of_columns_is_many_rows(learn, frame):
    with pytest.raises(ValueError, match=r"predict: the dict holds several values for \['c1', 'c2', 'x1', 'x2', "
                                         r"'y'\], so it is not one row; .*test_dl"):
        learn.predict(frame.head(3).to_dict("list"))


def test_predict_wrong_inputs_name_what_they_got(learn, frame):
    with pytest.raises(ValueError, match=r"predict: got a DataFrame with 3 rows; pass one row \(df.iloc\[i\]\)"):
        learn.predict(frame.head(3))
    with pytest.raises(TypeError, match=r"predict: got a numpy ndarray of shape \(5,\), which has no column names; "
                                        r"pass pd.Series\(arr, index=\[...\]\).*\['c1', 'c2', 'x1', 'x2'\]"):
        learn.predict(frame.to_numpy()[0])
    with pytest.raises(TypeError, match=r"predict: got a list; pass one row: a pandas Series, a \{column: value\}"):
        learn.predict(list(frame.iloc[0]))


@pytest.mark.parametrize("make, where", [
    (lambda arr: TabularPandas(arr, [Categorify], **NAMES), "TabularPandas"),
    (lambda arr: TabularDataLoaders.from_df(arr, **NAMES), "TabularDataLoaders.from_df"),
])
def test_numpy_array_instead_of_a_dataframe(frame, make, where):
    with pytest.raises(TypeError, match=rf"^{where}: df is a numpy ndarray of shape \(400, 5\), not a pandas "
                                        r"DataFrame; name its columns: pd.DataFrame\(arr, columns=\[...\]\), and list "
                                        r"those names in cat_names, cont_names and y_names\.$"):
        make(frame.to_numpy())


def test_test_dl_numpy_array_suggests_the_training_columns(learn, frame):
    with pytest.raises(TypeError, match=r"^test_dl: test_items is a numpy ndarray of shape \(400, 4\), not a pandas "
                                        r"DataFrame; name its columns: pd.DataFrame\(arr, columns=\['c1', 'c2', 'x1', "
                                        r"'x2'\]\)\.$"):
        learn.dls.test_dl(frame[["c1", "c2", "x1", "x2"]].to_numpy())
    with pytest.raises(TypeError, match=r"test_items is a list, not a pandas DataFrame; convert it with pd.DataFrame"):
        learn.dls.test_dl([1, 2])
