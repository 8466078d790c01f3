"""The loop's per-batch shortcuts (one_batch written out, backward/step inlined) never bypass an override: a subclass
or instance redefining `one_batch`, `_backward` or `_step` is called, and every path trains to the same weights."""

import io

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Learner, ProgressCallback


def _learn(cls=Learner):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16),
                      DataLoader(TensorDataset(x[48:], y[48:]), batch_size=16))
    torch.manual_seed(0)
    learn = cls(dls, nn.Linear(4, 2), loss_func=F.cross_entropy, lr=0.1)
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=io.StringIO()))
    return learn


def _weights(learn):
    return torch.cat([p.detach().flatten() for p in learn.model.parameters()])


def test_subclass_overrides_of_one_batch_backward_and_step_are_called():
    calls = {"one_batch": 0, "_backward": 0, "_step": 0}

    class Counting(Learner):
        def one_batch(self, i, b):
            calls["one_batch"] += 1
            super().one_batch(i, b)

        def _backward(self):
            calls["_backward"] += 1
            super()._backward()

        def _step(self):
            calls["_step"] += 1
            super()._step()

    learn = _learn(Counting)
    learn.fit(2)
    assert calls == {"one_batch": 2 * (3 + 1), "_backward": 2 * 3, "_step": 2 * 3}
    plain = _learn()
    plain.fit(2)
    assert torch.equal(_weights(learn), _weights(plain))  # the override path and the written-out path agree
    assert learn.recorder.losses == plain.recorder.losses


def test_instance_override_of_one_batch_is_called():
    learn = _learn()
    seen = []
    orig = learn.one_batch

    def one_batch(i, b):
        seen.append((learn.training, i))
        orig(i, b)

    learn.one_batch = one_batch
    learn.fit(1)
    assert seen == [(True, 0), (True, 1), (True, 2), (False, 0)]
    assert learn.state.train_iter == 3


def test_a_cancelled_backward_or_step_skips_only_that_step_on_the_quiet_path():
    from tiers.train import CancelStepException

    class NoStep(Learner):
        def _step(self):
            raise CancelStepException()

    learn = _learn(NoStep)
    before = _weights(learn).clone()
    learn.fit(1)
    assert torch.equal(_weights(learn), before)  # no step taken, the fit completed
    assert learn.state.train_iter == 3 and len(learn.recorder.values) == 1


def test_the_batch_is_counted_after_after_cancel_batch_and_before_every_after_batch_handler():
    from tiers.train import Callback, CancelBatchException

    seen = []

    class Watch(Callback):
        order = -100  # runs before the Recorder: still sees the batch counted

        def before_batch(self):
            if self.learn.training and self.learn.iter == 1:
                raise CancelBatchException()

        def after_cancel_batch(self):
            seen.append(("cancel", self.learn.train_iter))

        def after_batch(self):
            if self.learn.training:
                seen.append(("after", self.learn.train_iter, round(self.learn.pct_train, 6)))

    learn = _learn()
    learn.fit(1, cbs=Watch())
    assert seen == [("after", 1, 0.333333), ("cancel", 1), ("after", 2, 0.666667), ("after", 3, 1.0)]
    # firing the event by hand still runs the loop's own step first, as listed by show_training_loop
    learn.state.training = True
    before = learn.state.train_iter
    learn("after_batch")
    assert learn.state.train_iter == before + 1
