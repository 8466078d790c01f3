"""The written-out batch loop (`Learner._run_batches`) is the general path (`one_batch` -> `_with_events(_do_one_batch,
"batch")`) with fewer calls: every test runs both side by side (a subclass overriding `one_batch` takes the general
path) and compares the events fired, the loop state each handler saw, the recorded losses and the trained weights."""

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.tensors import TensorBase, TensorImage
from tiers.train import (
    Callback,
    CancelBatchException,
    CancelStepException,
    CastToTensor,
    Learner,
    ProgressCallback,
    accuracy,
)
from tiers.train.events import EVENT_NAMES


class General(Learner):
    """The general path: overriding `one_batch` turns the written-out loop off."""

    def one_batch(self, i, b):
        super().one_batch(i, b)


def _dls(typed=False, n=80, bs=16):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    if typed:  # typed tensors, as tiers' own loaders give them
        x, y = TensorImage(x), TensorBase(y)
    return DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=bs),
                       DataLoader(TensorDataset(x[64:], y[64:]), batch_size=bs))


class Trace(Callback):
    """Every event with what the loop state holds then; `order` places it among the other callbacks."""

    def __init__(self, log, order=0, events=EVENT_NAMES):
        self.log, self.order = log, order
        for name in events:
            if name != "after_create":
                setattr(self, name, (lambda n: lambda: self._seen(n))(name))

    def _seen(self, name):
        learn = self.learn
        if learn is None:  # removed by a handler of the same event that ran before it
            self.log.append((name, "removed"))
            return
        st = learn.state
        xb = st.xb
        x_type = type(xb[0]).__name__ if xb else None
        loss = None if st.loss is None else round(float(st.loss), 6)
        self.log.append((name, st.training, st.iter, st.train_iter, round(st.pct_train, 9), x_type, loss))


def _fit(cls, cbs=(), typed=False, epochs=2, **kw):
    torch.manual_seed(0)
    learn = cls(_dls(typed), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy,
                lr=0.1, metrics=accuracy, cbs=list(cbs), **kw)
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=io.StringIO()))
    learn.fit(epochs)
    return learn


def _weights(learn):
    return torch.cat([p.detach().flatten() for p in learn.model.parameters()])


def _same_run(a, b):
    assert torch.equal(_weights(a), _weights(b))
    assert a.recorder.losses == b.recorder.losses
    assert a.recorder.values == b.recorder.values
    assert a.recorder.lrs == b.recorder.lrs
    assert a.state.state_dict() == b.state.state_dict()


def _both(make_cbs, **kw):
    logs = []
    runs = []
    for cls in (Learner, General):
        log = []
        runs.append(_fit(cls, make_cbs(log), **kw))
        logs.append(log)
    _same_run(*runs)
    assert logs[0] == logs[1]
    return logs[0], runs[0]


def test_the_written_out_loop_runs_by_default_and_not_under_an_override():
    calls = []

    class Spy(Learner):
        def _run_batches(self, dl):
            calls.append(self.training)
            super()._run_batches(dl)

    _fit(Spy, epochs=1)
    assert calls == [True, False]  # one call per pass: the written-out loop ran
    calls.clear()

    class SpyGeneral(Spy):
        def one_batch(self, i, b):
            super().one_batch(i, b)

    _fit(SpyGeneral, epochs=1)
    assert calls == []


def test_every_event_and_the_state_each_handler_sees_are_the_same():
    log, _ = _both(lambda log: [Trace(log, order=-20), Trace(log, order=100)])
    batch_events = [e for e, *_ in log if e == "after_batch"]
    assert len(batch_events) == 2 * 2 * (4 + 1)  # two tracers, two epochs, 4 training + 1 validation batches
    # the batch is counted before every callback's after_batch, and the loss is there from after_loss on
    first = [r for r in log if r[0] == "after_batch" and r[1]][0]
    assert first[3] == 1 and first[6] is not None


def test_events_nobody_handles_are_skipped_without_changing_a_thing():
    # only the default callbacks (most batch events have no handler) against a fit that handles one of each
    _, plain = _both(lambda log: [])
    _, traced = _both(lambda log: [Trace(log, events=("after_pred", "after_loss", "after_step"))])
    _same_run(plain, traced)


@pytest.mark.parametrize("where", ["before_batch", "after_pred", "after_loss", "before_backward", "before_step"])
def test_cancelling_a_batch_or_a_step_is_the_same_on_both_paths(where):
    def make(log):
        def cancel(self):
            if self.learn.training and self.learn.iter == 1:
                raise CancelStepException() if where == "before_step" else CancelBatchException()

        return [Callback(**{where: cancel}), Trace(log, order=100)]

    log, learn = _both(make)
    if where == "before_step":
        assert sum(1 for e, *_ in log if e == "after_cancel_step") == 2
    else:
        assert sum(1 for e, *_ in log if e == "after_cancel_batch") == 2
    assert learn.state.train_iter == 8  # a cancelled batch is still counted


