import pickle

import pytest
import torch

from tiers.data import (
    Categorize,
    DataLoaders,
    Datasets,
    IntToFloatTensor,
    ItemGetter,
    Normalize,
    TfmdDL,
    TfmdLists,
    batch_to_samples,
    decode_at,
)
from tiers.data import test_set as make_test_set
from tiers.pipeline import Transform
from tiers.tensors import TensorCategory, TensorImage


class Upper(Transform):
    def encodes(self, x: str):
        return x.upper()

    def decodes(self, x: str):
        return x.lower()


class AddOneTrainOnly(Transform):
    split_idx = 0

    def encodes(self, x: int):
        return x + 1


# ---- TfmdLists -----------------------------------------------------------------------------------------------------
def test_tfmdlists_lazy_indexing_and_splits():
    tl = TfmdLists(["a", "b", "c", "d"], [Upper()], splits=[[0, 1, 2], [3]])
    assert tl[0] == "A" and list(tl[[1, 3]]) == ["B", "D"] and list(tl[[True, False, False, True]]) == ["A", "D"]
    assert list(tl.train) == ["A", "B", "C"] and list(tl.valid) == ["D"] and tl.n_subsets == 2
    assert tl.decode("A") == "a" and len(tl) == 4
    assert list(tl[1:3]) == ["B", "C"]


def test_tfmdlists_setup_sees_training_items_only():
    tl = TfmdLists(["b", "a", "c", "z"], [Categorize()], splits=[[0, 1, 2], [3]])
    assert list(tl.vocab) == ["a", "b", "c"]  # attribute found on the transforms
    with pytest.raises(KeyError, match="'z' is not among the 3 classes"):
        tl.valid[0]


def test_tfmdlists_split_idx_for_training_only_transforms():
    tl = TfmdLists([1, 2, 3], [AddOneTrainOnly()], splits=[[0, 1], [2]])
    assert list(tl.train) == [2, 3] and list(tl.valid) == [3]


def test_tfmdlists_bad_splits():
    with pytest.raises(IndexError, match="out of range for 3 items"):
        TfmdLists([1, 2, 3], None, splits=[[0, 5], [1]])
    with pytest.raises(IndexError, match="no subset 2"):
        TfmdLists([1, 2, 3], None, splits=[[0], [1]]).subset(2)
    with pytest.raises(ValueError, match=r"both the training and the validation sets \(indices \[1\]\)"):
        TfmdLists([1, 2, 3], None, splits=[[0, 1], [1, 2]])
    tl = TfmdLists([1, 2, 3], None, splits=[[0, 1], [1, 2]], allow_overlap=True)
    assert list(tl.overlapping_splits()) == [1]


def test_tfmdlists_new_and_infer_idx():
    def to_len(s: str) -> int:
        return len(s)

    tl = TfmdLists(["ab", "c"], [to_len, AddOneTrainOnly()])
    assert tl.new(["xyz"])[0] == 3 and tl.new(["xyz"], split_idx=0)[0] == 4 and tl.types[0] == (str,)
    assert tl.infer_idx("q") == 0 and tl.infer_idx(5) == 1
    with pytest.raises(TypeError, match="fits no step"):
        tl.infer_idx(2.5)
    assert len(tl.new_empty()) == 0


# ---- Datasets ------------------------------------------------------------------------------------------------------
def make_dsets():
    items = ["cat1", "dog1", "cat2", "dog2", "cat3"]
    return Datasets(items, [[lambda o: float(o[-1])], [lambda o: o[:3], Categorize()]], splits=[[0, 1, 2, 3], [4]])


