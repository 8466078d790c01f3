"""Small tensor helpers of fastai's `torch_core`: finding the device or first element of a nested batch, adding
several dimensions at once, reordering nested tensors, `logit`, wrapping NumPy functions for tensors, CUDA setup,
a distributed barrier and torch version checks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from tiers.dispatch import defaults, is_listy
from tiers.tensors.base import tensor
from tiers.tensors.convert import num_distrib, to_np

__all__ = ["distrib_barrier", "find_device", "get_first", "interp_1d", "ismin_torch", "item_find", "logit",
           "nested_reorder", "notmax_torch", "np_func", "pca", "setup_cuda", "unsqueeze", "unsqueeze_"]


def item_find(x: Any, idx: Any = 0) -> Any:
    """The leaf reached by taking element `idx` of `x` (a list, tuple or dict: the `idx`-th key when `idx` is an
    int, else the key `idx`) again and again until `x` is not a collection.

    >>> item_find([(1, 2), 3]), item_find({"a": [4]}, "a")
    (1, 4)
    """
    if is_listy(x):
        return item_find(x[idx])
    if isinstance(x, dict):
        key = list(x.keys())[idx] if isinstance(idx, int) else idx
        return item_find(x[key])
    return x


def find_device(b: Any) -> torch.device:
    """The device of the first tensor in the (possibly nested) batch `b`.

    >>> find_device({"x": [torch.zeros(1)], "y": torch.zeros(1)})
    device(type='cpu')
    """
    leaf = item_find(b)
    if not hasattr(leaf, "device"):
        raise TypeError(f"find_device: the first element of the batch is a {type(leaf).__name__}, not a tensor.")
    return leaf.device


def get_first(c: Any) -> Any:
    "The first element of `c`, by position even when `c` is a pandas DataFrame or Series (`c.iloc[0]`)."
    return getattr(c, "iloc", c)[0]


def unsqueeze(x: Tensor, dim: int = -1, n: int = 1) -> Tensor:
    """`x.unsqueeze(dim)` done `n` times: `n` new dimensions of size 1 at `dim`.

    >>> unsqueeze(torch.zeros(3), n=2).shape
    torch.Size([3, 1, 1])
    """
    for _ in range(n):
        x = x.unsqueeze(dim)
    return x


def unsqueeze_(x: Tensor, dim: int = -1, n: int = 1) -> Tensor:
    "`unsqueeze` in place: `x` itself gets the `n` new dimensions."
    for _ in range(n):
        x.unsqueeze_(dim)
    return x


def nested_reorder(t: Any, idxs: Any) -> Any:
    """Every tensor (or `L`) in the nested lists/tuples `t` indexed by `idxs` (to reorder a batch and its targets
    alike); `None` stays `None`.

    >>> nested_reorder((torch.tensor([1, 2, 3]), [torch.tensor([4, 5, 6])]), torch.tensor([2, 0, 1]))
    (tensor([3, 1, 2]), [tensor([6, 4, 5])])
    """
    from tiers.dispatch import L

    if isinstance(t, Tensor | L):
        return t[idxs]
    if is_listy(t):
        return type(t)(nested_reorder(o, idxs) for o in t)
    if t is None:
        return t
    raise TypeError(f"nested_reorder: expected a tensor, a tuple, a list or an L, got a {type(t).__name__}.")


def logit(x: Tensor) -> Tensor:
    """The inverse of the sigmoid, `log(x / (1 - x))`, with `x` clamped to [1e-7, 1 - 1e-7] so 0 and 1 stay finite.

    >>> logit(torch.tensor([0.5])).tolist()
    [0.0]
    """
    x = x.clamp(1e-7, 1 - 1e-7)
    return -(1 / x - 1).log()


def interp_1d(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation of the points (`xp`, `fp`) at `x`, like `np.interp` inside `xp`'s range (`xp`
    increasing); beyond it the first or last segment is extended, as fastai's `Tensor.interp_1d` does.

    >>> interp_1d(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 2.0, 3.0])).tolist()
    [1.0, 4.0]
    """
    if len(xp) < 2 or len(xp) != len(fp):
        raise ValueError(f"interp_1d needs at least two points and as many fp as xp, got {len(xp)} xp and {len(fp)} fp.")
    slopes = (fp[1:] - fp[:-1]) / (xp[1:] - xp[:-1])
    incx = fp[:-1] - slopes * xp[:-1]
    locs = ((x[:, None] >= xp[None, :]).long().sum(1) - 1).clamp(0, len(slopes) - 1)
    return slopes[locs] * x + incx[locs]


def pca(x: Tensor, k: int = 2) -> Tensor:
    """`x` (samples by features) projected on its first `k` principal components (centred, by SVD).

    >>> pca(torch.randn(10, 5), k=2).shape
    torch.Size([10, 2])
    """
    x = x - x.mean(0)
    u, _, _ = torch.linalg.svd(x.t(), full_matrices=False)
    return x @ u[:, :k]


def np_func(f: Callable) -> Callable:
    """Turn a function of NumPy arrays into one of tensors: tensor arguments go in as arrays (detached, on the CPU)
    and the result comes back as a tensor.

    >>> import numpy as np
    >>> np_func(np.maximum)(torch.tensor([1, 5]), torch.tensor([3, 2])).tolist()
    [3, 5]
    """

    @functools.wraps(f)
    def _inner(*args, **kwargs):
        nargs = [to_np(a) if isinstance(a, Tensor) else a for a in args]
        return tensor(f(*nargs, **kwargs))

    return _inner


def setup_cuda(benchmark: bool | None = None) -> None:
    """Make the current process use its CUDA device (`torch.cuda.set_device`, the local rank's under
    distributed training) and set the cuDNN autotuner to `benchmark` (default `defaults.benchmark`). Does nothing
    without CUDA."""
    if not torch.cuda.is_available():
        return
    import os

    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    torch.backends.cudnn.benchmark = defaults.benchmark if benchmark is None else benchmark


def distrib_barrier() -> None:
    "Wait for every process of a distributed run (a no-op outside distributed training)."
    if num_distrib() > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def ismin_torch(min_version: str) -> bool:
    "Whether the installed torch is `min_version` or newer (`ismin_torch('2.0')`)."
    return torch.__version__ >= min_version  # torch's TorchVersion compares with version strings


def notmax_torch(max_version: str) -> bool:
    "Whether the installed torch is older than `max_version`."
    return torch.__version__ < max_version
