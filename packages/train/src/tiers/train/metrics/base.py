"""The metric protocol (paper 4.4): `reset` before a pass, `accumulate(learn)` after each batch, then `value`.

Plain functions `f(pred, targ)` become `AvgMetric`s (batch-size weighted mean); functions that need
all predictions at once (ROC AUC, RMSE, any scikit-learn metric) are `AccumMetric`s.

>>> def max_err(pred, targ): return (pred - targ).abs().max()
>>> m = AccumMetric(max_err)            # computed over the whole epoch, not averaged per batch
>>> m.name
'max_err'
"""

from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tiers.dispatch import camel2snake
from tiers.tensors import find_bs

__all__ = [
    "Metric",
    "AvgMetric",
    "AvgLoss",
    "AvgSmoothLoss",
    "ValueMetric",
    "AccumMetric",
    "ActivationType",
    "skm_to_fastai",
    "mk_metric",
    "LossMetric",
    "LossMetrics",
    "flatten_check",
]


def _func_name(func: Any) -> str:
    while isinstance(func, partial):
        func = func.func
    return getattr(func, "__name__", None) or camel2snake(type(func).__name__)


def _find_bs(yb: Any) -> int:
    # The first tensor of the batch (targets, or inputs when there are no targets) gives its size.
    if type(yb) is tuple and yb and isinstance(yb[0], Tensor):  # the Learner's own yb: the common case, fast
        t = yb[0]
        return t.shape[0] if t.ndim else 1
    try:
        return find_bs(yb)
    except (TypeError, ValueError):  # a scalar target, or nothing: one item
        return 1


def _to_value(v: Any) -> Any:
    if isinstance(v, Tensor) and v.numel() == 1:
        return v.item()
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()  # numpy scalars
    return v


def flatten_check(inp: Tensor, targ: Tensor) -> tuple[Tensor, Tensor]:
    """Flatten `inp` and `targ` and check they hold the same number of values (ValueError otherwise)."""
    # Already flat (a classifier's argmax against its targets, most often): no reshape calls, this runs per batch.
    if inp.ndim != 1 or targ.ndim != 1:
        inp, targ = inp.reshape(-1), targ.reshape(-1)
    if inp.numel() != targ.numel():
        raise ValueError(
            f"metric: predictions have {inp.numel()} values but targets have {targ.numel()}; "
            "for class scores use a metric that takes the argmax (e.g. accuracy), or check the model's output size"
        )
    return inp, targ


