"""`LoopState`: everything the training loop changes while it runs, in one object the `Learner` owns.

The loop (`Learner.fit`, `validate`, `get_preds`) reads and writes the batch (`xb`, `yb`), the model's
output (`pred`), the loss (`loss_grad` for backward, detached `loss` for logging), the loader (`dl`) and
the counters (`epoch`, `n_epoch`, `iter`, `n_iter`, `train_iter`, `pct_train`) and modes (`training`,
`validating`) here. The Learner exposes each as a property (`learn.xb` is `learn.state.xb`), so
callbacks read and write them as in fastai.

`state_dict()` holds the counters a resumed run needs (the batch itself is not kept).

The detached `loss` is built on first read (most batches nobody reads it: detaching costs about half a microsecond),
always from the loss the loop computed, even when a callback has since replaced `loss_grad` (as before, `loss` is
the unscaled loss when a callback scales `loss_grad` for backward). `loss_value` is that loss as a Python float when
the loop has already read it (on a CPU fit it checks every training loss before the step), so the `Recorder` needs
neither a tensor nor a second read.
"""

from enum import Enum
from typing import Any

__all__ = ["LoopState", "LOOP_ATTRS"]

#: The loop's attributes: `self.<name> = value` inside a callback writes `learn.state.<name>`.
LOOP_ATTRS = frozenset(
    "xb yb pred loss loss_grad dl iter n_iter epoch n_epoch training validating pct_train train_iter".split()
)

_COUNTERS = ("epoch", "n_epoch", "iter", "n_iter", "train_iter", "pct_train")


class _Lazy(Enum):
    # `LoopState._loss` before the first read of `loss`: the detached view of `_loss_src` is built then. An enum
    # member, so that a state pickled mid-batch still knows it.
    LOSS = 0


_LAZY = _Lazy.LOSS


class LoopState:
    """The training loop's state: batch, prediction, loss, loader, counters and modes (see the module doc)."""

    __slots__ = (*sorted(LOOP_ATTRS - {"loss"}), "_loss", "_loss_src", "loss_value")
    # the slots' types (for type checkers; `__slots__` makes each a descriptor)
    dl: Any
    xb: tuple
    yb: tuple
    pred: Any
    loss_grad: Any
    _loss: Any
    _loss_src: Any
    loss_value: float | None
    epoch: int
    n_epoch: int
    iter: int
    n_iter: int
    train_iter: int
    pct_train: float
    training: bool
    validating: bool

    def __init__(self) -> None:
        self.epoch, self.n_epoch, self.iter, self.n_iter, self.train_iter, self.pct_train = 0, 1, 0, 0, 0, 0.0
        self.training = self.validating = False
        self.clear_batch()

    @property
    def loss(self) -> Any:
        """The batch's loss, detached (for logging): the loss the loop computed (built when first read), or what a
        callback assigned."""
        v = self._loss
        if v is _LAZY:
            v = self._loss = self._loss_src.detach()
        return v

    @loss.setter
    def loss(self, v: Any) -> None:
        self._loss, self._loss_src, self.loss_value = v, None, None

    def set_loss_grad(self, loss_grad: Any) -> None:
        """Record the loss the loop computed: `loss_grad` for backward; `loss` is its detached view, built when read.
        (The loop's own batch code writes the same three slots directly: it runs every batch.)"""
        self.loss_grad, self._loss, self._loss_src, self.loss_value = loss_grad, _LAZY, loss_grad, None

    def clear_batch(self) -> None:
        """Drop the references to the last batch, its output and loss, and the loader (after a pass)."""
        self.dl = None
        self.xb = ()
        self.yb = ()
        self.pred = None
        self.loss_grad = None
        self.loss = None

    def start_fit(self, n_epoch: int) -> None:
        """Counters at the start of a fit of `n_epoch` epochs."""
        self.n_epoch, self.epoch, self.iter, self.train_iter, self.pct_train = n_epoch, 0, 0, 0, 0.0

    def state_dict(self) -> dict[str, Any]:
        """The counters (`epoch`, `n_epoch`, `iter`, `n_iter`, `train_iter`, `pct_train`) and `training`."""
        return {**{k: getattr(self, k) for k in _COUNTERS}, "training": self.training}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (unknown keys are refused, naming them)."""
        unknown = set(state) - {*_COUNTERS, "training"}
        if unknown:
            raise KeyError(f"LoopState.load_state_dict: unknown keys {sorted(unknown)}; expected {[*_COUNTERS, 'training']}")
        for k, v in state.items():
            setattr(self, k, v)

    def snapshot(self) -> tuple:
        """Every field, for `restore` (a pass nested in a fit, such as `get_preds` from a callback, keeps the fit's)."""
        return tuple(getattr(self, k) for k in self.__slots__)

    def restore(self, snap: tuple) -> None:
        """Put back the fields `snapshot` saved."""
        for k, v in zip(self.__slots__, snap):
            setattr(self, k, v)

    def __repr__(self) -> str:
        return "LoopState(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in (*_COUNTERS, "training", "validating")) + ")"
