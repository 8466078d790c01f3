"""Mixed precision: bf16 autocast on CPU, fp16 dynamic loss scaling (CPU scaler, and CUDA when lent)."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, Learner, MixedPrecision, get_amp_dtype


def _dls(n=64, bs=16, device=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return DataLoaders(DataLoader(TensorDataset(x, y), bs), DataLoader(TensorDataset(x[:16], y[:16]), bs), device=device)


def _learn(device=None, **kw):
    torch.manual_seed(0)
    learn = Learner(_dls(device=device), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), loss_func=nn.MSELoss(), lr=1e-2, **kw)
    return learn


class _DtypeSpy(Callback):
    order = 20  # after MixedPrecision entered autocast

    def after_create(self):
        self.dtypes = []

    def after_pred(self):
        self.dtypes.append(self.learn.model[0](self.learn.xb[0]).dtype)


def test_bf16_autocast_on_cpu_trains_and_keeps_fp32_weights():
    spy = _DtypeSpy()
    learn = _learn(cbs=spy).to_bf16()
    with learn.no_logging(), learn.no_bar():
        learn.fit(2)
    assert spy.dtypes and all(d == torch.bfloat16 for d in spy.dtypes)
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    assert learn.recorder.values[-1][0] < learn.recorder.values[0][0] * 1.5
    assert not torch.is_autocast_enabled("cpu")
    assert learn.mixed_precision.scaler is None


def test_to_fp32_removes_callback_and_runs_in_fp32():
    spy = _DtypeSpy()
    learn = _learn(cbs=spy).to_bf16().to_fp32()
    assert not any(isinstance(cb, MixedPrecision) for cb in learn.cbs)
    with learn.no_logging(), learn.no_bar():
        learn.fit(1)
    assert all(d == torch.float32 for d in spy.dtypes)


def test_to_bf16_twice_keeps_one_callback():
    learn = _learn().to_bf16().to_fp16()
    mps = [cb for cb in learn.cbs if isinstance(cb, MixedPrecision)]
    assert len(mps) == 1 and mps[0].amp_mode == "fp16"


def test_bad_amp_mode_names_value():
    with pytest.raises(ValueError, match="fp8"):
        MixedPrecision("fp8")
    assert get_amp_dtype("bfloat16") is torch.bfloat16


class _NaNGrad(Callback):
    order = 5  # before MixedPrecision's before_step

    def __init__(self, bad_iters):
        self.bad_iters = set(bad_iters)

    def after_backward(self):
        if self.learn.iter in self.bad_iters:
            next(self.learn.model.parameters()).grad[0, 0] = float("inf")


def _fp16_skips(device):
    # cpu_fp16: a CPU model otherwise trains in fp32 (no scaler); this runs the real scaler on CPU too
    learn = _learn(device=device, cbs=_NaNGrad({1, 2})).to_fp16(init_scale=1024.0, cpu_fp16=True)
    before = [p.detach().clone() for p in learn.model.parameters()]
    snapshots = []
    learn.add_cb(Callback(after_cancel_step=lambda self: snapshots.append(self.learn.iter)))
    with learn.no_logging(), learn.no_bar():
        learn.fit(1)
    mp = learn.mixed_precision
    assert mp.skipped_steps == 2
    assert snapshots == [1, 2]  # exactly the batches with inf gradients were cancelled
    # two backoffs from 1024
    assert mp.scaler.get_scale() == pytest.approx(256.0)
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    assert any(not torch.equal(a.cpu(), b.cpu()) for a, b in zip(before, learn.model.parameters()))


def test_fp16_dynamic_scaling_skips_nonfinite_steps_cpu():
    _fp16_skips(None)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_dynamic_scaling_skips_nonfinite_steps_cuda():
    _fp16_skips("cuda")


def test_scaler_state_roundtrip():
    learn = _learn().to_fp16(init_scale=64.0, cpu_fp16=True)
    with learn.no_logging(), learn.no_bar():
        learn.fit(1)
    st = learn.mixed_precision.state_dict()
    mp = MixedPrecision("fp16", cpu_fp16=True)
    mp.load_state_dict(st)
    learn2 = _learn()
    learn2.add_cb(mp)
    with learn2.no_logging(), learn2.no_bar():
        learn2.fit(0)
    assert mp.scaler.get_scale() == learn.mixed_precision.scaler.get_scale()
