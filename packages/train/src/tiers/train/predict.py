"""Inference with a `Learner`: `get_preds` over a whole loader, `predict` for one item, `tta`, `show_results`.

Predictions go through the loss function's `activation` (softmax, sigmoid...) batch by batch and
straight to the CPU, so memory holds the outputs and nothing more; `decodes` of the loss turns
them into predicted targets (`with_decoded`).

>>> probs, targs = learn.get_preds()                       # doctest: +SKIP
>>> label, idx, probs = learn.predict(item)                 # doctest: +SKIP
"""

import inspect
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import RandomSampler

from tiers.data import IntToFloatTensor, Normalize, ToTensor
from tiers.pipeline import Pipeline, Transform
from tiers.tensors import find_bs
from tiers.train.callbacks.core import Callback, GatherPredsCallback
from tiers.train.plain_torch import loss_activation, loss_decodes

__all__ = []


def _identity(x: Any) -> Any:
    return x


def _unshuffled(dl: Any) -> Any:
    # An in-order, keep-every-item copy of `dl`, so predictions line up with the dataset.
    if isinstance(dl, (list, tuple)):
        return dl
    if isinstance(dl, TorchDataLoader):
        if dl.batch_size is not None and (isinstance(dl.sampler, RandomSampler) or dl.drop_last):
            return TorchDataLoader(
                dl.dataset, batch_size=dl.batch_size, shuffle=False, drop_last=False, collate_fn=dl.collate_fn,
                num_workers=dl.num_workers, pin_memory=dl.pin_memory,
            )
        return dl
    if hasattr(dl, "new") and (getattr(dl, "shuffle", False) or getattr(dl, "drop_last", False)):
        return dl.new(shuffle=False, drop_last=False)
    return dl


class _FixedOrder:
    """A loader's `get_idxs` replaced by a list computed once (so the order read is the order run)."""

    def __init__(self, idxs: list[int]) -> None:
        self.idxs = idxs

    def __call__(self) -> list[int]:
        return self.idxs


def _pin_order(dl: Any) -> tuple[Any, list[int] | None]:
    # `(loader, item order)`: the dataset indices `dl` yields, in the order it yields them, when that is not
    # already 0..n-1 (text's SortedDL yields longest first even unshuffled); the loader returned runs that order.
    if isinstance(dl, (list, tuple, TorchDataLoader)) or not callable(getattr(dl, "get_idxs", None)):
        return dl, None
    if not getattr(dl, "indexed", True) or not hasattr(dl, "new"):
        return dl, None  # an iterable dataset has no indices: its order is the stream's
    from tiers.train.callbacks.distributed import _DistribMixin

    if isinstance(dl, _DistribMixin):
        return dl, None  # one rank's share: DistributedTrainer gathers the ranks' results in the unsharded order
    raw = list(dl.get_idxs())
    if any(not hasattr(i, "__index__") or isinstance(i, bool) for i in raw):
        return dl, None  # not item indices (e.g. None for a stream): nothing to put back
    idxs = [operator.index(i) for i in raw]
    if idxs == list(range(len(idxs))):
        return dl, None
    return dl.new(get_idxs=_FixedOrder(idxs)), idxs


def _n_items(o: Any, dim: int) -> int | None:
    if isinstance(o, torch.Tensor):
        return o.shape[dim] if o.dim() > dim else None
    if isinstance(o, dict):
        o = list(o.values())
    if isinstance(o, (tuple, list)):
        for e in o:
            n = _n_items(e, dim)
            if n is not None:
                return n
    return None


def _reorder(o: Any, order: torch.Tensor, dim: int) -> Any:
    # Put gathered results (a tensor, a tuple/dict of them, or a list of ragged per-item tensors) in `order`.
    n = len(order)
    if o is None:
        return None
    if isinstance(o, torch.Tensor):
        return o.index_select(dim, order) if o.dim() > dim and o.shape[dim] == n else o
    if isinstance(o, dict):
        return {k: _reorder(v, order, dim) for k, v in o.items()}
    if isinstance(o, list) and len(o) == n and not all(_n_items(e, dim) == n for e in o):
        return [o[int(i)] for i in order]  # ragged outputs: one element per item
    if isinstance(o, (tuple, list)):
        return type(o)(_reorder(e, order, dim) for e in o)
    return o


