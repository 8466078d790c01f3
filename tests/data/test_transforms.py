import pickle
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.data import (
    AttrGetter,
    Categorize,
    CategoryMap,
    ColReader,
    DataLoaders,
    EncodedMultiCategorize,
    IntToFloatTensor,
    ItemGetter,
    MultiCategorize,
    OneHotEncode,
    RegressionSetup,
    TfmdDL,
    TfmdLists,
    UnknownLabelError,
    get_c,
    one_hot,
    one_hot_decode,
)
from tiers.pipeline import Category, MultiCategory, TitledFloat, TitledTuple, Transform
from tiers.tensors import TensorCategory, TensorImage, TensorMask, TensorMultiCategory


# ---- CategoryMap / Categorize ---------------------------------------------------------------------------------------
def test_category_map_sorted_nan_dropped_and_na():
    v = CategoryMap(["b", "a", float("nan"), "b"])
    assert list(v) == ["a", "b"] and v.o2i == {"a": 0, "b": 1}
    v = CategoryMap(["b", "a"], add_na=True)
    assert list(v) == ["#na#", "a", "b"] and v.o2i["zzz"] == 0
    assert list(CategoryMap(["b", "a"], sort=False)) == ["b", "a"]
    cat = pd.Series(["lo", "hi", "lo"], dtype=pd.CategoricalDtype(["lo", "mid", "hi"]))
    assert list(CategoryMap(cat)) == ["lo", "mid", "hi"] and list(CategoryMap(cat, strict=True)) == ["lo", "hi"]
    with pytest.raises(TypeError, match="mixed types"):
        CategoryMap(["a", 1])
    v2 = pickle.loads(pickle.dumps(CategoryMap(["x", "y"], add_na=True)))
    assert list(v2) == ["#na#", "x", "y"] and v2.o2i["q"] == 0 and list(CategoryMap(v2)) == list(v2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["cat", "dog", "emu", "fox"]), min_size=1, max_size=30))
def test_categorize_roundtrip(labels):
    tfm = Categorize()
    tfm.setup(labels)
    assert tfm.c == len(set(labels)) and list(tfm.vocab) == sorted(set(labels))
    for lbl in labels:
        enc = tfm(lbl)
        assert isinstance(enc, TensorCategory) and tfm.decode(enc) == lbl and isinstance(tfm.decode(enc), Category)


def test_categorize_unknown_label_and_na():
    tfm = Categorize(vocab=["a", "b"])
    with pytest.raises(UnknownLabelError, match="Label 'z' is not among the 2 classes"):
        tfm("z")
    na = Categorize(vocab=["a", "b"], add_na=True)
    assert int(na("z")) == 0 and na.decode(na("z")) == "#na#"
    with pytest.raises(ValueError, match="no vocabulary"):
        Categorize()("a")
    with pytest.raises(ValueError, match="no training items"):
        Categorize().setup([])


def test_categorize_numeric_and_tensor_labels():
    tfm = Categorize()
    tfm.setup([3, 1, 2, np.int64(3)])
    assert list(tfm.vocab) == [1, 2, 3] and int(tfm(torch.tensor(2))) == 1 and int(tfm(np.int64(3))) == 2


# ---- multi-label -----------------------------------------------------------------------------------------------------
def test_multicategorize_and_one_hot_pipeline():
    pipe = TfmdLists([["cat", "dog"], ["dog"], []], [MultiCategorize(), OneHotEncode()]).tfms  # c from the vocab
    assert pipe.c == 2
    enc = pipe(["dog", "cat"])
    assert isinstance(enc, TensorMultiCategory) and enc.tolist() == [1.0, 1.0]
    assert list(pipe.decode(enc)) == ["cat", "dog"] and isinstance(pipe.decode(enc), MultiCategory)
    assert pipe(["cat"]).tolist() == [1.0, 0.0] and pipe([]).tolist() == [0.0, 0.0]
    with pytest.raises(UnknownLabelError, match=r"\['emu'\]"):
        pipe(["emu"])
    with pytest.raises(ValueError, match="no labels"):
        MultiCategorize().setup([[], []])


