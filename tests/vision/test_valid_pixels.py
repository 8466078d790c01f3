"""Validation-time item transforms cut fastai's window out of the image, pad it as fastai does and resize the cut-out
window (AUDIT C8). Pattern images (red = column, green = row) read the window's position pixel by pixel; the
resized cases are checked against the documented rule (crop, pad, then one Pillow resize of the window) and against
row/column means recorded from fastai 2.8.12 on the audit's 30x50 image."""

import numpy as np
import pytest
from PIL import Image

from tiers.vision.core import PILImage, PILMask
from tiers.vision.item_tfms import CropPad, RandomResizedCrop, RatioResize, Resize


def _pattern(h: int, w: int) -> PILImage:
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.arange(w)[None]  # red: the source column
    a[..., 1] = np.arange(h)[:, None]  # green: the source row
    return PILImage.create(a)


def _cols_rows(im: Image.Image) -> tuple[list[int], list[int]]:
    a = np.asarray(im)
    return a[0, :, 0].tolist(), a[:, 0, 1].tolist()


def _noise(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_reflection_padding_mirrors_about_the_edge_pixel():
    # 4 wide, 6 tall, padded to 6x6: the window starts one column left of the image (tl = int(0.5 * (4 - 6)))
    out = Resize(6, method="pad", pad_mode="reflection")(_pattern(6, 4), split_idx=1)
    cols, rows = _cols_rows(out)
    assert cols == [1, 0, 1, 2, 3, 2], "mirrored without repeating the edge column (fastai / torchvision 'reflect')"
    assert rows == [0, 1, 2, 3, 4, 5]
    cols, rows = _cols_rows(CropPad((2, 8), pad_mode="reflection")(_pattern(6, 4)))
    assert cols == [2, 1, 0, 1, 2, 3, 2, 1] and rows == [2, 3]  # top-left = (orig - size) // 2 = (2, -2)
    # border still repeats the edge, zeros stay black
    assert _cols_rows(CropPad((2, 8), pad_mode="border")(_pattern(6, 4)))[0] == [0, 0, 0, 1, 2, 3, 3, 3]


def test_centre_crop_window_without_resizing():
    cols, rows = _cols_rows(Resize(30)(_pattern(30, 50), split_idx=1))
    assert cols == list(range(10, 40)) and rows == list(range(30))
    cols, rows = _cols_rows(CropPad(7)(_pattern(10, 12)))  # top-left (1, 2): floor of half the spare pixels
    assert cols == list(range(2, 9)) and rows == list(range(1, 8))


@pytest.mark.parametrize(("hw", "size", "box", "out_wh"), [
    ((30, 50), 20, (10, 0, 40, 30), (20, 20)),
    ((30, 50), (16, 24), (2, 0, 47, 30), (24, 16)),  # window 45x30 at column int(0.5 * 5) = 2
    # 31/20 * 27 = 41.85: fastai truncates the window to 41 columns (42 when rounded), at column int(0.5 * 9) = 4
    ((31, 50), (20, 27), (4, 0, 45, 31), (27, 20)),
])
def test_resize_crop_resizes_the_cut_out_window(hw, size, box, out_wh):
    arr = _noise(*hw)
    out = np.asarray(Resize(size)(PILImage.create(arr), split_idx=1))
    # `resize(box=...)` of the whole image would blend in the pixels just outside the window at its edges
    ref = np.asarray(Image.fromarray(arr).crop(box).resize(out_wh, Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out, ref)
    mask = PILMask.create(arr[..., 0] // 64)
    out_m = np.asarray(Resize(size)(mask, split_idx=1))
    ref_m = np.asarray(Image.fromarray(arr[..., 0] // 64).crop(box).resize(out_wh, Image.Resampling.NEAREST))
    np.testing.assert_array_equal(out_m, ref_m)


def test_ratio_resize_truncates_the_short_side_and_centres_the_window():
    # 50x29 to a longer side of 20: 29 * 20 / 50 = 11.6 -> 11 rows; the 11:20 window is 50x27, centred (row 1)
    arr = _noise(29, 50)
    out = np.asarray(RatioResize(20)(PILImage.create(arr)))
    assert out.shape == (11, 20, 3)
    ref = np.asarray(Image.fromarray(arr).crop((0, 1, 50, 28)).resize((20, 11), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out, ref)


def test_random_resized_crop_valid_keeps_the_aspect_ratio():
    # tiers' documented difference (README "Where this layer differs"): the centre window of the target's aspect,
    # resized to size + val_xtra (20 + 8), then the centre 20x20; fastai squishes the whole image to 28x28 instead
    arr = _noise(30, 50)
    out = np.asarray(RandomResizedCrop(20)(PILImage.create(arr), split_idx=1))
    ref = Image.fromarray(arr).crop((10, 0, 40, 30)).resize((28, 28), Image.Resampling.BILINEAR).crop((4, 4, 24, 24))
    np.testing.assert_array_equal(out, np.asarray(ref))


# fastai 2.8.12's output on the audit's image (rng(0) 30x50x3), validation split: shape, row means, column means
FASTAI = {
    "Resize(20)": ([20, 20, 3],
                   [129.83, 137.5, 131.15, 133.93, 128.82, 131.12, 133.4, 132.87, 126.42, 123.28, 130.5, 121.38,
                    134.73, 130.22, 126.55, 131.05, 122.63, 118.63, 123.57, 119.82],
                   [124.55, 127.27, 127.95, 122.1, 131.6, 135.98, 129.35, 121.1, 126.28, 132.55, 125.93, 135.17,
                    134.73, 124.27, 126.65, 133.95, 120.77, 125.08, 131.43, 130.68]),
    "Resize((16,24))": ([16, 24, 3],
                        [133.43, 134.06, 129.85, 129.67, 131.03, 130.57, 130.85, 124.49, 132.1, 129.25, 131.5,
                         124.94, 130.26, 119.82, 119.72, 121.0],
                        [132.83, 126.56, 120.04, 133.85, 128.31, 127.54, 125.19, 127.62, 134.17, 129.21, 121.69,
                         131.15, 126.88, 135.48, 130.46, 124.96, 132.85, 121.6, 127.92, 131.5, 128.94, 130.52,
                         121.42, 128.1]),
    "Resize(20, method='pad', pad_mode='reflection')": (
        [20, 20, 3],
        [131.27, 128.77, 129.68, 132.45, 133.73, 130.2, 128.82, 131.07, 130.58, 126.75, 130.13, 131.87, 126.82, 125.5,
         118.93, 121.28, 120.5, 119.68, 127.28, 128.7],
        [118.27, 128.15, 121.15, 131.28, 126.62, 128.68, 128.78, 132.4, 123.7, 130.87, 129.75, 132.45, 125.82, 128.57,
         126.23, 129.98, 129.65, 123.38, 129.93, 128.35]),
}


@pytest.mark.parametrize("expr", list(FASTAI))
def test_validation_pixels_match_fastai(expr):
    out = np.asarray(eval(expr)(PILImage.create(_noise(30, 50)), split_idx=1)).astype(float)
    shape, rows, cols = FASTAI[expr]
    assert list(out.shape) == shape
    assert out.mean(axis=(1, 2)).tolist() == pytest.approx(rows, abs=0.5)
    assert out.mean(axis=(0, 2)).tolist() == pytest.approx(cols, abs=0.5)
