"""An interrupted `lr_find` (Ctrl-C, an error, or a callback cancelling the fit) puts the Learner back exactly as it
was: every weight and buffer, train/eval modes, the optimizer's state and hypers, the loop's state and the
callbacks; errors and interrupts are re-raised. Real training on a tiny model; the interrupt comes from a callback
after the optimizer step of batch `k`, when the weights have moved under lr_find's growing learning rates."""

import copy
import os
import signal
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import SGD, Adam
from tiers.train import Callback, CancelFitException, Learner, LRFinder

K = 5  # the training batch of lr_find after whose step the interrupt comes


def _learner(tmp_path, opt_func=Adam) -> Learner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=8, shuffle=True),
                      DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16))
    torch.manual_seed(0)
    # BatchNorm: buffers (running stats, batch count) that a training step changes too.
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, loss_func=F.cross_entropy, opt_func=opt_func, path=tmp_path)
    learn.logger = lambda *a: None
    learn.fit(1, 1e-2)  # an optimizer with real state (moments, step counts) to put back
    learn.model[1].eval()  # a mixed train/eval layout that a fit would overwrite
    return learn


class Interrupt(Callback):
    """Raises `exc` (a class or an instance) after the step of lr_find's training batch `k` (1-based)."""

    def __init__(self, exc: BaseException | type[BaseException], k: int = K, event: str = "after_step") -> None:
        self.exc, self.k, self.event, self.fired, self.moved = exc, k, event, False, False

    def _maybe(self, event: str) -> None:
        learn = self.learn
        if event != self.event or not any(isinstance(c, LRFinder) for c in learn.cbs):
            return
        if event == "before_fit" or (learn.training and learn.train_iter + 1 == self.k):  # counted after the step
            self.fired = True
            self.moved = not all(torch.equal(p, q) for p, q in zip(learn.model.parameters(), _SNAP["params"]))
            raise self.exc

    def before_fit(self) -> None:
        self._maybe("before_fit")

    def after_step(self) -> None:
        self._maybe("after_step")


_SNAP: dict = {}


def _equal(a, b) -> bool:
    # Deep equality of state dicts: tensors by value (and dtype/shape), containers item by item.
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _everything(learn: Learner) -> dict:
    """A deep copy of all that lr_find must leave as it found it."""
    return {
        "params": [p.detach().clone() for p in learn.model.parameters()],
        "model": copy.deepcopy(learn.model.state_dict()),
        "modes": [m.training for m in learn.model.modules()],
        "opt": copy.deepcopy(learn.opt.state_dict()),
        "hypers": copy.deepcopy(learn.opt.hypers),
        "loop": learn.state.state_dict(),
        "validating": learn.state.validating,
        "cbs": list(learn.cbs),
        "runs": [cb.run for cb in learn.cbs],
        "logger": learn.logger,
        "lr": learn.lr,
        "requires_grad": [p.requires_grad for p in learn.model.parameters()],
    }


def _assert_restored(learn: Learner, before: dict) -> None:
    now = _everything(learn)
    assert all(torch.equal(a, b) for a, b in zip(before["params"], now["params"])), "weights not restored"
    assert _equal(before["model"], now["model"]), "buffers (BatchNorm running stats) not restored"
    assert before["modes"] == now["modes"], "train/eval modes not restored"
    assert _equal(before["opt"], now["opt"]), "optimizer state not restored"
    assert _equal(before["hypers"], now["hypers"]), "optimizer hypers (lr, mom) not restored"
    for k in ("loop", "validating", "runs", "lr", "requires_grad"):
        assert before[k] == now[k], k
    assert now["cbs"] == before["cbs"] and all(a is b for a, b in zip(now["cbs"], before["cbs"]))
    assert not any(isinstance(c, LRFinder) for c in learn.cbs) and "l_r_finder" not in learn.__dict__
    assert now["logger"] is before["logger"]
    assert all(p.grad is None or not p.grad.any() for p in learn.model.parameters())  # no gradient of lr_find left


def _run(learn, cb, tmp_path):
    learn.add_cb(cb)
    _SNAP.clear()
    _SNAP.update(_everything(learn))
    return _SNAP


def _nothing_written(tmp_path) -> None:
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temp file anywhere under the Learner's path


