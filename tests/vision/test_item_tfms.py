"""Item transforms (PIL, points, boxes) and the point/box targets."""

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from tiers.tensors import TensorBBox, TensorImage, TensorPoint
from tiers.vision.core import PILImage, PILMask
from tiers.vision.item_tfms import (
    CropPad,
    DihedralItem,
    FlipItem,
    PadMode,
    RandomCrop,
    RandomResizedCrop,
    RatioResize,
    Resize,
    ResizeMethod,
    crop_pad,
)
from tiers.vision.targets import LabeledBBox, PointScaler, bb_pad, clip_remove_empty


def _img(h=30, w=40):
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.arange(w)[None] * 5  # red grows left to right
    a[..., 1] = np.arange(h)[:, None] * 5  # green grows top to bottom
    return PILImage.create(a)


@pytest.mark.parametrize("method", [ResizeMethod.Crop, ResizeMethod.Pad, ResizeMethod.Squish])
def test_resize_methods_give_the_size(method):
    im = _img()
    for split in (0, 1):
        out = Resize((16, 24), method=method)(im, split_idx=split)
        assert type(out) is PILImage and out.shape == (16, 24)


def test_resize_crop_is_centred_on_valid_and_pad_keeps_everything():
    im = _img(30, 60)
    out = Resize(30, method="crop")(im, split_idx=1)
    # the centre window of a 30x60 image to 30x30: columns 15..44
    red = np.asarray(out)[0, :, 0]
    assert red[0] == 15 * 5 and red[-1] == 44 * 5
    padded = Resize(60, method="pad", pad_mode=PadMode.Zeros)(im, split_idx=1)
    a = np.asarray(padded)
    assert (a[:15] == 0).all() and (a[-15:] == 0).all() and a[30, 59, 0] > 0


def test_masks_use_nearest_whatever_the_method():
    m = PILMask.create(np.random.default_rng(0).integers(0, 4, (30, 40)))
    for t in (Resize(17), RandomResizedCrop(13, min_scale=0.3), RatioResize(21), CropPad(50)):
        out = t(m, split_idx=0)
        assert type(out) is PILMask and set(np.unique(np.asarray(out))) <= {0, 1, 2, 3}


def test_image_and_mask_get_the_same_window():
    blocks = np.random.default_rng(1).integers(0, 255, (4, 5), dtype=np.uint8)
    a = np.kron(blocks, np.ones((10, 10), np.uint8))  # 10-pixel blocks: resampling keeps them
    im = PILImage.create(np.stack([a] * 3, -1))
    m = PILMask.create((a > 127).astype(np.uint8))
    for t in (Resize(20, method="crop"), RandomCrop(17), RandomResizedCrop(25, min_scale=0.2)):
        oi, om = t((im, m), split_idx=0)
        # nearest-resampled mask agrees with the thresholded image almost everywhere
        agree = ((np.asarray(oi)[..., 0] > 127) == (np.asarray(om) > 0)).mean()
        assert agree > 0.9, (t, agree)


def test_random_resized_crop_valid_is_deterministic():
    t = RandomResizedCrop(16)
    im = _img()
    a, b = np.asarray(t(im, split_idx=1)), np.asarray(t(im, split_idx=1))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="min_scale"):
        RandomResizedCrop(16, min_scale=0)


def test_crop_pad_modes():
    im = _img(10, 10)
    for mode in (PadMode.Zeros, PadMode.Border, PadMode.Reflection):
        out = crop_pad(im, (20, 20), pad_mode=mode)
        assert out.shape == (20, 20)
    border = np.asarray(crop_pad(im, (14, 14), pad_mode=PadMode.Border))
    assert (border[0, 2:12] == border[2, 2:12]).all()
    with pytest.raises(ValueError, match="pad_mode"):
        CropPad(5, pad_mode="wrap")


def test_flip_item_on_every_type():
    im = _img(4, 6)
    out = FlipItem(p=1.0)(im, split_idx=0)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(im)[:, ::-1])
    t = FlipItem(p=1.0)
    pts = TensorPoint(torch.tensor([[-0.5, 0.25]]), img_size=(6, 4))
    assert t(pts, split_idx=0).tolist() == [[0.5, 0.25]]
    box = TensorBBox(torch.tensor([[-0.8, -0.2, 0.2, 0.4]]), img_size=(6, 4))
    torch.testing.assert_close(t(box, split_idx=0), TensorBBox(torch.tensor([[-0.2, -0.2, 0.8, 0.4]])))
    assert FlipItem(p=1.0)(im) is im, "a training-only transform does nothing without split_idx"
    ti = TensorImage(torch.arange(6.0).view(1, 2, 3))
    assert t(ti, split_idx=0)[0, 0].tolist() == [2.0, 1.0, 0.0]


