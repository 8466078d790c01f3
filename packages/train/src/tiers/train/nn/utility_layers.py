"""More of fastai's layer toolkit: module builders, pooling choices, per-time-step models, activations, `NoneReduce`.

The basic blocks live in `tiers.train.nn.layers`; this module holds the smaller helpers fastai code
reaches for around them.

>>> @module("k")
... def Scale(self, x): return x * self.k
>>> sequential(nn.Linear(3, 4), lambda x: x.relu(), Scale(2))(torch.randn(2, 3)).shape
torch.Size([2, 4])
"""

import inspect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tiers.tensors import TensorBase
from tiers.train.nn.layers import AdaptiveConcatPool2d, ConvLayer, Flatten, Lambda, Module, NormType

__all__ = [
    "module",
    "sequential",
    "ParameterModule",
    "ToTensorBase",
    "Debugger",
    "TimeDistributed",
    "PoolType",
    "adaptive_pool",
    "PoolFlatten",
    "SimpleCNN",
    "sigmoid",
    "sigmoid_",
    "vleaky_relu",
    "inplace_relu",
    "mish",
    "swish",
    "NoneReduce",
]


def module(*flds: str, **defaults: Any) -> Callable[[Callable], type[nn.Module]]:
    """Decorator turning `f(self, x)` into an `nn.Module` class whose constructor takes `flds` (then `defaults`).

    Constructor arguments become attributes, so `forward` reads them from `self`; the class takes
    the function's name and docstring.

    >>> @module("a", b=1)
    ... def Affine(self, x): return x * self.a + self.b
    >>> Affine(2)(torch.ones(1)), Affine(2, b=0).b
    (tensor([3.]), 0)
    """
    names = [*flds, *defaults]
    P = inspect.Parameter
    sig = inspect.Signature(
        [P(o, P.POSITIONAL_OR_KEYWORD) for o in flds] + [P(k, P.POSITIONAL_OR_KEYWORD, default=v) for k, v in defaults.items()]
    )

    def _make(f: Callable) -> type[nn.Module]:
        def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
            nn.Module.__init__(self)
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{f.__name__}{sig}: {e}") from None
            bound.apply_defaults()
            for k, v in bound.arguments.items():
                setattr(self, k, v)

        def __repr__(self: nn.Module) -> str:
            return f"{f.__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in names)})"

        cls = type(f.__name__, (nn.Module,), {"__init__": __init__, "forward": f, "__repr__": __repr__, "__doc__": f.__doc__})
        cls.__signature__ = sig  # type: ignore[attr-defined]  # inspect.signature reads it; typeshed does not declare it on type
        cls.__qualname__, cls.__module__ = f.__qualname__, f.__module__
        return cls

    return _make


def sequential(*args: Any) -> nn.Sequential:
    """`nn.Sequential` that wraps plain callables in `Lambda` (an `OrderedDict` of modules is passed as is)."""
    if len(args) == 1 and isinstance(args[0], OrderedDict):
        return nn.Sequential(args[0])
    layers = []
    for i, o in enumerate(args):
        if not isinstance(o, nn.Module):
            if not callable(o):
                raise TypeError(f"sequential: item {i} is a {type(o).__name__}, not a module or a callable")
            o = Lambda(o)
        layers.append(o)
    return nn.Sequential(*layers)


class ParameterModule(Module):
    """Hold a lone parameter `p` as `self.val` so it is registered (and trained); `forward` is the identity."""

    def __init__(self, p: nn.Parameter) -> None:
        self.val = p

    def forward(self, x: Tensor) -> Tensor:
        return x


class ToTensorBase(Module):
    """Cast the input to `tensor_cls` (`TensorBase` by default) so typed tensors stay typed through a model."""

    def __init__(self, tensor_cls: type = TensorBase) -> None:
        self.tensor_cls = tensor_cls

    def forward(self, x: Tensor) -> Tensor:
        return self.tensor_cls(x)


