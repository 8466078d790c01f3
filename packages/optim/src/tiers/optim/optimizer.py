"""The generic `Optimizer`: a torch optimizer whose update is a list of small stats and steppers.

A stepper (or stat) is a function `f(p, lr, **kwargs) -> dict | None` called with a parameter, the
hyper-parameters of its group and the parameter's state; a returned dict is merged into that state. A stepper
may also carry `f.foreach(batches)`, the same update over many parameters at once (`torch._foreach_*`, a
`ParamBatch` per group), which the optimizer uses instead of the per-parameter loop; built-in steppers give
identical results either way. A stepper that pools all parameters (model-level norms) says so with
`f.needs_all_params(hypers) -> bool`, so the optimizer does not hand it the parameters in chunks.
"""

import functools
import inspect
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch

from .base import _FLAG_KEYS, _BaseOptimizer, _is_named_param, as_param_groups
from .hypers import _NOT_HYPERS

__all__ = ["Optimizer", "ParamBatch"]


# torch wraps these in `torch._disable_dynamo`, whose first call imports torch._dynamo (seconds on a small CPU);
# they never run under torch.compile here, so call the plain functions.
_torch_state_dict = getattr(torch.optim.Optimizer.state_dict, "__wrapped__", torch.optim.Optimizer.state_dict)
_torch_load_state_dict = getattr(
    torch.optim.Optimizer.load_state_dict, "__wrapped__", torch.optim.Optimizer.load_state_dict
)


class ParamBatch(NamedTuple):
    """One group's share of a step: the parameters that have a gradient, their state dicts, the group's hypers."""

    params: list[torch.Tensor]
    states: list[dict[str, Any]]
    hypers: dict[str, Any]


def _cb_name(cb: Callable) -> str:
    if isinstance(cb, functools.partial):
        kw = ", ".join(f"{k}={v!r}" for k, v in cb.keywords.items())
        return f"{_cb_name(cb.func)}({kw})"
    return getattr(cb, "__name__", type(cb).__name__)


def _cb_defaults(cb: Callable) -> dict[str, Any]:
    # Partial keywords configure the function; only `.defaults` become hyper-parameters.
    if isinstance(cb, functools.partial):
        return _cb_defaults(cb.func)
    return dict(getattr(cb, "defaults", None) or {})


def _foreach_impl(cb: Callable) -> Callable[[list[ParamBatch]], None] | None:
    if isinstance(cb, functools.partial):
        inner = _foreach_impl(cb.func)
        if inner is None or cb.args:
            return None
        kw = cb.keywords
        # Same precedence as calling the partial with the hypers: the hypers win over partial keywords.
        return lambda batches: inner([ParamBatch(b.params, b.states, {**kw, **b.hypers}) for b in batches])
    return getattr(cb, "foreach", None)


def _needs_all_params(cb: Callable, hypers: dict[str, Any]) -> bool:
    # A stepper that pools all parameters (model-level norms) must see them in one call, not chunk by chunk.
    if isinstance(cb, functools.partial):
        return _needs_all_params(cb.func, {**cb.keywords, **hypers})
    check = getattr(cb, "needs_all_params", None)
    return bool(check and check(hypers))


def _missing_args(cb: Callable, kwargs: dict[str, Any]) -> list[str]:
    try:
        sig = inspect.signature(cb)
    except (TypeError, ValueError):
        return []
    params = list(sig.parameters.values())[1:]  # the first is the parameter tensor
    return [
        o.name
        for o in params
        if o.default is inspect.Parameter.empty
        and o.kind in (o.POSITIONAL_OR_KEYWORD, o.KEYWORD_ONLY)
        and o.name not in kwargs
    ]


