"""AUDIT3 E19, E21a, E21c, E21i, E22, E23, E24 end to end: GradientAccumulation's pending samples, one-cycle divisors /
weight decay / momentums / n_epoch refused by name, tuple learning rates, the NaN-weights guard message, tta with
item_tfms, the Recorder's columns without valid_metrics, the classification report's summary rows."""

import math
import warnings
from functools import partial

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from tiers.data import DataLoader, DataLoaders  # noqa: E402
from tiers.optim import SGD  # noqa: E402
from tiers.train import (  # noqa: E402
    Callback,
    CancelFitException,
    ClassificationInterpretation,
    CrossEntropyLossFlat,
    CSVLogger,
    GradientAccumulation,
    Learner,
    NonFiniteLossError,
    SaveModelCallback,
    ShortEpochCallback,
    accuracy,
)

torch.set_num_threads(1)


def _dls(n_train=40, n_valid=20, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, 4, generator=g)
    y = (x.sum(1) > 0).long()
    dss = list(zip(x, y))
    return DataLoaders.from_dsets(dss[:n_train], dss[n_train:], bs=bs)


def _learn(dls=None, model=None, **kw):
    torch.manual_seed(0)
    model = model if model is not None else nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return Learner(dls or _dls(), model, loss_func=CrossEntropyLossFlat(), **kw)


def _fit(learn, *args, meth="fit", **kw):
    with learn.no_bar(), learn.no_logging():
        getattr(learn, meth)(*args, **kw)


def _finite(learn):
    return all(bool(torch.isfinite(p).all()) for p in learn.model.parameters())


class _CountSteps(Callback):
    order = 90  # after every step-handling callback

    def __init__(self):
        self.steps = []

    def after_step(self):
        self.steps.append((self.learn.epoch, self.learn.iter))


# ---- E19: GradientAccumulation(n_acc) beyond what a fit sees -----------------------------------------------------

def test_gradient_accumulation_larger_than_the_fit_warns_with_both_numbers_and_still_steps():
    learn = _learn()
    w = learn.model[0].weight.detach().clone()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(learn, 1, 1e-2, cbs=GradientAccumulation(n_acc=64))
    msgs = [str(c.message) for c in caught if "GradientAccumulation" in str(c.message)]
    assert len(msgs) == 1 and "n_acc=64" in msgs[0] and "only 40" in msgs[0]
    assert not torch.equal(w, learn.model[0].weight)  # fastai: not one step, the initial weights


def test_gradient_accumulation_steps_on_the_pending_samples_at_each_epoch_end():
    # 40 samples, bs=8, n_acc=16: steps after batches 1 and 3 (16 samples each), then 8 pending at the epoch's end
    learn, count = _learn(), _CountSteps()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n_acc fits in an epoch: no warning
        _fit(learn, 2, 1e-2, cbs=[GradientAccumulation(n_acc=16), count])
    assert count.steps == [(0, 1), (0, 3), (0, 4), (1, 1), (1, 3), (1, 4)]


