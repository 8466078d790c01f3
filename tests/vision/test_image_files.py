"""Image files as they come: 16-bit PNGs keep their gradient, truncated files are named (and found up front with
`verify_images`, `verified` or `verify=`), the paper's path regex works in `from_name_re`, and `from_csv` honours
`encoding`."""

import io
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tiers.data import CategoryBlock, DataBlock, RandomSplitter, ToTensor, get_image_files
from tiers.tensors import TensorImage, TensorImageBW
from tiers.vision import (
    BadImagesError,
    ImageBlock,
    ImageDataLoaders,
    PILImage,
    PILImageBW,
    PILMask,
    Resize,
    SegmentationDataLoaders,
    verified,
    verify_image,
    verify_images,
    wide_to_8bit,
)


def _gradient16(h: int = 8, w: int = 256) -> np.ndarray:
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_wide_grey_images_keep_their_gradient(tmp_path, mode):
    g16 = _gradient16()
    if mode == "I;16":
        im = Image.fromarray(g16)
    elif mode == "I":
        im = Image.fromarray(g16.astype(np.int32))
    else:
        im = Image.fromarray(g16.astype(np.float32) / 65535)  # floats in 0..1
    assert im.mode == mode
    expected = np.linspace(0, 255, g16.shape[1])
    for cls, tcls in ((PILImageBW, TensorImageBW), (PILImage, TensorImage)):
        sources = [im]
        # on disk: a 16-bit PNG, a 32-bit integer TIFF, a float TIFF
        fn = tmp_path / (f"grad_{mode.replace(';', '')}" + (".png" if mode == "I;16" else ".tif"))
        im.save(fn)
        sources.append(fn)
        for src in sources:
            t = ToTensor()(cls.create(src))
            assert type(t) is tcls and t.dtype == torch.uint8
            row = t[0, 0].numpy().astype(float)
            assert np.abs(row - expected).max() <= 1.0, (cls, src)  # not 99% saturated at 255
            assert len(np.unique(t[0, 0].numpy())) > 200  # the gradient survives
            assert (t == 255).float().mean() < 0.01


def test_a_16bit_png_as_saved_by_a_scanner(tmp_path):
    # Pillow opens a 16-bit grey PNG as I;16: the mid grey must stay mid grey
    fn = tmp_path / "mid.png"
    Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)).save(fn)
    assert Image.open(fn).mode == "I;16"
    assert int(np.asarray(PILImage.create(fn))[0, 0, 0]) == 128
    assert wide_to_8bit(Image.open(fn)).mode == "L"


def test_a_16bit_array_is_scaled_too():
    arr = _gradient16()
    t = ToTensor()(PILImageBW.create(arr))
    assert np.abs(t[0, 0].numpy().astype(float) - np.linspace(0, 255, arr.shape[1])).max() <= 1.0


def test_16bit_masks_keep_their_class_codes(tmp_path):
    codes = np.array([[0, 1, 2, 3]], dtype=np.uint16)
    fn = tmp_path / "mask.png"
    Image.fromarray(codes).save(fn)
    assert np.asarray(PILMask.create(fn)).tolist() == [[0, 1, 2, 3]]  # codes, not intensities


def test_wide_image_outside_16bit_range_is_refused():
    im = Image.fromarray(np.array([[0, 70000]], dtype=np.int32))
    with pytest.raises(ValueError, match="not 16-bit data"):
        PILImage.create(im)


def _images(folder, n=6, fmt="jpg"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        lbl = "cat" if i % 2 else "dog"
        fn = folder / f"{lbl}_{i}.{fmt}"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(fn)
        out.append(fn)
    return out


def _truncate(fn):
    data = fn.read_bytes()
    fn.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_a_truncated_image_is_named_when_its_batch_is_built(tmp_path, fmt):
    fns = _images(tmp_path / "imgs", fmt=fmt)
    _truncate(fns[2])
    assert verify_image(fns[0]) and not verify_image(fns[2])
    dls = ImageDataLoaders.from_name_re(tmp_path, fns, pat=r"^([a-z]+)_\d+", item_tfms=Resize(16), bs=2,
                                        valid_pct=0.5, seed=0, device="cpu")
    with pytest.raises(OSError) as e:
        for dl in (dls.train, dls.valid):
            for _ in dl:
                pass
    msg = str(e.value)
    assert str(fns[2]) in msg and "truncated" in msg and "verify_images" in msg


def test_verify_images_lists_the_unreadable_files(tmp_path):
    fns = _images(tmp_path / "imgs", n=5)
    _truncate(fns[1])
    (tmp_path / "imgs" / "notes.jpg").write_text("not an image")
    bad = verify_images([*fns, tmp_path / "imgs" / "notes.jpg"])
    assert sorted(map(str, bad)) == sorted([str(fns[1]), str(tmp_path / "imgs" / "notes.jpg")])
    assert list(verify_images(fns[2:])) == []
    assert list(verify_images(fns, n_workers=1)) == [fns[1]]


def test_a_datablock_verifies_its_items_up_front(tmp_path):
    fns = _images(tmp_path / "imgs", n=8)
    _truncate(fns[3])
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=verified(get_image_files),
                       get_y=lambda p: p.name.split("_")[0], splitter=RandomSplitter(seed=0), item_tfms=Resize(16))
    with pytest.raises(BadImagesError) as e:
        dblock.dataloaders(tmp_path / "imgs", bs=2, device="cpu")
    assert str(fns[3]) in str(e.value) and e.value.failed == [fns[3]]
    dropping = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=verified(get_image_files, drop=True),
                         get_y=lambda p: p.name.split("_")[0], splitter=RandomSplitter(seed=0), item_tfms=Resize(16))
    with pytest.warns(UserWarning, match=fns[3].name):
        dls = dropping.dataloaders(tmp_path / "imgs", bs=2, device="cpu")
    assert len(dls.train_ds) + len(dls.valid_ds) == 7
    assert str(fns[3]) not in {str(o) for o in [*dls.train_ds.items, *dls.valid_ds.items]}


