"""Ready-made metrics: classification, multi-label, regression, segmentation and language modelling.

Functions (`accuracy`, `mse`...) are averaged per batch by the Learner; the class-style ones
(`F1Score()`, `RocAuc()`, `rmse`...) accumulate the whole pass. scikit-learn is imported only
when a scikit-learn-backed metric is computed.

>>> learn_metrics = [accuracy, F1Score(average="macro"), RocAuc()]
"""

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tiers.dispatch.extras import require
from tiers.train.metrics.base import (
    AccumMetric,
    ActivationType,
    AvgLoss,
    Metric,
    flatten_check,
    skm_to_fastai,
)

__all__ = [
    "accuracy",
    "error_rate",
    "top_k_accuracy",
    "accuracy_multi",
    "APScoreBinary",
    "BalancedAccuracy",
    "BrierScore",
    "BrierScoreMulti",
    "optim_metric",
    "CorpusBLEUMetric",
    "MatthewsCorrCoefMulti",
    "CohenKappa",
    "F1Score",
    "FBeta",
    "HammingLoss",
    "Jaccard",
    "Precision",
    "Recall",
    "RocAuc",
    "RocAucBinary",
    "MatthewsCorrCoef",
    "APScoreMulti",
    "F1ScoreMulti",
    "FBetaMulti",
    "HammingLossMulti",
    "JaccardMulti",
    "PrecisionMulti",
    "RecallMulti",
    "RocAucMulti",
    "mse",
    "rmse",
    "mae",
    "msle",
    "exp_rmspe",
    "ExplainedVariance",
    "R2Score",
    "PearsonCorrCoef",
    "SpearmanCorrCoef",
    "foreground_acc",
    "Dice",
    "DiceMulti",
    "JaccardCoeff",
    "JaccardCoeffMulti",
    "Perplexity",
    "perplexity",
]


class SkMetricFunc:
    """A scikit-learn metric function named by module and name, imported only when called.

    Module-level and holding only two strings, it pickles by reference: an exported learner with `F1Score()`
    loads with the safe `load_learner`, and importing tiers.train never imports scikit-learn.
    """

    def __init__(self, name: str, module: str = "sklearn.metrics") -> None:
        self.name, self.module = name, module
        self.__name__ = name  # metric names (`f1_score`...) come from the function's name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        what = f"the scikit-learn metric {self.name}"
        # the literal module first: the missing-extra message, and what the packaging test reads as the import
        mod = require("sklearn.metrics", dist="tiers-train", extra="sklearn", what=what)
        if self.module != "sklearn.metrics":
            mod = require(self.module, dist="tiers-train", extra="sklearn", what=what)
        return getattr(mod, self.name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.module}.{self.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SkMetricFunc) and (self.module, self.name) == (other.module, other.name)

    def __hash__(self) -> int:
        return hash((self.module, self.name))


def _skm(name: str) -> SkMetricFunc:
    # Resolved at compute time so that importing tiers.train never imports scikit-learn.
    return SkMetricFunc(name)


# ---------------------------------------------------------------- single-label classification


def _check_classification(inp: Tensor, targ: Tensor, axis: int, name: str) -> None:
    # An argmax over one column is always 0, and float targets like 3.7 are never a class index: a regression
    # learner given accuracy would report a silent, meaningless number.
    one_col = inp.dim() == 0 or inp.shape[axis] == 1 or (inp.dim() == 1 and targ.dim() == 1 and len(inp) == len(targ))
    fractional = targ.is_floating_point() and bool((targ != targ.round()).any())
    if one_col or fractional:
        what = (f"the model outputs one column per item (shape {tuple(inp.shape)})" if one_col else
                f"the targets are fractional floats (e.g. {float(targ[targ != targ.round()].flatten()[0]):g})")
        raise ValueError(
            f"{name} compares the predicted class (argmax of the outputs) with class-index targets, but {what}: this "
            "is a regression. Use rmse, mae or R2Score() for regression, or a classification target (CategoryBlock / "
            "integer class indices with one output per class); for a single-logit binary model use accuracy_multi"
        )


def accuracy(inp: Tensor, targ: Tensor, axis: int = -1) -> Tensor:
    """Fraction of items whose highest score (over `axis`) is the target class."""
    if inp.dim() < 2 or inp.shape[axis] == 1 or targ.is_floating_point():
        _check_classification(inp, targ, axis, "accuracy")
    pred, targ = flatten_check(inp.argmax(dim=axis), targ)
    return (pred == targ).mean(dtype=torch.float32)  # one op instead of .float().mean()


