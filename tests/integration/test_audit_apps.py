"""Audit: the tabular, collab and text workflows of fastai's tutorials, ported by changing the import line, on small
frames built here (messy where real data is: NaN in a feature, nullable and string dtypes, unknown ids at inference)."""

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.collab.all import CollabDataLoaders, collab_learner
from tiers.tabular.all import (
    Categorify,
    FillMissing,
    Normalize,
    RegressionBlock,
    TabularDataLoaders,
    TabularPandas,
    load_learner,
    tabular_learner,
)
from tiers.text.all import AWD_LSTM, TextDataLoaders, text_classifier_learner


# ------------------------------------------------------------------------------------------------------------- tabular
@pytest.fixture(scope="module")
def adult():
    rng = np.random.default_rng(0)
    n = 240
    df = pd.DataFrame({"age": rng.integers(18, 80, n).astype(float), "fnlwgt": rng.normal(1e5, 2e4, n),
                       "workclass": rng.choice(["Private", "Gov", "Self"], n),
                       "education": rng.choice(["HS", "BSc", "MSc", "PhD"], n)})
    df["salary"] = np.where((df.age > 40) & (df.education != "HS"), ">=50k", "<50k")
    df.loc[::17, "age"] = np.nan
    return df


def _tab_dls(df, path, **kw):
    kw = {"procs": [Categorify, FillMissing, Normalize], "cat_names": ["workclass", "education"],
          "cont_names": ["age", "fnlwgt"], "y_names": "salary", "valid_idx": list(range(200, 240)), "bs": 32, **kw}
    return TabularDataLoaders.from_df(df, path, **kw)


def test_tabular_fill_missing_adds_an_na_column_and_predict_uses_the_training_median(adult, tmp_path):
    dls = _tab_dls(adult, tmp_path)
    assert list(dls.cat_names) == ["workclass", "education", "age_na"]
    assert list(dls.vocab) == ["<50k", ">=50k"]
    cats, conts, ys = dls.one_batch()
    assert cats.shape == (32, 3) and conts.shape == (32, 2) and ys.shape[0] == 32
    learn = tabular_learner(dls, layers=[20, 10])
    learn.fit_one_cycle(2, 1e-2)
    row, clas, probs = learn.predict(adult.iloc[17])  # age is NaN in this row
    median = float(adult.age.iloc[:200].median())
    assert row["age"] == pytest.approx(median) and bool(row["age_na"]) is True  # a Series, as fastai
    assert row["salary"] == dls.vocab[int(clas)] and probs.shape == (2,)
    # a test frame without the target column, and the exported learner, predict the same
    test = adult.drop(columns="salary").iloc[:10]
    p1 = learn.get_preds(dl=learn.dls.test_dl(test))[0]
    restored = load_learner(learn.export())
    p2 = restored.get_preds(dl=restored.dls.test_dl(test))[0]
    assert p1.shape == (10, 2) and torch.allclose(p1, p2, atol=1e-5)


def test_tabular_target_kind_follows_the_dtype(adult, tmp_path):
    df = adult.assign(y=adult.fnlwgt / 1e5, yi=(adult.education == "PhD").astype(int))
    reg = _tab_dls(df, tmp_path, y_names="y", y_block=RegressionBlock())
    assert type(tabular_learner(reg).loss_func).__name__ == "MSELossFlat"
    assert reg.one_batch()[2].dtype == torch.float32
    inferred = _tab_dls(df, tmp_path, y_names="y")
    assert type(tabular_learner(inferred).loss_func).__name__ == "MSELossFlat"
    ints = _tab_dls(df, tmp_path, y_names="yi")  # fastai 2.8.12: an int target is classes too
    assert type(tabular_learner(ints).loss_func).__name__ == "CrossEntropyLossFlat"
    two = _tab_dls(df.assign(y2=df.y * 2), tmp_path, y_names=["y", "y2"], y_block=RegressionBlock())
    assert two.one_batch()[2].shape == (32, 2)


def test_tabular_without_valid_idx_keeps_a_random_fifth(adult, tmp_path):
    dls = _tab_dls(adult, tmp_path, valid_idx=None)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (192, 48)


