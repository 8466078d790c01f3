from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.data.splitters import (
    ColSplitter,
    EndSplitter,
    FileSplitter,
    FuncSplitter,
    GrandparentSplitter,
    IndexSplitter,
    MaskSplitter,
    RandomSplitter,
    RandomSubsetSplitter,
    TrainTestSplitter,
)


def as_lists(split):
    return [list(s) for s in split]


def test_random_splitter_seeded_disjoint_complete():
    a = as_lists(RandomSplitter(0.25, seed=1)(range(20)))
    assert a == as_lists(RandomSplitter(0.25, seed=1)(range(20)))
    assert a != as_lists(RandomSplitter(0.25, seed=2)(range(20)))
    assert len(a[1]) == 5 and sorted(a[0] + a[1]) == list(range(20))


def test_random_splitter_follows_torch_seed_and_leaves_it_alone():
    torch.manual_seed(0)
    a = as_lists(RandomSplitter()(range(10)))
    torch.manual_seed(0)
    assert a == as_lists(RandomSplitter()(range(10)))
    state = torch.get_rng_state()
    RandomSplitter(seed=3)(range(10))
    assert torch.equal(state, torch.get_rng_state())  # a seeded split does not touch the global generator


def test_random_splitter_bad_pct():
    with pytest.raises(ValueError, match="valid_pct"):
        RandomSplitter(1.5)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(4, 60), pct=st.floats(0.1, 0.5), seed=st.integers(0, 1000))
def test_stratified_split_keeps_proportions(n, pct, seed):
    labels = ["a" if i % 3 else "b" for i in range(n)]
    trn, tst = TrainTestSplitter(pct, random_state=seed, stratify=labels)(range(n))
    trn, tst = list(trn), list(tst)
    assert not set(trn) & set(tst) and len(trn) + len(tst) == n
    import math

    assert len(tst) == math.ceil(pct * n)
    want = Counter(labels)
    got = Counter(labels[i] for i in tst)
    for c in want:  # each class's share of the test set is within one item of its exact share
        assert abs(got[c] - want[c] * len(tst) / n) <= 1


def test_train_test_splitter_plain_and_sizes():
    trn, tst = TrainTestSplitter(3, random_state=0)(range(10))
    assert len(tst) == 3 and len(trn) == 7
    trn, tst = TrainTestSplitter(0.2, train_size=0.5, shuffle=False)(range(10))
    assert list(trn) == [0, 1, 2, 3, 4] and list(tst) == [5, 6]
    a = TrainTestSplitter(0.3, random_state=4, stratify=[0, 1] * 10)(range(20))
    assert as_lists(a) == as_lists(TrainTestSplitter(0.3, random_state=4, stratify=[0, 1] * 10)(range(20)))


def test_train_test_splitter_bad_inputs():
    with pytest.raises(ValueError, match="single item"):
        TrainTestSplitter(0.5, stratify=["a", "a", "b"])(range(3))
    with pytest.raises(ValueError, match="one per item"):
        TrainTestSplitter(0.5, stratify=["a", "b"])(range(3))
    with pytest.raises(ValueError, match="test_size"):
        TrainTestSplitter(1.5)(range(3))
    with pytest.raises(ValueError, match="exceed"):
        TrainTestSplitter(5, train_size=6)(range(10))


def test_index_end_func_mask_splitters():
    assert as_lists(IndexSplitter([1, 3])(list("abcde"))) == [[0, 2, 4], [1, 3]]
    with pytest.raises(IndexError, match="out of range"):
        IndexSplitter([9])(range(3))
    assert as_lists(EndSplitter(0.4)(range(5))) == [[0, 1, 2], [3, 4]]
    assert as_lists(EndSplitter(0.4, valid_last=False)(range(5))) == [[2, 3, 4], [0, 1]]
    assert as_lists(FuncSplitter(lambda o: o > 2)(range(5))) == [[0, 1, 2], [3, 4]]
    assert as_lists(MaskSplitter([True, False, True])(range(3))) == [[1], [0, 2]]
    with pytest.raises(ValueError, match="mask has 1"):
        MaskSplitter([True])(range(3))


def test_grandparent_and_file_splitters(tmp_path):
    items = [Path("d/train/cat/1.jpg"), Path("d/valid/dog/2.jpg"), Path("d/test/cat/3.jpg"), Path("d/train/dog/4.jpg")]
    assert as_lists(GrandparentSplitter()(items)) == [[0, 3], [1]]
    assert as_lists(GrandparentSplitter("train", ["valid", "test"])(items)) == [[0, 3], [1, 2]]
    f = tmp_path / "valid.txt"
    f.write_text("2.jpg\n4.jpg\n")
    assert as_lists(FileSplitter(f)(items)) == [[0, 2], [1, 3]]
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        FileSplitter(tmp_path / "nope.txt")


def test_col_splitter():
    df = pd.DataFrame({"x": range(4), "is_valid": [0, 1, 0, 1], "fold": ["a", "b", "c", "a"]})
    assert as_lists(ColSplitter()(df)) == [[0, 2], [1, 3]]
    assert as_lists(ColSplitter(1)(df)) == [[0, 2], [1, 3]]
    assert as_lists(ColSplitter("fold", on="a")(df)) == [[1, 2], [0, 3]]
    assert as_lists(ColSplitter("fold", on=["b", "c"])(df)) == [[0, 3], [1, 2]]
    with pytest.raises(KeyError, match="valid_col"):
        ColSplitter("valid_col")(df)
    with pytest.raises(TypeError, match="DataFrame"):
        ColSplitter()([1, 2])


def test_random_subset_splitter():
    trn, val = as_lists(RandomSubsetSplitter(0.5, 0.2, seed=0)(range(10)))
    assert len(trn) == 5 and len(val) == 2 and not set(trn) & set(val)
    with pytest.raises(ValueError, match="more than 1"):
        RandomSubsetSplitter(0.8, 0.5)
