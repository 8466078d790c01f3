"""Audit: one whole fit, end to end, lands where fastai 2.8.12 lands. Same data, same initial weights, unshuffled
loaders, Adam with weight decay 0.01, fit_one_cycle(3, 1e-2): every recorded value (smoothed train loss, valid loss,
accuracy), every smoothed batch loss and the final first-layer weights match fastai's (recorded in the bench
environment) to float32 rounding. This ties together the loop, the callbacks' order, the schedule, the optimizer
(decoupled decay, debiasing) and the Recorder's smoothing."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tiers.data.all import DataLoaders
from tiers.train.all import Adam, CrossEntropyLossFlat, Learner, accuracy

FASTAI = {'losses': [0.6295580863952637, 0.6576017737388611, 0.6530006527900696, 0.6592377424240112, 0.649215579032898,
            0.6503907442092896, 0.6470857262611389, 0.6468674540519714, 0.637889564037323, 0.6362746357917786,
            0.634282648563385, 0.6338435411453247],
 'values': [[0.6592377424240112, 0.654015302658081, 0.53125],
            [0.6468674540519714, 0.6240276098251343, 0.71875],
            [0.6338435411453247, 0.613774299621582, 0.75]],
 'w': [-0.04940592870116234, 0.24574100971221924, -0.38316288590431213, -0.35232535004615784,
       -0.15422417223453522, 0.17536084353923798, -0.045618657022714615, 0.3623075783252716,
       0.0004097019846085459, 0.13979123532772064, -0.178907111287117, -0.10911761969327927,
       -0.43631213903427124, -0.28758564591407776, -0.1977483332157135, 0.02384624257683754,
       0.2471124827861786, 0.32961171865463257, -0.3628496527671814, -0.24420954287052155,
       0.23618368804454803, 0.45169514417648315, -0.08895425498485565, 0.349714994430542,
       -0.023585498332977295, 0.08676055818796158, 0.46656933426856995, -0.47189199924468994,
       -0.3642856478691101, -0.17858313024044037, -0.1686747819185257, 0.43895837664604187]}


def test_fit_one_cycle_matches_fastai_end_to_end(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    dls = DataLoaders.from_dsets(TensorDataset(x[:64], y[:64]), TensorDataset(x[64:], y[64:]), bs=16, shuffle=False)
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=[accuracy], opt_func=Adam, wd=0.01,
                    path=tmp_path)
    learn.fit_one_cycle(3, 1e-2)
    for got, want in zip(learn.recorder.values, FASTAI["values"]):
        assert [float(v) for v in got] == pytest.approx(want, abs=1e-5)
    assert [float(v) for v in learn.recorder.losses] == pytest.approx(FASTAI["losses"], abs=1e-5)
    assert model[0].weight.flatten().tolist() == pytest.approx(FASTAI["w"], abs=1e-6)
