"""Audit fixes in the data layer (AUDIT.md B2/B3/B5, AUDIT2.md D0/D1/D2b/D5b): an empty validation split when the user
asked for one, validation flags that `bool()` would misread (NaN, 'no', 'False'), boolean masks and repeats given as
positions, and labels that are separate classes only through whitespace or a fractional value."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiers.data import (
    Categorize,
    CategoryBlock,
    ColReader,
    ColSplitter,
    DataBlock,
    EndSplitter,
    FileSplitter,
    FuncSplitter,
    GrandparentSplitter,
    IndexSplitter,
    MaskSplitter,
    MultiCategorize,
    MultiCategoryBlock,
    RandomSplitter,
    RandomSubsetSplitter,
    TrainTestSplitter,
    TransformBlock,
    UnknownLabelError,
)
from tiers.data.missing import MissingValueError


def as_lists(split):
    return [list(s) for s in split]


def _num_block(**kw):
    return DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=lambda o: o % 2, **kw)


def _df(flags, n=None):
    n = len(flags) if n is None else n
    # Index labels 100.. so a message that names rows by label is told apart from positions.
    return pd.DataFrame({"x": range(n), "label": ["a", "b"] * (n // 2), "is_valid": flags}, index=range(100, 100 + n))


def _df_block(**kw):
    return DataBlock(blocks=(TransformBlock, CategoryBlock), get_x=ColReader("x"), get_y=ColReader("label"), **kw)


# ---- B2: no validation set when asked for -----------------------------------------------------------------------
@pytest.mark.parametrize("splitter", [RandomSplitter(valid_pct=0), RandomSplitter(0.0, seed=3), IndexSplitter([]),
                                      EndSplitter(0), RandomSubsetSplitter(1.0, 0), TrainTestSplitter(test_size=0),
                                      MaskSplitter([False] * 8)], ids=lambda s: s.__name__)
def test_an_empty_validation_split_that_was_asked_for_trains_on_every_item(splitter):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for: no warning either
        dls = _num_block(splitter=splitter).dataloaders(range(8), bs=4, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds), len(dls.valid)) == (8, 0, 0)
    xs = sorted(int(x) for b in dls.train for x in b[0])
    assert xs == list(range(8))  # every item is trained on, once per epoch


def test_a_validation_column_all_false_means_no_validation_set():
    dsets = _df_block(splitter=ColSplitter()).datasets(_df([False] * 6))
    assert (len(dsets.train), len(dsets.valid)) == (6, 0)
    dsets = _df_block(splitter=ColSplitter()).datasets(_df([0] * 6))
    assert (len(dsets.train), len(dsets.valid)) == (6, 0)


def test_an_empty_validation_split_that_was_not_asked_for_is_still_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"RandomSplitter\(valid_pct=0.1, seed=None\) gave an empty validation set "
                                         r"for 6 items \(int\(0.1 \* 6 items\) is 0\).*pass valid_pct=0"):
        _num_block(splitter=RandomSplitter(0.1)).datasets(range(6))
    with pytest.raises(ValueError, match=r"EndSplitter\(valid_pct=0.1, valid_last=True\) gave an empty validation"):
        _num_block(splitter=EndSplitter(0.1)).datasets(range(6))


def test_grandparent_folders_that_match_nothing_are_refused_naming_the_folders():
    items = [Path(f"d/{sub}/{c}/{i}.jpg") for sub in ("train", "val") for c in ("cat", "dog") for i in range(2)]
    dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=lambda p: p.parent.name,
                       splitter=GrandparentSplitter())
    with pytest.raises(ValueError, match=r"GrandparentSplitter\(train_name='train', valid_name='valid'\) gave an "
                                         r"empty validation set.*grandparent folders are \['train', 'val'\]: pass "
                                         "valid_name="):
        dblock.datasets(items)


def test_file_splitter_names_matching_nothing_is_refused_an_empty_list_is_not(tmp_path):
    items = [Path(f"d/{i}.jpg") for i in range(6)]
    listed = tmp_path / "valid.txt"
    listed.write_text("d/1.jpg\nd/2.jpg\n")  # paths, not bare file names
    dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=lambda p: int(p.stem) % 2,
                       splitter=FileSplitter(listed))
    with pytest.raises(ValueError, match=r"none of the 2 names in .*valid.txt.*list bare file names"):
        dblock.datasets(items)
    listed.write_text("")
    dsets = DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=lambda p: int(p.stem) % 2,
                      splitter=FileSplitter(listed)).datasets(items)
    assert (len(dsets.train), len(dsets.valid)) == (6, 0)


def test_col_splitter_on_a_value_that_no_row_has_is_refused_listing_the_values():
    df = _df(["train", "valid"] * 3)
    with pytest.raises(ValueError, match=r"ColSplitter\('is_valid', on='Valid'\) gave an empty validation set.*"
                                         r"no value of the column 'is_valid' is 'Valid'; its values are \['train', "
                                         r"'valid'\]"):
        _df_block(splitter=ColSplitter("is_valid", on="Valid")).datasets(df)


def test_a_custom_splitter_or_func_splitter_giving_no_validation_items_trains_with_a_warning():
    with pytest.warns(UserWarning, match=r"FuncSplitter\(never\) gave no validation items for 6 items.*"
                                         r"RandomSplitter\(valid_pct=0\)"):
        def never(o):
            return False

        dsets = _num_block(splitter=FuncSplitter(never)).datasets(range(6))
    assert (len(dsets.train), len(dsets.valid)) == (6, 0)


def test_an_empty_training_set_is_still_refused_naming_the_splitter_publicly():
    with pytest.raises(ValueError, match=r"ColSplitter\('is_valid'\) gave an empty training set for 6 items"):
        _df_block(splitter=ColSplitter()).datasets(_df([True] * 6))
    with pytest.raises(ValueError, match=r"RandomSplitter\(valid_pct=1.0, seed=None\) gave an empty training set"):
        _num_block(splitter=RandomSplitter(1.0)).datasets(range(6))
    with pytest.raises(ValueError, match="empty training set"):
        _num_block(splitter=IndexSplitter(range(6))).datasets(range(6))


def test_splitters_carry_their_public_names():
    assert ColSplitter("is_valid").__name__ == "ColSplitter('is_valid')"
    assert ColSplitter("fold", on=3).__name__ == "ColSplitter('fold', on=3)"
    assert RandomSplitter(0.2, seed=42).__name__ == "RandomSplitter(valid_pct=0.2, seed=42)"
    assert "_inner" not in repr(IndexSplitter([1, 2]))


# ---- B3 / D1: validation flags that bool() misreads -------------------------------------------------------------
def test_nan_in_the_validation_column_is_refused_naming_column_and_rows():
    df = _df([True, False, np.nan, False, True, np.nan, False, False])  # a left join / partly filled CSV
    with pytest.raises(MissingValueError, match=r"ColSplitter\('is_valid'\): the column 'is_valid' is missing "
                                                r"\(NaN/None\) at rows \(index labels\) \[102, 105\].*fillna\(False\)"):
        _df_block(splitter=ColSplitter()).datasets(df)
    nullable = df.assign(is_valid=pd.array([True, False, None, False, True, False, False, False], dtype="boolean"))
    with pytest.raises(MissingValueError, match=r"index labels\) \[102\]"):
        ColSplitter()(nullable)


@pytest.mark.parametrize("yes,no", [("yes", "no"), ("valid", "train"), ("1", "0"), ("Y", "N")])
def test_text_flags_are_refused_naming_the_values_and_the_fix(yes, no):
    df = _df([yes, no, no, no, yes, no])
    with pytest.raises(ValueError, match=rf"ColSplitter\('is_valid'\): the column 'is_valid' \(dtype object\) holds "
                                         rf"values \['{yes}', '{no}'\] that are not validation flags.*"
                                         rf"df\[col\] == '{yes}'.*ColSplitter\(col, on='{yes}'\)"):
        _df_block(splitter=ColSplitter()).datasets(df)


def test_numbers_other_than_0_and_1_are_refused():
    with pytest.raises(ValueError, match=r"holds values \[2, 3\] that are not validation flags.*== 2"):
        ColSplitter()(_df([0, 1, 2, 3, 0, 1]))
    with pytest.raises(ValueError, match=r"holds values \[0.5\]"):
        ColSplitter()(_df([0.0, 1.0, 0.5, 0.0]))


@pytest.mark.parametrize("flags", [
    [False, True, False, False, True, False],
    [0, 1, 0, 0, 1, 0],
    [0.0, 1.0, 0.0, 0.0, 1.0, 0.0],
    ["False", "True", "false", "FALSE", " TRUE ", "false"],
    np.array([False, True, False, False, True, False], dtype=object),
    pd.array([False, True, False, False, True, False], dtype="boolean"),
])
def test_bool_01_and_true_false_text_flags_are_read_as_flags(flags):
    assert as_lists(ColSplitter()(_df(flags))) == [[0, 2, 3, 5], [1, 4]]


def test_mask_splitter_refuses_nan_and_text_too():
    assert as_lists(MaskSplitter(["True", "False", "false"])(range(3))) == [[1, 2], [0]]
    with pytest.raises(MissingValueError, match=r"MaskSplitter: the mask is missing \(NaN/None\) at positions \[1\]"):
        MaskSplitter([True, None, False])
    with pytest.raises(ValueError, match=r"holds values \['no'\]"):
        MaskSplitter([True, "no"])


# ---- D0: a boolean mask or repeated positions given as valid_idx ------------------------------------------------
@pytest.mark.parametrize("mask", [np.array([False] * 8 + [True] * 2), pd.Series([False] * 8 + [True] * 2),
                                  [False] * 8 + [True] * 2], ids=["numpy", "series", "list"])
def test_a_boolean_mask_given_to_index_splitter_is_read_as_a_mask(mask):
    assert as_lists(IndexSplitter(mask)(range(10))) == [list(range(8)), [8, 9]]  # not rows 0 and 1


def test_a_boolean_mask_of_the_wrong_length_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match=r"boolean mask of 3 flags but there are 10 items.*np.flatnonzero"):
        IndexSplitter(np.array([True, False, True]))(range(10))
    with pytest.raises(TypeError, match=r"mixes booleans"):
        IndexSplitter([True, 3])


def test_repeated_positions_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"names positions \[100, 101\] more than once.*sorted\(set\(valid_idx\)\)"):
        IndexSplitter(list(range(100, 120)) + [100, 101])(range(120))
    with pytest.raises(ValueError, match=r"positions \[9\] more than once \(a negative index"):
        IndexSplitter([9, -1])(range(10))
    with pytest.raises(TypeError, match=r"holds \[1.5\], which are not integer positions"):
        IndexSplitter([1, 1.5])
    assert as_lists(IndexSplitter(np.array([3.0, 1.0]))(range(5))) == [[0, 2, 4], [1, 3]]  # whole floats are fine


def test_a_boolean_series_as_valid_idx_end_to_end():
    df = _df([False] * 8 + [True] * 2)
    dsets = _df_block(splitter=IndexSplitter(df.is_valid)).datasets(df)
    assert (len(dsets.train), len(dsets.valid)) == (8, 2)
    assert [int(x) for x, _ in dsets.valid] == [8, 9]


# ---- B5 / D2b / D5b: labels that become classes by accident -----------------------------------------------------
def test_labels_differing_only_by_whitespace_warn_naming_them():
    tfm = Categorize()
    with pytest.warns(UserWarning, match=r"Categorize: labels that differ only by surrounding whitespace are separate "
                                         r"classes: \[' dog', 'dog'\]; \['cat', 'cat '\].*str.strip\(\)"):
        tfm.setup(["cat", "cat ", "dog", " dog", "cat"])
    assert list(tfm.vocab) == [" dog", "cat", "cat ", "dog"]  # the classes are not changed behind the user's back


def test_labels_differing_by_case_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Categorize().setup(["US", "us", "Us"])
        MultiCategorize().setup([["US"], ["us", "a"]])


def test_multi_label_whitespace_collisions_warn_through_a_datablock():
    df = pd.DataFrame({"x": range(6), "y": ["a,b", "a, b", "b", "a", "a,b", "b"]})
    dblock = DataBlock(blocks=(TransformBlock, MultiCategoryBlock), get_x=ColReader("x"),
                       get_y=ColReader("y", label_delim=","), splitter=IndexSplitter([5]))
    with pytest.warns(UserWarning, match=r"MultiCategorize: .*\[' b', 'b'\]"):
        dblock.datasets(df)


def test_an_unknown_label_with_extra_whitespace_says_so():
    tfm = Categorize()
    tfm.setup(["cat", "dog"])
    with pytest.raises(UnknownLabelError, match=r"Label 'cat ' is not among.*differs from the class 'cat' only by "
                                                 "surrounding whitespace"):
        tfm("cat ")


def test_fractional_number_labels_warn_and_point_to_regression_block():
    with pytest.warns(UserWarning, match=r"labels are fractional numbers.*RegressionBlock\(\)"):
        Categorize().setup([1.5, 2.25, 3.0])
    tfm = Categorize(vocab=[1.5, 2.25])
    with pytest.raises(UnknownLabelError, match=r"Label 1.8 .*fractional number.*RegressionBlock\(\)"):
        tfm(1.8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Categorize().setup([1.0, 2.0, 3.0])  # whole numbers read as floats (a CSV with NaN elsewhere) are classes


def test_stray_delimiters_do_not_make_an_empty_class():
    assert ColReader("y", label_delim=" ")({"y": " a  b "}) == ["a", "b"]
    df = pd.DataFrame({"x": range(6), "y": ["a b", "a", "", "b ", " a  b", "b"]})
    dblock = DataBlock(blocks=(TransformBlock, MultiCategoryBlock), get_x=ColReader("x"),
                       get_y=ColReader("y", label_delim=" "), splitter=IndexSplitter([5]))
    dsets = dblock.datasets(df)
    assert list(dsets.vocab) == ["a", "b"]
    assert dsets.decode(dsets[3])[1] == ["b"]  # 'b ' is labelled b alone


def test_func_splitter_returning_text_or_nan_is_refused():
    with pytest.raises(ValueError, match=r"FuncSplitter\(<lambda>\): the values func returned \(dtype object\) holds "
                                         r"values \['train', 'valid'\].*lambda o: label\(o\) == 'valid'"):
        _num_block(splitter=FuncSplitter(lambda o: "valid" if o > 6 else "train")).datasets(range(8))
    with pytest.raises(MissingValueError, match=r"at positions \[3\]"):
        FuncSplitter(lambda o: float("nan") if o == 3 else o > 6)(range(8))
    # Truthy objects and None keep their bool() meaning (a regex match, a lookup that returns None).
    assert as_lists(FuncSplitter(lambda o: {7: object()}.get(o))(range(8))) == [list(range(7)), [7]]
    assert as_lists(FuncSplitter(lambda o: "True" if o == 0 else "False")(range(3))) == [[1, 2], [0]]


def test_table_cells_show_floats_without_float32_noise():
    from tiers.data import wrapped_table

    df = pd.DataFrame({"rating": [2.9839999675750732, 2.7618558406829834, 1e-9, 3.0], "n": [1, 2, 3, 4]})
    text = wrapped_table(df)
    assert "2.984 " in text and "2.761856" in text and "1e-09" in text
    assert "2.98399" not in text and "2.7618558" not in text


# ---- AUDIT A2: a regression prediction decodes to numbers, not a generator --------------------------------------
def test_vector_regression_targets_decode_to_a_tuple_of_floats():
    import torch

    from tiers.data import RegressionBlock

    dblock = DataBlock(blocks=(TransformBlock(type_tfms=lambda o: torch.tensor([float(o)])), RegressionBlock),
                       get_y=lambda o: [o / 2, -o], splitter=IndexSplitter([6, 7]))
    dls = dblock.dataloaders(range(8), bs=2, device="cpu")
    dec = dls.valid_ds.decode(dls.valid_ds[0])[1]
    assert tuple(dec) == (3.0, -6.0) and all(isinstance(v, float) for v in dec)
    x, y = dls.valid.one_batch()
    decoded = dls.valid.decode_batch((x, y))
    assert [tuple(s[1]) for s in decoded] == [(3.0, -6.0), (3.5, -7.0)]
    one = DataBlock(blocks=(TransformBlock, RegressionBlock), get_y=lambda o: [float(o)],
                    splitter=IndexSplitter([3])).datasets(range(4))
    assert tuple(one.decode(one.valid[0])[1]) == (3.0,)  # a one-value vector target: (3.0,) as fastai gives
