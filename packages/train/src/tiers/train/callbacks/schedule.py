"""Hyper-parameter schedules and the fitting policies built on them (`fit_one_cycle`, `fit_flat_cos`...).

A schedule is a function of `pos` in [0, 1] (the fraction of training done). `ParamScheduler` sets
each scheduled hyper-parameter before every training batch. Values may be NumPy arrays, one per
parameter group (discriminative learning rates).

>>> f = combined_cos(0.25, 1e-4, 1e-3, 1e-8)    # warm up for 25% of training, then anneal
>>> round(f(0.0), 8), round(f(0.25), 8), round(f(1.0), 8)
(0.0001, 0.001, 1e-08)
"""

import bisect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tiers.train.callbacks.core import Callback
from tiers.train.checks import check_div, check_moms, check_n_epoch, check_wd

__all__ = ["sched_lin", "sched_cos", "sched_no", "sched_exp", "SchedLin", "SchedCos", "SchedNo", "SchedExp", "SchedPoly", "combine_scheds", "combined_cos", "ParamScheduler", "annealer"]


def _arr(v: Any) -> Any:
    return np.asarray(v, dtype=float) if isinstance(v, (list, tuple)) else v


def sched_lin(start: Any, end: Any, pos: float) -> Any:
    """Linear from `start` (pos 0) to `end` (pos 1)."""
    return start + pos * (end - start)