def _accepts_reduction(f: Any) -> bool:
    try:
        return "reduction" in inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False


def _tuplify(o: Any) -> tuple:
    return tuple(o) if isinstance(o, (tuple, list)) else (o,)


@contextmanager
def loss_not_reduced(learn: Any) -> Iterator[None]:
    """Context manager: the loss function returns one loss per item inside the block."""
    lf = learn.loss_func
    if hasattr(lf, "reduction"):
        old = lf.reduction
        lf.reduction = "none"
        try:
            yield
        finally:
            lf.reduction = old
    elif _accepts_reduction(lf):
        learn.loss_func = partial(lf, reduction="none")
        try:
            yield
        finally:
            learn.loss_func = lf
    else:
        raise TypeError(
            f"with_loss: the loss function {getattr(lf, '__name__', lf)!r} has no `reduction` setting, so "
            "per-item losses cannot be computed; give it a reduction='none' option"
        )

class _LossSizes(Callback):
    """Per batch: its rows and how many loss values it gave (`GatherPredsCallback` averages them per row)."""

    def before_validate(self) -> None:
        self.rows: list[int] = []
        self.sizes: list[int] = []

    def after_batch(self) -> None:
        learn = self.learn
        if getattr(learn, "pred", None) is None or not learn.yb:
            return
        loss = learn.loss_grad if getattr(learn, "loss_grad", None) is not None else learn.loss
        self.rows.append(find_bs(learn.yb))
        self.sizes.append(int(loss.numel()))


def _losses_per_row(losses: torch.Tensor | None, sizes: _LossSizes) -> torch.Tensor | None:
    # Batches joined along dim > 0 (a language model's: row r of every batch continues stream r) give one row per
    # stream, but the gathered losses are per row of each batch: `n_batches * bs` values. One loss per stream, the
    # mean over all of its tokens, lines them up with the predictions: each batch's row means weighted by the values
    # per row (a shorter last batch counts less).
    rows = sizes.rows
    if losses is None or not rows or len(set(rows)) != 1 or losses.numel() != sum(rows):
        return losses  # batches of different row counts are not streams: nothing to join
    per_batch = losses.reshape(len(rows), rows[0])
    w = torch.tensor([max(n, 1) / r for n, r in zip(sizes.sizes, rows)], dtype=per_batch.dtype)
    return (per_batch * w[:, None]).sum(0) / w.sum()


def check_not_empty(dl: Any, what: str, ds_idx: int | None = None) -> None:
    """Raise a `ValueError` naming the empty set and the fix when `dl` yields no batch (`ds_idx`: it is
    `learn.dls[ds_idx]`; None: it was passed as `dl=`). Predictions on no items would be a silent `(None, None)`."""
    if len(dl) > 0:
        return
    if ds_idx is None:
        raise ValueError(f"{what}: the loader passed as dl= is empty (no batch); give it some items, e.g. "
                         "dl=learn.dls.test_dl(items, with_labels=True)")
    name = {0: "training", 1: "validation"}.get(ds_idx, f"dls[{ds_idx}]")
    hint = " (the data was split with no validation set, e.g. valid_pct=0)" if ds_idx == 1 else ""
    raise ValueError(f"{what}: the {name} set (learn.dls[{ds_idx}]) is empty{hint}, so there is nothing to predict; "
                     "pass ds_idx=0 for the training set, or dl=learn.dls.test_dl(items, with_labels=True) for "
                     "other items")


