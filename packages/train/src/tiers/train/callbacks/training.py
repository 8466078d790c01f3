"""Callbacks that change how each step is taken: accumulation, clipping, NaN guard, memory format, compile.

>>> learn.fit(3, cbs=[GradientAccumulation(n_acc=64), GradientClip(1.0)])      # doctest: +SKIP
>>> learn.compile(backend="eager")                                           # doctest: +SKIP
"""

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from tiers.train.callbacks.core import Callback
from tiers.train.events import (
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelValidException,
)
from tiers.train.nn.model_utils import bn_types

__all__ = ["GradientAccumulation", "GradientClip", "TerminateOnNaNCallback", "ChannelsLast", "ShortEpochCallback",
           "set_bn_eval", "BnFreeze", "MCDropoutCallback", "SkipToEpoch"]


class ShortEpochCallback(Callback):
    """Run only the first `pct` of each training epoch (and of validation, when `short_valid`): quick smoke runs."""

    def __init__(self, pct: float = 0.01, short_valid: bool = True) -> None:
        if not 0 <= pct <= 1:
            raise ValueError(f"ShortEpochCallback: pct={pct!r} must be in [0, 1]")
        self.pct, self.short_valid = pct, short_valid

    def after_batch(self) -> None:
        if not self.n_iter or self.iter / self.n_iter < self.pct:
            return
        if self.training:
            raise CancelEpochException
        if self.short_valid:
            raise CancelValidException


def set_bn_eval(m: nn.Module, use_eval: bool = True) -> None:
    """Put every batchnorm layer of `m` whose parameters are frozen into eval mode (train mode if not `use_eval`)."""
    for child in m.children():
        if isinstance(child, bn_types):
            p = next(iter(child.parameters()), None)
            if p is not None and not p.requires_grad:
                child.train(not use_eval)
        set_bn_eval(child, use_eval)


class BnFreeze(Callback):
    """Keep frozen batchnorm layers in eval mode while training, so their running statistics stay fixed."""

    def before_train(self) -> None:
        set_bn_eval(self.model)


def _samples_in(b: Any) -> int:
    # Unlike tiers.tensors.find_bs, lenient: 0 for a batch without targets, 1 for a scalar target.
    if isinstance(b, Tensor):
        return b.shape[0] if b.ndim else 1
    if isinstance(b, dict):
        b = list(b.values())
    if isinstance(b, (tuple, list)):
        for o in b:
            n = _samples_in(o)
            if n:
                return n
    return 0


def _epoch_samples(dl: Any) -> int | None:
    # The samples one pass over `dl` yields (a dropped last batch left out), None when it cannot be known.
    bs = getattr(dl, "bs", None) or getattr(dl, "batch_size", None)
    if not isinstance(bs, int):
        return None
    n = getattr(dl, "n", None)
    try:
        n_batches = len(dl)
        if n is None:
            n = len(dl.dataset)
    except (TypeError, AttributeError):
        return None
    return min(int(n), n_batches * bs)


