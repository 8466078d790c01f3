"""Callbacks that watch a recorded value each epoch: early stopping, saving the best model, LR on plateau.

The monitored value is a column of the `Recorder` (`'valid_loss'`, `'train_loss'` or a metric's
name). Whether lower is better is guessed from the name (losses and errors go down), or set with `comp`.

>>> learn.fit(20, cbs=[EarlyStoppingCallback(patience=3), SaveModelCallback(monitor='accuracy')])  # doctest: +SKIP
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from tiers.train.callbacks.core import Callback
from tiers.train.events import CancelFitException

__all__ = ["TrackerCallback", "EarlyStoppingCallback", "SaveModelCallback", "ReduceLROnPlateau"]


class TrackerCallback(Callback):
    """Track `monitor` each epoch: `best` holds the best value so far and `new_best` says if this epoch improved it.

    `comp` is `np.less` or `np.greater` (default: less for names with 'loss' or 'error', else greater);
    an improvement must beat `best` by more than `min_delta`. `reset_on_fit` forgets `best` each fit.
    """

    order = 55  # after the Recorder (50) has the epoch's row

    def __init__(
        self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0, reset_on_fit: bool = True
    ) -> None:
        if comp is None:
            comp = np.less if ("loss" in monitor or "error" in monitor) else np.greater
        if comp is np.less:
            min_delta = -min_delta
        self.comp: Callable[[Any, Any], Any] = comp
        self.monitor, self.min_delta, self.reset_on_fit = monitor, min_delta, reset_on_fit
        self.best: float | None = None
        self.new_best = False

    def before_fit(self) -> None:
        """Find the monitored column (and reset `best` when `reset_on_fit`)."""
        if self._reset_wanted() or self.best is None:
            self.best = float("inf") if self.comp is np.less else -float("inf")
            if hasattr(self, "wait"):
                self.wait = 0
        names = [n for n in self.learn.recorder.metric_names if n not in ("epoch", "time")]
        if self.monitor not in names:
            raise ValueError(f"{type(self).__name__}: monitor={self.monitor!r} is not recorded; choose one of {names}")

    def after_epoch(self) -> None:
        """Compare this epoch's value with `best` (read by name; a cancelled phase's blank value is skipped)."""
        hist = self.learn.recorder.history
        self.new_best = False
        val = hist[-1].get(self.monitor) if hist else None
        if val is None:
            return
        val = float(val)
        if self.comp(val - self.min_delta, self.best):
            self.best, self.new_best = val, True

    def state_dict(self) -> dict:
        """`best` so far and subclass counters (for checkpoints)."""
        return {k: getattr(self, k) for k in ("best", "wait") if hasattr(self, k)}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict`; the restored `best` survives the next `before_fit`."""
        for k, v in state.items():
            setattr(self, k, v)
        self._restored = True

    def _out_of_patience(self) -> bool:
        """Track this epoch, then count epochs without improvement in `self.wait`: True once it reaches
        `self.patience` (subclasses with a patience: early stopping, lr reduction)."""
        TrackerCallback.after_epoch(self)
        if self.new_best:
            self.wait = 0
            return False
        self.wait += 1
        return self.wait >= self.patience

    def _reset_wanted(self) -> bool:
        if getattr(self, "_restored", False):
            self._restored = False
            return False
        return self.reset_on_fit


class EarlyStoppingCallback(TrackerCallback):
    """Stop training when `monitor` has not improved for `patience` epochs."""

    order = TrackerCallback.order + 3  # last of the trackers (fastai: 63): the others see the final epoch first

    def __init__(
        self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0, patience: int = 1,
        reset_on_fit: bool = True,
    ) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.patience, self.wait = patience, 0

    def after_epoch(self) -> None:
        """Count epochs without improvement; stop at `patience`."""
        if self._out_of_patience():
            self.learn.logger(f"No improvement since epoch {self.epoch - self.wait}: early stopping")
            raise CancelFitException()


class SaveModelCallback(TrackerCallback):
    """Save the model when `monitor` improves (to `fname`), or every `every_epoch` epochs (`fname_<epoch>`).

    At the end of the fit the best model is loaded back (unless `every_epoch` or `at_end`, which
    saves the final model instead). Files go to `learn.path/learn.model_dir` via `learn.save`.
    """

    order = TrackerCallback.order + 1  # fastai: 61, so the best epoch is saved before EarlyStoppingCallback stops

    def __init__(
        self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0, fname: str = "model",
        every_epoch: bool | int = False, at_end: bool = False, with_opt: bool = False, reset_on_fit: bool = True,
    ) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        if at_end and every_epoch:
            raise ValueError("SaveModelCallback: every_epoch and at_end cannot both be set; pick one")
        self.fname, self.every_epoch, self.at_end, self.with_opt = fname, every_epoch, at_end, with_opt
        self.last_saved: Any = None

    def after_epoch(self) -> None:
        """Save on improvement, or on schedule with `every_epoch`."""
        if self.every_epoch:
            # fastai's period: epochs 0, k, 2k... only (the last epoch is not added; use at_end for it)
            if (self.epoch % int(self.every_epoch)) == 0:
                self.last_saved = self.learn.save(f"{self.fname}_{self.epoch}", with_opt=self.with_opt)
            return
        super().after_epoch()
        if self.new_best:
            self.learn.logger(f"Better model found at epoch {self.epoch} with {self.monitor} value: {self.best}.")
            self.last_saved = self.learn.save(self.fname, with_opt=self.with_opt)

    def after_fit(self) -> None:
        """Save the final model (`at_end`) or load the best one back."""
        if self.at_end:
            self.last_saved = self.learn.save(self.fname, with_opt=self.with_opt)
        elif not self.every_epoch and self.last_saved is not None:
            self.learn.load(self.fname, with_opt=False)


class ReduceLROnPlateau(TrackerCallback):
    """Divide the learning rate of every group by `factor` when `monitor` has not improved for `patience` epochs (not below `min_lr`)."""

    order = TrackerCallback.order + 2  # fastai: 62, between SaveModelCallback and EarlyStoppingCallback

    def __init__(
        self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0, patience: int = 1,
        factor: float = 10.0, min_lr: float = 0.0, reset_on_fit: bool = True,
    ) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        if not factor > 1:
            raise ValueError(f"ReduceLROnPlateau: factor={factor!r} must be > 1 (the lr is divided by it)")
        self.patience, self.factor, self.min_lr, self.wait = patience, factor, min_lr, 0

    def after_epoch(self) -> None:
        """Lower the lr after `patience` epochs without improvement."""
        if self._out_of_patience():
            self.wait = 0
            old = [g["lr"] for g in self.learn.opt.param_groups]
            for g in self.learn.opt.param_groups:
                g["lr"] = max(g["lr"] / self.factor, self.min_lr)
            if old[-1] != self.learn.opt.param_groups[-1]["lr"]:
                self.learn.logger(f"Epoch {self.epoch}: reducing lr to {self.learn.opt.param_groups[-1]['lr']}")
