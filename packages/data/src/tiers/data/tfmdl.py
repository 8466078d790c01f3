"""`TfmdDL`: a `DataLoader` whose `after_item`, `before_batch` and `after_batch` are Pipelines of transforms, and
which can decode and show its batches."""

from torch import Tensor

from tiers.data.load import DataLoader
from tiers.dispatch import L, detuplify, retain_types
from tiers.pipeline import Pipeline
from tiers.tensors import to_cpu, to_device

__all__ = ["TfmdDL", "batch_to_samples"]

_BATCH_TFMS = ("after_item", "before_batch", "after_batch")


def _is_column(o) -> bool:
    "A collated batch element (not a structure to split): a tensor, or a list of non-tensor values (strings...)."
    if isinstance(o, Tensor):
        return True
    return isinstance(o, list) and not any(isinstance(x, Tensor | tuple | list) for x in o)


def batch_to_samples(b, max_n: int = 9) -> L:
    """Turn a batch into a list of (at most `max_n`) samples with the same structure as the batch, keeping types.

    >>> import torch
    >>> batch_to_samples((torch.tensor([1, 2]), ["a", "b"]))
    (#2) [(tensor(1), 'a'), (tensor(2), 'b')]
    """
    if _is_column(b):
        return L(list(b[:max_n]))
    cols = [batch_to_samples(o, max_n) for o in b]
    return L(tuple(s) for s in zip(*cols))


def _types_of(o):
    "The nested structure of types of a batch, for `retain_types(typs=...)`."
    if isinstance(o, tuple | list) and not _is_column(o):
        return tuple(_types_of(x) for x in o)
    return type(o)


