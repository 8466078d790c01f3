"""tiers.train.checks and their place in the loop: no silent wrong results (issue 17).

A bad learning rate, a NaN loss, a loss that broadcasts output and target, labels beyond the model's outputs, and
errors raised by the model, the loss or backward: each is refused or explained before it can train on garbage."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, CrossEntropyLossFlat, Learner, MSELossFlat, TerminateOnNaNCallback
from tiers.train.checks import (
    NonFiniteLossError,
    annotate_backward_error,
    annotate_forward_error,
    annotate_loss_error,
    check_finite_loss,
    check_loss_inputs,
    check_lr,
    check_recorded_losses,
)
from tiers.train.events import CancelBatchException


def _dls(x, y, bs=8, valid=8):
    return DataLoaders(DataLoader(TensorDataset(x, y), bs), DataLoader(TensorDataset(x[:valid], y[:valid]), bs))


def _cls_dls(n=32, n_cls=2, bs=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return _dls(x, torch.arange(n) % n_cls, bs)


def _learner(dls, model=None, loss_func=None, **kw):
    torch.manual_seed(0)
    learn = Learner(dls, model if model is not None else nn.Linear(4, 2),
                    loss_func=loss_func if loss_func is not None else CrossEntropyLossFlat(), **kw)
    learn.logger = lambda *a: None
    return learn


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _notes(e):
    return "\n".join(getattr(e, "__notes__", []))


# ------------------------------------------------------------------------------------------------------- check_lr
@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -1e-3, slice(1e-4, float("nan")), [1e-3, float("inf")],
                                np.array([1e-3, -1.0]), torch.tensor(float("nan"))])
def test_check_lr_refuses_nan_inf_and_negative_naming_the_value(lr):
    with pytest.raises(ValueError, match=r"fit: lr=.*(not a finite number|negative)"):
        check_lr(lr)


@pytest.mark.parametrize("lr", [0, 0.0, slice(0.0, 0.0), [0.0, 0.0]])
def test_check_lr_warns_on_zero(lr):
    with pytest.warns(UserWarning, match=r"lr=.* is 0, so training will not change the weights"):
        check_lr(lr)


@pytest.mark.parametrize("lr", [None, 1e-3, 1, slice(1e-5, 1e-3), slice(None, 1e-3), [0.0, 1e-3], np.array([1e-4, 1e-3])])
def test_check_lr_accepts_usual_values_silently(lr):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_lr(lr)


def test_check_lr_refuses_what_is_not_a_number():
    with pytest.raises(TypeError, match="lr='fast' is not a number"):
        check_lr("fast")


def test_fit_refuses_nan_lr_before_any_step():
    learn = _learner(_cls_dls())
    before = _weights(learn.model)
    with pytest.raises(ValueError, match="lr=nan is not a finite number"):
        learn.fit(1, float("nan"))
    assert _same(before, _weights(learn.model))
    with pytest.raises(ValueError, match="lr=-0.1 is negative"):
        learn.fit(1, -0.1)


@pytest.mark.parametrize("method,kw", [("fit_one_cycle", {"lr_max": float("nan")}), ("fit_flat_cos", {"lr": -1.0}),
                                       ("fine_tune", {"base_lr": float("inf")})])
def test_the_schedules_refuse_a_bad_lr_naming_themselves(method, kw):
    learn = _learner(_cls_dls())
    before = _weights(learn.model)
    with pytest.raises(ValueError, match=rf"{method}: .*lr=(nan|-1.0|inf) is"):
        getattr(learn, method)(1, **kw)
    assert _same(before, _weights(learn.model))
    with pytest.raises(ValueError, match="fit_sgdr: lr=nan"):
        learn.fit_sgdr(1, 1, lr_max=float("nan"))


def test_fit_with_zero_lr_warns_naming_lr():
    learn = _learner(_cls_dls())
    with pytest.warns(UserWarning, match="lr=0.0 is 0"):
        learn.fit(1, 0.0)


# ------------------------------------------------------------------------------------------------- finite loss
def test_check_finite_loss():
    check_finite_loss(torch.tensor(0.5), 0, 0)
    check_finite_loss(torch.tensor([float("nan"), 1.0]), 0, 0)  # not a scalar: backward reports it
    with pytest.raises(NonFiniteLossError, match="loss is inf at epoch 2, batch 7") as ei:
        check_finite_loss(torch.tensor(float("inf"), requires_grad=True), 2, 7)
    assert isinstance(ei.value, FloatingPointError)
    assert "lower learning rate" in str(ei.value) and "GradientClip" in str(ei.value)


def test_nan_loss_stops_the_fit_before_its_step_keeping_the_last_finite_weights():
    x = torch.randn(32, 4)
    x[19, 1] = float("nan")  # batch 2 of the first epoch (no shuffling)
    learn = _learner(_dls(x, torch.arange(32) % 2))
    seen = []
    learn.add_cb(Callback(after_step=lambda self: seen.append(_weights(self.learn.model))))
    with pytest.raises(NonFiniteLossError, match="loss is nan at epoch 0, batch 2"):
        learn.fit(3, 1e-2)
    assert len(seen) == 2  # batches 0 and 1 stepped, batch 2 did not
    after = _weights(learn.model)
    assert all(torch.isfinite(p).all() for p in after)
    assert _same(seen[-1], after)


def test_on_a_gpu_the_nan_check_rides_on_the_values_the_recorder_reads():
    # The GPU path run on CPU: the loop's per-batch check off, the Recorder's on (as fit sets them for a CUDA model).
    x = torch.randn(32, 4)
    x[19, 1] = float("nan")

    def as_on_gpu(self):
        self.learn._check_nan, self.learn._check_nan_late = False, check_recorded_losses

    learn = _learner(_dls(x, torch.arange(32) % 2), cbs=Callback(before_fit=as_on_gpu))
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at training batch 2 of the fit \(epoch 0\).*\d+ steps? later"):
        learn.fit(3, 1e-2)
    assert learn.epoch == 0 and not learn._check_nan_late  # stopped in the first epoch, raised once
    _ = learn.recorder.losses  # reading the record afterwards does not raise again


def test_a_callback_can_skip_nan_batches_itself_and_terminate_on_nan_still_stops_quietly():
    x = torch.randn(32, 4)
    x[3, 0] = float("nan")

    def skip(self):
        if not torch.isfinite(self.learn.loss_grad):
            raise CancelBatchException()

    learn = _learner(_dls(x, torch.arange(32) % 2), cbs=Callback(after_loss=skip))
    before = _weights(learn.model)
    learn.fit(1, 1e-2)
    after = _weights(learn.model)
    assert all(torch.isfinite(p).all() for p in after) and not _same(before, after)

    learn = _learner(_dls(x, torch.arange(32) % 2), cbs=TerminateOnNaNCallback())
    learn.fit(2, 1e-2)  # fastai's behaviour when asked for: the fit ends without an exception
    assert learn.epoch == 0


def test_lr_find_still_stops_on_divergence():
    learn = _learner(_cls_dls(n=64))
    learn.lr_find(start_lr=1e-2, end_lr=1e12, num_it=40, show_plot=False)
    assert len(learn.recorder.lrs) < 40


# ------------------------------------------------------------------------------------------- check_loss_inputs
@pytest.mark.parametrize("loss", [nn.MSELoss(), nn.L1Loss(), nn.SmoothL1Loss(), nn.HuberLoss(), F.mse_loss,
                                  F.l1_loss, nn.BCEWithLogitsLoss(), F.binary_cross_entropy_with_logits])
def test_check_loss_inputs_refuses_an_elementwise_loss_that_would_broadcast(loss):
    with pytest.raises(ValueError, match=r"output has shape \(8, 1\) but the target has shape \(8,\).*\(8, 8\).*"
                                         r"MSELossFlat.*squeeze"):
        check_loss_inputs(loss, torch.rand(8, 1), (torch.rand(8),))


def test_check_loss_inputs_lets_through_what_is_fine():
    check_loss_inputs(nn.MSELoss(), torch.rand(8, 1), (torch.rand(8, 1),))
    check_loss_inputs(MSELossFlat(), torch.rand(8, 1), (torch.rand(8),))  # flattens: no broadcast
    check_loss_inputs(nn.MSELoss(), torch.rand(8, 3), (torch.rand(5),))  # torch refuses this one itself
    check_loss_inputs(nn.CrossEntropyLoss(), torch.rand(8, 3), (torch.tensor([0, 1, 2, 2, 1, 0, -100, 1]),))
    check_loss_inputs(nn.CrossEntropyLoss(), torch.rand(8, 3), (torch.rand(8, 3),))  # soft labels (probabilities)
    check_loss_inputs(CrossEntropyLossFlat(axis=1), torch.rand(2, 5, 4, 4), (torch.randint(0, 5, (2, 4, 4)),))


@pytest.mark.parametrize("loss,pred,targ,msg", [
    (nn.CrossEntropyLoss(), torch.rand(8, 2), torch.arange(8) % 5, r"2 classes on dim 1, but a target label is 4"),
    (F.cross_entropy, torch.rand(8, 1), torch.arange(8) % 2, r"1 class on dim 1, but a target label is 1"),
    (nn.NLLLoss(), torch.rand(8, 3), torch.tensor([0, 1, -1, 2, 0, 1, 2, 0]), r"a target label is -1"),
    (CrossEntropyLossFlat(axis=1), torch.rand(2, 5, 4, 4), torch.full((2, 4, 4), 6), r"5 classes on dim 1.*label is 6"),
])
def test_check_loss_inputs_refuses_labels_beyond_the_outputs(loss, pred, targ, msg):
    with pytest.raises(ValueError, match=msg + r".*check n_out"):
        check_loss_inputs(loss, pred, (targ,))


def test_fit_refuses_a_broadcasting_loss_before_any_step():
    x = torch.randn(32, 4)
    learn = _learner(_dls(x, x.sum(1)), model=nn.Linear(4, 1), loss_func=nn.MSELoss())
    before = _weights(learn.model)
    with pytest.raises(ValueError, match=r"loss MSELoss: .*\(8, 1\).*\(8,\)"):
        learn.fit(1, 1e-2)
    assert _same(before, _weights(learn.model))
    learn.loss_func = MSELossFlat()
    learn.fit(1, 1e-2)  # the fix the message names trains
    assert not _same(before, _weights(learn.model))


def test_fit_refuses_labels_beyond_n_out_on_the_first_batch_and_notes_them_on_a_later_one():
    learn = _learner(_cls_dls(n_cls=5))
    with pytest.raises(ValueError, match="the model has 2 outputs but a label is 4"):
        learn.fit(1, 1e-2)
    y = torch.zeros(32, dtype=torch.long)
    y[20] = 7  # batch 2: the first-batch check cannot see it, torch's own error gets the note
    learn = _learner(_dls(torch.randn(32, 4), y))
    with pytest.raises(IndexError, match="out of bounds") as ei:
        learn.fit(1, 1e-2)
    assert "the model has 2 outputs but a label is 7" in _notes(ei.value)
    assert "CrossEntropyLossFlat" in _notes(ei.value)


# -------------------------------------------------------------------------------------------------- annotations
def test_forward_error_is_noted_with_the_batch_and_the_channels_fix():
    x, y = torch.rand(8, 3, 8, 8), torch.arange(8) % 2
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    learn = _learner(_dls(x, y, bs=4, valid=4), model=model)
    with pytest.raises(RuntimeError, match="channels") as ei:
        learn.fit(1, 1e-2)
    note = _notes(ei.value)
    assert "the model's forward (Sequential) on a batch of shape (4, 3, 8, 8) float32" in note
    assert "expects 1 channel but the batch has 3" in note and "n_in=3" in note and "PILImageBW" in note


def test_annotate_forward_error_linear_size_and_once_only():
    model = nn.Linear(3, 2)
    x = torch.rand(8, 4)
    try:
        model(x)
    except RuntimeError as e:
        annotate_forward_error(e, model, (x,))
        annotate_forward_error(e, model, (x,))  # a nested Learner notes it once
        assert len(e.__notes__) == 1
        assert "expects 3 input features but gets 4" in e.__notes__[0]
    c = CancelBatchException()
    annotate_forward_error(c, model, (x,))  # the loop's control flow is never noted
    assert not getattr(c, "__notes__", None)


def test_loss_errors_are_noted_with_shapes_dtypes_and_fix():
    x = torch.randn(32, 4)
    learn = _learner(_dls(x, torch.rand(32) * 3), loss_func=nn.CrossEntropyLoss())
    with pytest.raises(RuntimeError, match="Long") as ei:
        learn.fit(1, 1e-2)
    note = _notes(ei.value)
    assert "the loss CrossEntropyLoss on the model's output of shape (8, 2) float32 and a target of shape (8,) float32" in note
    assert ".long()" in note and "MSELossFlat" in note

    class Wrong(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 6)

        def forward(self, x):
            return self.lin(x).view(-1, 2, 3)

    learn = _learner(_cls_dls(), model=Wrong())
    with pytest.raises(ValueError, match="batch_size") as ei:
        learn.fit(1, 1e-2)
    assert "output of shape (8, 2, 3)" in _notes(ei.value) and "missing Flatten" in _notes(ei.value)


def test_annotate_loss_error_out_of_bounds():
    pred, targ = torch.rand(4, 3), torch.tensor([0, 1, 2, 9])
    try:
        F.cross_entropy(pred, targ)
    except IndexError as e:
        annotate_loss_error(e, F.cross_entropy, pred, (targ,))
        assert "the model has 3 outputs but a label is 9" in e.__notes__[0]
        assert "loss cross_entropy" in e.__notes__[0]


def test_a_loss_without_reduction_is_noted_at_backward():
    learn = _learner(_cls_dls(), loss_func=nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(RuntimeError, match="scalar outputs") as ei:
        learn.fit(1, 1e-2)
    assert "tensor of shape (8,)" in _notes(ei.value) and "reduction='mean'" in _notes(ei.value)
    loss = torch.ones(3, requires_grad=True) * 2
    try:
        loss.backward()
    except RuntimeError as e:
        annotate_backward_error(e, loss)
        assert "reduction='mean'" in e.__notes__[0]


def test_happy_path_unchanged():
    learn = _learner(_cls_dls())
    before = _weights(learn.model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        learn.fit(2, 1e-2)
    after = _weights(learn.model)
    assert not _same(before, after) and all(torch.isfinite(p).all() for p in after)
    assert math.isfinite(learn.recorder.values[-1][0])


def test_one_hot_targets_with_a_flat_cross_entropy_name_the_fix():
    # AUDIT C10: Keras' to_categorical habit; the flat loss doubles the targets and torch says only "batch_size"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = F.one_hot((x[:, 0] > 0).long(), 2)  # (32, 2) int64, only 0/1
    dls = DataLoaders(DataLoader(TensorDataset(x[:24], y[:24]), batch_size=8),
                      DataLoader(TensorDataset(x[24:], y[24:]), batch_size=8))
    learn = Learner(dls, nn.Linear(4, 2), loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError) as e, learn.no_bar(), learn.no_logging():
        learn.fit(1)
    notes = "\n".join(getattr(e.value, "__notes__", []))
    assert "the targets look one-hot (shape (8, 2), only 0/1)" in notes, notes
    assert "y.argmax(1)" in notes and "BCEWithLogitsLossFlat()" in notes
    # the fix works
    dls = DataLoaders(DataLoader(TensorDataset(x[:24], y[:24].argmax(1)), batch_size=8),
                      DataLoader(TensorDataset(x[24:], y[24:].argmax(1)), batch_size=8))
    learn = Learner(dls, nn.Linear(4, 2), loss_func=CrossEntropyLossFlat())
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)


def test_check_loss_inputs_names_ignore_index_for_a_value_beyond_the_classes():
    # a segmentation mask with 'void' pixels (255) and a loss without ignore_index: the fix is named
    with pytest.raises(ValueError, match=r"label is 255.*give the loss ignore_index=255"):
        check_loss_inputs(CrossEntropyLossFlat(axis=1), torch.rand(2, 5, 4, 4), (torch.full((2, 4, 4), 255),))
    with pytest.raises(ValueError, match=r"label is -1") as exc:  # a negative label: no such hint
        check_loss_inputs(nn.NLLLoss(), torch.rand(8, 3), (torch.tensor([0, 1, -1, 2, 0, 1, 2, 0]),))
    assert "ignore_index" not in str(exc.value)
