"""A cancelled training or validation phase leaves its columns blank in place: the epoch's row, the printed
table, the trackers and `plot_loss` all read values by column name."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tiers.data import DataLoaders  # noqa: E402
from tiers.optim import SGD  # noqa: E402
from tiers.train import (  # noqa: E402
    Callback,
    CancelTrainException,
    CancelValidException,
    CrossEntropyLossFlat,
    Learner,
    accuracy,
)


def make_learn(cbs, capture=True):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16),
                      DataLoader(TensorDataset(x[32:], y[32:]), batch_size=16))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), opt_func=SGD, lr=0.1, metrics=accuracy, cbs=cbs)
    rows = []
    if capture:
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


def test_cancel_valid_leaves_the_validation_columns_blank_in_that_row_only():
    learn, rows = make_learn(CancelIn(CancelValidException, epoch=0))
    learn.fit(2)
    names = learn.recorder.metric_names
    assert names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    first, second = rows
    assert len(first) == len(second) == len(names)  # every row lines up with the names
    assert first[0] == 0 and isinstance(first[1], float) and first[2] is None and first[3] is None
    assert isinstance(first[4], str)  # time stays in its own column
    assert second[0] == 1 and all(v is not None for v in second)  # the flag is reset for the next epoch
    assert learn.recorder.values[0] == [first[1], None, None]
    assert learn.recorder.history[0] == dict(zip(names, first))
    assert learn.recorder.history[1]["valid_loss"] == second[2]


def test_cancel_train_leaves_the_training_columns_blank():
    learn, rows = make_learn(CancelIn(CancelTrainException, epoch=0))
    learn.fit(1)
    (row,) = rows
    assert len(row) == 5 and row[1] is None  # train_loss blank, in place
    valid_loss, acc = row[2], row[3]
    assert valid_loss == learn.recorder.values[0][1] == learn.recorder.history[0]["valid_loss"]
    assert 0.0 <= acc <= 1.0 and learn.recorder.history[0]["accuracy"] == acc
    assert learn.recorder.iters == [1]  # the one training batch that ran still marks the epoch boundary


def test_nothing_cancelled_gives_full_rows_and_validate_still_works():
    learn, rows = make_learn([])
    learn.fit(1)
    assert len(rows[0]) == 5 and len(learn.recorder.values[0]) == 3
    assert len(learn.validate()) == 2 and len(learn.recorder.history) == 1  # validate keeps the history


def test_trackers_read_by_name_and_skip_a_blank_value():
    from tiers.train import TrackerCallback

    tracker = TrackerCallback(monitor="valid_loss")
    learn, _ = make_learn([CancelIn(CancelTrainException, epoch=0), tracker])
    learn.fit(2)
    # epoch 0 lacks train_loss: its valid_loss is still read as valid_loss (not shifted onto accuracy)
    assert learn.recorder.values[0][0] is None
    assert tracker.best == min(h["valid_loss"] for h in learn.recorder.history)

    tracker = TrackerCallback(monitor="valid_loss")
    learn, _ = make_learn([CancelIn(CancelValidException, epoch=1), tracker])
    learn.fit(2)
    assert tracker.best == learn.recorder.history[0]["valid_loss"]  # epoch 1's blank value is skipped


def _table_cells(out: str) -> list[dict[str, str]]:
    # The printed table: cells sit under their header's first character.
    lines = [ln for ln in out.replace("\r", "\n").splitlines() if ln.strip()]
    header_i = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["epoch", "train_loss"])
    header = lines[header_i]
    names = header.split()
    starts = [header.index(n) for n in names]
    rows = []
    for ln in lines[header_i + 1:]:
        if not ln[:1].isdigit():
            continue
        cells = {n: ln[a:b].strip() for n, a, b in zip(names, starts, [*starts[1:], None])}
        rows.append(cells)
    return rows


def test_printed_table_after_cancel_valid(capsys):
    learn, _ = make_learn(CancelIn(CancelValidException, epoch=0), capture=False)
    with learn.no_bar():
        learn.fit(2)
    rows = _table_cells(capsys.readouterr().out)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert rows[0]["valid_loss"] == "" and rows[0]["accuracy"] == ""
    assert float(rows[0]["train_loss"]) == round(learn.recorder.values[0][0], 6)
    assert ":" in rows[0]["time"]  # the time did not slide left into valid_loss
    assert float(rows[1]["valid_loss"]) == round(learn.recorder.history[1]["valid_loss"], 6)


def test_printed_table_after_cancel_train(capsys):
    learn, _ = make_learn(CancelIn(CancelTrainException, epoch=0), capture=False)
    with learn.no_bar():
        learn.fit(1)
    (row,) = _table_cells(capsys.readouterr().out)
    assert row["train_loss"] == ""
    assert float(row["valid_loss"]) == round(learn.recorder.history[0]["valid_loss"], 6)
    assert float(row["accuracy"]) == round(learn.recorder.history[0]["accuracy"], 6)


def _valid_line(recorder):
    plt.close("all")
    recorder.plot_loss(skip_start=0)
    (line,) = [ln for ln in plt.gca().get_lines() if ln.get_label() == "valid"]
    return list(line.get_xdata()), list(line.get_ydata())


def test_plot_loss_after_cancel_valid_skips_that_epoch():
    learn, _ = make_learn(CancelIn(CancelValidException, epoch=0))
    learn.fit(2)
    xs, ys = _valid_line(learn.recorder)
    assert xs == [learn.recorder.iters[1]] and ys == [learn.recorder.history[1]["valid_loss"]]


def test_plot_loss_after_cancel_train_plots_valid_loss_not_accuracy():
    learn, _ = make_learn(CancelIn(CancelTrainException, epoch=0))
    learn.fit(2)
    xs, ys = _valid_line(learn.recorder)
    assert xs == learn.recorder.iters[:2]
    assert ys == [h["valid_loss"] for h in learn.recorder.history]
    assert ys[0] != learn.recorder.history[0]["accuracy"]
