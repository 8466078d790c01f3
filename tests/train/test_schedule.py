"""Schedules at known points, their combination, and the one-cycle / flat-cos / SGDR policies on a real fit."""

import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import Adam
from tiers.train import (
    CrossEntropyLossFlat,
    Learner,
    ParamScheduler,
    SchedCos,
    SchedExp,
    SchedLin,
    SchedNo,
    SchedPoly,
    combine_scheds,
    combined_cos,
)


def test_annealers_at_known_points():
    assert [SchedLin(0, 10)(p) for p in (0, 0.25, 1)] == [0, 2.5, 10]
    assert SchedCos(0, 10)(0) == pytest.approx(0) and SchedCos(0, 10)(0.5) == pytest.approx(5)
    assert SchedCos(0, 10)(1) == pytest.approx(10) and SchedCos(0, 10)(0.25) == pytest.approx(10 * (1 - math.cos(math.pi / 4)) / 2)
    assert SchedNo(3, 10)(0.7) == 3
    assert SchedExp(1e-4, 1e-2)(0.5) == pytest.approx(1e-3)
    assert SchedPoly(0, 8, 3)(0.5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="must be positive"):
        SchedExp(0, 1)


def test_schedules_accept_per_group_arrays_and_pickle():
    f = SchedLin([0.0, 1.0], [1.0, 3.0])
    np.testing.assert_allclose(f(0.5), [0.5, 2.0])
    g = pickle.loads(pickle.dumps(combined_cos(0.3, 1, 2, 0)))
    assert g(0.3) == pytest.approx(2)


def test_combine_scheds():
    f = combine_scheds([0.3, 0.7], [SchedLin(0, 1), SchedLin(1, 0)])
    assert f(0) == 0 and f(0.15) == pytest.approx(0.5) and f(0.3) == pytest.approx(1)
    assert f(0.65) == pytest.approx(0.5) and f(1.0) == pytest.approx(0)
    # zero-length phases are skipped
    h = combine_scheds([0.0, 1.0], [SchedNo(9, 9), SchedLin(0, 1)])
    assert h(0) == 0 and h(0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must be non-negative and sum to 1"):
        combine_scheds([0.5, 0.6], [SchedNo(0, 0), SchedNo(0, 0)])
    with pytest.raises(ValueError, match="2 pcts for 1 schedules"):
        combine_scheds([0.5, 0.5], [SchedNo(0, 0)])


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 0.95), st.floats(0, 1))
def test_combined_cos_stays_between_its_bounds(pct, pos):
    f = combined_cos(pct, 1.0, 10.0, 0.01)
    assert 0.01 - 1e-9 <= f(pos) <= 10.0 + 1e-9
    assert f(pct) == pytest.approx(10.0)


def make_learn(n_groups=1, n=64, bs=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=bs), DataLoader(TensorDataset(x[:16], y[:16]), batch_size=bs))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    splitter = (lambda m: [list(m[i].parameters()) for i in (0, 2, 4)]) if n_groups == 3 else (lambda m: list(m.parameters()))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), opt_func=Adam, splitter=splitter)
    learn.logger = lambda *a: None
    return learn


def test_one_cycle_lr_and_momentum_curves():
    learn = make_learn()
    learn.fit_one_cycle(2, lr_max=1e-2, pct_start=0.25, div=25.0, div_final=1e4)
    lrs, moms = np.array(learn.recorder.hps["lr"]), np.array(learn.recorder.hps["mom"])
    n = len(lrs)
    assert n == 16 and lrs[0] == pytest.approx(1e-2 / 25)
    peak = int(np.argmax(lrs))
    assert peak == 4 and lrs[peak] == pytest.approx(1e-2, rel=1e-6)  # 25% of 16 batches
    assert np.all(np.diff(lrs[: peak + 1]) > 0) and np.all(np.diff(lrs[peak:]) < 0)
    assert lrs[-1] == pytest.approx(combined_cos(0.25, 4e-4, 1e-2, 1e-6)(15 / 16))
    # momentum goes the opposite way: 0.95 -> 0.85 at the peak -> back up
    assert moms[0] == pytest.approx(0.95) and moms[peak] == pytest.approx(0.85)
    assert int(np.argmin(moms)) == peak and moms[-1] > 0.94
    # the scheduler really drove the optimizer, and the recorder saw the same lrs
    np.testing.assert_allclose(learn.recorder.lrs, lrs)
    assert learn.opt.hypers[0]["mom"] == pytest.approx(moms[-1])


def test_one_cycle_with_discriminative_lrs_reaches_each_group():
    learn = make_learn(n_groups=3)
    seen = []

    class Spy(ParamScheduler):
        order = 61

        def __init__(self):
            super().__init__({"noop": lambda p: 0})

        def before_batch(self):
            seen.append([g["lr"] for g in self.learn.opt.param_groups])

    learn.fit_one_cycle(1, lr_max=slice(1e-4, 1e-2), pct_start=0.5, cbs=Spy())
    peaks = np.max(np.array(seen), axis=0)
    np.testing.assert_allclose(peaks, [1e-4, 1e-3, 1e-2], rtol=1e-3)


def test_fit_with_slice_sets_group_lrs():
    learn = make_learn(n_groups=3)
    learn.fit(1, lr=slice(1e-5, 1e-3))
    np.testing.assert_allclose([h["lr"] for h in learn.opt.hypers], [1e-5, 1e-4, 1e-3])
    learn.fit(1, lr=slice(1e-3))
    np.testing.assert_allclose([h["lr"] for h in learn.opt.hypers], [1e-4, 1e-4, 1e-3])


def test_fit_flat_cos_and_sgdr_shapes():
    learn = make_learn()
    learn.fit_flat_cos(2, lr=1e-2, pct_start=0.5)
    lrs = np.array(learn.recorder.hps["lr"])
    assert np.allclose(lrs[:8], 1e-2) and lrs[-1] < 1e-3 and np.all(np.diff(lrs[8:]) < 0)

    learn = make_learn()
    learn.fit_sgdr(2, 1, lr_max=1e-2)  # cycles of 1 then 2 epochs: 3 epochs in all
    lrs = np.array(learn.recorder.hps["lr"])
    assert len(lrs) == 24 and lrs[0] == pytest.approx(1e-2) and lrs[8] == pytest.approx(1e-2)  # restart
    assert lrs[7] < 1e-3 and lrs[-1] < 1e-4
    with pytest.raises(ValueError, match="n_cycles=0"):
        learn.fit_sgdr(0, 1)


def test_fine_tune_freezes_then_unfreezes_with_discriminative_lrs():
    learn = make_learn(n_groups=3)
    w_body = learn.model[0].weight.detach().clone()
    calls = []
    orig = learn.fit_one_cycle

    def spy(n_epoch, lr_max=None, **kw):
        calls.append((n_epoch, lr_max, [p.requires_grad for p in learn.model[0].parameters()]))
        return orig(n_epoch, lr_max, **kw)

    learn.fit_one_cycle = spy
    learn.fine_tune(1, base_lr=2e-3, freeze_epochs=1)
    assert calls[0][0] == 1 and calls[0][1] == slice(None, 2e-3, None) and calls[0][2] == [False, False]
    assert calls[1][1] == slice(1e-3 / 100, 1e-3) and calls[1][2] == [True, True]
    assert not torch.equal(w_body, learn.model[0].weight)


def test_param_scheduler_needs_schedules():
    with pytest.raises(TypeError, match="non-empty dict"):
        ParamScheduler([])