def get_preds(
    learn: Any, ds_idx: int = 1, dl: Any = None, with_input: bool = False, with_decoded: bool = False,
    with_loss: bool = False, act: Any = None, inner: bool = False, reorder: bool = True, cbs: Any = None,
    concat_dim: int = 0,
) -> tuple:
    """Predictions on `dls[ds_idx]` (or `dl`): `([inputs], preds, targets, [decoded], [losses])`.

    `preds` are activated by `act` (default: the loss's `activation`); `decoded` by the loss's
    `decodes` (a plain torch loss: `plain_torch.loss_decodes`); `losses` are per item. Results are in dataset order (`reorder`): the loader is
    replaced by an unshuffled copy that keeps the last partial batch, and when that copy still yields the items
    in another order (text's `SortedDL`: longest first) the results are put back by its `get_idxs()`.
    `reorder=False` with a `dl` keeps the loader's own iteration order.

    With `concat_dim` > 0 (a language model's loaders: batch `b` row `r` continues stream `r`, and the batches are
    joined along the sequence) `losses` has one value per row of the result too: the mean loss over all the tokens
    of that stream, so `losses[i]` describes `preds[i]` (what `Interpretation.top_losses` indexes).
    """
    given = dl is not None
    if dl is None:
        dl = _unshuffled(learn.dls[ds_idx])
    elif reorder:
        dl = _unshuffled(dl)
    if not hasattr(dl, "__len__"):
        raise TypeError(f"get_preds: dl must be a loader (or list of batches) with a length, got {type(dl).__name__}")
    check_not_empty(dl, "get_preds", None if given else ds_idx)
    idxs: list[int] | None = None
    if reorder:
        dl, idxs = _pin_order(dl)
    if act is None:
        # the loss's `activation`, or the known one of a torch loss (CrossEntropyLoss: softmax...), else raw outputs
        act = loss_activation(learn.loss_func) or _identity
    cb = GatherPredsCallback(with_input=with_input, with_loss=with_loss, concat_dim=concat_dim, act=act)
    all_cbs = [*(cbs if isinstance(cbs, (list, tuple)) else ([] if cbs is None else [cbs])), cb]
    sizes = _LossSizes()
    if with_loss and concat_dim != 0:
        all_cbs.append(sizes)
    with learn.validation_context(cbs=all_cbs, inner=inner):
        if with_loss:
            with learn.loss_not_reduced():
                learn._do_epoch_validate(dl=dl)
        else:
            learn._do_epoch_validate(dl=dl)
    if with_loss and concat_dim != 0:
        cb.losses = _losses_per_row(cb.losses, sizes)
    if idxs is not None:
        _back_to_dataset_order(cb, idxs, concat_dim, dl)
    res: list[Any] = []
    if with_input:
        res.append(cb.inputs[0] if isinstance(cb.inputs, tuple) and len(cb.inputs) == 1 else cb.inputs)
    res += [cb.preds, cb.targets]
    if with_decoded:
        # the loss's `decodes`, or the known one of a torch loss (CrossEntropyLoss: argmax...), else unchanged
        decodes = loss_decodes(learn.loss_func) or _identity
        res.append(None if cb.preds is None else decodes(cb.preds))
    if with_loss:
        res.append(cb.losses)
    return tuple(res)

def _back_to_dataset_order(cb: GatherPredsCallback, idxs: list[int], dim: int, dl: Any) -> None:
    # Item k of the pass is dataset item idxs[k]: a stable argsort puts them in dataset order.
    n = _n_items(cb.preds, dim) if cb.preds is not None else _n_items(cb.targets, dim)
    if n is not None and n != len(idxs):
        raise RuntimeError(
            f"get_preds: the loader {type(dl).__name__} yielded {n} items but its get_idxs() lists {len(idxs)}, so the "
            "predictions cannot be put back in dataset order; pass reorder=False to get them in the loader's order"
        )
    order = torch.tensor(idxs).argsort(stable=True)
    cb.inputs = _reorder(cb.inputs, order, dim)
    cb.preds = _reorder(cb.preds, order, dim)
    cb.targets = _reorder(cb.targets, order, dim)
    if dim == 0:  # joined along another dim, the losses are one per row of the result: that order is unchanged
        cb.losses = _reorder(cb.losses, order, 0)


def predict(learn: Any, item: Any, rm_type_tfms: Any = None, with_input: bool = False) -> tuple:
    """Predict one `item`: `(decoded prediction, prediction as the loss decodes it, probabilities)`.

    The item goes through the validation transforms (`dls.test_dl`); with tiers loaders the first
    value is fully decoded (e.g. the class name). `with_input` prepends the decoded input.
    """
    dl = learn.dls.test_dl([item], rm_type_tfms=rm_type_tfms, num_workers=0)
    inp, preds, _, dec_preds = learn.get_preds(dl=dl, with_input=True, with_decoded=True)
    n_inp = getattr(learn.dls, "n_inp", 1) or 1
    decode_batch = getattr(learn.dls, "decode_batch", None)
    if decode_batch is None:
        dec_inp, dec_targ = inp[0] if n_inp == 1 else inp, dec_preds[0]
    else:
        dec = decode_batch((*_tuplify(inp), *_tuplify(dec_preds)))[0]
        dec_inp, dec_targ = dec[:n_inp], dec[n_inp:]
        dec_inp = dec_inp[0] if len(dec_inp) == 1 else dec_inp
        dec_targ = dec_targ[0] if len(dec_targ) == 1 else dec_targ
    res = (dec_targ, dec_preds[0], preds[0])
    return (dec_inp, *res) if with_input else res

