"""Basic layers (paper 4.8): small modules, normalisation, the conv/linear blocks and activations.

>>> body = nn.Sequential(ConvLayer(3, 16, stride=2), ConvLayer(16, 32, stride=2))
>>> head = nn.Sequential(AdaptiveConcatPool2d(), Flatten(), LinBnDrop(64, 10, p=0.1))
>>> nn.Sequential(body, head)(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""

from collections.abc import Callable
from enum import Enum
from typing import Any, cast

import torch
from torch import Tensor, nn

__all__ = [
    "Module",
    "Identity",
    "Lambda",
    "PartialLambda",
    "Flatten",
    "View",
    "ResizeBatch",
    "SequentialEx",
    "MergeLayer",
    "ProdLayer",
    "Cat",
    "AdaptiveConcatPool1d",
    "AdaptiveConcatPool2d",
    "AvgPool",
    "MaxPool",
    "AdaptiveAvgPool",
    "NormType",
    "BatchNorm",
    "InstanceNorm",
    "BatchNorm1dFlat",
    "trunc_normal_",
    "init_default",
    "init_linear",
    "ConvLayer",
    "LinBnDrop",
    "SigmoidRange",
    "sigmoid_range",
    "Embedding",
    "Mish",
    "Swish",
    "MishJit",
    "MishJitAutoFn",
    "SwishJit",
    "norm_types",
]


class Module(nn.Module):
    """`nn.Module` whose subclasses may skip `super().__init__()`: the base is initialised in `__new__`.

    >>> class Double(Module):
    ...     def __init__(self, k): self.k = k
    ...     def forward(self, x): return x * self.k
    >>> Double(2)(torch.ones(1))
    tensor([2.])
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "Module":
        obj = super().__new__(cls)
        nn.Module.__init__(obj)
        return obj

    def __init__(self) -> None:
        # Deliberately empty: calling nn.Module.__init__ again would wipe submodules that a
        # subclass registered before calling super().__init__().
        pass


Identity = nn.Identity


class Lambda(Module):
    """Wrap a function `func(x)` as a layer, e.g. `Lambda(lambda x: x * 2)`."""

    def __init__(self, func: Callable[[Tensor], Tensor]) -> None:
        self.func = func

    def forward(self, x: Tensor) -> Tensor:
        return self.func(x)

    def __repr__(self) -> str:
        return f"Lambda({getattr(self.func, '__name__', self.func)!s})"


class PartialLambda(Lambda):
    """A layer computing `func(x, **kwargs)`; e.g. `PartialLambda(torch.softmax, dim=1)`."""

    def __init__(self, func: Callable[..., Tensor], **kwargs: Any) -> None:
        self.func, self.kwargs = func, kwargs

    def forward(self, x: Tensor) -> Tensor:
        return self.func(x, **self.kwargs)

    def __repr__(self) -> str:
        return f"PartialLambda({getattr(self.func, '__name__', self.func)!s}, {self.kwargs})"


class Flatten(Module):
    """Flatten everything but the batch axis (or everything when `full=True`)."""

    def __init__(self, full: bool = False) -> None:
        self.full = full

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(-1) if self.full else x.reshape(x.size(0), -1)


class View(Module):
    """Reshape the whole tensor to `size` (batch axis included), e.g. `View(-1, 10)`."""

    def __init__(self, *size: int) -> None:
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return x.view(self.size)


class ResizeBatch(Module):
    """Reshape each item of the batch to `size`, keeping the batch axis: `(bs, *size)`."""

    def __init__(self, *size: int) -> None:
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return x.view((x.size(0), *self.size))