class TfmdDL(DataLoader):
    """A `DataLoader` (default `bs=64`) whose `after_item`, `before_batch` and `after_batch` are `Pipeline`s of
    transforms, set up on the loader itself (so `Normalize` can compute statistics from a batch). Each epoch, the
    pipelines get the dataset's `split_idx`. `decode(b)` re-types a collated batch and decodes `after_batch`;
    `decode_batch` goes on to per-sample decoding; `show_batch` and `show_results` display through the
    type-dispatched `show_batch` / `show_results`. `num_workers=None` means 0 (no worker processes)."""

    def __init__(self, dataset, bs: int | None = 64, shuffle: bool = False, num_workers: int | None = None,
                 verbose: bool = False, do_setup: bool = True, **kwargs):
        if num_workers is None:
            num_workers = 0
        for nm in _BATCH_TFMS:
            v = kwargs.get(nm)
            kwargs[nm] = v if isinstance(v, Pipeline) else Pipeline(v)
        super().__init__(dataset, bs=bs, shuffle=shuffle, num_workers=num_workers, **kwargs)
        if do_setup:
            for nm in _BATCH_TFMS:
                if verbose:
                    print(f"Setting up {nm}: {kwargs[nm]}")
                kwargs[nm].setup(self)

    def before_iter(self) -> None:
        "Give the transforms the dataset's `split_idx` (so training-only transforms skip validation data)."
        super().before_iter()
        split_idx = getattr(self.dataset, "split_idx", None)
        for nm in _BATCH_TFMS:
            f = getattr(self, nm)
            if isinstance(f, Pipeline):
                f.split_idx = split_idx

    # ---- one pass: how many inputs, and the types a batch should have ---------------------------------------------
    def _one_pass(self) -> None:
        if self.n is not None and self.n == 0:
            raise ValueError("This TfmdDL has an empty dataset: there is no batch to learn the types from.")
        self.before_iter()
        b = self.do_batch([self.do_item(0 if self.indexed else None)]) if self.bs is not None else \
            self.do_batch(self.do_item(0 if self.indexed else None))
        if self.device is not None:
            b = to_device(b, self.device)
        its = self.after_batch(b)
        self._n_inp = 1 if not isinstance(its, tuple | list) or len(its) == 1 else len(its) - 1
        self._types = _types_of(its)
        self.__dict__.pop("it", None)

    @property
    def n_inp(self) -> int:
        "How many elements of a batch are inputs: the dataset's `n_inp`, else all but the last."
        n = getattr(self.dataset, "n_inp", None)
        if n is not None:
            return n
        if "_n_inp" not in self.__dict__:
            self._one_pass()
        return self._n_inp

    def _retain_dl(self, b):
        if "_types" not in self.__dict__:
            self._one_pass()
        return retain_types(b, typs=self._types)

    # ---- decoding and showing ------------------------------------------------------------------------------------
    def decode(self, b):
        "Re-type the collated batch `b`, decode it through `after_batch` and move it to the CPU."
        return to_cpu(self.after_batch.decode(self._retain_dl(b)))

    def _decode_batch(self, b, max_n: int = 9, full: bool = True) -> L:
        ds_decode = getattr(self.dataset, "decode", None)

        def f(s):
            s = self.before_batch.decode(s)
            s = self.after_item.decode(s)
            return ds_decode(s, full=full) if ds_decode is not None else s

        return L(f(s) for s in batch_to_samples(b, max_n=max_n))

    def decode_batch(self, b, max_n: int = 9, full: bool = True) -> L:
        "Decode the batch `b` into (at most `max_n`) samples, through the item transforms and the dataset."
        return self._decode_batch(self.decode(b), max_n, full)

    def _pre_show_batch(self, b, max_n: int = 9):
        b = self.decode(b)
        if hasattr(b, "show"):
            return b, None, None
        its = self._decode_batch(b, max_n, full=False)
        if not isinstance(b, tuple | list):
            b, its = [b], L((o,) for o in its)
        return detuplify(b[: self.n_inp]), detuplify(b[self.n_inp:]), its

    def show_batch(self, b=None, max_n: int = 9, ctxs=None, show: bool = True, unique: bool = False, **kwargs):
        """Show (at most `max_n`) samples of the batch `b` (default: `one_batch()`); with `unique`, the same item
        `max_n` times (to see random augmentations). With `show=False`, return `(inputs, targets, samples)`."""
        from tiers.data.show import show_batch

        if b is None:
            if unique:
                old = self.__dict__.get("get_idxs")
                self.get_idxs = lambda: [0] * (self.bs or 1)
                try:
                    b = self.one_batch()
                finally:
                    if old is None:
                        del self.get_idxs
                    else:
                        self.get_idxs = old
            else:
                b = self.one_batch()
        if not show:
            return self._pre_show_batch(b, max_n=max_n)
        return show_batch(*self._pre_show_batch(b, max_n=max_n), ctxs=ctxs, max_n=max_n, **kwargs)

    def show_results(self, b, out, max_n: int = 9, ctxs=None, show: bool = True, **kwargs):
        """Show the samples of batch `b` next to the decoded model outputs `out` (predictions as the targets' types).
        With `show=False`, return `(inputs, targets, samples, outputs)`."""
        from tiers.data.show import show_results

        x, y, its = self.show_batch(b, max_n=max_n, show=False)
        outs = tuple(out) if isinstance(out, tuple | list) else (out,)
        b_out = type(b)(tuple(b[: self.n_inp]) + outs) if isinstance(b, tuple) else (*b[: self.n_inp], *outs)
        x1, y1, outs_its = self.show_batch(b_out, max_n=max_n, show=False)
        res = (x, x1, None, None) if its is None else (x, y, its, L(o[self.n_inp:] for o in outs_its))
        if not show:
            return res
        return show_results(*res, ctxs=ctxs, max_n=max_n, **kwargs)

    # ---- device and copies ---------------------------------------------------------------------------------------
    def to(self, device) -> "TfmdDL":
        "Set the device and move the state of the `after_batch` transforms (`to`, or their `parameters`) to it."
        self.device = device
        for tfm in self.after_batch.fs:
            if hasattr(tfm, "to"):
                tfm.to(device)
            else:
                for a in L(getattr(tfm, "parameters", None)):
                    setattr(tfm, a, getattr(tfm, a).to(device))
        return self

    def _new_kwargs(self) -> dict:
        kw = super()._new_kwargs()
        for nm in _BATCH_TFMS:
            p = kw.get(nm)
            if isinstance(p, Pipeline):
                # A copy holding the same transforms: each loader sets its own split_idx, state stays shared.
                kw[nm] = Pipeline(list(p.fs), split_idx=p.split_idx)
        return kw

    def new(self, dataset=None, cls: type | None = None, **kwargs) -> "TfmdDL":
        "A loader like this one (see `DataLoader.new`) whose transforms are already set up."
        kwargs.setdefault("do_setup", False)
        res = super().new(dataset, cls, **kwargs)
        for a in ("_n_inp", "_types"):
            if a in self.__dict__:
                res.__dict__[a] = self.__dict__[a]
        return res
