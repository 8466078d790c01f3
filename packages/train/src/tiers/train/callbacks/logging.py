"""Logging callbacks: `LoggerCallback` (the base external loggers subclass), `CSVLogger`, `ShowGraphCallback`,
and `TensorBoardCallback` (needs the optional `tensorboard` package).

A logger subclass implements `log_metrics(metrics: dict, step: int)` (and optionally `log_hypers`,
`close`); the base calls it once per epoch with the Recorder's row, and per training batch with the
loss and learning rate when `log_every_batch`.

>>> class PrintLogger(LoggerCallback):
...     def log_metrics(self, metrics, step): print(step, metrics)
"""

import csv
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from tiers.dispatch.extras import require
from tiers.tensors import to_detach
from tiers.train.callbacks.core import Callback

__all__ = ["LoggerCallback", "CSVLogger", "ShowGraphCallback", "TensorBoardCallback", "CollectDataCallback"]


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
        pd = require("pandas", dist="tiers-train", extra="pandas", what="CSVLogger.read_log")

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

    def __getstate__(self) -> dict[str, Any]:
        # An open file and its csv writer belong to one fit: an export (pickle) keeps the settings, not the handles.
        state = dict(self.__dict__)
        state["file"] = None
        state.pop("writer", None)
        return state


def _cell(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    return v


class ShowGraphCallback(Callback):
    """Plot training and validation losses after each epoch (matplotlib); the figure is in `self.fig`."""

    order = 65
    run_valid = False

    def before_fit(self) -> None:
        """Nothing to plot in a validation-only pass; without matplotlib, fail before the first epoch, not after it."""
        self.run = not getattr(self.learn, "validating", False)
        if self.run:
            require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="ShowGraphCallback")
        self.nb_batches: list[int] = []

    def after_train(self) -> None:
        """Remember where each epoch ends."""
        self.nb_batches.append(int(self.learn.train_iter))

    def after_epoch(self) -> None:
        """Redraw the losses."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="ShowGraphCallback")

        rec = self.learn.recorder
        losses = rec.losses
        if not losses:
            return
        if getattr(self, "fig", None) is None:
            self.fig, self.ax = plt.subplots()
        ax = self.ax
        ax.clear()
        ax.plot(range(1, len(losses) + 1), losses, label="train")
        # By name; an epoch whose validation was cancelled has no point.
        pts = [(n, h.get("valid_loss")) for n, h in zip(self.nb_batches, rec.history)]
        pts = [(n, v) for n, v in pts if v is not None]
        if pts:
            ax.plot([n for n, _ in pts], [v for _, v in pts], marker="o", label="valid")
        n_total = len(losses) / max(self.learn.epoch + 1, 1) * self.learn.n_epoch
        ax.set_xlim(0, max(n_total, len(losses)))
        ax.set_xlabel("batches")
        ax.set_ylabel("loss")
        ax.legend()

    def __getstate__(self) -> dict[str, Any]:
        # The figure is a display of one run: an export (pickle) leaves it out, as the safe load could not rebuild it.
        state = dict(self.__dict__)
        state.pop("fig", None)
        state.pop("ax", None)
        return state


class TensorBoardCallback(LoggerCallback):
    """Write the training to TensorBoard event files in `log_dir` (default `learn.path/'runs'`).

    Scalars: per training batch (`log_every_batch`), the smoothed loss (`train/smooth_loss`, the Recorder's) and the
    last parameter group's learning rate and momentum (`hypers/lr`, `hypers/mom`; with several groups also
    `hypers/lr_group<i>`); per epoch, each column of the Recorder's row (`epoch/train_loss`, `epoch/valid_loss`,
    `epoch/<metric>`). Steps keep counting across fits (`fine_tune`'s two phases follow each other). Optionally the
    model graph (`trace_model`, traced on a validation batch) and, per epoch, `n_preds` validation predictions drawn
    by `show_results` (`log_preds`: images for vision) under `valid/predictions`.

    Needs the optional extra `tiers-train[tensorboard]`; `tensorboard --logdir <log_dir>` shows the result.

    >>> learn.fit_one_cycle(3, 1e-3, cbs=TensorBoardCallback("runs/exp1", log_preds=True))  # doctest: +SKIP
    """

    def __init__(self, log_dir: str | Path | None = None, log_every_batch: bool = True, trace_model: bool = False,
                 log_preds: bool = False, n_preds: int = 9, flush_every: int = 50) -> None:
        super().__init__(log_every_batch)
        import_tensorboard()  # fail when the callback is made, not after the first epoch
        self.log_dir, self.trace_model, self.log_preds = log_dir, trace_model, log_preds
        self.n_preds, self.flush_every = n_preds, max(1, int(flush_every))
        self.writer: Any = None
        self._batches_done = self._epochs_done = 0  # earlier fits of this callback: the steps continue
        self._pending: list[dict[str, float]] = []
        self._written = 0

    @property
    def path(self) -> Path:
        """The folder the event files go to."""
        if self.log_dir is None:
            return Path(self.learn.path) / "runs"
        d = Path(self.log_dir)
        return d if d.is_absolute() else Path(self.learn.path) / d

    def before_fit(self) -> None:
        """Open the `SummaryWriter` (rank 0 only) and trace the model when `trace_model`."""
        self.writer = None
        if getattr(self.learn, "validating", False) or not self._is_main():
            return
        import_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.path))
        self._pending, self._written = [], 0
        if self.trace_model:
            self._add_graph()

    def _hypers(self) -> dict[str, float]:
        opt = self.learn.opt
        groups = list(getattr(opt, "hypers", None) or getattr(opt, "param_groups", None) or [])
        if not groups:
            return {}
        out: dict[str, float] = {}
        last = groups[-1]
        if "lr" in last:
            out["hypers/lr"] = float(last["lr"])
        mom = last.get("mom", last.get("momentum", (last.get("betas") or (None,))[0]))
        if mom is not None:
            out["hypers/mom"] = float(mom)
        if len(groups) > 1:
            out.update({f"hypers/lr_group{i}": float(g["lr"]) for i, g in enumerate(groups) if "lr" in g})
        return out

    def after_batch(self) -> None:
        """Note this batch's hyper-parameters; every `flush_every` batches, write the pending batch scalars."""
        if self.writer is None or not self.log_every_batch or not self.learn.training:
            return
        self._pending.append(self._hypers())
        if len(self._pending) >= self.flush_every:
            self._write_batches()

    def _write_batches(self) -> None:
        # The smoothed losses come from the Recorder in bulk (no per-batch device sync), one per training batch.
        if not self._pending:
            return
        rec = getattr(self.learn, "recorder", None)
        losses = rec.losses if rec is not None else []
        for j, hyp in enumerate(self._pending):
            i = self._written + j
            step = self._batches_done + i
            if i < len(losses):
                self.writer.add_scalar("train/smooth_loss", float(losses[i]), step)
            for k, v in hyp.items():
                self.writer.add_scalar(k, v, step)
        self._written += len(self._pending)
        self._pending = []
        self.writer.flush()

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        """One scalar per metric at `step` (names without a `/` go under `epoch/`)."""
        if self.writer is None:
            return
        for k, v in metrics.items():
            self.writer.add_scalar(k if "/" in k else f"epoch/{k}", v, step)
        self.writer.flush()

    def after_epoch(self) -> None:
        """The batch scalars so far, the Recorder's row for this epoch, and the predictions when `log_preds`."""
        if self.writer is None:
            return
        self._write_batches()
        vals = _row_by_name(self.learn)
        step = self._epochs_done + int(self.learn.epoch)
        self.log_metrics(vals, step)
        if self.log_preds:
            self._add_preds(step)

    def _add_graph(self) -> None:
        # Traced in eval mode without gradients: tracing runs the model, which must not move BatchNorm statistics.
        import torch

        learn = self.learn
        model = learn.model
        try:
            b = learn.dls.valid.one_batch()
            xs = tuple(b[: int(getattr(learn.dls, "n_inp", 1) or 1)])
            was_training = model.training
            model.eval()
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    # add_graph works through torch.jit.trace, which torch now flags as deprecated on each call
                    warnings.filterwarnings("ignore", r".*torch\.jit\.trace", FutureWarning)
                    self.writer.add_graph(model, tuple(x.as_subclass(torch.Tensor) for x in xs))
            finally:
                model.train(was_training)
        except Exception as e:  # noqa: BLE001 - a model torch.jit.trace cannot follow must not stop the training
            warnings.warn(f"TensorBoardCallback: could not trace the model for the graph ({type(e).__name__}: {e}); "
                          "training goes on without it (pass trace_model=False to skip)", stacklevel=2)

    def _add_preds(self, step: int) -> None:
        # show_results' figure for one validation batch, predicted here (get_preds inside a fit would reset the
        # loop's state); layers that draw no figure (tables) have nothing to send.
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="TensorBoardCallback(log_preds=True)")
        import torch

        learn = self.learn
        dl = learn.dls.valid
        if not hasattr(dl, "show_results"):
            return
        b = dl.one_batch()
        n_inp = int(getattr(learn.dls, "n_inp", 1) or 1)
        model = learn.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                # plain tensors in: a TensorImage input would make the outputs TensorImages too, drawn as images
                out = model(*(x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else x for x in b[:n_inp]))
        finally:
            model.train(was_training)
        lf = learn.loss_func
        act = getattr(lf, "activation", None)
        preds = act(out) if act is not None else out
        dec = getattr(lf, "decodes", None)
        decoded = dec(preds) if dec is not None else preds
        before = set(plt.get_fignums())
        dl.show_results(b, decoded, max_n=self.n_preds)
        new = [n for n in plt.get_fignums() if n not in before]
        for n in new:
            self.writer.add_figure("valid/predictions", plt.figure(n), step, close=True)
        if new:
            self.writer.flush()

    def after_fit(self) -> None:
        """Write what is pending, advance the steps for the next fit, close the writer."""
        if self.writer is None:
            return
        self._write_batches()
        self._batches_done += self._written
        self._epochs_done += len(getattr(self.learn.recorder, "values", []) or [])
        self.writer.close()
        self.writer = None