class SequentialEx(Module):
    """Like `nn.Sequential`, but each layer can read the block's input as `x.orig` (for skip connections).

    >>> blk = SequentialEx(nn.Linear(4, 4), MergeLayer())   # x + layer(x)
    >>> blk(torch.zeros(2, 4)).shape
    torch.Size([2, 4])
    """

    def __init__(self, *layers: nn.Module) -> None:
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        res = x
        for layer in self.layers:
            res.orig = x  # type: ignore[attr-defined]  # the block input rides on the tensor (fastai SequentialEx)
            nres = layer(res)
            # Drop the reference so the input is not kept alive by the output tensor.
            res.orig = None  # type: ignore[attr-defined]  # the block input rides on the tensor (fastai SequentialEx)
            res = nres
        return res

    def __getitem__(self, i: int) -> nn.Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def append(self, layer: nn.Module) -> None:
        """Add `layer` at the end."""
        self.layers.append(layer)

    def extend(self, layers: list[nn.Module]) -> None:
        """Add `layers` at the end."""
        self.layers.extend(layers)

    def insert(self, i: int, layer: nn.Module) -> None:
        """Insert `layer` at position `i`."""
        self.layers.insert(i, layer)


class MergeLayer(Module):
    """Inside a `SequentialEx`: `x + x.orig`, or their concatenation on the channel axis when `dense`."""

    def __init__(self, dense: bool = False) -> None:
        self.dense = dense

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, x.orig], dim=1) if self.dense else x + x.orig  # type: ignore[attr-defined]  # the block input rides on the tensor (fastai SequentialEx)


class ProdLayer(Module):
    """Inside a `SequentialEx`: `x * x.orig` (used for squeeze-excitation gates)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * x.orig  # type: ignore[attr-defined]  # the block input rides on the tensor (fastai SequentialEx)


class Cat(nn.ModuleList):
    """Run every layer on the same input and concatenate the outputs on `dim`."""

    def __init__(self, layers: list[nn.Module], dim: int = 1) -> None:
        super().__init__(layers)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([layer(x) for layer in self], dim=self.dim)


class AdaptiveConcatPool1d(Module):
    """Concatenate adaptive max pooling and adaptive average pooling (1d) to `size`."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or 1
        self.ap, self.mp = nn.AdaptiveAvgPool1d(self.size), nn.AdaptiveMaxPool1d(self.size)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.mp(x), self.ap(x)], dim=1)


class AdaptiveConcatPool2d(Module):
    """Concatenate adaptive max pooling and adaptive average pooling to `size`: `2*C` channels out."""

    def __init__(self, size: int | tuple[int, int] | None = None) -> None:
        self.size = size or 1
        self.ap, self.mp = nn.AdaptiveAvgPool2d(self.size), nn.AdaptiveMaxPool2d(self.size)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.mp(x), self.ap(x)], dim=1)


def _check_ndim(ndim: int, where: str) -> int:
    if ndim not in (1, 2, 3):
        raise ValueError(f"{where}: ndim={ndim} is not supported; use 1, 2 or 3")
    return ndim


def AvgPool(ks: int = 2, stride: int | None = None, padding: int = 0, ndim: int = 2, ceil_mode: bool = False) -> nn.Module:
    """`nn.AvgPool{ndim}d` layer."""
    cls = getattr(nn, f"AvgPool{_check_ndim(ndim, 'AvgPool')}d")
    return cls(ks, stride=stride, padding=padding, ceil_mode=ceil_mode)


def MaxPool(ks: int = 2, stride: int | None = None, padding: int = 0, ndim: int = 2, ceil_mode: bool = False) -> nn.Module:
    """`nn.MaxPool{ndim}d` layer."""
    cls = getattr(nn, f"MaxPool{_check_ndim(ndim, 'MaxPool')}d")
    return cls(ks, stride=stride, padding=padding, ceil_mode=ceil_mode)


def AdaptiveAvgPool(sz: int = 1, ndim: int = 2) -> nn.Module:
    """`nn.AdaptiveAvgPool{ndim}d(sz)` layer."""
    return getattr(nn, f"AdaptiveAvgPool{_check_ndim(ndim, 'AdaptiveAvgPool')}d")(sz)


class NormType(Enum):
    """Which normalisation a block uses; the `*Zero` kinds start with weight 0 (identity residual branch)."""

    Batch = 1
    BatchZero = 2
    Weight = 3
    Spectral = 4
    Instance = 5
    InstanceZero = 6


norm_types = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
)