def test_tabular_nullable_int_and_string_dtypes_train(tmp_path):
    rng = np.random.default_rng(1)
    n = 100
    df = pd.DataFrame({"a": rng.normal(size=n), "b": pd.array(rng.integers(0, 5, n), dtype="Int64"),
                       "c": pd.array(rng.choice(["x", "y", None], n), dtype="string"), "y": rng.choice(["p", "q"], n)})
    df.loc[::7, "b"] = pd.NA
    dls = TabularDataLoaders.from_df(df, tmp_path, procs=[Categorify, FillMissing, Normalize], cat_names=["c"],
                                     cont_names=["a", "b"], y_names="y", bs=16)
    assert "b_na" in dls.cat_names
    learn = tabular_learner(dls)
    learn.fit(1, 1e-2)
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_tabular_pandas_accessors_and_ordered_categories(adult):
    df = adult.assign(size=pd.Categorical(np.resize(["lo", "mid", "hi"], len(adult)),
                                          categories=["lo", "mid", "hi", "unused"], ordered=True))
    to = TabularPandas(df, procs=[Categorify, FillMissing, Normalize], cat_names=["workclass", "size"],
                       cont_names=["age", "fnlwgt"], y_names="salary", splits=(list(range(200)), list(range(200, 240))))
    assert list(to.classes["size"]) == ["#na#", "lo", "mid", "hi", "unused"]  # declared levels, as fastai 2.8.12
    assert to.train.xs.shape == (200, 5) and to.valid.ys.shape == (40, 1)
    assert set(to.normalize.means) == {"age", "fnlwgt"}
    assert to.fill_missing.na_dict["age"] == pytest.approx(float(adult.age.iloc[:200].median()))


# -------------------------------------------------------------------------------------------------------------- collab
@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(0)
    u, i = rng.normal(size=(30, 2)), rng.normal(size=(20, 2))
    rows = [(a, b, float(np.clip(3 + u[a] @ i[b], 0.5, 5))) for a in range(30) for b in range(20) if rng.random() < 0.6]
    df = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    df["title"] = [f"m{b}" for b in df.movieId]
    return df


def test_collab_book_idioms(ratings, tmp_path):
    dls = CollabDataLoaders.from_df(ratings, item_name="title", bs=32, seed=0)
    assert dls.classes["title"][0] == "#na#" and len(dls.classes["userId"]) == 31
    learn = collab_learner(dls, n_factors=8, y_range=(0, 5.5))
    learn.path = tmp_path
    learn.fit_one_cycle(2, 5e-3, wd=0.1)
    assert type(learn.loss_func).__name__ == "MSELossFlat"
    worst = [dls.classes["title"][i] for i in learn.model.i_bias.weight.squeeze().argsort()[:3]]
    assert all(t.startswith("m") or t == "#na#" for t in worst)
    assert learn.model.bias(["m1", "m2"], is_item=True).shape == (2,)
    assert learn.model.weight(["m1", "m2"], is_item=True).shape == (2, 8)
    preds = learn.get_preds(dl=dls.test_dl(ratings.iloc[:5]))[0]
    assert preds.shape == (5,) and bool(((preds >= 0) & (preds <= 5.5)).all())


def test_collab_unknown_ids_at_inference_are_warned_about(ratings):
    dls = CollabDataLoaders.from_df(ratings, bs=32)
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    test = ratings.iloc[:5].assign(userId=[9999, 9998, 0, 1, 2])  # two users never seen in training
    with pytest.warns(UserWarning, match="#na#"):
        learn.get_preds(dl=dls.test_dl(test))


def test_collab_int_ratings_are_regression(ratings):
    dls = CollabDataLoaders.from_df(ratings.assign(rating=ratings.rating.round().astype(int)), bs=32)
    assert dls.one_batch()[1].dtype == torch.float32
    assert type(collab_learner(dls, n_factors=4, y_range=(0, 5.5)).loss_func).__name__ == "MSELossFlat"


# ---------------------------------------------------------------------------------------------------------------- text
@pytest.fixture(scope="module")
def reviews():
    rng = np.random.default_rng(0)
    pos = ["great movie loved it", "wonderful acting and a fine plot", "brilliant and moving"]
    neg = ["terrible movie hated it", "awful acting and a boring plot", "dull and painful"]
    labels = ["pos" if i % 2 else "neg" for i in range(60)]
    texts = [" ".join(rng.choice(pos if lbl == "pos" else neg, 2)) for lbl in labels]
    return pd.DataFrame({"text": texts, "label": labels, "is_valid": [i >= 48 for i in range(60)]})


