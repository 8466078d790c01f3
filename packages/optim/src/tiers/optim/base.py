"""What every optimizer of this layer shares: hypers per group, `set_hyper`, parameter lists and freezing.

The mixin works on `self.param_groups` (torch's list of group dicts) and `self.state` (a dict keyed by
parameter whose per-parameter dicts may hold the flags `force_train` and `do_wd`), so it serves the generic
`Optimizer`, `OptimWrapper` and anything else shaped like a torch optimizer.
"""

import warnings
from collections.abc import Iterable
from typing import Any

import torch

from .hypers import HyperView, spread_values

__all__ = ["as_param_groups", "convert_params"]

# Per-parameter flags that the Learner sets and that survive `clear_state`.
_FLAG_KEYS = ("force_train", "do_wd")


def _is_named_param(o: Any) -> bool:
    return isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) and isinstance(o[1], torch.Tensor)


def _is_group(o: Any) -> bool:
    return not isinstance(o, (torch.Tensor, dict, str)) and not _is_named_param(o) and isinstance(o, Iterable)


def as_param_groups(params: Any) -> list[dict[str, Any]]:
    """Normalise `params` into a list of torch-style group dicts `{'params': [...], **hypers}`.

    Accepts a single tensor, a flat iterable (a generator too) of tensors (`model.parameters()`) or of
    `(name, tensor)` pairs, a list of lists of tensors (one group each, as a splitter returns), or torch-style
    group dicts (copied, so the caller's dicts are left alone). Example: `as_param_groups([[w1], [w2, b2]])`
    gives two groups.
    """
    if isinstance(params, torch.Tensor):
        return [{"params": [params]}]  # one tensor is one group of one parameter (as fastai's L(params))
    if isinstance(params, (dict, str)) or not isinstance(params, Iterable):
        raise TypeError(
            f"params must be an iterable of tensors, of parameter groups or of group dicts, "
            f"not {type(params).__name__}"
        )
    items = list(params)
    if not items:
        raise ValueError(
            "the optimizer got no parameters: params is empty; pass model.parameters() or groups"
        )
    if all(isinstance(o, dict) for o in items):
        for i, o in enumerate(items):
            if "params" not in o:
                raise ValueError(f"parameter group dict {i} has no 'params' key (keys: {sorted(o)})")
        return [dict(o) for o in items]
    kinds = {_is_group(o) for o in items}
    if any(isinstance(o, dict) for o in items) or len(kinds) > 1:
        raise TypeError(
            "params mixes tensors, groups and group dicts; pass either a flat iterable of tensors, "
            "a list of lists of tensors, or a list of group dicts"
        )
    if kinds == {True}:
        return [{"params": list(o)} for o in items]
    return [{"params": items}]


def convert_params(o: list) -> list:
    """Layer groups as torch parameter groups, as fastai's splitters return them for a torch optimizer:
    `[[a], [b, c]]` becomes `[{'params': [a]}, {'params': [b, c]}]`; dicts are kept as they are.

    >>> convert_params([[1], {"params": [2], "lr": 0.1}])
    [{'params': [1]}, {'params': [2], 'lr': 0.1}]
    """
    o = list(o)
    if not o:
        raise ValueError("convert_params: no parameter groups; pass one list (or group dict) per layer group.")
    return [g if isinstance(g, dict) else {"params": g} for g in o]


class _BaseOptimizer:
    """Hypers as lists, `set_hyper` with slices, parameter lists and freezing by group (a mixin)."""

    # Torch names -> the names users see (OptimWrapper maps `betas__0` to `mom`...); identity here.
    _hp_fwd: dict[str, str] = {}
    _split_tuples = False

    param_groups: list[dict[str, Any]]
    state: Any

    @property
    def hypers(self) -> list[HyperView]:
        """One live dict of hyper-parameters per parameter group: `opt.hypers[0]['lr']`."""
        return [HyperView(g, self._hp_fwd, self._split_tuples) for g in self.param_groups]

    def set_hyper(self, k: str, v: Any) -> None:
        """Set hyper-parameter `k` in every group: a scalar is broadcast, a list gives one value per group.

        `slice(a, b)` spreads geometrically from `a` (first group) to `b` (last group); `slice(b)` gives `b/10`
        to all groups but the last. Example: `opt.set_hyper('lr', slice(1e-5, 1e-3))`.
        """
        for hyper, val in zip(self.hypers, spread_values(k, v, len(self.param_groups))):
            hyper[k] = val

    def set_hypers(self, **kwargs: Any) -> None:
        """`set_hyper` for each keyword: `opt.set_hypers(lr=1e-3, mom=0.9)`."""
        for k, v in kwargs.items():
            self.set_hyper(k, v)

    @property
    def param_lists(self) -> list[list[torch.Tensor]]:
        """The parameters of each group, as a list of lists."""
        return [list(g["params"]) for g in self.param_groups]

    @param_lists.setter
    def param_lists(self, v: list[list[torch.Tensor]]) -> None:
        v = [list(o) for o in v]
        if len(v) != len(self.param_groups):
            raise ValueError(
                f"param_lists got {len(v)} groups but the optimizer has {len(self.param_groups)}; "
                f"give one list of parameters per group"
            )
        for g, ps in zip(self.param_groups, v):
            g["params"] = ps

    def all_params(self, n: int | slice = slice(None), with_grad: bool = False) -> list[tuple]:
        """`(param, group_params, state, hypers)` for every parameter of the groups selected by `n`.

        `n` is a group index or a slice of groups; `with_grad=True` keeps only parameters that have a gradient.
        """
        groups = list(zip(self.param_lists, self.hypers))
        sel = groups[n] if isinstance(n, slice) else [groups[n]]
        return [(p, pl, self.state[p], h) for pl, h in sel for p in pl if not with_grad or p.grad is not None]

    def _set_require_grad(self, rg: bool, p: torch.Tensor) -> None:
        p.requires_grad_(rg or bool(self.state.get(p, {}).get("force_train", False)))

    def freeze_to(self, n: int) -> None:
        """Freeze the groups before `n` and unfreeze the rest (a negative `n` counts from the end).

        A frozen parameter gets `requires_grad=False` unless its state has `force_train` (batchnorm layers the
        Learner keeps training). Example: `opt.freeze_to(-1)` trains only the last group.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"freeze_to(n) needs an int group index, got {n!r}")
        n_groups = len(self.param_groups)
        frozen = n if n >= 0 else n_groups + n
        if frozen >= n_groups:
            warnings.warn(
                f"freeze_to({n}) freezes all {n_groups} parameter groups: nothing will train", stacklevel=2
            )
        for p, *_ in self.all_params(slice(n, None)):
            self._set_require_grad(True, p)
        for p, *_ in self.all_params(slice(None, n)):
            self._set_require_grad(False, p)

    def freeze(self) -> None:
        """Freeze every group but the last (the head)."""
        if len(self.param_groups) < 2:
            raise ValueError(
                f"freeze() needs at least two parameter groups (body and head), this optimizer has "
                f"{len(self.param_groups)}; create it with groups, e.g. from a splitter"
            )
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Make every parameter trainable again."""
        self.freeze_to(0)


def _init_torch_hooks(opt: torch.optim.Optimizer) -> None:
    """Give `opt`, a torch optimizer subclass that skipped torch's `__init__`, the hook tables torch expects."""
    torch.optim.Optimizer.__setstate__(opt, {})
