"""Collab data that would silently mislead: unknown users or items at prediction time, ratings that are not
numbers, a CSV in another encoding."""

import warnings

import numpy as np
import pandas as pd
import pytest

from tiers.collab import CollabDataLoaders, collab_learner


@pytest.fixture
def ratings():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({"user": rng.integers(1, 21, n), "movie": rng.integers(100, 130, n),
                         "rating": rng.integers(1, 6, n).astype(float)})


def test_unknown_ids_warn_once_per_call_naming_them(ratings):
    dls = CollabDataLoaders.from_df(ratings, bs=32, seed=0)
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    known_u, known_i = int(ratings.user.iloc[0]), int(ratings.movie.iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known ids: no warning at all
        learn.predict({"user": known_u, "movie": known_i})
    with pytest.warns(UserWarning) as rec:
        learn.predict({"user": 999, "movie": known_i})
    msgs = [str(w.message) for w in rec if "#na#" in str(w.message)]
    assert len(msgs) == 1 and "user" in msgs[0] and "999" in msgs[0] and "movie" not in msgs[0]
    test = pd.DataFrame({"user": [known_u, 998, 999, 999], "movie": [known_i, 7, known_i, 8]})
    with pytest.warns(UserWarning) as rec:
        preds, _ = learn.get_preds(dl=dls.test_dl(test))
    msgs = [str(w.message) for w in rec if "#na#" in str(w.message)]
    assert len(msgs) == 1 and "[998, 999]" in msgs[0] and "[7, 8]" in msgs[0]
    assert preds.shape[0] == 4 and np.isfinite(preds.numpy()).all()


def test_ratings_that_do_not_parse_name_the_column(ratings):
    bad = ratings.astype({"rating": object})
    bad.loc[[3, 17], "rating"] = ["four", "5 stars"]
    with pytest.raises(ValueError) as e:
        CollabDataLoaders.from_df(bad)
    msg = str(e.value)
    assert "'rating'" in msg and "'four'" in msg and "[3, 17]" in msg
    as_text = ratings.astype({"rating": str})  # numbers written as text are fine
    assert CollabDataLoaders.from_df(as_text, seed=0).train_ds["rating"].dtype == np.float32
    missing = ratings.copy()
    missing.loc[5, "rating"] = np.nan
    with pytest.raises(ValueError, match=r"'rating'.*\[5\]"):
        CollabDataLoaders.from_df(missing)


def test_collab_from_csv_encoding(tmp_path):
    df = pd.DataFrame({"user": ["José", "Zoë", "Amélie", "José"] * 10, "title": ["Amélie", "Léon"] * 20,
                       "rating": [4.0, 3.0, 5.0, 2.0] * 10})
    fn = tmp_path / "ratings.csv"
    df.to_csv(fn, index=False, encoding="latin-1")
    with pytest.raises(ValueError) as e:
        CollabDataLoaders.from_csv(fn)
    assert str(fn) in str(e.value) and "encoding=" in str(e.value)
    dls = CollabDataLoaders.from_csv(fn, encoding="latin-1", bs=8, seed=0)
    assert list(dls.classes["user"]) == ["#na#", "Amélie", "José", "Zoë"]


def test_collab_dataset_type_and_nn_layers_default(ratings):
    from tiers.collab import TabularCollab

    dls = CollabDataLoaders.from_df(ratings, bs=32, seed=0)
    assert isinstance(dls.train_ds, TabularCollab) and dls.train_ds.with_cont is False
    learn = collab_learner(dls, n_factors=12, use_nn=True, y_range=(0, 5.5))
    hidden = [m.out_features for m in learn.model.modules() if type(m).__name__ == "Linear"]
    assert hidden == [12, 1]  # fastai: layers=[n_factors]
