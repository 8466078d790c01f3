"""show_image, show_images and the show methods of the semantic types (matplotlib on the Agg backend)."""

import numpy as np
import pytest
import torch

from tiers.tensors import (
    TensorBBox,
    TensorImage,
    TensorImageBW,
    TensorMask,
    TensorPoint,
    show_image,
    show_images,
    show_titled_image,
    subplots,
)


def test_show_image_chw_tensor(plt):
    im = torch.rand(3, 5, 7)
    ax = show_image(im, title="t", figsize=(2, 2))
    shown = ax.get_images()[0].get_array()
    assert shown.shape == (5, 7, 3)
    np.testing.assert_allclose(np.asarray(shown), im.permute(1, 2, 0).numpy())
    assert ax.get_title() == "t" and not ax.axison


def test_show_image_arrays_one_channel_and_ctx(plt):
    _, ax = plt.subplots()
    r = show_image(np.zeros((4, 4, 1)), ctx=ax, cmap="gray")
    assert r is ax and ax.get_images()[0].get_array().shape == (4, 4)
    assert ax.get_images()[0].get_cmap().name == "gray"
    ax2 = show_image(torch.zeros(1, 4, 4, dtype=torch.float16))
    assert ax2.get_images()[0].get_array().shape == (4, 4)
    with pytest.raises(ValueError, match="2 or 3 dimensions"):
        show_image(torch.zeros(2, 3, 4, 4))


def test_show_image_pil(plt):
    Image = pytest.importorskip("PIL.Image")
    ax = show_image(Image.new("RGB", (6, 4)))
    assert ax.get_images()[0].get_array().shape == (4, 6, 3)


def test_tensor_image_show_uses_show_args(plt):
    ax = TensorImageBW(torch.rand(1, 4, 4)).show()
    assert ax.get_images()[0].get_cmap().name == "Greys"
    ax = TensorImage(torch.rand(1, 4, 4)).show(cmap="magma", title="x")
    assert ax.get_images()[0].get_cmap().name == "magma" and ax.get_title() == "x"


def test_tensor_mask_show_over_image(plt):
    ax = TensorImage(torch.rand(3, 4, 4)).show()
    mask = TensorMask(torch.randint(0, 3, (4, 4)), codes=["a", "b", "c", "d"])
    mask.show(ctx=ax)
    ims = ax.get_images()
    assert len(ims) == 2
    assert ims[1].get_alpha() == 0.5 and ims[1].get_clim() == (0, 3)
    ax2 = TensorMask(torch.zeros(1, 4, 4, dtype=torch.long)).show()
    assert ax2.get_images()[0].get_cmap().name == "tab20"


def test_points_and_boxes_show(plt):
    _, ax = plt.subplots()
    pts = TensorPoint.create([[1, 2], [3, 4]], img_size=(8, 8))
    assert pts.shape == (2, 2) and pts.img_size == (8, 8) and pts.dtype == torch.float32
    pts.show(ctx=ax)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[1, 2], [3, 4]])
    box = TensorBBox.create([0, 0, 2, 3], img_size=(8, 8))
    assert box.shape == (1, 4)
    box.show(ctx=ax, color="red")
    rect = ax.patches[0]
    assert (rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()) == (0, 0, 2, 3)
    assert pts.show() is not None and box.show(figsize=(2, 2)) is not None


def test_show_images_grid_and_titles(plt):
    axs = show_images([torch.rand(3, 4, 4)] * 3, nrows=2, titles=["a", "b", "c"], imsize=1)
    assert axs.shape == (2, 2)
    assert [a.get_title() for a in axs.flatten()[:3]] == ["a", "b", "c"]
    assert not axs.flatten()[3].get_images()
    with pytest.raises(ValueError, match="titles"):
        show_images([torch.rand(3, 4, 4)], titles=["a", "b"])
    fig, axs = subplots(1, 2, imsize=2, suptitle="s")
    assert axs.shape == (1, 2) and tuple(fig.get_size_inches()) == pytest.approx((4, 2.6))
    ax = show_titled_image((torch.rand(3, 4, 4), 7))
    assert ax.get_title() == "7"
