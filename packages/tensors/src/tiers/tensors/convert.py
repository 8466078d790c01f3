"""Moving batches around: `apply` a function over nested lists/tuples/dicts, device placement, dtype and NumPy
conversion, detaching, batch size, and `as_plain`, which strips the semantic types before the model sees a batch.

The training loop hands plain tensors to the model like this (the per-op cost of type retention then stays out of
the forward and backward passes, while the loss and metrics may still see typed targets):

    xb, yb = to_device(batch)          # typed tensors, on the default device
    pred = model(*as_plain(xb))        # model gets exact torch.Tensor objects (cheap aliases, same memory)
    loss = loss_func(pred, *yb)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tiers.dispatch import L, defaults
from tiers.tensors.base import TensorBase

__all__ = [
    "apply",
    "as_plain",
    "default_device",
    "find_bs",
    "maybe_gather",
    "num_distrib",
    "prefer_device",
    "rank_distrib",
    "to_concat",
    "to_cpu",
    "to_detach",
    "to_device",
    "to_float",
    "to_half",
    "to_np",
]


def _rebuild(like, items: list):
    "A container of `like`'s type holding `items` (namedtuples and other tuple/list/dict subclasses kept)."
    t = type(like)
    if hasattr(t, "_make"):  # namedtuple
        return t._make(items)
    try:
        return t(items)
    except (TypeError, ValueError):
        return (dict if isinstance(like, dict) else list if isinstance(like, list) else tuple)(items)


def _apply(f: Callable, x):
    t = type(x)
    if t is tuple:
        return tuple([_apply(f, o) for o in x])
    if t is list:
        return [_apply(f, o) for o in x]
    if t is dict:
        return {k: _apply(f, v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return _rebuild(x, [_apply(f, o) for o in x])
    if isinstance(x, dict):
        return _rebuild(x, [(k, _apply(f, v)) for k, v in x.items()])
    if isinstance(x, L):
        return type(x)([_apply(f, o) for o in x])
    return f(x)


def apply(func: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> Any:
    """Apply `func(leaf, *args, **kwargs)` to every leaf of `x`, recursing into lists, tuples, dicts and `L`s and
    keeping their types (namedtuples and other tuple/list/dict subclasses included). Leaves are everything else,
    `None` too.

    >>> apply(lambda o: o * 2, {"a": [1, 2], "b": (3,)})
    {'a': [2, 4], 'b': (6,)}

    Unlike fastai, leaves are not re-cast to their input type: typed tensors keep their type through torch ops
    anyway, and this way `apply` can also strip types (see `as_plain`).
    """
    if args or kwargs:
        return _apply(lambda o: func(o, *args, **kwargs), x)
    return _apply(func, x)


def _plain(o):
    return o.as_subclass(Tensor) if isinstance(o, TensorBase) else o


def as_plain(b: Any) -> Any:
    """`b` with every `TensorBase` (at any depth in lists/tuples/dicts) replaced by a plain `torch.Tensor` alias: same
    memory, same autograd graph, no metadata, no per-op overhead. Plain tensors and other leaves are returned as is.

    >>> from tiers.tensors import TensorImage
    >>> type(as_plain((TensorImage([1.]), 2))[0]).__name__
    'Tensor'

    Use it on the model's inputs in the training loop (`model(*as_plain(xb))`), so the model runs on plain tensors.
    """
    if isinstance(b, TensorBase):
        return b.as_subclass(Tensor)
    if type(b) is tuple:  # the usual batch: a flat tuple of tensors
        return tuple([o.as_subclass(Tensor) if isinstance(o, TensorBase) else as_plain(o) for o in b])
    if isinstance(b, (list, tuple, dict, L)):
        return _apply(_plain, b)
    return b


_preferred: Any = None  # set by `prefer_device`; None means "pick automatically"


def _accelerator() -> torch.device | None:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return None


def default_device(use: bool | str | torch.device | None = None) -> torch.device:
    """The device batches and models go to: with `use=None` the device set by `prefer_device`, else
    `defaults.use_cuda` when set, else the first available of CUDA, MPS and CPU; `use=True` demands an
    accelerator (RuntimeError if there is none), `use=False`
    means CPU, and a device or string is returned as a `torch.device`. Changes nothing (see `prefer_device`).

    >>> default_device(False)
    device(type='cpu')
    """
    if use is None:
        use = _preferred
    if use is None:
        use = defaults.use_cuda  # fastai's switch: None automatic, False CPU, True an accelerator
    if use is None:
        return _accelerator() or torch.device("cpu")
    if use is True:
        dev = _accelerator()
        if dev is None:
            raise RuntimeError(
                "default_device(use=True): no CUDA or MPS device is available; pass use=None to fall back to the CPU"
            )
        return dev
    if use is False:
        return torch.device("cpu")
    try:
        return torch.device(use)
    except (RuntimeError, TypeError) as e:
        raise ValueError(
            f"default_device: use={use!r} is not a device; pass None, True, False, 'cpu', 'cuda:0' or a torch.device"
        ) from e


def prefer_device(use: bool | str | torch.device | None = None) -> bool | str | torch.device | None:
    """Set what `default_device()` (and so `to_device` and the data loaders) returns from now on, and return the
    previous setting so it can be restored. `None` restores automatic choice (CUDA, then MPS, then CPU); `False` or
    `"cpu"` forces the CPU; `True` demands an accelerator; a device picks that one. Only tiers' default changes:
    `torch.set_default_device` and tensor creation are untouched.

    >>> old = prefer_device("cpu"); default_device()
    device(type='cpu')
    >>> _ = prefer_device(old)
    """
    global _preferred
    if use is not None and not isinstance(use, bool):
        default_device(use)  # validate now rather than at the next call
    old, _preferred = _preferred, use
    return old


def to_device(b: Any, device: str | torch.device | None = None, non_blocking: bool = False) -> Any:
    """Move every tensor in `b` (nested lists/tuples/dicts) to `device` (default: `default_device()`), keeping types
    and metadata; other leaves are returned as they are. A tensor already there is returned itself (no copy)."""
    if device is None:
        device = default_device()

    def _to(o):
        return o.to(device, non_blocking=non_blocking) if isinstance(o, Tensor) else o

    return apply(_to, b)


def to_cpu(b: Any) -> Any:
    """`to_device(b, "cpu")`."""
    return to_device(b, "cpu")


def _np(o):
    if not isinstance(o, Tensor):
        return o
    o = o.detach().cpu().as_subclass(Tensor)
    if o.dtype is torch.bfloat16:  # NumPy has no bfloat16
        o = o.float()
    return o.numpy()


def to_np(x: Any) -> Any:
    """Every tensor in `x` (nested lists/tuples/dicts) as a NumPy array (detached, on the CPU; bfloat16 as float32)."""
    return apply(_np, x)


def to_half(b: Any) -> Any:
    """Every floating-point tensor in `b` as float16; integer tensors and other leaves unchanged."""
    return apply(lambda o: o.half() if isinstance(o, Tensor) and torch.is_floating_point(o) else o, b)


def to_float(b: Any) -> Any:
    """Every floating-point tensor in `b` as float32; integer tensors and other leaves unchanged."""
    return apply(lambda o: o.float() if isinstance(o, Tensor) and torch.is_floating_point(o) else o, b)


def num_distrib() -> int:
    """The number of processes in distributed training (`torch.distributed` world size, else env `WORLD_SIZE`, else 0)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 0))


