"""Batch augmentation transforms: composition into one resampling, targets, splits, draws, lighting."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.tensors import TensorBBox, TensorImage, TensorImageBW, TensorMask, TensorPoint
from tiers.vision import (
    AffineCoordTfm,
    Brightness,
    Contrast,
    DeterministicDihedral,
    DeterministicFlip,
    Dihedral,
    Flip,
    Hue,
    LightingTfm,
    RandomErasing,
    RandomResizedCropGPU,
    Rotate,
    Saturation,
    Warp,
    Zoom,
    aug_transforms,
    norm_apply_denorm,
    setup_aug_tfms,
)
from tiers.vision.affine import rotate_mat, sample_with_mat, zoom_mat


def _batch(bs=4, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorImage(torch.rand(bs, 3, h, w, generator=g))


def _apply(tfms, b, split_idx=0):
    for t in tfms:
        b = t(b, split_idx=split_idx)
    return b


def test_aug_transforms_merges_into_two():
    tfms = aug_transforms()
    assert [type(t).__name__ for t in tfms] == ["Flip", "Brightness"]
    assert len(tfms[0].mat_fs) == 4 and len(tfms[1].fs) == 2  # flip, warp, rotate, zoom / brightness, contrast
    assert [type(t).__name__ for t in aug_transforms(flip_vert=True, max_lighting=0)] == ["Dihedral"]
    tfms = aug_transforms(size=8, min_scale=0.5, xtra_tfms=[RandomErasing()])
    assert [type(t).__name__ for t in tfms] == ["RandomResizedCropGPU", "Brightness", "RandomErasing"]
    with pytest.raises(ValueError, match="needs a target size"):
        aug_transforms(min_scale=0.5)


def test_rotate_then_zoom_composed_is_one_resampling():
    # The acceptance test: composing Rotate and Zoom gives exactly the single combined transform, and differs
    # from applying them one after the other (two interpolations).
    x = _batch(bs=2, h=32, w=32, seed=1)
    rot = Rotate(max_deg=30, p=1.0, draw=[20.0, -25.0])
    zoom = Zoom(max_zoom=1.5, p=1.0, draw=[1.3, 1.2], draw_x=0.5, draw_y=0.5)
    composed = setup_aug_tfms([Rotate(max_deg=30, p=1.0, draw=[20.0, -25.0]),
                               Zoom(max_zoom=1.5, p=1.0, draw=[1.3, 1.2], draw_x=0.5, draw_y=0.5)])
    assert len(composed) == 1
    once = composed[0](x, split_idx=0)
    combined = rotate_mat(torch.tensor([20.0, -25.0])) @ zoom_mat(torch.tensor([1.3, 1.2]))
    torch.testing.assert_close(once.as_subclass(torch.Tensor), sample_with_mat(x.as_subclass(torch.Tensor), combined),
                               atol=1e-5, rtol=0)
    twice = zoom(rot(x, split_idx=0), split_idx=0)
    assert (once - twice).abs().mean() > 0.01
    # by hand: the matrix of a rotation by 20 degrees and a zoom by 1.3 about the centre
    th, s = math.radians(20), 1 / 1.3
    by_hand = torch.tensor([[s * math.cos(th), -s * math.sin(th), 0], [s * math.sin(th), s * math.cos(th), 0],
                            [0, 0, 1]])
    torch.testing.assert_close(combined[0], by_hand, atol=1e-6, rtol=0)


def test_targets_follow_the_image():
    bs, h, w = 4, 24, 24
    img = torch.zeros(bs, 3, h, w)
    mask = torch.zeros(bs, h, w, dtype=torch.long)
    img[:, :, 6:10, 14:18] = 1.0
    mask[:, 6:10, 14:18] = 2
    pts = TensorPoint(torch.tensor([[[(16 - 0.5) / (w - 1) * 2 - 1, (8 - 0.5) / (h - 1) * 2 - 1]]] * bs),
                      img_size=(w, h))
    box = TensorBBox(torch.tensor([[[14 / (w - 1) * 2 - 1, 6 / (h - 1) * 2 - 1, 17 / (w - 1) * 2 - 1,
                                     9 / (h - 1) * 2 - 1]]] * bs), img_size=(w, h))
    torch.manual_seed(0)
    tfms = aug_transforms(max_rotate=30, max_warp=0.3, max_zoom=1.3, p_affine=1.0, max_lighting=0, pad_mode="zeros")
    oi, om, op, ob = _apply(tfms, (TensorImage(img), TensorMask(mask), pts, box))
    assert type(om) is TensorMask and om.dtype == torch.long and set(om.unique().tolist()) <= {0, 2}
    for i in range(bs):
        # the mask moved exactly with the bright square (both nearest/bilinear of the same grid)
        bright = oi[i, 0] > 0.5
        agree = (bright == (om[i] == 2)).float().mean()
        assert agree > 0.97
        ys, xs = torch.nonzero(om[i] == 2, as_tuple=True)
        cx, cy = xs.float().mean(), ys.float().mean()
        px = (op[i, 0, 0] + 1) / 2 * (w - 1)
        py = (op[i, 0, 1] + 1) / 2 * (h - 1)
        assert abs(px - cx) < 1.5 and abs(py - cy) < 1.5
        x0, y0, x1, y1 = ((ob[i, 0] + 1) / 2 * (w - 1)).tolist()
        assert x0 - 1.5 <= xs.min() and xs.max() <= x1 + 1.5 and y0 - 1.5 <= ys.min() and ys.max() <= y1 + 1.5


def test_validation_only_resizes():
    x = _batch(h=20, w=30)
    tfms = aug_transforms(size=(10, 12))
    v = _apply(tfms, x, split_idx=1)
    assert v.shape == (4, 3, 10, 12)
    assert torch.equal(_apply(tfms, v, split_idx=1), _apply(aug_transforms(size=(10, 12)), v, split_idx=1))
    # no size: validation batches go through untouched (same object)
    same = aug_transforms()
    assert _apply(same, x, split_idx=1) is x


def test_points_get_the_output_size():
    pts = TensorPoint(torch.zeros(2, 3, 2), img_size=(30, 20))
    img = _batch(bs=2, h=20, w=30)
    _, p = AffineCoordTfm(size=(8, 10))((img, pts), split_idx=1)
    assert p.img_size == (10, 8)


def test_draw_overrides_p_and_batch():
    x = _batch()
    flipped = Flip(p=1.0, draw=[1, 0, 1, 0])(x, split_idx=0)
    torch.testing.assert_close(flipped[0], x[0].flip(-1))
    torch.testing.assert_close(flipped[1], x[1])
    assert torch.equal(Rotate(p=0.0)(x, split_idx=0), x)
    torch.manual_seed(1)
    same = Rotate(max_deg=40, p=1.0, batch=True)(TensorImage(x[:1].expand(4, -1, -1, -1).clone()), split_idx=0)
    assert all(torch.allclose(same[0], same[i], atol=1e-6) for i in range(4))
    with pytest.raises(ValueError, match="one per item"):
        Flip(p=1.0, draw=[1, 0])(x, split_idx=0)


def test_deterministic_flips_cycle():
    x = _batch(bs=2)
    f = DeterministicFlip()
    outs = [f(x, split_idx=0) for _ in range(3)]
    assert torch.equal(outs[0], x) and torch.allclose(outs[1], x.flip(-1), atol=1e-5) and torch.equal(outs[2], x)
    d = DeterministicDihedral()
    results = [d(x, split_idx=0) for _ in range(8)]
    assert len({tuple(r[0, 0, 0, :3].tolist()) + tuple(r[0, 0, :3, 0].tolist()) for r in results}) == 8


def test_dihedral_warp_and_crop_shapes():
    x = _batch(h=16, w=16)
    assert Dihedral(p=1.0)(x, split_idx=0).shape == x.shape
    assert Warp(magnitude=0.4, p=1.0)(x, split_idx=0).shape == x.shape
    c = RandomResizedCropGPU((8, 12), min_scale=0.3)
    assert c(x, split_idx=0).shape == (4, 3, 8, 12) and c(x, split_idx=1).shape == (4, 3, 8, 12)


def test_masks_with_channel_axis_and_soft_masks():
    m = TensorMask(torch.randint(0, 3, (2, 1, 12, 12)))
    out = Rotate(p=1.0, draw=30.0)(m, split_idx=0)
    assert out.shape == (2, 1, 12, 12) and out.dtype == m.dtype


def test_lighting_composes_and_stays_in_range():
    x = _batch()
    tfms = setup_aug_tfms([Brightness(p=1.0), Contrast(p=1.0), Saturation(p=1.0), Hue(p=1.0)])
    assert len(tfms) == 1 and isinstance(tfms[0], LightingTfm) and len(tfms[0].fs) == 4
    out = tfms[0](x, split_idx=0)
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, x)
    assert torch.equal(tfms[0](x), x), "lighting runs on the training set only"
    bright = Brightness(p=1.0, draw=0.8)(x, split_idx=0)
    assert (bright >= x - 1e-6).all()
    # one channel: saturation and hue are skipped, brightness still applies
    bw = TensorImageBW(torch.rand(2, 1, 4, 4))
    assert torch.allclose(Saturation(p=1.0, draw=0.2)(bw, split_idx=0), bw, atol=1e-5)
    assert not torch.allclose(Brightness(p=1.0, draw=0.8)(bw, split_idx=0), bw)
    with pytest.raises(ValueError, match="max_lighting"):
        Brightness(max_lighting=1.5)


def test_random_erasing_per_item():
    random_state = torch.get_rng_state()
    x = TensorImage(torch.zeros(6, 3, 10, 10))
    import random

    random.seed(0)
    out = RandomErasing(p=1.0, sl=0.1, sh=0.3, max_count=2)(x, split_idx=0)
    changed = [(out[i] != 0).any().item() for i in range(6)]
    assert all(changed)
    areas = [(out[i, 0] != 0).sum().item() for i in range(6)]
    assert len(set(areas)) > 1, "each image gets its own rectangles"
    torch.set_rng_state(random_state)


def test_transforms_pickle_with_their_composition():
    import pickle

    tfms = aug_transforms(size=12, min_scale=0.5, flip_vert=True, xtra_tfms=[Saturation(), Hue(), RandomErasing()])
    tfms += [DeterministicFlip()]
    clones = pickle.loads(pickle.dumps(tfms))
    x = _batch()
    assert [type(t) for t in clones] == [type(t) for t in tfms]
    assert _apply(clones, x).shape == (4, 3, 12, 12)


def test_bad_inputs():
    with pytest.raises(TypeError, match="batch_tfms"):
        Flip(p=1.0)([1, 2], split_idx=0)
    with pytest.raises(ValueError, match="mode"):
        Flip(mode="area")
    with pytest.raises(ValueError, match="min_zoom"):
        Zoom(min_zoom=2.0, max_zoom=1.0)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 1000), st.floats(0, 45), st.floats(1.0, 1.5), st.floats(0, 0.3))
def test_identity_draws_leave_the_batch_unchanged(seed, deg, zoom, warp):
    x = _batch(bs=2, seed=seed)
    tfms = aug_transforms(max_rotate=deg, max_zoom=zoom, max_warp=warp, p_affine=0.0, do_flip=False,
                          max_lighting=0)
    assert torch.equal(_apply(tfms, x), x) or torch.allclose(_apply(tfms, x, split_idx=0), x, atol=1e-5)


def test_norm_apply_denorm_round_trips():
    from tiers.data import Normalize

    nrm = Normalize.from_stats([0.5, 0.5, 0.5], [0.25, 0.25, 0.25], cuda=False)
    x = _batch()
    y = nrm(x)
    torch.testing.assert_close(norm_apply_denorm(y, lambda t: t, nrm), y, atol=1e-5, rtol=0)
    flipped = norm_apply_denorm(y, lambda t: t.flip(-1), nrm)
    torch.testing.assert_close(flipped, y.flip(-1), atol=1e-5, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_batch_device():
    x = _batch(bs=4, h=20, w=20)
    pts = TensorPoint(torch.rand(4, 3, 2) * 2 - 1, img_size=(20, 20))
    tfms = [Rotate(p=1.0, draw=[10.0, -20.0, 30.0, 0.0], size=12), Warp(p=1.0, draw_x=0.1, draw_y=-0.1),
            Brightness(p=1.0, draw=0.7)]
    cpu = _apply(setup_aug_tfms(tfms), (x, pts))
    tfms = [Rotate(p=1.0, draw=[10.0, -20.0, 30.0, 0.0], size=12), Warp(p=1.0, draw_x=0.1, draw_y=-0.1),
            Brightness(p=1.0, draw=0.7)]
    gpu = _apply(setup_aug_tfms(tfms), (x.cuda(), pts.cuda()))
    assert all(o.device.type == "cuda" for o in gpu)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu().as_subclass(torch.Tensor), a.as_subclass(torch.Tensor), atol=1e-4, rtol=0)
