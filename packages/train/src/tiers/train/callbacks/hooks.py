"""Callbacks that hook modules during a fit: `HookCallback`, and `ActivationStats` (the paper's "colorful dimension").

`HookCallback` hooks modules for the duration of a fit; `ActivationStats` records the mean, std and a
histogram of each hooked layer's output per batch, plotted with `color_dim`.
"""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from tiers.dispatch.extras import require
from tiers.train.callbacks.core import Callback
from tiers.train.nn.hooks import Hooks
from tiers.train.nn.model_utils import flatten_model, has_children

__all__ = ["HookCallback", "ActivationStats", "LayerStats"]


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
            self.hook = hook  # type: ignore[method-assign]  # an instance's own hook function replaces the method (fastai's API)
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


class LayerStats(Tensor):
    """`ActivationStats.layer_stats`: a (3, batches) tensor of mean, std and near-zero fraction, rows also by name."""

    names = ("mean", "std", "near_zero")

    def __getitem__(self, key: Any) -> Tensor:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"LayerStats: {key!r} is not one of {self.names}")
            return self.as_subclass(Tensor)[self.names.index(key)]
        return super().__getitem__(key)

    def keys(self) -> tuple[str, ...]:
        """The row names: mean, std, near_zero."""
        return self.names

    def items(self) -> list[tuple[str, Tensor]]:
        """(name, series) per row, like a dict's items."""
        return [(k, self[k]) for k in self.names]


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

    def layer_stats(self, idx: int) -> "LayerStats":
        """The `mean`, `std` and `near_zero` series (one value per recorded batch) of hooked layer `idx`: a
        (3, batches) tensor, rows in that order as in fastai, whose rows can also be read by name (`["mean"]`)."""
        self._check_idx(idx)
        rows = [[float(b[idx][k]) for b in self.stats] for k in LayerStats.names]
        return torch.tensor(rows).as_subclass(LayerStats)

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

    def plot_layer_stats(self, idx: int, return_fig: bool = False) -> Any:
        """Plot mean, std and % near zero of layer `idx` over training; returns the matplotlib figure with
        `return_fig=True` only (a returned figure would show twice at the end of a notebook cell)."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="ActivationStats.plot_layer_stats")

        st = self.layer_stats(idx)
        fig, axs = plt.subplots(1, 3, figsize=(12, 3))
        for ax, (k, v) in zip(axs, st.items()):
            ax.plot(v.as_subclass(Tensor).numpy())
            ax.set_title(k)
        return fig if return_fig else None

    def color_dim(self, idx: int, figsize: tuple[float, float] = (10, 5), ax: Any = None) -> Any:
        """The colorful dimension chart of layer `idx`: its activation histogram (y) over batches (x), on `ax` (a new
        figure by default). Returns nothing (no `<Axes>` text after the chart in a notebook)."""
        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="ActivationStats.color_dim")

        h = self.hist(idx)
        if ax is None:
            _, ax = plt.subplots(figsize=figsize)
        ax.imshow(h.numpy(), origin="lower", aspect="auto", cmap="viridis")
        ax.set_xlabel("batch")
        ax.set_ylabel("activation histogram bin")
        ax.set_title(f"layer {idx}")

