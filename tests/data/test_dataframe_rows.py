"""DataFrame rows handed to getters (audit 3): `lambda x: x[0]` from fastai's data block tutorial fails on pandas >= 3
(no positional fallback) with a note naming the fix (E25); `ColReader(pref=folder)` keeps an absolute path in the
column as it is instead of gluing the folder in front of it (E27). Each test failed before its fix."""

import os
from pathlib import Path

import pandas as pd
import pytest

from tiers.data.all import ColReader, ColSplitter, DataBlock, MultiCategoryBlock, TransformBlock


@pytest.fixture
def df():
    return pd.DataFrame({"fname": [f"{i}.png" for i in range(6)], "labels": ["a b", "b", "a", "b a", "a", "b"],
                         "is_valid": [False] * 4 + [True] * 2})


def test_the_tutorials_positional_getter_names_iloc_and_the_column(df):
    # fastai's data block tutorial (PASCAL): getters index the row by position
    dblock = DataBlock(blocks=(TransformBlock, MultiCategoryBlock), get_x=lambda x: f"{x[0]}",
                       get_y=lambda x: x[1].split(" "), splitter=ColSplitter())
    with pytest.raises(KeyError) as info:
        dblock.datasets(df)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    # Before: a bare `KeyError: 0` (and a note naming the lambda only)
    assert "pandas Series (a DataFrame row) indexed by column names ['fname', 'labels', 'is_valid']" in notes
    assert "x.iloc[" in notes and ("x['fname']" in notes or "x['labels']" in notes)


def test_the_fixed_getters_work(df):
    dblock = DataBlock(blocks=(TransformBlock, MultiCategoryBlock), get_x=lambda x: f"{x.iloc[0]}",
                       get_y=lambda x: x["labels"].split(" "), splitter=ColSplitter())
    dsets = dblock.datasets(df)
    assert dsets.train[0][0] == "0.png" and list(dsets.vocab) == ["a", "b"]


@pytest.mark.parametrize("pref", ["data/", Path("data"), "." + os.path.sep])
def test_colreader_keeps_an_absolute_path_under_a_folder_prefix(tmp_path, pref):
    absolute = str(tmp_path / "img" / "a.png")
    row = pd.DataFrame({"fname": [absolute, "b.png"]})
    # Before: 'data//tmp/.../a.png' (the folder glued in front), so every file was "not found"
    assert ColReader("fname", pref=pref, suff=".x")(row.iloc[0]) == absolute + ".x"
    # a relative path still gets the prefix
    assert ColReader("fname", pref=pref)(row.iloc[1]) == f"{pref}{os.path.sep if isinstance(pref, Path) else ''}b.png"


def test_colreader_with_a_non_folder_prefix_glues_as_before():
    # a prefix that is not a folder (no trailing separator) is text: fastai's `f'{pref}{o}{suff}'`
    assert ColReader(0, pref="img_")(("/x.png",)) == "img_/x.png"
