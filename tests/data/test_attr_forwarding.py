"""Attribute forwarding from DataLoaders down to the transforms: one rule per level, one value per part.

DataLoaders -> its training loader -> that loader's dataset; a Datasets gathers from its TfmdLists (one value per
TfmdLists that has it); a TfmdLists forwards to its Pipeline (`GetAttr`), which gathers from its Transforms. What
every Transform has as a setting (`order`, `split_idx`, `name`...) is never gathered."""

import pickle

import pytest
import torch

from tiers.data import Categorize, Datasets, IntToFloatTensor, ItemGetter, TfmdLists
from tiers.dispatch import L
from tiers.pipeline import Transform
from tiers.tensors import TensorImage


def to_img(x: torch.Tensor):
    return TensorImage(x)


def _items(n=12):
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(0, 255, (3, 4, 4), dtype=torch.uint8, generator=g), "ab"[i % 2], "xyz"[i % 3])
            for i in range(n)]


def _dls(tfms):
    dsets = Datasets(_items(), tfms, splits=[list(range(8)), list(range(8, 12))])
    return dsets, dsets.dataloaders(bs=4, after_batch=[IntToFloatTensor()], device="cpu")


def test_vocab_and_c_reach_the_one_transform_that_has_them():
    dsets, dls = _dls([[ItemGetter(0), to_img], [ItemGetter(1), Categorize()]])
    assert list(dls.vocab) == ["a", "b"] and dls.c == 2
    assert dls.vocab is dls.train.vocab is dsets.vocab is dsets.tls[1].vocab is dsets.tls[1].tfms.categorize.vocab


def test_a_setting_of_every_transform_is_not_gathered():
    "Bug: `dls.order` was `[[0, 0], [0, 1]]`, one order per Transform nested per TfmdLists; there is no such value."
    dsets, dls = _dls([[ItemGetter(0), to_img], [ItemGetter(1), Categorize()]])
    for o in (dls, dls.train, dsets, dsets.tls[1]):
        with pytest.raises(AttributeError, match="order"):
            o.order
    with pytest.raises(AttributeError, match=r"setting each Transform has.*pipe\.fs\[0\]\.order"):
        dsets.tls[1].tfms.order
    assert dsets.tls[1].tfms.fs[1].order == 1  # read on the Transform itself
    assert "order" not in dir(dsets.tls[1].tfms) and "vocab" in dir(dsets.tls[1])


def test_several_tfmdlists_with_the_attribute_give_one_value_each_in_order():
    dsets, dls = _dls([[ItemGetter(0), to_img], [ItemGetter(1), Categorize()], [ItemGetter(2), Categorize()]])
    assert isinstance(dls.vocab, L) and [list(v) for v in dls.vocab] == [["a", "b"], ["x", "y", "z"]]
    assert list(dls.c) == [2, 3]


def test_misses_say_where_they_looked():
    dsets, dls = _dls([[ItemGetter(0), to_img], [ItemGetter(1), Categorize()]])
    with pytest.raises(AttributeError, match=r"'nothing_here'.*training loader \(TfmdDL\)"):
        dls.nothing_here
    with pytest.raises(AttributeError, match=r"none of its tls \(2 objects\) has it"):
        dsets.nothing_here
    with pytest.raises(AttributeError, match=r"'TfmdLists' object has no attribute 'nothing_here'.*'tfms'"):
        dsets.tls[1].nothing_here
    assert not hasattr(dls, "nothing_here") and getattr(dsets, "_private", None) is None


def test_tfmdlists_forwarding_survives_pickling():
    tl = TfmdLists(["b", "a", "b"], [Categorize()])
    clone = pickle.loads(pickle.dumps(tl))
    assert list(clone.vocab) == ["a", "b"] and clone[0] == tl[0] == 1
    assert isinstance(clone.categorize, Categorize) and isinstance(tl.categorize, Transform)
