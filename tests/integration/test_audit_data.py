"""Audit: DataBlock and splitter behaviours as fastai documents them, and messy inputs that must be refused by
name rather than trained on (each case found by porting fastai code; items are numbers so nothing is slow)."""

import pandas as pd
import pytest
import torch

from tiers.data.all import (
    CategoryBlock,
    ColReader,
    ColSplitter,
    DataBlock,
    Datasets,
    EndSplitter,
    FuncSplitter,
    IndexSplitter,
    MaskSplitter,
    MultiCategoryBlock,
    RandomSplitter,
    RandomSubsetSplitter,
    RegexLabeller,
    RegressionBlock,
    TrainTestSplitter,
    TransformBlock,
    noop,
)

ITEMS = list(range(20))


def _num_block():
    return TransformBlock(type_tfms=lambda v: torch.tensor([float(v)]))


def test_random_splitter_is_reproducible_with_a_seed_and_sizes_as_fastai():
    tr, va = RandomSplitter(0.2, seed=42)(ITEMS)
    assert (len(tr), len(va)) == (16, 4)
    assert RandomSplitter(0.2, seed=42)(ITEMS) == (tr, va)
    assert sorted(list(tr) + list(va)) == ITEMS


@pytest.mark.parametrize(("splitter", "valid"), [
    (IndexSplitter([1, 2]), [1, 2]),
    (EndSplitter(0.2), [16, 17, 18, 19]),
    (FuncSplitter(lambda o: o % 5 == 0), [0, 5, 10, 15]),
    (MaskSplitter([i % 2 == 0 for i in ITEMS]), list(range(0, 20, 2))),
])
def test_deterministic_splitters_give_the_documented_validation_items(splitter, valid):
    tr, va = splitter(ITEMS)
    assert list(va) == valid
    assert sorted(list(tr) + list(va)) == ITEMS


def test_train_test_and_subset_splitters_sizes():
    tr, va = TrainTestSplitter(0.25, random_state=0, stratify=[i % 2 for i in ITEMS])(ITEMS)
    assert (len(tr), len(va)) == (15, 5)
    assert sum(i % 2 for i in va) in (2, 3)  # stratified
    tr, va = RandomSubsetSplitter(0.5, 0.2, seed=0)(ITEMS)
    assert (len(tr), len(va)) == (10, 4) and not set(tr) & set(va)


def test_col_splitter_reads_a_boolean_column():
    df = pd.DataFrame({"x": range(8), "is_valid": [i % 4 == 0 for i in range(8)]})
    tr, va = ColSplitter()(df)
    assert list(va) == [0, 4] and len(tr) == 6


def test_col_reader_prefix_suffix_and_label_delim():
    row = pd.Series({"fn": "a.png", "lbl": "cat dog"})
    assert ColReader("fn", pref="/x/")(row) == "/x/a.png"
    assert list(ColReader("lbl", label_delim=" ")(row)) == ["cat", "dog"]


def test_category_block_vocab_is_sorted_and_decodes_back():
    dls = DataBlock(blocks=(_num_block(), CategoryBlock), get_y=lambda o: ["b", "a", "c"][o % 3],
                    splitter=IndexSplitter(range(15, 20))).dataloaders(ITEMS, bs=4)
    assert list(dls.vocab) == ["a", "b", "c"]
    x, y = dls.one_batch()
    assert x.shape == (4, 1) and y.dtype == torch.int64
    dec = dls.decode_batch((x, y), max_n=4)
    assert [d[1] for d in dec] == [["b", "a", "c"][int(v) % 3] for v in x[:, 0]]


def test_multi_category_block_one_hot_targets():
    dls = DataBlock(blocks=(_num_block(), MultiCategoryBlock), get_y=lambda o: ["even" if o % 2 == 0 else "odd"]
                    + (["big"] if o >= 10 else []), splitter=IndexSplitter(range(15, 20))).dataloaders(ITEMS, bs=15)
    assert list(dls.vocab) == ["big", "even", "odd"] and dls.c == 3
    x, y = dls.one_batch()
    assert y.dtype == torch.float32 and y.shape == (15, 3)
    for xi, yi in zip(x[:, 0].long().tolist(), y.tolist()):
        assert yi == [float(xi >= 10), float(xi % 2 == 0), float(xi % 2 == 1)]


def test_regression_block_float_targets_and_c():
    dls = DataBlock(blocks=(_num_block(), RegressionBlock), get_y=lambda o: o / 2,
                    splitter=IndexSplitter([0, 1])).dataloaders(ITEMS, bs=18)
    x, y = dls.one_batch()
    assert y.dtype == torch.float32 and torch.allclose(y, x[:, 0] / 2)
    assert dls.c == 1


def test_n_inp_two_inputs():
    dls = DataBlock(blocks=(_num_block(), _num_block(), CategoryBlock), n_inp=2, get_x=[noop, lambda o: -o],
                    get_y=lambda o: o % 2, splitter=IndexSplitter([0, 1])).dataloaders(ITEMS, bs=4)
    assert dls.n_inp == 2
    a, b, y = dls.one_batch()
    assert torch.equal(a, -b)


def test_summary_runs_one_item_through_every_stage(capsys):
    DataBlock(blocks=(_num_block(), CategoryBlock), get_y=lambda o: o % 2,
              splitter=IndexSplitter([0, 1])).summary(ITEMS, bs=4)
    out = capsys.readouterr().out
    assert "Collating" in out and "No step failed" in out


# ------------------------------------------------------------------ messy inputs: refused by name, never trained on
def test_overlapping_split_is_refused_by_the_datablock():
    db = DataBlock(blocks=(_num_block(), CategoryBlock), get_y=lambda o: o % 2,
                   splitter=lambda o: (list(range(15)), list(range(10, 20))))
    with pytest.raises(ValueError, match=r"both the training and the validation"):
        db.dataloaders(ITEMS, bs=4)


def test_split_indices_out_of_range_are_refused_by_datasets():
    with pytest.raises(IndexError, match=r"\[20, 21"):
        Datasets(ITEMS, [[noop], [noop]], splits=[list(range(15)), list(range(15, 25))])


def test_nan_regression_target_is_refused_naming_the_row():
    db = DataBlock(blocks=(_num_block(), RegressionBlock), get_y=lambda o: float("nan") if o == 3 else float(o),
                   splitter=IndexSplitter([0, 1]))
    with pytest.raises(ValueError, match=r"rows \[3\]"):
        db.dataloaders(ITEMS, bs=4)


def test_labels_of_mixed_types_are_refused_not_split_into_two_classes():
    db = DataBlock(blocks=(_num_block(), CategoryBlock), get_y=lambda o: 1 if o % 2 else "1",
                   splitter=RandomSplitter(seed=0))
    with pytest.raises(TypeError, match="mixed types"):
        db.dataloaders(ITEMS, bs=4)


def test_regex_without_a_group_and_a_pattern_that_does_not_match_are_named():
    with pytest.raises(ValueError, match="no group"):
        RegexLabeller(r"cat|dog")("cat_1.png")
    with pytest.raises(ValueError, match=r"zzz.*cat_1\.png"):
        RegexLabeller(r"(zzz)")("cat_1.png")


def test_valid_pct_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="1.5"):
        RandomSplitter(1.5)(ITEMS)
