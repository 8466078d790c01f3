"""Audit: item transforms produce fastai 2.8.12's pixels on the validation path where tiers means to match (squish,
zero/border padding, CropPad, RatioResize): the output shape and its row and column means, recorded by running the
same transforms with fastai in the bench environment (means, not a hash: a Pillow release may move a resampled pixel
by one level; a shifted window or another filter moves the means far more). RandomResizedCrop's validation crop and
reflection padding differ on purpose or by rounding: see the audit notes (C8)."""

import numpy as np
import pytest

from tiers.vision.all import CropPad, PILImage, RatioResize, Resize

FASTAI = {'croppad_big': ([40, 40, 3],
                 [0.0, 0.0, 0.0, 0.0, 0.0, 133.21, 131.91, 136.07, 132.53, 126.12, 137.37, 125.97, 125.51,
                  128.93, 141.22, 121.18, 134.97, 132.8, 113.86, 123.41, 138.93, 126.64, 120.62, 139.57,
                  132.68, 128.65, 122.48, 127.51, 135.95, 119.47, 118.93, 119.05, 120.82, 125.14, 118.86, 0.0,
                  0.0, 0.0, 0.0, 0.0],
                 [96.6, 84.73, 93.46, 102.56, 102.31, 96.77, 87.06, 99.91, 97.48, 91.48, 89.1, 103.17, 94.64,
                  106.85, 99.88, 88.96, 91.72, 91.5, 101.11, 99.81, 92.85, 95.2, 104.0, 105.92, 91.95, 94.39,
                  90.32, 102.47, 100.72, 94.03, 81.78, 100.12, 96.92, 100.79, 96.4, 93.64, 104.46, 96.88,
                  90.8, 87.62]),
 'croppad_small': ([10, 10, 3], [122.47, 133.53, 140.23, 114.2, 116.8, 141.5, 118.17, 121.73, 127.37, 116.6],
                   [108.1, 115.3, 115.63, 122.67, 129.37, 110.9, 122.93, 153.13, 146.43, 128.13]),
 'ratio_resize': ([15, 25, 3],
                  [133.71, 131.19, 130.08, 128.01, 132.15, 130.15, 127.31, 130.36, 128.28, 132.89, 126.51,
                   128.32, 119.55, 119.87, 121.31],
                  [117.04, 130.49, 125.62, 122.36, 134.2, 126.02, 129.02, 124.02, 131.44, 134.13, 122.18,
                   128.2, 129.09, 132.8, 132.22, 125.11, 132.56, 121.49, 129.44, 130.24, 131.2, 125.71, 124.8,
                   132.96, 127.09]),
 'resize_pad_border': ([20, 20, 3],
                       [132.0, 132.0, 132.0, 132.0, 133.35, 130.2, 128.82, 131.07, 130.58, 126.75, 130.13,
                        131.87, 126.82, 125.5, 118.93, 121.15, 120.7, 120.7, 120.7, 120.7],
                       [116.57, 135.35, 129.12, 136.42, 117.65, 112.42, 126.07, 140.07, 129.68, 132.58,
                        128.42, 129.3, 121.42, 123.63, 113.93, 131.87, 133.73, 130.4, 130.28, 127.07]),
 'resize_pad_zeros': ([20, 20, 3],
                      [0.0, 0.0, 0.0, 15.85, 117.38, 130.2, 128.82, 131.07, 130.58, 126.75, 130.13, 131.87,
                       126.82, 125.5, 118.93, 106.67, 14.5, 0.0, 0.0, 0.0],
                      [71.65, 78.2, 73.2, 79.38, 75.65, 75.92, 77.0, 80.13, 73.78, 77.97, 77.87, 79.88, 75.63,
                       77.22, 74.92, 78.3, 78.72, 74.27, 78.12, 77.27]),
 'resize_squish_reflection': ([20, 20, 3],
                              [133.52, 133.05, 129.1, 130.8, 127.28, 130.38, 132.47, 129.5, 129.37, 124.82,
                               133.92, 125.87, 134.18, 129.95, 124.32, 130.15, 118.98, 119.05, 120.52,
                               121.5],
                              [119.47, 130.18, 121.9, 132.37, 126.32, 126.7, 128.28, 133.45, 123.05, 129.87,
                               129.67, 133.18, 126.15, 128.63, 125.1, 130.55, 131.15, 123.67, 130.18,
                               128.85])}

TFMS = {
    "resize_pad_zeros": lambda: Resize(20, method="pad", pad_mode="zeros"),
    "resize_pad_border": lambda: Resize(20, method="pad", pad_mode="border"),
    "resize_squish_reflection": lambda: Resize(20, method="squish", pad_mode="reflection"),
    "croppad_big": lambda: CropPad(40),
    "croppad_small": lambda: CropPad(10),
    "ratio_resize": lambda: RatioResize(25),
}


@pytest.mark.parametrize("name", list(TFMS))
def test_validation_pixels_are_fastais(name):
    arr = np.random.default_rng(0).integers(0, 256, (30, 50, 3)).astype(np.uint8)
    out = np.asarray(TFMS[name]()(PILImage.create(arr), split_idx=1)).astype(float)
    shape, rows, cols = FASTAI[name]
    assert list(out.shape) == shape
    assert out.mean(axis=(1, 2)).tolist() == pytest.approx(rows, abs=0.5)
    assert out.mean(axis=(0, 2)).tolist() == pytest.approx(cols, abs=0.5)
