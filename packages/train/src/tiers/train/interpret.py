"""Look at what a trained model gets wrong: `Interpretation` (losses per item) and `ClassificationInterpretation`.

>>> interp = ClassificationInterpretation.from_learner(learn)   # doctest: +SKIP
>>> interp.most_confused(min_val=2)                              # [('cat', 'dog', 5), ...]
>>> interp.plot_confusion_matrix()                               # doctest: +SKIP
"""

from typing import Any

import torch
from torch import Tensor

from tiers.data.show import get_grid, show_table
from tiers.dispatch import is_listy, typedispatch
from tiers.dispatch.extras import require
from tiers.tensors import TensorImageBase, TensorMask
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
        """Show the `k` items with the largest (or smallest) losses, decoded through the loader: images as a grid
        titled `prediction/actual/loss/probability` (segmentation: input, target mask and predicted mask per row),
        texts and tabular rows as a table with `target`, `predicted`, `probability` and `loss` columns (an HTML
        table in a notebook, text elsewhere). `probability` is that of the predicted class (multi-label: of each
        predicted label; a language model or segmentation: the mean over the tokens or pixels). Returns the figure
        (or the table's DataFrame) with `return_fig=True` only (a returned object would show twice at the end of a
        notebook cell). Other keywords go to the type's `plot_top_losses` (`trunc_at=` for texts...)."""
        preds, targs, decoded = self._needed("plot_top_losses")
        losses, idx = self.top_losses(k, largest)
        if len(idx) == 0:
            raise ValueError("plot_top_losses: k=0 items to show; pass k >= 1")
        items = [int(i) for i in idx]
        probs = [_probability(_take(preds, i), _take(_first(decoded), i)) for i in items]
        vals = [float(v) for v in losses]
        dl = self.dl
        if callable(getattr(dl, "decode_rows", None)) and callable(getattr(dl, "show_results", None)):
            # a tabular loader: its `show_results` decodes whole rows into a DataFrame
            b = (*_tuplify(_take_many(self.inputs, idx)), *_tuplify(_take_many(targs, idx)))
            df = dl.show_results(b, _take_many(decoded, idx), max_n=len(items), show=False)
            res = _table_with(df.reset_index(drop=True), probs, vals)
        elif callable(getattr(dl, "decode_batch", None)) and callable(getattr(dl, "show_results", None)):
            x = y = None
            samples: list = []
            outs: list = []
            for i in items:  # one item at a time: text inputs are ragged (each batch padded to its own length)
                b = (*_tuplify(_one(self.inputs, i)), *_tuplify(_one(targs, i)))
                xi, yi, its, out_its = dl.show_results(b, _one(decoded, i), max_n=1, show=False)
                if its is None:
                    raise TypeError(f"plot_top_losses: {type(dl).__name__} decodes a batch into one object, not into "
                                    "samples; show the items with learn.show_results instead")
                x, y = (xi, yi) if x is None else (x, y)
                samples.append(its[0])
                outs.append(out_its[0])
            res = plot_top_losses(x, y, samples, outs, probs, vals, figsize=figsize, **kwargs)
        else:
            res = self._plot_raw(items, probs, vals, figsize)
        return res if return_fig else None

    def _plot_raw(self, items: list[int], probs: list[str], losses: list[float], figsize: tuple | None) -> Any:
        # A loader that cannot decode (a torch DataLoader): images when the inputs look like some, else a table of
        # the first input values.
        _, targs, decoded = self._needed("plot_top_losses")
        x = _first(self.inputs)
        dec = self._target_names(_first(decoded)[items])
        targ = self._target_names(_first(targs)[items])
        if isinstance(x, Tensor) and x.dim() in (3, 4):
            fig, axs = get_grid(len(items), figsize=figsize, title="Prediction/Actual/Loss/Probability",
                                return_fig=True)
            for ax, i, p, t, lo, pr in zip(axs, items, dec, targ, losses, probs):
                img = x[i].float()
                img = img.permute(1, 2, 0) if img.dim() == 3 and img.shape[0] in (1, 3) else img
                img = (img - img.min()) / (img.max() - img.min() + 1e-8)
                ax.imshow(img.squeeze(-1).numpy() if img.dim() == 3 else img.numpy(), cmap="gray")
                ax.axis("off")
                ax.set_title(f"{p}/{t} / {lo:.2f} / {pr}", fontsize=9)
            return fig
        pd = require("pandas", dist="tiers-train", extra="pandas", what="Interpretation.plot_top_losses (tables)")
        inputs = [", ".join(f"{v:.4g}" for v in x[i].flatten()[:8].tolist()) if isinstance(x, Tensor) else
                  str(_take(x, i)) for i in items]
        df = pd.DataFrame({"input": inputs, "target": targ, "predicted": dec})
        return _table_with(df, probs, losses)


def _tuplify(o: Any) -> tuple:
    return tuple(o) if isinstance(o, (tuple, list)) and not _is_ragged(o) else (o,)


def _is_ragged(o: Any) -> bool:
    # GatherPredsCallback gives a list of per-item tensors when batches differ in shape (text padded per batch)
    return isinstance(o, list) and len(o) > 0 and all(isinstance(e, Tensor) for e in o) and \
        len({e.shape for e in o}) > 1


def _take(o: Any, i: int) -> Any:
    """Item `i` of gathered results (a tensor, a ragged list of item tensors, or a tuple of those)."""
    if isinstance(o, Tensor) or _is_ragged(o):
        return o[i]
    if isinstance(o, (tuple, list)):
        return type(o)(_take(e, i) for e in o) if len(o) != 1 else _take(o[0], i)
    return o


