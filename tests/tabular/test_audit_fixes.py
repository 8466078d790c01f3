"""Findings of the fastai-user audits (AUDIT.md S2, B4, B6; AUDIT2.md D0, D1b, D2, D2d, D3, D4, D11) that trained or
predicted on the wrong thing without a word: each is now handled (mapped, accepted) or said (a warning or an error
naming the column, the values or rows, and the fix)."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.tabular import (
    Categorify,
    FillMissing,
    Normalize,
    TabularDataLoaders,
    TabularPandas,
    tabular_learner,
)


def _grades(n=120, seed=0):
    "A frame whose target is set by the integer column `grade` (1..3): a model that reads `grade` gets it right."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"grade": rng.integers(1, 4, n), "b": rng.normal(size=n)})
    df["y"] = np.where(df.grade == 3, "pass", "fail")
    return df


def _dls(df, cat=("grade",), cont=("b",), **kw):
    kw = {"procs": [Categorify, Normalize], "cat_names": list(cat), "cont_names": list(cont), "y_names": "y",
          "valid_idx": list(range(len(df) - 20, len(df))), "bs": 16, **kw}
    return TabularDataLoaders.from_df(df, **kw)


# ---- AUDIT S2 / AUDIT2 D1b: a categorical column whose dtype changed between training and inference ------------
@pytest.fixture(scope="module")
def grade_learner():
    torch.manual_seed(0)
    df = _grades()
    learn = tabular_learner(_dls(df), layers=[8])
    learn.fit(4, 3e-2)
    return df, learn


def test_ints_at_training_read_as_text_at_inference_map_to_the_training_classes(grade_learner):
    df, learn = grade_learner
    test = df.iloc[:20].drop(columns="y")
    as_text = test.astype({"grade": str})  # what read_csv(dtype=str) or a JSON API gives
    ref = learn.dls.test_dl(test).dataset.items["grade"].tolist()
    assert set(ref) == {1, 2, 3}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mapped, so nothing to warn about
        dl = learn.dls.test_dl(as_text)
    assert dl.dataset.items["grade"].tolist() == ref  # was [0, 0, ...]: every value '#na#'
    p_ref, _ = learn.get_preds(dl=learn.dls.test_dl(test))
    p_txt, _ = learn.get_preds(dl=dl)
    assert torch.allclose(p_ref, p_txt)
    # '3.0' is the number 3 (as the float 3.0 already was); '3.5' is not a class and is said
    floats = test.iloc[:3].assign(grade=["3.0", "2", "3.5"])
    with pytest.warns(UserWarning, match=r"grade: 1 unknown \['3\.5'\]"):
        codes = learn.dls.test_dl(floats).dataset.items["grade"].tolist()
    assert codes == [3, 2, 0]


def test_predict_with_a_json_like_row_of_strings_reads_the_categorical_value(grade_learner):
    df, learn = grade_learner
    row = {"grade": "3", "b": "0.1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shown, cls, probs = learn.predict(row)
    assert shown["grade"] == 3  # was '#na#'
    _, cls_int, probs_int = learn.predict({"grade": 3, "b": 0.1})
    assert torch.allclose(probs, probs_int) and int(cls) == int(cls_int)


def test_text_at_training_read_as_ints_at_inference_maps_too():
    df = _grades().astype({"grade": str})
    dls = _dls(df)
    test = _grades(10, seed=1).drop(columns="y")  # ints now
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codes = dls.test_dl(test).dataset.items["grade"].to_numpy()
    vocab = dls.classes["grade"]
    assert [vocab[c] for c in codes] == [str(g) for g in test.grade]


def test_float_classes_match_their_text_forms():
    df = _grades()
    df["grade"] = df.grade.map({1: 1.5, 2: 2.0, 3: 3.0})
    dls = _dls(df)
    test = df.iloc[:4].drop(columns="y").astype({"grade": object})
    test["grade"] = ["1.5", "2", "3.0", "2.5"]
    with pytest.warns(UserWarning, match=r"grade: 1 unknown \['2\.5'\]"):
        codes = dls.test_dl(test).dataset.items["grade"].tolist()
    assert [dls.classes["grade"][c] for c in codes] == [1.5, 2.0, 3.0, "#na#"]


def test_unseen_values_warn_once_naming_column_count_values_and_the_dtype_change(grade_learner):
    df, learn = grade_learner
    test = df.iloc[:6].drop(columns="y").astype({"grade": object})
    test["grade"] = ["A", "B", "A", "C", "A", "B"]
    with pytest.warns(UserWarning) as rec:
        dl = learn.dls.test_dl(test)
    msgs = [str(w.message) for w in rec if "#na#" in str(w.message)]
    assert len(msgs) == 1, msgs
    assert re.search(r"grade: 3 unknown \['A', 'B', 'C'\]", msgs[0]), msgs[0]
    assert "every value" in msgs[0] and "int" in msgs[0] and "str" in msgs[0], msgs[0]  # the dtype change is said
    assert rec[0].filename == __file__  # points at the user's line, not inside the library
    assert dl.dataset.items["grade"].tolist() == [0] * 6


def test_a_validation_level_absent_from_training_is_said_at_build():
    df = _grades()
    df["grade"] = df.grade.astype(str)
    df.loc[len(df) - 3, "grade"] = "NEWLEVEL"
    with pytest.warns(UserWarning, match=r"grade: 1 unknown \['NEWLEVEL'\]"):
        dls = _dls(df)
    assert dls.valid_ds.items["grade"].iloc[-3] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every validation level seen in training: nothing said
        _dls(_grades())


# ---- AUDIT2 D0: valid_idx as a boolean mask, or with repeated positions -----------------------------------------
def _masked(n=120):
    df = _grades(n)
    df["is_valid"] = np.arange(n) >= n - 20
    return df


@pytest.mark.parametrize("how", ["series", "values", "list"])
def test_a_boolean_valid_idx_is_a_mask_not_positions_0_and_1(how):
    df = _masked()
    mask = {"series": df.is_valid, "values": df.is_valid.values, "list": df.is_valid.tolist()}[how]
    dls = _dls(df.drop(columns="is_valid"), valid_idx=mask)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (100, 20)  # was (118, 120): rows 0 and 1, repeated
    assert dls.valid_ds.items.index.tolist() == list(range(100, 120))


def test_a_mask_of_another_length_or_with_missing_values_is_refused():
    df = _masked()
    with pytest.raises(ValueError, match=r"boolean mask of 100 values for 120 rows.*np\.flatnonzero"):
        _dls(df, valid_idx=df.is_valid.values[:100])
    nullable = df.is_valid.astype("boolean")
    nullable.iloc[[5, 9]] = pd.NA
    with pytest.raises(ValueError, match=r"missing.*\[5, 9\]"):
        _dls(df, valid_idx=nullable)


def test_repeated_or_fractional_valid_positions_are_refused():
    df = _grades()
    with pytest.raises(ValueError, match=r"repeats row positions \[100, 101\]"):
        _dls(df, valid_idx=list(range(100, 120)) + [100, 101])
    with pytest.raises(ValueError, match=r"not whole numbers.*\[100\.5\]"):
        _dls(df, valid_idx=[100.5, 101.0])


def test_tabular_pandas_splits_take_masks_and_refuse_repeats():
    df = _masked()
    valid = df.is_valid.to_numpy()
    to = TabularPandas(df, [Categorify], "grade", "b", "y", splits=(~valid, valid))
    assert (len(to.train), len(to.valid)) == (100, 20)
    with pytest.raises(ValueError, match=r"split 1 repeats row positions \[3\]"):
        TabularPandas(df, [Categorify], "grade", "b", "y", splits=(range(100), [3, 3, 110]))
    with pytest.warns(UserWarning, match=r"split 1 shares 2 rows with the training split"):
        TabularPandas(df, [Categorify], "grade", "b", "y", splits=(range(100), [98, 99, 110]))


# ---- AUDIT B6: valid_idx that are index labels of a shuffled frame -----------------------------------------------
def test_valid_idx_that_are_labels_of_a_shuffled_frame_warn_naming_both_readings():
    df = _grades(100)
    df["year"] = np.repeat([2018, 2019, 2020, 2021], 25)
    shuffled = df.sample(frac=1, random_state=42)
    labels = list(shuffled[shuffled.year == 2021].index)  # labels, not positions
    with pytest.warns(UserWarning) as rec:
        dls = _dls(shuffled, valid_idx=labels)
    msg = next(str(w.message) for w in rec if "index labels" in str(w.message))
    assert "positions" in msg and "np.flatnonzero(df.index.isin(valid_idx))" in msg and "reset_index" in msg
    rows = dls.valid_ds.items.index  # read as positions (fastai's reading), but now said
    assert sorted(rows) == sorted(shuffled.index[labels]) and sorted(set(df.year[rows])) != [2021]
    fixed = np.flatnonzero(shuffled.index.isin(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dls = _dls(shuffled.reset_index(drop=True), valid_idx=fixed)
        assert sorted(set(shuffled.reset_index(drop=True).year[dls.valid_ds.items.index])) == [2021]
        _dls(df, valid_idx=labels)  # a RangeIndex frame: labels are positions, nothing to say
        _dls(shuffled, valid_idx=None)  # the default random split: no valid_idx given


# ---- AUDIT2 D2: NaN or inf in a continuous column without FillMissing, and values beyond float32 -----------------
def test_nan_in_a_continuous_column_without_fillmissing_is_refused_at_build_naming_rows_and_fix():
    df = _grades()
    df.loc[[3, 7], "b"] = np.nan
    with pytest.raises(ValueError, match=r"'b' has 2 missing.*\[3, 7\].*add FillMissing to procs"):
        _dls(df)
    dls = _dls(df, procs=[Categorify, FillMissing, Normalize])  # the fix works
    learn = tabular_learner(dls, layers=[8])
    learn.fit(1, 1e-2)
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_nan_at_inference_without_fillmissing_is_refused_too(grade_learner):
    df, learn = grade_learner
    test = df.iloc[:5].drop(columns="y").copy()
    test.loc[2, "b"] = np.nan
    with pytest.raises(ValueError, match=r"'b' has 1 missing.*\[2\].*FillMissing"):
        learn.dls.test_dl(test)


def test_a_value_beyond_float32_is_refused_naming_row_and_value():
    df = _grades()
    df.loc[5, "b"] = 1e39
    with pytest.raises(ValueError, match=r"'b'.*float32.*rows \[5\].*1e\+39"):
        _dls(df, procs=[Categorify, FillMissing, Normalize])


# ---- AUDIT B4 / AUDIT2 D3: y_range that does not cover the targets ----------------------------------------------
def test_tabular_learner_warns_when_y_range_does_not_cover_the_targets():
    df = _grades()
    df["y"] = np.linspace(0, 10, len(df)).astype(np.float32)
    dls = _dls(df)
    with pytest.warns(UserWarning, match=r"training targets span 0 \.\. 8\.3\d* but y_range is \(0, 1\).*88 of 100"):
        tabular_learner(dls, layers=[8], y_range=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tabular_learner(dls, layers=[8], y_range=(-0.5, 10.5))
        tabular_learner(dls, layers=[8])


# ---- AUDIT2 D2d: a pandas Categorical keeps its declared, unused levels (fastai takes col.cat.categories) --------
def test_categorical_columns_keep_their_unused_declared_levels():
    df = _grades()
    df["a"] = pd.Categorical(np.resize(["z", "x", "y"], len(df)), categories=["z", "x", "y", "w"])
    dls = _dls(df, cat=("a", "grade"))
    assert list(dls.classes["a"]) == ["#na#", "z", "x", "y", "w"]
    test = df.iloc[:2].drop(columns="y").copy()
    test["a"] = pd.Categorical(["w", "x"], categories=["z", "x", "y", "w"])
    assert dls.test_dl(test).dataset.items["a"].tolist() == [4, 2]
    learn = tabular_learner(dls, layers=[8])
    assert learn.model.embeds[0].num_embeddings == 5  # the size a fastai model of this frame has
    df["s"] = np.resize(["q", "p"], len(df))  # text made categorical by reduce_memory: training values only
    df.loc[len(df) - 1, "s"] = "only_in_valid"
    with pytest.warns(UserWarning, match="only_in_valid"):
        dls = _dls(df, cat=("s", "grade"))
    assert list(dls.classes["s"]) == ["#na#", "p", "q"]


# ---- AUDIT2 D11 ----------------------------------------------------------------------------------------------------
def test_make_adult_sample_is_in_the_star_import():
    ns: dict = {}
    exec("from tiers.tabular.all import *", ns)
    assert "make_adult_sample" in ns


# ---- AUDIT B7: multi-label targets as one 0/1 column per label (fastai's MultiCategoryBlock(encoded=True)) -------
def test_multi_label_targets_one_column_per_label_train_and_predict():
    from tiers.data.block import MultiCategoryBlock
    from tiers.train.metrics import accuracy_multi

    rng = np.random.default_rng(0)
    n = 160
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["u", "v"], n)})
    df["t1"], df["t2"] = df.a > 0, (df.b > 0).astype(int)  # bool and 0/1 int columns
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=["c"], cont_names=["a", "b"],
                                     y_names=["t1", "t2"], y_block=MultiCategoryBlock(encoded=True, vocab=["t1", "t2"]),
                                     valid_idx=list(range(128, n)), bs=16)
    x_cat, x_cont, y = dls.train.one_batch()
    assert y.shape == (16, 2) and y.dtype == torch.float32
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=[16], metrics=accuracy_multi)
    assert type(learn.loss_func).__name__ == "BCEWithLogitsLossFlat"
    learn.fit(8, 3e-2)
    assert learn.validate()[1] > 0.85  # learnable: each label is the sign of one input
    row, dec, probs = learn.predict(df.iloc[0])
    assert probs.shape == (2,) and dec.tolist() == (probs > 0.5).tolist()
    assert bool(row["t1"]) == bool(dec[0]) and bool(row["t2"]) == bool(dec[1])
    bad = df.assign(t2=df.t2.replace({1: 2}))
    with pytest.raises(ValueError, match=r"'t2'.*0/1.*\[2\]"):
        TabularDataLoaders.from_df(bad, procs=[Normalize], cont_names=["a", "b"], y_names=["t1", "t2"],
                                   y_block=MultiCategoryBlock(encoded=True, vocab=["t1", "t2"]), bs=16)
