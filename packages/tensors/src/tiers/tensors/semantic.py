"""The semantic tensor types: what a tensor *means* (an image, a mask, points, a category), so transforms and `show`
can be dispatched on it. Each is a `TensorBase`, so type and metadata survive torch operations."""

from __future__ import annotations

from typing import Any

from tiers.dispatch.extras import require
from tiers.tensors.base import TensorBase, tensor
from tiers.tensors.display import show_image

__all__ = [
    "TensorBBox",
    "TensorCategory",
    "TensorFlowField",
    "TensorImage",
    "TensorImageBW",
    "TensorImageBase",
    "TensorMask",
    "TensorMultiCategory",
    "TensorPoint",
    "TensorText",
]


class TensorImageBase(TensorBase):
    """Base of the image-like types (`TensorImage`, `TensorImageBW`, `TensorMask`): a CHW (or BCHW) tensor that can
    `show` itself. `_show_args` holds the default keyword arguments for `show_image`."""

    _show_args: dict[str, Any] = {"cmap": "viridis"}

    def show(self, ctx: Any = None, **kwargs: Any) -> Any:
        """Draw the image on the matplotlib axis `ctx` (a new figure when None) and return the axis; `kwargs` override
        `_show_args` and go to `show_image` (`title`, `figsize`, `cmap`, `alpha`...)."""
        return show_image(self, ctx=ctx, **{**self._show_args, **kwargs})


class TensorImage(TensorImageBase):
    """An image as a float or uint8 tensor, channels first: `TensorImage(torch.rand(3, 28, 28)).show()`."""


class TensorImageBW(TensorImage):
    """A one-channel (black and white) image, shown with the `Greys` colour map."""

    _show_args = {"cmap": "Greys"}


class TensorMask(TensorImageBase):
    """A segmentation mask of integer class codes (HW or 1HW); shown half transparent over an image. Give it the
    class names as metadata, `TensorMask(m, codes=["bg", "cat"])`, to fix the colour of each code."""

    _show_args = {"alpha": 0.5, "cmap": "tab20"}

    def show(self, ctx: Any = None, **kwargs: Any) -> Any:
        """Draw the mask on `ctx` (see `TensorImageBase.show`); with `codes` metadata, colours span exactly the codes."""
        codes = getattr(self, "codes", None)
        if codes is not None:
            kwargs = {"vmin": 0, "vmax": max(len(codes) - 1, 1), **kwargs}
        return super().show(ctx=ctx, **kwargs)


class TensorFlowField(TensorBase):
    """A flow field (per-pixel sampling coordinates, as used by `F.grid_sample`)."""


class TensorCategory(TensorBase):
    """A class index (or a batch of them): the target type of single-label classification."""


class TensorMultiCategory(TensorCategory):
    """Several labels per item, usually one-hot encoded: the target type of multi-label classification."""


class TensorText(TensorBase):
    """A sequence of token ids."""


class TensorPoint(TensorBase):
    """Points as an (n, 2) float tensor of (x, y) coordinates; keep the size of the image they belong to as
    metadata: `TensorPoint.create([[1, 2], [3, 4]], img_size=(28, 28))`."""

    _show_args: dict[str, Any] = {"s": 10, "marker": ".", "c": "r"}

    @classmethod
    def create(cls, t: Any, img_size: tuple[int, int] | None = None) -> TensorPoint:
        """Build from anything `tensor` accepts, reshaped to (n, 2) floats, with `img_size` (width, height) metadata."""
        return cls(tensor(t).reshape(-1, 2).float(), img_size=img_size)

    def show(self, ctx: Any = None, **kwargs: Any) -> Any:
        """Scatter the points on the matplotlib axis `ctx` (a new one when None) and return it."""
        plt = require("matplotlib.pyplot", dist="tiers-tensors", extra="plots", what="TensorPoint.show")

        if ctx is None:
            _, ctx = plt.subplots(figsize=kwargs.pop("figsize", None))
        kwargs.pop("figsize", None)
        x = self.detach().cpu().float().reshape(-1, 2).numpy()
        ctx.scatter(x[:, 0], x[:, 1], **{**self._show_args, **kwargs})
        return ctx


class TensorBBox(TensorPoint):
    """Bounding boxes as an (n, 4) float tensor of (left, top, right, bottom), with `img_size` metadata:
    `TensorBBox.create([[0, 0, 5, 5]], img_size=(28, 28))`."""

    _show_args: dict[str, Any] = {"color": "white", "linewidth": 2}

    @classmethod
    def create(cls, t: Any, img_size: tuple[int, int] | None = None) -> TensorBBox:
        """Build from anything `tensor` accepts, reshaped to (n, 4) floats, with `img_size` (width, height) metadata."""
        return cls(tensor(t).reshape(-1, 4).float(), img_size=img_size)

    def show(self, ctx: Any = None, **kwargs: Any) -> Any:
        """Draw each box as an unfilled rectangle on `ctx` (a new axis when None) and return it."""
        patches = require("matplotlib.patches", dist="tiers-tensors", extra="plots", what="TensorBBox.show")
        plt = require("matplotlib.pyplot", dist="tiers-tensors", extra="plots", what="TensorBBox.show")

        if ctx is None:
            _, ctx = plt.subplots(figsize=kwargs.pop("figsize", None))
        kwargs.pop("figsize", None)
        for x0, y0, x1, y1 in self.detach().cpu().float().reshape(-1, 4).tolist():
            ctx.add_patch(
                patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, **{**self._show_args, **kwargs})
            )
        return ctx
