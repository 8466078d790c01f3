"""Bugs the type checker found in tiers.vision (issue 19): signatures that did not keep their base class's promise,
and a None that reached a head builder."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tiers.data import CategoryBlock, DataBlock, RandomSplitter, get_image_files
from tiers.vision import FlipItem, ImageBlock, ImageDataLoaders, PILImage, Resize, add_head


def _images(folder, n=6):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        lbl = "cat" if i % 2 else "dog"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{lbl}_{i}.png")
    return folder


def test_from_dblock_takes_the_loader_arguments_positionally_like_dataloaders(tmp_path):
    # DataLoaders.from_dblock(dblock, source, path, bs, ...): the vision subclass took a 4th positional as `verify`
    # (bs=2 gave "verify=2; use False, True...").
    src = _images(tmp_path / "imgs")
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                       get_y=lambda p: p.name.split("_")[0], splitter=RandomSplitter(seed=0), item_tfms=Resize(8))
    dls = ImageDataLoaders.from_dblock(dblock, src, tmp_path, 2, None, True, "cpu")
    assert dls.train.bs == 2
    x, _ = dls.one_batch()
    assert x.shape[0] == 2
    dls = ImageDataLoaders.from_dblock(dblock, src, tmp_path, 3, device="cpu", verify=True)  # verify: keyword only
    assert dls.train.bs == 3


def test_add_head_without_nf_or_head_names_the_problem():
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(TypeError, match=r"add_head: nf=None.*num_features_model.*head="):
        add_head(body, None, 2)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    model = add_head(body, None, 2, head=head)  # nf is only needed for the default head
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 2)


def test_rand_transform_takes_the_transform_call_signature():
    # Transform.__call__(x, split_idx=None); RandTransform named its first parameter `b`, so `tfm(x=...)` failed.
    img = PILImage.create(np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3))
    out = FlipItem(p=1.0)(x=img, split_idx=0)
    assert np.array_equal(np.asarray(out), np.asarray(img)[:, ::-1])


def test_vision_learner_with_no_known_output_count_asks_for_n_out():
    # n_out defaults to the data's class count; plain torch loaders of float targets have none, so it must be named
    # (the model is never built with n_out=None).
    from torch.utils.data import DataLoader, TensorDataset

    from tiers.vision import vision_learner, xresnet18

    ds = TensorDataset(torch.randn(8, 3, 16, 16), torch.randn(8, 2))
    dls = (DataLoader(ds, batch_size=4), DataLoader(ds, batch_size=4))
    with pytest.raises(AttributeError, match=r"n_out="):
        vision_learner(dls, xresnet18, pretrained=False)
    learn = vision_learner(dls, xresnet18, pretrained=False, n_out=2, loss_func=nn.MSELoss())
    assert learn.n_out == 2
    assert learn.model(torch.zeros(2, 3, 16, 16)).shape == (2, 2)
