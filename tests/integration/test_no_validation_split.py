"""Training without a validation set through the application factories (AUDIT.md B2), and validation columns that
`bool()` would misread given to `valid_col=` (AUDIT.md B3, AUDIT2.md D1): the data layer's splitters end to end."""

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tiers.data.missing import MissingValueError
from tiers.text.all import TextDataLoaders, make_imdb_df
from tiers.vision.all import ImageDataLoaders, Resize, accuracy, resnet18, vision_learner


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for ci, c in enumerate(("cat", "dog")):
        (root / c).mkdir()
        for i in range(6):
            a = np.full((28, 28, 3), 60 + 120 * ci, np.uint8) + rng.integers(0, 40, (28, 28, 3)).astype(np.uint8)
            Image.fromarray(a).save(root / c / f"{c}_{i}.png")
    return root


def test_valid_pct_0_trains_on_every_image_with_blank_validation_columns(folder):
    dls = ImageDataLoaders.from_folder(folder, valid_pct=0.0, item_tfms=Resize(24), bs=4, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds), len(dls.valid)) == (12, 0, 0)
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    learn.fit(1)
    row = learn.recorder.values[-1]
    assert math.isfinite(row[0]) and row[1:] == [None, None]  # train_loss, blank valid_loss and accuracy
    assert learn.recorder.history[-1]["valid_loss"] is None
    # As fastai: validating on no items gives blank results, not an error or a made-up number.
    assert learn.validate() == [None, None]
    # get_preds on the empty validation set is refused with the fix (it was a silent (None, None)).
    with pytest.raises(ValueError, match=r"validation set \(learn.dls\[1\]\) is empty.*ds_idx=0"):
        learn.get_preds()
    # The model did train on every image: predictions on the training images come back for all 12.
    preds, targs = learn.get_preds(dl=dls.train.new(shuffle=False, drop_last=False))
    assert preds.shape == (12, 2) and len(targs) == 12


def test_a_too_small_valid_pct_is_still_refused_with_the_way_to_ask_for_none(folder):
    with pytest.raises(ValueError, match=r"RandomSplitter\(valid_pct=0.05, seed=None\) gave an empty validation set "
                                         r"for 12 items.*valid_pct=0"):
        ImageDataLoaders.from_folder(folder, valid_pct=0.05, item_tfms=Resize(24), bs=4)


def _image_df(folder, flags):
    files = sorted(folder.glob("*/*.png"))
    return pd.DataFrame({"fname": [str(f.relative_to(folder)) for f in files],
                         "label": [f.parent.name for f in files], "is_valid": flags})


def test_valid_col_all_false_means_no_validation_set(folder):
    dls = ImageDataLoaders.from_df(_image_df(folder, [False] * 12), folder, valid_col="is_valid",
                                   item_tfms=Resize(24), bs=4, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds)) == (12, 0)


def test_valid_col_of_yes_no_text_is_refused_naming_the_splitter_values_and_fix(folder):
    df = _image_df(folder, ["yes" if i % 4 == 0 else "no" for i in range(12)])
    with pytest.raises(ValueError, match=r"ColSplitter\('is_valid'\): the column 'is_valid' \(dtype object\) holds "
                                         r"values \['yes', 'no'\].*df\[col\] == 'yes'") as info:
        ImageDataLoaders.from_df(df, folder, valid_col="is_valid", item_tfms=Resize(24), bs=4)
    assert "_inner" not in str(info.value)


def test_valid_col_of_true_false_text_is_read_as_flags(folder):
    df = _image_df(folder, ["True" if i % 4 == 0 else "False" for i in range(12)])
    dls = ImageDataLoaders.from_df(df, folder, valid_col="is_valid", item_tfms=Resize(24), bs=4, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds)) == (9, 3)


def test_text_valid_col_with_nan_rows_is_refused_naming_them():
    df = make_imdb_df(24)
    df["is_valid"] = df.is_valid.astype(object)
    df.loc[:2, "is_valid"] = np.nan  # a left join, a partly filled CSV: these rows used to go to validation unseen
    with pytest.raises(MissingValueError, match=r"ColSplitter\('is_valid'\): the column 'is_valid' is missing "
                                                r"\(NaN/None\) at rows \(index labels\) \[0, 1, 2\]"):
        TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=4)