def test_encoded_multicategorize_and_one_hot_helpers():
    tfm = EncodedMultiCategorize(vocab=["a", "b", "c"])
    enc = tfm([1, 0, 1])
    assert enc.dtype == torch.float32 and list(tfm.decode(enc)) == ["a", "c"]
    assert one_hot([0, 2], 4).tolist() == [1, 0, 1, 0] and list(one_hot_decode(torch.tensor([0.0, 1.0]))) == [1]
    with pytest.raises(ValueError, match="pass c="):
        OneHotEncode().setup([1])


# ---- regression ----------------------------------------------------------------------------------------------------
def test_regression_setup():
    tfm = RegressionSetup()
    tfm.setup([[1.0, 2.0], [3.0, 4.0]])
    assert tfm.c == 2
    enc = tfm([1, 2])
    assert type(enc) is torch.Tensor and enc.dtype == torch.float32
    assert isinstance(tfm.decode(enc), TitledTuple) and isinstance(tfm.decode(torch.tensor(1.5)), TitledFloat)
    one = RegressionSetup()
    one.setup([0.5, 1.5])
    assert one.c == 1


def test_get_c_from_attributes():
    class D:
        c = 7

    class V:
        vocab = ["a", "b", "c"]

    class VV:
        vocab = [["x"], ["a", "b"]]

    assert get_c(D()) == 7 and get_c(V()) == 3 and get_c(VV()) == 2

    class PointsOut(Transform):  # an item transform that knows the output size
        c = 6

    items = [(torch.zeros(3), 0.5)] * 4
    dls = DataLoaders(TfmdDL(items, bs=2, after_item=[PointsOut()]), TfmdDL(items, bs=2))
    assert get_c(dls) == 6
    with pytest.raises(AttributeError, match="no `c`"):
        get_c(object())


# ---- tensors ---------------------------------------------------------------------------------------------------------
def test_int_to_float_tensor():
    tfm = IntToFloatTensor()
    img = TensorImage(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    f = tfm(img)
    assert isinstance(f, TensorImage) and f.tolist() == [[[0.0, 1.0]]] and tfm.decode(f).tolist() == [[[0, 255]]]
    m = tfm(TensorMask(torch.tensor([[1, 2]], dtype=torch.uint8)))
    assert m.dtype == torch.long and isinstance(m, TensorMask)


# ---- getters ---------------------------------------------------------------------------------------------------------
def test_item_attr_getters():
    assert ItemGetter(1)(("a", "b")) == "b" and ItemGetter("k")({"k": 3}) == 3
    Pt = namedtuple("Pt", "x y")
    assert AttrGetter("y")(Pt(1, 2)) == 2 and AttrGetter("z", default=0)(Pt(1, 2)) == 0


def test_col_reader_rows():
    df = pd.DataFrame({"fname": ["a.png", "b.png"], "tags": ["x y", np.nan], "n": [1, 2]})
    row = df.iloc[0]
    assert ColReader("fname")(row) == "a.png" and ColReader(0)(row) == "a.png"
    assert ColReader("fname", pref="img/", suff=".bak")(row) == "img/a.png.bak"
    assert ColReader("tags", label_delim=" ")(row) == ["x", "y"] and ColReader("tags", label_delim=" ")(df.iloc[1]) == []
    assert list(ColReader(["fname", "n"])(row)) == ["a.png", 1]
    tup = next(df.itertuples())
    assert ColReader("fname")(tup) == "a.png"
    from pathlib import Path

    assert ColReader("fname", pref=Path("imgs"))(row).replace("\\", "/") == "imgs/a.png"
    with pytest.raises(KeyError, match="no column 'label'"):
        ColReader("label")(row)