class Debugger(Module):
    """Identity layer that stops in the debugger (`breakpoint()`) so you can inspect `x` inside a model."""

    def forward(self, x: Tensor) -> Tensor:
        breakpoint()  # the whole point of the layer; PYTHONBREAKPOINT picks the debugger
        return x


def _stack(outs: list, dim: int) -> Any:
    if isinstance(outs[0], tuple):
        return tuple(torch.stack(o, dim=dim) for o in zip(*outs))
    return torch.stack(outs, dim=dim)


class TimeDistributed(Module):
    """Apply `module` identically to every step along axis `tdim` of its inputs (`(bs, seq_len, ...)` by default).

    The default path folds time into the batch, runs `module` once and unfolds the result;
    `low_mem=True` (or a `tdim` other than 1) runs one step at a time and stacks the outputs,
    trading speed for peak memory. Tuple outputs are handled element-wise.

    >>> TimeDistributed(nn.Conv2d(3, 4, 3, padding=1))(torch.randn(2, 5, 3, 8, 8)).shape
    torch.Size([2, 5, 4, 8, 8])
    """

    def __init__(self, module: nn.Module, low_mem: bool = False, tdim: int = 1) -> None:
        self.module, self.low_mem, self.tdim = module, low_mem, tdim

    def forward(self, *tensors: Tensor, **kwargs: Any) -> Any:
        if not tensors:
            raise TypeError("TimeDistributed: call it with at least one tensor of shape (bs, seq_len, ...)")
        if self.low_mem or self.tdim != 1:
            return self.low_mem_forward(*tensors, **kwargs)
        bs, seq_len = tensors[0].shape[:2]
        out = self.module(*[x.reshape(bs * seq_len, *x.shape[2:]) for x in tensors], **kwargs)
        return self.format_output(out, bs, seq_len)

    def low_mem_forward(self, *tensors: Tensor, **kwargs: Any) -> Any:
        """Run `module` one time step at a time and stack the outputs on `tdim`."""
        steps = [torch.unbind(x, dim=self.tdim) for x in tensors]
        return _stack([self.module(*step, **kwargs) for step in zip(*steps)], self.tdim)

    def format_output(self, out: Any, bs: int, seq_len: int) -> Any:
        """Unfold a `(bs*seq_len, ...)` output (or tuple of them) back to `(bs, seq_len, ...)`."""
        if isinstance(out, tuple):
            return tuple(o.reshape(bs, seq_len, *o.shape[1:]) for o in out)
        return out.reshape(bs, seq_len, *out.shape[1:])

    def __repr__(self) -> str:
        return f"TimeDistributed({self.module})"


class PoolType:
    """Names of the pooling kinds `adaptive_pool` understands: `Avg`, `Max` and `Cat` (avg and max concatenated)."""

    Avg, Max, Cat = "Avg", "Max", "Cat"


def adaptive_pool(pool_type: str) -> type[nn.Module]:
    """The 2d adaptive pooling class for `pool_type` (a `PoolType` name): avg, max or `AdaptiveConcatPool2d`."""
    pools = {PoolType.Avg: nn.AdaptiveAvgPool2d, PoolType.Max: nn.AdaptiveMaxPool2d, PoolType.Cat: AdaptiveConcatPool2d}
    if pool_type not in pools:
        raise ValueError(f"adaptive_pool: pool_type={pool_type!r} is unknown; use one of {list(pools)} (PoolType.Avg...)")
    return pools[pool_type]


class PoolFlatten(nn.Sequential):
    """Adaptive pooling to 1x1 then `Flatten`: `(bs, C, h, w)` to `(bs, C)` (`2*C` for `PoolType.Cat`)."""

    def __init__(self, pool_type: str = PoolType.Avg) -> None:
        super().__init__(adaptive_pool(pool_type)(1), Flatten())


