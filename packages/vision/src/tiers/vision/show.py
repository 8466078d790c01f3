"""Drawing helpers of the vision layer: grids of axes and captioned boxes. matplotlib is imported inside them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from torch import Tensor

import tiers.data  # noqa: F401  (registers the generic show_batch/show_results these specialise)
from tiers.dispatch import typedispatch
from tiers.tensors import TensorBBox, TensorCategory, TensorImage, TensorMask, TensorPoint, subplots

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["get_grid", "draw_boxes", "show_batch", "show_results"]


def get_grid(n: int, nrows: int | None = None, ncols: int | None = None, figsize: tuple[float, float] | None = None,
             double: bool = False, title: str | None = None, return_fig: bool = False, flatten: bool = True,
             **kwargs: Any) -> list[Axes] | np.ndarray | tuple[Figure, list[Axes] | np.ndarray]:
    """A grid of at least `n` matplotlib axes (nearly square unless `nrows`/`ncols` are given); returns the first `n`.

    `double` doubles the columns (input and target side by side), `title` goes above the figure, `flatten=False`
    returns the 2-d array of axes, `return_fig=True` returns `(fig, axs)`. `kwargs` go to `subplots`.
    """
    if n < 1:
        raise ValueError(f"get_grid: n={n}; need at least one axis")
    if nrows:
        ncols = ncols or int(math.ceil(n / nrows))
    elif ncols:
        nrows = int(math.ceil(n / ncols))
    else:
        nrows = max(1, int(math.sqrt(n)))
        ncols = int(math.ceil(n / nrows))
    if double:
        ncols *= 2
        n *= 2
    fig, grid = subplots(nrows, ncols, figsize=figsize, **kwargs)
    axs: Any = grid  # the 2-d array of axes, or (flatten) the list of the first n
    if flatten:
        flat = list(axs.flatten())
        for ax in flat[n:]:
            ax.set_axis_off()
        axs = flat[:n]
    if title is not None:
        fig.suptitle(title, weight="bold", size=14)
    return (fig, axs) if return_fig else axs


def _colour(label: str, palette: Any) -> Any:
    return palette[sum(map(ord, label)) % len(palette)]


def draw_boxes(boxes: Tensor | np.ndarray, labels: Sequence[str] | None = None, ctx: Axes | None = None,
               color: str | None = None, linewidth: float = 2, fontsize: float = 9, **kwargs: Any) -> Axes:
    """Draw boxes (n, 4) of pixel x0, y0, x1, y1 on matplotlib axis `ctx`, each captioned with its label.

    Boxes get a dark outline so they read on light and dark images; labels pick a stable colour each unless
    `color` is given. Returns the axis.
    """
    import matplotlib.patches as patches
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    if ctx is None:
        _, ctx = plt.subplots(figsize=kwargs.pop("figsize", None))
    kwargs.pop("figsize", None)
    kwargs.pop("title", None)
    b = boxes.detach().cpu().float().reshape(-1, 4).tolist() if isinstance(boxes, Tensor) else np.reshape(boxes, (-1, 4)).tolist()
    palette = cast(ListedColormap, plt.get_cmap("tab10")).colors  # tab10 is a listed (discrete) colormap
    outline = [pe.Stroke(linewidth=linewidth + 2, foreground="black"), pe.Normal()]
    for i, (x0, y0, x1, y1) in enumerate(b):
        lbl = None if labels is None else str(labels[i])
        c = color or (_colour(lbl, palette) if lbl else "white")
        rect = ctx.add_patch(patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=c, lw=linewidth))
        rect.set_path_effects(outline)
        if lbl:
            txt = ctx.text(x0, y0, lbl, verticalalignment="bottom", color="white", fontsize=fontsize, weight="bold")
            txt.set_path_effects([pe.Stroke(linewidth=2, foreground="black"), pe.Normal()])
    return ctx


# ---------------------------------------------------------------------------------------------- show_batch / show_results
# Specialisations of tiers.data's type-dispatched functions (one registry per name): an image input gets a grid of
# image axes; targets draw on the same axis (a category as the title, a mask overlaid, points and boxes on top),
# except image targets, which get their own column.


def _generic_batch(x, y, samples, ctxs, max_n, **kwargs):
    return show_batch[(object, object)](x, y, samples, ctxs=ctxs, max_n=max_n, **kwargs)


def _generic_results(x, y, samples, outs, ctxs, max_n, **kwargs):
    return show_results[(object, object)](x, y, samples, outs, ctxs=ctxs, max_n=max_n, **kwargs)


@typedispatch
def show_batch(x: TensorImage, y, samples, ctxs=None, max_n: int = 10, nrows: int | None = None,
               ncols: int | None = None, figsize=None, **kwargs):
    """Images in a grid, each with its target drawn on it (title, mask overlay, points or boxes)."""
    if ctxs is None:
        ctxs = get_grid(min(len(samples), max_n), nrows=nrows, ncols=ncols, figsize=figsize)
    return _generic_batch(x, y, samples, ctxs, max_n, **kwargs)


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def show_batch(x: TensorImage, y: TensorImage, samples, ctxs=None, max_n: int = 10, nrows: int | None = None,  # noqa: F811
               ncols: int | None = None, figsize=None, **kwargs):
    """Input and target images side by side (image-to-image tasks)."""
    n = min(len(samples), max_n)
    if ctxs is None:
        ctxs = get_grid(n, nrows=nrows, ncols=ncols, figsize=figsize, double=True)
    for i in range(2):
        ctxs[i::2] = [s[i].show(ctx=c, **kwargs) for s, c in zip(list(samples)[:n], ctxs[i::2])]
    return ctxs


@typedispatch
def show_results(x: TensorImage, y, samples, outs, ctxs=None, max_n: int = 10, nrows: int | None = None,
                 ncols: int | None = None, figsize=None, **kwargs):
    """Images in a grid with their targets, then the predictions drawn on the same axes."""
    if ctxs is None:
        ctxs = get_grid(min(len(samples), max_n), nrows=nrows, ncols=ncols, figsize=figsize)
    return _generic_results(x, y, samples, outs, ctxs, max_n, **kwargs)


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def show_results(x: TensorImage, y: TensorCategory, samples, outs, ctxs=None, max_n: int = 10,  # noqa: F811
                 nrows: int | None = None, ncols: int | None = None, figsize=None, **kwargs):
    """Images titled with target and prediction; the prediction is green when right and red when wrong."""
    samples, outs = list(samples), list(outs)
    n = min(len(samples), max_n)
    if ctxs is None:
        ctxs = get_grid(n, nrows=nrows, ncols=ncols, figsize=figsize)
    ctxs = [s[0].show(ctx=c, **kwargs) for s, c in zip(samples[:n], ctxs)]
    ctxs = [s[1].show(ctx=c, **kwargs) for s, c in zip(samples[:n], ctxs)]
    return [o[0].show(ctx=c, color="green" if str(s[1]) == str(o[0]) else "red", **kwargs)
            for s, o, c in zip(samples[:n], outs[:n], ctxs)]


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def show_results(x: TensorImage, y: TensorMask | TensorPoint | TensorBBox, samples, outs, ctxs=None,  # noqa: F811
                 max_n: int = 6, nrows: int | None = None, ncols: int = 1, figsize=None, **kwargs):
    """Two columns, target then prediction, each drawn over the input image."""
    samples, outs = list(samples), list(outs)
    n = min(len(samples), max_n)
    if ctxs is None:
        ctxs = get_grid(n, nrows=nrows, ncols=ncols, figsize=figsize, double=True, title="Target/Prediction")
    ctxs[::2] = [s[0].show(ctx=c, **kwargs) for s, c in zip(samples[:n], ctxs[::2])]
    ctxs[::2] = [s[1].show(ctx=c, **kwargs) for s, c in zip(samples[:n], ctxs[::2])]
    ctxs[1::2] = [s[0].show(ctx=c, **kwargs) for s, c in zip(samples[:n], ctxs[1::2])]
    ctxs[1::2] = [o[0].show(ctx=c, **kwargs) for o, c in zip(outs[:n], ctxs[1::2])]
    return ctxs


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def show_results(x: TensorImage, y: TensorImage, samples, outs, ctxs=None, max_n: int = 10, figsize=None,  # noqa: F811
                 **kwargs):
    """Three columns: input, target and predicted images."""
    samples, outs = list(samples), list(outs)
    n = min(len(samples), max_n)
    if ctxs is None:
        ctxs = get_grid(3 * n, ncols=3, figsize=figsize, title="Input/Target/Prediction")
    for i in range(2):
        ctxs[i::3] = [s[i].show(ctx=c, **kwargs) for s, c in zip(samples[:n], ctxs[i::3])]
    ctxs[2::3] = [o[0].show(ctx=c, **kwargs) for o, c in zip(outs[:n], ctxs[2::3])]
    return ctxs