def test_text_classifier_from_df(reviews, tmp_path):
    dls = TextDataLoaders.from_df(reviews, tmp_path, text_col="text", label_col="label", valid_col="is_valid", bs=8,
                                  seq_len=16)
    vocab, classes = dls.vocab
    assert vocab[:4] == ["xxunk", "xxpad", "xxbos", "xxeos"] and list(classes) == ["neg", "pos"]
    assert len(vocab) % 8 == 0
    x, y = dls.one_batch()
    assert x.shape[0] == 8 and y.shape == (8,)
    learn = text_classifier_learner(dls, AWD_LSTM, pretrained=False, drop_mult=0.5)
    learn.fit_one_cycle(1, 1e-2)
    label, idx, probs = learn.predict("I loved this great movie")
    assert label in ("neg", "pos") and classes[int(idx)] == label and probs.shape == (2,)
    assert learn.get_preds(dl=dls.test_dl(["great", "awful film"]))[0].shape == (2, 2)


def test_text_language_model_targets_are_the_inputs_shifted_by_one(reviews, tmp_path):
    dls = TextDataLoaders.from_df(reviews, tmp_path, text_col="text", is_lm=True, valid_pct=0.2, bs=4, seq_len=12)
    x, y = dls.one_batch()
    assert x.shape == y.shape == (4, 12)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_text_predictions_come_back_in_dataset_order(tmp_path):
    """AUDIT S1: the validation loader sorts texts by length; get_preds, test_dl predictions and predict must still
    line up with the rows of the frame (a submission file joins them by position)."""
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "actor", "scene", "long", "short"]
    texts = [" ".join(rng.choice(words, int(rng.integers(2, 30)))) for _ in range(40)]
    labels = ["pos" if "good" in t.split()[:3] else "neg" for t in texts]
    df = pd.DataFrame({"text": texts, "label": labels, "is_valid": [i >= 28 for i in range(40)]})
    dls = TextDataLoaders.from_df(df, tmp_path, text_col="text", label_col="label", valid_col="is_valid", bs=4,
                                  seq_len=8)
    learn = text_classifier_learner(dls, AWD_LSTM, pretrained=False,
                                    config=dict(emb_sz=16, n_hid=16, n_layers=1))
    inp, probs, targs = learn.get_preds(with_input=True)
    assert targs.tolist() == [list(dls.vocab[1]).index(lbl) for lbl in df.label[28:]]
    vocab = dls.vocab[0]
    # batches differ in length, so inputs may come back as a list (of batches or of items)
    rows = [r for b in inp for r in (b.tolist() if b.dim() == 2 else [b.tolist()])] if isinstance(inp, list) \
        else inp.tolist()
    assert len(rows) == 12
    for row, text in zip(rows, df.text[28:]):  # the inputs of row i are the tokens of text i
        assert [vocab[t] for t in row if vocab[t] not in ("xxpad", "xxbos")] == text.split()
    test_probs = learn.get_preds(dl=dls.test_dl(list(df.text[28:])))[0]
    assert torch.allclose(test_probs, probs, atol=1e-6)
    label, _, _ = learn.predict(df.text[28])
    assert label in ("neg", "pos")


def test_tabular_category_codes_survive_a_dtype_change_at_inference(adult, tmp_path):
    """AUDIT S2: ints at training, the same values as strings at inference (read_csv(dtype=str), a JSON API)."""
    df = adult.assign(grade=np.resize([1, 2, 3], len(adult)))
    dls = _tab_dls(df, tmp_path, cat_names=["workclass", "grade"])
    as_str = df.iloc[:12].assign(grade=df.grade.iloc[:12].astype(str))
    with_ints = dls.test_dl(df.iloc[:12]).xs.grade.tolist()
    assert 0 not in with_ints
    try:
        from_strs = dls.test_dl(as_str).xs.grade.tolist()
    except Exception:  # refusing by name would be fine too; silently mapping every value to '#na#' is not
        return
    assert from_strs == with_ints