def error_rate(inp: Tensor, targ: Tensor, axis: int = -1) -> Tensor:
    """`1 - accuracy`."""
    if inp.dim() < 2 or inp.shape[axis] == 1 or targ.is_floating_point():
        _check_classification(inp, targ, axis, "error_rate")
    return 1 - accuracy(inp, targ, axis=axis)


def top_k_accuracy(inp: Tensor, targ: Tensor, k: int = 5, axis: int = -1) -> Tensor:
    """Fraction of items whose target is among the `k` highest scores."""
    if k > inp.shape[axis]:
        raise ValueError(f"top_k_accuracy: k={k} exceeds the {inp.shape[axis]} classes of the predictions")
    top = inp.topk(k=k, dim=axis).indices
    targ = targ.unsqueeze(dim=axis).expand_as(top)
    return (top == targ).any(dim=axis).float().mean()


def APScoreBinary(axis: int = -1, average: str = "macro", pos_label: int = 1, sample_weight: Any = None) -> AccumMetric:
    """Average precision of the positive class's softmax probability (binary problems)."""
    return skm_to_fastai(
        _skm("average_precision_score"), axis=axis, activation=ActivationType.BinarySoftmax, average=average,
        pos_label=pos_label, sample_weight=sample_weight, name="average_precision_score",
    )


def BalancedAccuracy(axis: int = -1, sample_weight: Any = None, adjusted: bool = False) -> AccumMetric:
    """Mean per-class recall (scikit-learn's `balanced_accuracy_score`)."""
    return skm_to_fastai(_skm("balanced_accuracy_score"), axis=axis, sample_weight=sample_weight, adjusted=adjusted)


def BrierScore(axis: int = -1, sample_weight: Any = None, pos_label: Any = None) -> AccumMetric:
    """Brier score of the positive class's softmax probability (binary problems)."""
    return skm_to_fastai(
        _skm("brier_score_loss"), axis=axis, activation=ActivationType.BinarySoftmax, sample_weight=sample_weight,
        pos_label=pos_label,
    )


def CohenKappa(axis: int = -1, labels: Any = None, weights: str | None = None, sample_weight: Any = None) -> AccumMetric:
    """Cohen's kappa agreement between predicted and true classes (`weights='quadratic'` for ordinal)."""
    return skm_to_fastai(_skm("cohen_kappa_score"), axis=axis, labels=labels, weights=weights, sample_weight=sample_weight)


