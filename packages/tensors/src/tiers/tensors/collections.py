"""Collections that know about tensors: `L.tensored()`, `L.stack()` and `L.cat()`, `concat` of tensors, arrays or
lists, and `Chunks`, a virtual concatenation of sequences (the language-model loader reads its stream through it).

`tiers.dispatch.L` is standard-library only: it declares `tensored`/`stack`/`cat` and this module registers their
torch implementations when `tiers.tensors` is imported (the way higher layers register typedispatch methods), so
there is one `L` class and every `L`, whoever made it, has them. Nothing foreign is patched.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tiers.dispatch import L, retain_type
from tiers.tensors.base import tensor

__all__ = ["L", "Chunks", "concat"]


def _tensored(items: L) -> L:
    return items.map(tensor)


def _stack(items: L, dim: int = 0) -> Tensor:
    return torch.stack(list(_tensored(items)), dim=dim)


def _cat(items: L, dim: int = 0) -> Tensor:
    return torch.cat(list(_tensored(items)), dim=dim)


L._tensor_ops.update(tensored=_tensored, stack=_stack, cat=_cat)


def concat(*ls: Any) -> Any:
    """Concatenate tensors (`torch.cat`), NumPy arrays, or lists/tuples (a list or tuple of the first one's type,
    any other item counting as a one-item list); the result keeps the first argument's type (a `TensorBase`
    subclass, an `L`...).

    >>> concat([1], (2, 3)), concat((1,), [2]), concat(1, L(2, 3))
    ([1, 2, 3], (1, 2), (#3) [1, 2, 3])
    """
    if not ls:
        return []
    it = ls[0]
    if isinstance(it, Tensor):
        return retain_type(torch.cat(ls), it)
    if isinstance(it, np.ndarray):
        return np.concatenate(ls)
    res = itertools.chain.from_iterable(L(o) for o in ls)
    return type(it)(res) if type(it) in (list, tuple) else L(res)


class Chunks:
    """Index a list of sequences `chunks` as if they were concatenated, without copying them: an int gives one
    element (negative counts from the end), a slice gives the concatenation of the pieces it spans (`concat`, so
    tensors stay tensors of the first chunk's type). `lens` (the chunks' lengths) may be given when they are
    known, to avoid measuring them.

    >>> c = Chunks([[0, 1, 2], [3], [4, 5]])
    >>> len(c), c[3], c[-1], c[1:5]
    (6, 3, 5, [1, 2, 3, 4])
    """

    def __init__(self, chunks: Sequence, lens: Iterable[int] | None = None):
        self.chunks = chunks
        self.lens = list(map(len, chunks)) if lens is None else list(lens)
        if len(self.lens) != len(chunks):
            raise ValueError(f"Chunks: {len(self.lens)} lengths given for {len(chunks)} chunks.")
        self.cumlens = [0, *itertools.accumulate(self.lens)]
        self.totlen = self.cumlens[-1]

    def __len__(self) -> int:
        return self.totlen

    def doc_idx(self, i: int) -> tuple[int, int]:
        "The chunk holding element `i` of the concatenation, and `i`'s position in that chunk."
        if i < 0:
            i += self.totlen
        if not 0 <= i < self.totlen:
            raise IndexError(f"Chunks index {i} out of range for {self.totlen} elements.")
        d = bisect.bisect_right(self.cumlens, i) - 1
        return d, i - self.cumlens[d]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.getslice(i)
        d, j = self.doc_idx(int(i))
        return retain_type(self.chunks[d][j], self.chunks[0]) if isinstance(self.chunks[0], Tensor) \
            else self.chunks[d][j]

    def getslice(self, i: slice) -> Any:
        "The elements in the slice `i` (step 1), concatenated."
        start, stop, step = i.indices(self.totlen)
        if step != 1:
            raise ValueError("Chunks: slices with a step are not supported; take the slice, then step through it.")
        pieces = []
        for d, (lo, hi) in enumerate(zip(self.cumlens, self.cumlens[1:])):
            a, b = max(start, lo), min(stop, hi)
            if a < b:
                pieces.append(self.chunks[d][a - lo:b - lo])
        if not pieces:
            return self.chunks[0][0:0] if self.chunks else []
        return concat(*pieces)
