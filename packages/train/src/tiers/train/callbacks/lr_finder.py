"""The learning-rate finder (Smith 2015): train briefly with an exponentially growing lr and watch the loss.

`learn.lr_find()` runs at most `num_it` batches, stops when the loss diverges (not on the batch noise of a loss
already near its floor: see `LRFinder`), puts the model and optimizer back exactly as they were, and returns
suggestions as a namedtuple (`valley` by default, as fastai 2.8):

>>> lrs = learn.lr_find()                     # doctest: +SKIP
>>> lrs                                       # doctest: +SKIP
SuggestedLRs(valley=0.0010964782)
>>> learn.lr_find(suggest_funcs=(minimum, steep, valley, slide))   # doctest: +SKIP

Suggestion functions take `(lrs, losses, num_it)` and return `(suggested_lr, (lr, loss) to mark)`.
"""

import copy
import math
import statistics
import warnings
from collections import deque, namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tiers.dispatch.extras import MissingExtraError
from tiers.train.callbacks.schedule import ParamScheduler, SchedExp
from tiers.train.events import CancelFitException, CancelValidException
from tiers.train.metrics.base import _func_name

__all__ = ["LRFinder", "minimum", "steep", "valley", "slide", "SuggestionMethod"]


def minimum(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> tuple[float, tuple[float, float]]:
    """One tenth of the lr with the lowest loss (the minimum itself is already too high to train at)."""
    losses_a = np.asarray(losses, dtype=float)
    i = int(np.nanargmin(losses_a))
    return float(lrs[i]) / 10, (float(lrs[i]), float(losses_a[i]))


def steep(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> tuple[float, tuple[float, float]]:
    """The lr where the loss falls fastest against log(lr)."""
    lrs_a, losses_a = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    slopes = np.diff(losses_a) / np.diff(np.log(lrs_a))
    i = int(np.nanargmin(slopes))
    return float(lrs_a[i]), (float(lrs_a[i]), float(losses_a[i]))


def valley(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> tuple[float, tuple[float, float]]:
    """Halfway down the valley: the stretch before the lowest point of the longest decreasing run of losses.

    The valley's length is the length of the longest decreasing subsequence ending at its lowest point,
    so isolated noisy points early in the curve don't stretch it back to the smallest lrs.
    """
    losses_a = np.asarray(losses, dtype=float)
    n = len(losses_a)
    # Longest strictly decreasing subsequence ending at each i (O(n^2); n <= num_it).
    run = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses_a[i] < losses_a[j] and run[j] + 1 > run[i]:
                run[i] = run[j] + 1
    end = int(np.argmax(run))
    # fastai's placement: the valley counts from one point before its first member, and the
    # suggestion sits a third plus a sixth of the way in (about halfway), rounded down per part.
    start = end - run[end]
    third = (end - start) / 3
    i = min(max(start + int(third) + int(third / 2), 0), n - 1)
    return float(lrs[i]), (float(lrs[i]), float(losses_a[i]))


def slide(
    lrs: Sequence[float], losses: Sequence[float], num_it: int, lr_diff: int = 15, thresh: float = 0.005,
    adjust_value: float = 1.0,
) -> tuple[float, tuple[float, float]]:
    """Walk left from the largest lr until the loss's slope `lr_diff` points apart stops changing (by
    `thresh`): the left end of that flat stretch, times `adjust_value`."""
    lrs_a, losses_a = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    n = len(losses_a)
    if n < 2:
        return float(lrs_a[0]), (float(lrs_a[0]), float(losses_a[0]))
    grad = np.gradient(losses_a)
    r = n - 1
    left = max(r - lr_diff, 0)
    candidate = lrs_a[left]
    while left >= 0 and abs(grad[r] - grad[left]) > thresh:
        candidate = lrs_a[left]
        r, left = r - 1, left - 1
    lr = float(candidate) * adjust_value
    # The loss shown with the suggestion is the recorded one at the nearest lr (as fastai plots it).
    loss_at = float(losses_a[int(np.argmin(np.abs(lrs_a - lr)))])
    return lr, (lr, loss_at)


class SuggestionMethod:
    """The suggestion functions by name: `SuggestionMethod.Valley` etc."""

    Valley = staticmethod(valley)
    Slide = staticmethod(slide)
    Minimum = staticmethod(minimum)
    Steep = staticmethod(steep)


class _Saved:
    # What a fit changes and an lr search must put back: weights and buffers, each module's train/eval mode, the
    # optimizer's state (moments, step counts, hypers), the loop's state and the callbacks' `run` flags. Kept in
    # memory (nothing written under model_dir, so nothing to clean up when the search is interrupted).

    def __init__(self, learn: Any) -> None:
        self.model = copy.deepcopy(learn.model.state_dict())
        self.modes = [m.training for m in learn.model.modules()]
        self.opt = copy.deepcopy(learn.opt.state_dict())
        self.loop = learn.state.snapshot()
        self.runs = [(cb, cb.run) for cb in learn.cbs]

    def restore(self, learn: Any, loop: bool = True) -> None:
        learn.opt.zero_grad()
        learn.model.load_state_dict(self.model)
        for m, mode in zip(learn.model.modules(), self.modes):
            m.training = mode
        learn.opt.load_state_dict(self.opt)
        if loop:
            learn.state.restore(self.loop)
            for cb, run in self.runs:
                cb.run = run


class LRFinder(ParamScheduler):
    """Callback behind `lr_find`: exponential lr from `start_lr` to `end_lr` over `num_it` batches,
    no validation, stops when the loss diverges (`stop_div`); restores model and optimizer state after fit.

    Diverged means fastai's rule, the smoothed loss above 4x its best, and also most of the last few batches
    (their median) above it; neither is looked at in the first `min_it` batches (num_it // 10, at least 5: the
    batches the suggestions skip), and the best counts from there. A non-finite loss stops the search at once. Both
    guards are for a loss already near its floor (after some training): there the ordinary loss is 4x a lucky
    first batch, or one bad batch that the running average carries for ~50 more is 4x the best, while nothing
    diverged. Why and where the search stopped is kept
    in `stop_reason` ("diverged", "non-finite", "num_it", or None while it runs or when something else ended it)
    and `stop_info` (iteration, lr, loss, best).

    Passed to `fit` by hand it restores them in `after_fit`, which an error or Ctrl-C skips; `learn.lr_find()`
    restores them (and the loop's state) however the search ends."""

    _saved: _Saved | None = None
    _restores = True  # False under `lr_find`, which puts everything back itself once the fit is over, however it ended
    n_recent = 5  # the batches whose median must be past 4x the best too (one outlier can't end the search)

    def __init__(self, start_lr: Any = 1e-7, end_lr: Any = 10, num_it: int = 100, stop_div: bool = True) -> None:
        if isinstance(start_lr, (list, tuple)) != isinstance(end_lr, (list, tuple)):
            raise ValueError(f"LRFinder: start_lr={start_lr!r} and end_lr={end_lr!r} must both be scalars or both lists")
        super().__init__({"lr": SchedExp(start_lr, end_lr)})
        self.num_it, self.stop_div = max(int(num_it), 6), stop_div
        self.min_it = max(self.num_it // 10, 5)
        self.stop_reason: str | None = None
        self.stop_info: dict[str, float] = {}

    def before_fit(self) -> None:
        """Snapshot model and optimizer in memory."""
        super().before_fit()
        if self._restores:
            self._saved = _Saved(self.learn)
        self.best_loss = float("inf")
        self._recent: deque[float] = deque(maxlen=self.n_recent)
        self.stop_reason, self.stop_info = None, {}

    def before_batch(self) -> None:
        """Set the lr for this iteration."""
        self._update_val(self.learn.train_iter / self.num_it)

    def _stop(self, reason: str, loss: float) -> None:
        lrs = self.hps.get("lr") or [float("nan")]
        self.stop_reason = reason
        self.stop_info = {"iteration": float(self.learn.train_iter), "lr": float(lrs[-1]), "loss": float(loss),
                          "best": float(self.best_loss)}
        raise CancelFitException()

    def _recent_past(self, limit: float) -> bool:
        return not self._recent or statistics.median(self._recent) > limit

    def after_batch(self) -> None:
        """Stop on divergence or after `num_it` batches."""
        loss = self.learn.smooth_loss
        if loss is None:
            return
        raw = self.learn.loss
        if raw is not None:  # None: a callback cancelled this batch before its loss
            self._recent.append(float(raw))
        if self.stop_div and not math.isfinite(loss):
            self._stop("non-finite", loss)
        # Best and divergence only once the running average holds a few batches: its first values are single
        # batches, and a lucky one would make the ordinary loss look 4x worse.
        if self.learn.train_iter >= self.min_it:
            if loss < self.best_loss:
                self.best_loss = loss
            elif self.stop_div and loss > 4 * self.best_loss and self._recent_past(4 * self.best_loss):
                self._stop("diverged", loss)
        if self.learn.train_iter >= self.num_it:  # the loop already counted this batch
            self._stop("num_it", loss)

    def before_validate(self) -> None:
        """No validation during the search."""
        raise CancelValidException()

    def after_fit(self) -> None:
        """Put model and optimizer back (the fit is still ending: the loop's own state is left to it)."""
        super().after_fit()
        saved, self._saved = self._saved, None
        if saved is not None:
            saved.restore(self.learn, loop=False)


def _too_few_points(
    cb: LRFinder, n: int, recorded: int, start_lr: Any, num_it: int, first_bad: tuple[int, float] | None,
) -> str:
    # Say what happened, from what the finder saw: a loss already at its floor is no divergence and no user error.
    head = f"lr_find: only {n} usable points"
    info, reason = cb.stop_info, cb.stop_reason
    if first_bad is not None and reason != "non-finite":  # stop_div=False: the curve is cut at the first nan/inf
        reason, info = "non-finite", {"iteration": first_bad[0], "lr": first_bad[1], "loss": float("nan")}
    where = (f"batch {int(info['iteration'])} of num_it={num_it} (lr={info['lr']:.2e})" if info else "")
    start = float(start_lr[-1] if isinstance(start_lr, (list, tuple)) else start_lr)  # the lrs recorded: last group's
    if reason == "diverged":
        msg = (f"{head}: the search stopped at {where}, where the smoothed loss ({info['loss']:.3g}) passed 4x its "
               f"best ({info['best']:.3g}). ")
        # Within two decades of a small start_lr, a few steps barely move the weights: a 4x rise there comes from the
        # batches (noise on a loss at its floor), not from the lr. Past that, or from a large start_lr, it diverged.
        if info["lr"] <= min(100 * start, 1e-4):
            return msg + (f"At lr={info['lr']:.1e}, this close to start_lr={start:g}, the weights have barely moved: "
                          "the loss rose from batch to batch, not because of the lr. The loss is already near its "
                          f"floor ({info['best']:.1e}): lr_find has nothing to find; keep the current lr "
                          "(stop_div=False records the whole curve anyway).")
        return msg + "The loss diverged early in the sweep: lower start_lr (and end_lr) or raise num_it."
    if reason == "non-finite":
        msg = f"{head}: the loss became {info['loss']} at {where}"
        if info["iteration"] <= cb.min_it or info["lr"] <= 100 * start:
            return msg + (f", at the start of the sweep: start_lr={start:g} is too high for this model (lower it), or "
                          "the model already gives non-finite losses (check the inputs, targets and weights with "
                          "torch.isfinite)")
        return msg + ": the lr grew too fast for the points before it; lower end_lr or raise num_it"
    if reason == "num_it":
        return (f"{head}: num_it={num_it} is too small (the suggestions leave out the first num_it // 10 points and "
                "the last 5); raise num_it (100 by default)")
    return (f"{head}: the search ended after {recorded} batches, before num_it={num_it}, without diverging "
            "(another callback ended the fit?); remove that callback or raise num_it")


def _plot_or_warn(rec: Any, **kwargs: Any) -> None:
    # The search is done and its suggestions are the point: without matplotlib (`tiers-train[plots]` not
    # installed), say so and still return them, rather than losing them to the plot's error.
    try:
        rec.plot_lr_find(**kwargs)
    except MissingExtraError as e:
        warnings.warn(f"lr_find: the suggestions are returned without the plot: {e}", UserWarning, stacklevel=4)


def lr_find(
    learn: Any, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
    show_plot: bool = True, suggest_funcs: Sequence[Callable] | Callable | None = (valley,),
) -> Any:
    """Mock-train with an exponentially growing lr, restore the weights, and suggest learning rates.

    As fastai 2.8, the default is `valley` alone (`SuggestedLRs(valley=...)`); pass e.g.
    `suggest_funcs=(minimum, steep, valley, slide)` for more (one field and one plot marker each, in that order).

    Weights and buffers, train/eval modes, the optimizer's state and the loop's state are put back however the
    search ends (an error or Ctrl-C is then re-raised); the recorder keeps what the search recorded. Returns a
    namedtuple with one field per suggestion function (e.g. `.valley`), or None when `suggest_funcs` is None.
    `show_plot` draws loss against lr with the suggestions marked. The search stops at `num_it` batches, at a non-finite
    loss, or (`stop_div`) on a divergence as `LRFinder` defines it. Too few points for the suggestions (fewer than 2
    left after the first `num_it // 10` and the last 5) raise a ValueError that says why: e.g. a loss already at its
    floor, where there is nothing to find and the current lr should be kept.
    """
    learn._ensure_opt()
    n_epoch = num_it // max(len(learn.dls.train), 1) + 1
    cb = LRFinder(start_lr, end_lr, num_it, stop_div)
    cb._restores = False
    # Saved before the fit and put back after it, whatever ends it (the search's own stop, another callback's
    # CancelFitException even in before_fit, an error, Ctrl-C): the Learner is left as it was, then errors propagate.
    saved = _Saved(learn)
    try:
        with learn.no_logging():
            learn.fit(n_epoch, cbs=cb)
    finally:
        saved.restore(learn)
    rec = learn.recorder
    if suggest_funcs is None:
        if show_plot:
            _plot_or_warn(rec)
        return None
    funcs = [suggest_funcs] if callable(suggest_funcs) else list(suggest_funcs)
    lo, hi = num_it // 10, -5
    lrs_all = rec.lrs
    lrs = np.asarray(lrs_all[lo:hi], dtype=float)
    losses = np.asarray(rec.losses[lo:hi], dtype=float)
    n = min(len(lrs), len(losses))
    lrs, losses = lrs[:n], losses[:n]
    bad = np.flatnonzero(~np.isfinite(losses))
    if len(bad):
        lrs, losses = lrs[: bad[0]], losses[: bad[0]]
    if len(lrs) < 2:
        first_bad = (lo + int(bad[0]) + 1, float(lrs_all[lo + int(bad[0])])) if len(bad) else None
        raise ValueError(_too_few_points(cb, len(lrs), len(rec.lrs), start_lr, num_it, first_bad))
    names = [_func_name(f) for f in funcs]
    results = [f(lrs, losses, num_it) for f in funcs]
    if show_plot:
        _plot_or_warn(rec, suggestions=[pt for _, pt in results], nms=names)
    SuggestedLRs = namedtuple("SuggestedLRs", names)  # type: ignore[misc]  # the fields are the functions' names, known at run time
    return SuggestedLRs(*[lr for lr, _ in results])
