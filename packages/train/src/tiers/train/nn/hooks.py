"""Forward/backward hooks on modules: `Hook`, `Hooks`, `hook_output(s)`, `dummy_eval_hooks`.

A `Hook` registers `hook_func(module, input, output)` on a module and keeps its result in `.stored`;
`Hooks` does the same for several modules. The callbacks built on them (`HookCallback`,
`ActivationStats`) are in `tiers.train.callbacks.hooks`.

>>> with hook_outputs(model[:2]) as hs:                     # doctest: +SKIP
...     model(x); [o.shape for o in hs.stored]
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from tiers.tensors import to_detach
from tiers.train.nn.model_utils import flatten_model

__all__ = ["Hook", "Hooks", "hook_output", "hook_outputs", "dummy_eval_hooks"]


def _detach(o: Any, cpu: bool) -> Any:
    return to_detach(o, cpu=cpu, gather=False)


class Hook:
    """Register `hook_func(module, input, output)` as a forward (or backward, `is_forward=False`) hook on `m`.

    The result goes to `self.stored`. `detach` detaches input/output first (and `cpu` moves them to the CPU).
    Use as a context manager, or call `remove()`; removing twice is harmless.

    >>> with Hook(nn.Linear(2, 3), lambda m, i, o: o.shape) as h:  # doctest: +SKIP
    ...     h.m(torch.zeros(1, 2)); h.stored                       # torch.Size([1, 3])
    """

    def __init__(self, m: nn.Module, hook_func: Callable, is_forward: bool = True, detach: bool = True,
                 cpu: bool = False, gather: bool = False) -> None:
        if not isinstance(m, nn.Module):
            raise TypeError(f"Hook: m must be an nn.Module, got {type(m).__name__}")
        self.m, self.hook_func, self.detach, self.cpu, self.is_forward = m, hook_func, detach, cpu, is_forward
        self.stored: Any = None
        reg = m.register_forward_hook if is_forward else m.register_full_backward_hook
        self.hook = reg(self.hook_fn)
        self.removed = False

    def hook_fn(self, module: nn.Module, input: Any, output: Any) -> None:
        """Apply `hook_func` to (module, input, output) and store the result."""
        if self.detach:
            input, output = _detach(input, self.cpu), _detach(output, self.cpu)
        self.stored = self.hook_func(module, input, output)

    def remove(self) -> None:
        """Unregister the hook."""
        if not self.removed:
            self.hook.remove()
            self.removed = True

    def __enter__(self) -> "Hook":
        return self

    def __exit__(self, *args: Any) -> None:
        self.remove()


def _hook_inner(m: nn.Module, i: Any, o: Any) -> Any:
    return o if isinstance(o, Tensor) or not isinstance(o, (tuple, list)) else list(o)


def hook_output(module: nn.Module, detach: bool = True, cpu: bool = False, grad: bool = False) -> Hook:
    """A `Hook` storing the output of `module` (or its output gradient, `grad=True`)."""
    return Hook(module, _hook_inner, detach=detach, cpu=cpu, is_forward=not grad)


class Hooks:
    """A `Hook` on each module of `ms`: `stored` lists their results; index, iterate, `remove()` all, or use `with`."""

    def __init__(self, ms: Iterable[nn.Module], hook_func: Callable, is_forward: bool = True, detach: bool = True,
                 cpu: bool = False) -> None:
        self.hooks = [Hook(m, hook_func, is_forward, detach, cpu) for m in ms]

    def __getitem__(self, i: int) -> Hook:
        return self.hooks[i]

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self) -> Iterator[Hook]:
        return iter(self.hooks)

    @property
    def stored(self) -> list:
        """What each hook stored, in module order."""
        return [h.stored for h in self.hooks]

    def remove(self) -> None:
        """Unregister every hook."""
        for h in self.hooks:
            h.remove()

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *args: Any) -> None:
        self.remove()


def hook_outputs(modules: Iterable[nn.Module], detach: bool = True, cpu: bool = False, grad: bool = False) -> Hooks:
    """`Hooks` storing the outputs (or output gradients, `grad=True`) of each of `modules`."""
    return Hooks(modules, _hook_inner, detach=detach, cpu=cpu, is_forward=not grad)


def dummy_eval_hooks(m: nn.Module, x: Tensor, hook_func: Callable = _hook_inner) -> list:
    """Run `m` in eval mode on `x` without gradients, hooking each leaf module; returns what each hook stored."""
    leaves = flatten_model(m)
    with Hooks(leaves, hook_func) as hs:
        training = m.training
        m.eval()
        try:
            with torch.no_grad():
                m(x)
        finally:
            m.train(training)
        return hs.stored