class GradientAccumulation(Callback):
    """Accumulate gradients until `n_acc` samples were seen, then step: the effective batch size is `n_acc`.

    Each batch's loss is scaled by `bs / n_acc`, so the accumulated gradient matches one batch of
    `n_acc` samples (for a mean-reduced loss). Steps and `zero_grad` are skipped in between.

    Gradients do not cross an epoch boundary (as Lightning's `accumulate_grad_batches`): at the end of each
    training epoch the samples still pending (fewer than `n_acc`) are stepped on, their gradient rescaled to the
    mean over the samples they hold (as a short last batch is), through the usual step events (clipping, mixed
    precision). fastai drops them (and with `n_acc` larger than an epoch it never steps at all). A fit whose epochs
    hold fewer than `n_acc` samples warns at its start: each of its steps holds only one epoch's samples.
    """

    order = -5  # scale the loss before MixedPrecision (10) scales it for fp16
    _flushing = False  # class default too: a GradientAccumulation pickled (exported) before it existed still runs

    def __init__(self, n_acc: int = 32) -> None:
        if isinstance(n_acc, bool) or not isinstance(n_acc, int) or n_acc < 1:
            raise ValueError(f"GradientAccumulation: n_acc={n_acc!r} must be a positive int (number of samples)")
        self.n_acc = n_acc
        self.count = 0
        self._flushing = False

    run_valid = False

    def before_fit(self) -> None:
        """Start counting from zero (gradients left by an interrupted fit are dropped); warn when an epoch of this
        fit holds fewer than `n_acc` samples."""
        learn = self.learn
        if getattr(learn, "validating", False):
            return  # a validation-only pass (get_preds, validate) takes no step
        self.count, self._flushing = 0, False
        if learn.opt is not None:
            learn.opt.zero_grad()
        dls = learn.dls
        n = _epoch_samples(getattr(dls, "train", None)) if dls is not None else None
        if n is not None and 0 < n < self.n_acc:
            warnings.warn(
                f"GradientAccumulation: n_acc={self.n_acc} samples but each training epoch of this fit has only {n}, "
                f"so no step would hold {self.n_acc} samples: each epoch ends with one step on its {n} samples. Use "
                f"n_acc <= {n} for the effective batch size you expect", UserWarning, stacklevel=2)

    def after_loss(self) -> None:
        """Scale the loss by this batch's share of `n_acc`."""
        bs = _samples_in(self.learn.yb) or 1
        self.learn.loss_grad = self.learn.loss_grad * (bs / self.n_acc)

    def before_step(self) -> None:
        """Skip the step (and zero_grad) until `n_acc` samples are accumulated."""
        if self._flushing:
            return
        self.count += _samples_in(self.learn.yb) or 1
        if self.count < self.n_acc:
            raise CancelBatchException()
        self.count = 0

    def after_train(self) -> None:
        """Step on the samples still pending at the end of the training epoch."""
        if self.count:
            self._step_pending()

    def after_epoch(self) -> None:
        """The same when the epoch was cancelled during training (its after_train did not run)."""
        if self.count and self.learn.training:
            self._step_pending()

    def after_fit(self) -> None:
        """A fit stopped mid-epoch (CancelFitException: an early stop, a NaN loss) takes no step on what is pending."""
        if self.count and not getattr(self.learn, "validating", False):
            self.count = 0
            if self.learn.opt is not None:
                self.learn.opt.zero_grad()

    def _step_pending(self) -> None:
        learn, count = self.learn, self.count
        self.count = 0
        scale = self.n_acc / count  # the gradient holds count/n_acc of a mean: make it the mean over `count` samples
        for group in learn.opt.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.mul_(scale)
        self._flushing = True
        try:
            learn._with_events(learn._step, "step", CancelStepException)
        finally:
            self._flushing = False
        learn.opt.zero_grad()

    def state_dict(self) -> dict:
        """Samples accumulated so far (for checkpoints)."""
        return {"count": self.count}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict`."""
        self.count = int(state["count"])


class GradientClip(Callback):
    """Clip the gradients' total `norm_type` norm to `max_norm` before each step (after unscaling in fp16)."""

    order = 11  # fastai's: right after MixedPrecision (10) unscales the gradients in before_step

    def __init__(self, max_norm: float = 1.0, norm_type: float = 2.0) -> None:
        if not max_norm > 0:
            raise ValueError(f"GradientClip: max_norm={max_norm!r} must be > 0")
        self.max_norm, self.norm_type = max_norm, norm_type

    def before_step(self) -> None:
        """Clip in place; the norm before clipping is kept in `last_norm`."""
        self.last_norm = nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.max_norm, self.norm_type)


class TerminateOnNaNCallback(Callback):
    """Stop training (`CancelFitException`) as soon as a training loss is nan or inf."""

    order = -9
    run_valid = False

    def after_batch(self) -> None:
        """Check the loss of this batch."""
        loss = self.learn.loss
        if isinstance(loss, Tensor) and not torch.isfinite(loss).all():
            self.learn.logger(f"TerminateOnNaN: loss is {loss.float().mean().item()} at epoch {self.learn.epoch}, "
                              f"batch {self.learn.iter}; training stopped")
            raise CancelFitException()


def _is_dropout(m: nn.Module) -> bool:
    # fastai's rule: any module whose class name says dropout (nn.Dropout*, AlphaDropout, RNNDropout, WeightDropout...)
    return "dropout" in type(m).__name__.lower()


class MCDropoutCallback(Callback):
    """Monte Carlo dropout: the model's dropout layers stay active during validation and `get_preds`, so repeated
    predictions differ and their spread estimates the model's uncertainty. Every other layer (BatchNorm...) stays
    in eval mode; the dropout layers' modes are put back after the pass.

    >>> preds = torch.stack([learn.get_preds(cbs=MCDropoutCallback())[0] for _ in range(10)])   # doctest: +SKIP
    >>> mean, std = preds.mean(0), preds.std(0)                                                # doctest: +SKIP
    """

    def before_validate(self) -> None:
        """Switch every dropout layer to training mode (the loop has just put the model in eval mode)."""
        self._modes = [(m, m.training) for m in self.learn.model.modules() if _is_dropout(m)]
        for m, _ in self._modes:
            m.train()

    def after_validate(self) -> None:
        """Put the dropout layers back in the mode they had."""
        for m, mode in getattr(self, "_modes", ()):
            m.train(mode)
        self._modes = []


class SkipToEpoch(Callback):
    """Skip training up to `epoch` (0-based: `SkipToEpoch(2)` trains epochs 2, 3... of the fit), as
    `fit(..., start_epoch=epoch)` does: the skipped epochs run no batch and log no row, and schedules still see the
    fit's full length (`fit_one_cycle(5, cbs=SkipToEpoch(3))` runs the last two epochs of the 5-epoch cycle).

    It acts in `before_fit`, so it runs before the other callbacks (order -30; fastai's 70 cancelled each skipped
    epoch in `before_epoch`, after the other callbacks had started it), and the bars count only the epochs run.
    """

    order = -30

    def __init__(self, epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"SkipToEpoch: epoch={epoch!r} must be an int >= 0 (the first epoch to train)")
        self._skip_to = epoch

    def before_fit(self) -> None:
        """Move the fit's first epoch to `epoch` (a later `start_epoch` given to `fit` wins)."""
        learn = self.learn
        if getattr(learn, "validating", False):
            return  # a validation-only pass (get_preds, validate) has no epochs to skip
        n_epoch = learn.n_epoch
        if self._skip_to > n_epoch:
            raise ValueError(f"SkipToEpoch: epoch={self._skip_to} is beyond this fit's {n_epoch} epochs; pass an "
                             f"epoch between 0 and {n_epoch}")
        learn._start_epoch = max(learn._start_epoch, self._skip_to)


def to_channelslast(self: Any, use_amp: bool = True, amp_mode: str | torch.dtype = "fp16", **kwargs: Any) -> Any:
    """fastai's `to_channelslast`: `channels_last` memory format for the model and 4-d inputs and, with `use_amp`,
    mixed precision in `amp_mode` ('fp16' or 'bf16'; `kwargs` go to `MixedPrecision`) unless the learner already
    has a `MixedPrecision`. A `ChannelsLast` already there is kept."""
    from tiers.train.callbacks.fp16 import MixedPrecision

    if use_amp and not any(isinstance(c, MixedPrecision) for c in self.cbs):
        self.add_cb(MixedPrecision(amp_mode=amp_mode, **kwargs))
    if not any(isinstance(c, ChannelsLast) for c in self.cbs):
        self.add_cb(ChannelsLast())
    return self


def _to_cl(x: Any) -> Any:
    if isinstance(x, Tensor) and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class ChannelsLast(Callback):
    """Model and 4-d inputs in `torch.channels_last` memory format (faster convolutions with mixed precision on GPU)."""

    order = -1

    def before_fit(self) -> None:
        """Convert the model's 4-d parameters and buffers."""
        self.learn.model.to(memory_format=torch.channels_last)

    def before_batch(self) -> None:
        """Convert 4-d inputs."""
        self.learn.xb = tuple(_to_cl(x) for x in self.learn.xb)


def to_channels_last(self: Any) -> Any:
    """Add `ChannelsLast` (replacing one already there)."""
    self.remove_cb(ChannelsLast)
    return self.add_cb(ChannelsLast())


def to_contiguous(self: Any) -> Any:
    """Remove `ChannelsLast` and put the model back in the contiguous format."""
    self.remove_cb(ChannelsLast)
    self.model.to(memory_format=torch.contiguous_format)
    return self


def compile_learner(self: Any, **kwargs: Any) -> Any:
    """Compile the model in place with `torch.compile` options `kwargs` (e.g. `backend='eager'`, `mode=...`).

    Uses `nn.Module.compile`, so `state_dict` keys, `save`/`load` and checkpoints are unchanged.
    """
    self.model.compile(**kwargs)
    self._compiled = kwargs
    return self
