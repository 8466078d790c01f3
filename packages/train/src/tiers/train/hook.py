"""Forward/backward hooks on modules (`Hook`, `Hooks`, `hook_output(s)`), `HookCallback`, `ActivationStats`.

A `Hook` registers `hook_func(module, input, output)` on a module and keeps its result in `.stored`;
`Hooks` does the same for several modules. `HookCallback` hooks modules for the duration of a fit;
`ActivationStats` records the mean, std and a histogram of each hooked layer's output per batch,
plotted with `color_dim` (the "colorful dimension" chart of the paper).

>>> with hook_outputs(model[:2]) as hs:                     # doctest: +SKIP
...     model(x); [o.shape for o in hs.stored]
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from tiers.dispatch import patch
from tiers.train.callback import Callback
from tiers.train.learner import Learner
from tiers.train.model_utils import flatten_model, has_children

__all__ = [
    "Hook", "Hooks", "hook_output", "hook_outputs", "dummy_eval_hooks", "HookCallback", "ActivationStats",
    "ModelSummary", "model_summary",
]


def _detach(o: Any, cpu: bool) -> Any:
    if isinstance(o, Tensor):
        o = o.detach()
        return o.cpu() if cpu else o
    if isinstance(o, (tuple, list)):
        return type(o)(_detach(x, cpu) for x in o)
    return o


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


class HookCallback(Callback):
    """Hook `modules` (default: every leaf module with parameters) during fit, calling `self.hook(m, i, o)`.

    Subclasses define `hook`. `every` hooks one batch in `every`; `remove_end=False` keeps hooks after fit;
    `is_forward=False` hooks gradients; `detach`/`cpu` as for `Hook`.
    """

    order = -5  # hooks must be in place before the model runs

    def __init__(self, modules: Iterable[nn.Module] | None = None, every: int | None = None, remove_end: bool = True,
                 is_forward: bool = True, detach: bool = True, cpu: bool = True, include_paramless: bool = False,
                 hook: Callable | None = None) -> None:
        super().__init__()
        self.modules, self.every, self.remove_end, self.is_forward = modules, every, remove_end, is_forward
        self.detach, self.cpu, self.include_paramless = detach, cpu, include_paramless
        if hook is not None:
            self.hook = hook
        self.hooks: Hooks | None = None

    def hook(self, m: nn.Module, i: Any, o: Any) -> Any:
        """What to store per module; subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__} must define hook(module, input, output) or be given hook=")

    def _targets(self) -> list[nn.Module]:
        if self.modules is not None:
            return list(self.modules)
        leaves = [m for m in flatten_model(self.learn.model) if not has_children(m)]
        return [m for m in leaves if self.include_paramless or any(True for _ in m.parameters(recurse=False))]

    def before_fit(self) -> None:
        self.hooks = Hooks(self._targets(), self._hook_fn, self.is_forward, self.detach, self.cpu)

    def _hook_fn(self, m: nn.Module, i: Any, o: Any) -> Any:
        if not self._on:
            return None
        return self.hook(m, i, o)

    @property
    def _on(self) -> bool:
        learn = self.learn
        if self.every is None:
            return True
        return bool(learn.training) and learn.train_iter % self.every == 0

    def after_fit(self) -> None:
        if self.remove_end and self.hooks is not None:
            self.hooks.remove()

    def __del__(self) -> None:
        hooks = self.__dict__.get("hooks")
        if hooks is not None:
            hooks.remove()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["hooks"] = None  # torch hook handles are process-local
        return state


