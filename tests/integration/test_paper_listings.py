"""Extending the library from user code, checked against tiers' own implementations: fastai's LAMB written from
steppers (trust ratio clamped at 10, as fastai's `lamb_step`) against `Lamb`, and the paper's Dice metric against
`tiers.train.Dice`, step by step and inside a Learner.

The paper's listings as printed (the LAMB stepper with its clamp at 1, the Dice class, the DataBlocks of 3.1 and
the plain-PyTorch adoption of 3.2) run in test_paper_printed_core.py; the text DataBlock in test_text_listings.py.
"""

from functools import partial

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import Lamb, Optimizer, average_grad, average_sqr_grad, debias, step_stat
from tiers.train import CrossEntropyLossFlat, Learner, Metric, flatten_check
from tiers.train import Dice as TiersDice


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared 2-core machine: tiny models run faster on one thread
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- LAMB, written by the user from steppers


def lamb_step(p, lr, mom, step, sqr_mom, grad_avg, sqr_avg, eps, **kwargs):
    debias1 = debias(mom, 1 - mom, step)
    debias2 = debias(sqr_mom, 1 - sqr_mom, step)
    r1 = p.data.pow(2).mean().sqrt()
    step = (grad_avg / debias1) / ((sqr_avg / debias2).sqrt() + eps)
    r2 = step.pow(2).mean().sqrt()
    q = 1 if r1 == 0 or r2 == 0 else min(r1 / r2, 10)
    p.data.add_(step, alpha=-lr * q)  # the paper's `add_(-lr*q, step)`, in today's torch argument order


# `debias(mom, 1-mom, step)` undoes the bias of a *dampened* average, so the gradient average is the dampened one
# (as in fastai's and tiers' Lamb); the squared average is dampened by default.
opt_func = partial(Optimizer, cbs=[partial(average_grad, dampening=True), average_sqr_grad, step_stat, lamb_step])


def _model(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    nn.init.zeros_(m[2].bias)  # a zero-norm parameter: exercises the `r1 == 0` branch (trust ratio 1)
    return m


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] - x[:, 1] > 0).long() + (x[:, 2] > 1).long()


def test_lamb_listing_matches_tiers_lamb_step_by_step():
    x, y = _data()
    ours, ref = _model(), _model()
    hypers = dict(lr=3e-2, mom=0.9, sqr_mom=0.99, eps=1e-5)
    opt_user = opt_func(ours.parameters(), **hypers)
    opt_tiers = Lamb(ref.parameters(), **hypers)
    start = [p.detach().clone() for p in ours.parameters()]
    for i in range(6):
        xb, yb = x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]
        for model, opt in ((ours, opt_user), (ref, opt_tiers)):
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            opt.zero_grad()
        for a, b in zip(ours.parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(not torch.equal(s, p) for s, p in zip(start, ours.parameters()))  # the steps did move everything


def test_lamb_listing_as_a_learner_opt_func():
    x, y = _data(96, seed=1)

    def dls():
        return DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16),
                           DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32))

    learners = []
    for f in (partial(opt_func, sqr_mom=0.99, eps=1e-5), Lamb):
        learn = Learner(dls(), _model(), loss_func=nn.CrossEntropyLoss(), opt_func=f)
        learn.logger = lambda *a: None
        learn.fit_one_cycle(2, 1e-2)  # one-cycle schedules lr and mom: both optimizers read them per step
        learners.append(learn)
    user, tiers_ = learners
    for a, b in zip(user.model.parameters(), tiers_.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert user.recorder.values[-1][0] < user.recorder.values[0][0] * 1.5


# ---------------------------------------------------------------- the custom Dice metric


class Dice(Metric):
    def __init__(self, axis=1):
        self.axis = axis

    def reset(self):
        self.inter, self.union = 0, 0

    def accumulate(self, learn):
        pred, targ = flatten_check(learn.pred.argmax(self.axis), learn.y)
        self.inter += (pred * targ).float().sum().item()
        self.union += (pred + targ).float().sum().item()

    @property
    def value(self):
        return 2.0 * self.inter / self.union if self.union > 0 else None


def _segmentation_dls(n=48, size=12, seed=0):
    """Images holding one bright square on noise; the mask marks the square (a 2-class segmentation)."""
    g = torch.Generator().manual_seed(seed)
    xs, masks = torch.randn(n, 1, size, size, generator=g) * 0.3, torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        s = int(torch.randint(3, 7, (1,), generator=g))
        r, c = (int(v) for v in torch.randint(0, size - s, (2,), generator=g))
        xs[i, 0, r:r + s, c:c + s] += 1.0
        masks[i, r:r + s, c:c + s] = 1
    return DataLoaders(DataLoader(TensorDataset(xs[:32], masks[:32]), batch_size=8, shuffle=True),
                       DataLoader(TensorDataset(xs[32:], masks[32:]), batch_size=8))


def test_custom_dice_metric_in_a_learner_matches_tiers_dice():
    torch.manual_seed(0)
    dls = _segmentation_dls()
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1))
    user_dice, tiers_dice = Dice(), TiersDice()
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(axis=1), metrics=[user_dice, tiers_dice])
    learn.logger = lambda *a: None
    learn.fit_one_cycle(3, 2e-2)
    for row in learn.recorder.values:
        assert row[-2] == pytest.approx(row[-1])
    assert learn.recorder.values[-1][-2] > 0.5  # the squares are easy: a trained model overlaps them well

    # and both equal the Dice computed by hand over the validation set
    preds, targs = learn.get_preds()
    p, t = preds.argmax(1).flatten(), targs.flatten()
    expected = 2.0 * float((p * t).sum()) / float((p + t).sum())
    assert user_dice.value == pytest.approx(expected) and tiers_dice.value == pytest.approx(expected)

    # no prediction and no target pixel: undefined, not zero
    user_dice.reset()
    assert user_dice.value is None
