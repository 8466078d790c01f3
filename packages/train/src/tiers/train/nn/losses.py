"""Loss functions that flatten their inputs and know how to turn raw outputs into predictions.

Every loss here is a `BaseLoss`: it moves the class axis last, flattens input and target to
`(N, C)` / `(N,)`, and exposes `activation` (raw output -> probabilities) and `decodes`
(probabilities -> predicted targets). `Learner.get_preds` and `Learner.predict` use those two,
so a new loss only has to say how its outputs read.

>>> loss = CrossEntropyLossFlat()
>>> out, targ = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
>>> loss(out, targ).shape
torch.Size([])
>>> loss.decodes(loss.activation(out)).shape
torch.Size([4])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BaseLoss",
    "CrossEntropyLossFlat",
    "BCEWithLogitsLossFlat",
    "BCELossFlat",
    "MSELossFlat",
    "L1LossFlat",
    "FocalLoss",
    "FocalLossFlat",
    "LabelSmoothingCrossEntropy",
    "LabelSmoothingCrossEntropyFlat",
    "DiceLoss",
]

_SMALL_INTS = (torch.int8, torch.int16, torch.int32, torch.uint8)
_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, owner: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{owner}: reduction={reduction!r} is not one of {_REDUCTIONS}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class _ReducingLoss(Protocol):
    # What `BaseLoss` wraps: a torch loss module (or any callable) whose `reduction` can be read and set.
    reduction: str

    def __call__(self, inp: Tensor, targ: Tensor, **kwargs: Any) -> Tensor: ...


class BaseLoss:
    """Wrap `loss_cls(*args, **kwargs)` so it moves `axis` last and flattens input and target first.

    `flatten=True` reshapes the input to `(N, C)` when `is_2d` (class scores) or `(N,)` otherwise, and
    the target to `(N,)`; `floatify=True` casts the target to float (BCE, MSE). Small integer targets
    become `long`, since torch's classification losses insist on it. Subclasses override `activation`
    and `decodes`; `reduction` can be read and set (get_preds sets it to `'none'` for per-item losses).

    >>> BaseLoss(nn.CrossEntropyLoss)(torch.randn(2, 5, 3), torch.randint(0, 3, (2, 5))).ndim
    0
    """

    y_int: bool = False  # targets are class indices (MixUp-style callbacks read this)

    def __init__(
        self,
        loss_cls: Callable[..., Callable],
        *args: Any,
        axis: int = -1,
        flatten: bool = True,
        floatify: bool = False,
        is_2d: bool = True,
        **kwargs: Any,
    ) -> None:
        self.func = cast(_ReducingLoss, loss_cls(*args, **kwargs))
        self.axis, self.flatten, self.floatify, self.is_2d = axis, flatten, floatify, is_2d
        self.__name__ = type(self).__name__

    def __repr__(self) -> str:
        return f"FlattenedLoss of {self.func}"

    @property
    def reduction(self) -> str:
        """The wrapped loss's reduction (`'mean'`, `'sum'` or `'none'`)."""
        return self.func.reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        self.func.reduction = _check_reduction(value, type(self).__name__)

    def _prepare(self, inp: Tensor, targ: Tensor) -> tuple[Tensor, Tensor]:
        if self.axis != -1 and self.axis != inp.ndim - 1:
            # movedim (not transpose) keeps the other axes in order, so a (bs, h, w) target
            # still lines up with a (bs, C, h, w) output once both are flattened.
            if targ.ndim == inp.ndim:
                targ = targ.movedim(self.axis, -1)
            inp = inp.movedim(self.axis, -1)
        if self.floatify and not targ.is_floating_point():
            targ = targ.float()
        elif targ.dtype in _SMALL_INTS:
            targ = targ.long()
        if self.flatten:
            inp = inp.reshape(-1, inp.shape[-1]) if self.is_2d else inp.reshape(-1)
            targ = targ.reshape(-1)
        return inp, targ

    def __call__(self, inp: Tensor, targ: Tensor, **kwargs: Any) -> Tensor:
        inp, targ = self._prepare(inp, targ)
        if self.flatten and not self.is_2d and inp.numel() != targ.numel():
            raise ValueError(
                f"{type(self).__name__}: prediction has {inp.numel()} values but target has {targ.numel()}; "
                "check the model's output size against the targets"
            )
        return self.func(inp, targ, **kwargs)

    def activation(self, out: Tensor) -> Tensor:
        """Turn raw model outputs into the quantity predictions are read from (identity here)."""
        return out

    def decodes(self, out: Tensor) -> Tensor:
        """Turn activated outputs into predicted targets (identity here)."""
        return out

    def to(self, device: torch.device | str) -> BaseLoss:
        """Move tensor state of the wrapped loss (class weights, `pos_weight`) to `device`."""
        if isinstance(self.func, nn.Module):
            self.func.to(device)
        return self


