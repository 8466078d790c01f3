"""TensorBoardCallback (extra tiers-train[tensorboard]): the event files, read back with tensorboard's own
EventAccumulator, hold the Recorder's values (smoothed loss, lr and momentum per batch, the epoch row), steps that
continue across fits, the model graph and prediction figures; a missing extra is named."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, IntToFloatTensor, ItemGetter
from tiers.tensors import TensorImage
from tiers.train import Learner, TensorBoardCallback, accuracy, params

needs_tb = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                              reason="TensorBoardCallback needs the optional extra tiers-train[tensorboard]")


def _items(n=80):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        img = torch.randint(0, 256, (3, 6, 6), generator=g, dtype=torch.uint8)
        out.append((TensorImage(img), "red" if img[0].float().mean() > img[2].float().mean() else "blue"))
    return out


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x))


def _split(m):
    return [params(m.body), params(m.head)]


def _learner(tmp_path, **kw):
    items = _items()
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]],
                     splits=IndexSplitter(range(64, 80))(items))
    dls = dsets.dataloaders(bs=8, device="cpu", after_batch=[IntToFloatTensor()])
    return Learner(dls, _Net(), metrics=accuracy, path=tmp_path, splitter=_split, **kw)


def _events(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    evs = acc.Scalars(tag)
    return [e.step for e in evs], [e.value for e in evs]


@needs_tb
def test_scalars_equal_the_recorders(tmp_path):
    learn = _learner(tmp_path)
    learn.fit_one_cycle(2, 1e-2, cbs=TensorBoardCallback("runs", flush_every=3))
    acc = _events(tmp_path / "runs")
    tags = set(acc.Tags()["scalars"])
    assert {"train/smooth_loss", "hypers/lr", "hypers/mom", "epoch/train_loss", "epoch/valid_loss",
            "epoch/accuracy"} <= tags
    rec = learn.recorder
    n = len(rec.losses)
    assert n == 16, "8 training batches per epoch, 2 epochs"
    steps, vals = _scalars(acc, "train/smooth_loss")
    assert steps == list(range(n))
    assert vals == pytest.approx(rec.losses, rel=1e-6)
    assert _scalars(acc, "hypers/lr")[1] == pytest.approx(rec.lrs, rel=1e-6)
    assert _scalars(acc, "hypers/mom")[1] == pytest.approx(rec.hps["mom"], rel=1e-6)
    names = rec.metric_names[1:-1]  # without epoch and time
    for col, name in enumerate(names):
        steps, vals = _scalars(acc, f"epoch/{name}")
        assert steps == [0, 1]
        assert vals == pytest.approx([row[col] for row in rec.values], rel=1e-6), name


@needs_tb
def test_steps_continue_across_fits_with_one_lr_per_group(tmp_path):
    cb = TensorBoardCallback(tmp_path / "tb")
    learn = _learner(tmp_path, cbs=cb)
    learn.fit(1, 1e-2)
    first = len(learn.recorder.losses)
    learn.fit(1, slice(1e-4, 1e-2))  # discriminative learning rates: one scalar per group
    acc = _events(tmp_path / "tb")
    steps, _ = _scalars(acc, "train/smooth_loss")
    assert steps == list(range(first + len(learn.recorder.losses))), "the second fit goes on where the first ended"
    assert _scalars(acc, "epoch/valid_loss")[0] == [0, 1]
    lr0, lr1 = _scalars(acc, "hypers/lr_group0"), _scalars(acc, "hypers/lr_group1")
    assert lr0[1][first:] == pytest.approx([1e-4] * (len(lr0[1]) - first))
    assert lr1[1][first:] == pytest.approx([1e-2] * (len(lr1[1]) - first))
    assert _scalars(acc, "hypers/lr")[1] == pytest.approx(lr1[1]), "hypers/lr is the last group's, as the Recorder's"


@needs_tb
def test_epoch_rows_only_without_batch_logging(tmp_path):
    learn = _learner(tmp_path)
    learn.fit(1, 1e-2, cbs=TensorBoardCallback("runs", log_every_batch=False))
    tags = set(_events(tmp_path / "runs").Tags()["scalars"])
    assert tags == {"epoch/train_loss", "epoch/valid_loss", "epoch/accuracy"}


@needs_tb
def test_graph_is_traced_without_moving_batchnorm_statistics(tmp_path):
    learn = _learner(tmp_path)
    learn.fit(1, 1e-2, cbs=TensorBoardCallback("runs", trace_model=True))
    acc = _events(tmp_path / "runs")
    assert acc.Tags()["graph"], "the model graph is in the event file"
    assert any("Conv2d" in node.name for node in acc.Graph().node)
    # tracing runs the model once: in eval mode, so the BatchNorm statistics do not move, and the mode comes back
    bn = learn.model.body[1]
    learn.model.train()
    before = bn.running_mean.clone()
    cb = TensorBoardCallback(tmp_path / "again", trace_model=True)
    learn.add_cb(cb)
    cb.before_fit()
    cb.after_fit()
    learn.remove_cb(cb)
    assert torch.equal(bn.running_mean, before) and learn.model.training


@needs_tb
def test_prediction_figures_per_epoch(tmp_path):
    learn = _learner(tmp_path)
    learn.fit(2, 1e-2, cbs=TensorBoardCallback("runs", log_preds=True, n_preds=4))
    acc = _events(tmp_path / "runs")
    imgs = acc.Images("valid/predictions")
    assert [e.step for e in imgs] == [0, 1]
    assert imgs[0].width > 50 and imgs[0].height > 50 and imgs[0].encoded_image_string.startswith(b"\x89PNG")


@pytest.mark.slow
def test_missing_tensorboard_names_the_extra():
    code = """
        import sys
        sys.modules["tensorboard"] = None
        from tiers.train import TensorBoardCallback
        try:
            TensorBoardCallback()
        except ModuleNotFoundError as e:
            print("ERROR:", type(e).__name__, e, getattr(e, "__notes__", []))
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=240,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert 'pip install "tiers-train[tensorboard]"' in r.stdout and "MissingExtraError" in r.stdout, r.stdout


@needs_tb
def test_a_cancelled_validation_leaves_its_epoch_out_of_the_valid_scalars(tmp_path):
    from tiers.train import Callback, CancelValidException

    class SkipFirstValidation(Callback):
        def before_validate(self):
            if self.learn.epoch == 0:
                raise CancelValidException()

    learn = _learner(tmp_path)
    learn.fit(2, 1e-2, cbs=[SkipFirstValidation(), TensorBoardCallback("runs", log_every_batch=False)])
    acc = _events(tmp_path / "runs")
    assert _scalars(acc, "epoch/train_loss")[0] == [0, 1]
    steps, vals = _scalars(acc, "epoch/valid_loss")
    assert steps == [1] and vals == pytest.approx([learn.recorder.history[1]["valid_loss"]], rel=1e-6)
    assert _scalars(acc, "epoch/accuracy")[0] == [1]
