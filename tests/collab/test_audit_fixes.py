"""Collab findings of the fastai-user audits (AUDIT.md B4, AUDIT2.md D3, D4, D5, and S2's dtype change for ids):
each used to train or predict on the wrong thing without a word."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.collab import CollabDataLoaders, collab_learner


def _ratings(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": rng.integers(1, 21, n), "movie": rng.integers(100, 130, n),
                         "rating": rng.integers(1, 6, n).astype(float)})


@pytest.mark.parametrize("use_nn", [False, True])
def test_y_range_that_does_not_cover_the_ratings_warns_naming_both(use_nn):
    df = _ratings()
    df["rating"] = df.rating * 2  # 2..10, the book's y_range copied from a 0-5 dataset
    dls = CollabDataLoaders.from_df(df, bs=32, seed=0)
    with pytest.warns(UserWarning, match=r"collab_learner: the training targets span 2 \.\. 10 but y_range is "
                                         r"\(0, 5\.5\).*y_range=\(0, 10\.8\)"):
        learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5), use_nn=use_nn)
    learn.fit(1, 5e-3)  # trains (the user was told), and indeed cannot reach the targets above 5.5
    preds, _ = learn.get_preds()
    assert float(preds.max()) < 5.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        collab_learner(dls, n_factors=4, y_range=(0, 10.5), use_nn=use_nn)
        collab_learner(CollabDataLoaders.from_df(_ratings(), bs=32, seed=0), n_factors=4, y_range=(0, 5.5))


def test_ids_read_as_text_at_inference_map_to_the_trained_embeddings():
    df = _ratings()
    dls = CollabDataLoaders.from_df(df, bs=32, seed=0)
    torch.manual_seed(0)
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    learn.fit(1, 5e-3)
    test = df.iloc[:10][["user", "movie"]]
    as_text = test.astype(str)  # a CSV read with dtype=str, a JSON API
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matched, so not '#na#' and nothing to say
        p_txt, _ = learn.get_preds(dl=dls.test_dl(as_text))
    p_int, _ = learn.get_preds(dl=dls.test_dl(test))
    assert torch.allclose(p_txt, p_int)
    with pytest.warns(UserWarning, match=r"user: 1 unknown \['abc'\].*close to an average user/item|"
                                         r"close to an average user/item.*user: 1 unknown \['abc'\]"):
        dls.test_dl(as_text.assign(user=["abc"] + list(as_text.user[1:])))


def test_users_only_in_the_validation_rows_are_said_at_build():
    df = _ratings()
    df = pd.concat([df, pd.DataFrame({"user": [777], "movie": [100], "rating": [3.0]})], ignore_index=True)
    n_valid = int(0.2 * len(df))  # from_df's split: the first valid_pct of a permutation drawn with `seed`
    seed = next(s for s in range(50) if len(df) - 1 in np.random.default_rng(s).permutation(len(df))[:n_valid])
    with pytest.warns(UserWarning, match=r"user: 1 unknown \[777\]"):
        dls = CollabDataLoaders.from_df(df, bs=32, seed=seed)
    assert 777 not in list(dls.classes["user"])


def test_columns_out_of_the_user_item_rating_order_are_refused():
    df = _ratings()[["movie", "rating", "user"]]  # by position: users = movies, items = ratings, ratings = users
    with pytest.raises(ValueError, match=r"item_name='rating'.*user_name=\.\.\., item_name=\.\.\., rating_name="):
        CollabDataLoaders.from_df(df)
    dls = CollabDataLoaders.from_df(df, user_name="user", item_name="movie", rating_name="rating", bs=32, seed=0)
    assert set(dls.classes["user"][1:]) <= set(range(1, 21))
    renamed = _ratings().rename(columns={"user": "userId", "rating": "rating"})[["userId", "rating", "movie"]]
    with pytest.raises(ValueError, match=r"item_name='rating'"):
        CollabDataLoaders.from_df(renamed)
