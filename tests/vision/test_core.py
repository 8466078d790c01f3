"""PIL types, image I/O, COCO annotations and the sample datasets."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tiers.data import ToTensor
from tiers.tensors import TensorImage, TensorImageBW, TensorMask
from tiers.vision.core import (
    PILImage,
    PILImageBW,
    PILMask,
    get_annotations,
    image2tensor,
    load_image,
    to_image,
)
from tiers.vision.data_samples import SHAPE_CODES, make_camvid_tiny


def test_create_from_every_source(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    fn = tmp_path / "a.png"
    Image.fromarray(arr).save(fn)
    srcs = [fn, str(fn), fn.read_bytes(), Image.open(fn), arr, torch.from_numpy(arr).permute(2, 0, 1)]
    for src in srcs:
        im = PILImage.create(src)
        assert type(im) is PILImage and im.mode == "RGB" and im.shape == (6, 9)
        np.testing.assert_array_equal(np.asarray(im), arr)


def test_create_converts_mode_and_keeps_the_callers_object():
    rgba = Image.new("RGBA", (4, 3), (10, 20, 30, 255))
    bw = PILImageBW.create(rgba)
    assert bw.mode == "L" and type(rgba) is Image.Image
    assert repr(bw) == "PILImageBW mode=L size=4x3"


def test_pillow_results_keep_working_and_helpers():
    im = PILImage.create(np.zeros((10, 20, 3), np.uint8))
    assert im.n_px == 200 and im.aspect == 2.0
    assert im.reshape(5, 6).shape == (5, 6) and type(im.reshape(5, 6)) is PILImage
    assert im.resize_max(max_px=50).n_px <= 50
    assert im.to_thumb(4).size[0] <= 4
    assert PILImage.create(im.to_bytes_format("png")).shape == (10, 20)


def test_masks_resize_nearest_and_check_codes():
    m = PILMask.create(torch.tensor([[0, 3], [2, 1]]))
    big = m.reshape(8, 8)
    assert set(np.unique(np.asarray(big))) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="0..255"):
        PILMask.create(np.array([[0, 300]]))


def test_to_tensor_and_image2tensor():
    im = PILImage.create(np.full((3, 4, 3), 7, np.uint8))
    t = ToTensor()(im)
    assert type(t) is TensorImage and t.shape == (3, 3, 4) and t.dtype == torch.uint8
    assert type(ToTensor()(PILImageBW.create(im))) is TensorImageBW
    m = ToTensor()(PILMask.create(np.ones((3, 4), np.uint8)))
    assert type(m) is TensorMask and m.shape == (3, 4)
    assert image2tensor(np.zeros((2, 5))).shape == (1, 2, 5)
    back = to_image(torch.rand(3, 4, 5))
    assert back.size == (5, 4) and back.mode == "RGB"


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image(bad)
    with pytest.raises(TypeError, match="cannot make an image"):
        PILImage.create(3.5)
    assert load_image(io.BytesIO(PILImage.create(np.zeros((2, 2, 3), np.uint8)).to_bytes_format())).size == (2, 2)


def test_coco_sample_and_annotations(coco_path):
    names, lbl_bbox = get_annotations(coco_path / "train.json")
    assert len(names) == 12 and all((coco_path / "train" / n).exists() for n in names)
    for boxes, labels in lbl_bbox:
        assert len(boxes) == len(labels) >= 1
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 96
        assert set(labels) <= {"circle", "square", "triangle"}
    names_p, _ = get_annotations(coco_path / "train.json", prefix="train/")
    assert names_p[0].startswith("train/")


def test_camvid_sample_masks_match_codes(camvid_path):
    codes = np.loadtxt(camvid_path / "codes.txt", dtype=str)
    assert list(codes) == list(SHAPE_CODES)
    img = camvid_path / "images" / "scene_000.png"
    mask = PILMask.create(camvid_path / "labels" / "scene_000_P.png")
    assert mask.shape == PILImage.create(img).shape
    assert set(np.unique(np.asarray(mask))) <= set(range(len(codes)))
    # idempotent: a finished dataset is not rewritten
    assert make_camvid_tiny(camvid_path) == camvid_path


def test_mnist_and_pets_layout(mnist_path, pets_path):
    for split in ("train", "valid"):
        assert sorted(p.name for p in (mnist_path / split).iterdir()) == ["3", "7"]
    im = PILImageBW.create(next((mnist_path / "train" / "3").iterdir()))
    assert im.shape == (28, 28)
    names = [p.name for p in (pets_path / "images").iterdir()]
    assert any(n[0].isupper() for n in names) and any(n[0].islower() for n in names)
    assert (mnist_path / "labels.csv").read_text().startswith("name,label")


def test_bad_coco_file(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{}")
    with pytest.raises(ValueError, match="COCO key"):
        get_annotations(f)