def test_gradient_accumulation_last_partial_step_is_the_mean_gradient_of_its_samples():
    # The 8 pending samples' step equals one plain step on those 8 samples (gradient rescaled to their mean), with
    # plain SGD so the scale shows in the weights.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = (x.sum(1) > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:24], y[:24]), 8), DataLoader(TensorDataset(x[24:], y[24:]), 8))
    acc = _learn(dls, opt_func=partial(SGD, mom=0.0))
    _fit(acc, 1, 0.1, cbs=GradientAccumulation(n_acc=16))
    plain = _learn(dls, opt_func=partial(SGD, mom=0.0))  # the same initial weights (seeded)
    loss = CrossEntropyLossFlat()
    for xb, yb in ((x[:16], y[:16]), (x[16:24], y[16:24])):
        plain.model.zero_grad()
        loss(plain.model(xb), yb).backward()
        with torch.no_grad():
            for p in plain.model.parameters():
                p -= 0.1 * p.grad
    for a, b in zip(acc.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_accumulation_cancelled_epoch_still_steps_and_no_grad_leaks_into_the_next_fit():
    learn, count = _learn(), _CountSteps()
    # ShortEpochCallback cancels the epoch (CancelEpochException: no after_train) after 2 batches, 16 of n_acc=24
    _fit(learn, 1, 1e-2, cbs=[GradientAccumulation(n_acc=24), ShortEpochCallback(pct=0.01, short_valid=False), count])
    assert count.steps == [(0, 1)]
    assert all(p.grad is None or not p.grad.any() for p in learn.model.parameters())


def test_gradient_accumulation_fit_stopped_mid_epoch_drops_the_pending_gradients():
    class StopAt(Callback):
        def after_batch(self):
            if self.learn.training and self.learn.iter == 2:
                raise CancelFitException

    learn, count = _learn(), _CountSteps()
    _fit(learn, 1, 1e-2, cbs=[GradientAccumulation(n_acc=16), StopAt(), count])
    assert count.steps == [(0, 1)]  # batch 2's 8 samples were pending: no step on them after a cancelled fit
    assert all(p.grad is None or not p.grad.any() for p in learn.model.parameters())


# ---- E24: div / div_final / wd that would make the weights NaN -----------------------------------------------------

@pytest.mark.parametrize("meth,kw,name", [
    ("fit_one_cycle", dict(div=0), "div=0"),
    ("fit_one_cycle", dict(div=-5.0), "div=-5.0"),
    ("fit_one_cycle", dict(div_final=0), "div_final=0"),
    ("fit_one_cycle", dict(div_final=float("nan")), "div_final=nan"),
    ("fit_one_cycle", dict(wd=float("nan")), "wd=nan"),
    ("fit_one_cycle", dict(wd=float("inf")), "wd=inf"),
    ("fit_one_cycle", dict(wd=-0.1), "wd=-0.1"),
    ("fit_flat_cos", dict(div_final=0), "div_final=0"),
    ("fit_flat_cos", dict(wd=float("nan")), "wd=nan"),
    ("fit_sgdr", dict(wd=float("inf")), "wd=inf"),
    ("fit", dict(wd=float("nan")), "wd=nan"),
    ("fine_tune", dict(div=0), "div=0"),  # refused before its first (frozen) phase trains
    ("fine_tune", dict(wd=float("nan")), "wd=nan"),
])
def test_schedule_numbers_that_would_make_nan_weights_are_refused_by_name(meth, kw, name):
    learn = _learn()
    w = [p.detach().clone() for p in learn.model.parameters()]
    args = (1, 1) if meth == "fit_sgdr" else (1,)
    with pytest.raises(ValueError, match=f"{meth}: {name} must be") as ei:
        getattr(learn, meth)(*args, **kw)
    assert "e.g." in str(ei.value)  # names a sane value
    assert all(torch.equal(a, b) for a, b in zip(w, learn.model.parameters())) and _finite(learn)
    assert learn.opt is None  # refused before the optimizer was built


def test_learner_wd_refused_at_construction_and_when_set_later():
    with pytest.raises(ValueError, match="Learner: wd=nan must be a finite number >= 0"):
        _learn(wd=float("nan"))
    learn = _learn()
    learn.wd = float("inf")
    with pytest.raises(ValueError, match=r"fit: learn.wd=inf .* learn.wd=0.01"):
        learn.fit(1)
    learn.wd = 0.01
    _fit(learn, 1, 1e-2)
    assert _finite(learn)
    _fit(learn, 1, 1e-2, wd=[0.0])  # one value per parameter group is still accepted
    assert _finite(learn)


def test_nan_guard_says_the_weights_are_nan_since_the_previous_step():
    class Poison(Callback):  # a step that writes NaN into the weights (what div=0 / wd=inf did)
        def after_step(self):
            if self.learn.train_iter == 1:
                with torch.no_grad():
                    self.learn.model[0].weight.fill_(float("nan"))

    learn = _learn()
    with pytest.raises(NonFiniteLossError) as ei:
        _fit(learn, 1, 1e-2, cbs=Poison())
    msg = str(ei.value)
    assert "batch 2" in msg and "no longer finite" in msg and "'0.weight'" in msg
    assert "since the previous step" in msg and "lr=0.01" in msg and "learn.load" in msg
    assert "those of the last finite step" not in msg
    # a later fit on this learner: the weights were already NaN when it started
    with pytest.raises(NonFiniteLossError, match="batch 0.*when this fit started"):
        _fit(learn, 1, 1e-2)


def test_nan_guard_with_finite_weights_keeps_its_message():
    class NanInput(Callback):
        def before_batch(self):
            if self.learn.training and self.learn.iter == 1:
                self.learn.xb = (self.learn.xb[0] * float("nan"),)

    learn = _learn()
    with pytest.raises(NonFiniteLossError, match="the weights are those of the last finite step"):
        _fit(learn, 1, 1e-2, cbs=NanInput())
    assert _finite(learn)


# ---- E23: tuple learning rates ---------------------------------------------------------------------------------------

def _two_group_learner():
    def splitter(m):
        return [list(m[0].parameters()), list(m[2].parameters())]

    return _learn(splitter=splitter)


def test_fit_with_a_tuple_lr_gives_one_value_per_group():
    learn = _two_group_learner()
    _fit(learn, 1, (1e-4, 1e-3))
    assert [h["lr"] for h in learn.opt.hypers] == [1e-4, 1e-3]
    _fit(learn, 1, (1e-3,))
    assert [h["lr"] for h in learn.opt.hypers] == [1e-3, 1e-3]


def test_fit_one_cycle_with_a_tuple_lr_peaks_at_each_groups_value():
    learn = _two_group_learner()
    seen = []
    peak = Callback(after_batch=lambda self: seen.append([h["lr"] for h in self.learn.opt.hypers])
                    if self.learn.training else None)
    _fit(learn, 2, (1e-4, 1e-3), meth="fit_one_cycle", cbs=peak)
    top = max(seen, key=lambda v: v[1])
    assert math.isclose(top[1], 1e-3, rel_tol=0.05) and math.isclose(top[0], 1e-4, rel_tol=0.05)
    assert _finite(learn)


def test_a_tuple_lr_with_a_bad_value_is_still_refused():
    with pytest.raises(ValueError, match="not a finite number"):
        _two_group_learner().fit(1, (1e-4, float("nan")))


# ---- E21i: moms with two values, n_epoch of the wrong type ------------------------------------------------------------

def test_fit_one_cycle_with_two_moms_names_the_three_values():
    with pytest.raises(TypeError, match=r"moms=\(0.9, 0.8\) is 2 values, but it takes 3 values \(start, middle, end\)"):
        _learn().fit_one_cycle(1, 1e-3, moms=(0.9, 0.8))
    learn = _learn(moms=(0.9, 0.8))
    with pytest.raises(TypeError, match="learn.moms="):
        learn.fit_one_cycle(1, 1e-3)


@pytest.mark.parametrize("n,exc", [("2", TypeError), (1.5, ValueError), (None, TypeError), (-1, ValueError)])
def test_fit_refuses_an_n_epoch_that_is_not_a_non_negative_int_by_name(n, exc):
    with pytest.raises(exc, match=f"n_epoch={n!r} must be a non-negative int"):
        _learn().fit(n)
    with pytest.raises(exc, match=f"fit_one_cycle: n_epoch={n!r}"):
        _learn().fit_one_cycle(n)


# ---- E21a: the Recorder without valid_metrics ---------------------------------------------------------------------------

def test_recorder_without_valid_metrics_has_no_valid_columns(tmp_path, capsys):
    learn = _learn(metrics=accuracy, path=tmp_path)
    learn.recorder.train_metrics, learn.recorder.valid_metrics = True, False  # the GAN tutorial's settings
    with learn.no_bar():
        learn.fit(2, 1e-2, cbs=CSVLogger())
    out = capsys.readouterr().out
    header = next(ln for ln in out.splitlines() if ln.startswith("epoch"))
    assert header.split() == ["epoch", "train_loss", "accuracy", "time"]
    assert learn.recorder.metric_names == ["epoch", "train_loss", "accuracy", "time"]
    assert all(len(v) == 2 and None not in v for v in learn.recorder.values)
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == "epoch,train_loss,accuracy,time"
    import matplotlib.pyplot as plt

    learn.recorder.plot_loss(skip_start=0)  # reads valid_loss by name: no valid points, no error
    plt.close("all")
    with pytest.raises(ValueError, match="monitor='valid_loss' is not recorded"):
        _fit(learn, 1, 1e-2, cbs=SaveModelCallback())
    learn.recorder.train_metrics = False
    _fit(learn, 1, 1e-2)
    assert learn.recorder.metric_names == ["epoch", "train_loss", "time"]
    learn.recorder.valid_metrics = True  # back to the usual columns
    _fit(learn, 1, 1e-2)
    assert learn.recorder.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]


