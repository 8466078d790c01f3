"""Audit: the training behaviours a fastai user relies on without checking them (callbacks, metrics, lr_find,
get_preds), on a tiny linearly separable problem so every run takes well under a second."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tiers.data.all import DataLoaders
from tiers.train.all import (
    Callback,
    CrossEntropyLossFlat,
    CSVLogger,
    EarlyStoppingCallback,
    F1Score,
    GradientAccumulation,
    Learner,
    MSELossFlat,
    ReduceLROnPlateau,
    SaveModelCallback,
    accuracy,
    error_rate,
    rmse,
)


def _cls_dls(n=160, n_valid=40, bs=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + n_valid, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return DataLoaders.from_dsets(TensorDataset(x[:n], y[:n]), TensorDataset(x[n:], y[n:]), bs=bs)


def _reg_dls(n=48, n_valid=16, bs=8):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n + n_valid, 4, generator=g)
    y = 2 * x[:, 0]
    return DataLoaders.from_dsets(TensorDataset(x[:n], y[:n]), TensorDataset(x[n:], y[n:]), bs=bs)


def _learner(tmp_path, dls=None, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return Learner(dls or _cls_dls(), model, loss_func=CrossEntropyLossFlat(), path=tmp_path, **kw)


def test_metric_columns_follow_the_metrics_in_order(tmp_path):
    learn = _learner(tmp_path, metrics=[accuracy, error_rate, F1Score()])
    learn.fit_one_cycle(1, 1e-2)
    assert list(learn.recorder.metric_names) == ["epoch", "train_loss", "valid_loss", "accuracy", "error_rate",
                                                 "f1_score", "time"]
    acc, err = learn.recorder.values[-1][2:4]
    assert acc + err == pytest.approx(1.0)


def test_save_model_callback_keeps_the_best_epoch_and_loads_it_at_the_end(tmp_path):
    learn = _learner(tmp_path, metrics=accuracy)
    best_states = []

    class KeepStates(Callback):
        order = 100  # after the Recorder has the epoch's metrics

        def after_epoch(self):
            best_states.append((self.learn.recorder.values[-1][1], copy.deepcopy(self.learn.model.state_dict())))
            if self.epoch == 1:  # spoil the model: the later epochs are worse, the best one is epoch 1
                with torch.no_grad():
                    self.learn.model[-1].weight.neg_()

    learn.fit(4, 1e-2, cbs=[SaveModelCallback(monitor="valid_loss", fname="best"), KeepStates()])
    assert (tmp_path / "models" / "best.pth").exists()
    losses = [v for v, _ in best_states]
    assert losses.index(min(losses)) == 1, losses
    _, best = best_states[1]
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, best[k]), k


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    learn = _learner(tmp_path)
    learn.fit(20, 1e-7, cbs=EarlyStoppingCallback(monitor="valid_loss", min_delta=0.1, patience=2))
    assert len(learn.recorder.values) == 3  # epoch 0 sets the best, 1 and 2 do not beat it by min_delta


def test_csv_logger_writes_one_row_per_epoch_with_the_table_header(tmp_path):
    learn = _learner(tmp_path, metrics=accuracy)
    learn.fit(2, 1e-2, cbs=CSVLogger())
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,valid_loss,accuracy,time"
    assert [ln.split(",")[0] for ln in lines[1:]] == ["0", "1"]


def test_gradient_accumulation_steps_once_per_n_acc_samples(tmp_path):
    learn = _learner(tmp_path)
    steps = []

    class CountSteps(Callback):
        def after_step(self):
            steps.append(self.learn.iter)

    learn.fit(1, 1e-2, cbs=[GradientAccumulation(n_acc=32), CountSteps()])
    assert len(steps) == 160 // 32  # bs=16: every second batch


def test_reduce_lr_on_plateau_lowers_the_learning_rate(tmp_path):
    learn = _learner(tmp_path)
    learn.fit(3, 1e-2, cbs=ReduceLROnPlateau(monitor="valid_loss", patience=0, min_delta=10, factor=10.0))
    assert learn.opt.hypers[-1]["lr"] < 1e-2 / 5


def test_lr_find_leaves_the_weights_as_they_were(tmp_path):
    learn = _learner(tmp_path)
    before = copy.deepcopy(learn.model.state_dict())
    res = learn.lr_find(num_it=20, show_plot=False)
    assert 1e-7 <= res.valley <= 10
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_get_preds_runs_in_eval_mode_so_dropout_is_off(tmp_path):
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1))
    learn = Learner(_reg_dls(), model, loss_func=MSELossFlat(), path=tmp_path)
    p1, t1 = learn.get_preds()
    p2, _ = learn.get_preds()
    assert torch.equal(p1, p2) and p1.shape == (16, 1) and t1.shape == (16,)


def test_get_preds_for_a_classifier_gives_probabilities_and_decoded_classes(tmp_path):
    learn = _learner(tmp_path)
    learn.fit(1, 1e-2)
    probs, targs, dec = learn.get_preds(with_decoded=True)
    assert probs.shape == (40, 2) and torch.allclose(probs.sum(1), torch.ones(40))
    assert torch.equal(dec, probs.argmax(1)) and targs.shape == (40,)
    inp, probs2, _, losses = learn.get_preds(with_input=True, with_loss=True)
    assert inp.shape == (40, 4) and losses.shape == (40,) and torch.allclose(probs, probs2)


def test_plain_mse_loss_refuses_shapes_it_would_broadcast(tmp_path):
    learn = Learner(_reg_dls(), nn.Linear(4, 1), loss_func=nn.MSELoss(), path=tmp_path)
    with pytest.raises(ValueError, match="MSELossFlat"):
        learn.fit(1, 1e-2)


def test_flat_mse_loss_trains_the_same_model(tmp_path):
    learn = Learner(_reg_dls(), nn.Linear(4, 1), loss_func=MSELossFlat(), metrics=rmse, path=tmp_path)
    learn.fit(3, 1e-1)
    first, last = learn.recorder.values[0][1], learn.recorder.values[-1][1]
    assert last < first


def test_two_way_callbacks_change_what_the_loop_uses(tmp_path):
    """The paper's callbacks read AND write the loop's state: xb before the forward, pred after it, loss before
    backward; CancelStepException skips the optimizer step; run_valid=False keeps a callback out of validation."""
    from tiers.train.all import CancelStepException

    learn = _learner(tmp_path)
    seen = {"x_zeroed": False, "valid_calls": 0}

    class TwoWay(Callback):
        run_valid = False

        def before_batch(self):
            self.learn.xb = (self.xb[0] * 0,)

        def after_pred(self):
            seen["x_zeroed"] = bool((self.learn.xb[0] == 0).all())

        def after_loss(self):
            seen["valid_calls"] += 0 if self.training else 1
            self.learn.loss = self.loss * 0 + 123.0

        def before_step(self):
            raise CancelStepException()

    before = copy.deepcopy(learn.model.state_dict())
    learn.fit(1, 1e-1, cbs=TwoWay())
    assert seen["x_zeroed"] and seen["valid_calls"] == 0
    assert learn.recorder.losses[-1] == pytest.approx(123.0, rel=1e-3)  # the callback's loss is what was recorded
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, before[k]), k  # every step cancelled


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    from functools import partial

    from tiers.train.all import SGD

    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = (x[:, 0] > 0).long()

    def run(bs, cbs):
        torch.manual_seed(1)
        model = nn.Linear(4, 2)
        init = model.weight.detach().clone()
        dls = DataLoaders.from_dsets(TensorDataset(x, y), TensorDataset(x[:8], y[:8]), bs=bs)
        learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), opt_func=partial(SGD, mom=0.0), path=tmp_path)
        learn.fit(1, 0.1, cbs=cbs)
        return init, model.weight.detach().clone()

    init, big = run(32, [])
    assert not torch.equal(init, big)
    for bs in (16, 8):
        _, acc = run(bs, [GradientAccumulation(n_acc=32)])
        assert torch.allclose(acc, big, atol=1e-6), bs
