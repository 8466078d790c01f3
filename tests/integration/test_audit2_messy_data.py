"""Audit 2: messy data a demanding user feeds the tabular, collab and text applications. Each case is either handled
correctly (checked on the result) or refused with an error that names the column, the rows or the fix; none trains
on garbage silently. Tiny frames and models: the whole file runs in seconds."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.collab.all import CollabDataLoaders, collab_learner
from tiers.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from tiers.train import accuracy


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)


def _frame(n=120, seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame({"a": r.choice(["x", "y", "z"], n), "b": r.normal(size=n),
                         "c": r.integers(0, 5, n).astype(float), "y": r.choice(["p", "q"], n)})


def _tab(df, cat=("a",), cont=("b", "c"), y="y", **kw):
    return TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=list(cat),
                                      cont_names=list(cont), y_names=y, valid_idx=list(range(100, 120)), bs=16, **kw)


def _fit(learn):
    with learn.no_bar():
        learn.fit(1, 1e-2)
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    return learn


# ------------------------------------------------------------------------------------------------------ tabular
@pytest.mark.parametrize("col,cat,cont", [("c", ["a"], ["b", "c"]), ("a", ["a"], ["b"])])
def test_tabular_all_nan_column_is_refused_by_name(col, cat, cont):
    df = _frame()
    df[col] = np.nan
    with pytest.raises(ValueError, match=rf"column '{col}' is empty \(all NaN\)"):
        _tab(df, cat=cat, cont=cont)


def test_tabular_datetime_as_continuous_says_add_datepart():
    df = _frame()
    df["when"] = pd.date_range("2020-01-01", periods=len(df))
    with pytest.raises(TypeError, match=r"'when'.*add_datepart"):
        _tab(df, cont=("b", "when"))


def test_tabular_object_column_mixing_types_is_a_category_or_refused_as_continuous():
    df = _frame()
    df["a"] = df["a"].astype(object)
    df.loc[::3, "a"], df.loc[1::7, "a"], df.loc[2::11, "a"] = 1, 2.5, None
    dls = _tab(df)
    assert set(dls.classes["a"]) == {"#na#", 1, 2.5, "x", "y", "z"}
    _fit(tabular_learner(dls, layers=[8], metrics=accuracy))
    df2 = _frame()
    df2["c"] = df2["c"].astype(object)
    df2.loc[::5, "c"] = "3"
    with pytest.raises(TypeError, match=r"'c'.*pd.to_numeric"):
        _tab(df2)


def test_tabular_nan_target_and_a_class_only_in_validation_name_the_rows():
    df = _frame()
    df.loc[[3, 50], "y"] = np.nan
    with pytest.raises(ValueError, match=r"'y'.*rows \[3, 50\]"):
        _tab(df)
    df = _frame()
    df.loc[100:105, "y"] = "r"
    with pytest.raises(ValueError, match=r"\['r'\].*'y'.*training"):
        _tab(df)


def test_tabular_misspelled_names_and_a_column_in_both_lists():
    with pytest.raises(KeyError, match=r"y_names \['target'\] not found.*\['a', 'b', 'c', 'y'\]"):
        _tab(_frame(), y="target")
    with pytest.raises(KeyError, match=r"cat_names \['aa'\]"):
        _tab(_frame(), cat=("aa",))
    with pytest.raises(ValueError, match=r"\['c'\] are in both cat_names and cont_names"):
        _tab(_frame(), cat=("a", "c"))


def test_tabular_without_target_asks_for_n_out():
    dls = TabularDataLoaders.from_df(_frame(), procs=[Categorify, Normalize], cat_names=["a"], cont_names=["b"],
                                     valid_idx=list(range(100, 120)), bs=16)
    with pytest.raises(ValueError, match="n_out"):
        tabular_learner(dls, layers=[8])


@pytest.mark.filterwarnings("ignore:Categorify")  # the validation ids are unseen by construction
def test_tabular_high_cardinality_bool_and_nullable_int_columns_train():
    df = _frame()
    df["id"] = [f"id{i}" for i in range(len(df))]
    df["flag"] = df.b > 0
    df["k"] = pd.array(np.arange(len(df)) % 7, dtype="Int64")
    df.loc[4, "k"] = pd.NA
    dls = _tab(df, cat=("a", "id", "flag"), cont=("b", "k"))
    assert len(dls.classes["id"]) == 101  # the 100 training ids and #na#; validation ids are unseen
    assert list(dls.classes["flag"]) == ["#na#", False, True]
    assert "k_na" in dls.cat_names
    learn = _fit(tabular_learner(dls, layers=[8], metrics=accuracy))
    assert learn.model.embeds[1].weight.shape[0] == 101


def test_tabular_a_column_named_c_does_not_change_the_output_size():
    """`dls.c` reaches the column `c` through DataFrame-like access; the head still has one output per class."""
    df = _frame()
    df["y"] = np.random.default_rng(1).choice(["p", "q", "r"], len(df))
    learn = tabular_learner(_tab(df), layers=[8])
    assert learn.model.layers[-1][0].out_features == 3


def test_tabular_integer_target_is_classification():
    df = _frame()
    df["y"] = np.random.default_rng(0).integers(0, 3, len(df))
    learn = _fit(tabular_learner(_tab(df), layers=[8]))
    assert type(learn.loss_func).__name__ == "CrossEntropyLossFlat"
    assert learn.model.layers[-1][0].out_features == 3


@pytest.mark.filterwarnings("ignore:Categorify")
def test_tabular_test_dl_with_an_unseen_level_and_a_new_nan_warns_and_predicts():
    df = _frame()
    learn = _fit(tabular_learner(_tab(df), layers=[8]))
    t = df.iloc[:5].drop(columns="y").copy()
    t.loc[0, "a"], t.loc[1, "c"] = "never_seen", np.nan
    with pytest.warns(UserWarning, match=r"\['c'\]"):
        dl = learn.dls.test_dl(t)
    preds, _ = learn.get_preds(dl=dl)
    assert preds.shape == (5, 2) and torch.isfinite(preds).all()


# ------------------------------------------------------------------------------------------------------- collab
def _ratings(n=400, seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame({"user": r.integers(0, 30, n), "item": r.integers(0, 40, n),
                         "rating": r.integers(1, 6, n).astype(float)})


def test_collab_ratings_written_as_text_are_read_as_numbers():
    df = _ratings()
    df["rating"] = df.rating.astype(str)
    dls = CollabDataLoaders.from_df(df, bs=32, seed=0)
    ys = torch.cat([b[-1].flatten() for b in dls.train])
    assert ys.dtype == torch.float32 and set(ys.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    _fit(collab_learner(dls, n_factors=4, y_range=(0, 5.5)))


def test_collab_non_contiguous_and_string_ids_get_one_embedding_each():
    df = _ratings()
    df["user"] = df.user * 1000 + 7
    df["item"] = df.item.map(lambda i: f"m{i}")
    dls = CollabDataLoaders.from_df(df, bs=32, seed=0)
    learn = _fit(collab_learner(dls, n_factors=4, y_range=(0, 5.5)))
    assert learn.model.u_weight.weight.shape[0] == len(dls.classes["user"]) <= 31
    assert all(isinstance(u, (int, np.integer)) and u % 1000 == 7 for u in list(dls.classes["user"])[1:])


def test_collab_nan_rating_is_refused_with_rows():
    df = _ratings()
    df.loc[[5, 17], "rating"] = np.nan
    with pytest.raises(ValueError, match=r"'rating'.*rows \[5, 17\]"):
        CollabDataLoaders.from_df(df, bs=32, seed=0)


def test_collab_predictions_stay_inside_y_range():
    learn = _fit(collab_learner(CollabDataLoaders.from_df(_ratings(), bs=32, seed=0), n_factors=4, y_range=(0, 5.5)))
    preds, _ = learn.get_preds()
    assert float(preds.min()) >= 0.0 and float(preds.max()) <= 5.5


# --------------------------------------------------------------------------------------------------------- text
def _texts(n=60):
    r = np.random.default_rng(0)
    words = ["good", "great", "bad", "awful", "movie", "plot", "actor", "fine"]
    t = [" ".join(r.choice(words, 8)) for _ in range(n)]
    return pd.DataFrame({"text": t, "label": ["pos" if "good" in s else "neg" for s in t],
                         "is_valid": [i >= 48 for i in range(n)]})


def _text_dls(df, **kw):
    from tiers.text.all import TextDataLoaders

    return TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8, **kw)


def test_text_unicode_emoji_cjk_and_control_characters_tokenize_and_train():
    from tiers.text.all import AWD_LSTM, awd_lstm_clas_config, text_classifier_learner

    df = _texts()
    df.loc[0, "text"] = "Ça été génial 😀 日本語のテキスト ÉNORME good good good"
    df.loc[1, "text"] = "\u200b\u200b zero width <br /><br />A &amp; B \x00 nul \x1b[31m red"
    df.loc[2, "text"] = "   "
    dls = _text_dls(df)
    vocab = dls.vocab[0]
    assert not any("\x1b" in t or "\x00" in t for t in vocab)
    learn = text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, emb_sz=16, n_hid=16, n_layers=1),
                                    pretrained=False)
    _fit(learn)
    label, _, probs = learn.predict("日本語 😀 good")
    assert label in ("pos", "neg") and torch.isclose(probs.sum(), torch.tensor(1.0))


def test_text_valid_col_of_zeros_and_ones_splits_like_booleans():
    df = _texts()
    df["is_valid"] = df.is_valid.astype(int)
    dls = _text_dls(df)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (48, 12)


def test_text_label_only_in_validation_is_named_when_used():
    from tiers.text.all import AWD_LSTM, awd_lstm_clas_config, text_classifier_learner

    df = _texts()
    df.loc[50, "label"] = "neutral"
    dls = _text_dls(df)
    assert list(dls.vocab[1]) == ["neg", "pos"]
    learn = text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, emb_sz=16, n_hid=16, n_layers=1),
                                    pretrained=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyError, match="'neutral'"):
            with learn.no_bar():
                learn.fit(1, 1e-2)
