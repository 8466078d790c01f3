"""Random draws shared by the batch augmentation transforms: one parameter per item, with overrides and p."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor

from tiers.dispatch import is_listy

__all__: list[str] = []

# A `draw=` argument of the batch augmentations: None (random), a constant, one value per item, or a function of
# the batch giving either.
Draw = float | Sequence[float] | Callable[[Tensor], Any] | None


def _first_tensor(b) -> Tensor:
    while isinstance(b, (tuple, list)):
        b = b[0]
    if not isinstance(b, Tensor):
        raise TypeError(f"batch augmentation expects a batch of tensors (after collation), got a {type(b).__name__}; "
                        "pass these transforms as batch_tfms, not item_tfms")
    return b


def _uniform(bs: int, lo: float, hi: float, x: Tensor) -> Tensor:
    return torch.empty(bs, device=x.device).uniform_(lo, hi)


def _draw(x: Tensor, default: Callable[[int], Tensor], draw: Draw = None, p: float = 1.0, neutral: float = 0.0,
          batch: bool = False) -> Tensor:
    """One parameter per item of batch `x`: drawn by `default(n)` (or given by `draw`), `neutral` where the
    Bernoulli(`p`) draw says not to apply. `batch=True` uses one draw and one coin for the whole batch."""
    bs = x.shape[0]
    if draw is None:
        res = default(1).expand(bs) if batch else default(bs)
    elif callable(draw):
        res = torch.as_tensor(draw(x), dtype=torch.float32, device=x.device).expand(bs)
    elif is_listy(draw):
        vals = cast(Sequence[float], draw)  # is_listy: a list, tuple or L of values
        if len(vals) < bs:
            raise ValueError(f"draw has {len(vals)} values for a batch of {bs}; give one per item (or a constant)")
        res = torch.tensor(list(vals)[:bs], dtype=torch.float32, device=x.device)
    else:
        res = torch.full((bs,), float(cast(float, draw)), device=x.device)  # a constant: the one remaining case
    res = res.float()
    if p >= 1.0:
        return res
    coin = torch.rand(1 if batch else bs, device=x.device) < p
    return torch.where(coin.expand(bs), res, torch.full_like(res, neutral))
