"""fastai names a porter hits (AUDIT "MISSING"): `MCDropoutCallback` (dropout active in get_preds/validate),
`SkipToEpoch` (skip training up to an epoch, schedules keep the fit's length) and `Learner.to_channelslast()`
(ChannelsLast plus mixed precision by default). Real fits of tiny models."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import (
    Callback,
    ChannelsLast,
    Learner,
    MCDropoutCallback,
    MixedPrecision,
    SkipToEpoch,
)

torch.set_num_threads(1)


def _dls(n_in=6, n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, n_in, generator=g)
    y = (x[:, 0] > 0).long()
    return DataLoaders(DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16),
                       DataLoader(TensorDataset(x[48:], y[48:]), batch_size=16))


def _dropout_learner():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(32), nn.Linear(32, 2))
    learn = Learner(_dls(), model, loss_func=nn.CrossEntropyLoss())
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-2)
    return learn


# ------------------------------------------------------------------ MCDropoutCallback
def test_mc_dropout_makes_get_preds_stochastic_and_leaves_the_model_as_it_was():
    learn = _dropout_learner()
    plain1, _ = learn.get_preds()
    plain2, _ = learn.get_preds()
    assert torch.equal(plain1, plain2)  # without it, dropout is off in inference
    runs = torch.stack([learn.get_preds(cbs=MCDropoutCallback())[0] for _ in range(8)])
    assert runs.shape == (8, 16, 2)
    assert not torch.equal(runs[0], runs[1])  # dropout active: each pass samples another mask
    assert runs.std(0).mean() > 1e-3
    assert (runs.mean(0) - plain1).abs().mean() < 0.25  # the MC mean is near the deterministic prediction
    # only the dropout layers were switched: BatchNorm kept its eval statistics (running stats unchanged)
    bn = learn.model[3]
    rm = bn.running_mean.clone()
    learn.get_preds(cbs=MCDropoutCallback())
    assert torch.equal(bn.running_mean, rm)
    # and afterwards, everything is back in eval mode: deterministic again
    assert all(not m.training for m in learn.model.modules())
    assert torch.equal(learn.get_preds()[0], plain1)


def test_mc_dropout_during_validate_and_fit():
    learn = _dropout_learner()
    seen = []
    spy = Callback(after_pred=lambda self: seen.append((self.learn.training, self.learn.model[2].training,
                                                        self.learn.model[3].training)))
    learn.validate(cbs=[MCDropoutCallback(), spy])
    assert seen and all(s == (False, True, False) for s in seen)
    seen.clear()
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3, cbs=[MCDropoutCallback(), spy])
    assert (True, True, True) in seen and (False, True, False) in seen  # training as usual, dropout on in valid


# ------------------------------------------------------------------ SkipToEpoch
class _Epochs(Callback):
    def before_fit(self):
        self.trained, self.lrs = [], []

    def before_epoch(self):
        self.trained.append(self.learn.epoch)

    def after_batch(self):
        if self.learn.training:
            self.lrs.append(self.learn.opt.hypers[-1]["lr"])


def test_skip_to_epoch_trains_only_the_last_epochs_on_the_full_schedule():
    torch.manual_seed(0)
    full = Learner(_dls(), nn.Linear(6, 2), loss_func=nn.CrossEntropyLoss())
    spy_full = _Epochs()
    with full.no_bar(), full.no_logging():
        full.fit_one_cycle(4, 1e-2, cbs=spy_full)
    torch.manual_seed(0)
    learn = Learner(_dls(), nn.Linear(6, 2), loss_func=nn.CrossEntropyLoss())
    spy = _Epochs()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(4, 1e-2, cbs=[SkipToEpoch(2), spy])
    assert spy.trained == [2, 3]
    assert len(learn.recorder.values) == 2
    # the lrs of epochs 2 and 3 are those of the full 4-epoch cycle (3 batches per epoch)
    assert spy.lrs == pytest.approx(spy_full.lrs[6:])
    # same as fit's own start_epoch
    torch.manual_seed(0)
    other = Learner(_dls(), nn.Linear(6, 2), loss_func=nn.CrossEntropyLoss())
    with other.no_bar(), other.no_logging():
        other.fit_one_cycle(4, 1e-2, start_epoch=2)
    for a, b in zip(learn.model.parameters(), other.model.parameters()):
        assert torch.allclose(a, b)


def test_skip_to_epoch_checks_its_argument():
    with pytest.raises(ValueError, match="must be an int >= 0"):
        SkipToEpoch(-1)
    learn = Learner(_dls(), nn.Linear(6, 2), loss_func=nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="beyond this fit's 2 epochs"), learn.no_bar(), learn.no_logging():
        learn.fit(2, cbs=SkipToEpoch(5))
    # a validation pass with it attached does nothing special
    learn.validate(cbs=SkipToEpoch(1))


# ------------------------------------------------------------------ to_channelslast
class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


def _img_dls():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    return DataLoaders(DataLoader(TensorDataset(x[:24], y[:24]), batch_size=8),
                       DataLoader(TensorDataset(x[24:], y[24:]), batch_size=8))


@pytest.mark.parametrize("amp_mode,dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_to_channelslast_adds_channels_last_and_mixed_precision(amp_mode, dtype):
    torch.manual_seed(0)
    learn = Learner(_img_dls(), _ConvNet(), loss_func=nn.CrossEntropyLoss())
    seen = []
    spy = Callback(after_pred=lambda self: seen.append(
        (self.learn.xb[0].is_contiguous(memory_format=torch.channels_last), self.learn.pred.dtype)))
    assert learn.to_channelslast(amp_mode=amp_mode) is learn
    assert sum(isinstance(c, ChannelsLast) for c in learn.cbs) == 1
    mp = [c for c in learn.cbs if isinstance(c, MixedPrecision)]
    assert len(mp) == 1 and mp[0].dtype == dtype
    learn.to_channelslast()  # again: nothing doubled
    assert sum(isinstance(c, (ChannelsLast, MixedPrecision)) for c in learn.cbs) == 2
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-2, cbs=spy)
    assert learn.model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert seen and all(cl for cl, _ in seen)
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    learn.to_contiguous()
    assert not any(isinstance(c, ChannelsLast) for c in learn.cbs)


def test_to_channelslast_without_amp():
    learn = Learner(_img_dls(), _ConvNet(), loss_func=nn.CrossEntropyLoss())
    learn.to_channelslast(use_amp=False)
    assert any(isinstance(c, ChannelsLast) for c in learn.cbs)
    assert not any(isinstance(c, MixedPrecision) for c in learn.cbs)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-2)
    assert learn.model.conv.weight.is_contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------ CollectDataCallback
def test_collect_data_keeps_every_batch_with_its_prediction_and_loss():
    from tiers.train import CollectDataCallback

    torch.manual_seed(0)
    learn = Learner(_dls(), nn.Linear(6, 2), loss_func=nn.CrossEntropyLoss())
    cb = CollectDataCallback()
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, 1e-2, cbs=cb)
    assert len(cb.data) == 2 * (3 + 1)  # 3 training and 1 validation batches per epoch
    xb, yb, pred, loss = cb.data[-1]  # the last validation batch
    assert xb[0].shape == (16, 6) and yb[0].shape == (16,) and pred.shape == (16, 2)
    assert not pred.requires_grad and pred.device.type == "cpu"
    with torch.no_grad():
        assert torch.allclose(pred, learn.model(xb[0]))
        assert torch.isclose(loss, nn.functional.cross_entropy(pred, yb[0]))
    assert learn.recorder.values[-1][1] == pytest.approx(float(loss), abs=1e-6)  # valid_loss of one batch
