"""`OptimWrapper`: any `torch.optim` optimizer behind the interface of this layer's `Optimizer`.

Hyper-parameters keep torch's storage (`param_groups`) but are read and set under fastai's names:
`momentum`, `betas[0]` -> `mom`; `betas[1]`, RMSprop's `alpha` -> `sqr_mom`; `weight_decay` -> `wd`.
"""

import inspect
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .base import _BaseOptimizer, _init_torch_hooks, as_param_groups

__all__ = ["OptimWrapper", "pytorch_hp_map"]

pytorch_hp_map = {
    "momentum": "mom",
    "weight_decay": "wd",
    "alpha": "sqr_mom",
    "betas__0": "mom",
    "betas__1": "sqr_mom",
}


def _default_map(opt_type: Callable[..., Any]) -> dict[str, str]:
    hp_map = dict(pytorch_hp_map)
    # Only RMSprop's `alpha` is a squared-gradient factor (ASGD's `alpha` is a decay power).
    if not (isinstance(opt_type, type) and issubclass(opt_type, torch.optim.RMSprop)):
        hp_map.pop("alpha")
    return hp_map


def _split_kwargs(
    opt: Callable, kwargs: dict[str, Any], hp_map: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `kwargs` into the constructor's own keywords (fastai names translated) and those to set afterwards."""
    sig: Mapping[str, inspect.Parameter]
    try:
        sig = inspect.signature(opt).parameters
    except (TypeError, ValueError):
        sig = {}
    native: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for k, v in kwargs.items():
        sources = [tk for tk, name in hp_map.items() if name == k]
        if k in sig or not sources:
            native[k] = v
            continue
        for tk in sources:
            name, sep, idx = tk.rpartition("__")
            if sep and idx.isdigit() and name in sig:
                current = native.get(name, sig[name].default)
                if isinstance(current, (tuple, list)):
                    seq = list(current)
                    seq[int(idx)] = v
                    native[name] = tuple(seq)
                    break
            elif tk in sig:
                native[tk] = v
                break
        else:
            later[k] = v
    return native, later


class OptimWrapper(_BaseOptimizer, torch.optim.Optimizer):
    """Give a `torch.optim` optimizer the interface of `Optimizer`: fastai-named hypers, `set_hyper`, freezing.

    `opt` is a torch optimizer class (built here on `params`, converted to group dicts when `convert_groups`)
    or an already built optimizer (then `params` is ignored). `kwargs` go to the constructor and may use
    fastai's names (`mom`, `sqr_mom`, `wd`); `hp_map` overrides `pytorch_hp_map`. Example:
    `OptimWrapper(model.parameters(), opt=torch.optim.AdamW, lr=1e-3, mom=0.9)`, or as a Learner's
    `opt_func`: `partial(OptimWrapper, opt=torch.optim.AdamW)`.

    `state` holds only the per-parameter flags (`force_train`, `do_wd`) so the wrapped optimizer's own state
    stays torch's; the wrapped optimizer applies weight decay to every parameter (it ignores `do_wd`).
    """

    _split_tuples = True

    def __init__(
        self,
        params: Any = None,
        opt: Callable | torch.optim.Optimizer | None = None,
        hp_map: Mapping[str, str] | None = None,
        convert_groups: bool = True,
        **kwargs: Any,
    ):
        if isinstance(opt, torch.optim.Optimizer):
            self.opt = opt
            self._hp_fwd = dict(hp_map) if hp_map is not None else _default_map(type(opt))
            later = kwargs
        elif callable(opt):
            if params is None:
                raise TypeError(f"OptimWrapper: building {getattr(opt, '__name__', opt)} needs params")
            self._hp_fwd = dict(hp_map) if hp_map is not None else _default_map(opt)
            native, later = _split_kwargs(opt, kwargs, self._hp_fwd)
            self.opt = opt(as_param_groups(params) if convert_groups else params, **native)
            if not isinstance(self.opt, torch.optim.Optimizer):
                raise TypeError(
                    f"OptimWrapper: opt built a {type(self.opt).__name__}, not a torch.optim.Optimizer"
                )
        else:
            raise TypeError(
                f"OptimWrapper needs opt: a torch optimizer class such as torch.optim.AdamW or a built "
                f"optimizer, got {opt!r}"
            )
        self.state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        _init_torch_hooks(self)
        for k, v in later.items():
            if not any(k in h for h in self.hypers):
                raise TypeError(
                    f"OptimWrapper: {type(self.opt).__name__} has no hyper-parameter {k!r} "
                    f"(its hypers: {sorted(self.hypers[0])}); pass hp_map to name one"
                )
            self.set_hyper(k, v)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.opt.param_groups

    @param_groups.setter
    def param_groups(self, v: list[dict[str, Any]]) -> None:
        self.opt.param_groups = v

    @property
    def defaults(self) -> dict[str, Any]:
        return self.opt.defaults

    @defaults.setter
    def defaults(self, v: dict[str, Any]) -> None:
        self.opt.defaults = v

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """The wrapped optimizer's `step` (which fires torch's global and its own step hooks); hooks registered on
        this wrapper with `register_step_pre_hook`/`register_step_post_hook` run around it."""
        if self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks:
            return self._hooked_step(closure)
        return self.opt.step(closure)

    # torch wraps the `step` of every Optimizer subclass in a profiling/hook layer unless it is marked `hooked`;
    # the wrapped optimizer's step already has that layer, so a second one would only cost time per step (and
    # fire global hooks twice)
    step.hooked = True  # type: ignore[attr-defined]

    def _hooked_step(self, closure: Callable[[], Any] | None) -> Any:
        # the same protocol as torch's hook layer: hooks see (optimizer, args with self first, kwargs)
        args: tuple = (self,) if closure is None else (self, closure)
        kwargs: dict[str, Any] = {}
        for hook in list(self._optimizer_step_pre_hooks.values()):
            res = hook(self, args, kwargs)
            if res is not None:
                if not (isinstance(res, tuple) and len(res) == 2):
                    raise RuntimeError(
                        f"OptimWrapper.step: a step pre-hook must return None or (args, kwargs), got {res!r}"
                    )
                args, kwargs = res
        out = self.opt.step(*args[1:], **kwargs)
        for hook in list(self._optimizer_step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The wrapped optimizer's `zero_grad`: this follows torch (gradients set to None by default), as fastai's
        `OptimWrapper` does, while tiers' own `Optimizer` zeroes them in place like fastai's."""
        self.opt.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapped optimizer."""
        self.opt.add_param_group(param_group)

    def clear_state(self) -> None:
        """Forget the wrapped optimizer's state (moments, step counts); the flags in `state` stay."""
        self.opt.state = defaultdict(dict)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's `state_dict()` (torch's format)."""
        return self.opt.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict into the wrapped optimizer."""
        self.opt.load_state_dict(state_dict)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "opt" or "opt" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.opt, name)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_optimizer_")}

    def __repr__(self) -> str:
        return f"OptimWrapper({self.opt!r})"
