"""Values the loop computes lazily are the per-batch ones: the detached `learn.loss` (built when first read), the float
the loop hands the Recorder (`learn.state.loss_value`), and the Recorder's smoothed losses (computed in bulk when
read), bit for bit against the per-batch formula on the per-batch tensors, whichever way the losses reach it."""

import io
import pickle

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, Learner, ProgressCallback, TerminateOnNaNCallback


def _dls(dtype=torch.float32, n=360, bs=8):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 5, generator=g, dtype=dtype)
    y = (x[:, 0] - x[:, 2] > 0).long()
    return DataLoaders(DataLoader(TensorDataset(x[:320], y[:320]), batch_size=bs),
                       DataLoader(TensorDataset(x[320:], y[320:]), batch_size=40))


class RawLosses(Callback):
    """The per-batch losses as tensors (a copy, at after_batch, where the Recorder reads them)."""

    order = 100

    def __init__(self):
        self.raw = []

    def after_batch(self):
        if self.learn.training:
            self.raw.append(self.learn.loss.clone())


def _reference(raw, beta):
    # The per-batch formula on the losses as float32 values (what stacking the tensors and `.float()` gives).
    vals = torch.stack(raw).float().tolist()
    ema, out = 0.0, []
    for n, v in enumerate(vals, 1):
        ema = ema * beta + v * (1 - beta)
        out.append(ema / (1 - beta**n))
    return out


def _fit(*cbs, dtype=torch.float32, epochs=2):
    torch.manual_seed(0)
    model = nn.Linear(5, 2).to(dtype)
    learn = Learner(_dls(dtype), model, loss_func=F.cross_entropy, lr=0.2, cbs=list(cbs))
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=io.StringIO()))
    learn.fit(epochs)
    return learn


def test_smoothed_losses_read_every_batch_or_at_the_end_are_the_per_batch_formula():
    seen = []

    class ReadEachBatch(Callback):  # as the LR finder and the trackers read it
        order = 60

        def after_batch(self):
            if self.learn.training:
                seen.append(self.learn.smooth_loss)

    raw = RawLosses()
    learn = _fit(raw, ReadEachBatch())
    ref = _reference(raw.raw, learn.recorder.beta)
    assert len(ref) == 80 and seen == ref  # smooth_loss after each batch: the running value
    assert learn.recorder.losses == ref  # the list, built at the end from the same raw values
    assert learn.recorder.smooth_loss == ref[-1] and learn.smooth_loss == ref[-1]
    assert [v[0] for v in learn.recorder.values] == [ref[39], ref[79]]  # each epoch's train_loss
    assert learn.recorder.iters == [40, 80]

    only_end = RawLosses()
    plain = _fit(only_end)  # nobody reads the smoothed loss during the fit
    assert plain.recorder.losses == _reference(only_end.raw, plain.recorder.beta) == ref


def test_the_recorder_gets_the_loops_floats_on_a_cpu_fit_and_tensors_otherwise_with_the_same_values():
    kinds = []

    class Kind(Callback):
        order = 40  # before the Recorder

        def after_batch(self):
            if self.learn.training:
                kinds.append(self.learn.state.loss_value is not None)

    floats = _fit(Kind())
    assert kinds and all(kinds)
    kinds.clear()
    # TerminateOnNaNCallback checks the loss itself, so the loop does not read it: the Recorder keeps tensors
    tensors = _fit(Kind(), TerminateOnNaNCallback())
    assert kinds and not any(kinds)
    assert floats.recorder.losses == tensors.recorder.losses
    assert torch.equal(floats.model.weight, tensors.model.weight)


def test_a_mix_of_floats_and_replaced_losses_keeps_order_and_values():
    class ReplaceSome(Callback):
        order = 40

        def after_loss(self):
            if self.learn.training and self.learn.iter % 3 == 0:
                self.learn.loss = self.learn.loss_grad.detach() * 1  # a new tensor: the loop's float no longer applies

    raw = RawLosses()
    learn = _fit(ReplaceSome(), raw)
    assert learn.recorder.losses == _reference(raw.raw, learn.recorder.beta)


