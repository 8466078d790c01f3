"""The paper's vision listings, end to end on the offline sample datasets, with their figures saved as PNG.

Classification by regex labels (pets), segmentation (CamVid), the MNIST, CamVid and COCO DataBlocks (their
`databunch(...)` calls as printed), and figure 11 (one image, many augmentations). The application listings word
for word, `untar_data` and pretrained resnet34 included, are in test_paper_printed_apps.py. The paper's models are pretrained ResNets; offline, these listings use small
XResNets with `pretrained=False`, and tiny images, so the whole file runs in well under a minute on a CPU.

Figures go to `$TIERS_FIGURE_DIR` when set (to look at them), else to a temporary folder.
"""

import os
from functools import partial
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from tiers.data import (
    CategoryBlock,
    DataBlock,
    GrandparentSplitter,
    Normalize,
    RandomSplitter,
    get_image_files,
    noop,
    parent_label,
)
from tiers.tensors import TensorBBox, TensorImage, TensorMask, set_seed
from tiers.train import error_rate
from tiers.vision import (
    BBoxBlock,
    BBoxLblBlock,
    ImageBlock,
    ImageDataLoaders,
    PILImage,
    PILImageBW,
    PILMask,
    RandomResizedCrop,
    Resize,
    SegmentationDataLoaders,
    acc_segment,
    aug_transforms,
    cnn_learner,
    get_annotations,
    image2tensor,
    imagenet_stats,
    make_camvid_tiny,
    make_coco_tiny,
    make_mnist_tiny,
    make_pets_tiny,
    unet_learner,
    vision_learner,
    xresnet18,
)

matplotlib.use("Agg")

tiny_xresnet = partial(xresnet18, widen=0.25)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared 2-core machine: torch's spinning threads would slow these tiny models
    yield
    torch.set_num_threads(n)
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vision_listings")


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> Path:
    d = os.environ.get("TIERS_FIGURE_DIR")
    out = Path(d) if d else tmp_path_factory.mktemp("figures")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save(figures: Path, name: str) -> Path:
    import matplotlib.pyplot as plt

    fn = figures / f"{name}.png"
    plt.gcf().savefig(fn, dpi=80)
    plt.close("all")
    assert fn.stat().st_size > 5_000, f"{fn} looks empty"
    return fn


def test_classification_by_regex_labels(data, figures):
    set_seed(0)
    path = make_pets_tiny(data / "pets")
    # The paper's call (pat on the path, as printed); RandomResizedCrop(450), size=224, resnet34 made small here
    dls = ImageDataLoaders.from_name_re(path=path, bs=8, fnames=get_image_files(path / "images"),
                                        pat=r"/([^/]+)_\d+.jpg$", device="cpu",
                                        item_tfms=RandomResizedCrop(48, min_scale=0.75),
                                        batch_tfms=[*aug_transforms(size=32, max_warp=0.0),
                                                    Normalize.from_stats(*imagenet_stats)])
    assert list(dls.vocab) == ["One", "Seven", "Three", "eight"]
    with pytest.warns(DeprecationWarning):
        learn = cnn_learner(dls, tiny_xresnet, metrics=error_rate, pretrained=False)
    learn.fit_one_cycle(2)
    dls.show_batch()
    _save(figures, "pets_show_batch")
    learn.show_results()
    _save(figures, "pets_show_results")
    # the same labels from the file name alone
    names = ImageDataLoaders.from_name_re(path, get_image_files(path / "images"), pat=r"^([^/]+)_\d+.jpg$",
                                          item_tfms=Resize(32), bs=8, device="cpu")
    assert list(names.vocab) == list(dls.vocab)


def test_segmentation(data, figures):
    set_seed(0)
    path = make_camvid_tiny(data / "camvid")
    dls = SegmentationDataLoaders.from_label_func(path, bs=4, fnames=get_image_files(path / "images"),
                                                  label_func=lambda o: path / "labels" / f"{o.stem}_P{o.suffix}",
                                                  codes=np.loadtxt(path / "codes.txt", dtype=str), device="cpu")
    learn = unet_learner(dls, tiny_xresnet, pretrained=False, metrics=acc_segment)
    learn.fine_tune(2)
    assert learn.final_record is not None
    dls.show_batch(max_n=4)
    _save(figures, "camvid_show_batch")
    learn.show_results(max_n=3)
    _save(figures, "camvid_show_results")


