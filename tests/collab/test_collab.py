import doctest

import numpy as np
import pandas as pd
import pytest
import torch

import tiers.collab.core
import tiers.collab.samples
from tiers.collab import (
    CollabDataLoaders,
    EmbeddingDotBias,
    EmbeddingNN,
    collab_learner,
    make_ratings_sample,
)
from tiers.train import MSELossFlat, rmse


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    d = tmp_path_factory.mktemp("ml")
    floor = make_ratings_sample(d, n_users=60, n_items=80, n_ratings=2400, noise=0.3, seed=1)
    return d / "ratings.csv", floor


def test_dataloaders_from_csv(ratings):
    csv, _ = ratings
    df = pd.read_csv(csv)
    dls = CollabDataLoaders.from_csv(csv, bs=64, seed=0, valid_pct=0.25)
    assert len(dls.valid_ds) == int(0.25 * len(df)) and len(dls.train_ds) + len(dls.valid_ds) == len(df)
    x, y = dls.one_batch()
    assert x.shape == (64, 2) and x.dtype == torch.int64 and y.shape == (64, 1) and y.dtype == torch.float32
    assert list(dls.classes["userId"])[0] == "#na#"
    shown = dls.show_batch(max_n=4, show=False)
    assert list(shown.columns) == ["userId", "movieId", "rating"]
    assert set(shown.userId) <= set(df.userId)
    with pytest.raises(KeyError, match="'nope'"):
        CollabDataLoaders.from_df(df, user_name="nope")
    with pytest.raises(FileNotFoundError):
        CollabDataLoaders.from_csv(csv.parent / "missing.csv")


def test_same_seed_same_split(ratings):
    csv, _ = ratings
    a = CollabDataLoaders.from_csv(csv, seed=3).valid_ds.items.index
    b = CollabDataLoaders.from_csv(csv, seed=3).valid_ds.items.index
    assert a.equals(b)


def test_dot_bias_model_computes_dot_plus_biases():
    m = EmbeddingDotBias(4, 5, 6)
    x = torch.tensor([[1, 2], [4, 5]])
    want = (m.u_weight.weight[x[:, 0]] * m.i_weight.weight[x[:, 1]]).sum(1) + m.u_bias.weight[x[:, 0], 0] \
        + m.i_bias.weight[x[:, 1], 0]
    assert torch.allclose(m(x), want)
    m.y_range = (0, 5)
    assert torch.allclose(m(x), torch.sigmoid(want) * 5)
    with pytest.raises(ValueError, match="batch, 2"):
        m(torch.zeros(3, dtype=torch.long))


def test_collab_learner_learns_and_analysis_helpers(ratings):
    csv, floor = ratings
    torch.manual_seed(0)
    dls = CollabDataLoaders.from_csv(csv, bs=128, seed=0)
    learn = collab_learner(dls, n_factors=8, y_range=(0, 5.5), metrics=rmse)
    assert isinstance(learn.loss_func, MSELossFlat) and isinstance(learn.model, EmbeddingDotBias)
    learn.fit_one_cycle(8, 3e-2, wd=0.1)
    spread = float(dls.valid_ds.items["rating"].std())
    assert float(learn.final_record[-1]) < 0.75 * spread  # clearly better than predicting the mean
    df = pd.read_csv(csv)
    items = list(df.movieId.unique()[:5])
    b = learn.model.bias(items)
    vocab = dls.classes["movieId"]
    assert torch.allclose(b, learn.model.i_bias.weight[[vocab.o2i[i] for i in items], 0].detach().cpu())
    assert learn.model.weight(items).shape == (5, 8) and learn.model.bias([df.userId[0]], is_item=False).shape == (1,)
    assert learn.pca_items(items, 3).shape == (5, 3)
    with pytest.raises(KeyError, match="not in the training vocabulary"):
        learn.model.bias([-12345])
    row, pred, _ = learn.predict(df.iloc[0])
    assert 0 < float(pred) < 5.5 and row["rating"] == pytest.approx(float(pred), rel=1e-5)


def test_predict_row_shows_itself(ratings, capsys, monkeypatch):
    # AUDIT3 E3: collab's predict goes through TabularLearner.predict, so its row has fastai's `row.show()` too
    csv, _ = ratings
    df = pd.read_csv(csv)
    torch.manual_seed(0)
    learn = collab_learner(CollabDataLoaders.from_csv(csv, bs=64, seed=0), n_factors=4, y_range=(0, 5.5))
    row, pred, _ = learn.predict(df.iloc[3])
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    assert row.show() is None
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == ["userId", "movieId", "rating"]
    user, item, rating = line.split()[1:]
    assert (int(user), int(item)) == (df.userId[3], df.movieId[3]) and float(rating) == pytest.approx(float(pred), 1e-4)


def test_unknown_user_maps_to_na(ratings):
    csv, _ = ratings
    dls = CollabDataLoaders.from_csv(csv, bs=64, seed=0)
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    with pytest.warns(UserWarning, match=r"userId: 1 unknown \[-1\]"):  # said, not silent
        tdl = dls.test_dl(pd.DataFrame({"userId": [-1], "movieId": [pd.read_csv(csv).movieId[0]]}))
    x = tdl.one_batch()[0]
    assert x[0, 0].item() == 0 and x[0, 1].item() > 0
    assert learn.get_preds(dl=tdl)[0].shape[0] == 1


def test_embedding_nn_learner(ratings):
    csv, _ = ratings
    dls = CollabDataLoaders.from_csv(csv, bs=128, seed=0)
    learn = collab_learner(dls, use_nn=True, layers=[16], y_range=(0, 5.5), emb_szs={"userId": 7})
    assert isinstance(learn.model, EmbeddingNN) and learn.model.embeds[0].embedding_dim == 7
    learn.fit(1, 1e-2)
    assert learn.model.weight(list(pd.read_csv(csv).movieId.unique()[:2])).shape[0] == 2
    with pytest.raises(TypeError, match="CollabDataLoaders"):
        collab_learner(object())


def test_sample_floor_is_the_noise_left_after_clipping(tmp_path):
    floor = make_ratings_sample(tmp_path, n_users=30, n_items=40, noise=0.5, seed=2)
    df = pd.read_csv(tmp_path / "ratings.csv")
    assert 0.35 < floor < 0.5 and df.rating.between(0.5, 5).all()
    assert not df.duplicated(["userId", "movieId"]).any() and len(df) == 300
    with pytest.raises(ValueError, match="n_ratings"):
        make_ratings_sample(tmp_path, n_users=3, n_items=3, n_ratings=100)
    assert np.isfinite(floor)


@pytest.mark.parametrize("mod", [tiers.collab.core, tiers.collab.samples])
def test_docstring_examples(mod):
    assert doctest.testmod(mod).failed == 0
