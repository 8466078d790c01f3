"""The Recorder's bulk smoothing gives exactly (bit for bit) the fastai-style running smoothed loss of the raw losses."""

import io

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, Learner, ProgressCallback


def test_smoothed_losses_are_bit_identical_to_the_running_formula():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(400, 5, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:320], y[:320]), batch_size=8),
                      DataLoader(TensorDataset(x[320:], y[320:]), batch_size=40))
    torch.manual_seed(0)
    raw = []
    grab = Callback(after_loss=lambda self: raw.append(self.learn.loss.item()) if self.learn.training else None)
    learn = Learner(dls, nn.Linear(5, 2), loss_func=F.cross_entropy, lr=0.2, cbs=grab)
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=io.StringIO()))
    learn.fit(2)
    beta, ema, ref = learn.recorder.beta, 0.0, []
    for n, v in enumerate(raw, 1):
        ema = ema * beta + v * (1 - beta)
        ref.append(ema / (1 - beta**n))
    assert len(raw) == 80 and learn.recorder.losses == ref
    assert learn.recorder.values[-1][0] == ref[-1]  # the epoch's train_loss is the last smoothed value
