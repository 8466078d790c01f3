"""AUDIT3 E28 for image learners: `plot_top_losses` titles are the decoded labels (multi-label: `7;odd`, not raw
vectors), and segmentation shows the input, the target mask and the predicted mask per item (not a title of raw mask
numbers)."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.train import ClassificationInterpretation, Interpretation, SegmentationInterpretation
from tiers.vision.all import (
    ImageDataLoaders,
    PILImageBW,
    SegmentationDataLoaders,
    accuracy,
    accuracy_multi,
    get_image_files,
    unet_learner,
    vision_learner,
    xresnet18,
)

_small = partial(xresnet18, widen=0.25)


def _fit(learn):
    torch.manual_seed(0)
    with learn.no_bar():
        learn.fit(1, 1e-3)
    return learn


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_single_label_titles_are_class_names(mnist_path, tmp_path):
    dls = ImageDataLoaders.from_folder(mnist_path, bs=16, device="cpu", img_cls=PILImageBW)
    learn = _fit(vision_learner(dls, _small, pretrained=False, metrics=accuracy))
    with learn.no_bar():
        interp = ClassificationInterpretation.from_learner(learn)
    vals, idx = interp.top_losses(3)
    fig = interp.plot_top_losses(3, return_fig=True)
    titles = _titles(fig)
    assert len(titles) == 3 and fig._suptitle.get_text() == "Prediction/Actual/Loss/Probability"
    for t, v, i in zip(titles, vals.tolist(), idx.tolist()):
        pred, targ, loss, prob = (p.strip() for p in t.split("/"))
        assert pred == interp.vocab[int(interp.decoded[i])] and targ == interp.vocab[int(interp.targs[i])]
        assert loss == f"{v:.2f}" and prob == f"{float(interp.preds[i].max()):.2f}"
    assert all(ax.images for ax in fig.axes if ax.get_title())  # the digits are drawn
    fig.savefig(tmp_path / "top.png")


def test_multi_label_titles_are_decoded_label_names(mnist_path):
    fns = sorted(get_image_files(mnist_path))
    df = pd.DataFrame({"fname": [str(f.relative_to(mnist_path)) for f in fns],
                       "labels": [f.parent.name + (" odd" if i % 3 == 0 else "") for i, f in enumerate(fns)]})
    dls = ImageDataLoaders.from_df(df, mnist_path, label_delim=" ", bs=16, device="cpu", seed=0)
    learn = _fit(vision_learner(dls, _small, pretrained=False, metrics=accuracy_multi))
    with learn.no_bar():
        interp = Interpretation.from_learner(learn)
    vocab = list(dls.vocab)
    _, idx = interp.top_losses(4)
    titles = _titles(interp.plot_top_losses(4, return_fig=True))
    assert len(titles) == 4
    for t, i in zip(titles, idx.tolist()):
        pred, targ, _, prob = (p.strip() for p in t.split("/"))
        assert "[" not in t and "True" not in t  # no raw vectors
        want_t = ";".join(v for v, on in zip(vocab, interp.targs[i].tolist()) if on)
        want_p = [v for v, on in zip(vocab, interp.decoded[i].tolist()) if on]
        assert targ == want_t and pred == ";".join(want_p)
        assert len([p for p in prob.split(";") if p]) == len(want_p)  # one probability per predicted label


def test_segmentation_rows_show_input_target_and_prediction(camvid_path, tmp_path):
    codes = np.loadtxt(camvid_path / "codes.txt", dtype=str)
    dls = SegmentationDataLoaders.from_label_func(
        camvid_path, get_image_files(camvid_path / "images"), lambda o: camvid_path / "labels" / f"{o.stem}_P{o.suffix}",
        codes=codes, bs=4, device="cpu", seed=0)
    learn = _fit(unet_learner(dls, _small, pretrained=False))
    with learn.no_bar():
        interp = SegmentationInterpretation.from_learner(learn)
    vals, _ = interp.top_losses(2)
    fig = interp.plot_top_losses(2, return_fig=True)
    titles = _titles(fig)
    assert len(titles) == 6 and all(len(t) < 40 for t in titles)  # no line of mask numbers
    assert titles[0::3] == [f"input / loss {v:.2f}" for v in vals.tolist()]
    assert titles[1::3] == ["target"] * 2 and all(t.startswith("prediction / probability 0.") for t in titles[2::3])
    axs = [ax for ax in fig.axes if ax.get_title()]
    assert [len(ax.images) for ax in axs] == [1, 2, 2] * 2  # image; image + target mask; image + predicted mask
    fig.savefig(tmp_path / "seg.png", dpi=60)


def test_plain_torch_loader_images_still_plot():
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tiers.data import DataLoaders
    from tiers.train import Learner

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(24, 1, 8, 8, generator=g), torch.randint(0, 2, (24,), generator=g)
    dl = DataLoader(TensorDataset(x, y), batch_size=8)
    learn = Learner(DataLoaders(dl, dl), nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), loss_func=nn.CrossEntropyLoss())
    with learn.no_bar():
        interp = Interpretation.from_learner(learn)
    vals, _ = interp.top_losses(3)
    titles = _titles(interp.plot_top_losses(3, return_fig=True))
    assert [t.split(" / ")[1] for t in titles] == [f"{v:.2f}" for v in vals.tolist()]


@pytest.mark.parametrize("k", [0])
def test_zero_items_is_refused(mnist_path, k):
    dls = ImageDataLoaders.from_folder(mnist_path, bs=16, device="cpu", img_cls=PILImageBW)
    learn = vision_learner(dls, _small, pretrained=False)
    with learn.no_bar():
        interp = Interpretation.from_learner(learn)
    with pytest.raises(ValueError, match="k=0"):
        interp.plot_top_losses(k)
