"""Values that may be None (or of the wrong kind) where the code used them unchecked, found by type checking tiers-data:
each now gets a clear error or the documented default instead of a crash deep inside torch or a silent None."""

import numpy as np
import pytest
import torch

from tiers.data import DataLoaders, Normalize, PartialDL, TfmdLists
from tiers.data import test_set as make_test_set
from tiers.tensors import TensorImage


class _Unsized:
    "An iterable dataset without len(): its size is unknown until it has been read."

    def __iter__(self):
        return iter(range(10))


def test_partial_dl_needs_a_dataset_of_known_size():
    # Before: accepted, then `torch.randperm(None)` failed at the first epoch with torch's signature dump.
    with pytest.raises(ValueError, match=r"partial_n=4 .* has no len\(\)"):
        PartialDL(_Unsized(), bs=2, partial_n=4)
    # n= gives the size: drawing works
    dl = PartialDL(list(range(10)), bs=2, partial_n=4, n=10, seed=0)
    assert len(dl) == 2 and len(set(torch.cat(list(dl)).tolist())) == 4
    # without partial_n an unsized dataset is still read as usual
    assert [b.tolist() for b in PartialDL(_Unsized(), bs=5)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_partial_dl_size_unset_later_is_refused_when_drawing():
    dl = PartialDL(list(range(10)), bs=2, partial_n=4)
    dl.n = None
    dl.dataset = _Unsized()
    with pytest.raises(ValueError, match="partial_n=4"):
        dl.get_idxs()


class _Inputs:
    "A map-style dataset whose n_inp is set but unknown (None)."

    n_inp = None

    def __getitem__(self, i):
        return torch.tensor([float(i)]), torch.tensor(i)

    def __len__(self):
        return 4


def test_dataloaders_n_inp_of_a_dataset_with_n_inp_none_is_one():
    # Before: `dls.n_inp` returned the dataset's None (declared int), so `b[:n_inp]` took the whole batch as inputs.
    dl = torch.utils.data.DataLoader(_Inputs(), batch_size=2)
    dls = DataLoaders(dl, dl)
    assert dls.n_inp == 1
    dls.n_inp = 2
    assert dls.n_inp == 2


def test_test_set_of_a_tfmdlists_takes_one_count():
    tl = TfmdLists(["a", "b"], [str.upper, str.lower])
    assert list(make_test_set(tl, ["x"], rm_tfms=1)) == ["x"]
    assert list(make_test_set(tl, ["X"], rm_tfms=np.int64(1))) == ["x"]
    # Before: a list (one count per pipeline, the Datasets form) failed with "slice indices must be integers".
    with pytest.raises(TypeError, match=r"rm_tfms=\[1\].*one int"):
        make_test_set(tl, ["x"], rm_tfms=[1])


def test_normalize_without_statistics_says_how_to_get_them():
    # Before: `x - None`, a TypeError naming neither Normalize nor the fix (no setup ran, or the first element of
    # the batch it was set up on was not an image, so it computed no statistics).
    x = TensorImage(torch.rand(2, 3, 4, 4))
    for f in (Normalize(), Normalize(mean=torch.zeros(1, 3, 1, 1))):
        with pytest.raises(ValueError, match=r"Normalize has no statistics .*from_stats"):
            f(x)
        with pytest.raises(ValueError, match="Normalize has no statistics"):
            f.decode(x)
    f = Normalize.from_stats([0.5] * 3, [0.25] * 3, cuda=False)
    assert torch.allclose(f(x), (x - 0.5) / 0.25) and torch.allclose(f.decode(f(x)), x)


def test_train_test_splitter_needs_one_size():
    from tiers.data import TrainTestSplitter

    # Before: accepted, then `n - None` (TypeError) when the DataBlock split its items.
    with pytest.raises(ValueError, match="test_size and train_size are both None"):
        TrainTestSplitter(test_size=None, train_size=None)
    trn, tst = TrainTestSplitter(test_size=None, train_size=6, random_state=0)(range(8))
    assert len(trn) == 6 and len(tst) == 2 and not set(trn) & set(tst)
