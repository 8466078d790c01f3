"""fastbook code typed right after the offline sample makers (AUDIT2 D16, D17): `path.ls()` on what they return,
`Path.BASE_PATH`, and numpy's `array`/`ndarray` from the star import."""

import numpy as np
from PIL import Image

from tiers.dispatch import Path


def test_sample_makers_return_a_path_that_lists_itself(mnist_path, pets_path, camvid_path, coco_path, tmp_path):
    # D16: `path = make_mnist_tiny(); path.ls()` raised AttributeError ('PosixPath' object has no attribute 'ls')
    for p in (mnist_path, pets_path, camvid_path, coco_path):
        assert isinstance(p, Path), type(p)
    assert {"train", "valid"} <= {o.name for o in mnist_path.ls()}
    assert {o.name for o in (mnist_path / "train").ls()} == {"3", "7"}
    assert "images" in [o.name for o in pets_path.ls()]
    assert {"codes.txt", "images", "labels"} <= {o.name for o in camvid_path.ls()}
    assert "train.json" in [o.name for o in coco_path.ls()]
    from tiers.vision.data_samples import make_digits_folder, sample_data_path

    assert isinstance(sample_data_path("x", tmp_path), Path)
    digits = make_digits_folder(tmp_path / "digits", max_per_class=2)
    assert isinstance(digits, Path) and len((digits / "train").ls()) == 10
    again = make_digits_folder(tmp_path / "digits", max_per_class=2)   # the "already written" early return too
    assert isinstance(again, Path) and again == digits


def test_fastbook_chapter4_base_path_and_array(mnist_path, monkeypatch):
    # D17, fastbook ch. 4 verbatim: `Path.BASE_PATH = path; path.ls()`, `array(im3)[4:10,4:10]`
    ns: dict = {}
    exec("from tiers.vision.all import *", ns)
    assert ns["array"] is np.array and ns["ndarray"] is np.ndarray and ns["Path"] is Path
    monkeypatch.setattr(ns["Path"], "BASE_PATH", mnist_path)
    assert repr((mnist_path / "train").ls()).endswith("[Path('train/3'), Path('train/7')]")
    threes = (mnist_path / "train" / "3").ls().sorted()
    assert repr(threes[0]).startswith("Path('train/3/") and threes[0].is_absolute()
    im3 = Image.open(threes[1])
    arr = ns["array"](im3)[4:10, 4:10]
    assert isinstance(arr, ns["ndarray"]) and arr.shape == (6, 6) and arr.dtype == np.uint8
