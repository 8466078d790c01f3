"""Predictions of a PointBlock model decode to (n, 2) points in pixels, like the targets (AUDIT B8)."""

from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from tiers.data import DataBlock, RandomSplitter, get_image_files
from tiers.tensors import TensorBBox, TensorPoint, set_seed
from tiers.vision import (
    ImageBlock,
    PointBlock,
    PointScaler,
    PointsMSELossFlat,
    Resize,
    vision_learner,
    xresnet18,
)

PTS = [[30.0, 20.0], [10.0, 5.0]]  # two (x, y) points per 40x32 image


@pytest.fixture(scope="module")
def points_learner(tmp_path_factory):
    path = tmp_path_factory.mktemp("points")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(path / f"{i}.png")
    dblock = DataBlock(blocks=(ImageBlock, PointBlock), get_items=get_image_files, get_y=lambda o: PTS,
                       splitter=RandomSplitter(seed=0), item_tfms=Resize(20, method="squish"))
    dls = dblock.dataloaders(path, bs=4, device="cpu")
    set_seed(0)
    learn = vision_learner(dls, partial(xresnet18, widen=0.25), pretrained=False, y_range=(-1, 1))
    learn.fit(1, 1e-3)
    return learn, path


def test_predict_returns_n_by_2_pixel_points(points_learner):
    learn, path = points_learner
    assert isinstance(learn.loss_func, PointsMSELossFlat)
    pts, dec, raw = learn.predict(path / "0.png")
    assert type(pts) is TensorPoint and pts.shape == (2, 2), "two (x, y) points, as fastai returns them"
    assert raw.shape == (4,)
    # pixels of the 20x20 image the model saw: (raw + 1) * size / 2, paired as (x, y)
    torch.testing.assert_close(pts.as_subclass(torch.Tensor), (raw.reshape(2, 2) + 1) * 10)
    assert dec.shape == (2, 2)


def test_get_preds_decoded_and_show_results_have_the_targets_shape(points_learner):
    learn, _ = points_learner
    preds, targs, decoded = learn.get_preds(with_decoded=True)
    n = len(learn.dls.valid_ds)
    assert preds.shape == (n, 4) and targs.shape == (n, 2, 2)
    assert isinstance(decoded, TensorPoint) and decoded.shape == targs.shape
    torch.testing.assert_close(decoded.as_subclass(torch.Tensor), preds.reshape(n, 2, 2))
    b = learn.dls.valid.one_batch()
    decoded_b = learn.get_preds(dl=[b], with_decoded=True)[2]
    _, _, _, outs = learn.dls.valid.show_results(b, decoded_b, max_n=2, show=False)
    for (o,) in outs:
        assert type(o) is TensorPoint and o.shape == (2, 2) and o.img_size == (20, 20)
    learn.show_results(max_n=2)  # draws without error


def test_point_scaler_decodes_flat_points_as_pairs_and_keeps_boxes():
    ps = PointScaler()
    flat = TensorPoint(torch.tensor([0.0, -1.0, 1.0, 0.5]), img_size=(40, 20))
    out = ps.decode(flat)
    assert out.shape == (2, 2)
    torch.testing.assert_close(out.as_subclass(torch.Tensor), torch.tensor([[20.0, 0.0], [40.0, 15.0]]))
    batch = TensorPoint(torch.zeros(3, 4), img_size=(40, 20))
    assert ps.decode(batch).shape == (3, 2, 2)
    box = TensorBBox(torch.tensor([[-1.0, -1.0, 1.0, 1.0]]), img_size=(40, 20))
    out_box = ps.decode(box)
    assert out_box.shape == (1, 4)
    torch.testing.assert_close(out_box.as_subclass(torch.Tensor), torch.tensor([[0.0, 0.0, 40.0, 20.0]]))
    with pytest.raises(ValueError, match=r"last dimension \(3\) is odd"):
        ps.decode(TensorPoint(torch.zeros(3), img_size=(40, 20)))
