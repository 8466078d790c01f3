"""Audit findings C1-C3 and the decode-before-setup message: overlapping splits refused by `Datasets`/`TfmdLists` (one
check, shared with `DataBlock`, with an explicit opt-in), infinite and text regression targets, and `Categorize`/
`MultiCategorize.decode` before their vocabulary exists. Real transforms, items are small numbers."""

import pandas as pd
import pytest
import torch

from tiers.data import (
    Categorize,
    ColReader,
    DataBlock,
    Datasets,
    IndexSplitter,
    MissingValueError,
    MultiCategorize,
    NonFiniteValueError,
    RegressionBlock,
    RegressionSetup,
    TfmdLists,
    TransformBlock,
    noop,
)
from tiers.tensors import TensorCategory, TensorMultiCategory

ITEMS = list(range(20))


def _num_block() -> TransformBlock:
    return TransformBlock(type_tfms=lambda v: torch.tensor([float(v)]))


def _regression(get_y, items=ITEMS, **kwargs):
    db = DataBlock(blocks=(_num_block(), RegressionBlock(**kwargs)), get_y=get_y, splitter=IndexSplitter([0, 1]))
    return db.dataloaders(items, bs=8, shuffle=False, device="cpu")


# ---- C1: overlapping splits ----------------------------------------------------------------------------------------
def test_datasets_refuse_overlapping_splits_naming_the_indices_and_the_fix():
    with pytest.raises(ValueError, match=r"both the training and the validation sets \(indices \[10, 11, 12, 13, "
                                         r"14\]\).*allow_overlap=True"):
        Datasets(ITEMS, [[noop], [noop]], splits=[list(range(15)), list(range(10, 20))])


def test_tfmdlists_refuse_overlap_showing_the_first_indices_and_a_count():
    with pytest.raises(ValueError, match=r"\(indices \[0, 1, 2, 3, 4\]\.\.\. 12 in all\)"):
        TfmdLists(ITEMS, None, splits=[list(range(12)), list(range(12))])


def test_overlap_through_negative_indices_and_a_third_subset_is_refused():
    with pytest.raises(ValueError, match=r"training and the validation sets \(indices \[3\]\)"):
        TfmdLists([0, 1, 2, 3], None, splits=[[0, 3], [-1, 1]])
    with pytest.raises(ValueError, match=r"validation and the subset 2 sets \(indices \[2\]\)"):
        TfmdLists([0, 1, 2, 3], None, splits=[[0], [1, 2], [2, 3]])
    tl = TfmdLists([0, 1, 2, 3], None, splits=[[0, 1], [2], [3]])  # disjoint: accepted
    assert [list(tl.subset(i)) for i in range(3)] == [[0, 1], [2], [3]]


def test_allow_overlap_keeps_deliberate_overlap_possible():
    # Validating on training items on purpose (checking that a model can overfit them) is an explicit opt-in.
    dsets = Datasets(ITEMS, [[noop], [noop]], splits=[list(range(15)), list(range(10, 20))], allow_overlap=True)
    assert (len(dsets.train), len(dsets.valid)) == (15, 10)
    assert list(dsets.overlapping_splits()) == [10, 11, 12, 13, 14]
    dls = dsets.dataloaders(bs=5, device="cpu")
    assert torch.cat([b[0] for b in dls.valid]).tolist() == list(range(10, 20))


def test_datablock_overlap_message_names_its_splitter():
    def halves(items):
        return list(range(15)), list(range(10, 20))

    db = DataBlock(blocks=(_num_block(), _num_block()), splitter=halves)
    with pytest.raises(ValueError, match=r"^DataBlock: the splitter halves put items in both the training and the "
                                         r"validation sets \(indices \[10, 11, 12, 13, 14\]\)"):
        db.datasets(ITEMS)


# ---- C2: infinite regression targets --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("inf"), float("-inf")])
def test_infinite_regression_target_is_refused_naming_the_row(bad):
    with pytest.raises(NonFiniteValueError, match=r"RegressionSetup: 1 of 20 values are not finite numbers.*rows \[3\]"
                                                  rf".*items \[3\].*values \[{bad}\]"):
        _regression(lambda o: bad if o == 3 else float(o))


def test_infinite_value_inside_a_vector_target_is_refused():
    with pytest.raises(NonFiniteValueError, match=r"rows \[5, 7\]"):
        _regression(lambda o: [1.0, float("inf")] if o in (5, 7) else [1.0, float(o)], n_out=2)


