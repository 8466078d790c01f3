"""Generic tensor transforms: `ToTensor`, `IntToFloatTensor`, `Normalize` (and `broadcast_vec`)."""

from collections.abc import Sequence

import torch
from torch import Tensor

from tiers.data.load import DataLoader
from tiers.dispatch import L
from tiers.pipeline import DisplayedTransform, Transform
from tiers.tensors import TensorImage, TensorMask, default_device, tensor, to_cpu

__all__ = ["ToTensor", "IntToFloatTensor", "Normalize", "broadcast_vec"]


class ToTensor(Transform):
    """Convert items to tensors of their semantic type. Empty here: the application layers add methods for their
    types (`@ToTensor def encodes(self, o: PILImage): ...`). Every `TransformBlock` puts it first in its item
    transforms."""

    order = 5


class IntToFloatTensor(DisplayedTransform):
    """Turn integer images into floats divided by `div` (255 by default) and masks into longs divided by `div_mask`;
    decoding multiplies images back (clamped to [0, 1] first)."""

    order = 10

    def __init__(self, div: float = 255.0, div_mask: int = 1):
        self.div, self.div_mask = div, div_mask

    def encodes(self, o: TensorImage):
        return o.float().div_(self.div)

    def encodes(self, o: TensorMask):  # type: ignore[no-redef]  # noqa: F811 (one method per type)
        return o.long() // self.div_mask

    def decodes(self, o: TensorImage):
        return (o.clamp(0.0, 1.0) * self.div).long() if self.div else o


def broadcast_vec(dim: int, ndim: int, *t: float | Sequence[float] | Tensor, cuda: bool = True) -> list[Tensor]:
    """Each of `t` as a tensor shaped to broadcast along dimension `dim` of an `ndim`-dimensional batch (on the
    default device when `cuda`).

    >>> [o.shape for o in broadcast_vec(1, 4, [0.5, 0.5, 0.5], cuda=False)]
    [torch.Size([1, 3, 1, 1])]
    """
    v = [1] * ndim
    v[dim] = -1
    dev = default_device() if cuda else torch.device("cpu")
    return [tensor(o).float().view(*v).to(dev) for o in t]


class Normalize(DisplayedTransform):
    """Normalize image batches to `(x - mean) / std` over the batch axes `axes`; decode back. Without `mean` and
    `std`, `setup` computes them from one batch of the loader it is set up on. Build it from per-channel statistics
    with `Normalize.from_stats(mean, std)`. `mean` and `std` move with the loader's device. The same class is the
    tabular proc (`procs=[Normalize]`): `tiers.tabular` registers its DataFrame behaviour on it."""

    order = 99
    parameters = L("mean", "std")

    def __init__(self, mean: Tensor | float | None = None, std: Tensor | float | None = None,
                 axes: tuple = (0, 2, 3)):
        self.mean, self.std, self.axes = mean, std, axes

    @classmethod
    def from_stats(cls, mean: float | Sequence[float] | Tensor, std: float | Sequence[float] | Tensor, dim: int = 1,
                   ndim: int = 4, cuda: bool = True) -> "Normalize":
        "A Normalize for per-channel statistics `mean` and `std` (channels on dimension `dim` of `ndim`)."
        mean_t, std_t = broadcast_vec(dim, ndim, mean, std, cuda=cuda)
        return cls(mean_t, std_t)

    def setups(self, dl: DataLoader):
        if self.mean is None or self.std is None:
            b = dl.one_batch()
            x = b[0] if isinstance(b, tuple | list) else b
            if not isinstance(x, TensorImage):
                return  # nothing this transform would normalize (it acts on images only)
            x = x.float()
            self.mean = x.mean(self.axes, keepdim=True)
            self.std = x.std(self.axes, keepdim=True) + 1e-7

    def _stats(self) -> tuple[Tensor | float, Tensor | float]:
        mean, std = self.mean, self.std
        if mean is None or std is None:
            unset = " and ".join(k for k, v in (("mean", mean), ("std", std)) if v is None)
            raise ValueError(f"Normalize has no statistics to apply ({unset} not set): pass mean and std "
                             "(Normalize.from_stats(mean, std) for per-channel values), or set it up on a loader "
                             "whose first batch element is an image, from which it computes them.")
        return mean, std

    def encodes(self, x: TensorImage):
        mean, std = self._stats()
        return (x - mean) / std

    def decodes(self, x: TensorImage):
        mean, std = self._stats()
        f = to_cpu if x.device.type == "cpu" else (lambda o: o)
        return x * f(std) + f(mean)

    def to(self, device: str | torch.device) -> "Normalize":
        "Move `mean` and `std` to `device`."
        for a in self.parameters:
            v = getattr(self, a)
            if isinstance(v, torch.Tensor):
                setattr(self, a, v.to(device))
        return self
