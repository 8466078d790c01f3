"""The Learner's loop state and its own API: `LoopState`, modes set by the loop itself (so `default_cbs=False`
trains), the one event wrapper, `show_training_loop`, callbacks writing loop attributes, `train`/`eval`/`to`/
`state_dict`, the model fall-through allow-list, `cbs` as an `L`, `Callback.__call__`, `tta` and `defaults`."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import Categorize, DataLoaders, Datasets, ItemGetter
from tiers.dispatch import defaults
from tiers.optim import SGD
from tiers.pipeline import Transform
from tiers.tensors import L
from tiers.train import (
    Callback,
    CrossEntropyLossFlat,
    Learner,
    LoopState,
    Recorder,
    accuracy,
)


def xy(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def make_dls(bs=16):
    x, y = xy()
    return DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=bs),
                       DataLoader(TensorDataset(x[64:], y[64:]), batch_size=bs))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.0))
        self.fc = nn.Linear(8, 2)
        self.register_buffer("scale", torch.ones(1))

    def forward(self, x):
        return self.fc(self.body(x)) * self.scale


def learner(**kw):
    learn = Learner(make_dls(), Net(), loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1, **kw)
    learn.logger = lambda *a: None
    return learn


class Modes(Callback):
    """Record (event, model.training, learn.training) at each pass boundary."""

    def __init__(self):
        self.seen = []

    def before_train(self):
        self.seen.append(("train", self.learn.model.training, self.learn.training))

    def before_validate(self):
        self.seen.append(("valid", self.learn.model.training, self.learn.training))


# ---------------------------------------------------------------- the loop owns modes and counters


def test_default_cbs_false_trains_and_sets_modes():
    modes = Modes()
    learn = learner(default_cbs=False, cbs=modes)
    assert list(learn.cbs) == [modes]
    before = [p.detach().clone() for p in learn.model.parameters()]
    x, y = xy()
    loss0 = F.cross_entropy(learn.model.eval()(x[64:]), y[64:]).item()
    learn.fit(3)
    assert any(not torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))  # weights changed
    loss1 = F.cross_entropy(learn.model.eval()(x[64:]), y[64:]).item()
    assert loss1 < loss0
    assert modes.seen == [("train", True, True), ("valid", False, False)] * 3
    assert learn.train_iter == 12 and learn.pct_train == pytest.approx(1.0)  # 3 epochs x 4 batches, counted by the loop


def test_state_object_holds_the_loop_and_round_trips():
    learn = learner()
    assert isinstance(learn.state, LoopState)
    seen = []
    learn.add_cb(Callback(after_batch=lambda self: seen.append((self.learn.xb is self.learn.state.xb,
                                                                 self.learn.pred is self.learn.state.pred))))
    learn.fit(2)
    assert seen and all(a and b for a, b in seen)
    sd = learn.state.state_dict()
    assert sd == {"epoch": 1, "n_epoch": 2, "iter": 1, "n_iter": 2, "train_iter": 8, "pct_train": pytest.approx(1.0),
                  "training": False}
    assert learn.state.xb == () and learn.state.pred is None  # the batch is dropped at the end of fit
    other = LoopState()
    other.load_state_dict(sd)
    assert other.state_dict() == sd
    with pytest.raises(KeyError, match="unknown keys.*'epochs'"):
        other.load_state_dict({"epochs": 3})


def test_every_loop_level_goes_through_the_one_event_wrapper():
    kinds = []

    class Spy(Learner):
        def _with_events(self, f, kind, ex, final=None):
            kinds.append(kind)
            return super()._with_events(f, kind, ex, final)

    learn = Spy(make_dls(), Net(), loss_func=CrossEntropyLossFlat(), opt_func=SGD, default_cbs=False)
    learn.fit(1)
    assert kinds[:4] == ["fit", "epoch", "train", "batch"]
    # backward/step have no handler here: their empty dispatch is skipped (the steps still run)
    assert set(kinds) == {"fit", "epoch", "train", "validate", "batch"} and kinds.count("batch") == 4 + 2
    kinds.clear()
    steps = []
    learn.add_cb(Callback(after_step=lambda self: steps.append(self.learn.iter)))
    learn.fit(1)
    assert set(kinds) == {"fit", "epoch", "train", "validate", "batch", "backward", "step"}
    assert kinds.count("step") == 4 and steps == [0, 1, 2, 3]


def test_show_training_loop_lists_levels_events_and_handlers(capsys):
    learn = learner(metrics=accuracy)
    text = learn.show_training_loop()
    assert capsys.readouterr().out.strip() == text
    lines = text.splitlines()
    assert lines[0] == "Start Fit" and lines[-1].strip().startswith("- after_fit")
    order = [ln.strip() for ln in lines if not ln.strip().startswith("-")]
    assert order == ["Start Fit", "Start Epoch Loop", "Start Train", "Start Batch Loop", "End Batch Loop", "End Train",
                     "Start Valid", "Start Batch Loop", "End Batch Loop", "End Valid", "End Epoch Loop", "End Fit"]
    after_batch = [ln for ln in lines if ln.strip().startswith("- after_batch ")]
    # training: the loop counts the batch first, then the Recorder and the progress bar; validation: no counting
    assert "Learner (advance train_iter, pct_train), Recorder, ProgressCallback" in after_batch[0]
    assert after_batch[1].endswith("[Recorder, ProgressCallback]")
    assert any("before_backward" in ln for ln in lines)


# ---------------------------------------------------------------- callbacks writing loop attributes


def test_callback_writes_loop_state_but_never_clobbers_model_or_opt():
    teacher = nn.Linear(4, 2)

    class Distill(Callback):
        def before_fit(self):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                self.model = teacher  # its own attribute: the Learner's model must stay
                self.opt = "mine"
            self.warned = [str(x.message) for x in w]

        def after_pred(self):
            self.pred = self.learn.pred * 0.0  # loop state: written through to learn.state

    learn, cb = learner(), Distill()
    model = learn.model
    learn.add_cb(cb)
    preds = []
    learn.add_cb(Callback(after_loss=lambda self: preds.append(float(self.learn.pred.detach().abs().sum()))))
    learn.fit(1)
    assert learn.model is model and cb.model is teacher and learn.opt != "mine"
    assert len(cb.warned) == 2 and "self.learn.model" in cb.warned[0]
    assert preds and all(p == 0.0 for p in preds)  # the loss saw the callback's pred
    assert learn.recorder.values  # the fit ran on the learner's own model and optimizer
    with pytest.raises(AttributeError):
        learn.state.not_a_loop_field = 1  # LoopState has fixed fields: a typo is refused, not kept silently


def test_writing_loop_state_through_self_changes_the_batch():
    class Double(Callback):
        def before_batch(self):
            self.xb = tuple(x * 0 for x in self.xb)

    seen = []
    learn = learner(cbs=[Double(), Callback(after_pred=lambda self: seen.append(float(self.learn.xb[0].abs().sum())))])
    learn.fit(1)
    assert seen and all(v == 0.0 for v in seen)


def test_replacing_the_model_explicitly_works():
    new = Net()

    class Swap(Callback):
        def before_fit(self):
            self.learn.model = new

    learn = learner(cbs=Swap())
    learn.fit(1)
    assert learn.model is new


# ---------------------------------------------------------------- the Learner's own train/eval/to/state_dict


def test_train_eval_to_state_dict_are_the_learners():
    learn = learner()
    assert learn.train() is learn and learn.training and learn.model.training
    assert learn.eval() is learn and not learn.training and not learn.model.training
    assert learn.to("cpu") is learn and next(learn.model.parameters()).device.type == "cpu"
    learn.fit(1)
    sd = learn.state_dict()
    assert set(sd) == {"model", "opt", "loop"} and sd["loop"]["train_iter"] == 4
    assert set(sd["model"]) == set(learn.model.state_dict())
    fresh = learner()
    fresh.load_state_dict(sd)
    for a, b in zip(fresh.model.parameters(), learn.model.parameters()):
        assert torch.equal(a, b)
    assert fresh.state.train_iter == 4 and fresh.opt is not None
    with pytest.raises(KeyError, match="missing keys.*loop"):
        fresh.load_state_dict({"model": sd["model"], "opt": None})


def test_model_fall_through_is_children_parameters_and_buffers_only():
    learn = learner()
    assert learn.fc is learn.model.fc and learn.body is learn.model.body and learn.scale is learn.model.scale
    with pytest.raises(AttributeError, match="only forwards the model's children.*learn.model.parameters"):
        learn.parameters
    with pytest.raises(AttributeError, match="neither has its model"):
        learn.nothing_here


# ---------------------------------------------------------------- fastai behaviours (issue 16)


def test_cbs_accepts_an_L_and_learn_cbs_is_filterable():
    a, b = Callback(), Modes()
    learn = learner(cbs=L(a, b))
    assert isinstance(learn.cbs, L)
    assert list(learn.cbs.filter(lambda c: isinstance(c, Modes))) == [b]
    assert a in learn.cbs and isinstance(learn.cbs.filter(lambda c: isinstance(c, Recorder))[0], Recorder)


def test_callback_call_returns_the_handlers_value():
    class Answer(Callback):
        def before_fit(self):
            return 42

    cb = Answer()
    assert cb("before_fit") == 42 and cb("after_fit") is None


def test_defaults_lr_and_callbacks_are_read_when_a_learner_is_built():
    old_lr, old_cbs = defaults.lr, list(defaults.callbacks)
    try:
        defaults.lr, defaults.callbacks = 0.05, [Modes]
        learn = Learner(make_dls(), Net(), loss_func=CrossEntropyLossFlat())
        assert learn.lr == 0.05 and isinstance(learn.modes, Modes)
        other = Learner(make_dls(), Net(), loss_func=CrossEntropyLossFlat())
        assert other.modes is not learn.modes  # a class in defaults.callbacks gives each Learner its own
        assert Learner(make_dls(), Net(), loss_func=CrossEntropyLossFlat(), lr=0.2).lr == 0.2
        assert not hasattr(Learner(make_dls(), Net(), loss_func=CrossEntropyLossFlat(), default_cbs=False), "modes")
    finally:
        defaults.lr, defaults.callbacks = old_lr, old_cbs


class Jitter(Transform):
    """Training-only augmentation: adds a constant, so the augmented passes are recognisable."""

    split_idx = 0

    def encodes(self, x: torch.Tensor):
        return x + 1.0


def test_tta_averages_augmented_passes_and_blends_with_beta():
    x, y = xy()
    items = [(x[i], "pos" if y[i] else "neg") for i in range(len(x))]
    dsets = Datasets(items, [[ItemGetter(0), Jitter()], [ItemGetter(1), Categorize()]],
                     splits=[list(range(64)), list(range(64, 96))])
    dls = dsets.dataloaders(bs=16, device="cpu")
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat())
    learn.logger = lambda *a: None
    plain, targs = learn.get_preds()
    with torch.no_grad():
        aug = F.softmax(model(x[64:] + 1.0), dim=1)  # what the training transforms give
    preds, targs2 = learn.tta(n=3)
    torch.testing.assert_close(preds, torch.lerp(aug, plain, 0.25))
    assert torch.equal(targs, targs2) and not torch.allclose(preds, plain)
    (avg, pl), _ = learn.tta(n=2, beta=None)  # as fastai: the pair in place of preds
    torch.testing.assert_close(avg, aug)
    torch.testing.assert_close(pl, plain)
    mx, _ = learn.tta(n=2, use_max=True)
    torch.testing.assert_close(mx, torch.maximum(aug, plain))
    assert dsets.split_idx is None  # the dataset's split is put back
    with pytest.raises(TypeError, match="set_split_idx"):
        learner().tta()


def test_predictions_fetched_inside_a_training_batch_leave_train_mode_on():
    modes = []

    class FetchMidEpoch(Callback):
        def after_batch(self):
            if self.learn.training and self.learn.iter == 1:
                self.learn.get_preds(inner=True)
                modes.append((self.learn.model.training, self.learn.training))

    learn = learner(cbs=FetchMidEpoch())
    seen = []
    learn.add_cb(Callback(before_batch=lambda self: seen.append(self.learn.model.training) if self.learn.training else None))
    learn.fit(1)
    assert modes == [(True, True)] and seen == [True] * 4