def _init_norm(norm: nn.Module, zero: bool) -> nn.Module:
    if getattr(norm, "affine", False):
        with torch.no_grad():  # an affine norm layer has both parameters
            cast(Tensor, norm.bias).fill_(1e-3)
            cast(Tensor, norm.weight).fill_(0.0 if zero else 1.0)
    return norm


def BatchNorm(nf: int, ndim: int = 2, norm_type: NormType = NormType.Batch, **kwargs: Any) -> nn.Module:
    """`nn.BatchNorm{ndim}d(nf)` with bias 1e-3 and weight 1 (0 for `NormType.BatchZero`)."""
    bn = getattr(nn, f"BatchNorm{_check_ndim(ndim, 'BatchNorm')}d")(nf, **kwargs)
    return _init_norm(bn, norm_type == NormType.BatchZero)


def InstanceNorm(
    nf: int, ndim: int = 2, norm_type: NormType = NormType.Instance, affine: bool = True, **kwargs: Any
) -> nn.Module:
    """`nn.InstanceNorm{ndim}d(nf, affine=True)` initialised like `BatchNorm` (0 weight for `InstanceZero`)."""
    inn = getattr(nn, f"InstanceNorm{_check_ndim(ndim, 'InstanceNorm')}d")(nf, affine=affine, **kwargs)
    return _init_norm(inn, norm_type == NormType.InstanceZero)


class BatchNorm1dFlat(nn.BatchNorm1d):
    """`nn.BatchNorm1d` over the last axis of a `(bs, seq, nf)` tensor (or a plain `(bs, nf)` one)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            return super().forward(x)
        *front, nf = x.shape
        return super().forward(x.reshape(-1, nf)).view(*front, nf)


def trunc_normal_(x: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill `x` in place with a normal(mean, std) truncated at two standard deviations; returns `x`."""
    with torch.no_grad():
        return nn.init.trunc_normal_(x, mean=mean, std=std, a=mean - 2 * std, b=mean + 2 * std)


def init_default(m: nn.Module, func: Callable[[Tensor], Any] | None = nn.init.kaiming_normal_) -> nn.Module:
    """Initialise `m.weight` with `func` and zero `m.bias` (when they exist); returns `m`."""
    weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
    if func is not None and isinstance(weight, Tensor):
        func(weight)
    if isinstance(bias, Tensor):
        with torch.no_grad():
            bias.fill_(0.0)
    return m


def init_linear(m: nn.Module, act_func: nn.Module | None = None, init: str | Callable | None = "auto", bias_std: float = 0.01) -> None:
    """Initialise a conv/linear layer for the activation that follows it.

    `init='auto'` uses Kaiming-uniform before ReLU-like activations and torch's default otherwise;
    a callable is applied to the weight. The bias is drawn from N(0, `bias_std`) (zero when 0).
    """
    if getattr(m, "bias", None) is not None and bias_std is not None:
        with torch.no_grad():
            bias = cast(Tensor, m.bias)  # checked just above
            if bias_std != 0:
                bias.normal_(0, bias_std)
            else:
                bias.zero_()
    if init == "auto":
        init = nn.init.kaiming_uniform_ if isinstance(act_func, (nn.ReLU, nn.LeakyReLU)) else None
    if init is not None:
        if not callable(init):
            raise TypeError(f"init_linear: init={init!r} is neither 'auto', None nor a callable")
        init(m.weight)


