"""A cancelled training or validation phase leaves its columns out of the epoch's logged row (as in fastai)."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import SGD
from tiers.train import (
    Callback,
    CancelTrainException,
    CancelValidException,
    CrossEntropyLossFlat,
    Learner,
    accuracy,
)


def make_learn(cbs):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16),
                      DataLoader(TensorDataset(x[32:], y[32:]), batch_size=16))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1, metrics=accuracy, cbs=cbs)
    rows = []
    learn.logger = rows.append
    return learn, rows


class CancelIn(Callback):
    """Raise `exc` after the first batch of the phase (once the Recorder has seen it), in epoch `epoch` only."""

    order = 60  # after the Recorder (50)

    def __init__(self, exc, epoch):
        self.exc, self.at_epoch = exc, epoch

    def after_batch(self):
        wanted = self.training if self.exc is CancelTrainException else not self.training
        if wanted and self.epoch == self.at_epoch:
            raise self.exc()


def test_cancel_valid_leaves_validation_columns_out_of_that_row_only():
    learn, rows = make_learn(CancelIn(CancelValidException, epoch=0))
    learn.fit(2)
    assert learn.recorder.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    first, second = rows
    assert first[0] == 0 and len(first) == 3  # epoch, train_loss, time
    assert isinstance(first[1], float) and isinstance(first[2], str)
    assert second[0] == 1 and len(second) == 5  # the flag is reset for the next epoch
    assert learn.recorder.values[0] == [first[1]]
    assert len(learn.recorder.values[1]) == 3


def test_cancel_train_leaves_training_columns_out():
    learn, rows = make_learn(CancelIn(CancelTrainException, epoch=0))
    learn.fit(1)
    (row,) = rows
    assert len(row) == 4  # epoch, valid_loss, accuracy, time
    valid_loss, acc = row[1], row[2]
    assert valid_loss == learn.recorder.values[0][0] and 0.0 <= acc <= 1.0
    assert learn.recorder.iters == [1]  # the one training batch that ran still marks the epoch boundary


def test_nothing_cancelled_gives_full_rows_and_validate_still_works():
    learn, rows = make_learn([])
    learn.fit(1)
    assert len(rows[0]) == 5 and len(learn.recorder.values[0]) == 3
    assert len(learn.validate()) == 2


def test_trackers_skip_an_epoch_whose_training_phase_was_cancelled():
    from tiers.train import TrackerCallback

    tracker = TrackerCallback(monitor="valid_loss")
    learn, _ = make_learn([CancelIn(CancelTrainException, epoch=0), tracker])
    learn.fit(2)
    # epoch 0's row lacks train_loss, so its position 1 holds accuracy: it must not be read as valid_loss
    assert len(learn.recorder.values[0]) == 2 and len(learn.recorder.values[1]) == 3
    assert tracker.best == learn.recorder.values[1][1]
