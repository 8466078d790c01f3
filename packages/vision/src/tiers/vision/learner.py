"""Vision learners: a pretrained (or fresh) CNN body plus a new head (`vision_learner`), or a U-Net (`unet_learner`).

The Learner gets the architecture's splitter (body stages, head) so `freeze` trains only the head and
discriminative learning rates apply per stage; `pretrained=True` starts frozen and adds ImageNet normalisation
(see `tiers.vision.model_parts` for the bodies, heads and weights).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from tiers.data import Normalize, get_c
from tiers.dispatch import typedispatch
from tiers.optim import Adam
from tiers.tensors import TensorBBox, TensorPoint
from tiers.train import Callback, CrossEntropyLossFlat, Learner, MSELossFlat
from tiers.vision.core import PILImage, PILMask
from tiers.vision.model_parts import _meta, create_unet_model, create_vision_model, resolve_arch
from tiers.vision.targets import PointsMSELossFlat

__all__ = ["vision_learner", "cnn_learner", "unet_learner", "acc_segment"]


def _n_out(dls: Any) -> int:
    # Mask codes and point counts live on the item transforms, not on the dataset.
    after_item = getattr(getattr(dls, "train", None), "after_item", None)
    c = getattr(after_item, "c", None) if after_item is not None else None
    if isinstance(c, int) and not isinstance(c, bool):
        return c
    return get_c(dls)


def _refuse_one_class(learn: Learner, n_out: int, where: str) -> None:
    "Refuse single-label data of one class: cross-entropy over one output is always 0, so nothing would be learned."
    if n_out == 1 and isinstance(learn.loss_func, CrossEntropyLossFlat):
        vocab = list(getattr(learn.dls, "vocab", None) or [])
        raise ValueError(f"{where}: the labels hold one class only ({vocab[0] if vocab else '?'!r}), so a "
                         "classifier has nothing to learn (its loss is always 0); check the labels (the folders or "
                         "the label function) and the split, or pass n_out= and loss_func= for a one-output model.")


def _n_in(dls: Any, n_in: int | None) -> int:
    if n_in is not None:
        return n_in
    try:
        x = dls.one_batch()[0]
    except Exception:  # loaders that cannot produce a batch here: assume RGB
        return 3
    return int(x.shape[1]) if isinstance(x, Tensor) and x.ndim == 4 else 3


def _add_norm(dls: Any, meta: dict, pretrained: bool, n_in: int) -> None:
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


def _finish(dls: Any, model: nn.Module, arch: Callable | str, meta: dict, normalize: bool, n_out: int,
            pretrained: bool, n_in: int, splitter: Callable[[nn.Module], list] | None = None,
            **learner_kwargs: Any) -> Learner:
    # The steps both learners share once the model exists: normalisation, the Learner, freezing, the record.
    if normalize:
        _add_norm(dls, meta, pretrained, n_in)
    learn = Learner(dls, model, splitter=splitter if splitter is not None else meta["split"], **learner_kwargs)
    if pretrained:
        learn.freeze()
    # fastai's record of how the learner was built: instance attributes the Learner class does not declare
    for k, v in {"arch": arch, "normalize": normalize, "n_out": n_out, "pretrained": pretrained}.items():
        setattr(learn, k, v)
    return learn


def vision_learner(dls: Any, arch: Callable | str, normalize: bool = True, n_out: int | None = None,
                   pretrained: bool = True, weights: Any = None, loss_func: Callable | None = None,
                   opt_func: Callable = Adam, lr: float = 1e-3, splitter: Callable[[nn.Module], list] | None = None,
                   cbs: Callback | type | Iterable | None = None, metrics: Any = None, path: str | Path | None = None,
                   model_dir: str | Path = "models", wd: float | None = None, wd_bn_bias: bool = False,
                   train_bn: bool = True, moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
                   cut: int | Callable | None = None, init: Callable | None = nn.init.kaiming_normal_,
                   custom_head: nn.Module | None = None, concat_pool: bool = True, pool: bool = True,
                   lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5, first_bn: bool = True,
                   bn_final: bool = False, lin_first: bool = False, y_range: tuple[float, float] | None = None,
                   n_in: int | None = None, **kwargs: Any) -> Learner:
    """A `Learner` for `dls` with the body of `arch` (e.g. `resnet34`, `xresnet18`, or a name: `"resnet34"`) and a new
    head. timm models work by name or function (`"convnext_atto"`; extra `kwargs` go to `timm.create_model`; see
    `tiers.vision.timm`, extra `tiers-vision[timm]`).

    `n_out` defaults to the data's number of classes and `n_in` to the channels of the data's images. With
    `pretrained` the body starts from ImageNet weights, the learner is frozen (only the head trains until
    `unfreeze`), and `normalize` adds ImageNet normalisation to the batches. The other arguments go to `Learner`
    and `create_head`.

    >>> learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy)  # doctest: +SKIP
    >>> learn.fit_one_cycle(5, 3e-3)  # doctest: +SKIP
    """
    from tiers.vision import timm as _timm  # timm itself is imported only for timm architectures

    use_timm = _timm.is_timm_arch(arch, kwargs)
    arch = resolve_arch(arch) if isinstance(arch, str) and not use_timm else arch  # a name, as fastai takes timm names
    meta = None if use_timm else _meta(arch)
    n_out_given = n_out is not None
    n_out = n_out if n_out is not None else _n_out(dls)
    n_in = _n_in(dls, n_in)
    head_kw: dict[str, Any] = dict(pretrained=pretrained, weights=weights, cut=cut, n_in=n_in, init=init,
                                   custom_head=custom_head, concat_pool=concat_pool, pool=pool, lin_ftrs=lin_ftrs,
                                   ps=ps, first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)
    model: nn.Module
    if use_timm:
        model, meta = _timm.create_timm_model(arch, n_out, **head_kw, **kwargs)
    else:
        assert meta is not None and not isinstance(arch, str)  # resolved above: names become constructors
        model = create_vision_model(arch, n_out, **head_kw, **kwargs)
    learn = _finish(dls, model, arch, meta, normalize, n_out, pretrained, n_in, loss_func=loss_func,
                    opt_func=opt_func, lr=lr, splitter=splitter, cbs=cbs, metrics=metrics, path=path,
                    model_dir=model_dir, wd=wd, wd_bn_bias=wd_bn_bias, train_bn=train_bn, moms=moms)
    if not n_out_given and loss_func is None:
        _refuse_one_class(learn, n_out, "vision_learner")
    return learn


def cnn_learner(*args: Any, **kwargs: Any) -> Learner:
    """The old name of `vision_learner` (same arguments); prefer `vision_learner`."""
    warnings.warn("cnn_learner has been renamed vision_learner", DeprecationWarning, stacklevel=2)
    return vision_learner(*args, **kwargs)


def unet_learner(dls: Any, arch: Callable | str, normalize: bool = True, n_out: int | None = None,
                 pretrained: bool = True, weights: Any = None, loss_func: Callable | None = None,
                 opt_func: Callable = Adam, lr: float = 1e-3, splitter: Callable[[nn.Module], list] | None = None,
                 cbs: Callback | type | Iterable | None = None, metrics: Any = None, path: str | Path | None = None,
                 model_dir: str | Path = "models", wd: float | None = None, wd_bn_bias: bool = False,
                 train_bn: bool = True, moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
                 n_in: int | None = None, **kwargs: Any) -> Learner:
    """A `Learner` with a U-Net on the body of `arch` for segmentation (or any image-to-image task).

    `n_out` defaults to the number of mask codes; `kwargs` go to `DynamicUnet` (`blur`, `self_attention`,
    `y_range`, `last_cross`, `bottle`...). Pretrained: frozen encoder and ImageNet normalisation, as in
    `vision_learner`.
    """
    arch = resolve_arch(arch) if isinstance(arch, str) else arch  # a name, as fastai takes timm names
    meta = _meta(arch)
    n_out = n_out if n_out is not None else _n_out(dls)
    n_in = _n_in(dls, n_in)
    img_size = cast("tuple[int, int]", tuple(dls.one_batch()[0].shape[-2:]))  # (h, w) of an image batch
    model = create_unet_model(arch, n_out, img_size, pretrained=pretrained, weights=weights, n_in=n_in, **kwargs)
    return _finish(dls, model, arch, meta, normalize, n_out, pretrained, n_in, loss_func=loss_func,
                   opt_func=opt_func, lr=lr, splitter=splitter, cbs=cbs, metrics=metrics, path=path,
                   model_dir=model_dir, wd=wd, wd_bn_bias=wd_bn_bias, train_bn=train_bn, moms=moms)


# The Learner picks its default loss from the dataset's first item, where vision targets are still PIL images.
@typedispatch
def default_loss(targ: PILMask):
    """Masks: `CrossEntropyLossFlat(axis=1)` (one score per class on the channel axis)."""
    return CrossEntropyLossFlat(axis=1)


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: PILImage):  # noqa: F811
    """Image targets (image-to-image tasks): `MSELossFlat()`."""
    return MSELossFlat()


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def default_loss(targ: TensorPoint):  # noqa: F811
    """Points (`PointBlock`): `PointsMSELossFlat()`, whose decoded predictions are (n, 2) points like the targets;
    boxes: `MSELossFlat()`."""
    return MSELossFlat() if isinstance(targ, TensorBBox) else PointsMSELossFlat()


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