def _row_by_name(learn) -> dict[str, float]:
    # This epoch's results by column name (the Recorder's `history`; a cancelled phase's columns are None there).
    rec = learn.recorder
    hist = getattr(rec, "history", None)
    row = dict(hist[-1]) if hist else dict(zip(rec.metric_names, rec.log))
    row.pop("epoch", None)
    row.pop("time", None)
    return {k: float(v) for k, v in row.items()
            if v is not None and (isinstance(v, (int, float)) or hasattr(v, "__float__"))}


def import_tensorboard() -> ModuleType:
    """The `tensorboard` package; a missing one raises `MissingExtraError` (a `ModuleNotFoundError`) naming the
    extra tiers-train[tensorboard]."""
    return require("tensorboard", dist="tiers-train", extra="tensorboard", what="TensorBoardCallback")


class CollectDataCallback(Callback):
    """Collect every batch of a fit (training and validation), with its prediction and loss, into `self.data`:
    a list of `(xb, yb, pred, loss)` detached on the CPU, in the order the loop ran them (fastai's name; mainly
    for tests and debugging: it keeps every batch in memory)."""

    def before_fit(self) -> None:
        """Start an empty list."""
        self.data: list[tuple] = []

    def after_batch(self) -> None:
        """Keep this batch, its prediction and its loss."""
        learn = self.learn
        self.data.append(to_detach((learn.xb, learn.yb, learn.pred, learn.loss), cpu=True, gather=False))
