"""GradientAccumulation, GradientClip, TerminateOnNaN, ChannelsLast, learn.compile, tracker and logging callbacks, MixUp/CutMix."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import SGD
from tiers.train import (
    Callback,
    ChannelsLast,
    CSVLogger,
    CutMix,
    EarlyStoppingCallback,
    GradientAccumulation,
    GradientClip,
    Learner,
    LoggerCallback,
    MixUp,
    ReduceLROnPlateau,
    SaveModelCallback,
    ShowGraphCallback,
    TensorBoardCallback,
    TerminateOnNaNCallback,
)


def _dls(n=64, bs=16, shuffle=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return DataLoaders(DataLoader(TensorDataset(x, y), bs, shuffle=shuffle), DataLoader(TensorDataset(x[:16], y[:16]), bs))


def _learn(dls=None, opt_func=SGD, lr=0.05, **kw):
    torch.manual_seed(0)
    return Learner(dls or _dls(), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), loss_func=nn.MSELoss(),
                   opt_func=opt_func, lr=lr, **kw)


def _fit(learn, n=1, **kw):
    with learn.no_logging(), learn.no_bar():
        learn.fit(n, **kw)
    return learn


def test_gradient_accumulation_equals_big_batch():
    big = _fit(_learn(_dls(bs=32)))
    acc = _fit(_learn(_dls(bs=8), cbs=GradientAccumulation(32)))
    for a, b in zip(big.model.parameters(), acc.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_accumulation_rejects_bad_n():
    with pytest.raises(ValueError, match="n_acc=0"):
        GradientAccumulation(0)


def test_gradient_clip_bounds_norm():
    norms = []
    clip = GradientClip(0.01)
    def before_step(self):
        norms.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.learn.model.parameters()]))))

    spy = Callback(before_step=before_step)
    spy.order = 30
    _fit(_learn(cbs=[clip, spy]))
    assert norms and max(norms) <= 0.01 + 1e-6
    assert float(clip.last_norm) > 0.01


def test_terminate_on_nan_stops_fit():
    seen = []
    learn = _learn(lr=1e30, cbs=[TerminateOnNaNCallback(), Callback(after_batch=lambda self: seen.append(self.learn.epoch))])
    learn.logger = lambda *a: None
    with learn.no_bar():
        learn.fit(20)
    assert len(set(seen)) < 20  # stopped well before the end


@pytest.mark.slow
def test_channels_last_and_compile_train():
    x = torch.randn(16, 3, 8, 8)
    y = torch.randint(0, 2, (16,))
    dls = DataLoaders(DataLoader(TensorDataset(x, y), 8), DataLoader(TensorDataset(x, y), 8))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    seen = []
    spy = Callback(after_pred=lambda self: seen.append(self.learn.xb[0].is_contiguous(memory_format=torch.channels_last)))
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), cbs=[ChannelsLast(), spy])
    learn.compile(backend="eager")
    sd_keys = set(learn.model.state_dict())
    _fit(learn)
    assert all(seen) and seen
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert set(learn.model.state_dict()) == sd_keys  # compile in place keeps the keys


def _scripted_losses(learn, vals):
    # Replace the recorded valid_loss of each epoch with a scripted sequence.
    it = iter(vals)

    def after_epoch(self):
        # trackers read the epoch's results by name (recorder.history); values keeps the same row by position
        rec = self.learn.recorder
        rec.values[-1][1] = rec.history[-1]["valid_loss"] = next(it)

    cb = Callback(after_epoch=after_epoch)
    cb.order = 52
    learn.add_cb(cb)
    return learn


def test_early_stopping_patience():
    learn = _scripted_losses(_learn(), [1.0, 0.5, 0.6, 0.7, 0.4, 0.3])
    es = EarlyStoppingCallback(patience=2)
    epochs = []
    learn.add_cbs([es, Callback(after_epoch=lambda self: epochs.append(self.learn.epoch))])
    _fit(learn, 6)
    assert epochs == [0, 1, 2, 3] and es.best == 0.5


def test_tracker_bad_monitor_names_choices():
    with pytest.raises(ValueError, match="nope"):
        _fit(_learn(cbs=EarlyStoppingCallback(monitor="nope")))


def test_save_model_best_and_every_epoch(tmp_path):
    learn = _scripted_losses(_learn(path=tmp_path), [1.0, 0.2, 0.5])
    weights = []
    learn.add_cb(Callback(after_epoch=lambda self: weights.append([p.detach().clone() for p in self.learn.model.parameters()])))
    learn.add_cb(SaveModelCallback(fname="best"))
    _fit(learn, 3)
    assert (tmp_path / "models" / "best.pth").exists()
    for a, b in zip(learn.model.parameters(), weights[1]):  # best epoch reloaded at the end
        assert torch.equal(a, b)
    learn2 = _learn(path=tmp_path, cbs=SaveModelCallback(fname="e", every_epoch=True))
    _fit(learn2, 3)
    assert sorted(p.name for p in (tmp_path / "models").glob("e_*.pth")) == ["e_0.pth", "e_1.pth", "e_2.pth"]


def test_reduce_lr_on_plateau():
    learn = _scripted_losses(_learn(lr=0.1), [1.0, 1.0, 1.0, 1.0])
    learn.add_cb(ReduceLROnPlateau(patience=2, factor=10, min_lr=0.0005))
    _fit(learn, 4, lr=0.1)
    assert learn.opt.param_groups[-1]["lr"] == pytest.approx(0.01)


def test_csv_logger(tmp_path):
    learn = _learn(path=tmp_path, cbs=CSVLogger())
    _fit(learn, 2)
    df = learn.csv_logger.read_log()
    assert list(df.columns) == learn.recorder.metric_names and len(df) == 2
    np.testing.assert_allclose(df["valid_loss"].to_numpy(), [v[1] for v in learn.recorder.values], rtol=1e-5)
    learn.csv_logger.append = True
    _fit(learn, 1)
    assert len(learn.csv_logger.read_log()) == 3


def test_logger_callback_base_and_tensorboard_optional(tmp_path):
    got = []

    class Mem(LoggerCallback):
        def log_metrics(self, metrics, step):
            got.append((step, metrics))

    _fit(_learn(cbs=Mem(log_every_batch=True)), 2)
    epoch_rows = [m for s, m in got if "valid_loss" in m]
    batch_rows = [m for s, m in got if "train/loss" in m]
    assert len(epoch_rows) == 2 and len(batch_rows) == 8 and all(math.isfinite(m["train/lr"]) for m in batch_rows)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install tensorboard"):
            _fit(_learn(cbs=TensorBoardCallback(tmp_path)))
        return
    _fit(_learn(cbs=TensorBoardCallback(tmp_path)), 2)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert len(acc.Scalars("epoch/valid_loss")) == 2


def test_show_graph(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    learn = _learn(cbs=ShowGraphCallback())
    _fit(learn, 2)
    fig = learn.show_graph.fig
    fig.savefig(tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 0
    assert len(learn.show_graph.ax.lines) == 2


def _cls_dls(shape):
    x = torch.randn(32, *shape)
    y = torch.randint(0, 3, (32,))
    return DataLoaders(DataLoader(TensorDataset(x, y), 8), DataLoader(TensorDataset(x, y), 8))


@pytest.mark.parametrize("cb_cls,shape", [(MixUp, (6,)), (CutMix, (2, 8, 8))])
def test_mix_callbacks_change_inputs_and_loss(cb_cls, shape):
    dls = _cls_dls(shape)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), 3))
    mixed = []
    cb = cb_cls()

    def after_loss(self):
        x = self.learn.xb[0]
        orig = dls.train.dataset.tensors[0][self.learn.iter * 8:(self.learn.iter + 1) * 8]
        if self.learn.training:
            mixed.append(not torch.equal(x, orig))
    spy = Callback(after_loss=after_loss)
    spy.order = 5
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), cbs=[cb, spy])
    _fit(learn, 1)
    assert any(mixed)
    assert learn.recorder.values[0][1] > 0  # validation ran unmixed
    assert 0 < float(torch.as_tensor(cb.lam).mean()) <= 1


def test_mixup_loss_is_blend():
    torch.manual_seed(0)
    mu = MixUp(0.4)
    from tiers.train.callbacks.mixup import _lerp_loss

    pred, y, y1 = torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])
    lam = torch.tensor([0.9, 0.6, 0.5, 1.0])
    lf = nn.CrossEntropyLoss()
    got = _lerp_loss(lf, pred, y, y1, lam)
    l0 = nn.functional.cross_entropy(pred, y, reduction="none")
    l1 = nn.functional.cross_entropy(pred, y1, reduction="none")
    torch.testing.assert_close(got, (lam * l0 + (1 - lam) * l1).mean())
    assert lf.reduction == "mean" and mu.alpha == 0.4
