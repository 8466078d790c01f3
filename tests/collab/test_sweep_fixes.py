"""Found by the bad-input sweep (tests/integration/test_bad_input_sweep.py): ratings whose user or item id is missing
trained the shared untrained '#na#' embedding on unrelated ratings without a word."""

import numpy as np
import pandas as pd
import pytest

from tiers.collab import CollabDataLoaders


def test_missing_user_or_item_ids_are_refused_with_their_rows():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(1, 16, 100).astype(float), "movie": rng.integers(100, 120, 100),
                       "rating": rng.integers(1, 6, 100).astype(float)})
    bad = df.copy()
    bad.loc[[2, 30], "user"] = np.nan
    with pytest.raises(ValueError, match=r"user column 'user' is missing \(NaN/None\) in 2 rows \[2, 30\].*dropna"):
        CollabDataLoaders.from_df(bad, seed=0)
    bad = df.astype({"movie": object})
    bad.loc[9, "movie"] = None
    with pytest.raises(ValueError, match=r"item column 'movie' .* \[9\]"):
        CollabDataLoaders.from_df(bad, seed=0)
    assert len(CollabDataLoaders.from_df(df, seed=0, bs=16).train_ds) == 80
