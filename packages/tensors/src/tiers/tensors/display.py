"""Showing images with matplotlib, which is imported inside each function so `import tiers.tensors` stays cheap."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from tiers.dispatch.extras import require

__all__ = ["make_cross_image", "show_image", "show_image_batch", "show_images", "show_titled_image", "subplots"]


def _to_displayable(im):
    "A NumPy HW or HWC array from a CHW/HWC tensor, an array or a PIL image."
    if isinstance(im, torch.Tensor):
        im = im.detach().cpu()
        if im.dtype in (torch.float16, torch.bfloat16):
            im = im.float()
        if im.ndim == 3 and im.shape[0] < 5:  # channels first: matplotlib wants channels last
            im = im.permute(1, 2, 0)
        im = im.as_subclass(torch.Tensor).numpy()
    else:
        im = np.asarray(im)
    if im.ndim == 3 and im.shape[-1] == 1:
        im = im[..., 0]
    if im.ndim not in (2, 3):
        raise ValueError(
            f"show_image: expected an image of 2 or 3 dimensions (HW, CHW or HWC), got shape {tuple(im.shape)}; "
            "index a batch first, e.g. show_image(batch[0])"
        )
    return im


def show_image(im: Any, ax: Any = None, figsize: tuple[float, float] | None = None, title: Any = None, ctx: Any = None,
               cmap: Any = None, **kwargs: Any) -> Any:
    """Draw `im` (a CHW or HWC tensor, an array or a PIL image) on the matplotlib axis `ax` (or `ctx`; a new figure of
    `figsize` when both are None), hide the axes, set `title`, and return the axis. `cmap` and `kwargs` go to
    `ax.imshow`.

    >>> ax = show_image(torch.rand(3, 8, 8), title="noise")  # doctest: +SKIP
    """
    plt = require("matplotlib.pyplot", dist="tiers-tensors", extra="plots", what="show_image")

    im = _to_displayable(im)
    ax = ax if ax is not None else ctx
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.imshow(im, cmap=cmap, **kwargs)
    if title is not None:
        ax.set_title(title)
    ax.axis("off")
    return ax


def show_titled_image(o: tuple, **kwargs: Any) -> Any:
    """`show_image` of an `(image, title)` pair; `kwargs` go to `show_image`."""
    im, title = o
    return show_image(im, title=str(title), **kwargs)


def subplots(
    nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, imsize: float = 3,
    suptitle: str | None = None, **kwargs: Any
) -> tuple[Any, np.ndarray]:
    """`plt.subplots` with a figure size derived from `imsize` inches per image when `figsize` is None; returns
    `(fig, axs)` with `axs` always a 2-d NumPy array of axes."""
    plt = require("matplotlib.pyplot", dist="tiers-tensors", extra="plots", what="subplots")

    if figsize is None:
        figsize = (ncols * imsize, nrows * imsize + (0.6 if suptitle else 0))
    fig, axs = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kwargs)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig, axs


def show_images(
    ims: Sequence, nrows: int = 1, ncols: int | None = None, titles: Sequence | None = None, **kwargs: Any
) -> np.ndarray:
    """Show several images in a grid of `nrows` rows (and `ncols` columns, enough for all by default), with optional
    `titles`; `kwargs` go to `subplots`. Returns the 2-d array of axes."""
    n = len(ims)
    if ncols is None:
        ncols = int(np.ceil(n / nrows))
    if titles is not None and len(titles) != n:
        raise ValueError(
            f"show_images: got {n} images but {len(titles)} titles; pass one title per image or None"
        )
    _, axs = subplots(nrows, ncols, **kwargs)
    flat = axs.flatten()
    for i, ax in enumerate(flat):
        if i < n:
            show_image(ims[i], ax=ax, title=None if titles is None else titles[i])
        else:
            ax.axis("off")
    return axs


def show_image_batch(b: tuple, show: Callable[..., Any] = show_titled_image, items: int = 9, cols: int = 3,
                     figsize: tuple[float, float] | None = None, **kwargs: Any) -> np.ndarray:
    """Show the first `items` (image, label) pairs of the batch `b = (images, labels)` in a grid of `cols` columns,
    each through `show` (default `show_titled_image`); `kwargs` go to `show`. Returns the 2-d array of axes."""
    if items <= 0:
        raise ValueError(f"show_image_batch: items={items}; show at least one item.")
    rows = (items + cols - 1) // cols
    _, axs = subplots(rows, cols, figsize=figsize)
    for *o, ax in zip(*b, axs.flatten()):
        show(o, ax=ax, **kwargs)
    for ax in axs.flatten()[min(items, len(b[0])):]:
        ax.axis("off")
    return axs


def make_cross_image(bw: bool = True) -> torch.Tensor:
    """A 5x5 test image holding a cross: black and white (`bw`, shape 5x5) or colour (3x5x5: a red horizontal bar
    and a green vertical one).

    >>> make_cross_image()[2].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    if bw:
        im = torch.zeros(5, 5)
        im[2, :] = 1.0
        im[:, 2] = 1.0
    else:
        im = torch.zeros(3, 5, 5)
        im[0, 2, :] = 1.0
        im[1, :, 2] = 1.0
    return im
