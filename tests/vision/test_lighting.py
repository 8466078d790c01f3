"""The functional lighting engine: logit-space brightness/contrast, colour matrices, HSV."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.vision.lighting import (
    apply_lighting,
    cutout_gaussian,
    grayscale,
    hsv2rgb,
    hue_mat,
    rgb2hsv,
    saturation_mat,
)


def _img(bs=2):
    return torch.rand(bs, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.98 + 0.01


def test_neutral_lighting_is_identity():
    x = _img()
    out = apply_lighting(x, torch.full((2,), 0.5), torch.ones(2), saturation_mat(torch.ones(2)))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_brightness_and_contrast_stay_in_range_and_move_the_right_way():
    x = _img()
    brighter = apply_lighting(x, brightness=torch.full((2,), 0.8))
    assert (brighter >= x).all() and brighter.max() <= 1
    flatter = apply_lighting(x, contrast=torch.full((2,), 0.5))
    assert flatter.std() < x.std() and flatter.min() >= 0


def test_saturation_zero_is_gray_and_hue_keeps_gray():
    x = _img()
    gray = apply_lighting(x, color=saturation_mat(torch.zeros(2)))
    torch.testing.assert_close(gray, grayscale(x).expand_as(x), atol=1e-5, rtol=0)
    g = torch.full((1, 3, 4, 4), 0.3)
    torch.testing.assert_close(apply_lighting(g, color=hue_mat(torch.tensor([0.25]))), g, atol=1e-5, rtol=0)


def test_hue_full_turn_is_identity():
    x = _img()
    torch.testing.assert_close(apply_lighting(x, color=hue_mat(torch.ones(2))), x, atol=1e-4, rtol=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_hsv_round_trip(seed):
    x = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(hsv2rgb(rgb2hsv(x)), x, atol=1e-5, rtol=0)


def test_rgb2hsv_known_colours():
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    torch.testing.assert_close(rgb2hsv(red).flatten(), torch.tensor([0.0, 1, 1]))
    blue = torch.tensor([0.0, 0, 0.5]).view(1, 3, 1, 1)
    torch.testing.assert_close(rgb2hsv(blue).flatten(), torch.tensor([2 / 3, 1, 0.5]))


def test_cutout_fills_only_the_area():
    x = torch.zeros(3, 10, 10)
    cutout_gaussian(x, [(slice(2, 5), slice(3, 7))])
    assert (x[:, 2:5, 3:7] != 0).any()
    x[:, 2:5, 3:7] = 0
    assert (x == 0).all()


def test_bad_shapes_are_rejected():
    import pytest

    with pytest.raises(ValueError, match="bs, c, h, w"):
        apply_lighting(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="3-channel"):
        apply_lighting(torch.rand(1, 1, 4, 4), color=hue_mat(torch.zeros(1)))
