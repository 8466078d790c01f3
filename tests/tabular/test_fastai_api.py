"""`TabularPandas` and its procs as fastai documents them: DataFrame-like access (`to['a']`, `to.iloc`, `cats`,
`conts`, `xs`, `ys`), procs by name, `Normalize` with the population std, and ONE `Normalize` for images and
tables whatever the order of the star imports."""


import numpy as np
import pandas as pd
import pytest
import torch

from tiers.data import Normalize as DataNormalize
from tiers.tabular import Categorify, FillMissing, FillStrategy, Normalize, TabularPandas
from tiers.tensors import TensorImage


def test_column_access_and_categorify_by_name():
    df = pd.DataFrame({"a": [0, 1, 2, 0, 2]})
    to = TabularPandas(df, Categorify, "a")
    assert list(to.classes["a"]) == ["#na#", 0, 1, 2]
    assert to["a"].tolist() == [1, 2, 3, 1, 3]
    cat = to.procs.categorify
    assert cat is to.categorify and list(cat["a"]) == ["#na#", 0, 1, 2]
    to1 = to.new(pd.DataFrame({"a": [1, 0, 3, -1, 2]}))
    to1.process()
    assert to1["a"].tolist() == [2, 1, 0, 0, 3]  # unseen values are '#na#'
    to2 = cat.decode(to1)
    assert to2["a"].tolist() == [1, 0, "#na#", "#na#", 2]
    assert to1["a"].tolist() == [2, 1, 0, 0, 3]  # decoding gives a copy


def test_categorify_instance_learns_from_training_split_only():
    cat = Categorify()
    to = TabularPandas(pd.DataFrame({"a": [0, 1, 2, 3, 2]}), cat, "a", splits=[[0, 1, 2], [3, 4]])
    assert list(cat["a"]) == ["#na#", 0, 1, 2]
    assert to["a"].tolist() == [1, 2, 3, 0, 3]


def test_normalize_uses_population_std_and_decodes():
    norm = Normalize()
    to = TabularPandas(pd.DataFrame({"a": [0, 1, 2, 3, 4]}), norm, cont_names="a")
    x = np.array([0, 1, 2, 3, 4], dtype=np.float64)
    m, s = x.mean(), x.std()  # numpy's default: ddof=0, as fastai
    assert norm.means["a"] == m and norm.stds["a"] == pytest.approx(s, abs=1e-6)
    np.testing.assert_allclose(to["a"].values, (x - m) / s, rtol=1e-5)
    assert to.procs.normalize is norm is to.normalize
    to1 = to.new(pd.DataFrame({"a": [5, 6, 7]}))
    to1.process()
    np.testing.assert_allclose(to1["a"].values, (np.array([5, 6, 7]) - m) / s, rtol=1e-5)
    assert norm.decode(to1)["a"].tolist() == [5, 6, 7]
    np.testing.assert_allclose(norm.decode(to1.items)["a"].values, [5, 6, 7])


def test_normalize_statistics_come_from_the_training_split():
    norm = Normalize()
    to = TabularPandas(pd.DataFrame({"a": [0.0, 1, 2, 3, 4]}), norm, cont_names="a", splits=[[0, 1, 2], [3, 4]])
    x = np.array([0.0, 1, 2])
    assert norm.means["a"] == x.mean() and norm.stds["a"] == pytest.approx(x.std(), abs=1e-6)
    np.testing.assert_allclose(to["a"].values, (np.arange(5) - x.mean()) / x.std(), rtol=1e-5)


def test_fill_missing_strategies_as_fastai():
    df = pd.DataFrame({"a": [0, 1, np.nan, 1, 2, 3, 4]})
    fills = [FillMissing(fill_strategy=s) for s in (FillStrategy.median, FillStrategy.constant, FillStrategy.mode)]
    tos = [TabularPandas(df.copy(), f, cont_names="a") for f in fills]
    assert [f.na_dict for f in fills] == [{"a": 1.5}, {"a": 0}, {"a": 1.0}]
    for to, v in zip(tos, [1.5, 0.0, 1.0]):
        assert to.cat_names == ["a_na"]
        assert to["a"].tolist() == [0, 1, v, 1, 2, 3, 4]
        assert to["a_na"].tolist() == [0, 0, 1, 0, 0, 0, 0]  # a boolean column when no Categorify follows
    # with Categorify the indicator holds its codes ('#na#', False, True) and decodes back to booleans
    to = TabularPandas(df.copy(), [Categorify, FillMissing], cont_names="a")
    assert to["a_na"].tolist() == [1, 1, 2, 1, 1, 1, 1]
    assert to.decode()["a_na"].tolist() == [False, False, True, False, False, False, False]


