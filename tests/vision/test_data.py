"""Vision blocks and DataLoaders factories on the offline sample datasets; show_batch figures."""

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.data import DataBlock, RandomSplitter, get_image_files
from tiers.tensors import TensorBBox, TensorCategory, TensorImage, TensorImageBW, TensorMask, TensorPoint
from tiers.vision import (
    BBoxBlock,
    BBoxLblBlock,
    ImageBlock,
    ImageDataLoaders,
    PILImage,
    PILImageBW,
    PointBlock,
    Resize,
    SegmentationDataLoaders,
    aug_transforms,
    get_annotations,
)


def test_from_folder_grandparent_split(mnist_path):
    dls = ImageDataLoaders.from_folder(mnist_path, bs=8, device="cpu", img_cls=PILImageBW,
                                       batch_tfms=aug_transforms(size=20, do_flip=False))
    x, y = dls.one_batch()
    assert type(x) is TensorImageBW and x.shape == (8, 1, 20, 20) and x.dtype == torch.float32
    assert type(y) is TensorCategory and list(dls.vocab) == ["3", "7"]
    n_valid = len(list((mnist_path / "valid").rglob("*.png")))
    assert len(dls.valid_ds) == n_valid
    vx, _ = dls.valid.one_batch()
    assert vx.shape[-2:] == (20, 20)
    with pytest.raises(FileNotFoundError, match="valid_pct"):
        ImageDataLoaders.from_folder(mnist_path, valid="nope")


def test_from_folder_names_a_wrong_root(mnist_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder .it does not exist."):
        ImageDataLoaders.from_folder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"is the train folder itself: pass its parent"):
        ImageDataLoaders.from_folder(mnist_path / "train")
    with pytest.raises(FileNotFoundError, match=r"no folder .*nope \(its folders: .*train, valid\)"):
        ImageDataLoaders.from_folder(mnist_path, valid="nope")


def test_from_folder_valid_pct(mnist_path):
    dls = ImageDataLoaders.from_folder(mnist_path, valid_pct=0.25, seed=1, bs=8, device="cpu")
    n = len(list(mnist_path.rglob("*.png")))
    assert len(dls.train_ds) + len(dls.valid_ds) == n


def test_from_name_re_and_name_func(pets_path):
    fnames = get_image_files(pets_path / "images")
    dls = ImageDataLoaders.from_name_re(pets_path, fnames, pat=r"^([^/]+)_\d+.jpg$", item_tfms=Resize(32), bs=4,
                                        device="cpu", seed=0)
    assert list(dls.vocab) == ["One", "Seven", "Three", "eight"]
    assert dls.one_batch()[0].shape == (4, 3, 32, 32)
    dls2 = ImageDataLoaders.from_name_func(pets_path, fnames, label_func=_is_cat, item_tfms=Resize(24), bs=4,
                                           device="cpu")
    assert set(dls2.vocab) == {False, True} or set(map(str, dls2.vocab)) == {"False", "True"}
    with pytest.raises(Exception, match="unterminated|missing|error"):
        ImageDataLoaders.from_name_re(pets_path, fnames, pat=r"([^/]+")


def _is_cat(name: str) -> bool:
    return name[0].isupper()


def test_from_df_csv_and_lists(mnist_path):
    dls = ImageDataLoaders.from_csv(mnist_path, item_tfms=Resize(16), bs=4, device="cpu", seed=0)
    assert set(dls.vocab) == {3, 7} or set(map(str, dls.vocab)) == {"3", "7"}
    df = pd.read_csv(mnist_path / "labels.csv")
    df["is_valid"] = df["name"].str.startswith("valid")
    dls = ImageDataLoaders.from_df(df, mnist_path, valid_col="is_valid", item_tfms=Resize(16), bs=4, device="cpu")
    assert len(dls.valid_ds) == int(df["is_valid"].sum())
    fnames = [mnist_path / n for n in df["name"]]
    reg = ImageDataLoaders.from_lists(mnist_path, fnames, [float(v) for v in df["label"]], item_tfms=Resize(16),
                                      bs=4, device="cpu")
    assert reg.one_batch()[1].dtype == torch.float32
    with pytest.raises(ValueError, match="one label per image"):
        ImageDataLoaders.from_lists(mnist_path, fnames, [1.0])


