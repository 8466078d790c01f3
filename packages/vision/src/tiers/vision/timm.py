"""timm architectures in `vision_learner`: `vision_learner(dls, 'convnext_atto', pretrained=False)`.

Any timm model name (or a timm model constructor) builds a `TimmBody` plus a tiers head, with the parameter groups
that discriminative learning rates and `freeze` need (early body, late body, head; from timm's own `group_matcher`).
Extra keyword arguments of `vision_learner` go to `timm.create_model` (`img_size=`, `drop_path_rate=`,
`pretrained_cfg_overlay=dict(file=...)`...). `pretrained=True` loads timm's weights through timm (its Hugging Face
or torch hub cache first, the network only when missing) and adds the normalisation they were trained with.

timm is an optional extra: `pip install 'tiers-vision[timm]'`. It is imported only when a timm model is asked for.
Names that tiers or torchvision know (`'resnet34'`, `'xresnet18'`) keep their meaning; prefix `'timm/'` to get
timm's model of the same name (`'timm/resnet34'`), or pass timm keyword arguments.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, cast

from torch import Tensor, nn

from tiers.dispatch.extras import require
from tiers.train import params
from tiers.vision.model_parts import add_head, cut_model, default_split, resolve_arch

__all__ = ["TimmBody", "create_timm_model", "is_timm_arch", "timm_split", "import_timm"]

_EXTRA = 'pip install "tiers-vision[timm]"'
_PREFIX = "timm/"


def import_timm() -> ModuleType:
    """The `timm` module; a missing timm raises `MissingExtraError` (a `ModuleNotFoundError`) naming the extra
    tiers-vision[timm] and the command that installs it."""
    return require("timm", dist="tiers-vision", extra="timm", what="timm architectures")


def _timm_entry_name(arch: Callable) -> str | None:
    # A timm model function registered under its own name is built through `timm.create_model(name)`, which also
    # resolves its pretrained config (weights location, normalisation statistics). A `partial` is called as it is,
    # so its keywords count.
    f = arch
    if not (getattr(f, "__module__", "") or "").startswith("timm."):
        return None
    timm = import_timm()
    name = getattr(f, "__name__", None)
    if name and timm.models.is_model(name) and timm.models.model_entrypoint(name) is f:
        return name
    return None


def _is_timm_callable(arch: Any) -> bool:
    f = getattr(arch, "func", arch)
    return callable(f) and (getattr(f, "__module__", "") or "").startswith("timm.")


def _unknown_name(name: str) -> ValueError:
    try:
        timm = import_timm()
    except ImportError:
        return ValueError(
            f"arch={name!r} is not an architecture tiers or torchvision knows: pass a model function (xresnet18, "
            f"resnet34...) or one of their names. If {name!r} is a timm model, timm is an optional extra: {_EXTRA}")
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"close timm names: {', '.join(close)}" if close else "timm.list_models('*pattern*') lists timm's names"
    return ValueError(f"arch={name!r} is not an architecture tiers, torchvision or timm knows ({hint}); pass a model "
                      "function (xresnet18, resnet34...) or one of their names")


def is_timm_arch(arch: Any, timm_kwargs: dict | None = None) -> bool:
    """Whether `vision_learner` should build `arch` with timm.

    True for a timm model function and for a name that tiers and torchvision do not know (or one written
    `'timm/<name>'`, or any name with `timm_kwargs`, which only timm takes) when timm knows it. An unknown name raises
    `ValueError` (with timm's closest names); `timm_kwargs` for a non-timm architecture raise `TypeError`.
    """
    timm_kwargs = timm_kwargs or {}
    if isinstance(arch, str):
        if arch.startswith(_PREFIX) or arch.startswith("hf-hub:") or arch.startswith("hf_hub:"):
            import_timm()
            return True
        try:
            resolve_arch(arch)
            known = True
        except ValueError:
            known = False
        if known and not timm_kwargs:
            return False  # tiers' and torchvision's names keep their meaning
        if not known:
            try:
                timm = import_timm()
            except ImportError:
                raise _unknown_name(arch) from None
            if not timm.models.is_model(arch):
                raise _unknown_name(arch)
            return True
        if import_timm().models.is_model(arch):
            return True
        raise TypeError(f"vision_learner: unexpected keyword arguments {sorted(timm_kwargs)} for arch={arch!r} "
                        "(extra keyword arguments go to timm.create_model, for timm architectures only)")
    if _is_timm_callable(arch):
        import_timm()
        return True
    if timm_kwargs:
        raise TypeError(f"vision_learner: unexpected keyword arguments {sorted(timm_kwargs)} for arch={arch!r} "
                        "(extra keyword arguments go to timm.create_model, for timm architectures only)")
    return False


class TimmBody(nn.Module):
    """The feature extractor of timm model `model` (built with `num_classes=0`).

    CNNs (timm's config gives a `pool_size` and the features are channels-first) return their last feature map, so the
    tiers head pools it (`concat_pool`); token models (ViT, Swin...) return timm's own pooled features, so the head
    must not pool (`needs_pool` is False). With `cut` the body is `cut_model(model, cut)` and returns a feature map.
    """

    def __init__(self, model: nn.Module, cut: int | Callable | None = None):
        super().__init__()
        cfg = getattr(model, "pretrained_cfg", None) or {}
        channels_first = str(getattr(model, "output_fmt", "NCHW")).upper().endswith("NCHW")
        self.cut = cut is not None
        self.needs_pool = self.cut or (cfg.get("pool_size") is not None and channels_first)
        self.model = cut_model(model, cut) if cut is not None else model
        tm: Any = model  # a timm model: `num_features`, `forward_features`... are not nn.Module's
        self.num_features: int | None
        if self.cut:
            self.num_features = None
        elif self.needs_pool:
            self.num_features = int(tm.num_features)
        else:
            self.num_features = int(getattr(tm, "head_hidden_size", None) or tm.num_features)

    def forward(self, x: Tensor) -> Tensor:
        if self.cut:
            return self.model(x)
        tm: Any = self.model  # the timm model itself (not cut): timm's forward_features/forward_head
        feats = tm.forward_features(x)
        return feats if self.needs_pool else tm.forward_head(feats, pre_logits=True)


def timm_split(m: nn.Module) -> list[list[nn.Parameter]]:
    """Three parameter groups for `nn.Sequential(TimmBody, head)`: the first half of the body's blocks (stem
    included), the second half (final norm included), the head. The blocks are timm's own coarse groups
    (`group_matcher`); a body without them splits as body and head."""
    body = cast(nn.Sequential, m)[0]  # nn.Sequential(TimmBody, head), as create_timm_model builds it
    inner: Any = getattr(body, "model", None)
    matcher = getattr(inner, "group_matcher", None)
    if getattr(body, "cut", True) or matcher is None:
        return default_split(m)
    group_parameters = require("timm.models", dist="tiers-vision", extra="timm", what="timm_split").group_parameters

    groups = list(group_parameters(inner, matcher(coarse=True)).values())
    if len(groups) < 2:
        return default_split(m)
    named = dict(inner.named_parameters())
    half = len(groups) // 2
    early = [named[n] for g in groups[:half] for n in g]
    late = [named[n] for g in groups[half:] for n in g]
    return [early, late, params(cast(nn.Sequential, m)[1:])]


def _display_name(arch: Any) -> str:
    return arch if isinstance(arch, str) else getattr(getattr(arch, "func", arch), "__name__", repr(arch))


def _weights_error(name: str, timm: ModuleType, err: BaseException) -> RuntimeError:
    # Say where timm looked, so an offline user can put the file there (or point timm at a local file).
    where = ""
    try:
        cfg = timm.models.get_pretrained_cfg(name.removeprefix(_PREFIX))
    except Exception:  # noqa: BLE001 - a name timm has no config for: the generic advice below still holds
        cfg = None
    if cfg is not None and getattr(cfg, "hf_hub_id", None):
        constants = require("huggingface_hub", dist="tiers-vision", extra="timm", what="timm pretrained weights").constants

        where = (f" timm reads them from the Hugging Face cache ({constants.HF_HUB_CACHE}, repo {cfg.hf_hub_id}; "
                 "HF_HOME moves it) before the network.")
    elif cfg is not None and getattr(cfg, "url", None):
        import torch

        where = f" timm reads them from torch hub's cache ({torch.hub.get_dir()}/checkpoints) before the network."
    return RuntimeError(
        f"{name}: could not get timm's pretrained weights: {type(err).__name__}: {err}.{where} Offline? Fill that "
        "cache on a connected machine, or pass pretrained_cfg_overlay=dict(file='path/to/weights.safetensors') to "
        "load a local file, or pretrained=False to train from scratch.")


def create_timm_model(arch: str | Callable, n_out: int, pretrained: bool = True, cut: int | Callable | None = None,
                      n_in: int = 3, init: Callable | None = nn.init.kaiming_normal_,
                      custom_head: nn.Module | None = None, concat_pool: bool = True, pool: bool = True,
                      lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5, first_bn: bool = True,
                      bn_final: bool = False, lin_first: bool = False, y_range: tuple[float, float] | None = None,
                      weights: Any = None, **kwargs: Any) -> tuple[nn.Sequential, dict]:
    """`(nn.Sequential(TimmBody, head), meta)` for timm model `arch` (a name or a model function) and `n_out` outputs.

    `kwargs` go to `timm.create_model` (or to the function); timm adapts the first conv to `n_in` channels (its
    pretrained weights too). `meta` holds the splitter (`timm_split`) and, for the normalisation, the mean and std
    of the pretrained weights.
    """
    timm = import_timm()
    name = _display_name(arch)
    if weights is not None:
        raise TypeError(f"{name}: weights={weights!r} names torchvision weights; a timm model takes a tagged name "
                        "('convnext_tiny.fb_in22k') or pretrained_cfg_overlay=dict(file='path/to/weights')")
    entry = arch.removeprefix(_PREFIX) if isinstance(arch, str) else _timm_entry_name(arch)
    build_kw = dict(pretrained=pretrained, num_classes=0, in_chans=n_in, **kwargs)
    try:
        if entry is not None:
            model = timm.create_model(entry, **build_kw)
        else:
            model = cast(Callable[..., nn.Module], arch)(**build_kw)  # not a name: those always have an entry
    except (OSError, RuntimeError) as e:  # huggingface_hub's offline errors are OSErrors, torch hub's URLError too
        if not pretrained:
            raise
        raise _weights_error(name, timm, e) from e
    body = TimmBody(model, cut)
    nf = body.num_features
    if nf is None and custom_head is None:
        from tiers.train import num_features_model

        nf = num_features_model(body)
    head_pool = pool and body.needs_pool
    net = add_head(body, nf, n_out, init, head=custom_head, concat_pool=concat_pool, pool=head_pool,
                   lin_ftrs=lin_ftrs, ps=ps, first_bn=first_bn, bn_final=bn_final, lin_first=lin_first,
                   y_range=y_range)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    stats = (tuple(cfg["mean"]), tuple(cfg["std"])) if cfg.get("mean") and cfg.get("std") else None
    meta = {"cut": cut, "split": default_split if body.cut else timm_split, "stats": stats}
    return net, meta