def test_infinite_target_in_a_dataframe_names_the_column_and_index_labels():
    df = pd.DataFrame({"x": range(6), "y": [0.5, 1.0, float("inf"), 2.0, 3.0, 4.0]}, index=list("abcdef"))
    db = DataBlock(blocks=(_num_block(), RegressionBlock), get_x=ColReader("x"), get_y=ColReader("y"),
                   splitter=IndexSplitter([0]))
    with pytest.raises(NonFiniteValueError, match=r"of column 'y'.*rows \['c'\].*df\.replace"):
        db.dataloaders(df, bs=4, device="cpu")


def test_infinite_generic_float_target_is_refused_too():
    # A target pipeline of plain floats (no RegressionSetup) gets the NaN check already; inf is refused the same way.
    with pytest.raises(NonFiniteValueError, match=r"rows \[4\]"):
        Datasets(ITEMS, [[noop], [lambda o: float("inf") if o == 4 else float(o)]])


def test_nan_still_raises_missing_value_error_not_the_finite_one():
    with pytest.raises(MissingValueError, match=r"rows \[3\]"):
        _regression(lambda o: float("nan") if o == 3 else float(o))


# ---- C3: regression targets read as text ----------------------------------------------------------------------------
def test_numeric_string_targets_become_floats():
    dls = _regression(lambda o: f"{o}.5")
    ys = torch.cat([b[1] for b in dls.train])
    assert ys.dtype == torch.float32 and ys.tolist() == [o + 0.5 for o in range(2, 20)] and dls.c == 1
    assert RegressionSetup()(" -3.25 ").item() == -3.25
    assert RegressionSetup()(["1.5", "2"]).tolist() == [1.5, 2.0]


def test_numeric_strings_from_a_csv_column():
    df = pd.DataFrame({"x": range(5), "y": ["1.5", "2", "3e1", "4", "5"]})
    db = DataBlock(blocks=(_num_block(), RegressionBlock), get_x=ColReader("x"), get_y=ColReader("y"),
                   splitter=IndexSplitter([0]))
    dls = db.dataloaders(df, bs=4, shuffle=False, device="cpu")
    assert torch.cat([b[1] for b in dls.train]).tolist() == [2.0, 30.0, 4.0, 5.0]


def test_non_numeric_string_target_is_refused_at_build_time_naming_rows_and_values():
    with pytest.raises(NonFiniteValueError, match=r"not finite numbers \(infinite, or text that is not a "
                                                  r"number\), in rows \[3, 8\].*values \['n/a', 'about 8'\]"):
        _regression(lambda o: "n/a" if o == 3 else "about 8" if o == 8 else str(o))


def test_string_infinity_is_refused_like_inf():
    with pytest.raises(NonFiniteValueError, match=r"rows \[6\]"):
        _regression(lambda o: "inf" if o == 6 else str(o))


def test_regression_setup_names_a_non_numeric_value_and_the_fix():
    with pytest.raises(ValueError, match=r"RegressionSetup: the target 'abc' is not a number.*float\(\).*"
                                         r"CategoryBlock"):
        RegressionSetup()("abc")


# ---- decode before setup ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tfm, enc", [(Categorize(), TensorCategory(0)),
                                      (MultiCategorize(), TensorMultiCategory([0, 1]))])
def test_decode_before_setup_names_the_fix(tfm, enc):
    # a TypeError as it was ('NoneType' object is not subscriptable), and a ValueError as encodes before setup raises
    for exc in (TypeError, ValueError):
        with pytest.raises(exc, match=r"has no vocabulary yet.*set it up.*DataBlock.*vocab=\["):
            tfm.decode(enc)
    with pytest.raises(ValueError, match=r"has no vocabulary yet"):
        tfm(["a"] if isinstance(tfm, MultiCategorize) else "a")


def test_core_docstring_examples_run():
    import doctest

    from tiers.data import core

    assert doctest.testmod(core, optionflags=doctest.ELLIPSIS).failed == 0


def test_check_splits_is_the_public_shared_check():
    # one check for any collection split by index lists (DataBlock and TfmdLists use it; other layers may too)
    from tiers.data import check_splits

    check_splits([[0, 2], [1]], 3)
    check_splits([[0, 1], [1]], 3, allow_overlap=True)
    with pytest.raises(ValueError, match=r"^MyTable: the splits put items in both .* \(indices \[1\]\); use fewer\.$"):
        check_splits([[0, 1], [1]], 3, who="MyTable: the splits", fix="use fewer")
    with pytest.raises(IndexError, match=r"split 1 holds indices \[3, -4\] out of range for 3 items"):
        check_splits([[0], [3, -4, 2]], 3)
