"""Look at what a trained model gets wrong: `Interpretation` (losses per item) and `ClassificationInterpretation`.

>>> interp = ClassificationInterpretation.from_learner(learn)   # doctest: +SKIP
>>> interp.most_confused(min_val=2)                              # [('cat', 'dog', 5), ...]
>>> interp.plot_confusion_matrix()                               # doctest: +SKIP
"""

from typing import Any

import torch
from torch import Tensor

from tiers.dispatch import is_listy
from tiers.dispatch.extras import require
from tiers.train.learner import Learner
from tiers.train.plain_torch import loss_decodes
from tiers.train.predict import check_not_empty

__all__ = ["Interpretation", "ClassificationInterpretation", "SegmentationInterpretation"]


def _first(x: Any) -> Any:
    return x[0] if isinstance(x, (tuple, list)) and len(x) == 1 else x


def _class_vocab(dl: Any, learn: Any = None) -> Any:
    """The class names of `dl` (else of `learn.dls`): its `vocab`, or the last element of a list of vocabs (a text
    classifier's `dls.vocab` is `[token_vocab, CategoryMap]`: the classes are the last); None when there is none."""
    vocab = getattr(dl, "vocab", None)
    if vocab is None:
        vocab = getattr(getattr(learn, "dls", None), "vocab", None)
    if vocab is not None and is_listy(vocab) and len(vocab) and is_listy(vocab[-1]):
        vocab = vocab[-1]
    return vocab