@pytest.mark.parametrize("opt_func", [Adam, SGD, torch.optim.AdamW], ids=["adam", "sgd", "torch-adamw"])
def test_keyboard_interrupt_mid_lr_find_restores_everything_and_reraises(tmp_path, opt_func):
    learn = _learner(tmp_path, opt_func)
    cb = Interrupt(KeyboardInterrupt)
    before = _run(learn, cb, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        learn.lr_find(num_it=50, show_plot=False)
    assert cb.fired and cb.moved  # the weights had moved when the interrupt came
    _assert_restored(learn, before)
    _nothing_written(tmp_path)


def test_an_error_mid_lr_find_restores_everything_and_is_reraised_unchanged(tmp_path):
    learn = _learner(tmp_path)
    err = RuntimeError("boom at batch 5")
    cb = Interrupt(err)
    before = _run(learn, cb, tmp_path)
    with pytest.raises(RuntimeError) as info:
        learn.lr_find(num_it=50, show_plot=False)
    assert info.value is err and info.value.args == ("boom at batch 5",)
    assert cb.fired and cb.moved
    _assert_restored(learn, before)
    _nothing_written(tmp_path)


def test_another_callback_cancelling_the_fit_mid_lr_find_restores_everything(tmp_path):
    learn = _learner(tmp_path)
    cb = Interrupt(CancelFitException, k=25)
    before = _run(learn, cb, tmp_path)
    res = learn.lr_find(num_it=50, show_plot=False)  # a cancel is no error: the search ends early, suggestions follow
    # cancelled in batch 25's after_step: its after_batch never ran, so the recorder holds the 24 before it
    assert cb.fired and cb.moved and len(learn.recorder.lrs) == 24 and res.valley > 0
    _assert_restored(learn, before)
    _nothing_written(tmp_path)


def test_a_cancel_before_lr_finder_starts_restores_everything(tmp_path):
    # A callback ordered before LRFinder (order 60) cancels in before_fit: LRFinder's own before_fit never ran.
    learn = _learner(tmp_path)
    cb = Interrupt(CancelFitException, event="before_fit")
    before = _run(learn, cb, tmp_path)
    with pytest.raises(ValueError, match="only 0 usable points"):
        learn.lr_find(num_it=50, show_plot=False)
    assert cb.fired
    _assert_restored(learn, before)
    _nothing_written(tmp_path)


def test_lr_find_after_an_interrupted_one_runs_from_the_same_weights(tmp_path):
    # The next lr_find (and fit) after an interrupted one starts from the weights of before: same curve as a fresh run.
    learn = _learner(tmp_path, SGD)
    ref = copy.deepcopy(learn)
    cb = Interrupt(KeyboardInterrupt)
    learn.add_cb(cb)
    with pytest.raises(KeyboardInterrupt):
        learn.lr_find(num_it=30, show_plot=False, suggest_funcs=None)
    learn.remove_cb(cb)
    torch.manual_seed(1)
    learn.lr_find(num_it=30, show_plot=False, suggest_funcs=None)
    torch.manual_seed(1)
    ref.lr_find(num_it=30, show_plot=False, suggest_funcs=None)
    assert learn.recorder.losses == ref.recorder.losses


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_mid_lr_find_says_the_weights_are_back(tmp_path):
    class CtrlC(Callback):
        def after_loss(self) -> None:
            if self.learn.training and self.learn.train_iter + 1 == K:
                os.kill(os.getpid(), signal.SIGINT)  # real SIGINT: the progress callback stops after this step

    learn = _learner(tmp_path)
    learn.add_cb(CtrlC())
    before = _run(learn, Callback(), tmp_path)
    with pytest.raises(KeyboardInterrupt) as info:
        learn.lr_find(num_it=50, show_plot=False)
    assert str(info.value) == (f"interrupted lr_find at batch {K}: the model's weights and the optimizer's state are "
                               "back to those from before lr_find")
    _assert_restored(learn, before)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _nothing_written(tmp_path)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_twice_mid_lr_find_still_restores(tmp_path):
    # Two Ctrl-C stop in the middle of the batch (before its step): lr_find still puts everything back.
    class CtrlC2(Callback):
        def after_loss(self) -> None:
            if self.learn.training and self.learn.train_iter + 1 == K:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)

    learn = _learner(tmp_path)
    learn.add_cb(CtrlC2())
    before = _run(learn, Callback(), tmp_path)
    with pytest.raises(KeyboardInterrupt, match="back to those from before lr_find$"):
        learn.lr_find(num_it=50, show_plot=False)
    _assert_restored(learn, before)
    _nothing_written(tmp_path)


def test_a_completed_lr_find_leaves_the_learner_as_it_found_it(tmp_path):
    # The search's own stop: weights, buffers, modes, optimizer and loop state back; the recorder keeps the search.
    learn = _learner(tmp_path)
    before = _run(learn, Callback(), tmp_path)
    res = learn.lr_find(num_it=30, show_plot=False)
    assert res.valley > 0 and len(learn.recorder.lrs) == 30
    _assert_restored(learn, before)
    _nothing_written(tmp_path)
