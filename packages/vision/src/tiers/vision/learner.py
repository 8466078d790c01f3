"""Vision learners: a pretrained (or fresh) CNN body plus a new head (`vision_learner`), or a U-Net (`unet_learner`).

`create_body` cuts a classifier before its pooling layer, `create_head` builds concat-pool, batch-norm, dropout
and linear layers, and the Learner gets a splitter (body stages, head) so `freeze` trains only the head and
discriminative learning rates apply per stage. `pretrained=True` loads torchvision's ImageNet weights from the
torch hub cache (`torch.hub.get_dir()/checkpoints`), downloading only when they are missing; when that is
impossible (offline) the error says where to put the file, or to pass `pretrained=False`.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tiers.data import Normalize, get_c
from tiers.dispatch import L, typedispatch
from tiers.optim import Adam
from tiers.train import (
    AdaptiveConcatPool2d,
    CrossEntropyLossFlat,
    Flatten,
    Learner,
    LinBnDrop,
    MSELossFlat,
    SigmoidRange,
    num_features_model,
    params,
)
from tiers.vision.core import PILImage, PILMask, imagenet_stats
from tiers.vision.models.unet import DynamicUnet
from tiers.vision.models.xresnet import XResNet

__all__ = [
    "model_meta", "has_pool_type", "cut_model", "create_body", "create_head", "default_split", "add_head",
    "create_vision_model", "vision_learner", "cnn_learner", "create_unet_model", "unet_learner", "acc_segment",
    "pretrained_weights_path",
]


# ---------------------------------------------------------------------------------------------- model metadata


def default_split(m: nn.Module) -> list[list[nn.Parameter]]:
    """Two parameter groups: the body `m[0]` and everything after it (the head)."""
    return [params(m[0]), params(m[1:])]


def _resnet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return [params(m[0][:6]), params(m[0][6:]), params(m[1:])]


def _xresnet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return [params(m[0][:3]), params(m[0][3:]), params(m[1:])]


def _squeezenet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return [params(m[0][0][:5]), params(m[0][0][5:]), params(m[1:])]


def _densenet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return [params(m[0][0][:7]), params(m[0][0][7:]), params(m[1:])]


def _vgg_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return [params(m[0][0][:22]), params(m[0][0][22:]), params(m[1:])]


def _alexnet_split(m: nn.Module) -> list[list[nn.Parameter]]:
    return [params(m[0][0][:6]), params(m[0][0][6:]), params(m[1:])]


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
    new = nn.Conv2d(n_in, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
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


def add_head(body: nn.Module, nf: int, n_out: int, init: Callable | None = nn.init.kaiming_normal_,
             head: nn.Module | None = None, concat_pool: bool = True, pool: bool = True, lin_ftrs=None,
             ps: float = 0.5, first_bn: bool = True, bn_final: bool = False, lin_first: bool = False,
             y_range=None) -> nn.Sequential:
    """`nn.Sequential(body, head)` with `head` (default `create_head(nf, n_out, ...)`, initialised with `init`)."""
    if head is None:
        head = create_head(nf, n_out, concat_pool=concat_pool, pool=pool, lin_ftrs=lin_ftrs, ps=ps,
                           first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)
        _init_head(head, init)
    return nn.Sequential(body, head)


# ---------------------------------------------------------------------------------------------- pretrained weights


def _tv_weights(arch: Callable, weights):
    "torchvision's weights enum member for `arch` (`weights` may be None/'DEFAULT', a name or the member itself)."
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


def pretrained_weights_path(arch: Callable, weights=None) -> Path | None:
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


def _build(arch: Callable, pretrained: bool, weights) -> nn.Module:
    "The model `arch` builds, with pretrained weights when asked (from the cache; clear error when unavailable)."
    name = getattr(arch, "__name__", None) or getattr(getattr(arch, "func", None), "__name__", repr(arch))
    if _meta(arch).get("split") is _xresnet_split or (isinstance(arch, type) and issubclass(arch, XResNet)):
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


def create_vision_model(arch: Callable, n_out: int, pretrained: bool = True, weights=None, cut=None, n_in: int = 3,
                        init: Callable | None = nn.init.kaiming_normal_, custom_head: nn.Module | None = None,
                        concat_pool: bool = True, pool: bool = True, lin_ftrs=None, ps: float = 0.5,
                        first_bn: bool = True, bn_final: bool = False, lin_first: bool = False,
                        y_range=None) -> nn.Sequential:
    """`nn.Sequential(body, head)`: the body of `arch` (cut per `model_meta`) and a new head for `n_out` outputs."""
    meta = _meta(arch)
    model = _build(arch, pretrained, weights)
    body = create_body(model, n_in, pretrained, cut if cut is not None else meta["cut"])
    nf = num_features_model(nn.Sequential(*body.children())) if custom_head is None else None
    return add_head(body, nf, n_out, init, head=custom_head, concat_pool=concat_pool, pool=pool, lin_ftrs=lin_ftrs,
                    ps=ps, first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)


def _n_out(dls) -> int:
    # Mask codes and point counts live on the item transforms, not on the dataset.
    after_item = getattr(getattr(dls, "train", None), "after_item", None)
    c = getattr(after_item, "c", None) if after_item is not None else None
    if isinstance(c, int) and not isinstance(c, bool):
        return c
    return get_c(dls)


def _n_in(dls, n_in: int | None) -> int:
    if n_in is not None:
        return n_in
    try:
        x = dls.one_batch()[0]
    except Exception:  # loaders that cannot produce a batch here: assume RGB
        return 3
    return int(x.shape[1]) if isinstance(x, Tensor) and x.ndim == 4 else 3


def _add_norm(dls, meta: dict, pretrained: bool, n_in: int) -> None:
    # Pretrained weights expect the statistics they were trained with; fresh models learn their own scale.
    stats = meta.get("stats")
    if not pretrained or stats is None or n_in != len(stats[0]):
        return
    for dl in getattr(dls, "loaders", [dls]):
        after_batch = getattr(dl, "after_batch", None)
        if after_batch is None or any(isinstance(t, Normalize) for t in after_batch.fs):
            return
    if hasattr(dls, "add_tfms"):
        dls.add_tfms([Normalize.from_stats(*stats)], "after_batch")


def vision_learner(dls, arch: Callable, normalize: bool = True, n_out: int | None = None, pretrained: bool = True,
                   weights=None, loss_func=None, opt_func=Adam, lr: float = 1e-3, splitter=None, cbs=None,
                   metrics=None, path=None, model_dir="models", wd=None, wd_bn_bias: bool = False,
                   train_bn: bool = True, moms=(0.95, 0.85, 0.95), cut=None,
                   init: Callable | None = nn.init.kaiming_normal_, custom_head=None, concat_pool: bool = True,
                   pool: bool = True, lin_ftrs=None, ps: float = 0.5, first_bn: bool = True, bn_final: bool = False,
                   lin_first: bool = False, y_range=None, n_in: int | None = None) -> Learner:
    """A `Learner` for `dls` with the body of `arch` (e.g. `resnet34`, `xresnet18`) and a new head.

    `n_out` defaults to the data's number of classes and `n_in` to the channels of the data's images. With
    `pretrained` the body starts from ImageNet weights, the learner is frozen (only the head trains until
    `unfreeze`), and `normalize` adds ImageNet normalisation to the batches. The other arguments go to `Learner`
    and `create_head`.

    >>> learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy)  # doctest: +SKIP
    >>> learn.fit_one_cycle(5, 3e-3)  # doctest: +SKIP
    """
    meta = _meta(arch)
    n_out = n_out if n_out is not None else _n_out(dls)
    n_in = _n_in(dls, n_in)
    model = create_vision_model(arch, n_out, pretrained=pretrained, weights=weights, cut=cut, n_in=n_in, init=init,
                                custom_head=custom_head, concat_pool=concat_pool, pool=pool, lin_ftrs=lin_ftrs,
                                ps=ps, first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)
    if normalize:
        _add_norm(dls, meta, pretrained, n_in)
    learn = Learner(dls, model, loss_func=loss_func, opt_func=opt_func, lr=lr,
                    splitter=splitter if splitter is not None else meta["split"], cbs=cbs, metrics=metrics,
                    path=path, model_dir=model_dir, wd=wd, wd_bn_bias=wd_bn_bias, train_bn=train_bn, moms=moms)
    if pretrained:
        learn.freeze()
    learn.arch, learn.normalize, learn.n_out, learn.pretrained = arch, normalize, n_out, pretrained
    return learn


def cnn_learner(*args: Any, **kwargs: Any) -> Learner:
    """The old name of `vision_learner` (same arguments); prefer `vision_learner`."""
    warnings.warn("cnn_learner has been renamed vision_learner", DeprecationWarning, stacklevel=2)
    return vision_learner(*args, **kwargs)


def create_unet_model(arch: Callable, n_out: int, img_size: tuple[int, int], pretrained: bool = True, weights=None,
                      cut=None, n_in: int = 3, **kwargs: Any) -> DynamicUnet:
    """A `DynamicUnet` on the body of `arch` for `n_out` classes; `kwargs` go to `DynamicUnet`."""
    meta = _meta(arch)
    model = _build(arch, pretrained, weights)
    body = create_body(model, n_in, pretrained, cut if cut is not None else meta["cut"])
    return DynamicUnet(body, n_out, tuple(img_size), **kwargs)


def unet_learner(dls, arch: Callable, normalize: bool = True, n_out: int | None = None, pretrained: bool = True,
                 weights=None, loss_func=None, opt_func=Adam, lr: float = 1e-3, splitter=None, cbs=None,
                 metrics=None, path=None, model_dir="models", wd=None, wd_bn_bias: bool = False,
                 train_bn: bool = True, moms=(0.95, 0.85, 0.95), n_in: int | None = None,
                 **kwargs: Any) -> Learner:
    """A `Learner` with a U-Net on the body of `arch` for segmentation (or any image-to-image task).

    `n_out` defaults to the number of mask codes; `kwargs` go to `DynamicUnet` (`blur`, `self_attention`,
    `y_range`, `last_cross`, `bottle`...). Pretrained: frozen encoder and ImageNet normalisation, as in
    `vision_learner`.
    """
    meta = _meta(arch)
    n_out = n_out if n_out is not None else _n_out(dls)
    n_in = _n_in(dls, n_in)
    img_size = tuple(dls.one_batch()[0].shape[-2:])
    model = create_unet_model(arch, n_out, img_size, pretrained=pretrained, weights=weights, n_in=n_in, **kwargs)
    if normalize:
        _add_norm(dls, meta, pretrained, n_in)
    learn = Learner(dls, model, loss_func=loss_func, opt_func=opt_func, lr=lr,
                    splitter=splitter if splitter is not None else meta["split"], cbs=cbs, metrics=metrics,
                    path=path, model_dir=model_dir, wd=wd, wd_bn_bias=wd_bn_bias, train_bn=train_bn, moms=moms)
    if pretrained:
        learn.freeze()
    learn.arch, learn.normalize, learn.n_out, learn.pretrained = arch, normalize, n_out, pretrained
    return learn


# The Learner picks its default loss from the dataset's first item, where vision targets are still PIL images.
@typedispatch
def default_loss(targ: PILMask):
    """Masks: `CrossEntropyLossFlat(axis=1)` (one score per class on the channel axis)."""
    return CrossEntropyLossFlat(axis=1)


@typedispatch
def default_loss(targ: PILImage):  # noqa: F811
    """Image targets (image-to-image tasks): `MSELossFlat()`."""
    return MSELossFlat()


def acc_segment(inp: Tensor, targ: Tensor, void_code: int | None = None) -> Tensor:
    """Pixel accuracy of segmentation scores `inp` (bs, classes, h, w) against masks `targ` (bs, h, w), ignoring
    pixels labelled `void_code` (when given)."""
    pred = inp.argmax(dim=1)
    targ = targ.reshape(pred.shape)
    keep = torch.ones_like(targ, dtype=torch.bool) if void_code is None else targ != void_code
    n = keep.sum()
    if n == 0:
        return torch.tensor(float("nan"), device=inp.device)
    return (pred[keep] == targ[keep]).float().mean()
