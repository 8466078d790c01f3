"""`default_loss`: the loss a `Learner` uses when none is given, chosen from the target's type.

It is a `typedispatch` function, so higher layers register their own target types:

>>> from tiers.dispatch import typedispatch
>>> class TensorAngle(torch.Tensor): ...
>>> @typedispatch
... def default_loss(targ: TensorAngle): return MSELossFlat()
"""

import numbers
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from tiers.dispatch import typedispatch
from tiers.tensors.semantic import TensorCategory, TensorMask, TensorMultiCategory
from tiers.train.nn.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

__all__ = ["default_loss", "loss_for_batch"]


@typedispatch
def default_loss(targ: TensorCategory):
    """Single-label classification: `CrossEntropyLossFlat()`."""
    return CrossEntropyLossFlat()


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: TensorMultiCategory):  # noqa: F811
    """Multi-label classification: `BCEWithLogitsLossFlat()`."""
    return BCEWithLogitsLossFlat()


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: TensorMask):  # noqa: F811
    """Segmentation masks of class codes: `CrossEntropyLossFlat(axis=1)` (classes on the channel axis)."""
    return CrossEntropyLossFlat(axis=1)


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: Tensor):  # noqa: F811
    """A plain tensor: integers are class indices (cross entropy), floats are regression (MSE), bools multi-label."""
    if targ.dtype == torch.bool:
        return BCEWithLogitsLossFlat()
    if targ.is_floating_point():
        return MSELossFlat()
    return CrossEntropyLossFlat()


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: numbers.Integral):  # noqa: F811
    """A Python or NumPy integer label: cross entropy."""
    return CrossEntropyLossFlat()


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: numbers.Real):  # noqa: F811
    """A Python float target: MSE."""
    return MSELossFlat()


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: np.ndarray):  # noqa: F811
    """A NumPy array: decided like the tensor it becomes."""
    return default_loss(torch.from_numpy(np.asarray(targ)))


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: np.generic):  # noqa: F811
    """A NumPy scalar: decided like the tensor it becomes."""
    return default_loss(torch.as_tensor(targ))


def loss_for_batch(targets: tuple, where: str = "the data") -> Callable[..., Tensor]:
    """`default_loss` of the first of `targets` (a batch's or an item's target part), with a clear error."""
    if not targets:
        raise ValueError(
            f"Learner: {where} has no target (the batch holds only inputs), so no loss can be chosen; "
            "pass loss_func=..., or set n_inp on the data"
        )
    targ = targets[0]
    try:
        return default_loss(targ)
    except TypeError:
        raise TypeError(
            f"Learner: no default loss for targets of type {type(targ).__name__} from {where}; pass loss_func=... "
            "or register one with `@typedispatch def default_loss(targ: YourType)`"
        ) from None