class Optimizer(_BaseOptimizer, torch.optim.Optimizer):
    """Update `params` with the stats and steppers `cbs`, with hyper-parameters per parameter group.

    `params` is `model.parameters()`, a single tensor, a list of lists (one group each, e.g. from a splitter) or
    torch-style group dicts. `defaults` are the hypers (`lr=...` is required by steppers that take one, unless a
    stepper's `.defaults` give it); each stepper's `.defaults` fill the rest.
    A hyper given as a list or slice is spread over the groups like `set_hyper`. `foreach=False` runs every
    stepper one parameter at a time (fastai's loop) instead of over runs of parameters; `cpu_chunk_numel`
    (attribute, default 2**17, `None` for whole groups) sets the size of those runs on CPU. Being a
    `torch.optim.Optimizer`, it works with torch schedulers, `GradScaler` and `state_dict` tooling.

    Example: `Optimizer(model.parameters(), [weight_decay, sgd_step], lr=0.1, wd=1e-4)`.
    """

    def __init__(
        self, params: Any, cbs: Callable | Iterable[Callable], *, foreach: bool = True, **defaults: Any
    ):
        cbs = [cbs] if callable(cbs) else list(cbs)
        for cb in cbs:
            if not callable(cb):
                raise TypeError(f"Optimizer cbs must be stepper functions f(p, lr, **kwargs); got {cb!r}")
        if "train_bn" in defaults:
            defaults.pop("train_bn")
            warnings.warn("Optimizer ignores `train_bn`: it is a Learner setting", stacklevel=2)
        hypers: dict[str, Any] = {}
        for cb in cbs:
            hypers.update(_cb_defaults(cb))
        hypers.update(defaults)
        # Only a stepper that takes `lr` without a default needs one (fastai builds optimizers of other steppers
        # without it); say so now rather than at the first step.
        needy = [_cb_name(cb) for cb in cbs if "lr" not in hypers and "lr" in _missing_args(cb, hypers)]
        if needy:
            raise TypeError(
                f"Optimizer needs a learning rate for {', '.join(needy)}: pass lr=..., e.g. "
                f"Optimizer(params, cbs, lr=1e-3)"
            )
        spread = {k: v for k, v in hypers.items() if isinstance(v, (list, slice))}
        self.cbs = cbs
        self.foreach = foreach
        self.cpu_chunk_numel: int | None = 2**17
        super().__init__(as_param_groups(params), {k: v for k, v in hypers.items() if k not in spread})
        self.set_hypers(**spread)
        # A group added later gets the last group's value of a spread hyper.
        self.defaults.update({k: self.param_groups[-1][k] for k in spread})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group `{'params': [...], **hypers}`; missing hypers come from the optimizer's defaults.

        Same checks as torch's (leaf tensors, no parameter in two groups), without its first-call import of
        `torch._dynamo`, which costs seconds on a small CPU.
        """
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"add_param_group needs a dict with a 'params' key, got {param_group!r:.80}")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError(
                "a parameter group's params must be ordered (a list), not a set: their order is random"
            )
        items = [params] if isinstance(params, torch.Tensor) else list(params)
        named = [o for o in items if _is_named_param(o)]
        if named and len(named) != len(items):
            raise ValueError(
                "give every parameter of a group a name, or none: some (name, tensor) pairs are missing"
            )
        tensors = [o[1] for o in items] if named else items
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"an optimizer optimizes Tensors, but one of the params is a {type(t).__name__}"
                )
            if not (t.is_leaf or t.retains_grad):
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (shape {tuple(t.shape)}); pass leaf parameters"
                )
        if len({id(t) for t in tensors}) != len(tensors):
            raise ValueError(
                "a parameter group lists the same parameter twice; it would be updated twice per step"
            )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(t) in seen for t in tensors):
            raise ValueError(
                "some parameters appear in more than one parameter group; give each to one group only"
            )
        group = {**param_group, "params": tensors}
        if named:
            group["param_names"] = [o[0] for o in items]
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient (`p.grad` set), as fastai and torch do, even a tensor made
        without `requires_grad`; returns `closure()`'s loss when given one.

        `nn.Parameter`s with `requires_grad=False` (frozen by `freeze`/`freeze_to` or by hand) are never updated,
        even if they still hold a stale gradient.
        On CPU the steppers run over runs of about `cpu_chunk_numel` values at a time (each stepper over the
        run before the next), so a parameter's moments stay in cache between steppers: about twice as fast
        as whole-group passes on a 10M-parameter model, with the same results.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            batches = self._batches()
            impls = [(_foreach_impl(cb) if self.foreach else None) for cb in self.cbs]
            for chunk in self._chunks(batches):
                for cb, multi in zip(self.cbs, impls):
                    if multi is not None:
                        multi(chunk)
                    else:
                        self._step_each(cb, chunk)
        return loss

    def _chunks(self, batches: list[ParamBatch]) -> list[list[ParamBatch]]:
        limit = self.cpu_chunk_numel
        if not limit or any(_needs_all_params(cb, b.hypers) for cb in self.cbs for b in batches):
            return [batches]
        chunks: list[list[ParamBatch]] = []
        current: list[ParamBatch] = []
        elsewhere: list[ParamBatch] = []  # accelerator tensors: whole groups suit their foreach kernels
        size = 0
        for b in batches:
            ps, sts, other_ps, other_sts = [], [], [], []
            for p, st in zip(b.params, b.states):
                if not p.is_cpu:
                    other_ps.append(p)
                    other_sts.append(st)
                    continue
                ps.append(p)
                sts.append(st)
                size += p.numel()
                if size >= limit:
                    chunks.append([*current, ParamBatch(ps, sts, b.hypers)])
                    current, ps, sts, size = [], [], [], 0
            if ps:
                current.append(ParamBatch(ps, sts, b.hypers))
            if other_ps:
                elsewhere.append(ParamBatch(other_ps, other_sts, b.hypers))
        return chunks + [c for c in (current, elsewhere) if c]

    def _batches(self) -> list[ParamBatch]:
        batches = []
        for i, g in enumerate(self.param_groups):
            # A Parameter with requires_grad off is frozen (by freeze_to, or by hand): never stepped, even with a
            # stale zeroed gradient. A plain tensor given a `.grad` is stepped, as fastai and torch do.
            ps = [p for p in g["params"]
                  if p.grad is not None and (p.requires_grad or not isinstance(p, torch.nn.Parameter))]
            for p in ps:
                if p.grad.is_sparse:
                    raise RuntimeError(
                        f"parameter group {i} has a sparse gradient (shape {tuple(p.shape)}); this optimizer "
                        f"needs dense gradients: use OptimWrapper(params, opt=torch.optim.SparseAdam)"
                    )
            if ps:
                hyper = {k: v for k, v in g.items() if k not in _NOT_HYPERS}
                batches.append(ParamBatch(ps, [self.state[p] for p in ps], hyper))
        return batches

    @staticmethod
    def _step_each(cb: Callable, batches: list[ParamBatch]) -> None:
        for b in batches:
            for p, st in zip(b.params, b.states):
                kwargs = {**st, **b.hypers}
                try:
                    res = cb(p, **kwargs)
                except TypeError:
                    missing = _missing_args(cb, kwargs)
                    if missing:
                        raise TypeError(
                            f"stepper {_cb_name(cb)} needs {missing}, which neither the hypers nor the state "
                            f"of the parameter hold; pass them as hypers (Optimizer(..., {missing[0]}=...)) or "
                            f"add the stat that computes them before this stepper"
                        ) from None
                    raise
                if isinstance(res, dict):  # anything else (None, the parameter itself...) updates no state
                    st.update(res)

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero the gradients in place (detached first), like fastai's optimizer: `p.grad` stays a tensor of zeros.
        `set_to_none=True` drops them instead, torch's default (what `OptimWrapper` does, following torch).

        Same contract as torch's, without its first-call import of `torch._dynamo` (seconds on a small CPU).
        """
        grads = []
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    grads.append(p.grad)
        dense = [t for t in grads if not t.is_sparse]
        if dense:
            torch._foreach_zero_(dense)
        for t in grads:
            if t.is_sparse:
                t.zero_()

    def clear_state(self) -> None:
        """Forget every stat (moments, step counts...), keeping only the `force_train` and `do_wd` flags."""
        kept = {p: {k: st[k] for k in _FLAG_KEYS if k in st} for p, st in self.state.items()}
        self.state = defaultdict(dict, {p: st for p, st in kept.items() if st})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()` of an optimizer with the same parameter groups (hypers and per-parameter state)."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(
                f"load_state_dict needs a dict with 'state' and 'param_groups' (from Optimizer.state_dict()), "
                f"got {keys}"
            )
        saved = [len(g["params"]) for g in state_dict["param_groups"]]
        ours = [len(g["params"]) for g in self.param_groups]
        if saved != ours:
            raise ValueError(
                f"the state dict has groups of sizes {saved} but this optimizer has {ours}; "
                f"load it into an optimizer built on the same parameter groups"
            )
        _torch_load_state_dict(self, state_dict)

    def state_dict(self) -> dict[str, Any]:
        """torch's format: `{'state': {index: per-parameter state}, 'param_groups': [hypers with parameter indices]}`."""
        return _torch_state_dict(self)

    def __getstate__(self) -> dict[str, Any]:
        # torch pickles only defaults, state and groups; keep the steppers too so copies still step.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_optimizer_")}

    def __repr__(self) -> str:
        cbs = ", ".join(_cb_name(cb) for cb in self.cbs)
        groups = "; ".join(
            f"group {i}: {len(g['params'])} tensors, " + ", ".join(f"{k}={v}" for k, v in h.items())
            for i, (g, h) in enumerate(zip(self.param_groups, self.hypers))
        )
        return f"Optimizer([{cbs}]; {groups})"