def sched_cos(start: Any, end: Any, pos: float) -> Any:
    """Half a cosine from `start` to `end`: flat at both ends, steepest in the middle."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def sched_no(start: Any, end: Any, pos: float) -> Any:
    """Constant `start`."""
    return start


def sched_exp(start: Any, end: Any, pos: float) -> Any:
    """Exponential (linear in log space) from `start` to `end`; both must be positive."""
    return start * (end / start) ** pos


class _Annealer:
    # A picklable schedule: (function, start, end), called with pos.
    def __init__(self, f: Callable[[Any, Any, float], Any], start: Any, end: Any, name: str) -> None:
        self.f, self.start, self.end, self.name = f, _arr(start), _arr(end), name

    def __call__(self, pos: float) -> Any:
        return self.f(self.start, self.end, pos)

    def __repr__(self) -> str:
        return f"{self.name}({self.start}, {self.end})"


def annealer(f: Callable[[Any, Any, float], Any]) -> Callable[[Any, Any], Callable[[float], Any]]:
    """Decorator: turn `f(start, end, pos)` into a schedule factory `f(start, end) -> (pos -> value)`."""

    def make(start: Any, end: Any) -> Callable[[float], Any]:
        return _Annealer(f, start, end, getattr(f, "__name__", "annealer"))

    make.__name__, make.__doc__ = getattr(f, "__name__", "annealer"), f.__doc__
    return make


def SchedLin(start: Any, end: Any) -> Callable[[float], Any]:
    """Linear schedule from `start` to `end`."""
    return _Annealer(sched_lin, start, end, "SchedLin")


def SchedCos(start: Any, end: Any) -> Callable[[float], Any]:
    """Cosine schedule from `start` to `end`."""
    return _Annealer(sched_cos, start, end, "SchedCos")


def SchedNo(start: Any, end: Any) -> Callable[[float], Any]:
    """Constant schedule at `start`."""
    return _Annealer(sched_no, start, end, "SchedNo")


def SchedExp(start: Any, end: Any) -> Callable[[float], Any]:
    """Exponential schedule from `start` to `end` (both positive)."""
    start_a, end_a = _arr(start), _arr(end)
    if np.any(np.asarray(start_a) <= 0) or np.any(np.asarray(end_a) <= 0):
        raise ValueError(f"SchedExp: start={start} and end={end} must be positive")
    return _Annealer(sched_exp, start_a, end_a, "SchedExp")


class _Poly:
    def __init__(self, start: Any, end: Any, power: float) -> None:
        self.start, self.end, self.power = _arr(start), _arr(end), power

    def __call__(self, pos: float) -> Any:
        return self.start + (self.end - self.start) * pos**self.power

    def __repr__(self) -> str:
        return f"SchedPoly({self.start}, {self.end}, power={self.power})"


def SchedPoly(start: Any, end: Any, power: float) -> Callable[[float], Any]:
    """Polynomial schedule `start + (end - start) * pos**power`."""
    return _Poly(start, end, power)


class _Combined:
    def __init__(self, pcts: Sequence[float], scheds: Sequence[Callable[[float], Any]]) -> None:
        self.scheds = list(scheds)
        self.bounds = list(np.cumsum([0.0, *pcts]))

    def __call__(self, pos: float) -> Any:
        if pos >= 1.0:
            return self.scheds[-1](1.0)
        # The last phase whose start is at or before pos (zero-length phases are skipped over).
        i = min(bisect.bisect_right(self.bounds, pos) - 1, len(self.scheds) - 1)
        lo, hi = self.bounds[i], self.bounds[i + 1]
        return self.scheds[i]((pos - lo) / (hi - lo) if hi > lo else 1.0)


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Callable[[float], Any]]) -> Callable[[float], Any]:
    """Chain `scheds`, the i-th running for fraction `pcts[i]` of training (pcts must sum to 1)."""
    if len(pcts) != len(scheds):
        raise ValueError(f"combine_scheds: {len(pcts)} pcts for {len(scheds)} schedules")
    if any(p < 0 for p in pcts) or not math.isclose(sum(pcts), 1.0, abs_tol=1e-6):
        raise ValueError(f"combine_scheds: pcts={list(pcts)} must be non-negative and sum to 1")
    return _Combined(pcts, scheds)


def combined_cos(pct: float, start: Any, middle: Any, end: Any) -> Callable[[float], Any]:
    """Cosine from `start` to `middle` over the first `pct` of training, then cosine from `middle` to `end`."""
    if not 0 <= pct <= 1:
        raise ValueError(f"combined_cos: pct={pct} must be in [0, 1]")
    return combine_scheds([pct, 1 - pct], [SchedCos(start, middle), SchedCos(middle, end)])


def _last(v: Any) -> float:
    return float(v[-1]) if isinstance(v, np.ndarray) and v.ndim else float(v)


class ParamScheduler(Callback):
    """Set hyper-parameters from schedules before each training batch: `scheds = {'lr': f, 'mom': g}`.

    Each schedule is called with `learn.pct_train`. The values set (the last group's) are kept in
    `hps` and copied to `learn.recorder.hps` at the end of fit, for `plot_sched`.
    """

    order = 60
    run_valid = False

    def __init__(self, scheds: dict[str, Callable[[float], Any]]) -> None:
        if not isinstance(scheds, dict) or not scheds:
            raise TypeError(f"ParamScheduler: scheds must be a non-empty dict {{hyper_name: schedule}}, got {scheds!r}")
        self.scheds = scheds
        self.hps: dict[str, list[float]] = {}

    def before_fit(self) -> None:
        """Start recording."""
        self.hps = {p: [] for p in self.scheds}

    def before_batch(self) -> None:
        """Set every scheduled hyper-parameter for the current position."""
        self._update_val(self.learn.pct_train)

    def _update_val(self, pct: float) -> None:
        opt = self.learn.opt
        for name, f in self.scheds.items():
            v = f(pct)
            opt.set_hyper(name, v)
            self.hps[name].append(_last(v))

    def after_fit(self) -> None:
        """Hand the recorded values to the recorder."""
        rec = self.learn.__dict__.get("recorder")
        if rec is not None:
            rec.hps = self.hps


def _with(cb: Callback, cbs: Any) -> list:
    if cbs is None:
        return [cb]
    return [cb, *(cbs if isinstance(cbs, (list, tuple)) else [cbs])]


def _group_values(opt: Any, key: str) -> np.ndarray:
    return np.array([h[key] for h in opt.hypers], dtype=float)


def _fresh_opt(learn: Any, reset: bool) -> None:
    # The schedules read per-group lrs from the optimizer, so it must exist before fit makes it.
    if reset or learn.opt is None:
        learn.create_opt()

def fit_one_cycle(
    learn: Any, n_epoch: int, lr_max: Any = None, div: float = 25.0, div_final: float = 1e5, pct_start: float = 0.25,
    wd: float | None = None, moms: tuple[float, float, float] | None = None, cbs: Any = None,
    reset_opt: bool = False, start_epoch: int = 0, resume: str | Path | None = None,
) -> None:
    """One-cycle policy: lr warms up (cosine) from `lr_max/div` to `lr_max` over `pct_start` of training,
    then anneals to `lr_max/div_final`; momentum goes the opposite way (`moms`, default `learn.moms`).
    `lr_max` may be a slice for discriminative learning rates. `start_epoch` and `resume` are `fit`'s."""
    # Checked before anything changes: div<=0 makes an infinite (or negative) lr, a NaN wd NaN weights.
    check_n_epoch(n_epoch, "fit_one_cycle")
    check_div(div, "fit_one_cycle", "div", "25.0")
    check_div(div_final, "fit_one_cycle", "div_final", "1e5")
    check_wd(wd, "fit_one_cycle")
    if moms is None:
        check_moms(learn.moms, "fit_one_cycle", "learn.moms")
    else:
        check_moms(moms, "fit_one_cycle")
    _fresh_opt(learn, reset_opt)
    learn.opt.set_hyper("lr", learn.lr if lr_max is None else lr_max)
    lrs = _group_values(learn.opt, "lr")
    moms = learn.moms if moms is None else moms
    scheds = {"lr": combined_cos(pct_start, lrs / div, lrs, lrs / div_final), "mom": combined_cos(pct_start, *moms)}
    learn.fit(n_epoch, cbs=_with(ParamScheduler(scheds), cbs), reset_opt=False, wd=wd, start_epoch=start_epoch,
             resume=resume)

def fit_flat_cos(
    learn: Any, n_epoch: int, lr: Any = None, div_final: float = 1e5, pct_start: float = 0.75, wd: float | None = None,
    cbs: Any = None, reset_opt: bool = False, start_epoch: int = 0, resume: str | Path | None = None,
) -> None:
    """Flat lr for `pct_start` of training, then cosine annealing to `lr/div_final` (`start_epoch`, `resume`: see `fit`)."""
    check_n_epoch(n_epoch, "fit_flat_cos")
    check_div(div_final, "fit_flat_cos", "div_final", "1e5")
    check_wd(wd, "fit_flat_cos")
    _fresh_opt(learn, reset_opt)
    learn.opt.set_hyper("lr", learn.lr if lr is None else lr)
    lrs = _group_values(learn.opt, "lr")
    scheds = {"lr": combined_cos(pct_start, lrs, lrs, lrs / div_final)}
    learn.fit(n_epoch, cbs=_with(ParamScheduler(scheds), cbs), reset_opt=False, wd=wd, start_epoch=start_epoch,
             resume=resume)

def fit_sgdr(
    learn: Any, n_cycles: int, cycle_len: int, lr_max: Any = None, cycle_mult: int = 2, cbs: Any = None,
    reset_opt: bool = False, wd: float | None = None, start_epoch: int = 0, resume: str | Path | None = None,
) -> None:
    """SGD with warm restarts: `n_cycles` cosine cycles from `lr_max` to 0, the i-th lasting
    `cycle_len * cycle_mult**i` epochs. `start_epoch` and `resume` are `fit`'s."""
    check_n_epoch(n_cycles, "fit_sgdr", "n_cycles")
    check_n_epoch(cycle_len, "fit_sgdr", "cycle_len")
    if n_cycles < 1 or cycle_len < 1:
        raise ValueError(f"fit_sgdr: n_cycles={n_cycles} and cycle_len={cycle_len} must be at least 1")
    check_wd(wd, "fit_sgdr")
    lens = [cycle_len * cycle_mult**i for i in range(n_cycles)]
    n_epoch = sum(lens)
    _fresh_opt(learn, reset_opt)
    learn.opt.set_hyper("lr", learn.lr if lr_max is None else lr_max)
    lrs = _group_values(learn.opt, "lr")
    scheds = {"lr": combine_scheds([n / n_epoch for n in lens], [SchedCos(lrs, lrs * 0) for _ in lens])}
    learn.fit(n_epoch, cbs=_with(ParamScheduler(scheds), cbs), reset_opt=False, wd=wd, start_epoch=start_epoch,
             resume=resume)

def fine_tune(
    learn: Any, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100, pct_start: float = 0.3,
    div: float = 5.0, **kwargs: Any,
) -> None:
    """Transfer learning: `freeze_epochs` one-cycle epochs on the head only, then unfreeze and train
    `epochs` more with discriminative lrs `slice(base_lr/2/lr_mult, base_lr/2)`."""
    if "resume" in kwargs:
        raise ValueError("fine_tune: resume= is not supported (fine_tune runs two fits); resume the interrupted "
                         "phase with fit_one_cycle(..., resume=...) after freeze() or unfreeze()")
    # Checked before the first phase trains: a bad value would otherwise stop the second one, half-way through.
    check_n_epoch(epochs, "fine_tune", "epochs")
    check_n_epoch(freeze_epochs, "fine_tune", "freeze_epochs")
    check_div(div, "fine_tune", "div", "5.0")
    if "div_final" in kwargs:
        check_div(kwargs["div_final"], "fine_tune", "div_final", "1e5")
    check_wd(kwargs.get("wd"), "fine_tune")
    if kwargs.get("moms") is not None:
        check_moms(kwargs["moms"], "fine_tune")
    learn.freeze()
    learn.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, **kwargs)
    base_lr /= 2
    learn.unfreeze()
    learn.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kwargs)