def test_segmentation_loaders(camvid_path):
    codes = np.loadtxt(camvid_path / "codes.txt", dtype=str)
    dls = SegmentationDataLoaders.from_label_func(
        camvid_path, get_image_files(camvid_path / "images"), lambda o: camvid_path / "labels" / f"{o.stem}_P{o.suffix}",
        codes=codes, bs=4, device="cpu", batch_tfms=aug_transforms(), seed=0)
    x, y = dls.one_batch()
    assert type(x) is TensorImage and type(y) is TensorMask and y.shape == (4, 72, 96) and y.dtype == torch.long
    assert dls.train.after_item.c == 4
    import matplotlib.pyplot as plt

    assert dls.show_batch(max_n=4) is None  # nothing for a notebook to echo after the figure
    ctxs = plt.gcf().axes
    assert len(ctxs) == 4 and len(ctxs[0].images) == 2, "image with its mask on top"
    dec = dls.decode_batch(dls.one_batch(), max_n=1)[0]
    assert list(dec[1].codes) == list(codes)


def test_coco_detection_block(coco_path):
    images, lbl_bbox = get_annotations(coco_path / "train.json")
    img2bbox = dict(zip(images, lbl_bbox))
    coco = DataBlock(blocks=(ImageBlock, BBoxBlock, BBoxLblBlock), get_items=get_image_files,
                     splitter=RandomSplitter(seed=0), get_y=[lambda o: img2bbox[o.name][0], lambda o: img2bbox[o.name][1]],
                     item_tfms=Resize(48), batch_tfms=aug_transforms(), n_inp=1)
    dls = coco.dataloaders(coco_path, bs=4, device="cpu")
    x, bb, lbl = dls.one_batch()
    assert type(bb) is TensorBBox and bb.shape[:1] == (4,) and bb.shape[-1] == 4
    assert lbl.shape == bb.shape[:2] and list(dls.vocab) == ["#na#", "circle", "square", "triangle"]
    assert (bb.abs() <= 1).all()
    # the validation loader does not augment: every shape keeps its box, whatever the global RNG state is (the
    # training batch's random zoom/rotation can push the two shown shapes' boxes out of frame)
    import matplotlib.pyplot as plt

    dls.valid.show_batch(max_n=2)
    ctxs = plt.gcf().axes
    texts = [t.get_text() for t in ctxs[0].texts]
    assert texts and set(texts) <= {"circle", "square", "triangle"}


def test_point_block(camvid_path):
    # one point per image: the centre of the first shape's mask, read from the labels
    def centre(o):
        m = np.asarray(PILImage.create(camvid_path / "labels" / f"{o.stem}_P{o.suffix}").convert("L"))
        ys, xs = np.nonzero(m)
        return [[xs.mean(), ys.mean()]]

    dblock = DataBlock(blocks=(ImageBlock, PointBlock), get_items=get_image_files, get_y=centre,
                       splitter=RandomSplitter(seed=0), item_tfms=Resize(32, method="squish"),
                       batch_tfms=aug_transforms(max_rotate=20))
    dls = dblock.dataloaders(camvid_path / "images", bs=4, device="cpu")
    x, p = dls.one_batch()
    assert type(p) is TensorPoint and p.shape == (4, 1, 2) and p.img_size == (32, 32)
    assert dls.train.after_item.c == 2
    dec = dls.decode_batch((x, p), max_n=1)[0][1]
    assert (dec >= -5).all() and (dec <= 37).all(), "decoded to the 32x32 image's pixels"
    dls.show_batch(max_n=2)
