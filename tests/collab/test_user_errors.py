"""A new user's mistakes with the collab layer, and the messages that tell them what to do."""

import numpy as np
import pandas as pd
import pytest

from tiers.collab.core import CollabDataLoaders


@pytest.fixture
def ratings():
    return pd.DataFrame({"u": [1, 2, 3, 1] * 10, "i": [5, 6, 5, 7] * 10, "r": [4.0, 3.0, 5.0, 1.0] * 10})


def test_numpy_ratings_suggest_a_dataframe(ratings):
    with pytest.raises(TypeError, match=r"^CollabDataLoaders.from_df: ratings is a numpy ndarray of shape \(40, 3\), "
                                        r"not a pandas DataFrame; name its columns: "
                                        r"pd.DataFrame\(arr, columns=\['user', 'item', 'rating'\]\)\.$"):
        CollabDataLoaders.from_df(ratings.to_numpy())
    with pytest.raises(TypeError, match=r"columns=\['user', 'item', 'rating', ...\]\)"):  # a timestamp column too
        CollabDataLoaders.from_df(np.zeros((4, 4)))
    # The suggestion works.
    dls = CollabDataLoaders.from_df(pd.DataFrame(ratings.to_numpy(), columns=["user", "item", "rating"]), bs=8, seed=0)
    assert list(dls.classes) == ["user", "item"]


def test_too_few_columns_and_a_mistyped_name(ratings):
    with pytest.raises(ValueError, match=r"ratings has 2 column\(s\) \['u', 'i'\]; it needs at least 3: user, item "
                                         "and rating"):
        CollabDataLoaders.from_df(ratings[["u", "i"]])
    with pytest.raises(TypeError, match="ratings is a list, not a pandas DataFrame; convert it with pd.DataFrame"):
        CollabDataLoaders.from_df(ratings.values.tolist())
    with pytest.raises(KeyError, match=r"^CollabDataLoaders.from_df: user_name='user' is not a column of ratings "
                                       r"\(columns: \['u', 'i', 'r'\]\); pass one of them\.$") as e:
        CollabDataLoaders.from_df(ratings, user_name="user")
    assert "\\'" not in str(e.value)
