"""Audit: the learning-rate and momentum schedules of fit_one_cycle (defaults and pct_start/div/div_final),
fit_flat_cos, fit_sgdr and fit give fastai 2.8.12's value at every training batch (recorded from fastai)."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tiers.data.all import DataLoaders
from tiers.train.all import Callback, Learner, MSELossFlat

FASTAI = {'1cycle': [[0.001, 0.9], [0.0004, 0.95], [0.0010430781, 0.943301], [0.0028000001, 0.925], [0.0052, 0.9],
            [0.0076000003, 0.875], [0.0093569218, 0.856699], [0.01, 0.85], [0.0099240396, 0.85076],
            [0.009698466, 0.853015], [0.0093301337, 0.856699], [0.008830234, 0.861698],
            [0.0082139557, 0.867861], [0.0075000249, 0.875], [0.0067101331, 0.882899],
            [0.0058682826, 0.891318], [0.00500005, 0.9], [0.0041318174, 0.908682], [0.0032899665, 0.917101],
            [0.0025000747, 0.925], [0.0017861435, 0.932139], [0.0011698666, 0.938302],
            [0.0006699664, 0.943301], [0.0003016338, 0.946985]],
 '1cycle_pct': [[0.001, 0.9], [0.001, 0.95], [0.0013425421, 0.946194], [0.0023180195, 0.935355],
                [0.0037779246, 0.919134], [0.0055, 0.9], [0.0072220754, 0.880866], [0.0086819805, 0.864645],
                [0.0096574579, 0.853806], [0.01, 0.85], [0.0096232037, 0.853806], [0.0085501786, 0.864645],
                [0.006944283, 0.880866], [0.00505, 0.9], [0.003155717, 0.919134], [0.0015498214, 0.935355]],
 'fit': [[0.003, 0.9], [0.003, 0.9], [0.003, 0.9], [0.003, 0.9], [0.003, 0.9], [0.003, 0.9], [0.003, 0.9],
         [0.003, 0.9]],
 'flat_cos': [[0.001, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9],
              [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9],
              [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9], [0.01, 0.9],
              [0.0093301331, 0.9], [0.0075000261, 0.9], [0.00500005, 0.9], [0.0025000739, 0.9]],
 'sgdr': [[0.001, 0.9], [0.01, 0.9], [0.0096193977, 0.9], [0.0085355339, 0.9], [0.0069134172, 0.9],
          [0.005, 0.9], [0.0030865837, 0.9], [0.0014644661, 0.9], [0.0003806027, 0.9], [0.01, 0.9],
          [0.0099039264, 0.9], [0.0096193978, 0.9], [0.0091573479, 0.9], [0.0085355339, 0.9],
          [0.0077778508, 0.9], [0.0069134176, 0.9], [0.0059754516, 0.9], [0.0049999991, 0.9],
          [0.0040245484, 0.9], [0.0030865828, 0.9], [0.0022221481, 0.9], [0.0014644661, 0.9],
          [0.0008426519, 0.9], [0.0003806016, 0.9]]}

RUNS = {
    "1cycle": lambda learn: learn.fit_one_cycle(3, 1e-2),
    "1cycle_pct": lambda learn: learn.fit_one_cycle(2, 1e-2, pct_start=0.5, div=10, div_final=100),
    "flat_cos": lambda learn: learn.fit_flat_cos(3, 1e-2),
    "sgdr": lambda learn: learn.fit_sgdr(2, 1, 1e-2),
    "fit": lambda learn: learn.fit(1, 3e-3),
}


class _Record(Callback):
    order = 50

    def before_fit(self):
        self.seen = []

    def before_batch(self):
        if self.training:
            h = self.opt.hypers[-1]
            self.seen.append([float(h["lr"]), float(h["mom"])])


@pytest.mark.parametrize("name", list(RUNS))
def test_schedule_matches_fastai(name, tmp_path):
    x = torch.randn(80, 4)
    dls = DataLoaders.from_dsets(TensorDataset(x[:64], x[:64, 0]), TensorDataset(x[64:], x[64:, 0]), bs=8)
    learn = Learner(dls, nn.Linear(4, 1), loss_func=MSELossFlat(), path=tmp_path)
    rec = _Record()
    learn.add_cb(rec)
    RUNS[name](learn)
    assert len(rec.seen) == len(FASTAI[name])
    for got, want in zip(rec.seen, FASTAI[name]):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-9)