def rank_distrib() -> int:
    """This process's rank in distributed training (`torch.distributed` rank, else env `RANK`, else 0)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0))


def maybe_gather(x: Tensor, axis: int = 0) -> Tensor:
    """`x` concatenated along `axis` over all processes when `torch.distributed` runs with more than one; else `x`.
    Every process must call it with tensors of the same shape."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return x
    if x.ndim == 0:
        x = x[None]
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=axis)


def to_detach(b: Any, cpu: bool = True, gather: bool = True) -> Any:
    """Every tensor in `b` detached from the autograd graph, gathered over processes when `gather` and training is
    distributed (`maybe_gather`), and moved to the CPU when `cpu`. Types and metadata are kept."""

    def _detach(o):
        if not isinstance(o, Tensor):
            return o
        o = o.detach()
        if gather:
            o = maybe_gather(o)
        return o.cpu() if cpu else o

    return apply(_detach, b)


def find_bs(b: Any) -> int:
    """The batch size of `b`: the first dimension of its first tensor (or array), searching depth-first through
    lists, tuples and dicts.

    >>> find_bs(([torch.zeros(4, 3)], torch.zeros(4)))
    4
    """
    x = b
    while isinstance(x, (list, tuple, dict, L)):
        if not x:
            raise ValueError(
                f"find_bs: found an empty {type(x).__name__} before any tensor in the batch {b!r:.80}"
            )
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) == 0:
        raise TypeError(
            f"find_bs: the first item of the batch is {type(x).__name__} {x!r:.60}, not a tensor with a batch "
            "dimension; put a tensor (or array) of shape (bs, ...) first"
        )
    return int(shape[0])


def to_concat(xs: list, dim: int = 0) -> Any:
    """Concatenate a list of batches along `dim`, recursing into tuples/lists and dicts (so a list of `(pred, targ)`
    pairs gives one `(preds, targs)` pair). Types and metadata of the first batch are kept. Tensors that cannot be
    concatenated (different shapes off `dim`) give a flat list of their items instead.

    >>> to_concat([(torch.zeros(2), torch.ones(2)), (torch.zeros(3), torch.ones(3))])[0].shape
    torch.Size([5])
    """
    if not xs:
        return xs
    x0 = xs[0]
    if isinstance(x0, (list, tuple)):
        return _rebuild(x0, [to_concat([x[i] for x in xs], dim=dim) for i in range(len(x0))])
    if isinstance(x0, dict):
        return _rebuild(x0, [(k, to_concat([x[k] for x in xs], dim=dim)) for k in x0])
    if not isinstance(x0, Tensor):
        if isinstance(x0, np.ndarray):
            return np.concatenate(xs, axis=dim)
        raise TypeError(
            f"to_concat: cannot concatenate items of type {type(x0).__name__}; pass tensors or arrays"
        )
    try:
        return torch.cat(xs, dim=dim)
    except RuntimeError:
        return [o.select(dim, i) for o in xs for i in range(o.shape[dim])]
