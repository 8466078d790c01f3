"""`MixUp` and `CutMix`: train on blends of pairs of samples, with the loss blended the same way.

A loss whose targets are class indices (`y_int`: `CrossEntropyLossFlat`..., or a loss without `y_int` given integer
targets, e.g. `nn.CrossEntropyLoss`) gets the blend of its losses on both targets. Any other loss (`y_int=False`:
multi-label `BCEWithLogitsLossFlat`, regression `MSELossFlat`, or float targets) trains on the blended targets
instead (`torch.lerp`, soft multi-hot labels), as fastai does.

>>> learn.fit_one_cycle(5, cbs=MixUp(0.4))                  # doctest: +SKIP
"""

from typing import Any

import torch
from torch import Tensor
from torch.distributions.beta import Beta

from tiers.train.callbacks.core import Callback

__all__ = ["MixHandler", "MixUp", "CutMix", "reduce_loss"]


def reduce_loss(loss: Tensor, reduction: str | None = "mean") -> Tensor:
    """Reduce a per-sample `loss` by `reduction` ('mean', 'sum', or 'none'/None to keep it)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction in ("none", None):
        return loss
    raise ValueError(f"reduce_loss: reduction={reduction!r} must be 'mean', 'sum' or 'none'")


def _lerp_loss(loss_func: Any, pred: Any, y: Tensor, y1: Tensor, lam: Tensor) -> Tensor:
    # Per-sample losses when the loss has a `reduction` switch, so each sample gets its own weight.
    red = getattr(loss_func, "reduction", None)
    if red in ("mean", "sum") and lam.ndim:
        loss_func.reduction = "none"
        try:
            l0, l1 = loss_func(pred, y), loss_func(pred, y1)
        finally:
            loss_func.reduction = red
        w = lam.view(-1, *([1] * (l0.ndim - 1))) if l0.ndim else lam.mean()
        out = l1 + w * (l0 - l1)
        return out.mean() if red == "mean" else out.sum()
    lam = lam.mean()
    return loss_func(pred, y1) + lam * (loss_func(pred, y) - loss_func(pred, y1))


def _int_targets(loss_func: Any, yb: tuple) -> bool:
    # Whether the targets are class indices (blend the losses) rather than values that can be blended themselves:
    # the loss's `y_int` when it has one (fastai's flag), else whether any target is an integer tensor.
    y_int = getattr(loss_func, "y_int", None)
    if y_int is not None:
        return bool(y_int)
    return any(isinstance(y, Tensor) and not (y.is_floating_point() or y.is_complex()) for y in yb)


class MixHandler(Callback):
    """Base of `MixUp`/`CutMix`: draws `lam ~ Beta(alpha, alpha)`, mixes each batch with a shuffled copy
    during training, and replaces the loss by the same blend of the losses on both targets; for a loss without
    integer targets (`y_int` False: multi-label, regression) the targets are blended instead and the loss kept."""

    order = -7  # before the model sees the batch, after device placement
    run_valid = False
    yb1: tuple[Tensor, ...] | None  # the shuffled targets of this batch (set by before_batch)
    lam: Tensor  # the mixing weights of this batch

    def __init__(self, alpha: float = 0.5) -> None:
        if not alpha > 0:
            raise ValueError(f"{type(self).__name__}: alpha={alpha!r} must be > 0")
        self.alpha = alpha
        self.distrib = Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))

    def _shuffle(self) -> Tensor:
        x = self.learn.xb[0]
        return torch.randperm(x.shape[0], device=x.device)

    def _mix_targets(self, shuffle: Tensor) -> None:
        # Class-index targets: keep them, remember the shuffled ones for `after_loss`'s blend of losses. Others:
        # `lerp(y_shuffled, y, lam)` now (integer 0/1 targets of such a loss become float), and no loss blend.
        learn = self.learn
        yb1 = tuple(y[shuffle] for y in learn.yb)
        if _int_targets(learn.loss_func, learn.yb):
            self.yb1 = yb1
            return
        mixed = []
        for y, y1 in zip(learn.yb, yb1):
            if not y.is_floating_point():
                y, y1 = y.float(), y1.float()
            lam = self.lam.to(device=y.device, dtype=y.dtype)
            w = lam.view(-1, *([1] * (y.ndim - 1))) if lam.ndim and y.ndim else lam.mean()
            mixed.append(torch.lerp(y1, y, w))
        learn.yb = tuple(mixed)
        self.yb1 = None

    def after_loss(self) -> None:
        """Blend the loss on the original and the shuffled targets (training only)."""
        learn = self.learn
        yb1 = getattr(self, "yb1", None)
        if not learn.training or not learn.yb or yb1 is None:
            return
        learn.loss_grad = _lerp_loss(learn.loss_func, learn.pred, learn.yb[0], yb1[0], self.lam)
        learn.loss = learn.loss_grad.detach()

    def after_batch(self) -> None:
        """Forget this batch's mix."""
        self.yb1 = None


class MixUp(MixHandler):
    """MixUp (Zhang et al. 2017): `x = lam*x_i + (1-lam)*x_j` with a per-sample `lam = max(l, 1-l)`, `l ~ Beta(alpha, alpha)`."""

    def __init__(self, alpha: float = 0.4) -> None:
        super().__init__(alpha)

    def before_batch(self) -> None:
        """Mix inputs with a shuffled copy of the batch."""
        learn = self.learn
        x = learn.xb[0]
        bs = x.shape[0]
        lam = self.distrib.sample((bs,))
        lam = torch.stack([lam, 1 - lam], 1).max(1)[0].to(x.device)
        self.lam = lam
        shuffle = self._shuffle()
        self._mix_targets(shuffle)
        w = lam.view(-1, *([1] * (x.ndim - 1)))
        learn.xb = tuple(
            (xi.float() * w + xi[shuffle].float() * (1 - w)).to(xi.dtype) if xi.is_floating_point() else xi for xi in learn.xb
        )


class CutMix(MixHandler):
    """CutMix (Yun et al. 2019): paste a random box of a shuffled image; `lam` is the kept area fraction."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha)

    def before_batch(self) -> None:
        """Paste one random box from the shuffled batch into every image."""
        learn = self.learn
        x = learn.xb[0]
        if x.ndim < 3:
            raise ValueError(f"CutMix: inputs must be images (..., H, W); got shape {tuple(x.shape)}")
        H, W = x.shape[-2:]
        lam = float(self.distrib.sample())
        rh, rw = int(H * (1 - lam) ** 0.5), int(W * (1 - lam) ** 0.5)
        cy, cx = int(torch.randint(0, H, ())), int(torch.randint(0, W, ()))
        y1, y2 = max(cy - rh // 2, 0), min(cy + rh // 2, H)
        x1, x2 = max(cx - rw // 2, 0), min(cx + rw // 2, W)
        shuffle = self._shuffle()
        x = x.clone()
        x[..., y1:y2, x1:x2] = x[shuffle][..., y1:y2, x1:x2]
        learn.xb = (x, *learn.xb[1:])
        self.lam = torch.tensor(1 - (y2 - y1) * (x2 - x1) / (H * W))
        self._mix_targets(shuffle)