# ---- E21c: the classification report's rows -------------------------------------------------------------------------

def test_print_classification_report_is_sklearns(capsys):
    sk = pytest.importorskip("sklearn.metrics")

    dls = _dls(n_train=40, n_valid=40, bs=8, seed=3)
    dls.vocab = ["negative", "positive", "never"]  # a class never present nor predicted: 0 by sklearn's rule
    learn = _learn(dls, model=nn.Linear(4, 3))
    _fit(learn, 1, 1e-1)
    interp = ClassificationInterpretation.from_learner(learn)
    rep = interp.classification_report()
    assert list(rep)[-3:] == ["accuracy", "macro avg", "weighted avg"]
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's zero-division warning for the empty class
        cm = interp.confusion_matrix()
        targs = [i for i in range(3) for j in range(3) for _ in range(int(cm[i, j]))]
        preds = [j for i in range(3) for j in range(3) for _ in range(int(cm[i, j]))]
        want = sk.classification_report(targs, preds, labels=[0, 1, 2], target_names=dls.vocab, zero_division=0)
    interp.print_classification_report()
    got = capsys.readouterr().out
    assert got.rstrip("\n").splitlines() == want.rstrip("\n").splitlines()
    assert "weighted avg" in got and "macro avg" in got and "accuracy" in got


