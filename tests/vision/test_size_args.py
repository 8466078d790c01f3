"""AUDIT3 E21e: a size that is not a positive whole number of pixels is refused when the transform is made, naming
the transform and the value (`Resize(0)` raised a bare ZeroDivisionError at the first batch; `Resize('22')` resized
to 2x2, `Resize(224.5)` to 224). Whole numbers of any numeric type still work, on real PIL images."""

import numpy as np
import pytest
import torch
from PIL import Image

from tiers.vision.all import (
    CropPad,
    PILImage,
    RandomCrop,
    RandomResizedCrop,
    RandomResizedCropGPU,
    RatioResize,
    Resize,
    Rotate,
    Zoom,
    aug_transforms,
)

ITEM_TFMS = [Resize, RandomResizedCrop, CropPad, RandomCrop]


@pytest.mark.parametrize("tfm", [*ITEM_TFMS, RandomResizedCropGPU, Rotate, Zoom])
@pytest.mark.parametrize("size, bad", [(0, "0"), (-3, "-3"), (224.5, "224.5"), ((224, 0), "0"), ((-1, 32), "-1"),
                                       (float("nan"), "nan")])
def test_non_positive_or_fractional_size_refused(tfm, size, bad):
    with pytest.raises(ValueError, match=rf"{tfm.__name__}: size=.*is not a size in pixels") as e:
        tfm(size=size)
    assert bad in str(e.value) and "(224, 320)" in str(e.value)  # the value, and an example of the fix


@pytest.mark.parametrize("tfm", ITEM_TFMS)
@pytest.mark.parametrize("size", ["22", None, True, (224, "32")])
def test_non_number_size_refused(tfm, size):
    with pytest.raises(TypeError, match=rf"{tfm.__name__}: size={size!r}".replace("(", r"\(").replace(")", r"\)")):
        tfm(size=size)


@pytest.mark.parametrize("size", [(1, 2, 3), [224]])
def test_size_of_wrong_length_refused(size):
    with pytest.raises(ValueError, match=r"Resize: size=.* is neither one number nor a \(height, width\) pair"):
        Resize(size)


def test_ratio_resize_and_aug_transforms_name_the_bad_size():
    with pytest.raises(ValueError, match="RatioResize: max_sz=0 is not a size in pixels"):
        RatioResize(0)
    with pytest.raises(ValueError, match="aug_transforms: size=-5 is not a size in pixels"):
        aug_transforms(size=-5)
    with pytest.raises(ValueError, match=r"aug_transforms: size=\(0, 8\)"):
        aug_transforms(size=(0, 8), min_scale=0.5)


@pytest.mark.parametrize("size, hw", [(24, (24, 24)), (24.0, (24, 24)), (np.int64(24), (24, 24)),
                                      (torch.tensor(24), (24, 24)), ((np.int32(16), 24), (16, 24)),
                                      (torch.Size([16, 24]), (16, 24))])
def test_whole_sizes_of_any_type_resize_real_images(size, hw):
    rng = np.random.default_rng(0)
    img = PILImage.create(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    for tfm in (Resize(size), Resize(size, method="squish"), Resize(size, method="pad"), CropPad(size)):
        assert tfm.size == hw and all(type(v) is int for v in tfm.size)
        out = tfm(img, split_idx=1)
        assert isinstance(out, Image.Image) and out.size == (hw[1], hw[0])  # PIL gives (w, h)
    assert RatioResize(30.0)(img).size == (30, 20)