def test_a_handler_changing_the_callbacks_mid_pass_takes_effect_at_the_same_point():
    def make(log):
        extra = Trace(log, order=100, events=("before_batch", "after_pred", "after_batch"))

        class Adder(Callback):
            def before_batch(self):
                if self.learn.training and self.learn.iter == 1:
                    self.learn.add_cb(extra)  # its after_pred runs in this batch, its after_batch from the next

            def after_batch(self):
                if self.learn.training and self.learn.iter == 2:
                    self.learn.remove_cb(extra)

        return [Adder()]

    log, _ = _both(make)
    # added during batch 1's before_batch: its after_pred runs in that batch (read after before_batch), its after_batch
    # from the next (read at the batch's start); removed during batch 2's after_batch: it still ran once, detached
    once = [("after_pred", True, 1), ("before_batch", True, 2), ("after_pred", True, 2), ("after_batch", "removed")]
    assert [r[:3] for r in log] == once * 2  # each epoch


def test_cast_to_tensor_still_strips_typed_batches_and_batches_a_callback_typed():
    seen = []

    class SeeModelInput(Callback):
        order = 20  # after CastToTensor

        def after_pred(self):
            seen.append((type(self.learn.xb[0]), type(self.learn.yb[0])))

    class Retype(Callback):
        order = 0  # before CastToTensor: a plain batch becomes typed, CastToTensor must still run

        def before_batch(self):
            self.learn.xb = (TensorImage(self.learn.xb[0]),)

    for cbs, typed in (([SeeModelInput()], True), ([SeeModelInput(), Retype()], False)):
        seen.clear()
        learn = _fit(Learner, cbs, typed=typed, epochs=1)
        assert seen and set(seen) == {(torch.Tensor, torch.Tensor)}
        ref = _fit(General, [type(c)() for c in cbs], typed=typed, epochs=1)
        _same_run(learn, ref)


def test_a_cast_to_tensor_subclass_or_a_muted_one_is_honoured():
    class Counting(CastToTensor):
        calls = 0

        def before_batch(self):
            type(self).calls += 1
            super().before_batch()

    learn = _fit(Learner, [Counting()], epochs=1)
    assert Counting.calls == 5  # a subclass's own before_batch is never skipped
    assert sum(isinstance(c, CastToTensor) for c in learn.cbs) == 2


def test_errors_in_handlers_and_the_model_carry_the_same_notes():
    def boom(self):
        if self.learn.iter == 2:
            raise RuntimeError("boom")

    notes = []
    for cls in (Learner, General):
        with pytest.raises(RuntimeError, match="boom") as exc:
            _fit(cls, [Callback(after_pred=boom)], epochs=1)
        notes.append(exc.value.__notes__)
    assert notes[0] == notes[1] and "during event after_pred" in notes[0][0]


def test_the_recorder_is_written_out_in_training_unless_changed_or_not_first():
    from tiers.train import Recorder

    learn = _fit(Learner, epochs=1)
    assert learn._bp[1][8] is not None and learn._bp[1][8][0] is learn.recorder  # training: written out
    assert learn._bp[0][8] is None  # validation: its handler (the metrics) runs

    calls = []

    class MyRecorder(Recorder):
        def after_batch(self):
            calls.append(self.learn.training)
            super().after_batch()

    torch.manual_seed(0)
    learn = Learner(_dls(), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy,
                    lr=0.1, cbs=[MyRecorder()], default_cbs=False)
    learn.fit(1)
    assert learn._bp[1][8] is None and calls == [True] * 4 + [False]  # a subclass's own after_batch is called
    assert len(learn.my_recorder.lrs) == 4 and len(learn.my_recorder.losses) == 4
    # a callback handling after_batch before the Recorder: the handlers keep their order (nothing written out)
    seen = []
    first = Callback(after_batch=lambda self: seen.append(len(self.learn.recorder._log.pending)))
    first.order = 10
    learn = _fit(Learner, [first], epochs=1)
    assert learn._bp[1][8] is None and seen[:4] == [0, 1, 2, 3]


class _Toggle(Callback):
    """Mutes the Recorder on some batches (and, with `train_metrics`, turns its train metrics on): the written-out
    Recorder and its handler must record the same."""

    order = 0

    def __init__(self, train_metrics=False):
        self.train_metrics = train_metrics

    def before_fit(self):
        self.learn.recorder.train_metrics = self.train_metrics

    def before_batch(self):
        self.learn.recorder.run = self.learn.iter != 2

    def after_fit(self):
        self.learn.recorder.train_metrics = False


