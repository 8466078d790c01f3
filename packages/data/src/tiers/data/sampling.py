"""Loaders that sample their epoch differently: `WeightedDL` draws items with probabilities proportional to
weights (to oversample rare classes), `PartialDL` uses a random part of the data each epoch (quick experiments on a
large dataset). `Datasets.weighted_dataloaders` / `partial_dataloaders` use them for the training set."""

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from tiers.data.tfmdl import TfmdDL

__all__ = ["PartialDL", "WeightedDL"]


class WeightedDL(TfmdDL):
    """A `TfmdDL` that, when shuffling, draws each epoch's `n` items with replacement, item `i` with probability
    `wgts[i] / sum(wgts)` (uniform when `wgts` is None). Without shuffling (validation) it reads the items in order.

    >>> dl = WeightedDL(list(range(4)), bs=4, wgts=[0, 0, 0, 1], shuffle=True)
    >>> dl.one_batch().tolist()
    [3, 3, 3, 3]
    """

    def __init__(self, dataset: Any = None, bs: int | None = None, wgts: Iterable[float] | None = None,
                 **kwargs: Any):
        n = len(dataset)
        w = np.ones(n) if wgts is None else np.asarray(list(wgts) if not hasattr(wgts, "__array__") else wgts,
                                                       dtype=float)
        if w.ndim != 1 or len(w) != n:
            raise ValueError(f"WeightedDL: {w.size} weights for {n} items; give one weight per item of the training "
                             "set (DataBlock.weighted_dataloaders takes one per item of the source and picks them).")
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if len(bad):
            raise ValueError(f"WeightedDL: weights must be finite and >= 0; items {bad[:10].tolist()} have "
                             f"{w[bad[:10]].tolist()}.")
        if n and w.sum() == 0:
            raise ValueError("WeightedDL: every weight is 0, so no item can be drawn; give some items a weight > 0.")
        self.wgts = w / w.sum() if n else w
        super().__init__(dataset, bs=bs, **kwargs)

    def get_idxs(self) -> Iterable:
        "`n` indices drawn with replacement according to the weights (in order when not shuffling)."
        if not self.shuffle or not self.n:
            return super().get_idxs()
        g = torch.Generator().manual_seed(self.rng.getrandbits(63))
        return torch.multinomial(torch.as_tensor(self.wgts), self.n, replacement=True, generator=g).tolist()


class PartialDL(TfmdDL):
    """A `TfmdDL` whose epochs use `partial_n` items drawn at random without replacement (all of them when
    `partial_n` is None or larger than the dataset); its length counts those items' batches."""

    def __init__(self, dataset: Any = None, bs: int | None = None, partial_n: int | None = None, **kwargs: Any):
        super().__init__(dataset, bs=bs, **kwargs)
        if partial_n is not None and (not isinstance(partial_n, int | np.integer) or partial_n < 1):
            raise ValueError(f"PartialDL: partial_n must be a positive int or None, got {partial_n!r}.")
        if partial_n is not None and self.n is None:
            raise ValueError(self._unsized(partial_n))
        self.partial_n = min(int(partial_n), self.n) if partial_n is not None and self.n is not None else partial_n

    def get_idxs(self) -> Iterable:
        "`partial_n` distinct random indices (every index, as usual, when `partial_n` is None)."
        if self.partial_n is None:
            return super().get_idxs()
        n = self.n
        if n is None:  # refused by the constructor; reached only when `n` was unset afterwards
            raise ValueError(self._unsized(self.partial_n))
        g = torch.Generator().manual_seed(self.rng.getrandbits(63))
        return torch.randperm(n, generator=g)[: self.partial_n].tolist()

    def _unsized(self, partial_n: int) -> str:
        return (f"PartialDL: partial_n={partial_n} draws items from a dataset of known size, but this "
                f"{type(self.dataset).__name__} has no len() (and no n= was given); pass a dataset with __len__ and "
                "__getitem__ (a list, a Datasets), pass n=, or leave partial_n=None.")

    def __len__(self) -> int:
        if self.partial_n is None:
            return super().__len__()
        if self.bs is None:
            return self.partial_n
        return self.partial_n // self.bs if self.drop_last else -(-self.partial_n // self.bs)
