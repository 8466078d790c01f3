"""`lr_find` after some training (fastbook ch. 5: fit_one_cycle, unfreeze, lr_find; AUDIT3 E12): batch noise on a
loss that is already near its floor must not end the search as a "divergence", a genuine divergence still stops it
early, and when too few points remain the error says what really happened. Real training on tiny models."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import SGD, Adam
from tiers.train import Learner, LRFinder


def _data(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] - x[:, 1] > 0).long()


def _learner(tmp_path, x, y, shuffle=True, opt_func=Adam, n_train=384, bs=16, seed=0) -> Learner:
    torch.manual_seed(seed)
    dls = DataLoaders(DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=bs, shuffle=shuffle),
                      DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=64))
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    learn = Learner(dls, model, loss_func=F.cross_entropy, opt_func=opt_func, path=tmp_path)
    learn.logger = lambda *a: None
    return learn


def _trained(tmp_path, seed: int) -> Learner:
    # A separable task trained to a loss of ~0.01: the state lr_find meets after fit_one_cycle in the book.
    learn = _learner(tmp_path, *_data(), seed=seed)
    with learn.no_logging():
        learn.fit_one_cycle(12, 3e-2)
    return learn


def test_lr_find_on_a_loss_near_its_floor_suggests_every_time(tmp_path):
    # The audit's repro (seeds 0-7: train, then lr_find): the old rule stopped at batch 2-4 and refused for about
    # half of them, blaming a divergence.
    refused, curves = {}, {}
    for seed in range(8):
        learn = _trained(tmp_path, seed)
        assert learn.validate()[0] < 0.05  # near its floor: what made batch noise trip the old 4x rule
        w = [p.detach().clone() for p in learn.model.parameters()]
        torch.manual_seed(100 + seed)  # the search's batch order
        try:
            res = learn.lr_find(show_plot=False)
        except ValueError as e:
            refused[seed] = str(e)
            continue
        assert type(res).__name__ == "SuggestedLRs" and res._fields == ("valley",)
        assert 1e-7 <= res.valley <= 10 and math.isfinite(res.valley)
        curves[seed] = list(learn.recorder.losses)
        assert all(torch.equal(a, b) for a, b in zip(w, learn.model.parameters()))  # the search put weights back
    assert not refused, f"lr_find refused on a trained model: {refused}"
    for losses in curves.values():
        assert min(losses[:10]) < 0.05  # the search did start from the small loss
        assert len(losses) > 50  # it swept well past the start; it ended where the lr made the loss blow up
        assert losses[-1] > 4 * min(losses[10:])


def test_a_genuine_divergence_still_stops_early(tmp_path):
    # Fresh model, SGD, an lr range that ends far too high: the search stops on the 4x rule well before num_it,
    # within a couple of batches of where fastai's rule (smoothed loss > 4x its best) first holds.
    learn = _learner(tmp_path, *_data(), opt_func=SGD)
    cb = LRFinder(start_lr=1e-3, end_lr=1e6, num_it=100)
    with learn.no_logging():
        learn.fit(10, cbs=cb)
    assert cb.stop_reason == "diverged"
    losses = learn.recorder.losses
    stop = int(cb.stop_info["iteration"])
    assert stop == len(losses) < 100
    assert cb.stop_info["loss"] > 4 * cb.stop_info["best"] and cb.stop_info["best"] == pytest.approx(min(losses))
    first = next(i for i in range(cb.min_it, len(losses) + 1) if losses[i - 1] > 4 * min(losses[cb.min_it - 1:i]))
    assert first <= stop <= first + cb.n_recent
    # lr_find itself: same stop, suggestions from the recorded curve
    torch.manual_seed(0)
    res = learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=100, show_plot=False)
    assert len(learn.recorder.lrs) < 100 and 1e-3 <= res.valley <= 1e6


def test_a_loss_that_goes_non_finite_stops_at_once_and_says_so(tmp_path):
    x, _ = _data()
    y = x.sum(1, keepdim=True) * 1e6  # huge targets: MSE with SGD at lr >= 1 overflows in a few steps
    torch.manual_seed(0)
    dls = DataLoaders(DataLoader(TensorDataset(x[:384], y[:384]), batch_size=16, shuffle=True),
                      DataLoader(TensorDataset(x[384:], y[384:]), batch_size=64))
    learn = Learner(dls, nn.Linear(4, 1), loss_func=F.mse_loss, opt_func=SGD, path=tmp_path)
    learn.logger = lambda *a: None
    with pytest.raises(ValueError, match=r"only 0 usable points: the loss became (nan|inf) at batch \d+ of num_it=100 "
                       r"\(lr=.*\), at the start of the sweep: start_lr=1000 is too high"):
        learn.lr_find(start_lr=1e3, end_lr=1e6, show_plot=False)
    assert len(learn.recorder.lrs) < 10  # stopped at once, before the divergence rule even looks (min_it=10)


def test_too_few_points_on_a_loss_at_its_floor_says_so_not_diverged(tmp_path):
    # The trained model, searched over batches in a fixed order: the first 10 easy (the loss ~0.01), the later ones
    # mislabelled. The loss jumps at lr ~1e-6, where nothing diverges: the error must say the loss is at its floor.
    x, y = _data()
    y[160:384] = 1 - y[160:384]
    search = _learner(tmp_path, x, y, shuffle=False)
    search.model.load_state_dict(_trained(tmp_path, 0).model.state_dict())
    with pytest.raises(ValueError) as info:
        search.lr_find(show_plot=False)
    msg = str(info.value)
    assert msg.startswith("lr_find: only 0 usable points: the search stopped at batch 1")
    assert "near its floor" in msg and "keep the current lr" in msg and "nothing to find" in msg
    assert "diverged" not in msg and "lower end_lr" not in msg
    best = float(msg.split("near its floor (")[1].split(")")[0])
    assert 0 < best < 0.05  # the small loss, shown


def test_too_few_points_for_a_tiny_num_it_names_num_it(tmp_path):
    learn = _learner(tmp_path, *_data())
    with pytest.raises(ValueError, match=r"only 1 usable points: num_it=6 is too small"):
        learn.lr_find(num_it=6, show_plot=False)