class CrossEntropyLossFlat(BaseLoss):
    """`nn.CrossEntropyLoss` over flattened input and target; class scores live on `axis`.

    Activation is softmax over `axis`, decoding is argmax. Use `axis=1` for segmentation
    outputs shaped `(bs, n_classes, h, w)`.
    """

    y_int = True

    def __init__(self, *args: Any, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(nn.CrossEntropyLoss, *args, axis=axis, **kwargs)

    def activation(self, out: Tensor) -> Tensor:
        """Softmax over the class axis."""
        return F.softmax(out, dim=self.axis)

    def decodes(self, out: Tensor) -> Tensor:
        """Index of the highest score on the class axis."""
        return out.argmax(dim=self.axis)


class BCEWithLogitsLossFlat(BaseLoss):
    """`nn.BCEWithLogitsLoss` over flattened input and target (multi-label); predicts `sigmoid > thresh`.

    A `pos_weight` must broadcast against the unflattened output, so it turns flattening off.
    """

    def __init__(
        self,
        *args: Any,
        axis: int = -1,
        floatify: bool = True,
        thresh: float = 0.5,
        pos_weight: Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        if pos_weight is not None:
            kwargs["flatten"] = False
            kwargs["pos_weight"] = pos_weight
        super().__init__(nn.BCEWithLogitsLoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)
        self.thresh = thresh

    def activation(self, out: Tensor) -> Tensor:
        """Sigmoid of the logits."""
        return torch.sigmoid(out)

    def decodes(self, out: Tensor) -> Tensor:
        """Probabilities above `thresh`."""
        return out > self.thresh


class BCELossFlat(BaseLoss):
    """`nn.BCELoss` (inputs already probabilities) over flattened tensors; predicts `out > thresh`."""

    def __init__(
        self, *args: Any, axis: int = -1, floatify: bool = True, thresh: float = 0.5, **kwargs: Any
    ) -> None:
        super().__init__(nn.BCELoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)
        self.thresh = thresh

    def decodes(self, out: Tensor) -> Tensor:
        """Probabilities above `thresh`."""
        return out > self.thresh


class MSELossFlat(BaseLoss):
    """`nn.MSELoss` over flattened input and target (regression); predictions are the raw outputs."""

    def __init__(self, *args: Any, axis: int = -1, floatify: bool = True, **kwargs: Any) -> None:
        super().__init__(nn.MSELoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


class L1LossFlat(BaseLoss):
    """`nn.L1Loss` over flattened input and target; predictions are the raw outputs."""

    def __init__(self, *args: Any, axis: int = -1, floatify: bool = True, **kwargs: Any) -> None:
        super().__init__(nn.L1Loss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): cross entropy scaled by `(1 - p_t) ** gamma` to focus on hard items.

    `gamma=0` is plain cross entropy. `weight` are per-class weights as in `nn.CrossEntropyLoss`.
    """

    y_int = True
    weight: Tensor | None  # a buffer (registered in __init__)

    def __init__(self, gamma: float = 2.0, weight: Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)
        self.reduction = _check_reduction(reduction, "FocalLoss")

    def forward(self, inp: Tensor, targ: Tensor) -> Tensor:
        """Per-item `(1-p_t)^gamma * CE`, then reduced."""
        ce = F.cross_entropy(inp, targ, weight=self.weight, reduction="none")
        p_t = torch.exp(-F.cross_entropy(inp, targ, reduction="none")) if self.weight is not None else torch.exp(-ce)
        return _reduce((1 - p_t) ** self.gamma * ce, self.reduction)


class FocalLossFlat(BaseLoss):
    """`FocalLoss` over flattened input and target; softmax activation, argmax decoding."""

    y_int = True

    def __init__(self, *args: Any, gamma: float = 2.0, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(FocalLoss, *args, gamma=gamma, axis=axis, **kwargs)

    def activation(self, out: Tensor) -> Tensor:
        """Softmax over the class axis."""
        return F.softmax(out, dim=self.axis)

    def decodes(self, out: Tensor) -> Tensor:
        """Index of the highest score on the class axis."""
        return out.argmax(dim=self.axis)


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross entropy against targets smoothed to `1-eps` on the true class and `eps/C` spread over all.

    Computed as `eps * mean_c(-log p_c) + (1-eps) * NLL`, which avoids building one-hot targets.
    """

    y_int = True
    weight: Tensor | None  # a buffer (registered in __init__)

    def __init__(self, eps: float = 0.1, weight: Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"LabelSmoothingCrossEntropy: eps={eps} must be in [0, 1)")
        self.eps = eps
        self.register_buffer("weight", weight)
        self.reduction = _check_reduction(reduction, "LabelSmoothingCrossEntropy")

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        """Smoothed cross entropy of `output` (N, C) against class indices `target` (N,)."""
        c = output.size(1)
        log_preds = F.log_softmax(output, dim=1)
        smooth = _reduce(-log_preds.sum(dim=1), self.reduction)
        nll = F.nll_loss(log_preds, target.long(), weight=self.weight, reduction=self.reduction)
        return smooth * self.eps / c + (1 - self.eps) * nll

    def activation(self, out: Tensor) -> Tensor:
        """Softmax over classes."""
        return F.softmax(out, dim=-1)

    def decodes(self, out: Tensor) -> Tensor:
        """Index of the highest score."""
        return out.argmax(dim=-1)


class LabelSmoothingCrossEntropyFlat(BaseLoss):
    """`LabelSmoothingCrossEntropy` over flattened input and target; softmax activation, argmax decoding."""

    y_int = True

    def __init__(self, *args: Any, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(LabelSmoothingCrossEntropy, *args, axis=axis, **kwargs)

    def activation(self, out: Tensor) -> Tensor:
        """Softmax over the class axis."""
        return F.softmax(out, dim=self.axis)

    def decodes(self, out: Tensor) -> Tensor:
        """Index of the highest score on the class axis."""
        return out.argmax(dim=self.axis)


class DiceLoss:
    """Soft Dice loss for segmentation: `1 - 2|A∩B| / (|A|+|B|)` per item, with softmax over `axis`.

    Targets are class-index masks `(bs, h, w)`; outputs are `(bs, C, h, w)` scores. `square_in_union`
    squares the terms of the denominator (V-Net's variant).
    """

    def __init__(
        self, axis: int = 1, smooth: float = 1e-6, reduction: str = "sum", square_in_union: bool = False
    ) -> None:
        self.axis, self.smooth, self.square_in_union = axis, smooth, square_in_union
        self.reduction = _check_reduction(reduction, "DiceLoss")

    def __call__(self, pred: Tensor, targ: Tensor) -> Tensor:
        n_classes = pred.shape[self.axis]
        targ = F.one_hot(targ.long(), n_classes).movedim(-1, self.axis).to(pred.dtype)
        pred = self.activation(pred)
        sum_dims = tuple(range(2, pred.ndim))
        inter = (pred * targ).sum(dim=sum_dims)
        union = (pred * pred + targ * targ).sum(dim=sum_dims) if self.square_in_union else (pred + targ).sum(dim=sum_dims)
        dice = (2.0 * inter + self.smooth) / (union + self.smooth)  # (bs, C)
        return _reduce(1 - dice, self.reduction)

    def activation(self, out: Tensor) -> Tensor:
        """Softmax over the class axis."""
        return F.softmax(out, dim=self.axis)

    def decodes(self, out: Tensor) -> Tensor:
        """Index of the highest score on the class axis."""
        return out.argmax(dim=self.axis)