def show_results(learn: Any, ds_idx: int = 1, dl: Any = None, max_n: int = 9, shuffle: bool = True, **kwargs: Any) -> Any:
    """Show `max_n` items of `dls[ds_idx]` with their targets and predictions (tiers loaders only)."""
    if dl is None:
        dl = learn.dls[ds_idx]
        if hasattr(dl, "new") and not isinstance(dl, TorchDataLoader):
            dl = dl.new(shuffle=shuffle)
    if not hasattr(dl, "show_results"):
        raise TypeError(
            f"show_results needs a tiers TfmdDL (it decodes and shows items), not a {type(dl).__name__}; "
            "use get_preds with plain torch loaders"
        )
    b = dl.one_batch()
    _, _, decoded = learn.get_preds(dl=[b], with_decoded=True)
    return dl.show_results(b, decoded, max_n=max_n, **kwargs)


@contextmanager
def _split(ds: Any, i: int) -> Iterator[None]:
    with ds.set_split_idx(i):
        yield


def _with_loader_steps(tfms: Any, old: Any, kinds: tuple[type[Transform], ...]) -> Pipeline:
    # `tfms` replace a loader's pipeline `old` (fastai's `dl.new(after_item=item_tfms)`), but the steps the model
    # depends on are kept: `old`'s steps of `kinds` (ToTensor; IntToFloatTensor, Normalize) that `tfms` has no step
    # of the same class of. Without them, PIL images reach the batch pipeline, or unnormalised floats the model.
    pipe = tfms if isinstance(tfms, Pipeline) else Pipeline(tfms)
    keep = [t for t in getattr(old, "fs", ()) if isinstance(t, kinds) and not any(isinstance(f, type(t)) for f in pipe.fs)]
    return Pipeline([*pipe.fs, *keep], split_idx=pipe.split_idx) if keep else pipe


def tta(
    learn: Any, ds_idx: int = 1, dl: Any = None, n: int = 4, item_tfms: Any = None, batch_tfms: Any = None,
    beta: float | None = 0.25, use_max: bool = False,
) -> tuple:
    """Test-time augmentation (see `Learner.tta`): `n` passes with the training transforms, then one plain pass."""
    if n < 1:
        raise ValueError(f"tta: n={n} must be at least 1 (the number of augmented passes)")
    if dl is None:
        dl = learn.dls[ds_idx]
    dl = _unshuffled(dl)
    if item_tfms is not None or batch_tfms is not None:
        if not hasattr(dl, "after_item"):
            raise TypeError(f"tta: item_tfms/batch_tfms need a tiers TfmdDL, not a {type(dl).__name__}")
        kw = {}
        if item_tfms is not None:
            kw["after_item"] = _with_loader_steps(item_tfms, dl.after_item, (ToTensor,))
        if batch_tfms is not None:
            kw["after_batch"] = _with_loader_steps(batch_tfms, dl.after_batch, (IntToFloatTensor, Normalize))
        dl = dl.new(**kw)
    ds = getattr(dl, "dataset", None)
    if not hasattr(ds, "set_split_idx"):
        raise TypeError(
            f"tta: the loader's dataset ({type(ds).__name__}) cannot apply its training transforms to these items "
            "(it has no set_split_idx); use a tiers Datasets/DataBlock loader, or get_preds for plain torch loaders"
        )
    with learn.no_bar():
        with _split(ds, 0):
            aug = torch.stack([learn.get_preds(dl=dl)[0] for _ in range(n)])
        with _split(ds, 1):
            preds, targs = learn.get_preds(dl=dl)
    aug = aug.max(0)[0] if use_max else aug.mean(0)
    if use_max:
        return torch.stack([preds, aug], 0).max(0)[0], targs
    return ((aug, preds) if beta is None else torch.lerp(aug, preds, beta)), targs