class ActivationStats(HookCallback):
    """Record per training batch the mean, std, fraction near zero and a histogram of each hooked layer's output.

    `stats[i]` is the list of per-layer dicts of batch `i`; `layer_stats(idx)` stacks them for one layer;
    `plot_layer_stats(idx)` and `color_dim(idx)` (the histogram over time) draw them. `with_hist=True` keeps
    a `hist_bins`-bin histogram of each output over `hist_range`.
    """

    order = -20

    def __init__(self, with_hist: bool = False, hist_bins: int = 40, hist_range: tuple[float, float] = (0.0, 10.0),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.with_hist, self.hist_bins, self.hist_range = with_hist, hist_bins, hist_range
        self.stats: list[list[dict]] = []

    def before_fit(self) -> None:
        super().before_fit()
        self.stats = []

    def hook(self, m: nn.Module, i: Any, o: Any) -> dict | None:
        if not self.learn.training or not isinstance(o, Tensor):
            return None
        o = o.float()
        res = {"mean": o.mean().item(), "std": o.std().item() if o.numel() > 1 else 0.0,
               "near_zero": (o <= 0.05).float().mean().item()}
        if self.with_hist:
            res["hist"] = torch.histc(o, self.hist_bins, *self.hist_range)
        return res

    def after_batch(self) -> None:
        if self.learn.training and (self.every is None or self.learn.train_iter % self.every == 0):
            if self.hooks is not None:
                st = self.hooks.stored
                if any(s is not None for s in st):
                    self.stats.append(st)

    def layer_stats(self, idx: int) -> dict[str, Tensor]:
        """The `mean`, `std` and `near_zero` series (one value per recorded batch) of hooked layer `idx`."""
        self._check_idx(idx)
        return {k: torch.tensor([b[idx][k] for b in self.stats]) for k in ("mean", "std", "near_zero")}

    def hist(self, idx: int) -> Tensor:
        """The histograms of layer `idx` over time, as a (bins, batches) tensor of log(1+count)."""
        self._check_idx(idx)
        if not self.with_hist:
            raise ValueError("ActivationStats: no histograms were recorded; create it with with_hist=True")
        return torch.stack([b[idx]["hist"] for b in self.stats]).t().float().log1p()

    def _check_idx(self, idx: int) -> None:
        if not self.stats:
            raise ValueError("ActivationStats: no statistics recorded yet; fit the learner with this callback first")
        n = len(self.stats[0])
        if not -n <= idx < n:
            raise IndexError(f"ActivationStats: layer index {idx} out of range; {n} layers were hooked")

    def plot_layer_stats(self, idx: int) -> Any:
        """Plot mean, std and % near zero of layer `idx` over training; returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        st = self.layer_stats(idx)
        fig, axs = plt.subplots(1, 3, figsize=(12, 3))
        for ax, (k, v) in zip(axs, st.items()):
            ax.plot(v.numpy())
            ax.set_title(k)
        return fig

    def color_dim(self, idx: int, figsize: tuple[float, float] = (10, 5), ax: Any = None) -> Any:
        """The colorful dimension chart of layer `idx`: its activation histogram (y) over batches (x)."""
        import matplotlib.pyplot as plt

        h = self.hist(idx)
        if ax is None:
            _, ax = plt.subplots(figsize=figsize)
        ax.imshow(h.numpy(), origin="lower", aspect="auto", cmap="viridis")
        ax.set_xlabel("batch")
        ax.set_ylabel("activation histogram bin")
        ax.set_title(f"layer {idx}")
        return ax


def _macs(m: nn.Module, out: Any, bs: int) -> int:
    # Multiply-accumulates per item: each output element of a Linear/Conv costs one MAC per weight it reads.
    if not isinstance(out, Tensor) or bs == 0:
        return 0
    if isinstance(m, nn.Linear):
        return out.numel() // bs * m.in_features
    if isinstance(m, nn.modules.conv._ConvNd):
        k = 1
        for s in m.kernel_size:
            k *= s
        return out.numel() // bs * (m.in_channels // m.groups) * k
    return 0


def _shape(o: Any) -> str:
    if isinstance(o, Tensor):
        return "x".join(str(s) for s in o.shape)
    if isinstance(o, (tuple, list)):
        return "(" + ", ".join(_shape(x) for x in o) + ")"
    return type(o).__name__


class ModelSummary(str):
    """The text of `learn.summary()`; `rows` holds one dict per leaf layer (name, shape, params, trainable, macs)."""

    rows: list[dict]
    total_params: int
    trainable_params: int
    total_macs: int


def model_summary(model: nn.Module, *xb: Tensor, title: str | None = None) -> ModelSummary:
    """Run `model` once on the inputs `xb` (eval mode, no gradients) and report each leaf layer's output shape,
    parameter count, whether it trains, and multiply-accumulate count (Linear and Conv, per item)."""
    leaves = flatten_model(model)
    bs = xb[0].shape[0] if xb and isinstance(xb[0], Tensor) and xb[0].dim() else 1
    with Hooks(leaves, lambda m, i, o: o) as hs:
        training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(*xb)
        finally:
            model.train(training)
        outs = hs.stored
    rows = []
    for m, o in zip(leaves, outs):
        ps = list(m.parameters(recurse=False))
        n = sum(p.numel() for p in ps)
        rows.append({"layer": type(m).__name__, "shape": _shape(o) if o is not None else "(not run)", "params": n,
                     "trainable": None if not ps else any(p.requires_grad for p in ps), "macs": _macs(m, o, bs)})
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = sum(r["macs"] for r in rows)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    w = max([len(r["layer"]) for r in rows] + [5]) + 2
    sw = max([len(r["shape"]) for r in rows] + [12]) + 2
    lines = [title or type(model).__name__ + f" (input batch of {bs})",
             "=" * (w + sw + 36),
             f"{'Layer':<{w}}{'Output shape':<{sw}}{'Params':>12}{'Trainable':>11}{'MACs':>13}",
             "=" * (w + sw + 36)]
    for r in rows:
        tr = "" if r["trainable"] is None else ("True" if r["trainable"] else "False")
        lines.append(f"{r['layer']:<{w}}{r['shape']:<{sw}}{r['params']:>12,}{tr:>11}{r['macs']:>13,}")
    lines += ["=" * (w + sw + 36),
              f"Total params: {total:,} ({size / 2**20:.2f} MiB)",
              f"Trainable params: {train:,}",
              f"Non-trainable params: {total - train:,}",
              f"Multiply-accumulates per item: {macs:,}"]
    res = ModelSummary("\n".join(lines))
    res.rows, res.total_params, res.trainable_params, res.total_macs = rows, total, train, macs
    return res


@patch
def summary(self: Learner) -> ModelSummary:
    """Report the model on one training batch: per-layer output shapes, parameters, frozen or trainable, totals,
    multiply-accumulates; plus the optimizer, loss and callbacks. Printing it shows the table."""
    b = self.dls.one_batch()
    b = b if isinstance(b, (tuple, list)) else (b,)
    n_inp = getattr(self.dls, "n_inp", 1) or 1
    dev = self._model_device()
    xb = tuple(x.to(dev).as_subclass(Tensor) if isinstance(x, Tensor) else x for x in b[:n_inp])
    res = model_summary(self.model, *xb, title=f"{type(self.model).__name__} (input batch {_shape(list(xb))})")
    opt = getattr(self.opt_func, "__name__", type(self.opt_func).__name__)
    lf = getattr(self.loss_func, "__name__", type(self.loss_func).__name__)
    cbs = ", ".join(type(c).__name__ for c in self.cbs)
    text = f"{res}\n\nOptimizer: {opt}\nLoss function: {lf}\nCallbacks: {cbs}"
    out = ModelSummary(text)
    out.rows, out.total_params, out.trainable_params, out.total_macs = (
        res.rows, res.total_params, res.trainable_params, res.total_macs)
    return out