def test_float64_losses_are_smoothed_as_float32_values_as_before():
    raw = RawLosses()
    learn = _fit(raw, dtype=torch.float64)
    assert raw.raw[0].dtype == torch.float64
    ref = _reference(raw.raw, learn.recorder.beta)
    assert learn.recorder.losses == ref
    assert torch.stack(raw.raw).float().tolist() != torch.stack(raw.raw).tolist()  # the float32 rounding shows here


def test_learn_loss_is_the_detached_loss_the_loop_computed_even_when_loss_grad_is_replaced():
    seen = []

    class Scale(Callback):
        def after_loss(self):
            if self.learn.training:
                self.learn.loss_grad = self.learn.loss_grad * 4  # e.g. gradient accumulation, loss scaling

        def after_batch(self):
            if self.learn.training:
                st = self.learn.state
                seen.append((self.learn.loss.item(), st.loss_grad.item(), st.loss_value, self.learn.loss.requires_grad))

    _fit(Scale(), epochs=1)
    for loss, scaled, value, requires_grad in seen:
        assert scaled == loss * 4 and not requires_grad
        assert value is None  # the loop read the scaled loss_grad, which is not `loss`


def test_loss_value_follows_the_loss_and_an_assigned_loss_resets_it():
    seen = []

    class Watch(Callback):
        order = 40

        def after_batch(self):
            if self.learn.training:
                st = self.learn.state
                seen.append((st.loss_value, self.learn.loss.item()))
                if self.learn.iter == 0:
                    self.learn.loss = torch.tensor(5.0)
                    seen.append((st.loss_value, self.learn.loss.item()))

    learn = _fit(Watch(), epochs=1)
    assert seen[0][0] == seen[0][1] and seen[1] == (None, 5.0)
    assert all(v == item for v, item in seen[2:])
    assert learn.recorder.losses[0] == 5.0 * (1 - learn.recorder.beta) / (1 - learn.recorder.beta)


def test_a_state_pickled_mid_batch_keeps_the_lazy_loss():
    got = []

    class Pickle(Callback):
        def after_loss(self):
            if self.learn.training and not got:
                st = pickle.loads(pickle.dumps(self.learn.state))
                got.append((st.loss, self.learn.loss))

    _fit(Pickle(), epochs=1)
    copy, orig = got[0]
    assert isinstance(copy, torch.Tensor) and torch.equal(copy, orig) and not copy.requires_grad


def test_recorder_public_attributes_and_an_older_pickle_still_work():
    from tiers.train import Recorder, accuracy

    learn = _fit(epochs=1)
    rec = learn.recorder
    assert len(rec.lrs) == 40 and set(rec.lrs) == {0.2}
    rec.train_metrics = True  # a plain attribute to users: set between fits, read by the next
    learn.metrics = accuracy
    learn.fit(1)
    assert rec.metric_names[:4] == ["epoch", "train_loss", "train_accuracy", "valid_loss"]
    rec.lrs = []
    assert rec.lrs == [] and rec._log.lrs is rec.lrs
    # a Recorder pickled before its per-batch fields moved into one object (an older export)
    old = Recorder.__new__(Recorder)
    old.__setstate__({"train_metrics": True, "lrs": [0.1, 0.1], "_pending": [], "_lr_group": None,
                      "_losses": [0.5, 0.4], "_ema": 0.0392, "_n": 2, "beta": 0.98, "values": [[0.4, 0.3]]})
    assert old.train_metrics and old.lrs == [0.1, 0.1] and old.losses == [0.5, 0.4]
    assert old.smooth_loss == 0.0392 / (1 - 0.98**2)
    assert pickle.loads(pickle.dumps(rec)).lrs == []