def test_datasets_tuples_n_inp_and_attributes():
    dsets = make_dsets()
    x, y = dsets[1]
    assert x == 1.0 and isinstance(y, TensorCategory) and int(y) == 1
    assert dsets.n_inp == 1 and len(dsets) == 5 and list(dsets.vocab) == ["cat", "dog"]
    assert len(dsets[[0, 1]]) == 2 and dsets.valid[0][0] == 3.0
    assert dsets.decode(dsets[1]) == (1.0, "dog") and decode_at(dsets, 0) == (1.0, "cat")
    with dsets.set_split_idx(1):
        assert dsets.split_idx == 1
    assert dsets.split_idx is None and dsets.splits == [[0, 1, 2, 3], [4]]


def test_datasets_needs_items():
    with pytest.raises(ValueError, match="items"):
        Datasets()


def test_test_set_without_and_with_labels():
    dsets = make_dsets()
    tst = make_test_set(dsets, ["cat9", "dog7"])
    assert len(tst.tls) == 1 and tst[0] == (9.0,)
    tst2 = make_test_set(dsets, ["dog7"], with_labels=True)
    assert int(tst2[0][1]) == 1


def test_datasets_pickle_roundtrip():
    dsets = pickle.loads(pickle.dumps(Datasets(["a", "b"], [[Upper()], [Categorize()]])))
    assert dsets[1][0] == "B" and list(dsets.vocab) == ["a", "b"]


# ---- TfmdDL --------------------------------------------------------------------------------------------------------
def image_dsets(n=12):
    imgs = [TensorImage(torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8)) for _ in range(n)]
    labels = ["a" if i % 2 else "b" for i in range(n)]
    return Datasets(list(zip(imgs, labels)), [[ItemGetter(0)], [ItemGetter(1), Categorize()]],
                    splits=[list(range(n - 4)), list(range(n - 4, n))])


def test_tfmdl_batch_types_and_decode():
    dsets = image_dsets()
    dl = TfmdDL(dsets.train, bs=4, after_batch=[IntToFloatTensor()])
    x, y = dl.one_batch()
    assert isinstance(x, TensorImage) and x.dtype == torch.float32 and float(x.max()) <= 1.0
    assert isinstance(y, TensorCategory) and dl.n_inp == 1
    dx, dy = dl.decode((x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)))  # plain tensors are re-typed
    assert isinstance(dx, TensorImage) and dx.dtype == torch.int64 and isinstance(dy, TensorCategory)
    samples = dl.decode_batch((x, y), max_n=3)
    assert len(samples) == 3 and samples[0][1] in ("a", "b")


def test_tfmdl_normalize_setup_from_a_batch_and_decode():
    dsets = image_dsets(16)
    dl = TfmdDL(dsets.train, bs=8, after_batch=[IntToFloatTensor(), Normalize()])
    norm = dl.after_batch.normalize
    assert norm.mean.shape == (1, 3, 1, 1)
    x, y = dl.one_batch()
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 0.05
    raw = torch.stack([dsets.train[i][0] for i in range(8)]).long()
    dx, _ = dl.decode((x, y))
    assert (dx - raw).abs().max() <= 1  # back to 0..255 integers (up to rounding)
    fixed = Normalize.from_stats([0.5] * 3, [0.25] * 3, cuda=False)
    assert torch.allclose(fixed.decode(fixed(TensorImage(torch.full((1, 3, 2, 2), 0.75)))),
                          TensorImage(torch.full((1, 3, 2, 2), 0.75)))


def test_tfmdl_split_idx_reaches_pipelines():
    class Flip(Transform):
        split_idx = 0  # training-time augmentation

        def encodes(self, x: TensorImage):
            return -x.float()

    dsets = image_dsets()
    dls = dsets.dataloaders(bs=4, device="cpu", after_batch=[Flip()])
    xt, _ = next(iter(dls.train))
    xv, _ = next(iter(dls.valid))
    assert float(xt.max()) <= 0 and float(xv.min()) >= 0
    assert dls.train.after_batch.split_idx == 0 and dls.valid.after_batch.split_idx == 1