@pytest.mark.parametrize("make", [lambda log: [], lambda log: [_Toggle()], lambda log: [_Toggle(train_metrics=True)],
                                  lambda log: [Trace(log, order=60)]])
def test_the_written_out_recorder_records_what_its_handler_records(make):
    _, learn = _both(make)
    muted = any(isinstance(cb, _Toggle) for cb in learn.cbs)
    assert len(learn.recorder.lrs) == len(learn.recorder.losses) == 2 * (3 if muted else 4)


class _CountPaths(Learner):
    """Counts the batches the steady loop ran and those that went through `one_batch` (the general path)."""

    def __init__(self, *a, **kw):
        self.general = 0
        super().__init__(*a, **kw)

    def one_batch(self, i, b):
        self.general += 1
        super().one_batch(i, b)

    def all_batches(self):  # the written-out loop despite the `one_batch` override (it only counts)
        self._run_batches(self.state.dl)


def _count_paths(typed, one_cycle, cbs=()):
    torch.manual_seed(0)
    learn = _CountPaths(_dls(typed), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
                        loss_func=F.cross_entropy, lr=0.1, metrics=accuracy, cbs=list(cbs))
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=io.StringIO()))
    (learn.fit_one_cycle if one_cycle else learn.fit)(2)
    return learn


@pytest.mark.parametrize("typed", [False, True])
@pytest.mark.parametrize("one_cycle", [False, True])
def test_the_steady_loop_runs_every_batch_after_the_first_of_a_fit(typed, one_cycle):
    # plain or typed batches (CastToTensor strips them), with or without a schedule's before_batch: only the fit's
    # first batch (its checks) goes through the general path
    learn = _count_paths(typed, one_cycle)
    assert learn.general == 1 and learn.state.train_iter == 8


def test_a_plan_with_after_pred_or_after_loss_handlers_takes_the_general_path():
    learn = _count_paths(False, False, [Callback(after_loss=lambda self: None)])
    assert learn.general == 2 * (4 + 1)


@pytest.mark.parametrize("typed", [False, True])
def test_a_one_cycle_fit_is_the_same_on_both_paths(typed):
    def fit_one_cycle(cls):
        torch.manual_seed(0)
        learn = cls(_dls(typed), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy,
                    metrics=accuracy)
        learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=io.StringIO()))
        learn.fit_one_cycle(2, 0.1)
        return learn

    a, b = fit_one_cycle(Learner), fit_one_cycle(General)
    _same_run(a, b)
    assert a.recorder.hps["lr"] == b.recorder.hps["lr"]


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x, scale=None):
        out = self.lin(x)
        return out if scale is None else out * scale


def test_a_before_batch_handler_that_reshapes_the_batch_is_finished_by_the_general_path():
    # a handler that adds a second input (or swaps the batch for another) mid-pass: the rest of that batch runs as
    # the general path runs it, with the handlers read at the batch's start
    def make(log):
        def add_input(self):
            if self.learn.iter == 2:
                self.learn.xb = (*self.learn.xb, torch.tensor(0.5))
            elif self.learn.iter == 3:
                self.learn.xb = (self.learn.xb[0] * 2,)

        return [Callback(before_batch=add_input), Trace(log, order=100, events=_OUTER)]

    runs, logs = [], []
    for cls in (_CountPaths, General):
        log = []
        torch.manual_seed(0)
        learn = cls(_dls(), _TwoInputs(), loss_func=F.cross_entropy, lr=0.1, metrics=accuracy, cbs=make(log))
        learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=io.StringIO()))
        learn.fit(2)
        runs.append(learn)
        logs.append(log)
    _same_run(*runs)
    assert logs[0] == logs[1]
    assert runs[0].general == 1  # the reshaped batches too started on the steady loop


def test_a_fit_whose_nan_check_a_callback_owns_is_the_same_on_both_paths():
    from tiers.train import TerminateOnNaNCallback

    _, learn = _both(lambda log: [TerminateOnNaNCallback(), Trace(log, order=100, events=_OUTER)])
    assert not learn._check_nan and len(learn.recorder.losses) == 8
    assert _count_paths(False, False, [TerminateOnNaNCallback()]).general == 1


# Events a steady plan allows (no after_pred/after_loss/backward/step handlers): tracing them keeps the loop steady.
_OUTER = ("before_batch", "after_cancel_batch", "after_batch", "before_train", "after_train", "before_validate",
          "after_validate")
