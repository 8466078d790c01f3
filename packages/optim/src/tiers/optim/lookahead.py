"""`Lookahead` (Zhang et al. 2019): k fast steps with any optimizer, then pull back towards slow weights."""

from collections import defaultdict
from typing import Any

import torch

from .base import _init_torch_hooks

__all__ = ["Lookahead"]

_OWN = frozenset({"opt", "k", "alpha", "count"})


class Lookahead(torch.optim.Optimizer):
    """Wrap optimizer `opt`: every `k` steps, slow weights move `alpha` of the way to the fast ones, which reset.

    Works around any optimizer of this layer or of `torch.optim`; hypers, freezing and `param_groups` are the
    wrapped optimizer's (so schedulers act on it), and `state_dict` adds the step count and slow weights.
    Example: `Lookahead(SGD(model.parameters(), lr=0.1), k=5, alpha=0.5)`.
    """

    def __init__(self, opt: torch.optim.Optimizer, k: int = 6, alpha: float = 0.5):
        if not (hasattr(opt, "param_groups") and callable(getattr(opt, "step", None))):
            raise TypeError(
                f"Lookahead wraps an optimizer (with param_groups and step), got {type(opt).__name__}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(
                f"Lookahead: k={k!r} must be a positive int (fast steps between synchronisations)"
            )
        if not 0 < alpha <= 1:
            raise ValueError(f"Lookahead: alpha={alpha!r} must be in (0, 1]")
        self.opt, self.k, self.alpha = opt, k, alpha
        self.count = 0
        self._slow: dict[torch.Tensor, torch.Tensor] = {}
        _init_torch_hooks(self)

    # The wrapped optimizer owns groups, state and defaults; schedulers and GradScaler read them through here.
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.opt.param_groups

    @param_groups.setter
    def param_groups(self, v: list[dict[str, Any]]) -> None:
        self.opt.param_groups = v

    @property
    def state(self) -> Any:
        return self.opt.state

    @state.setter
    def state(self, v: Any) -> None:
        self.opt.state = v

    @property
    def defaults(self) -> dict[str, Any]:
        return self.opt.defaults

    @defaults.setter
    def defaults(self, v: dict[str, Any]) -> None:
        self.opt.defaults = v

    @property
    def param_lists(self) -> list[list[torch.Tensor]]:
        """The wrapped optimizer's parameter lists; setting them also resets the slow weights."""
        return [list(g["params"]) for g in self.param_groups]

    @param_lists.setter
    def param_lists(self, v: list[list[torch.Tensor]]) -> None:
        self.opt.param_lists = v  # type: ignore[attr-defined]  # duck-typed: tiers optimizers have it
        self._slow = {}

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def step(self, closure: Any = None) -> Any:
        """One fast step of the wrapped optimizer; every `k`-th also synchronises with the slow weights."""
        params = self._params()
        with torch.no_grad():
            for p in params:
                if p not in self._slow:
                    self._slow[p] = p.detach().clone()
        loss = self.opt.step(closure)
        self.count += 1
        if self.count % self.k == 0:
            with torch.no_grad():
                slow = [self._slow[p] for p in params]
                torch._foreach_lerp_(slow, params, self.alpha)
                torch._foreach_copy_(params, slow)
        return loss

    def zero_grad(self, set_to_none: bool | None = None) -> None:
        """The wrapped optimizer's `zero_grad` (with its own default when `set_to_none` is None: in place for a
        tiers `Optimizer`, to None for a torch one)."""
        if set_to_none is None:
            self.opt.zero_grad()
        else:
            self.opt.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapped optimizer (its slow weights start at the current values)."""
        self.opt.add_param_group(param_group)

    def clear_state(self) -> None:
        """Clear the wrapped optimizer's state, the slow weights and the step count."""
        if hasattr(self.opt, "clear_state"):
            self.opt.clear_state()
        else:
            self.opt.state = defaultdict(dict)
        self._slow, self.count = {}, 0

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict plus `lookahead`: the step count and slow weights (in group order)."""
        sd = self.opt.state_dict()
        sd["lookahead"] = {"count": self.count, "slow_weights": [self._slow.get(p) for p in self._params()]}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()`; without a `lookahead` entry the slow weights restart from the current ones."""
        sd = dict(state_dict)
        la = sd.pop("lookahead", None)
        self.opt.load_state_dict(sd)
        params = self._params()
        self.count, self._slow = 0, {}
        if la is None:
            return
        slow = la["slow_weights"]
        if len(slow) != len(params):
            raise ValueError(
                f"the Lookahead state holds {len(slow)} slow weights but the optimizer has {len(params)} parameters"
            )
        self.count = int(la["count"])
        for p, s in zip(params, slow):
            if s is not None:
                self._slow[p] = s.detach().to(device=p.device, dtype=p.dtype, copy=True)

    def __getattr__(self, name: str) -> Any:
        # Reached only for names Lookahead lacks: hypers, set_hyper, freeze... come from the wrapped optimizer.
        if name.startswith("__") or name == "opt" or "opt" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.opt, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # Settings of the wrapped optimizer (`foreach`, `cbs`...) are set there, not shadowed here.
        forward = (
            "opt" in self.__dict__
            and name not in _OWN
            and not name.startswith("_")
            and name not in self.__dict__
            and not hasattr(type(self), name)
            and hasattr(self.opt, name)
        )
        if forward:
            setattr(self.opt, name, value)
        else:
            super().__setattr__(name, value)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_optimizer_")}

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha}, opt={self.opt!r})"