def test_dataloaders_from_datasets_and_test_dl():
    dsets = image_dsets()
    dls = dsets.dataloaders(bs=4, val_bs=2, device="cpu", after_batch=[IntToFloatTensor()])
    assert isinstance(dls, DataLoaders) and dls.train.shuffle and dls.train.drop_last and not dls.valid.shuffle
    assert dls.valid.bs == 2 and len(dls.valid) == 2 and dls.c == 2 and dls.n_inp == 1
    assert list(dls.vocab) == ["a", "b"]
    tdl = dls.test_dl([(dsets.items[0][0], "a")])
    (x,) = tdl.one_batch()
    assert x.shape == (1, 3, 4, 4) and x.dtype == torch.float32
    dls.add_tfms([Transform(lambda b: b)], "after_batch", loaders=0)
    assert len(dls.train.after_batch.fs) == 2 and len(dls.valid.after_batch.fs) == 1
    empty = dls.new_empty()
    assert len(empty.train_ds) == 0 and list(empty.vocab) == ["a", "b"]
    # the batch types come along (an empty loader could not learn them), so decoding still works without data
    b = dls.valid.one_batch()
    dec = empty.valid.decode(b)
    assert type(dec[0]) is TensorImage and type(dec[1]) is TensorCategory and empty.valid.n_inp == 1


def test_show_batch_and_results_return_values():
    dsets = make_dsets()
    dl = TfmdDL(dsets.train, bs=4)
    x, y, its = dl.show_batch(show=False, max_n=2)
    assert len(its) == 2 and its[0][1] in ("cat", "dog")
    res = dl.show_results(dl.one_batch(), TensorCategory(torch.tensor([0, 1, 0, 1])), show=False, max_n=2)
    assert len(res) == 4 and [o[0] for o in res[3]] == ["cat", "dog"]


def test_batch_to_samples():
    b = (torch.tensor([[1, 2], [3, 4]]), TensorCategory(torch.tensor([0, 1])), ["s", "t"])
    s = batch_to_samples(b, max_n=1)
    assert len(s) == 1 and s[0][0].tolist() == [1, 2] and isinstance(s[0][1], TensorCategory) and s[0][2] == "s"


def test_tfmdl_workers_same_as_main_process():
    dsets = image_dsets(16)
    a = TfmdDL(dsets.train, bs=4, shuffle=True, seed=0, after_batch=[IntToFloatTensor()])
    b = TfmdDL(dsets.train, bs=4, shuffle=True, seed=0, num_workers=2, after_batch=[IntToFloatTensor()])
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and type(xb) is TensorImage and type(yb) is TensorCategory


def test_plain_dataloader_decodes_and_shows_through_its_dataset():
    from tiers.data import DataLoader

    dsets = make_dsets()
    dl = DataLoader(dsets.train, bs=2)
    b = dl.one_batch()
    assert [s[1] for s in dl.decode_batch(b)] == ["cat", "dog"]
    x, y, its = dl.show_batch(show=False)
    assert its[1][1] == "dog" and dl.n_inp == 1


def test_filtered_base_subclass_gets_dataloaders():
    from tiers.data import FilteredBase

    class Table(FilteredBase):
        "A collection written like a tabular one: its own storage, splits and subsets."

        def __init__(self, rows, splits, **kwargs):
            super().__init__(**kwargs)
            self.rows, self.splits = rows, splits

        def subset(self, i):
            return [self.rows[j] for j in self.splits[i]]

    t = Table([(torch.tensor([float(i)]), i % 2) for i in range(10)], [list(range(8)), [8, 9]], dl_type=TfmdDL)
    dls = t.dataloaders(bs=4, device="cpu", shuffle=False)
    assert len(dls.train) == 2 and dls.valid.one_batch()[1].tolist() == [0, 1]


def test_datasets_items_setter_keeps_a_dataframe_as_rows():
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2, 3], "b": list("xyz")})
    dsets = Datasets(df, [[lambda r: r["a"]], [lambda r: r["b"]]])
    dsets.items = df.iloc[:2]
    assert len(dsets) == 2 and dsets[1] == (2, "y")