# ---- E22: tta(item_tfms=...) keeps the loader's ToTensor ----------------------------------------------------------------

def test_tta_with_item_tfms_keeps_the_loaders_type_conversion(tmp_path):
    from tiers.vision.all import (
        Flip,
        ImageDataLoaders,
        RandomResizedCrop,
        Resize,
        aug_transforms,
        make_mnist_tiny,
    )

    path = make_mnist_tiny(tmp_path / "mnist", size=12, max_per_class=12)
    dls = ImageDataLoaders.from_folder(path, bs=8, item_tfms=Resize(16), batch_tfms=aug_transforms(size=12))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat())
    _fit(learn, 1, 1e-2)
    n = len(dls.valid_ds)
    preds, targs = learn.tta(n=2, item_tfms=RandomResizedCrop(12))
    assert preds.shape == (n, 2) and targs.shape == (n,) and bool(torch.isfinite(preds).all())
    # batch_tfms without IntToFloatTensor/Normalize: the loader's are kept (floats in [0, 1], as in training)
    seen = []
    spy = Callback(before_batch=lambda self: seen.append(self.learn.xb[0].dtype))
    learn.add_cb(spy)
    preds, _ = learn.tta(n=1, batch_tfms=[Flip()])
    learn.remove_cb(spy)
    assert preds.shape == (n, 2) and set(seen) == {torch.float32}
