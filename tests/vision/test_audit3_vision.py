"""AUDIT3 E16 (images from channels-last tensors) and E17 (void pixels in segmentation masks)."""

from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from tiers.data import get_image_files
from tiers.tensors import TensorImage, set_seed
from tiers.vision import ImageDataLoaders, PILImage, PILImageBW, image2tensor, vision_learner, xresnet18

# ---------------------------------------------------------------- E16: PILImage.create / predict on tensors


@pytest.fixture(scope="module")
def mnist_learner(mnist_path):
    set_seed(0)
    dls = ImageDataLoaders.from_folder(mnist_path, bs=32, device="cpu")
    learn = vision_learner(dls, partial(xresnet18, widen=0.25), pretrained=False, lin_ftrs=[16])
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 3e-3)
    return learn


def _inputs(f):
    """Every kind of input `PILImage.create` / `learn.predict` takes for the image file `f`, by name."""
    im = PILImage.create(f)
    hwc = torch.tensor(np.array(im))  # fastbook ch. 4: tensor(Image.open(f)), (h, w, 3) uint8
    assert hwc.shape[-1] == 3 and hwc.dtype == torch.uint8
    return {
        "str path": str(f),
        "Path": f,
        "bytes": f.read_bytes(),
        "PILImage": im,
        "plain PIL image": Image.open(f),
        "HWC array": np.array(im),
        "HW array": np.array(Image.open(f).convert("L")),
        "CHW uint8 tensor": image2tensor(im),
        "CHW float tensor": image2tensor(im).float() / 255,
        "CHW TensorImage": TensorImage(image2tensor(im)),
        "HWC uint8 tensor": hwc,
        "HWC float tensor": hwc.float() / 255,
    }


def test_create_reads_a_plain_channels_last_tensor_as_fastai_does(mnist_path):
    f = get_image_files(mnist_path / "valid")[0]
    ref = np.asarray(PILImage.create(f))
    assert ref.shape == (28, 28, 3)
    for name, x in _inputs(f).items():
        im = PILImage.create(x)
        assert isinstance(im, PILImage) and im.mode == "RGB", name
        np.testing.assert_array_equal(np.asarray(im), ref, err_msg=name)
    # grey images: (h, w, 1) plain tensors are channels-last, (1, h, w) channels-first, both the same picture
    bw = np.asarray(PILImageBW.create(f))
    t = torch.from_numpy(bw.copy())
    for x in (t[..., None], t[None], TensorImage(t[None]), t[..., None].float() / 255):
        np.testing.assert_array_equal(np.asarray(PILImageBW.create(x)), bw)
    # RGBA channels-last (h, w, 4) and a tiny image whose sides are channel counts (image2tensor round trip)
    rgba = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(PILImage.create(torch.from_numpy(rgba))),
                                  np.asarray(Image.fromarray(rgba).convert("RGB")))
    tiny = Image.fromarray(np.random.default_rng(1).integers(0, 256, (4, 3, 3), dtype=np.uint8))
    np.testing.assert_array_equal(np.asarray(PILImage.create(image2tensor(tiny))), np.asarray(tiny))


def test_predict_gives_the_same_answer_for_every_input_kind(mnist_learner, mnist_path):
    for f in get_image_files(mnist_path / "valid")[:2]:
        ref_lbl, ref_idx, ref_probs = mnist_learner.predict(f)
        for name, x in _inputs(f).items():
            lbl, idx, probs = mnist_learner.predict(x)
            assert (lbl, int(idx)) == (ref_lbl, int(ref_idx)), name
            torch.testing.assert_close(probs, ref_probs, msg=name)


@pytest.mark.parametrize(("x", "match"), [
    (torch.zeros(5, 6, 7, dtype=torch.uint8), r"shape \(5, 6, 7\).*\(c, h, w\).*\(h, w, c\)"),
    (TensorImage(torch.zeros(28, 28, 3, dtype=torch.uint8)), r"TensorImage is channels-first.*\(28, 28, 3\).*permute"),
    (np.zeros((3, 6, 7), np.uint8), r"channels-last.*\(3, 6, 7\).*transpose\(1, 2, 0\)"),
    (np.zeros((6, 7, 5), np.uint8), r"\(6, 7, 5\) has 5 channels"),
    (torch.zeros(1, 3, 6, 7), r"shape \(1, 3, 6, 7\).*batch of one, pass x\[0\]"),
    (torch.zeros(7), r"shape \(7,\)"),
])
def test_create_refuses_shapes_it_cannot_read_naming_them(x, match):
    with pytest.raises(ValueError, match=match):
        PILImage.create(x)


def test_predict_on_an_unreadable_tensor_names_its_shape(mnist_learner):
    with pytest.raises(ValueError, match=r"\(28, 28, 5\)"):
        mnist_learner.predict(torch.zeros(28, 28, 5, dtype=torch.uint8))
