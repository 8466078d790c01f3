"""Drawing helpers of the vision layer: grids of axes and captioned boxes. matplotlib is imported inside them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from tiers.tensors import subplots

__all__ = ["get_grid", "draw_boxes"]


def get_grid(n: int, nrows: int | None = None, ncols: int | None = None, figsize=None, double: bool = False,
             title: str | None = None, return_fig: bool = False, flatten: bool = True, **kwargs: Any):
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
    fig, axs = subplots(nrows, ncols, figsize=figsize, **kwargs)
    if flatten:
        flat = list(axs.flatten())
        for ax in flat[n:]:
            ax.set_axis_off()
        axs = flat[:n]
    if title is not None:
        fig.suptitle(title, weight="bold", size=14)
    return (fig, axs) if return_fig else axs


def _colour(label: str, palette: Sequence) -> Any:
    return palette[sum(map(ord, label)) % len(palette)]


def draw_boxes(boxes: Tensor | np.ndarray, labels: Sequence[str] | None = None, ctx=None, color: str | None = None,
               linewidth: float = 2, fontsize: float = 9, **kwargs: Any):
    """Draw boxes (n, 4) of pixel x0, y0, x1, y1 on matplotlib axis `ctx`, each captioned with its label.

    Boxes get a dark outline so they read on light and dark images; labels pick a stable colour each unless
    `color` is given. Returns the axis.
    """
    import matplotlib.patches as patches
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt

    if ctx is None:
        _, ctx = plt.subplots(figsize=kwargs.pop("figsize", None))
    kwargs.pop("figsize", None)
    kwargs.pop("title", None)
    b = boxes.detach().cpu().float().reshape(-1, 4).tolist() if isinstance(boxes, Tensor) else np.reshape(boxes, (-1, 4)).tolist()
    palette = plt.get_cmap("tab10").colors
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
