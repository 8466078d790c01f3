"""Found by the bad-input sweep (tests/integration/test_bad_input_sweep.py): a mask code past the last class failed in
the loss as torch's bare "Target 7 is out of bounds", and a missing label in `from_df` named "column 1"."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tiers.vision import ImageDataLoaders, SegmentationDataLoaders


def _img(fn, size=(16, 16)):
    fn.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size, 3)).astype(np.uint8)).save(fn)
    return fn


def _seg(tmp_path, bad_code):
    (tmp_path / "labels").mkdir()
    fns = []
    for i in range(6):
        fns.append(_img(tmp_path / "images" / f"s{i}.png"))
        m = np.zeros((16, 16), np.uint8)
        m[4:8, 4:8] = bad_code if i == 2 else 1
        Image.fromarray(m).save(tmp_path / "labels" / f"s{i}_P.png")
    return SegmentationDataLoaders.from_label_func(tmp_path, fns, lambda o: tmp_path / "labels" / f"{o.stem}_P.png",
                                                   codes=["bg", "a", "b"], bs=2, seed=0, shuffle=False)


def test_a_mask_code_past_the_codes_names_the_file_and_the_value(tmp_path):
    dls = _seg(tmp_path, bad_code=7)
    with pytest.raises(ValueError) as e:
        for dl in (dls.train, dls.valid):
            for _ in dl:
                pass
    msg = str(e.value)
    assert "s2_P.png" in msg and "[7]" in msg and "3 classes" in msg and "codes=" in msg


def test_masks_within_the_codes_load(tmp_path):
    dls = _seg(tmp_path, bad_code=2)
    ys = [y for dl in (dls.train, dls.valid) for _, y in dl]
    assert int(max(int(y.max()) for y in ys)) == 2


def test_from_df_errors_name_the_label_column(tmp_path):
    fns = [_img(tmp_path / f"im{i}.png").name for i in range(12)]
    labels = ["cat", "dog"] * 6
    labels[4] = None
    df = pd.DataFrame({"fname": fns, "label": labels})
    with pytest.raises(ValueError, match=r"'label'.*\[4\]"):
        ImageDataLoaders.from_df(df, path=tmp_path, bs=4, seed=0)
    df.loc[4, "label"] = "cat"
    dls = ImageDataLoaders.from_df(df, path=tmp_path, bs=4, seed=0)  # positions still work: 0 and 1 by default
    assert list(dls.vocab) == ["cat", "dog"]


def test_vision_learner_refuses_labels_of_one_class(tmp_path):
    from tiers.vision import vision_learner, xresnet18

    for i in range(4):
        _img(tmp_path / "train" / "cat" / f"c{i}.png")
        _img(tmp_path / "valid" / "cat" / f"v{i}.png")
    dls = ImageDataLoaders.from_folder(tmp_path, bs=4)
    with pytest.raises(ValueError, match=r"vision_learner: the labels hold one class only \('cat'\)"):
        vision_learner(dls, xresnet18, pretrained=False)
    _img(tmp_path / "train" / "dog" / "d0.png")
    _img(tmp_path / "valid" / "dog" / "d1.png")
    learn = vision_learner(ImageDataLoaders.from_folder(tmp_path, bs=4), xresnet18, pretrained=False)
    assert learn.model.eval()(torch.zeros(1, 3, 16, 16)).shape == (1, 2)


def test_from_folder_with_an_empty_valid_folder_names_it(tmp_path):
    for i in range(3):
        _img(tmp_path / "train" / "cat" / f"c{i}.png")
        _img(tmp_path / "train" / "dog" / f"d{i}.png")
    (tmp_path / "valid" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"no images in {tmp_path / 'valid'} .*valid_pct="):
        ImageDataLoaders.from_folder(tmp_path, bs=2)
    _img(tmp_path / "valid" / "cat" / "deep.PNG")  # any depth, any case of the extension
    assert len(ImageDataLoaders.from_folder(tmp_path, bs=2).valid_ds) == 1