def F1Score(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary", sample_weight: Any = None) -> AccumMetric:
    """F1 score of the argmax predictions (use `average='macro'` or `'micro'` for more than two classes)."""
    return skm_to_fastai(
        _skm("f1_score"), axis=axis, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight
    )


def FBeta(beta: float, axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary", sample_weight: Any = None) -> AccumMetric:
    """F-beta score of the argmax predictions."""
    return skm_to_fastai(
        _skm("fbeta_score"), axis=axis, beta=beta, labels=labels, pos_label=pos_label, average=average,
        sample_weight=sample_weight,
    )


def HammingLoss(axis: int = -1, sample_weight: Any = None) -> AccumMetric:
    """Fraction of wrong argmax predictions (scikit-learn's `hamming_loss`)."""
    return skm_to_fastai(_skm("hamming_loss"), axis=axis, sample_weight=sample_weight)


def Jaccard(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary", sample_weight: Any = None) -> AccumMetric:
    """Jaccard index of the argmax predictions."""
    return skm_to_fastai(
        _skm("jaccard_score"), axis=axis, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight
    )


def Precision(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary", sample_weight: Any = None) -> AccumMetric:
    """Precision of the argmax predictions."""
    return skm_to_fastai(
        _skm("precision_score"), axis=axis, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight
    )


def Recall(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary", sample_weight: Any = None) -> AccumMetric:
    """Recall of the argmax predictions."""
    return skm_to_fastai(
        _skm("recall_score"), axis=axis, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight
    )


def RocAuc(axis: int = -1, average: str = "macro", sample_weight: Any = None, max_fpr: float | None = None, multi_class: str = "ovr") -> AccumMetric:
    """ROC AUC from softmax probabilities, one-vs-rest (`multi_class='ovo'` for one-vs-one) for multi-class."""
    return skm_to_fastai(
        _skm("roc_auc_score"), axis=axis, activation=ActivationType.Softmax, flatten=False, average=average,
        sample_weight=sample_weight, max_fpr=max_fpr, multi_class=multi_class,
    )


def RocAucBinary(axis: int = -1, average: str = "macro", sample_weight: Any = None, max_fpr: float | None = None) -> AccumMetric:
    """ROC AUC of the positive class's softmax probability (binary problems)."""
    return skm_to_fastai(
        _skm("roc_auc_score"), axis=axis, activation=ActivationType.BinarySoftmax, average=average,
        sample_weight=sample_weight, max_fpr=max_fpr,
    )


def MatthewsCorrCoef(sample_weight: Any = None, **kwargs: Any) -> AccumMetric:
    """Matthews correlation coefficient of the argmax predictions."""
    return skm_to_fastai(_skm("matthews_corrcoef"), sample_weight=sample_weight, **kwargs)


# ---------------------------------------------------------------- multi-label classification


def accuracy_multi(inp: Tensor, targ: Tensor, thresh: float = 0.5, sigmoid: bool = True) -> Tensor:
    """Fraction of (item, label) pairs predicted right when `inp` (after sigmoid) is thresholded at `thresh`."""
    inp, targ = flatten_check(inp, targ)
    if sigmoid:
        inp = inp.sigmoid()
    return ((inp > thresh) == targ.bool()).float().mean()


def _multi(name: str, thresh: float, sigmoid: bool, **kwargs: Any) -> AccumMetric:
    act = ActivationType.Sigmoid if sigmoid else ActivationType.No
    return skm_to_fastai(_skm(name), thresh=thresh, activation=act, flatten=False, **kwargs)


def APScoreMulti(sigmoid: bool = True, average: str = "macro", pos_label: int = 1, sample_weight: Any = None) -> AccumMetric:
    """Average precision of per-label probabilities (multi-label)."""
    act = ActivationType.Sigmoid if sigmoid else ActivationType.No
    return skm_to_fastai(
        _skm("average_precision_score"), activation=act, flatten=False, average=average, pos_label=pos_label,
        sample_weight=sample_weight,
    )


def F1ScoreMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1, average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """F1 score of thresholded per-label predictions (multi-label)."""
    return _multi("f1_score", thresh, sigmoid, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight)


def FBetaMulti(beta: float, thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1, average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """F-beta score of thresholded per-label predictions (multi-label)."""
    return _multi(
        "fbeta_score", thresh, sigmoid, beta=beta, labels=labels, pos_label=pos_label, average=average,
        sample_weight=sample_weight,
    )


def BrierScoreMulti(thresh: float = 0.5, sigmoid: bool = True, sample_weight: Any = None, pos_label: Any = None) -> AccumMetric:
    """sklearn's `brier_score_loss` of the thresholded per-label 0/1 calls (multi-label), as fastai computes it.

    sklearn reads the 2-d calls as per-row class probabilities (and warns that rows don't sum to one).
    """
    return _multi("brier_score_loss", thresh, sigmoid, sample_weight=sample_weight, pos_label=pos_label)


def MatthewsCorrCoefMulti(thresh: float = 0.5, sigmoid: bool = True, sample_weight: Any = None) -> AccumMetric:
    """Matthews correlation coefficient over every (item, label) call of a multi-label problem.

    sklearn's `matthews_corrcoef` refuses multi-label indicators, so the calls are flattened into one
    binary problem (fastai 2.8 passes the 2-d arrays and raises).
    """
    act = ActivationType.Sigmoid if sigmoid else ActivationType.No
    return skm_to_fastai(_skm("matthews_corrcoef"), thresh=thresh, activation=act, flatten=True, sample_weight=sample_weight)


def HammingLossMulti(thresh: float = 0.5, sigmoid: bool = True, sample_weight: Any = None) -> AccumMetric:
    """Fraction of wrong (item, label) predictions (multi-label)."""
    return _multi("hamming_loss", thresh, sigmoid, sample_weight=sample_weight)


def JaccardMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1, average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """Jaccard index of thresholded per-label predictions (multi-label)."""
    return _multi("jaccard_score", thresh, sigmoid, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight)


def PrecisionMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1, average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """Precision of thresholded per-label predictions (multi-label)."""
    return _multi("precision_score", thresh, sigmoid, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight)


def RecallMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1, average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """Recall of thresholded per-label predictions (multi-label)."""
    return _multi("recall_score", thresh, sigmoid, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight)


def RocAucMulti(sigmoid: bool = True, average: str = "macro", sample_weight: Any = None, max_fpr: float | None = None) -> AccumMetric:
    """ROC AUC of per-label probabilities (multi-label)."""
    act = ActivationType.Sigmoid if sigmoid else ActivationType.No
    return skm_to_fastai(
        _skm("roc_auc_score"), activation=act, flatten=False, average=average, sample_weight=sample_weight, max_fpr=max_fpr
    )


# ---------------------------------------------------------------- regression


def mse(inp: Tensor, targ: Tensor) -> Tensor:
    """Mean squared error."""
    return F.mse_loss(*flatten_check(inp, targ.to(inp.dtype)))


def _rmse(inp: Tensor, targ: Tensor) -> Tensor:
    return torch.sqrt(F.mse_loss(inp, targ.to(inp.dtype)))


rmse = AccumMetric(_rmse, name="rmse")
rmse.__doc__ = "Root mean squared error over the whole pass."


def mae(inp: Tensor, targ: Tensor) -> Tensor:
    """Mean absolute error."""
    inp, targ = flatten_check(inp, targ)
    return (inp - targ).abs().float().mean()


def msle(inp: Tensor, targ: Tensor) -> Tensor:
    """Mean squared logarithmic error: MSE of `log(1 + x)`. Refuses negative targets (a logarithmic error is the
    wrong metric for them) and predictions at or below -1 (their log is NaN); a prediction in (-1, 0), as an
    untrained model gives, counts as scikit-learn counts it."""
    inp, targ = flatten_check(inp, targ)
    bad_t, bad_p = bool((targ < 0).any()), bool((inp <= -1).any())
    if bad_t or bad_p:
        what, t = ("targets contain negative values", targ) if bad_t else ("predictions contain values <= -1", inp)
        raise ValueError(
            f"msle: the {what} (min {float(t.min()):g}); the mean squared logarithmic error needs targets >= 0 and "
            "predictions > -1 (log(1 + x)). Use rmse/mae, or shift or log-transform the targets, and bound the "
            "predictions (e.g. y_range=(0, max))"
        )
    return F.mse_loss(torch.log1p(inp), torch.log1p(targ.to(inp.dtype)))


def _exp_rmspe(inp: Tensor, targ: Tensor) -> Tensor:
    inp, targ = torch.exp(inp), torch.exp(targ)
    return torch.sqrt(((targ - inp) / targ).pow(2).mean())


exp_rmspe = AccumMetric(_exp_rmspe, name="exp_rmspe")
exp_rmspe.__doc__ = "Root mean squared percentage error of `exp(pred)` against `exp(targ)` (log-scale targets)."


def ExplainedVariance(sample_weight: Any = None) -> AccumMetric:
    """Explained variance score (scikit-learn)."""
    return skm_to_fastai(_skm("explained_variance_score"), is_class=False, sample_weight=sample_weight)


def R2Score(sample_weight: Any = None) -> AccumMetric:
    """Coefficient of determination R² (scikit-learn's `r2_score`)."""
    return skm_to_fastai(_skm("r2_score"), is_class=False, sample_weight=sample_weight)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xc, yc = x - x.mean(), y - y.mean()
    return float((xc * yc).sum() / np.sqrt((xc**2).sum() * (yc**2).sum()))


def _rank(x: np.ndarray) -> np.ndarray:
    # Average ranks for ties (what Spearman's rho uses).
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    uniq, inv = np.unique(x, return_inverse=True)
    sums = np.bincount(inv, weights=ranks)
    counts = np.bincount(inv)
    return (sums / counts)[inv]


def PearsonCorrCoef(dim_argmax: int | None = None, activation: ActivationType = ActivationType.No, thresh: float | None = None, flatten: bool = True) -> AccumMetric:
    """Pearson correlation between predictions and targets."""
    return AccumMetric(
        lambda targ, pred: _pearson(targ, pred), dim_argmax=dim_argmax, activation=activation, thresh=thresh,
        to_np=True, invert_arg=True, flatten=flatten, name="pearsonr",
    )


def SpearmanCorrCoef(dim_argmax: int | None = None, activation: ActivationType = ActivationType.No, thresh: float | None = None, flatten: bool = True) -> AccumMetric:
    """Spearman rank correlation between predictions and targets."""
    return AccumMetric(
        lambda targ, pred: _pearson(_rank(targ), _rank(pred)), dim_argmax=dim_argmax, activation=activation,
        thresh=thresh, to_np=True, invert_arg=True, flatten=flatten, name="spearmanr",
    )


# ---------------------------------------------------------------- segmentation


def foreground_acc(inp: Tensor, targ: Tensor, bkg_idx: int = 0, axis: int = 1, void_code: int | None = None) -> Tensor:
    """Pixel accuracy ignoring pixels whose target is the background class `bkg_idx`, and the 'void' pixels labelled
    `void_code` when given (e.g. 255, the loss's `ignore_index`)."""
    if targ.ndim == inp.ndim:
        targ = targ.squeeze(1)
    mask = targ != bkg_idx
    if void_code is not None:
        mask &= targ != void_code
    return (inp.argmax(dim=axis)[mask] == targ[mask]).float().mean()


class Dice(Metric):
    """Dice coefficient `2|A∩B| / (|A|+|B|)` of binary segmentation (argmax over `axis` of the scores); pixels
    labelled `void_code` (e.g. 255, the loss's `ignore_index`) are skipped when it is given."""

    void_code: int | None = None  # class default: metrics pickled before `void_code` existed load with none

    def __init__(self, axis: int = 1, void_code: int | None = None) -> None:
        self.axis, self.void_code = axis, void_code
        self.reset()

    def reset(self) -> None:
        """Zero the intersection and union sums."""
        self.inter: float = 0
        self.union: float = 0

    def accumulate(self, learn: Any) -> None:
        """Add the batch's intersection and sizes."""
        pred, targ = flatten_check(learn.pred.argmax(dim=self.axis), learn.yb[0])
        if self.void_code is not None:
            keep = targ != self.void_code
            pred, targ = pred[keep], targ[keep]
        self.inter += (pred * targ).float().sum().item()
        self.union += (pred + targ).float().sum().item()

    @property
    def value(self) -> float | None:
        """The coefficient (None before any positive pixel)."""
        return 2.0 * self.inter / self.union if self.union > 0 else None


class JaccardCoeff(Dice):
    """Jaccard index (IoU) `|A∩B| / |A∪B|` of binary segmentation."""

    @property
    def value(self) -> float | None:
        """The index (None before any positive pixel)."""
        return self.inter / (self.union - self.inter) if self.union > 0 else None


class DiceMulti(Metric):
    """Macro Dice over classes (a class absent from both predictions and targets is skipped); pixels labelled
    `void_code` (e.g. 255, the loss's `ignore_index`) are skipped when it is given."""

    void_code: int | None = None  # class default: metrics pickled before `void_code` existed load with none

    def __init__(self, axis: int = 1, void_code: int | None = None) -> None:
        self.axis, self.void_code = axis, void_code
        self.reset()

    def reset(self) -> None:
        """Clear per-class sums."""
        self.inter: dict[int, float] = {}
        self.union: dict[int, float] = {}

    def accumulate(self, learn: Any) -> None:
        """Add the batch's per-class intersections and sizes."""
        pred, targ = flatten_check(learn.pred.argmax(dim=self.axis), learn.yb[0])
        if self.void_code is not None:
            keep = targ != self.void_code
            pred, targ = pred[keep], targ[keep]
        n_classes = learn.pred.shape[self.axis]
        for c in range(n_classes):
            p, t = pred == c, targ == c
            self.inter[c] = self.inter.get(c, 0.0) + (p & t).sum().item()
            self.union[c] = self.union.get(c, 0.0) + (p.sum() + t.sum()).item()

    def _per_class(self, c: int) -> float:
        return 2.0 * self.inter[c] / self.union[c]

    @property
    def value(self) -> float | None:
        """Mean over classes that occur."""
        vals = [self._per_class(c) for c in self.union if self.union[c] > 0]
        return float(np.mean(vals)) if vals else None


class JaccardCoeffMulti(DiceMulti):
    """Mean IoU over classes (mIoU)."""

    def _per_class(self, c: int) -> float:
        return self.inter[c] / (self.union[c] - self.inter[c])


# ---------------------------------------------------------------- language models


class Perplexity(AvgLoss):
    """`exp` of the average cross-entropy loss."""

    @property
    def value(self) -> float | None:
        """`exp(mean loss)`."""
        v = super().value
        return None if v is None else float(np.exp(v))

    @property
    def name(self) -> str:
        """'perplexity'."""
        return "perplexity"


perplexity = Perplexity()


def _bounded_argmin(f: Callable[[float], float], lo: float, hi: float, xatol: float) -> tuple[float, float]:
    # Golden-section search on [lo, hi] down to an interval of `xatol`: f is assumed unimodal there.
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > xatol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (c, fc) if fc <= fd else (d, fd)


def optim_metric(
    f: Callable[..., Any], argname: str, bounds: tuple[float, float], tol: float = 0.01, do_neg: bool = True,
    get_x: bool = False,
) -> Callable[[Any, Any], Any]:
    """Wrap metric `f(preds, targs, **kw)` so that it reports its best value over `argname` in `bounds`.

    The argument (a threshold, say) is searched to within `tol`; `do_neg` maximises instead of minimising;
    with `get_x` the wrapped metric returns `(best value, best argument)`.
    """
    lo, hi = (float(b) for b in bounds)
    if not lo < hi:
        raise ValueError(f"optim_metric: bounds={bounds!r} must be (low, high) with low < high")

    def opt_metric(preds: Any, targs: Any) -> Any:
        def score(x: float) -> float:
            v = float(f(preds, targs, **{argname: x}))
            return -v if do_neg else v

        # A grid first (metrics of a threshold are step functions, not unimodal), then a golden-section
        # refinement around the best grid point.
        n = min(101, max(3, math.ceil((hi - lo) / tol) + 1))
        grid = np.linspace(lo, hi, n)
        vals = [score(float(g)) for g in grid]
        i = int(np.argmin(vals))
        step = (hi - lo) / (n - 1)
        x, fx = _bounded_argmin(score, max(lo, grid[i] - step), min(hi, grid[i] + step), tol)
        if vals[i] < fx:
            x, fx = float(grid[i]), vals[i]
        best = -fx if do_neg else fx
        return (best, float(x)) if get_x else best

    opt_metric.__name__ = f"opt_{getattr(f, '__name__', 'metric')}"
    return opt_metric


class CorpusBLEUMetric(Metric):
    """Corpus-level BLEU (Papineni et al. 2002) of the argmax token predictions against the targets, n-grams 1 to 4.

    Clipped n-gram matches and n-gram counts are summed over every sequence of the pass, and the geometric
    mean of the four precisions is scaled by the brevity penalty `exp(1 - target_len / pred_len)` when the
    predictions are shorter. Any precision of zero gives 0. `vocab_sz` is kept for fastai's signature
    (n-grams are keyed by their token ids, so no vocabulary size is needed).
    """

    def __init__(self, vocab_sz: int = 5000, axis: int = -1) -> None:
        self.vocab_sz, self.axis = vocab_sz, axis
        self.reset()

    def reset(self) -> None:
        """Zero the n-gram tallies and lengths."""
        self.pred_len, self.targ_len = 0, 0
        self.corrects, self.counts = [0] * 4, [0] * 4

    def accumulate(self, learn: Any) -> None:
        """Add each sequence of the batch: `pred` is (bs, seq_len, vocab) scores, `yb[0]` is (bs, seq_len) ids."""
        pred = learn.pred.argmax(dim=self.axis) if learn.pred.dim() > learn.yb[0].dim() else learn.pred
        for p, t in zip(pred.tolist(), learn.yb[0].tolist()):
            p = p if isinstance(p, list) else [p]
            t = t if isinstance(t, list) else [t]
            self.pred_len += len(p)
            self.targ_len += len(t)
            for n in range(1, 5):
                pc = Counter(tuple(p[i : i + n]) for i in range(len(p) - n + 1))
                tc = Counter(tuple(t[i : i + n]) for i in range(len(t) - n + 1))
                self.counts[n - 1] += sum(pc.values())
                self.corrects[n - 1] += sum(min(c, tc[g]) for g, c in pc.items())

    @property
    def value(self) -> float | None:
        """BLEU in [0, 1] (None before any batch)."""
        if self.pred_len == 0:
            return None
        precs = [c / max(k, 1) for c, k in zip(self.corrects, self.counts)]
        if min(precs) == 0:
            return 0.0
        penalty = math.exp(1 - self.targ_len / self.pred_len) if self.pred_len < self.targ_len else 1.0
        return penalty * math.prod(precs) ** 0.25

    @property
    def name(self) -> str:
        """Shown as `corpus_bleu`, as in fastai."""
        return "corpus_bleu"
