"""Logging callbacks: `LoggerCallback` (the base external loggers subclass), `CSVLogger`, `ShowGraphCallback`,
and `TensorBoardCallback` (needs the optional `tensorboard` package).

A logger subclass implements `log_metrics(metrics: dict, step: int)` (and optionally `log_hypers`,
`close`); the base calls it once per epoch with the Recorder's row, and per training batch with the
loss and learning rate when `log_every_batch`.

>>> class PrintLogger(LoggerCallback):
...     def log_metrics(self, metrics, step): print(step, metrics)
"""

import csv
from pathlib import Path
from typing import Any

from tiers.train.callbacks.core import Callback

__all__ = ["LoggerCallback", "CSVLogger", "ShowGraphCallback", "TensorBoardCallback"]


class LoggerCallback(Callback):
    """Base of metric loggers: calls `log_metrics(dict, step)` after each epoch (and each batch with `log_every_batch`).

    Only rank 0 logs in distributed training (`learn.rank`, when set). Subclasses override
    `log_metrics` and may override `before_fit`/`after_fit` (call super) to open and close their sink.
    """

    order = 55  # after the Recorder (50) finished the epoch's row
    run_valid = False

    def __init__(self, log_every_batch: bool = False) -> None:
        self.log_every_batch = log_every_batch

    def _is_main(self) -> bool:
        return int(getattr(self.learn, "rank", 0) or 0) == 0

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        """Write `metrics` at `step` to the sink (subclasses implement this)."""
        raise NotImplementedError(f"{type(self).__name__} must implement log_metrics(metrics, step)")

    def after_batch(self) -> None:
        """Per-batch training loss and lr, when `log_every_batch`."""
        if not self.log_every_batch or not self._is_main() or self.learn.loss_grad is None:
            return
        vals = {"train/loss": float(self.learn.loss.float().mean())}
        opt = self.learn.opt
        if opt is not None and getattr(opt, "param_groups", None):
            vals["train/lr"] = float(opt.param_groups[-1]["lr"])
        self.log_metrics(vals, int(self.learn.train_iter))

    def after_epoch(self) -> None:
        """The Recorder's row for this epoch, by column name (epoch and time left out)."""
        if not self._is_main():
            return
        rec = self.learn.recorder
        row = dict(zip(rec.metric_names, rec.log))
        row.pop("epoch", None)
        row.pop("time", None)
        vals = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) or hasattr(v, "__float__")}
        self.log_metrics(vals, int(self.learn.epoch))


class CSVLogger(Callback):
    """Write each epoch's Recorder row to `learn.path/fname` as CSV (appending to an existing file when `append`).

    The rows are flushed each epoch, so the file is readable during training; `read_log()` returns
    it as a pandas DataFrame.
    """

    order = 55

    def __init__(self, fname: str | Path = "history.csv", append: bool = False) -> None:
        self.fname, self.append = Path(fname), append
        self.file: Any = None

    @property
    def path(self) -> Path:
        """The CSV file's full path."""
        return self.fname if self.fname.is_absolute() else Path(self.learn.path) / self.fname

    def read_log(self) -> Any:
        """The CSV file as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(self.path)

    def before_fit(self) -> None:
        """Open the file and write the header (not when appending to a file that has one)."""
        if getattr(self.learn, "validating", False) or int(getattr(self.learn, "rank", 0) or 0) != 0:
            return
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        has_header = self.append and path.exists() and path.stat().st_size > 0
        self.file = open(path, "a" if self.append else "w", newline="")
        self.writer = csv.writer(self.file)
        if not has_header:
            self.writer.writerow(self.learn.recorder.metric_names)
            self.file.flush()

    def after_epoch(self) -> None:
        """Write this epoch's row."""
        if self.file is None:
            return
        self.writer.writerow([_cell(v) for v in self.learn.recorder.log])
        self.file.flush()

    def after_fit(self) -> None:
        """Close the file."""
        if self.file is not None:
            self.file.close()
            self.file = None


def _cell(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    return v


class ShowGraphCallback(Callback):
    """Plot training and validation losses after each epoch (matplotlib); the figure is in `self.fig`."""

    order = 65
    run_valid = False

    def before_fit(self) -> None:
        """Nothing to plot in a validation-only pass."""
        self.run = not getattr(self.learn, "validating", False)
        self.nb_batches: list[int] = []

    def after_train(self) -> None:
        """Remember where each epoch ends."""
        self.nb_batches.append(int(self.learn.train_iter))

    def after_epoch(self) -> None:
        """Redraw the losses."""
        import matplotlib.pyplot as plt

        rec = self.learn.recorder
        losses = rec.losses
        if not losses:
            return
        if getattr(self, "fig", None) is None:
            self.fig, self.ax = plt.subplots()
        ax = self.ax
        ax.clear()
        ax.plot(range(1, len(losses) + 1), losses, label="train")
        vcol = rec.metric_names[1:].index("valid_loss") if "valid_loss" in rec.metric_names else None
        if vcol is not None:
            vals = [v[vcol] for v in rec.values if len(v) > vcol and v[vcol] is not None]
            ax.plot(self.nb_batches[: len(vals)], vals, marker="o", label="valid")
        n_total = len(losses) / max(self.learn.epoch + 1, 1) * self.learn.n_epoch
        ax.set_xlim(0, max(n_total, len(losses)))
        ax.set_xlabel("batches")
        ax.set_ylabel("loss")
        ax.legend()


class TensorBoardCallback(LoggerCallback):
    """Log epoch metrics (and per-batch loss/lr with `log_every_batch`) to TensorBoard event files in `log_dir`.

    Needs the `tensorboard` package (`pip install tensorboard`), imported only when the fit starts.
    """

    def __init__(self, log_dir: str | Path | None = None, log_every_batch: bool = False) -> None:
        super().__init__(log_every_batch)
        self.log_dir = log_dir
        self.writer: Any = None

    def before_fit(self) -> None:
        """Open the `SummaryWriter` (rank 0 only)."""
        if getattr(self.learn, "validating", False) or not self._is_main():
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError(
                "TensorBoardCallback needs the `tensorboard` package: pip install tensorboard"
            ) from e
        log_dir = self.log_dir if self.log_dir is not None else Path(self.learn.path) / "runs"
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        """One scalar per metric."""
        if self.writer is None:
            return
        for k, v in metrics.items():
            self.writer.add_scalar(k if "/" in k else f"epoch/{k}", v, step)
        self.writer.flush()

    def after_fit(self) -> None:
        """Close the writer."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