class ConvLayer(nn.Sequential):
    """Convolution, then normalisation and activation (in `bn_1st` order): the building block of CNNs.

    Padding defaults to `(ks-1)//2` ("same" for odd `ks`); the conv has no bias when a batch or
    instance norm follows. `norm_type` may also be `Weight`/`Spectral` (reparametrised conv) or None.

    >>> ConvLayer(3, 8, ks=3, stride=2)(torch.randn(1, 3, 16, 16)).shape
    torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        ni: int,
        nf: int,
        ks: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool | None = None,
        ndim: int = 2,
        norm_type: NormType | None = NormType.Batch,
        bn_1st: bool = True,
        act_cls: Callable[[], nn.Module] | None = nn.ReLU,
        transpose: bool = False,
        init: str | Callable | None = "auto",
        xtra: nn.Module | None = None,
        bias_std: float = 0.01,
        **kwargs: Any,
    ) -> None:
        if padding is None:
            padding = (ks - 1) // 2 if not transpose else 0
        bn = norm_type in (NormType.Batch, NormType.BatchZero)
        inn = norm_type in (NormType.Instance, NormType.InstanceZero)
        if bias is None:
            bias = not (bn or inn)
        kind = "ConvTranspose" if transpose else "Conv"
        conv_cls = getattr(nn, f"{kind}{_check_ndim(ndim, 'ConvLayer')}d")
        conv = conv_cls(ni, nf, kernel_size=ks, bias=bias, stride=stride, padding=padding, **kwargs)
        act = None if act_cls is None else act_cls()
        init_linear(conv, act, init=init, bias_std=bias_std)
        if norm_type == NormType.Weight:
            conv = nn.utils.parametrizations.weight_norm(conv)
        elif norm_type == NormType.Spectral:
            conv = nn.utils.parametrizations.spectral_norm(conv)
        layers: list[nn.Module] = [conv]
        act_bn: list[nn.Module] = []
        if act is not None:
            act_bn.append(act)
        if bn and norm_type is not None:  # bn/inn imply a norm_type; the check tells the type checker
            act_bn.append(BatchNorm(nf, norm_type=norm_type, ndim=ndim))
        if inn and norm_type is not None:
            act_bn.append(InstanceNorm(nf, norm_type=norm_type, ndim=ndim))
        if bn_1st:
            act_bn.reverse()
        layers += act_bn
        if xtra is not None:
            layers.append(xtra)
        super().__init__(*layers)


class LinBnDrop(nn.Sequential):
    """BatchNorm1d, Dropout(`p`) and Linear (then `act`), or Linear first when `lin_first`.

    The linear layer has no bias when a batch norm is present, since the norm's shift replaces it.
    """

    def __init__(
        self, n_in: int, n_out: int, bn: bool = True, p: float = 0.0, act: nn.Module | None = None, lin_first: bool = False
    ) -> None:
        layers: list[nn.Module] = [BatchNorm(n_out if lin_first else n_in, ndim=1)] if bn else []
        if p != 0:
            layers.append(nn.Dropout(p))
        lin: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not bn)]
        if act is not None:
            lin.append(act)
        super().__init__(*(lin + layers if lin_first else layers + lin))


def sigmoid_range(x: Tensor, low: float, high: float) -> Tensor:
    """Sigmoid scaled to the open interval `(low, high)`."""
    return torch.sigmoid(x) * (high - low) + low


class SigmoidRange(Module):
    """Layer squashing its input into `(low, high)` with a scaled sigmoid (e.g. ratings in 0..5.5)."""

    def __init__(self, low: float, high: float) -> None:
        if not high > low:
            raise ValueError(f"SigmoidRange: high={high} must be greater than low={low}")
        self.low, self.high = low, high

    def forward(self, x: Tensor) -> Tensor:
        return sigmoid_range(x, self.low, self.high)


class Embedding(nn.Embedding):
    """`nn.Embedding` initialised from a normal(0, `std`) truncated at 2 std (small, well-behaved start)."""

    def __init__(self, ni: int, nf: int, std: float = 0.01) -> None:
        super().__init__(ni, nf)
        trunc_normal_(self.weight.data, std=std)


Mish = nn.Mish
Swish = nn.SiLU


class MishJit(nn.Mish):
    """fastai's TorchScript Mish: here torch's fused `nn.Mish` (torch.jit is deprecated; same values and gradients)."""


class MishJitAutoFn(nn.Mish):
    """fastai's memory-saving Mish: here torch's fused `nn.Mish`, which already keeps only the input for backward."""


class SwishJit(nn.SiLU):
    """fastai's TorchScript Swish: here torch's fused `nn.SiLU` (same values and gradients)."""
