"""Inference with a `Learner`: `get_preds` over a whole loader, `predict` for one item, `show_results`.

Predictions go through the loss function's `activation` (softmax, sigmoid...) batch by batch and
straight to the CPU, so memory holds the outputs and nothing more; `decodes` of the loss turns
them into predicted targets (`with_decoded`).

>>> probs, targs = learn.get_preds()                       # doctest: +SKIP
>>> label, idx, probs = learn.predict(item)                 # doctest: +SKIP
"""

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import RandomSampler

from tiers.train.callbacks.core import GatherPredsCallback

__all__ = ["PredictMixin"]


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


def _accepts_reduction(f: Any) -> bool:
    try:
        return "reduction" in inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False


def _tuplify(o: Any) -> tuple:
    return tuple(o) if isinstance(o, (tuple, list)) else (o,)


class PredictMixin:
    """`get_preds`, `predict`, `show_results` and `loss_not_reduced` of `Learner`."""

    @contextmanager
    def loss_not_reduced(self) -> Iterator[None]:
        """Context manager: the loss function returns one loss per item inside the block."""
        lf = self.loss_func
        if hasattr(lf, "reduction"):
            old = lf.reduction
            lf.reduction = "none"
            try:
                yield
            finally:
                lf.reduction = old
        elif _accepts_reduction(lf):
            self.loss_func = partial(lf, reduction="none")
            try:
                yield
            finally:
                self.loss_func = lf
        else:
            raise TypeError(
                f"with_loss: the loss function {getattr(lf, '__name__', lf)!r} has no `reduction` setting, so "
                "per-item losses cannot be computed; give it a reduction='none' option"
            )

    def get_preds(
        self, ds_idx: int = 1, dl: Any = None, with_input: bool = False, with_decoded: bool = False,
        with_loss: bool = False, act: Any = None, inner: bool = False, reorder: bool = True, cbs: Any = None,
        concat_dim: int = 0,
    ) -> tuple:
        """Predictions on `dls[ds_idx]` (or `dl`): `([inputs], preds, targets, [decoded], [losses])`.

        `preds` are activated by `act` (default: the loss's `activation`); `decoded` by the loss's
        `decodes`; `losses` are per item. Results are in dataset order (`reorder`): the loader is
        replaced by an unshuffled copy that keeps the last partial batch.
        """
        if dl is None:
            dl = _unshuffled(self.dls[ds_idx])
        elif reorder:
            dl = _unshuffled(dl)
        if not hasattr(dl, "__len__"):
            raise TypeError(f"get_preds: dl must be a loader (or list of batches) with a length, got {type(dl).__name__}")
        if act is None:
            act = getattr(self.loss_func, "activation", None) or _identity
        cb = GatherPredsCallback(with_input=with_input, with_loss=with_loss, concat_dim=concat_dim, act=act)
        all_cbs = [*(cbs if isinstance(cbs, (list, tuple)) else ([] if cbs is None else [cbs])), cb]
        with self.validation_context(cbs=all_cbs, inner=inner):
            if with_loss:
                with self.loss_not_reduced():
                    self._do_epoch_validate(dl=dl)
            else:
                self._do_epoch_validate(dl=dl)
        res: list[Any] = []
        if with_input:
            res.append(cb.inputs[0] if isinstance(cb.inputs, tuple) and len(cb.inputs) == 1 else cb.inputs)
        res += [cb.preds, cb.targets]
        if with_decoded:
            decodes = getattr(self.loss_func, "decodes", None) or _identity
            res.append(None if cb.preds is None else decodes(cb.preds))
        if with_loss:
            res.append(cb.losses)
        return tuple(res)

    def predict(self, item: Any, rm_type_tfms: Any = None, with_input: bool = False) -> tuple:
        """Predict one `item`: `(decoded prediction, prediction as the loss decodes it, probabilities)`.

        The item goes through the validation transforms (`dls.test_dl`); with tiers loaders the first
        value is fully decoded (e.g. the class name). `with_input` prepends the decoded input.
        """
        dl = self.dls.test_dl([item], rm_type_tfms=rm_type_tfms, num_workers=0)
        inp, preds, _, dec_preds = self.get_preds(dl=dl, with_input=True, with_decoded=True)
        n_inp = getattr(self.dls, "n_inp", 1) or 1
        decode_batch = getattr(self.dls, "decode_batch", None)
        if decode_batch is None:
            dec_inp, dec_targ = inp[0] if n_inp == 1 else inp, dec_preds[0]
        else:
            dec = decode_batch((*_tuplify(inp), *_tuplify(dec_preds)))[0]
            dec_inp, dec_targ = dec[:n_inp], dec[n_inp:]
            dec_inp = dec_inp[0] if len(dec_inp) == 1 else dec_inp
            dec_targ = dec_targ[0] if len(dec_targ) == 1 else dec_targ
        res = (dec_targ, dec_preds[0], preds[0])
        return (dec_inp, *res) if with_input else res

    def show_results(self, ds_idx: int = 1, dl: Any = None, max_n: int = 9, shuffle: bool = True, **kwargs: Any) -> Any:
        """Show `max_n` items of `dls[ds_idx]` with their targets and predictions (tiers loaders only)."""
        if dl is None:
            dl = self.dls[ds_idx]
            if hasattr(dl, "new") and not isinstance(dl, TorchDataLoader):
                dl = dl.new(shuffle=shuffle)
        if not hasattr(dl, "show_results"):
            raise TypeError(
                f"show_results needs a tiers TfmdDL (it decodes and shows items), not a {type(dl).__name__}; "
                "use get_preds with plain torch loaders"
            )
        b = dl.one_batch()
        _, _, decoded = self.get_preds(dl=[b], with_decoded=True)
        return dl.show_results(b, decoded, max_n=max_n, **kwargs)
