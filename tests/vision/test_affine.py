"""The functional coordinate engine: matrices, one-interpolation sampling, points and boxes."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.vision.affine import (
    crop_mat,
    dihedral_mat,
    find_coeffs,
    flip_mat,
    identity_mat,
    mat_grid,
    rotate_mat,
    sample_with_mat,
    transform_bboxes,
    transform_points,
    warp_mat,
    zoom_mat,
)


def _img(bs=2, c=3, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(bs, c, h, w, generator=g)


def test_identity_is_exact():
    x = _img()
    out = sample_with_mat(x, identity_mat(2))
    torch.testing.assert_close(out, x)


def test_flip_matches_torch_flip():
    x = _img()
    out = sample_with_mat(x, flip_mat(torch.tensor([True, False])))
    torch.testing.assert_close(out[0], x[0].flip(-1))
    torch.testing.assert_close(out[1], x[1])


def test_dihedral_gives_the_eight_symmetries():
    x = _img(bs=1, h=8, w=8)
    outs = [sample_with_mat(x, dihedral_mat(torch.tensor([k])))[0] for k in range(8)]
    expected = []
    for t in (x[0], x[0].transpose(-1, -2)):
        for k in range(4):
            expected.append(torch.rot90(t, k, dims=(-2, -1)))
    for o in outs:
        assert any(torch.allclose(o, e, atol=1e-5) for e in expected)
    # all eight are different images
    assert len({tuple(o.flatten()[:20].tolist()) for o in outs}) == 8


def test_rotate_90_is_counter_clockwise_on_screen():
    x = _img(bs=1, h=9, w=9)
    out = sample_with_mat(x, rotate_mat(torch.tensor([90.0])))
    torch.testing.assert_close(out[0], torch.rot90(x[0], 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotation_of_a_rectangle_does_not_shear():
    # A centred horizontal bar of a wide image, turned 90 degrees, becomes a vertical bar of the same pixel length.
    h, w = 21, 41
    x = torch.zeros(1, 1, h, w)
    x[0, 0, 10, 15:26] = 1.0  # 11 pixels long
    out = sample_with_mat(x, rotate_mat(torch.tensor([90.0]), aspect=w / h), mode="nearest", pad_mode="zeros")
    rows = (out[0, 0] > 0.5).any(dim=1).nonzero().flatten()
    cols = (out[0, 0] > 0.5).any(dim=0).nonzero().flatten()
    assert len(cols) == 1 and cols.item() == 20
    assert abs(len(rows) - 11) <= 1


def test_zoom_magnifies_around_the_centre():
    x = torch.zeros(1, 1, 17, 17)
    x[0, 0, 6:11, 6:11] = 1.0  # 5x5 square in the middle
    out = sample_with_mat(x, zoom_mat(torch.tensor([2.0])), mode="nearest")
    side = (out[0, 0] > 0.5).sum(dim=0).max().item()
    assert 9 <= side <= 11


def test_composition_is_one_interpolation():
    # Rotate then zoom as one matrix equals the single combined transform, and is sharper than two resamplings.
    x = _img(bs=1, h=32, w=32, seed=3)
    r, z = rotate_mat(torch.tensor([20.0])), zoom_mat(torch.tensor([1.3]))
    once = sample_with_mat(x, r @ z)
    twice = sample_with_mat(sample_with_mat(x, r), z)
    assert (once - twice).abs().mean() > 0.01
    # a combined matrix built by hand: angle and scale in one
    th = math.radians(20)
    s = 1 / 1.3
    by_hand = torch.tensor([[[s * math.cos(th), -s * math.sin(th), 0], [s * math.sin(th), s * math.cos(th), 0],
                             [0, 0, 1]]])
    torch.testing.assert_close(once, sample_with_mat(x, by_hand), atol=1e-5, rtol=0)
    # two interpolations blur: less high-frequency energy than one
    def hf(t):
        return (t[..., 1:, :] - t[..., :-1, :]).abs().mean()
    assert hf(twice) < hf(once)


def test_masks_use_nearest_and_keep_dtype():
    m = torch.randint(0, 4, (2, 12, 12))
    out = sample_with_mat(m, rotate_mat(torch.tensor([30.0, -15.0])))
    assert out.dtype == m.dtype
    assert set(out.unique().tolist()) <= set(m.unique().tolist())


def test_output_size_and_prefilter():
    x = _img(bs=2, h=64, w=48)
    out = sample_with_mat(x, identity_mat(2), size=(16, 12))
    assert out.shape == (2, 3, 16, 12)
    # a constant image stays constant through the area prefilter
    c = torch.full((1, 3, 64, 64), 0.25)
    torch.testing.assert_close(sample_with_mat(c, zoom_mat(torch.tensor([1.2])), size=(8, 8)),
                               torch.full((1, 3, 8, 8), 0.25))


def test_points_follow_pixels():
    h = w = 33
    x = torch.zeros(1, 1, h, w)
    px, py = 24, 9
    x[0, 0, py, px] = 1.0
    mat = rotate_mat(torch.tensor([35.0])) @ zoom_mat(torch.tensor([1.2]), 0.4, 0.6) @ warp_mat(
        torch.tensor([0.1]), torch.tensor([-0.15]))
    out = sample_with_mat(x, mat, pad_mode="zeros")
    idx = out[0, 0].flatten().argmax()
    oy, ox = divmod(idx.item(), w)
    pt = torch.tensor([[[px / (w - 1) * 2 - 1, py / (h - 1) * 2 - 1]]])  # align_corners=True normalisation
    moved = transform_points(pt, mat)[0, 0]
    mx, my = (moved[0] + 1) / 2 * (w - 1), (moved[1] + 1) / 2 * (h - 1)
    assert abs(mx - ox) <= 1.0 and abs(my - oy) <= 1.0


def test_bboxes_flip_and_padding_rows():
    boxes = torch.tensor([[[-0.5, -0.5, 0.0, 0.25], [0.0, 0.0, 0.0, 0.0]]])
    out = transform_bboxes(boxes, flip_mat(torch.tensor([True])))
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, -0.5, 0.5, 0.25]))
    torch.testing.assert_close(out[0, 1], torch.zeros(4))


def test_crop_mat_samples_the_window():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # left half, top half: the 2x2 top-left block at output size 2x2
    out = sample_with_mat(x, crop_mat(torch.tensor([1 / 3]), torch.tensor([1 / 3]), torch.tensor([0.0]),
                                      torch.tensor([0.0])), size=(2, 2))
    torch.testing.assert_close(out[0, 0], torch.tensor([[0.0, 1.0], [4.0, 5.0]]))


def test_warp_zero_is_identity_and_grid_is_projective():
    m = warp_mat(torch.zeros(3), torch.zeros(3))
    torch.testing.assert_close(m, identity_mat(3), atol=1e-6, rtol=0)
    g = mat_grid(warp_mat(torch.tensor([0.2]), torch.tensor([0.0])), (5, 5))
    # corner (-1,-1) samples from (-1, -1.2)
    torch.testing.assert_close(g[0, 0, 0], torch.tensor([-1.0, -1.2]), atol=1e-5, rtol=0)


coords = st.floats(-0.3, 0.3, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(st.lists(coords, min_size=8, max_size=8))
def test_find_coeffs_maps_src_to_dst(d):
    src = torch.tensor([[[-1.0, -1], [-1, 1], [1, -1], [1, 1]]])
    dst = src + torch.tensor(d).view(1, 4, 2)
    h = find_coeffs(src, dst)
    ph = torch.cat([src, torch.ones(1, 4, 1)], -1) @ h.transpose(1, 2)
    torch.testing.assert_close(ph[..., :2] / ph[..., 2:], dst, atol=1e-4, rtol=0)


@settings(max_examples=30, deadline=None)
@given(st.floats(-45, 45), st.floats(1.0, 2.0), st.floats(0, 1), st.floats(0, 1))
def test_points_round_trip_through_inverse(deg, scale, cp, rp):
    mat = rotate_mat(torch.tensor([deg])) @ zoom_mat(torch.tensor([scale]), cp, rp)
    pts = torch.rand(1, 5, 2) * 2 - 1
    back = transform_points(transform_points(pts, mat), torch.linalg.inv(mat))
    torch.testing.assert_close(back, pts, atol=1e-4, rtol=0)