def test_image_dataloaders_verify_switch(tmp_path):
    fns = _images(tmp_path / "imgs", n=8)
    _truncate(fns[0])
    with pytest.raises(BadImagesError, match=fns[0].name):
        ImageDataLoaders.from_name_re(tmp_path, fns, pat=r"^([a-z]+)_", verify=True, item_tfms=Resize(16))
    with pytest.warns(UserWarning, match=fns[0].name):
        dls = ImageDataLoaders.from_name_re(tmp_path, fns, pat=r"^([a-z]+)_", verify="drop", item_tfms=Resize(16),
                                            bs=2, device="cpu")
    assert len(dls.train_ds) + len(dls.valid_ds) == 7
    # folder layout (get_items) and a CSV listing the files
    for lbl in ("cat", "dog"):
        (tmp_path / "tree" / "train" / lbl).mkdir(parents=True)
        (tmp_path / "tree" / "valid" / lbl).mkdir(parents=True)
    for i, f in enumerate(fns):
        lbl = f.name.split("_")[0]
        shutil.copy(f, tmp_path / "tree" / ("valid" if i > 5 else "train") / lbl / f.name)
    with pytest.raises(BadImagesError, match=fns[0].name):
        ImageDataLoaders.from_folder(tmp_path / "tree", verify=True, item_tfms=Resize(16))
    df = pd.DataFrame({"fname": [f.name for f in fns], "label": [f.name.split("_")[0] for f in fns]})
    with pytest.raises(BadImagesError, match=fns[0].name):
        ImageDataLoaders.from_df(df, tmp_path, folder="imgs", verify=True, item_tfms=Resize(16))
    with pytest.warns(UserWarning):
        dls = ImageDataLoaders.from_df(df, tmp_path, folder="imgs", verify="drop", item_tfms=Resize(16), bs=2,
                                       device="cpu")
    assert len(dls.train_ds) + len(dls.valid_ds) == 7
    with pytest.raises(ValueError, match="verify='yes'"):
        ImageDataLoaders.from_name_re(tmp_path, fns, pat=r"^([a-z]+)_", verify="yes")


def test_from_dblock_verify_leaves_the_users_datablock_alone(tmp_path):
    fns = _images(tmp_path / "imgs", n=8)
    _truncate(fns[5])
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                       get_y=lambda p: p.name.split("_")[0], splitter=RandomSplitter(seed=0), item_tfms=Resize(16))
    with pytest.raises(BadImagesError, match=fns[5].name):
        ImageDataLoaders.from_dblock(dblock, tmp_path / "imgs", verify=True)
    assert dblock.get_items is get_image_files


def test_segmentation_verify_switch(tmp_path):
    fns = _images(tmp_path / "imgs", n=6, fmt="png")
    (tmp_path / "labels").mkdir()
    for f in fns:
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "labels" / f.name)
    _truncate(fns[4])
    with pytest.raises(BadImagesError, match=fns[4].name):
        SegmentationDataLoaders.from_label_func(tmp_path, fns, lambda o: tmp_path / "labels" / o.name,
                                                codes=["a", "b"], verify=True)


def test_from_name_re_takes_the_papers_path_pattern(tmp_path):
    fns = _images(tmp_path / "images", n=6)
    kw = dict(item_tfms=Resize(16), bs=2, device="cpu", seed=0)
    by_path = ImageDataLoaders.from_name_re(tmp_path, fns, pat=r"/([^/]+)_\d+.jpg$", **kw)  # the paper's pattern
    by_name = ImageDataLoaders.from_name_re(tmp_path, fns, pat=r"^([^/]+)_\d+.jpg$", **kw)
    assert list(by_path.vocab) == list(by_name.vocab) == ["cat", "dog"]
    labels = [by_path.vocab[int(y)] for _, y in by_path.train_ds]
    assert labels == [p.name.split("_")[0] for p in by_path.train_ds.items]


def test_image_from_csv_encoding(tmp_path):
    fns = _images(tmp_path, n=6)
    df = pd.DataFrame({"name": [f.name for f in fns], "label": ["café" if i % 2 else "crème" for i in range(6)]})
    df.to_csv(tmp_path / "labels.csv", index=False, encoding="latin-1")
    with pytest.raises(ValueError, match="labels.csv") as e:
        ImageDataLoaders.from_csv(tmp_path, item_tfms=Resize(16))
    assert "encoding=" in str(e.value)
    dls = ImageDataLoaders.from_csv(tmp_path, encoding="latin-1", item_tfms=Resize(16), bs=2, device="cpu")
    assert sorted(dls.vocab) == ["café", "crème"]


def test_verify_image_accepts_a_good_image_in_memory():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="png")
    buf.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify_image(buf)
