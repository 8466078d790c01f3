"""In-process exact resume: stop a fit at batch k, resume from the checkpoint, compare with a straight run."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, CancelFitException, CheckpointCallback, Learner, load_checkpoint_state


def _learn(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 5, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    dls = DataLoaders(DataLoader(TensorDataset(x, y), 8, shuffle=True), DataLoader(TensorDataset(x, y), 16))
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.3), nn.ReLU(), nn.Linear(8, 2))
    return Learner(dls, model, loss_func=nn.CrossEntropyLoss(), path=tmp_path)


def _stop_at(k):
    count = [0]

    def after_batch(self):
        if self.learn.training:
            count[0] += 1
            if count[0] == k:
                raise CancelFitException()

    cb = Callback(after_batch=after_batch)
    cb.order = 95  # after the checkpoint was written
    return cb


@pytest.mark.parametrize("k", [3, 6, 8])
def test_resume_matches_straight_run(tmp_path, k):
    straight = _learn(tmp_path)
    with straight.no_logging(), straight.no_bar():
        straight.fit(2, 1e-2)
    learn = _learn(tmp_path)
    with learn.no_logging(), learn.no_bar():
        learn.fit(2, 1e-2, cbs=[CheckpointCallback("ck", every_n_batches=1), _stop_at(k)])
        torch.manual_seed(999)  # a fresh process would have different RNG state
        fresh = _learn(tmp_path)
        with fresh.no_logging(), fresh.no_bar():
            fresh.fit(2, 1e-2, resume="ck")
    for a, b in zip(straight.model.parameters(), fresh.model.parameters()):
        assert torch.equal(a, b)


def test_corrupt_checkpoint_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pth"):
        load_checkpoint_state(bad)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_checkpoint_state(tmp_path / "missing.pth")


def test_fit_owns_resume_parameter():
    # resume is part of Learner.fit itself, not added by replacing the method when checkpoint is imported.
    import inspect

    import tiers.train.learner as learner_mod

    fit = learner_mod.Learner.__dict__["fit"]
    assert fit.__module__ == "tiers.train.learner" and fit.__qualname__ == "Learner.fit"
    assert "resume" in inspect.signature(fit).parameters
    for name in ("fit_one_cycle", "fit_flat_cos", "fit_sgdr"):
        assert "resume" in inspect.signature(getattr(learner_mod.Learner, name)).parameters


@pytest.mark.parametrize("method", ["fit_one_cycle", "fit_flat_cos"])
def test_scheduled_fit_resumes_like_straight_run(tmp_path, method):
    straight = _learn(tmp_path)
    with straight.no_logging(), straight.no_bar():
        getattr(straight, method)(2, 1e-2)
    learn = _learn(tmp_path)
    with learn.no_logging(), learn.no_bar():
        getattr(learn, method)(2, 1e-2, cbs=[CheckpointCallback("ck", every_n_batches=1), _stop_at(8)])
        torch.manual_seed(999)
        fresh = _learn(tmp_path)
        with fresh.no_logging(), fresh.no_bar():
            getattr(fresh, method)(2, 1e-2, resume="ck")
    for a, b in zip(straight.model.parameters(), fresh.model.parameters()):
        assert torch.equal(a, b)


def test_resume_with_start_epoch_or_in_fine_tune_is_refused(tmp_path):
    learn = _learn(tmp_path)
    with learn.no_logging(), learn.no_bar():
        learn.fit(1, 1e-2, cbs=CheckpointCallback("ck"))
        with pytest.raises(ValueError, match="start_epoch=1 and resume"):
            learn.fit(2, 1e-2, start_epoch=1, resume="ck")
        with pytest.raises(ValueError, match="fine_tune: resume="):
            learn.fine_tune(1, resume="ck")
        with pytest.raises(FileNotFoundError, match="nope"):
            learn.fit(2, resume="nope")


def test_resume_takes_the_loop_counters_from_the_saved_loop_state(tmp_path):
    # The checkpoint holds learn.state's counters; resume restores pct_train/train_iter from them (not re-derived).
    learn = _learn(tmp_path)
    with learn.no_logging(), learn.no_bar():
        learn.fit(2, 1e-2, cbs=[CheckpointCallback("ck", every_n_batches=1), _stop_at(8)])
    saved = learn.state.state_dict()
    loop = load_checkpoint_state(tmp_path / "models" / "ck.pth")["loop"]
    assert loop["train_iter"] == saved["train_iter"] == 8 and loop["pct_train"] == pytest.approx(saved["pct_train"])
    seen = []
    first = Callback(before_batch=lambda self: seen.append((self.learn.train_iter, self.learn.pct_train))
                     if self.learn.training and not seen else None)
    fresh = _learn(tmp_path)
    with fresh.no_logging(), fresh.no_bar():
        fresh.fit(2, 1e-2, resume="ck", cbs=first)
    assert seen == [(8, pytest.approx(loop["pct_train"]))]  # the first batch after resume sees the saved counters
    assert fresh.train_iter == 12 and fresh.pct_train == pytest.approx(1.0)
