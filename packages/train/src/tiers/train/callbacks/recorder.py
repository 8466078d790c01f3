"""`Recorder`: losses, learning rates and metrics of a fit, per batch and per epoch, and their plots.

Per training batch it only appends the raw loss and the learning rate to lists: the loss as the float the loop
already read (a CPU fit checks every loss before its step: `learn.state.loss_value`), else the detached tensor (a GPU
fit, where reading it would sync each batch). Smoothing is done when someone reads it, in bulk: `learn.smooth_loss`
(the progress bar, the end of a pass, trackers, the LR finder) runs only the running average up to the last batch,
and `recorder.losses` (plots, the LR finder's suggestions, loggers) is built in full only when read. Both give
exactly (bit for bit) the values of the per-batch formula `ema = ema*beta + loss*(1-beta)`, `ema / (1 - beta**n)`,
on the losses as float32 values.

>>> learn.fit(2)                              # doctest: +SKIP
>>> learn.recorder.values                     # [[train_loss, valid_loss, *metrics], ...]   doctest: +SKIP
>>> learn.recorder.plot_loss()                # doctest: +SKIP
"""

import time
from array import array
from typing import Any

import numpy as np
import torch

from tiers.dispatch.extras import require
from tiers.train.callbacks.core import Callback
from tiers.train.metrics.base import AvgLoss, AvgSmoothLoss, Metric

__all__ = ["Recorder", "format_time"]

_FLUSH_EVERY = 512  # pending loss tensors before a forced bulk read (bounds device memory on long epochs)


def format_time(t: float) -> str:
    """Seconds as `mm:ss` (or `h:mm:ss` past an hour)."""
    t = int(t)
    h, m, s = t // 3600, (t // 60) % 60, t % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _loss_values(pending: list) -> list[float]:
    # The raw losses as float32 values, in order: floats (the loop's reads) through array("f"), which rounds a double
    # exactly as `.float()` does; tensors stacked in one go (one device sync on a GPU), a loss left unreduced by its mean.
    tensors = [t for t in pending if type(t) is not float]
    if not tensors:
        return array("f", pending).tolist()
    try:  # scalar losses (the usual case) stack into one 1-d tensor: no per-loss check
        stacked = torch.stack(tensors)
    except RuntimeError:  # losses of several shapes
        stacked = None
    if stacked is None or stacked.ndim > 1:
        stacked = torch.stack([t.float().mean() for t in tensors])
    tvals = stacked.float().cpu().tolist()
    if len(tensors) == len(pending):
        return tvals
    it = iter(tvals)
    return array("f", [v if type(v) is float else next(it) for v in pending]).tolist()


class _BatchLog:
    # What `Recorder.after_batch` reads and writes every batch, in slots: a callback's own attributes are slower to
    # read (its class has `__getattr__`, which turns off CPython's attribute-access shortcuts).
    __slots__ = ("state", "pending", "pending_tensors", "lrs", "lr_group", "train_metrics")

    def __init__(self, train_metrics: bool) -> None:
        self.state: Any = None  # the Learner's LoopState, set at the start of each pass
        self.pending: list = []  # raw losses not read yet: floats (the loop's) or detached tensors
        self.pending_tensors = False  # whether `pending` holds tensors
        self.lrs: list[float] = []
        self.lr_group: dict | None = None  # the optimizer's last parameter group (its "lr" is recorded)
        self.train_metrics = train_metrics