def _one(o: Any, i: int) -> Any:
    """Item `i` of gathered results as a batch of one (types kept, for the loader's decoding)."""
    if isinstance(o, Tensor):
        return o[i : i + 1]
    if _is_ragged(o):
        return o[i][None]
    if isinstance(o, (tuple, list)):
        return tuple(_one(e, i) for e in o)
    return o


def _take_many(o: Any, idx: Tensor) -> Any:
    if isinstance(o, Tensor):
        return o[idx]
    if isinstance(o, (tuple, list)):
        return tuple(_take_many(e, idx) for e in o)
    return o


def _probability(raw: Any, dec: Any) -> str:
    """The predicted probability shown for one item: of the predicted class, of each predicted label (multi-label,
    `;`-separated), or the mean over tokens/pixels of the predicted class's (language model, segmentation)."""
    if not isinstance(raw, Tensor) or not raw.is_floating_point() or raw.numel() == 0:
        return ""
    if isinstance(dec, Tensor) and dec.is_floating_point():
        return ""  # a regression (or a loss without `decodes`): the outputs are values, not probabilities
    if isinstance(dec, Tensor) and dec.shape == raw.shape and not dec.is_floating_point():
        return ";".join(f"{float(p):.2f}" for p in raw[dec.bool()])  # multi-label: one per predicted label
    if isinstance(dec, Tensor) and not dec.is_floating_point() and dec.dim() < raw.dim():
        d = dec.long()
        if raw.dim() == 1 and d.dim() == 0:
            return f"{float(raw[int(d)]):.2f}"
        for cd in (-1, 0):  # the class axis: last (tokens) or first (a CHW segmentation map)
            rest = raw.shape[:-1] if cd == -1 else raw.shape[1:]
            if rest == d.shape:
                return f"{float(raw.gather(cd, d.unsqueeze(cd)).mean()):.2f}"
    return f"{float(raw.max()):.2f}"


def _label(o: Any) -> str:
    """A decoded target or prediction as a short title: class names (multi-label joined by `;`), else its text."""
    if is_listy(o):  # MultiCategory (an `L`), a tuple or list of labels
        return ";".join(str(e) for e in o)
    if isinstance(o, Tensor):
        if o.numel() <= 8:  # a few values (a plain feature vector): the values themselves
            return ", ".join(f"{v:.4g}" for v in o.flatten().tolist())
        return f"tensor of shape {tuple(o.shape)}"
    return str(o)


def _table_with(df: Any, probs: list[str], losses: list[float]) -> Any:
    df = df.copy()
    df["probability"] = probs
    df["loss"] = losses
    show_table(df)
    return df


@typedispatch
def plot_top_losses(x, y, samples, outs, probs, losses, figsize=None, nrows=None, ncols=None, **kwargs):
    """Show the decoded top-loss `samples` (tuples of inputs then targets) with their decoded predictions `outs`,
    predicted probabilities `probs` (text) and `losses`: a grid of images titled `prediction/actual/loss/probability`
    when the inputs are images, else a table (the input columns, then `target`, `predicted`, `probability`, `loss`).
    `x` and `y` (the decoded inputs and targets) choose a specialised version. Returns the figure or the DataFrame."""
    n_out = len(outs[0]) if isinstance(outs[0], tuple) else 1

    def split(s: Any, o: Any) -> tuple[tuple, str, str]:
        s = s if isinstance(s, tuple) else (s,)
        o = o if isinstance(o, tuple) else (o,)
        return s[: len(s) - n_out], ", ".join(map(_label, s[len(s) - n_out:])), ", ".join(map(_label, o))

    if isinstance(_first(samples[0]) if not isinstance(samples[0], tuple) else samples[0][0], TensorImageBase):
        fig, axs = get_grid(len(samples), nrows, ncols, figsize, title="Prediction/Actual/Loss/Probability",
                            return_fig=True)
        for ax, s, o, pr, lo in zip(axs, samples, outs, probs, losses):
            inp, targ, pred = split(s, o)
            inp[0].show(ctx=ax, **kwargs)
            ax.set_title(f"{pred}/{targ} / {lo:.2f} / {pr}", fontsize=9)
        return fig
    pd = require("pandas", dist="tiers-train", extra="pandas", what="plot_top_losses (tables)")
    rows = []
    for s, o in zip(samples, outs):
        inp, targ, pred = split(s, o)
        row = pd.Series(dtype=object)
        for e in inp:
            row = e.show(ctx=row) if hasattr(e, "show") else pd.concat([row, pd.Series({"input": _label(e)})])
        rows.append(pd.concat([row, pd.Series({"target": targ, "predicted": pred})]))
    return _table_with(pd.DataFrame(rows), list(probs), list(losses))


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def plot_top_losses(x: TensorImageBase, y: TensorMask, samples, outs, probs, losses, figsize=None, imsize=3,  # noqa: F811
                    **kwargs):
    """Segmentation: one row per item, the input image, its target mask and the predicted mask (over the image),
    titled with the loss and the mean probability of the predicted class per pixel."""
    n = len(samples)
    fig, axs = get_grid(3 * n, n, 3, figsize or (3 * imsize, n * imsize), title="Input / Target / Prediction",
                        return_fig=True)
    for r, (s, o, pr, lo) in enumerate(zip(samples, outs, probs, losses)):
        img, targ = s[0], s[1]
        pred = o[0] if isinstance(o, tuple) else o
        for j, (mask, title) in enumerate(((None, f"input / loss {lo:.2f}"), (targ, "target"),
                                           (pred, f"prediction / probability {pr}"))):
            ax = axs[3 * r + j]
            img.show(ctx=ax, **kwargs)
            if mask is not None:
                mask.show(ctx=ax, **kwargs)
            ax.set_title(title, fontsize=9)
    return fig


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