class SimpleCNN(nn.Sequential):
    """Stack of `ConvLayer`s going through the channel counts `filters`, then `PoolFlatten`.

    Kernel sizes default to 3 and strides to 2; every conv but the last has a batch norm when `bn`.

    >>> SimpleCNN([3, 16, 10])(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self, filters: Sequence[int], kernel_szs: Sequence[int] | None = None, strides: Sequence[int] | None = None, bn: bool = True
    ) -> None:
        nl = len(filters) - 1
        if nl < 1:
            raise ValueError(f"SimpleCNN: filters={list(filters)} needs at least two channel counts (input and output)")
        kernel_szs = [3] * nl if kernel_szs is None else list(kernel_szs)
        strides = [2] * nl if strides is None else list(strides)
        if len(kernel_szs) != nl or len(strides) != nl:
            raise ValueError(
                f"SimpleCNN: {nl} convolutions from filters={list(filters)}, but kernel_szs={kernel_szs} and "
                f"strides={strides}; give one of each per convolution"
            )
        layers: list[nn.Module] = [
            ConvLayer(filters[i], filters[i + 1], kernel_szs[i], stride=strides[i],
                      norm_type=NormType.Batch if bn and i < nl - 1 else None)
            for i in range(nl)
        ]
        super().__init__(*layers, PoolFlatten())


def sigmoid(input: Tensor, eps: float = 1e-7) -> Tensor:
    """`torch.sigmoid` clamped to `(eps, 1-eps)`, so a following log never sees 0 or 1."""
    return input.sigmoid().clamp(eps, 1 - eps)


def sigmoid_(input: Tensor, eps: float = 1e-7) -> Tensor:
    """In-place `sigmoid`: `input.sigmoid_()` clamped to `(eps, 1-eps)`."""
    return input.sigmoid_().clamp_(eps, 1 - eps)


def vleaky_relu(input: Tensor, inplace: bool = True) -> Tensor:
    """"Very leaky" ReLU: `F.leaky_relu` with slope 0.3 (in place by default)."""
    return F.leaky_relu(input, negative_slope=0.3, inplace=inplace)


inplace_relu = partial(nn.ReLU, inplace=True)
inplace_relu.__doc__ = "`nn.ReLU(inplace=True)`: call it to get the layer."


def mish(x: Tensor) -> Tensor:
    """Mish activation `x * tanh(softplus(x))` (`F.mish`); the layer is `Mish`."""
    return F.mish(x)


def swish(x: Tensor, inplace: bool = False) -> Tensor:
    """Swish (SiLU) activation `x * sigmoid(x)` (`F.silu`); the layer is `Swish`."""
    return F.silu(x, inplace=inplace)


def _takes_reduction(f: Any) -> bool:
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return True  # a builtin we cannot inspect: let the call itself decide
    return any(p.name == "reduction" or p.kind is p.VAR_KEYWORD for p in params)


class NoneReduce:
    """Context manager giving `loss_func` with reduction `'none'` (per-item losses), restored on exit.

    A loss with a `reduction` attribute is switched in place and switched back even when the body
    raises; a plain function gets `partial(loss_func, reduction='none')`.

    >>> lf = nn.MSELoss()
    >>> with NoneReduce(lf) as f: f(torch.zeros(3), torch.ones(3))
    tensor([1., 1., 1.])
    >>> lf.reduction
    'mean'
    """

    def __init__(self, loss_func: Callable) -> None:
        self.loss_func, self.old_red = loss_func, None

    def __enter__(self) -> Callable:
        lf = self.loss_func
        if hasattr(lf, "reduction"):
            self.old_red = lf.reduction
            lf.reduction = "none"
            return lf
        if not _takes_reduction(lf):
            raise TypeError(
                f"NoneReduce: {getattr(lf, '__name__', lf)!r} has no `reduction` attribute or argument; "
                "give it a reduction='none' option to get per-item losses"
            )
        return partial(lf, reduction="none")

    def __exit__(self, *exc: Any) -> None:
        if self.old_red is not None:
            self.loss_func.reduction = self.old_red
