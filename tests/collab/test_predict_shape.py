"""`predict` of a regression learner returns the model's row, a 1-d tensor (`tensor([2.83])`, as fastai shows it),
for collab's dot-product model as for a tabular or `use_nn` model; before, the dot-product model gave 0-d tensors
(audit 3, E21f). The row still shows itself."""

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.collab import CollabDataLoaders, collab_learner
from tiers.tabular import Categorify, Normalize, TabularDataLoaders, tabular_learner


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({"user": rng.integers(1, 11, n), "movie": rng.integers(100, 115, n),
                         "rating": rng.uniform(1, 5, n)})


@pytest.mark.parametrize("use_nn", [False, True])
def test_collab_predict_returns_the_model_row(ratings, use_nn, capsys):
    torch.manual_seed(0)
    learn = collab_learner(CollabDataLoaders.from_df(ratings, bs=32, seed=0), n_factors=4, use_nn=use_nn,
                           layers=[8], y_range=(0, 5.5))
    row, dec, pred = learn.predict(ratings.iloc[0])
    assert pred.shape == (1,) and dec.shape == (1,)  # before: torch.Size([]) for the dot-product model
    assert torch.equal(dec, pred) and 0 < float(pred) < 5.5 and pred[0] == float(pred)
    assert row["rating"] == pytest.approx(float(pred), rel=1e-5)
    preds = learn.get_preds(dl=learn.dls.test_dl(ratings.iloc[:1]))[0]
    assert torch.allclose(preds.reshape(-1), pred)
    capsys.readouterr()
    row.show()
    assert capsys.readouterr().out.split()[:3] == ["user", "movie", "rating"]


def test_tabular_predict_shapes_are_unchanged(ratings):
    df = ratings.assign(kind=np.where(ratings.movie % 2 == 0, "even", "odd"), score=ratings.rating * 2)
    reg = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=["kind"], cont_names=["rating"],
                                     y_names="score", bs=32)
    _, dec, pred = tabular_learner(reg, layers=[8]).predict(df.iloc[0])
    assert pred.shape == (1,) and dec.shape == (1,)
    clf = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cont_names=["rating"], y_names="kind", bs=32)
    _, cls, probs = tabular_learner(clf, layers=[8]).predict(df.iloc[0])
    assert cls.shape == () and probs.shape == (2,)  # a class index stays 0-d, as in fastai