def test_dataframe_like_accessors():
    df = pd.DataFrame({"c": list("xyzx"), "n": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    to = TabularPandas(df, [Categorify], "c", "n", "y")
    assert list(to.cats.columns) == ["c"] and list(to.conts.columns) == ["n"] and list(to.ys.columns) == ["y"]
    assert list(to.xs.columns) == ["c", "n"] and to.x_names == ["c", "n"] and to.all_col_names == ["c", "n", "y"]
    assert to.n.tolist() == [1.0, 2.0, 3.0, 4.0]  # a column as an attribute
    sub = to.iloc[1:3]
    assert isinstance(sub, TabularPandas) and len(sub) == 2 and sub["n"].tolist() == [2.0, 3.0]
    assert sub.procs is to.procs and sub.decode()["c"].tolist() == ["y", "z"]
    assert to.iloc[0, ["c", "n"]].items.shape == (1, 2)
    assert to.loc[2, "n"] == 3.0
    to["n"] = to["n"] * 2
    assert to.conts["n"].tolist() == [2.0, 4.0, 6.0, 8.0]
    to.conts = to.conts + 1
    assert to["n"].tolist() == [3.0, 5.0, 7.0, 9.0]
    assert to.decode_row(to.items.iloc[1])["c"] == "y"
    dec = to.decode()  # fastai: a decoded copy of the TabularPandas
    assert isinstance(dec, TabularPandas) and dec.items["c"].tolist() == ["x", "y", "z", "x"]
    assert to["c"].tolist() == [1, 2, 3, 1]  # the original keeps its codes
    tr = TabularPandas(df, [Categorify], "c", "n", "y", splits=[[0, 1], [2, 3]])
    assert tr.train.decode()["c"].tolist() == ["x", "y"] and tr.valid.decode().items["c"].tolist() == ["#na#", "x"]
    assert tr.valid.show(show=False)["c"].tolist() == ["#na#", "x"]  # z: not in the training rows
    shown = to.show(show=False)
    assert shown["c"].tolist() == ["x", "y", "z", "x"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        to.nope


def test_a_transform_with_no_tabular_behaviour_is_refused_as_a_proc():
    from tiers.data import IntToFloatTensor

    with pytest.raises(TypeError, match="IntToFloatTensor"):
        TabularPandas(pd.DataFrame({"a": [1.0, 2.0]}), [IntToFloatTensor], cont_names="a")


def test_one_normalize_for_images_and_tables():
    assert Normalize is DataNormalize
    # images: per-channel statistics, then decode
    norm = Normalize.from_stats([0.5, 0.5, 0.5], [0.25, 0.25, 0.25], cuda=False)
    x = TensorImage(torch.rand(2, 3, 4, 4))
    y = norm(x)
    assert isinstance(y, TensorImage) and torch.allclose(y, (x - 0.5) / 0.25)
    assert torch.allclose(norm.decode(y), x, atol=1e-6)
    # tables: the class itself in procs
    to = TabularPandas(pd.DataFrame({"a": [1.0, 3.0]}), [Normalize], cont_names="a")
    assert to["a"].tolist() == pytest.approx([-1.0, 1.0], abs=1e-6)
    assert to.decode()["a"].tolist() == pytest.approx([1.0, 3.0])


def test_transform_columns_in_place():
    to = TabularPandas(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), None, cont_names=["a", "b"])
    to.transform(["a"], lambda s: s * 10)
    assert to["a"].tolist() == [10.0, 20.0] and to["b"].tolist() == [3.0, 4.0]
    to.transform(["b", "nope"], lambda s: -s, all_col=False)
    assert to["b"].tolist() == [-3.0, -4.0]


def test_from_df_takes_the_remaining_columns_as_continuous_and_test_dl_options():
    from tiers.tabular import TabularDataLoaders

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"c": rng.choice(list("ab"), 60), "x": rng.normal(size=60), "z": rng.normal(size=60),
                       "y": rng.choice(["p", "q"], 60)})
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names="c", y_names="y", bs=8)
    assert dls.train_ds.cont_names == ["x", "z"]
    test = df.iloc[:4].drop(columns="y").copy()
    dl = dls.test_dl(test, inplace=True)
    assert test["x"].tolist() == pytest.approx(dl.dataset["x"].tolist()) and test["c"].dtype != object  # processed in place
    again = dls.test_dl(test, process=False)  # already processed: taken as is
    assert again.dataset["x"].tolist() == pytest.approx(test["x"].tolist())


def test_weighted_and_partial_dataloaders():
    from tiers.tabular import TabPartialDL, TabWeightedDL

    df = pd.DataFrame({"x": np.arange(100.0), "y": ["rare" if i < 5 else "common" for i in range(100)]})
    to = TabularPandas(df, [Normalize], cont_names="x", y_names="y", splits=[list(range(80)), list(range(80, 100))])
    wgts = np.where(df.y == "rare", 1.0, 0.0)  # one weight per row of the frame: only the rare rows are drawn
    dls = to.weighted_dataloaders(wgts, bs=10)
    assert isinstance(dls.train, TabWeightedDL) and type(dls.valid).__name__ == "TabDataLoader"
    ys = torch.cat([b[-1] for b in dls.train])
    assert len(ys) == 80 and set(ys.tolist()) == {list(to.vocab).index("rare")}
    assert len(list(dls.valid)) == 2  # validation reads every row in order
    assert dls.test_dl(df.iloc[:7].drop(columns="y")).n == 7  # other rows: no training weights
    with pytest.raises(ValueError, match="every weight is 0"):
        to.weighted_dataloaders(np.zeros(100))
    with pytest.raises(ValueError, match="3 weights for 80 rows"):
        to.weighted_dataloaders([1, 2, 3])
    part = to.partial_dataloaders(partial_n=20, bs=8)
    assert isinstance(part.train, TabPartialDL) and len(part.train) == 2
    rows = torch.cat([b[0] for b in part.train])  # cats are empty: count with conts instead
    assert rows.shape[0] == 16
    assert len(torch.cat([b[1] for b in part.train]).unique()) == 16  # distinct rows, no replacement
