"""Helpers that inspect or prepare `nn.Module`s: parameter lists for splitters, init, and shape probes.

>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
>>> len(trainable_params(m)), len(norm_bias_params(m))
(4, 3)
>>> in_channels(m), [tuple(s) for s in model_sizes(m, size=(8, 8))]
(3, [(1, 8, 6, 6), (1, 8, 6, 6), (1, 8, 6, 6)])
"""

from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
from torch import Tensor, nn

from tiers.train.nn.layers import init_default, norm_types

__all__ = [
    "unwrap_model",
    "params",
    "trainable_params",
    "norm_bias_params",
    "bn_bias_params",
    "requires_grad",
    "has_children",
    "children_and_parameters",
    "flatten_model",
    "apply_leaf",
    "apply_init",
    "in_channels",
    "one_param",
    "dummy_eval",
    "model_sizes",
    "num_features_model",
    "total_params",
    "has_params",
    "bn_types",
]

bn_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def params(m: nn.Module) -> list[nn.Parameter]:
    """All parameters of `m`, as a list."""
    return list(m.parameters())


def trainable_params(m: nn.Module) -> list[nn.Parameter]:
    """Parameters of `m` that require grad: the default `splitter` (one parameter group)."""
    return [p for p in m.parameters() if p.requires_grad]


def norm_bias_params(m: nn.Module, with_bias: bool = True) -> list[nn.Parameter]:
    """Parameters of every normalisation layer in `m`, plus (when `with_bias`) every bias.

    These are the parameters that get no weight decay (unless `wd_bn_bias`) and stay trainable
    in frozen groups (`train_bn`). Each parameter appears once.
    """
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for mod in m.modules():
        if isinstance(mod, norm_types):
            ps = list(mod.parameters(recurse=False))
        elif with_bias and isinstance(getattr(mod, "bias", None), nn.Parameter):
            ps = [cast(nn.Parameter, mod.bias)]  # checked just above
        else:
            continue
        for p in ps:
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


bn_bias_params = norm_bias_params


def one_param(m: nn.Module) -> nn.Parameter:
    """The first parameter of `m` (to read its device or dtype); ValueError if it has none."""
    try:
        return next(m.parameters())
    except StopIteration:
        raise ValueError(f"one_param: {type(m).__name__} has no parameters") from None


def requires_grad(m: nn.Module) -> bool | None:
    """Whether the first parameter of `m` requires grad (None for a module without parameters)."""
    p = next(m.parameters(), None)
    return None if p is None else p.requires_grad


def has_children(m: nn.Module) -> bool:
    """True when `m` has submodules."""
    return next(m.children(), None) is not None


def children_and_parameters(m: nn.Module) -> list[nn.Module | nn.Parameter]:
    """Children of `m` plus the parameters it owns directly (not through a child)."""
    children = list(m.children())
    owned = {id(p) for c in children for p in c.parameters()}
    return children + [p for p in m.parameters() if id(p) not in owned]


def flatten_model(m: nn.Module) -> list[nn.Module]:
    """The leaf modules of `m`, in definition order (a childless `m` is its own leaf)."""
    if not has_children(m):
        return [m]
    return [leaf for c in m.children() for leaf in flatten_model(c)]


def _leaves(m: nn.Module) -> Iterator[nn.Module]:
    yield from flatten_model(m)


def apply_leaf(m: nn.Module, f: Callable[[nn.Module], Any]) -> None:
    """Call `f` on `m` and every submodule, depth first."""
    f(m)
    for c in m.children():
        apply_leaf(c, f)


def apply_init(m: nn.Module, func: Callable[[Tensor], Any] = nn.init.kaiming_normal_) -> None:
    """Initialise every layer of `m` with `func` (biases to zero), leaving normalisation layers alone."""

    def _init(mod: nn.Module) -> None:
        if not isinstance(mod, norm_types) and isinstance(getattr(mod, "weight", None), Tensor):
            if cast(Tensor, mod.weight).ndim >= 2:  # checked just above
                init_default(mod, func)

    apply_leaf(m, _init)


def in_channels(m: nn.Module) -> int:
    """Number of input channels of the first convolution in `m`.

    Raises ValueError when `m` has no convolution (a weight with at least 3 dimensions).
    """
    for leaf in _leaves(m):
        w = getattr(leaf, "weight", None)
        if isinstance(w, Tensor) and w.ndim >= 3:
            return w.shape[1]
    raise ValueError(f"in_channels: no convolution found in {type(m).__name__}; pass the input size explicitly")


def dummy_eval(m: nn.Module, size: tuple[int, ...] = (64, 64)) -> Tensor:
    """Output of `m` on a batch of one zero image of spatial `size` (eval mode, no grad, mode restored)."""
    p = next(m.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    x = torch.zeros(1, in_channels(m), *size, device=device)
    was_training = m.training
    try:
        with torch.no_grad():
            return m.eval()(x)
    finally:
        m.train(was_training)


def model_sizes(m: nn.Module, size: tuple[int, ...] = (64, 64)) -> list[torch.Size]:
    """Output shape of each child of `m` for a dummy input of spatial `size`."""
    shapes: list[torch.Size] = []

    def hook(mod: nn.Module, inp: Any, out: Any) -> None:
        shapes.append(out.shape if isinstance(out, Tensor) else torch.Size([]))

    handles = [c.register_forward_hook(hook) for c in m.children()]
    try:
        dummy_eval(m, size)
    finally:
        for h in handles:
            h.remove()
    return shapes


def num_features_model(m: nn.Module) -> int:
    """Number of output channels of `m`, found by running it on dummy inputs of growing size."""
    sz, ch_in = 32, in_channels(m)
    while True:
        try:
            return model_sizes(m, (sz, sz))[-1][1]
        except RuntimeError as e:
            sz *= 2
            if sz > 2048:
                raise ValueError(f"num_features_model: {type(m).__name__} fails on {ch_in}x2048x2048 inputs") from e


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a `DataParallel` / `DistributedDataParallel` wrapper (`.module`); any other model itself."""
    return model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model


def total_params(m: nn.Module) -> tuple[int, bool]:
    """Number of parameter values in `m` and whether the first one is trainable."""
    return sum(p.numel() for p in m.parameters()), bool(requires_grad(m))


def has_params(m: nn.Module) -> bool:
    """Whether `m` (or any of its children) holds at least one parameter."""
    return next(iter(m.parameters()), None) is not None