class Recorder(Callback):
    """Default callback (order 50): records training losses and lrs per batch and loss/metrics per epoch.

    `metric_names` are `epoch, train_loss, valid_loss, *metrics, time` (with `train_`/`valid_`
    prefixes when `train_metrics`; without `valid_metrics`, no validation column: `epoch, train_loss,
    [*metrics on the training set,] time`, as fastai). After each epoch the row `[epoch, ...]` goes to `learn.logger`
    and `values` gets `[train_loss, valid_loss, *metrics]`; `history` holds each epoch's results keyed by
    name (`history[-1]['valid_loss']`). A phase cancelled with `CancelTrainException` or `CancelValidException`
    leaves its columns blank (None) in place, so every row lines up with `metric_names`; trackers, the
    progress table and `plot_loss` read values by name.
    """

    order = 50
    remove_on_fetch = True  # predictions fetched during a fit must not add to the epoch's row

    def __init__(self, add_time: bool = True, train_metrics: bool = False, valid_metrics: bool = True, beta: float = 0.98) -> None:
        self._log = _BatchLog(train_metrics)
        self.add_time, self.valid_metrics, self.beta = add_time, valid_metrics, beta
        self.loss = AvgLoss()
        self.smooth = AvgSmoothLoss(beta)  # kept for fastai-style code reading `recorder.smooth`
        self.iters: list[int] = []
        self.values: list[list] = []
        self.history: list[dict[str, Any]] = []
        self.log: list = []
        self.hps: dict[str, list] = {}
        self.metric_names: list[str] = []
        self.final_record: list | None = None
        self._reset_losses()
        self._vmets: list[Metric] = []
        self.cancel_train = self.cancel_valid = False  # set by the after_cancel_* events, reset each epoch

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A Recorder pickled before the batch log held these (an older export): move them into one.
        if "_log" not in state:
            log = state["_log"] = _BatchLog(state.pop("train_metrics", False))
            log.lrs = state.pop("lrs", [])
            log.pending = state.pop("_pending", [])
            log.pending_tensors = bool(log.pending)
            state.pop("_lr_group", None)
            state.setdefault("_raw", [])  # its smoothed `_losses` and running `_ema`/`_n` stay readable
            state.setdefault("_lema", 0.0)
        self.__dict__.update(state)

    @property
    def lrs(self) -> list[float]:
        """The learning rate (of the last parameter group) at each training batch of the fit."""
        return self._log.lrs

    @lrs.setter
    def lrs(self, v: list[float]) -> None:
        self._log.lrs = v

    @property
    def train_metrics(self) -> bool:
        """Whether the metrics are also computed on the training set (columns `train_<name>`)."""
        return self._log.train_metrics

    @train_metrics.setter
    def train_metrics(self, v: bool) -> None:
        self._log.train_metrics = v

    # ---- raw losses, smoothed when read ---------------------------------------------------------------------
    def _reset_losses(self) -> None:
        log = self._log
        log.pending, log.pending_tensors = [], False
        self._raw: list[float] = []  # every raw training loss of the fit, as float32 values
        self._ema, self._n = 0.0, 0  # the running average through _raw[:_n] (what smooth_loss needs)
        self._losses: list[float] = []  # smoothed losses of _raw[:len(_losses)], built when `losses` is read
        self._lema = 0.0  # the running average through _raw[:len(_losses)]

    def _flush(self) -> None:
        log = self._log
        pending = log.pending
        if not pending:
            return
        vals = _loss_values(pending) if log.pending_tensors else array("f", pending).tolist()
        pending.clear()
        log.pending_tensors = False
        first = len(self._raw)
        self._raw.extend(vals)
        late_check = getattr(self.learn, "_check_nan_late", None)
        if late_check is not None:  # a GPU fit: NaN checked where the values are read anyway (the Learner's check)
            late_check(self.learn, vals, first)

    @property
    def losses(self) -> list[float]:
        """Smoothed training loss after each training batch of the fit."""
        self._flush()
        out, raw = self._losses, self._raw
        if len(out) < len(raw):
            beta, ema, n = self.beta, self._lema, len(out)
            c, append = 1 - beta, out.append  # hoisted: the same float operations, fewer bytecodes per loss
            for v in raw[n:]:
                n += 1
                ema = ema * beta + v * c
                append(ema / (1 - beta**n))
            self._lema = ema
        return out

    @property
    def smooth_loss(self) -> float | None:
        """The latest smoothed training loss (None before the first batch); the last value of `losses`."""
        self._flush()
        raw, n = self._raw, self._n
        if n < len(raw):
            beta, ema = self.beta, self._ema
            c = 1 - beta
            for v in raw[n:] if n else raw:
                ema = ema * beta + v * c  # the same operations as `losses`, so the same value bit for bit
            self._ema, self._n = ema, len(raw)
        n = self._n
        return self._ema / (1 - self.beta**n) if n else None

    # ---- events --------------------------------------------------------------------------------------------
    def _metrics(self) -> list[Metric]:
        return self.learn.metrics

    def before_fit(self) -> None:
        """Reset the history (a validation-only pass keeps it) and build the column names."""
        learn = self.learn
        if not learn.validating:
            self.lrs, self.iters, self.values, self.hps, self.history = [], [], [], {}, []
            self._reset_losses()
        names = [m.name for m in self._metrics()]
        train_names = ["loss"] + (names if self.train_metrics else [])
        # fastai's names rule: without valid_metrics there is no validation column at all (no empty valid_loss)
        valid_names = ["loss"] + names if self.valid_metrics else []
        prefix = self.train_metrics and self.valid_metrics
        cols = [f"train_{n}" for n in train_names] if prefix else ["train_loss"] + train_names[1:]
        if valid_names:
            cols += [f"valid_{n}" for n in valid_names] if prefix else ["valid_loss"] + valid_names[1:]
        self.metric_names = ["epoch", *cols] + (["time"] if self.add_time else [])
        self._train_cols, self._valid_cols = cols[: len(train_names)], cols[len(train_names):]

    def before_epoch(self) -> None:
        """Start the row of this epoch."""
        self.cancel_train = self.cancel_valid = False
        self.start_epoch = time.time()
        self._row: dict[str, Any] = {"epoch": self.learn.epoch}

    def before_train(self) -> None:
        """Reset training metrics."""
        for m in self._train_mets():
            m.reset()
        # The raw torch-style group dict: reading 'lr' from it is a dict lookup, unlike a hypers view.
        opt = self.learn.opt
        log = self._log
        log.lr_group = opt.param_groups[-1] if opt is not None and getattr(opt, "param_groups", None) else None
        log.state = self.learn.state

    def before_validate(self) -> None:
        """Reset validation loss and metrics."""
        self._vmets = self._valid_mets()  # built once per pass, not per batch
        self._log.state = self.learn.state
        for m in self._vmets:
            m.reset()

    def after_batch(self) -> None:
        """Record the batch: raw loss and lr when training, loss and metrics when validating."""
        log = self._log
        st = log.state
        if st is None:  # fired outside a pass (by hand)
            st = log.state = self.learn.state
        if not st.yb:
            return
        if st.training:
            v = st.loss_value
            if v is not None:  # the float the loop read (floats take no device memory: no flush bound needed)
                log.pending.append(v)
            else:  # the loop did not read this loss (a GPU fit...): the tensor, read in bulk later
                pending = log.pending
                pending.append(st.loss)
                log.pending_tensors = True
                if len(pending) >= _FLUSH_EVERY:
                    self._flush()
            grp = log.lr_group
            if grp is not None:
                log.lrs.append(grp["lr"])
            if log.train_metrics:
                learn = self.learn
                for m in learn.metrics:
                    m.accumulate(learn)
        else:
            learn = self.learn
            for m in self._vmets:
                m.accumulate(learn)

    def after_cancel_train(self) -> None:
        """Note that training was cut short (its columns stay blank in the row)."""
        self.cancel_train = True

    def after_cancel_validate(self) -> None:
        """Note that validation was cut short (its columns stay blank in the row)."""
        self.cancel_valid = True

    def after_train(self) -> None:
        """Fill the training columns of the row, unless training was cancelled (they stay blank)."""
        if not self.cancel_train:
            vals = [self.smooth_loss] + [m.value for m in self._train_mets()]
            self._row.update(zip(self._train_cols, vals))
        # The epoch boundary is recorded either way: plot_loss places validation points with it.
        self.iters.append(len(self._raw) + len(self._log.pending))

    def after_validate(self) -> None:
        """Fill the validation columns of the row, unless validation was cancelled (they stay blank)."""
        if not self.cancel_valid:
            self._row.update(zip(self._valid_cols, [m.value for m in self._valid_mets()]))

    def after_epoch(self) -> None:
        """Finish the row: store it (by name in `history`, by position in `values`), then hand it to `learn.logger`."""
        row = self._row
        if self.add_time:
            row["time"] = format_time(time.time() - self.start_epoch)
        if self.learn.validating:  # validate()/get_preds: only the validation columns, and the history stays
            self.final_record = [row.get(n) for n in self._valid_cols]
        else:
            self.final_record = [row.get(n) for n in (*self._train_cols, *self._valid_cols)]
            self.values.append(self.final_record)
            self.history.append({n: row.get(n) for n in self.metric_names})
        self.log = [row.get(n) for n in self.metric_names]
        self.learn.logger(self.log)

    def after_fit(self) -> None:
        """Smooth whatever is pending."""
        self._flush()

    def _train_mets(self) -> list[Metric]:
        return self.learn.metrics if self.train_metrics else []

    def _valid_mets(self) -> list[Metric]:
        return [self.loss, *self.learn.metrics] if self.valid_metrics else []

    # ---- plots ----------------------------------------------------------------------------------------------
    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, log: bool = False, show_epochs: bool = False, ax: Any = None) -> Any:
        """Plot smoothed training loss per batch (from batch `skip_start`) and validation loss per epoch, on `ax` (a new
        figure by default). Returns nothing, so a notebook cell ending with it shows the plot and no `<Axes>` text."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="Recorder.plot_loss")

        losses = self.losses
        if not losses:
            raise ValueError("plot_loss: nothing recorded yet; call fit first")
        if ax is None:
            _, ax = plt.subplots()
        plot = ax.loglog if log else ax.plot
        plot(list(range(skip_start, len(losses))), losses[skip_start:], label="train")
        if show_epochs:
            for x in self.iters:
                ax.axvline(x, color="grey", ls=":")
        if with_valid:
            # By name: an epoch whose validation was cancelled has no point (its train columns still count).
            pts = [(it, h.get("valid_loss")) for it, h in zip(self.iters, self.history)]
            pts = [(it, v) for it, v in pts if v is not None and it >= skip_start]
            if pts:
                plot(np.array([it for it, _ in pts]), np.array([v for _, v in pts], dtype=float), label="valid")
        ax.set_xlabel("batch")
        ax.set_ylabel("loss")
        ax.legend()

    def plot_sched(self, keys: list[str] | None = None, figsize: tuple[float, float] | None = None,
                   return_fig: bool = False) -> Any:
        """Plot the hyper-parameters a `ParamScheduler` set, one panel per key; returns the figure with `return_fig=True`
        only (a returned figure would show twice at the end of a notebook cell)."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="Recorder.plot_sched")

        if not self.hps:
            raise ValueError("plot_sched: no schedule recorded; train with a ParamScheduler (fit_one_cycle, fit_flat_cos...)")
        keys = list(self.hps) if keys is None else keys
        rows, cols = (len(keys) + 1) // 2, min(2, len(keys))
        fig, axs = plt.subplots(rows, cols, figsize=figsize or (6 * cols, 4 * rows), squeeze=False)
        for k, ax in zip(keys, axs.flatten()):
            ax.plot(self.hps[k])
            ax.set_ylabel(k)
            ax.set_xlabel("batch")
        for ax in axs.flatten()[len(keys):]:
            ax.set_visible(False)
        return fig if return_fig else None

    def plot_lr_find(self, skip_end: int = 5, suggestions: Any = None, nms: list[str] | None = None) -> Any:
        """Plot loss against learning rate (log scale) from `lr_find`, marking suggested lrs. Returns nothing (no `<Axes>`
        text after the plot in a notebook)."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="Recorder.plot_lr_find")

        lrs = self.lrs if skip_end == 0 else self.lrs[:-skip_end]
        losses = self.losses if skip_end == 0 else self.losses[:-skip_end]
        n = min(len(lrs), len(losses))
        if n == 0:
            raise ValueError("plot_lr_find: nothing recorded; call learn.lr_find() first")
        _, ax = plt.subplots()
        ax.plot(lrs[:n], losses[:n])
        ax.set_ylabel("Loss")
        ax.set_xlabel("Learning Rate")
        ax.set_xscale("log")
        if suggestions:
            colors = plt.rcParams["axes.prop_cycle"].by_key()["color"][1:]
            names: list[str | None] = list(nms) if nms else [None] * len(suggestions)
            for (val, idx), nm, color in zip(suggestions, names, colors):
                ax.plot(val, idx, "o", label=nm, c=color)
            ax.legend(loc="best")
