"""Building vision models: `model_meta` (how to cut, split and normalise each architecture), `create_body` (cut
a classifier before its pooling), `create_head` (concat pool, batch norm, dropout, linear), and the pretrained
weights of torchvision architectures, read from the torch hub cache (`torch.hub.get_dir()/checkpoints`) and
downloaded only when missing; when that is impossible (offline) the error says where to put the file.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from tiers.dispatch import L
from tiers.train import AdaptiveConcatPool2d, Flatten, LinBnDrop, SigmoidRange, num_features_model, params
from tiers.vision.core import imagenet_stats
from tiers.vision.models.unet import DynamicUnet
from tiers.vision.models.xresnet import XResNet

__all__ = [
    "model_meta", "default_split", "has_pool_type", "cut_model", "create_body", "create_head", "add_head",
    "pretrained_weights_path", "create_vision_model", "create_cnn_model", "create_unet_model", "TorchvisionArch", "resolve_arch",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2", "squeezenet1_0", "squeezenet1_1", "densenet121", "densenet161", "densenet169", "densenet201", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "alexnet",
]


class TorchvisionArch:
    """A handle on a torchvision model constructor, so `vision_learner(dls, resnet34)` works after
    `from tiers.vision.all import *` without paying for `import torchvision.models` (about 1.3 s) until a model is
    built. Calling it builds the model; `resolve()` returns torchvision's own function.

    >>> resnet34.resolve().__module__
    'torchvision.models.resnet'
    """

    def __init__(self, name: str):
        self.name = self.__name__ = self.__qualname__ = name

    def resolve(self) -> Callable:
        import torchvision.models as tvm

        return getattr(tvm, self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> nn.Module:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"torchvision.models.{self.name}"

    def __reduce__(self):
        return (TorchvisionArch, (self.name,))


def _arch_named(name: str) -> Callable:
    "The architecture called `name`: an xresnet of tiers, else a torchvision model builder."
    from tiers.vision.models import xresnet

    if name.startswith("xresnet") and name in xresnet.__all__:
        return getattr(xresnet, name)
    import torchvision

    try:
        return torchvision.models.get_model_builder(name)
    except ValueError:
        known = sorted(n for n in torchvision.models.list_models(module=torchvision.models))
        raise ValueError(f"arch={name!r} is not an architecture tiers knows: pass a model function (e.g. "
                         f"xresnet18, resnet34) or the name of one of tiers' xresnets or of torchvision's image "
                         f"classifiers ({', '.join(known[:12])}, ...); timm names are not supported (timm is not a "
                         "dependency)") from None


def resolve_arch(arch: Callable | str) -> Callable:
    """torchvision's constructor for a `TorchvisionArch` handle (also inside a `functools.partial`) or for a name
    (`'resnet34'`, `'xresnet18'`, as fastai takes timm names); others unchanged."""
    if isinstance(arch, str):
        return _arch_named(arch)
    if isinstance(arch, TorchvisionArch):
        return arch.resolve()
    func = getattr(arch, "func", None)
    if isinstance(func, TorchvisionArch):
        import functools

        part = cast("functools.partial[Any]", arch)  # what has a `func` (and args, keywords): a partial
        return functools.partial(func.resolve(), *part.args, **part.keywords)
    return arch


resnet18 = TorchvisionArch("resnet18")
resnet34 = TorchvisionArch("resnet34")
resnet50 = TorchvisionArch("resnet50")
resnet101 = TorchvisionArch("resnet101")
resnet152 = TorchvisionArch("resnet152")
resnext50_32x4d = TorchvisionArch("resnext50_32x4d")
resnext101_32x8d = TorchvisionArch("resnext101_32x8d")
wide_resnet50_2 = TorchvisionArch("wide_resnet50_2")
wide_resnet101_2 = TorchvisionArch("wide_resnet101_2")
squeezenet1_0 = TorchvisionArch("squeezenet1_0")
squeezenet1_1 = TorchvisionArch("squeezenet1_1")
densenet121 = TorchvisionArch("densenet121")
densenet161 = TorchvisionArch("densenet161")
densenet169 = TorchvisionArch("densenet169")
densenet201 = TorchvisionArch("densenet201")
vgg11_bn = TorchvisionArch("vgg11_bn")
vgg13_bn = TorchvisionArch("vgg13_bn")
vgg16_bn = TorchvisionArch("vgg16_bn")
vgg19_bn = TorchvisionArch("vgg19_bn")
alexnet = TorchvisionArch("alexnet")


# ---------------------------------------------------------------------------------------------- model metadata


def _seq(m: nn.Module) -> nn.Sequential:
    # The models these splitters get are `nn.Sequential(body, head)` whose bodies are Sequentials too (built here).
    return cast(nn.Sequential, m)


def default_split(m: nn.Module) -> list[list[nn.Parameter]]:
    """Two parameter groups: the body `m[0]` and everything after it (the head)."""
    return [params(_seq(m)[0]), params(_seq(m)[1:])]


def _resnet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    body = _seq(_seq(m)[0])
    return [params(body[:6]), params(body[6:]), params(_seq(m)[1:])]


def _xresnet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    body = _seq(_seq(m)[0])
    return [params(body[:3]), params(body[3:]), params(_seq(m)[1:])]


def _features_split(m: nn.Module, at: int) -> list[list[nn.Parameter]]:
    # torchvision models whose body is `features`: its layers before `at`, from `at` on, then the head
    features = _seq(_seq(_seq(m)[0])[0])
    return [params(features[:at]), params(features[at:]), params(_seq(m)[1:])]


def _squeezenet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return _features_split(m, 5)


def _densenet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return _features_split(m, 7)


def _vgg_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return _features_split(m, 22)


def _alexnet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return _features_split(m, 6)


_default_meta = {"cut": None, "split": default_split}
_xresnet_meta = {"cut": -4, "split": _xresnet_split, "stats": imagenet_stats}
_resnet_meta = {"cut": -2, "split": _resnet_split, "stats": imagenet_stats}
_squeezenet_meta = {"cut": -1, "split": _squeezenet_split, "stats": imagenet_stats}
_densenet_meta = {"cut": -1, "split": _densenet_split, "stats": imagenet_stats}
_vgg_meta = {"cut": -2, "split": _vgg_split, "stats": imagenet_stats}
_alexnet_meta = {"cut": -2, "split": _alexnet_split, "stats": imagenet_stats}


class _ModelMeta(dict):
    """`model_meta[arch]`: how to cut, split and normalise for architecture constructor `arch`.

    torchvision's constructors are registered on first use, so `import tiers.vision` does not import torchvision.
    """

    _filled = False

    def _fill(self) -> None:
        if self._filled:
            return
        self._filled = True
        from tiers.vision.models import xresnet

        for name in xresnet.__all__:
            f = getattr(xresnet, name)
            if callable(f) and name.startswith(("xresnet", "xse_", "xsenet")):
                self.setdefault(f, dict(_xresnet_meta))
        try:
            import torchvision.models as tvm
        except ImportError:  # pragma: no cover - torchvision is a declared dependency
            return
        groups = [
            (_resnet_meta, ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                            "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2")),
            (_squeezenet_meta, ("squeezenet1_0", "squeezenet1_1")),
            (_densenet_meta, ("densenet121", "densenet161", "densenet169", "densenet201")),
            (_vgg_meta, ("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")),
            (_alexnet_meta, ("alexnet",)),
        ]
        for meta, names in groups:
            for n in names:
                f = getattr(tvm, n, None)
                if f is not None:
                    self.setdefault(f, dict(meta))

    def __getitem__(self, k):
        self._fill()
        return super().__getitem__(k)

    def get(self, k, default=None):
        self._fill()
        return super().get(k, default)

    def __contains__(self, k) -> bool:
        self._fill()
        return super().__contains__(k)


model_meta = _ModelMeta()


def _meta(arch) -> dict:
    arch = resolve_arch(arch)
    # `partial(resnet34, ...)` and `partial(xresnet18, widen=2)` are still those architectures.
    while arch not in model_meta and isinstance(getattr(arch, "func", None), type(_meta)):
        arch = arch.func
    return model_meta.get(arch, _default_meta)


# ---------------------------------------------------------------------------------------------- bodies and heads


def _is_pool_type(m: nn.Module) -> bool:
    return re.search(r"Pool[123]d$", type(m).__name__) is not None


def has_pool_type(m: nn.Module) -> bool:
    """Whether `m` is, or contains, a pooling layer (`...Pool1d/2d/3d`)."""
    return _is_pool_type(m) or any(has_pool_type(c) for c in m.children())


def cut_model(model: nn.Module, cut: int | Callable) -> nn.Module:
    """The body of `model`: its children before index `cut`, or `cut(model)` when `cut` is a function."""
    if isinstance(cut, int):
        return nn.Sequential(*list(model.children())[:cut])
    if callable(cut):
        return cut(model)
    raise TypeError(f"cut_model: cut={cut!r} must be an int (index of the first child to drop) or a function")


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d] | None:
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            return parent, attr, mod
    return None


def _update_first_layer(model: nn.Module, n_in: int, pretrained: bool) -> None:
    # A pretrained first conv expects 3 channels: adapt its weights so the pretrained features still mean something.
    found = _first_conv(model)
    if found is None or n_in == found[2].in_channels:
        return
    parent, attr, conv = found
    # (torch types a conv's own kernel_size/stride/padding/dilation tuple[int, ...]; its constructor wants pairs)
    new = nn.Conv2d(n_in, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,  # type: ignore[arg-type]
                    conv.groups, conv.bias is not None, conv.padding_mode)
    if pretrained:
        with torch.no_grad():
            w = conv.weight
            if n_in == 1:
                new.weight.copy_(w.sum(dim=1, keepdim=True))
            elif n_in == 2:
                new.weight.copy_(w[:, :2] * 1.5)
            else:
                new.weight.zero_()
                k = min(n_in, w.shape[1])
                new.weight[:, :k] = w[:, :k]
            if conv.bias is not None:
                assert new.bias is not None  # built with bias=True just above
                new.bias.copy_(conv.bias)
    setattr(parent, attr, new)


def create_body(model: nn.Module, n_in: int = 3, pretrained: bool = True, cut: int | Callable | None = None) -> nn.Module:
    """Cut `model` (an instantiated classifier) before its classifier: at `cut`, else before the last child holding a
    pooling layer. `n_in` != 3 rebuilds the first conv (pretrained: summed for 1 channel, x1.5 for 2, zero-padded
    beyond 3)."""
    _update_first_layer(model, n_in, pretrained)
    if cut is None:
        children = list(model.children())
        pools = [i for i, c in enumerate(children) if has_pool_type(c)]
        if not pools:
            raise ValueError(f"create_body: {type(model).__name__} has no child with a pooling layer to cut at; "
                             "pass cut= (an index or a function)")
        cut = pools[-1]
    return cut_model(model, cut)


def create_head(nf: int, n_out: int, lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                pool: bool = True, concat_pool: bool = True, first_bn: bool = True, bn_final: bool = False,
                lin_first: bool = False, y_range: tuple[float, float] | None = None) -> nn.Sequential:
    """A classifier head for `nf` feature maps: pool (max and average concatenated), flatten, then `LinBnDrop`
    layers through `lin_ftrs` (default one hidden layer of 512) to `n_out`.

    One `ps` gives the last layer that dropout and the hidden layers half of it. `y_range` squashes outputs.
    """
    if pool and concat_pool:
        nf *= 2
    sizes = [nf, 512, n_out] if lin_ftrs is None else [nf, *lin_ftrs, n_out]
    bns = [first_bn] + [True] * (len(sizes) - 2)
    ps = list(L(ps))
    if len(ps) == 1:
        ps = [ps[0] / 2] * (len(sizes) - 2) + ps
    if len(ps) != len(sizes) - 1:
        raise ValueError(f"create_head: {len(ps)} dropout values for {len(sizes) - 1} layers; give one or one each")
    acts = [nn.ReLU(inplace=True) for _ in range(len(sizes) - 2)] + [None]
    layers: list[nn.Module] = []
    if pool:
        layers += [AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1), Flatten()]
    if lin_first:
        layers.append(nn.Dropout(ps.pop(0)))
    for ni, no, bn, p, act in zip(sizes[:-1], sizes[1:], bns, ps, acts):
        layers += LinBnDrop(ni, no, bn=bn, p=p, act=act, lin_first=lin_first)
    if lin_first:
        layers.append(nn.Linear(sizes[-2], n_out))
    if bn_final:
        layers.append(nn.BatchNorm1d(sizes[-1], momentum=0.01))
    if y_range is not None:
        layers.append(SigmoidRange(*y_range))
    return nn.Sequential(*layers)


def _init_head(m: nn.Module, init: Callable | None) -> None:
    if init is None:
        return
    for mod in m.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            init(mod.weight)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)


def add_head(body: nn.Module, nf: int | None, n_out: int, init: Callable | None = nn.init.kaiming_normal_,
             head: nn.Module | None = None, concat_pool: bool = True, pool: bool = True,
             lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5, first_bn: bool = True,
             bn_final: bool = False, lin_first: bool = False,
             y_range: tuple[float, float] | None = None) -> nn.Sequential:
    """`nn.Sequential(body, head)` with `head` (default `create_head(nf, n_out, ...)`, initialised with `init`).

    `nf` (the body's output features) is needed only to build the default head; None when `head` is given."""
    if head is None:
        if nf is None:
            raise TypeError("add_head: nf=None; give the number of features the body outputs (e.g. "
                             "num_features_model(body)) or pass head= with your own head")
        head = create_head(nf, n_out, concat_pool=concat_pool, pool=pool, lin_ftrs=lin_ftrs, ps=ps,
                           first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)
        _init_head(head, init)
    return nn.Sequential(body, head)


# ---------------------------------------------------------------------------------------------- pretrained weights


def _tv_weights(arch: Callable, weights):
    "torchvision's weights enum member for `arch` (`weights` may be None/'DEFAULT', a name or the member itself)."
    arch = resolve_arch(arch)
    import torchvision.models as tvm

    try:
        enum = tvm.get_model_weights(arch)
    except (ValueError, KeyError, TypeError):
        return None
    if weights is None or weights == "DEFAULT":
        return enum.DEFAULT
    if isinstance(weights, str):
        return enum[weights.split(".")[-1]]
    return weights


def pretrained_weights_path(arch: Callable, weights: Any = None) -> Path | None:
    """Where torch hub caches the ImageNet weights of torchvision constructor `arch` (None when it has none)."""
    w = _tv_weights(arch, weights)
    if w is None:
        return None
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name


def _accepts(f: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False


def _is_xresnet_class(f: Callable) -> bool:
    return isinstance(f, type) and issubclass(f, XResNet)


def _build(arch: Callable, pretrained: bool, weights: Any) -> nn.Module:
    "The model `arch` builds, with pretrained weights when asked (from the cache; clear error when unavailable)."
    arch = resolve_arch(arch)
    name = getattr(arch, "__name__", None) or getattr(getattr(arch, "func", None), "__name__", repr(arch))
    if _meta(arch).get("split") is _xresnet_split or _is_xresnet_class(arch):
        if pretrained:
            raise ValueError(f"{name} has no pretrained weights; pass pretrained=False to train it from scratch")
        return arch()
    if not pretrained:
        return arch(weights=None) if _accepts(arch, "weights") else arch()
    w = _tv_weights(arch, weights)
    if w is None:
        if _accepts(arch, "pretrained"):
            return arch(pretrained=True)
        raise ValueError(f"{name}: no pretrained weights are known for this architecture; pass pretrained=False, "
                         "or a torchvision constructor (resnet34...) and weights=")
    cached = pretrained_weights_path(arch, w)
    try:
        return arch(weights=w)  # torchvision reads the cache first, downloads only when missing
    except (OSError, RuntimeError) as e:  # urllib's URLError is an OSError
        raise RuntimeError(
            f"{name}: could not get its pretrained weights ({w}) from {w.url}: {e}. Offline? Put the file at "
            f"{cached} (torch hub's cache; TORCH_HOME moves it), or pass pretrained=False to train from scratch."
        ) from e


def create_vision_model(arch: Callable, n_out: int, pretrained: bool = True, weights: Any = None,
                        cut: int | Callable | None = None, n_in: int = 3,
                        init: Callable | None = nn.init.kaiming_normal_, custom_head: nn.Module | None = None,
                        concat_pool: bool = True, pool: bool = True, lin_ftrs: Sequence[int] | None = None,
                        ps: float | Sequence[float] = 0.5, first_bn: bool = True, bn_final: bool = False,
                        lin_first: bool = False, y_range: tuple[float, float] | None = None) -> nn.Sequential:
    """`nn.Sequential(body, head)`: the body of `arch` (cut per `model_meta`) and a new head for `n_out` outputs."""
    meta = _meta(arch)
    model = _build(arch, pretrained, weights)
    body = create_body(model, n_in, pretrained, cut if cut is not None else meta["cut"])
    nf = num_features_model(nn.Sequential(*body.children())) if custom_head is None else None
    return add_head(body, nf, n_out, init, head=custom_head, concat_pool=concat_pool, pool=pool, lin_ftrs=lin_ftrs,
                    ps=ps, first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)


def create_cnn_model(*args: Any, **kwargs: Any) -> nn.Module:
    """The old name of `create_vision_model` (same arguments); prefer `create_vision_model`."""
    import warnings

    warnings.warn("create_cnn_model has been renamed create_vision_model", DeprecationWarning, stacklevel=2)
    return create_vision_model(*args, **kwargs)


def create_unet_model(arch: Callable, n_out: int, img_size: tuple[int, int], pretrained: bool = True,
                      weights: Any = None, cut: int | Callable | None = None, n_in: int = 3,
                      **kwargs: Any) -> DynamicUnet:
    """A `DynamicUnet` on the body of `arch` for `n_out` classes; `kwargs` go to `DynamicUnet`."""
    meta = _meta(arch)
    model = _build(arch, pretrained, weights)
    body = create_body(model, n_in, pretrained, cut if cut is not None else meta["cut"])
    return DynamicUnet(body, n_out, cast("tuple[int, int]", tuple(img_size)), **kwargs)  # a list or Size too