class Metric:
    """Base of all metrics: override `reset`, `accumulate(learn)` and the `value` property.

    `accumulate` reads what it needs from the learner after a batch (`learn.pred`, `learn.yb`,
    `learn.loss`). `name` defaults to the snake_case class name.
    """

    def reset(self) -> None:
        """Clear the accumulated state (called before each training or validation pass)."""

    def accumulate(self, learn: Any) -> None:
        """Add the current batch of `learn` to the state."""

    @property
    def value(self) -> Any:
        """The metric over everything accumulated since the last `reset` (None when nothing was)."""
        return None

    @property
    def name(self) -> str:
        """Name shown in the metrics table."""
        return camel2snake(type(self).__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


_FOLD_EVERY = 512  # pending batch values before they are folded into the total (bounds memory on long passes)


class _WeightedMean(Metric):
    # Batch-size weighted mean. Batch values are kept as they come and reduced in one stack-and-sum when `total` or
    # `value` is read (or every _FOLD_EVERY batches): per batch that is two list appends instead of two tensor ops.

    def reset(self) -> None:
        """Zero the running total and count."""
        self._total: Any = 0.0
        self._vals: list = []
        self._bss: list[int] = []
        self.count = 0

    def _add(self, v: Any, bs: int) -> None:
        self._vals.append(v)
        self._bss.append(bs)
        self.count += bs
        if len(self._vals) >= _FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        vals, bss = self._vals, self._bss
        if not vals:
            return
        total, stacked = self._total, None
        # One stack-and-sum costs about as much as three batches' multiply-and-add: only worth it past that.
        if len(vals) > 3 and isinstance(vals[0], Tensor):
            try:
                stacked = torch.stack(vals)
            except (TypeError, RuntimeError):  # values of several shapes or devices, or not all tensors
                pass
        if stacked is None:
            for v, bs in zip(vals, bss):
                total = total + v * bs
        elif bss.count(bss[0]) == len(bss):
            total = total + stacked.sum(0) * bss[0]  # one batch size throughout: no weights tensor to send over
        else:
            w = torch.tensor(bss, device=stacked.device).view(-1, *([1] * (stacked.ndim - 1)))
            total = total + (stacked * w).sum(0)
        self._total, self._vals, self._bss = total, [], []

    @property
    def total(self) -> Any:
        """Sum of batch value times batch size since the last `reset`."""
        self._fold()
        return self._total

    @total.setter
    def total(self, v: Any) -> None:
        # Assigning replaces the whole sum, pending batches included (`self.total = self.total + x` reads first).
        self._total, self._vals, self._bss = v, [], []

    @property
    def value(self) -> Any:
        """Weighted mean so far."""
        return _to_value(self.total / self.count) if self.count else None


class AvgMetric(_WeightedMean):
    """Average of `func(pred, *yb)` over batches, weighted by batch size (so it is exact per item)."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.reset()

    def accumulate(self, learn: Any) -> None:
        """Add `func(learn.pred, *learn.yb)` times the batch size."""
        v = self.func(learn.pred, *learn.yb)
        self._add(v.detach() if isinstance(v, Tensor) else v, _find_bs(learn.yb))

    @property
    def name(self) -> str:
        """The function's name."""
        return _func_name(self.func)


class AvgLoss(_WeightedMean):
    """Average of `learn.loss` over batches, weighted by batch size."""

    def __init__(self) -> None:
        self.reset()

    def accumulate(self, learn: Any) -> None:
        """Add the batch's mean loss times its size."""
        loss = learn.loss
        if loss.requires_grad:  # the Learner's loss is already detached; a callback's might not be
            loss = loss.detach()
        self._add(loss.mean() if loss.ndim else loss, _find_bs(learn.yb))

    @property
    def name(self) -> str:
        """'loss'."""
        return "loss"


class AvgSmoothLoss(Metric):
    """Exponential moving average of the loss with factor `beta`, debiased like Adam's moments."""

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = beta
        self.reset()

    def reset(self) -> None:
        """Restart the average."""
        self.count, self.val = 0, 0.0

    def accumulate(self, learn: Any) -> None:
        """Fold `learn.loss` into the average."""
        self.count += 1
        # Stays a tensor (no .item()): reading a GPU value every batch would force a sync.
        self.val = self.val * self.beta + learn.loss.detach().mean().float() * (1 - self.beta)

    @property
    def value(self) -> Any:
        """The debiased average."""
        return _to_value(self.val / (1 - self.beta**self.count)) if self.count else None

    @property
    def name(self) -> str:
        """'smooth_loss'."""
        return "smooth_loss"


class ValueMetric(Metric):
    """A metric whose value is `value_func()` (e.g. read from a callback), shown as `metric_name`."""

    def __init__(self, func: Callable[[], Any], metric_name: str | None = None) -> None:
        self.func, self.metric_name = func, metric_name

    @property
    def value(self) -> Any:
        """`func()`."""
        return _to_value(self.func())

    @property
    def name(self) -> str:
        """`metric_name`, or the function's name."""
        return self.metric_name or _func_name(self.func)


class ActivationType(Enum):
    """What `AccumMetric` applies to raw outputs before calling its function."""

    No = "no"
    Sigmoid = "sigmoid"
    Softmax = "softmax"
    BinarySoftmax = "binary_softmax"


# The binary metrics (positive-class softmax probability) and what to use instead for several classes.
_BINARY_ALTERNATIVES = {"roc_auc_score": ("RocAucBinary", "RocAuc() (one-vs-rest)", "RocAucMulti()"),
                        "average_precision_score": ("APScoreBinary", "APScoreMulti() on one-hot targets",
                                                    "APScoreMulti()"),
                        "brier_score_loss": ("BrierScore", "BrierScoreMulti() on one-hot targets",
                                             "BrierScoreMulti()")}


def _check_two_columns(name: str, pred: Tensor, dim: int) -> None:
    # softmax(...)[:, -1] of 3 columns is one class against the other two; of 1 column, always 1.0: refuse both.
    n = pred.shape[dim] if pred.dim() >= 2 else 1
    if pred.dim() >= 2 and n == 2:
        return
    public, multi, sigmoid = _BINARY_ALTERNATIVES.get(name, (name, "a multi-class metric", "a sigmoid metric"))
    fix = (f"for {n} classes use {multi} instead of {public}()" if n > 2 else
           f"a one-output model (sigmoid, BCEWithLogitsLossFlat) needs {sigmoid} (sigmoid probabilities)")
    raise ValueError(f"{public}: a binary metric needs predictions with 2 columns (two classes, softmax), but the "
                     f"model outputs shape {tuple(pred.shape)} ({n} column{'s' if n != 1 else ''}); {fix}")


class AccumMetric(Metric):
    """Store every prediction and target of the pass and compute `func(preds, targs, **kwargs)` at the end.

    Before storing, predictions go through `activation` (softmax over `dim_argmax`, sigmoid, or the
    positive-class column for `BinarySoftmax`), else an argmax over `dim_argmax` when given, then
    `>= thresh` when given. `to_np` passes numpy arrays, `invert_arg` calls `func(targs, preds)`
    (scikit-learn's order), `flatten` flattens both to 1-d.

    >>> rmse = AccumMetric(lambda p, t: ((p - t) ** 2).mean().sqrt(), name="rmse")
    """

    def __init__(
        self,
        func: Callable[..., Any],
        dim_argmax: int | None = None,
        activation: ActivationType = ActivationType.No,
        thresh: float | None = None,
        to_np: bool = False,
        invert_arg: bool = False,
        flatten: bool = True,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(activation, ActivationType):
            raise TypeError(f"AccumMetric: activation={activation!r} is not an ActivationType (e.g. ActivationType.Softmax)")
        self.func, self.dim_argmax, self.activation, self.thresh = func, dim_argmax, activation, thresh
        self.to_np, self.invert_arg, self.flatten, self._name, self.kwargs = to_np, invert_arg, flatten, name, kwargs
        self.reset()

    def reset(self) -> None:
        """Forget stored predictions and targets."""
        self.preds: list[Tensor] = []
        self.targs: list[Tensor] = []

    def _activate(self, pred: Tensor) -> Tensor:
        act = self.activation
        if act == ActivationType.BinarySoftmax:
            _check_two_columns(self.name, pred, -1 if self.dim_argmax is None else self.dim_argmax)
        if act in (ActivationType.Softmax, ActivationType.BinarySoftmax):
            pred = F.softmax(pred.float(), dim=-1 if self.dim_argmax is None else self.dim_argmax)
            if act == ActivationType.BinarySoftmax:
                pred = pred[:, -1]
        elif act == ActivationType.Sigmoid:
            pred = torch.sigmoid(pred.float())
        elif self.dim_argmax is not None:
            pred = pred.argmax(dim=self.dim_argmax)
        if self.thresh is not None:
            pred = pred >= self.thresh
        return pred

    def accumulate(self, learn: Any) -> None:
        """Store the batch's (activated) predictions and its first target."""
        self.accum_values(self._activate(learn.pred.detach()), learn.yb[0])

    def accum_values(self, preds: Tensor, targs: Tensor) -> None:
        """Store `preds` and `targs` (detached, on the CPU)."""
        preds, targs = preds.detach().cpu(), targs.detach().cpu()
        if self.flatten:
            preds, targs = flatten_check(preds, targs)
        self.preds.append(preds)
        self.targs.append(targs)

    def __call__(self, preds: Tensor, targs: Tensor) -> Any:
        """Compute the metric on one set of raw predictions and targets directly."""
        self.reset()
        self.accum_values(self._activate(preds), targs)
        return self.value

    @property
    def value(self) -> Any:
        """`func` over everything stored (None when nothing was)."""
        if not self.preds:
            return None
        preds: Any = torch.cat(self.preds)  # a tensor, or its numpy array with `to_np`
        targs: Any = torch.cat(self.targs)
        if self.to_np:
            preds, targs = preds.numpy(), targs.numpy()
        res = self.func(targs, preds, **self.kwargs) if self.invert_arg else self.func(preds, targs, **self.kwargs)
        return _to_value(res)

    @property
    def name(self) -> str:
        """`name` if given, else the function's name."""
        return self._name or _func_name(self.func)


def skm_to_fastai(
    func: Callable[..., Any],
    is_class: bool = True,
    thresh: float | None = None,
    axis: int = -1,
    activation: ActivationType | None = None,
    **kwargs: Any,
) -> AccumMetric:
    """Wrap the scikit-learn metric `func(y_true, y_pred, **kwargs)` as an `AccumMetric`.

    For classification (`is_class`) predictions are argmax'ed over `axis`, or, with a `thresh`,
    passed through a sigmoid and thresholded (multi-label). `activation` overrides that choice
    (e.g. `ActivationType.Softmax` for probability-based scores such as ROC AUC). Keyword
    arguments `flatten` and `name` go to `AccumMetric`; the rest to `func`.

    >>> from sklearn.metrics import cohen_kappa_score
    >>> kappa = skm_to_fastai(cohen_kappa_score, weights="quadratic")
    """
    if activation is None:
        activation = ActivationType.Sigmoid if (is_class and thresh is not None) else ActivationType.No
    dim_argmax = axis if is_class and thresh is None else None
    flatten = kwargs.pop("flatten", True)
    name = kwargs.pop("name", None) or _func_name(func)
    return AccumMetric(
        func, dim_argmax=dim_argmax, activation=activation, thresh=thresh, to_np=True, invert_arg=True,
        flatten=flatten, name=name, **kwargs,
    )


def mk_metric(m: Any) -> Metric:
    """Turn a metric spec into a `Metric`: instances pass through, classes are instantiated, functions averaged."""
    if isinstance(m, type):
        if not issubclass(m, Metric):
            raise TypeError(f"metrics: {m.__name__} is a class but not a Metric subclass; pass an instance or a function")
        return m()
    if isinstance(m, Metric):
        return m
    if callable(m):
        return AvgMetric(m)
    raise TypeError(f"metrics: {m!r} is neither a Metric nor a function f(pred, targ)")


class LossMetric(AvgMetric):
    """Average of the attribute `attr` that the loss function sets during its call (one part of a compound loss)."""

    def __init__(self, attr: str, nm: str | None = None) -> None:
        self.attr, self.nm = attr, nm or attr
        super().__init__(lambda *a: None)

    def accumulate(self, learn: Any) -> None:
        """Add `learn.loss_func.<attr>` times the batch size (training included)."""
        bs = _find_bs(learn.yb)
        v = getattr(learn.loss_func, self.attr, None)
        if v is None:
            raise AttributeError(f"LossMetric: the loss function has no attribute {self.attr!r} after its call")
        self.total = self.total + (v.detach() if isinstance(v, Tensor) else v) * bs
        self.count += bs

    @property
    def name(self) -> str:
        """The display name."""
        return self.nm


def LossMetrics(attrs: str | list[str], nms: str | list[str] | None = None) -> list[LossMetric]:
    """One `LossMetric` per attribute name (comma- or space-separated string, or list)."""
    split = lambda s: s.replace(",", " ").split() if isinstance(s, str) else list(s)
    attrs = split(attrs)
    nms = attrs if nms is None else split(nms)
    if len(nms) != len(attrs):
        raise ValueError(f"LossMetrics: {len(nms)} names for {len(attrs)} attributes")
    return [LossMetric(a, n) for a, n in zip(attrs, nms)]
