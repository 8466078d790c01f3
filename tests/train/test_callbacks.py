"""The event-wrapped training loop: event order, cancellation, callbacks writing loop state, and their management."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import SGD
from tiers.train import (
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    CrossEntropyLossFlat,
    Event,
    Learner,
    Recorder,
    TrainEvalCallback,
    before_batch_cb,
    event,
)

EVENTS = [e.value for e in Event]


def make_dls(n_train=32, n_valid=32, bs=16):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_valid, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return DataLoaders(
        DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=bs),
        DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=bs),
    )


def make_learn(cbs=None, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(make_dls(), model, loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1, cbs=cbs, **kw)
    learn.logger = lambda *a: None
    return learn


class Rec(Callback):
    """Records every event it sees."""

    def __init__(self):
        self.events = []


for _name in EVENTS:
    setattr(Rec, _name, lambda self, n=_name: self.events.append(n))

TRAIN_BATCH = ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward", "before_step",
               "after_step", "after_batch"]
VALID_BATCH = ["before_batch", "after_pred", "after_loss", "after_batch"]
ONE_EPOCH = (["before_epoch", "before_train"] + TRAIN_BATCH * 2 + ["after_train", "before_validate"] + VALID_BATCH * 2
             + ["after_validate", "after_epoch"])


def weights(learn):
    return [p.detach().clone() for p in learn.model.parameters()]


def same(ws1, ws2):
    return all(torch.equal(a, b) for a, b in zip(ws1, ws2))


def test_event_order_matches_the_documented_loop():
    rec = Rec()
    learn = make_learn(cbs=rec)
    assert rec.events == ["after_create"]
    rec.events.clear()
    learn.fit(2)
    assert rec.events == ["before_fit"] + ONE_EPOCH * 2 + ["after_fit"]
    assert EVENTS.index("after_create") == 0 and str(event.after_batch) == "after_batch"


class Raise(Callback):
    """Raises `exc` the first time `at` fires (in training, or validation when `valid`)."""

    order = 100

    def __init__(self, at, exc, valid=False):
        self.at, self.exc, self.valid, self.done = at, exc, valid, False
        setattr(self, at, self._maybe_raise)

    def _maybe_raise(self):
        if not self.done and self.learn.training != self.valid:
            self.done = True
            raise self.exc()


def run_with(at, exc, valid=False, n_epoch=1):
    rec = Rec()
    learn = make_learn(cbs=[rec, Raise(at, exc, valid)])
    rec.events.clear()
    before = weights(learn)
    learn.fit(n_epoch)
    return rec.events, before, weights(learn), learn


def test_cancel_batch_skips_the_rest_of_that_batch_only():
    events, w0, w1, _ = run_with("after_pred", CancelBatchException)
    first = ["before_batch", "after_pred", "after_cancel_batch", "after_batch"]
    assert events[:4] == ["before_fit", "before_epoch", "before_train", *first[:1]]
    assert events[3:7] == first
    assert events[7:15] == TRAIN_BATCH  # the second batch runs normally
    assert not same(w0, w1)


def test_cancel_train_skips_training_but_still_validates():
    events, w0, w1, _ = run_with("before_train", CancelTrainException)
    assert events == (["before_fit", "before_epoch", "before_train", "after_cancel_train", "after_train",
                       "before_validate"] + VALID_BATCH * 2 + ["after_validate", "after_epoch", "after_fit"])
    assert same(w0, w1)


def test_cancel_valid_skips_validation():
    events, *_ = run_with("before_validate", CancelValidException, valid=True)
    assert events == (["before_fit", "before_epoch", "before_train"] + TRAIN_BATCH * 2 + [
        "after_train", "before_validate", "after_cancel_validate", "after_validate", "after_epoch", "after_fit"])


def test_cancel_epoch_skips_to_the_next_epoch():
    events, w0, w1, _ = run_with("before_epoch", CancelEpochException, valid=True, n_epoch=2)
    # training is False before the first before_train, so valid=True raises in epoch 0's before_epoch
    assert events[:4] == ["before_fit", "before_epoch", "after_cancel_epoch", "after_epoch"]
    assert events[4:] == ONE_EPOCH + ["after_fit"]


def test_cancel_fit_stops_everything():
    events, w0, w1, _ = run_with("after_batch", CancelFitException)
    assert events == ["before_fit", "before_epoch", "before_train", *TRAIN_BATCH, "after_cancel_fit", "after_fit"]
    assert not same(w0, w1)


def test_cancel_backward_skips_backward_only():
    events, w0, w1, learn = run_with("before_backward", CancelBackwardException)
    first = ["before_batch", "after_pred", "after_loss", "before_backward", "after_cancel_backward", "after_backward",
             "before_step", "after_step", "after_batch"]
    assert events[3:12] == first
    assert events[12:20] == TRAIN_BATCH


def test_cancel_step_skips_the_update_but_still_zeroes_grads():
    seen = {}

    class CheckGrads(Callback):
        order = 200

        def after_batch(self):
            if self.learn.training:
                seen.setdefault("grads", [p.grad for p in self.learn.model.parameters()])

    rec = Rec()
    learn = make_learn(cbs=[rec, Raise("before_step", CancelStepException), CheckGrads()])
    rec.events.clear()
    learn.fit(1)
    assert rec.events[3:12] == ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward",
                                "before_step", "after_cancel_step", "after_step", "after_batch"]
    assert all(g is None or not g.any() for g in seen["grads"])


def test_cancel_step_alone_leaves_weights_unchanged():
    class NoStep(Callback):
        def before_step(self):
            raise CancelStepException()

    learn = make_learn(cbs=NoStep())
    w0 = weights(learn)
    learn.fit(2)
    assert same(w0, weights(learn))


# ---------------------------------------------------------------- callbacks write the loop state


def test_callback_changing_xb_reaches_the_model():
    seen = []

    class Zero(Callback):
        def before_batch(self):
            self.xb = tuple(torch.zeros_like(x) for x in self.xb)  # write-through to the learner

    learn = make_learn(cbs=Zero())
    learn.model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].abs().sum().item()))
    learn.fit(1)
    assert seen and all(s == 0 for s in seen)


def test_before_batch_cb_decorator():
    @before_batch_cb
    def double(self, xb, yb):
        return tuple(x * 0 for x in xb), yb

    seen = []
    learn = make_learn(cbs=double)
    learn.model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].abs().sum().item()))
    learn.fit(1)
    assert all(s == 0 for s in seen)


def test_callback_changing_loss_grads_and_hypers_takes_effect():
    class ZeroLoss(Callback):
        def after_loss(self):
            if self.training:
                self.learn.loss_grad = self.learn.loss_grad * 0

    class ZeroGrads(Callback):
        def after_backward(self):
            for p in self.learn.model.parameters():
                p.grad.zero_()

    class ZeroLR(Callback):
        def before_batch(self):
            self.learn.opt.set_hyper("lr", 0.0)

    for cb in (ZeroLoss(), ZeroGrads(), ZeroLR()):
        learn = make_learn(cbs=cb)
        w0 = weights(learn)
        learn.fit(1)
        assert same(w0, weights(learn)), type(cb).__name__
    # and without them, training changes the weights
    learn = make_learn()
    w0 = weights(learn)
    learn.fit(1)
    assert not same(w0, weights(learn))


def test_callback_can_scale_grads_before_the_step():
    class Double(Callback):
        def before_step(self):
            for p in self.learn.model.parameters():
                p.grad.mul_(2)

    a, b = make_learn(), make_learn(cbs=Double())
    a.fit(1, lr=0.2)
    b.fit(1, lr=0.1)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb)


def test_reads_fall_back_to_the_learner_and_loop_attrs_write_through():
    cb = Callback()
    learn = make_learn(cbs=cb)
    assert cb.model is learn.model and cb.loss_func is learn.loss_func
    cb.epoch = 7
    assert learn.epoch == 7 and "epoch" not in cb.__dict__
    cb.my_state = 1
    assert cb.my_state == 1 and not hasattr(learn, "my_state")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cb.nope


def test_run_train_and_run_valid_filter_batch_events():
    class Count(Callback):
        run_valid = False

        def __init__(self):
            self.n = 0

        def after_batch(self):
            self.n += 1

        def after_epoch(self):
            self.epochs = getattr(self, "epochs", 0) + 1

    c = Count()
    make_learn(cbs=c).fit(1)
    assert c.n == 2 and c.epochs == 1  # two training batches; epoch events unaffected


def test_run_false_mutes_a_callback_until_the_end_of_fit():
    class Mute(Callback):
        def __init__(self):
            self.n = 0

        def before_fit(self):
            self.run = False

        def after_batch(self):
            self.n += 1

    m = Mute()
    learn = make_learn(cbs=m)
    learn.fit(1)
    assert m.n == 0 and m.run is True


def test_callback_from_event_functions_and_order():
    order = []
    a = Callback(before_fit=lambda self: order.append("a"))
    b = Callback(before_fit=lambda self: order.append("b"))
    b.order = -50
    make_learn(cbs=[a, b]).fit(1)
    assert order == ["b", "a"]
    with pytest.raises(ValueError, match="'before_fitt' is not an event"):
        Callback(before_fitt=lambda self: None)


def test_errors_name_the_callback_and_event_and_keep_their_type():
    class Broken(Callback):
        def after_pred(self):
            raise ValueError("boom")

    learn = make_learn(cbs=Broken())
    with pytest.raises(ValueError, match="boom") as info:
        learn.fit(1)
    # The exception itself, with its args intact, and the context as a PEP 678 note (not a re-created exception).
    assert info.value.args == ("boom",) and info.value.__cause__ is None
    assert info.value.__notes__ == ["Exception in callback Broken during event after_pred"]

    class KeyBroken(Callback):
        def before_fit(self):
            {}["missing"]

    with pytest.raises(KeyError) as info:
        make_learn(cbs=KeyBroken()).fit(1)
    assert any("KeyBroken" in n and "before_fit" in n for n in getattr(info.value, "__notes__", []))

    class FileBroken(Callback):
        def after_batch(self):
            open("/nonexistent-dir/x.txt")

    with pytest.raises(FileNotFoundError) as info:
        make_learn(cbs=FileBroken()).fit(1)
    # errno and filename survive (re-creating the exception as type(e)(msg) lost them)
    assert info.value.errno == 2 and info.value.filename == "/nonexistent-dir/x.txt"
    assert info.value.__notes__ == ["Exception in callback FileBroken during event after_batch"]


def test_adding_and_removing_callbacks():
    learn = make_learn()
    # The loop owns train/eval modes: TrainEvalCallback is no longer a default callback (it is a no-op kept for fastai code).
    assert not hasattr(learn, "train_eval") and isinstance(learn.recorder, Recorder)
    learn.add_cb(TrainEvalCallback)
    assert isinstance(learn.train_eval, TrainEvalCallback) and learn.train_eval.handled_events() == ()
    learn.remove_cb(TrainEvalCallback)
    rec = Rec()
    with learn.added_cbs(rec):
        assert learn.rec is rec
        learn.fit(1)
    assert rec not in learn.cbs and not hasattr(learn, "rec") and rec.learn is None and "before_fit" in rec.events

    rec2 = Rec()
    learn.fit(1, cbs=rec2)
    assert rec2 not in learn.cbs and rec2.events[0] == "before_fit"

    with learn.removed_cbs(learn.recorder):
        assert not any(isinstance(c, Recorder) for c in learn.cbs)
    assert any(isinstance(c, Recorder) for c in learn.cbs)

    learn.add_cb(Rec).add_cb(Rec())
    assert sum(isinstance(c, Rec) for c in learn.cbs) == 2
    learn.remove_cb(Rec)
    assert not any(isinstance(c, Rec) for c in learn.cbs)
    with pytest.raises(TypeError, match="is not a Callback"):
        learn.add_cb(object())
    assert [type(c).__name__ for c in learn.ordered_cbs("after_batch")] == ["Recorder", "ProgressCallback"]


def test_callback_cannot_join_two_learners():
    cb = Rec()
    make_learn(cbs=cb)
    with pytest.raises(ValueError, match="already attached"):
        make_learn(cbs=cb)


def test_learner_fires_events_by_name_and_rejects_unknown_ones():
    rec = Rec()
    learn = make_learn(cbs=rec)
    rec.events.clear()
    learn("before_fit")
    learn([event.before_epoch, "after_epoch"])
    assert rec.events == ["before_fit", "before_epoch", "after_epoch"]
    with pytest.raises(ValueError, match="'before_lunch' is not an event"):
        learn("before_lunch")


def test_fetching_predictions_inside_a_fit_leaves_the_fit_alone():
    from tiers.train import FetchPredsCallback

    fetch = FetchPredsCallback(ds_idx=1)
    learn = make_learn(cbs=fetch)
    states = []
    spy = Callback(after_epoch=lambda self: states.append((self.learn.training, len(self.learn.cbs))))
    learn.add_cb(spy)
    n_cbs = len(learn.cbs)
    learn.fit(2)
    preds, targs = fetch.preds
    assert preds.shape == (32, 2) and targs.shape == (32,)
    assert len(learn.recorder.values) == 2 and all(len(v) == 2 for v in learn.recorder.values)
    assert states == [(False, n_cbs), (False, n_cbs)]
    assert learn.train_iter == 4  # training counted only its own batches