def test_dihedral_item_images_and_points_agree():
    a = np.zeros((5, 7, 3), np.uint8)
    a[1, 5] = 255  # one bright pixel at x=5, y=1
    im = PILImage.create(a)
    pt = TensorPoint(torch.tensor([[5 / 3 - 1, 1 / 2 - 1]]), img_size=(7, 5))  # centre of pixel (5, 1), align_corners
    t = DihedralItem()
    for k in range(8):
        t.k = k
        out_im, out_pt = t.encodes(im), t.encodes(pt)
        h, w = out_im.shape
        y, x = np.argwhere(np.asarray(out_im)[..., 0] == 255)[0]
        px = (out_pt[0, 0].item() + 1) / 2 * (w - 1)
        py = (out_pt[0, 1].item() + 1) / 2 * (h - 1)
        assert (round(px), round(py)) == (x, y), k
        assert tuple(out_pt.img_size) == (w, h)


def test_point_scaler_round_trip_and_resize_moves_points():
    im = _img(30, 60)
    pts = TensorPoint.create([[0, 0], [60, 30], [30, 15]])
    ps = PointScaler()
    x = ps((im, pts))
    torch.testing.assert_close(x[1].as_subclass(torch.Tensor), torch.tensor([[-1.0, -1], [1, 1], [0, 0]]))
    # squish to 20x20: points keep their relative place and decode to the new pixels
    y = Resize(20, method="squish")(x, split_idx=1)
    assert y[1].img_size == (20, 20)
    dec = ps.decode(y)[1]
    torch.testing.assert_close(dec.as_subclass(torch.Tensor), torch.tensor([[0.0, 0], [20, 20], [10, 10]]))
    # y_first reads (row, col)
    yf = PointScaler(y_first=True)((im, TensorPoint.create([[30, 0]])))[1]
    torch.testing.assert_close(yf.as_subclass(torch.Tensor), torch.tensor([[-1.0, 1.0]]))
    with pytest.raises(ValueError, match="img_size"):
        PointScaler()(TensorPoint.create([[1, 2]]))


def test_boxes_follow_a_crop():
    im = _img(40, 40)
    box = TensorBBox.create([[10, 10, 30, 30]])
    x = PointScaler()((im, box))
    y = CropPad(20)(x)  # the centre 20x20: the box covers it all
    torch.testing.assert_close(y[1].as_subclass(torch.Tensor), torch.tensor([[-1.0, -1, 1, 1]]))


@settings(max_examples=30, deadline=None)
@given(st.integers(8, 60), st.integers(8, 60), st.integers(4, 30), st.integers(4, 30),
       st.sampled_from(["crop", "pad", "squish"]))
@example(15, 8, 11, 6, "pad")  # 15/11*11 is 14.999999999999998 in floats: the window must keep all 15 rows
def test_resize_property_size_and_point_range(h, w, th, tw, method):
    im = PILImage.create(np.zeros((h, w, 3), np.uint8))
    pts = PointScaler()((im, TensorPoint.create([[0, 0], [w, h]])))[1]
    out_im, out_pt = Resize((th, tw), method=method)((im, pts), split_idx=0)
    assert out_im.shape == (th, tw)
    p = out_pt.as_subclass(torch.Tensor)
    if method == "squish":
        torch.testing.assert_close(p, torch.tensor([[-1.0, -1], [1, 1]]))
    elif method == "pad":  # everything stays visible
        assert (p.abs() <= 1 + 1e-5).all()
    else:  # cropping only cuts: the image corners go outward
        assert (p[0] <= -1 + 1e-5).all() and (p[1] >= 1 - 1e-5).all()


def test_clip_remove_empty_and_bb_pad():
    b = TensorBBox(torch.tensor([[-2.0, -0.5, 0.5, 0.5], [0.2, 0.2, 0.2, 0.9]]))
    lbl = torch.tensor([1, 2])
    cb, cl = clip_remove_empty(b, lbl)
    assert cb.tolist() == [[-1.0, -0.5, 0.5, 0.5]] and cl.tolist() == [1]
    img = TensorImage(torch.zeros(3, 4, 4))
    samples = [(img, b, lbl), (img, TensorBBox(torch.tensor([[0.0, 0, 0.5, 0.5]])), torch.tensor([3]))]
    padded = bb_pad(samples)
    assert [len(s[1]) for s in padded] == [1, 1]
    three = [(img, TensorBBox(torch.rand(3, 2).repeat(1, 2) * 0 + torch.tensor([-0.5, -0.5, 0.5, 0.5])),
              torch.tensor([1, 2, 3])), samples[1]]
    padded = bb_pad(three, pad_idx=0)
    assert padded[1][1].shape == (3, 4) and padded[1][2].tolist() == [3, 0, 0]
    assert (padded[1][1][1:] == 0).all()


def test_labeled_bbox_shows_captions():
    import matplotlib.pyplot as plt

    lb = LabeledBBox(TensorBBox(torch.tensor([[1.0, 1, 5, 5], [0, 0, 0, 0]])), ["circle", "#na#"])
    ax = lb.show()
    assert [t.get_text() for t in ax.texts] == ["circle"]
    assert len(ax.patches) == 1
    plt.close("all")


def test_transforms_repr_shows_arguments_not_draws():
    t = Resize(20)
    t(Image.new("RGB", (5, 5)), split_idx=0)
    assert "size=(20, 20)" in repr(t) and "pcts" not in repr(t)