def test_mnist_datablock(data, figures):
    set_seed(0)
    mnist = DataBlock(blocks=(ImageBlock(cls=PILImageBW), CategoryBlock), get_items=get_image_files,
                      splitter=GrandparentSplitter(), get_y=parent_label)
    # The paper's call: mnist.databunch(untar_data(URLs.MNIST_TINY), batch_tfms=Normalize)
    dls = mnist.databunch(make_mnist_tiny(data / "mnist_tiny"), batch_tfms=Normalize, bs=16, device="cpu")
    x, y = dls.one_batch()
    assert x.shape == (16, 1, 28, 28) and list(dls.vocab) == ["3", "7"]
    assert abs(float(x.mean())) < 0.3 and 0.7 < float(x.std()) < 1.3  # Normalize took its statistics from a batch
    learn = vision_learner(dls, tiny_xresnet, pretrained=False, metrics=error_rate)
    learn.fit_one_cycle(4, 5e-3)
    assert float(learn.final_record[-1]) < 0.2
    dls.show_batch()
    _save(figures, "mnist_show_batch")
    learn.show_results()
    _save(figures, "mnist_show_results")


def test_camvid_datablock(data, figures):
    path = make_camvid_tiny(data / "camvid")
    # As printed: masks through ImageBlock(cls=PILMask), the batch augmented then normalised
    camvid = DataBlock(blocks=(ImageBlock, ImageBlock(cls=PILMask)),
                       get_items=get_image_files,
                       splitter=RandomSplitter(),
                       get_y=lambda o: path / "labels" / f"{o.stem}_P{o.suffix}")
    dls = camvid.databunch(path / "images",
                           batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)], bs=4, device="cpu")
    x, y = dls.one_batch()
    assert type(x) is TensorImage and type(y) is TensorMask and y.shape == x.shape[:1] + x.shape[2:]
    assert set(y.unique().tolist()) <= {0, 1, 2, 3}  # class codes, never normalised or blended
    dls.show_batch(max_n=4)
    _save(figures, "camvid_datablock_show_batch")


def test_coco_datablock(data, figures):
    coco_source = make_coco_tiny(data / "coco")
    images, lbl_bbox = get_annotations(coco_source / "train.json")
    lbl = dict(zip(images, lbl_bbox))
    coco = DataBlock(blocks=(ImageBlock, BBoxBlock, BBoxLblBlock), get_items=get_image_files,
                     splitter=RandomSplitter(seed=0),
                     getters=[noop, lambda o: lbl[o.name][0], lambda o: lbl[o.name][1]], n_inp=1)
    dls = coco.databunch(coco_source, item_tfms=Resize(128),
                         batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)], bs=4, device="cpu")
    x, bb, lb = dls.one_batch()
    assert x.shape[-2:] == (128, 128)
    assert type(bb) is TensorBBox and bb.shape[-1] == 4 and lb.shape == bb.shape[:2]
    assert float(bb.abs().max()) <= 1.0 + 1e-4  # boxes scaled to [-1, 1] with the image
    dls.show_batch(max_n=4)
    _save(figures, "coco_show_batch")


def test_figure_11_one_image_many_augmentations(data, figures):
    # Figure 11 of the paper: the same image through the default batch augmentation nine times (one batch, one
    # resampling for all the geometric transforms).
    import matplotlib.pyplot as plt

    set_seed(42)
    fn = get_image_files(make_camvid_tiny(data / "camvid") / "images")[0]
    img = TensorImage(image2tensor(PILImage.create(fn)).float() / 255)
    batch = TensorImage(img[None].expand(9, -1, -1, -1).contiguous())
    out = batch
    for t in aug_transforms(max_rotate=20, max_warp=0.3, max_zoom=1.3, p_affine=1.0, p_lighting=1.0):
        out = t(out, split_idx=0)
    assert out.shape == batch.shape
    assert len({round(float(o.sum()), 2) for o in out}) == 9, "nine different augmentations"
    _, axs = plt.subplots(3, 3, figsize=(8, 6))
    for o, ax in zip(out, axs.flatten()):
        o.show(ctx=ax)
    _save(figures, "figure_11_augmentations")