class Interpretation:
    """Inputs, predictions, targets, decoded predictions and per-item losses of `learn` on a loader.

    Build it with `from_learner(learn, ds_idx=1, dl=None)`; `top_losses(k)` gives the worst items and
    `plot_top_losses(k)` shows them.
    """

    def __init__(self, learn: Learner, dl: Any, losses: Tensor, inputs: Any = None, preds: Tensor | None = None,
                 targs: Tensor | None = None, decoded: Tensor | None = None) -> None:
        self.learn, self.dl, self.losses = learn, dl, losses
        self.inputs, self.preds, self.targs, self.decoded = inputs, preds, targs, decoded

    @classmethod
    def from_learner(cls, learn: Learner, ds_idx: int = 1, dl: Any = None, act: Any = None) -> "Interpretation":
        """Run `learn.get_preds` on `dl` (default `learn.dls[ds_idx]`), keeping inputs, decoded preds and losses."""
        given = dl is not None
        if dl is None:
            dl = learn.dls[ds_idx]
        if hasattr(dl, "__len__"):
            check_not_empty(dl, f"{cls.__name__}.from_learner", None if given else ds_idx)
        inp, preds, targs, dec, losses = learn.get_preds(
            dl=dl, with_input=True, with_loss=True, with_decoded=True, act=act)
        return cls(learn, dl, losses, inp, preds, targs, dec)

    def top_losses(self, k: int | None = None, largest: bool = True, items: bool = False) -> tuple:
        """`(losses, indices)` of the `k` largest (or smallest) per-item losses (all items when `k` is None);
        `items=True` appends the dataset items at those indices."""
        n = len(self.losses)
        k = n if k is None else k
        if not 0 <= k <= n:
            raise ValueError(f"top_losses: k={k} is out of range; the loader has {n} items")
        vals, idx = self.losses.topk(k, largest=largest)
        if not items:
            return vals, idx
        ds = getattr(self.dl, "dataset", None)
        its = getattr(ds, "items", ds)
        if its is None:
            raise TypeError("top_losses(items=True): the loader has no dataset to take items from")
        return vals, idx, [its[int(i)] for i in idx]

    def _needed(self, what: str) -> tuple[Tensor, Any, Any]:
        # `(preds, targs, decoded)`, which a hand-built Interpretation may lack (`from_learner` always sets them).
        missing = [n for n in ("preds", "targs", "decoded") if getattr(self, n) is None]
        if missing or self.preds is None:
            raise ValueError(f"{what}: this Interpretation has no {', '.join(missing)}; build it with "
                             f"{type(self).__name__}.from_learner(learn), or pass them to its constructor")
        return self.preds, self.targs, self.decoded

    def _target_names(self, t: Tensor) -> list[str]:
        vocab = _class_vocab(self.dl, self.learn)
        if vocab is not None and t.dim() == 1 and t.dtype in (torch.int64, torch.int32):
            return [str(vocab[int(v)]) for v in t]
        return [str(v.tolist()) for v in t]

    def plot_top_losses(self, k: int = 9, largest: bool = True, figsize: tuple | None = None, return_fig: bool = False,
                        **kwargs: Any) -> Any:
        """Show the `k` items with the largest losses: their input (as an image when it looks like one, else its
        values), prediction, target, loss and predicted probability. Returns the matplotlib figure with
        `return_fig=True` only (a returned figure would show twice at the end of a notebook cell)."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="Interpretation.plot_top_losses")

        preds, targs, decoded = self._needed("plot_top_losses")
        losses, idx = self.top_losses(k, largest)
        x = _first(self.inputs)
        dec, targ = self._target_names(_first(decoded)[idx]), self._target_names(_first(targs)[idx])
        probs = preds[idx]
        ncols = min(3, len(idx)) or 1
        nrows = (len(idx) + ncols - 1) // ncols
        fig, axs = plt.subplots(max(nrows, 1), ncols, figsize=figsize or (4 * ncols, 3.2 * max(nrows, 1)),
                                squeeze=False)
        for ax in axs.flat:
            ax.axis("off")
        for ax, i, p, t, lo, pr in zip(axs.flat, idx, dec, targ, losses, probs):
            xi = x[int(i)] if isinstance(x, Tensor) else None
            if xi is not None and xi.dim() in (2, 3):
                img = xi.float()
                img = img.permute(1, 2, 0) if img.dim() == 3 and img.shape[0] in (1, 3) else img
                img = (img - img.min()) / (img.max() - img.min() + 1e-8)
                ax.imshow(img.squeeze(-1).numpy() if img.dim() == 3 else img.numpy(), cmap="gray")
            elif xi is not None:
                vals = ", ".join(f"{v:.2g}" for v in xi.flatten()[:6].tolist())
                ax.text(0.5, 0.4, vals, ha="center", fontsize=8, wrap=True)
            conf = float(pr.max()) if pr.dim() else float(pr)
            ax.set_title(f"{p}/{t} / {float(lo):.2f} / {conf:.2f}", fontsize=9)
        fig.suptitle("prediction/actual/loss/probability")
        return fig if return_fig else None


class ClassificationInterpretation(Interpretation):
    """`Interpretation` for single-label classification: confusion matrix, most confused pairs, per-class report."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        vocab = _class_vocab(self.dl, self.learn)
        n = _first(self.preds).shape[-1]
        self.vocab = [str(v) for v in vocab] if vocab is not None and len(vocab) == n else [str(i) for i in range(n)]

    def confusion_matrix(self) -> Tensor:
        """`(n_classes, n_classes)` counts: row = actual class, column = predicted class."""
        n = len(self.vocab)
        _, targs, decoded = self._needed("confusion_matrix")
        d0 = _first(decoded)
        if isinstance(d0, Tensor) and d0.is_floating_point():
            loss = self.learn.loss_func
            name = getattr(loss, "__name__", None) or type(loss).__name__
            why = "has no `decodes`" if loss_decodes(loss) is None else "decodes to floats (not a classification loss)"
            raise ValueError(f"confusion_matrix: the decoded predictions are not class indices (float, shape "
                             f"{tuple(d0.shape)}): the loss {name} {why}; for single-label classification train "
                             "with loss_func=CrossEntropyLossFlat() (or a loss whose `decodes` gives class indices)")
        t = _first(targs).flatten().long()
        d = d0.flatten().long()
        if t.shape != d.shape:
            raise ValueError(f"confusion_matrix: {t.numel()} targets but {d.numel()} decoded predictions; "
                             "ClassificationInterpretation needs single-label classification")
        return torch.bincount(t * n + d, minlength=n * n).reshape(n, n)

    def plot_confusion_matrix(self, normalize: bool = False, title: str = "Confusion matrix", cmap: str = "Blues",
                              norm_dec: int = 2, plot_txt: bool = True, figsize: tuple | None = None,
                              return_fig: bool = False, **kwargs: Any) -> Any:
        """Plot the confusion matrix (rows normalised to 1 when `normalize`); returns the matplotlib figure with
        `return_fig=True` only (a returned figure would show twice at the end of a notebook cell). Other keywords
        (`dpi=60`, `facecolor=`...) go to the figure, as fastai's `plt.figure(**kwargs)`."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="ClassificationInterpretation.plot_confusion_matrix")

        cm = self.confusion_matrix().float()
        if normalize:
            cm = cm / cm.sum(1, keepdim=True).clamp_min(1)
        n = len(self.vocab)
        # room for the tick labels (IMDB's 'negative'/'positive' did not fit 2.2 inches: matplotlib warned that
        # tight_layout could not be applied); constrained layout makes it fit without a warning
        side = max(4.0, 1 + 0.6 * n + 0.08 * max((len(v) for v in self.vocab), default=0))
        kwargs.setdefault("layout", "constrained")
        fig, ax = plt.subplots(figsize=figsize or (side, side), **kwargs)
        ax.imshow(cm.numpy(), interpolation="nearest", cmap=cmap)
        ax.set_title(title)
        ax.set_xticks(range(n), self.vocab, rotation=90)
        ax.set_yticks(range(n), self.vocab)
        if plot_txt:
            thresh = float(cm.max()) / 2
            for i in range(n):
                for j in range(n):
                    v = float(cm[i, j])
                    txt = f"{v:.{norm_dec}f}" if normalize else f"{int(v)}"
                    ax.text(j, i, txt, ha="center", va="center", color="white" if v > thresh else "black")
        ax.set_ylabel("Actual")
        ax.set_xlabel("Predicted")
        return fig if return_fig else None

    def most_confused(self, min_val: int = 1) -> list[tuple[str, str, int]]:
        """`(actual, predicted, count)` for every off-diagonal cell with at least `min_val` items, most first."""
        cm = self.confusion_matrix()
        res = [(self.vocab[i], self.vocab[j], int(cm[i, j])) for i in range(len(cm)) for j in range(len(cm))
               if i != j and cm[i, j] >= min_val]
        return sorted(res, key=lambda r: -r[2])

    def classification_report(self) -> dict[str, dict[str, float]]:
        """Per class `precision`, `recall`, `f1` and `support`, then sklearn's summary rows: `accuracy` (its value
        under `precision`), `macro avg` (unweighted mean over the classes) and `weighted avg` (weighted by support).
        A class that is never predicted (or never present) gets 0 for the ratio that would divide by zero."""
        cm = self.confusion_matrix().double()
        tp = cm.diag()
        prec = tp / cm.sum(0).clamp_min(1)
        rec = tp / cm.sum(1).clamp_min(1)
        f1 = torch.where(prec + rec > 0, 2 * prec * rec / (prec + rec).clamp_min(1e-12), torch.zeros_like(tp))
        sup = cm.sum(1)
        total = sup.sum()
        rep = {v: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(sup[i])}
               for i, v in enumerate(self.vocab)}
        rep["accuracy"] = {"precision": float(tp.sum() / total.clamp_min(1)), "recall": float("nan"),
                           "f1": float("nan"), "support": int(total)}
        rep["macro avg"] = {"precision": float(prec.mean()), "recall": float(rec.mean()), "f1": float(f1.mean()),
                            "support": int(total)}
        def weighted(v: Tensor) -> float:  # np.average(v, weights=support), as sklearn computes it
            return float((v * sup).sum() / total) if total > 0 else 0.0

        rep["weighted avg"] = {"precision": weighted(prec), "recall": weighted(rec), "f1": weighted(f1),
                               "support": int(total)}
        return rep

    def print_classification_report(self) -> None:
        """Print the report laid out as sklearn's `classification_report` (what fastai prints): one row per class,
        then accuracy, macro avg and weighted avg. Nothing returned (a notebook would show the text twice)."""
        rep = self.classification_report()
        w = max(len("weighted avg"), *(len(str(k)) for k in rep))
        row = "{:>{w}s}  {:>9.2f} {:>9.2f} {:>9.2f} {:>9}"
        lines = [f"{'':>{w}s}  {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}", ""]
        for k, r in rep.items():
            if k == "accuracy":
                lines += ["", f"{k:>{w}s}  {'':>9} {'':>9} {r['precision']:>9.2f} {r['support']:>9}"]
            else:
                lines.append(row.format(str(k), r["precision"], r["recall"], r["f1"], r["support"], w=w))
        print("\n".join(lines))


class SegmentationInterpretation(Interpretation):
    """`Interpretation` for segmentation (fastai's name): one loss per image, the mean of its per-pixel losses, so
    `top_losses(k)` gives the worst-segmented images and `plot_top_losses(k)` shows them."""
