"""The lighting engine of batch augmentation, on plain float image batches (bs, 3, h, w) in [0, 1].

Brightness and contrast work in logit space, as in the paper: brightness adds `logit(b)` and contrast multiplies
by `c`, so no pixel is ever pushed out of [0, 1] and no clipping flattens the highlights. Saturation and hue are
linear maps of the RGB values (3x3 per item), so any mix of the four costs one colour matmul and one
logit/sigmoid round trip over the batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "LUMA",
    "grayscale",
    "saturation_mat",
    "hue_mat",
    "apply_lighting",
    "rgb2hsv",
    "hsv2rgb",
    "cutout_gaussian",
]

# ITU-R BT.601 luma weights, the ones PIL's convert('L') uses.
LUMA = (0.299, 0.587, 0.114)
_EPS = 1e-6


def grayscale(x: Tensor) -> Tensor:
    """Luma of RGB batches (..., 3, h, w) -> (..., 1, h, w)."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(dim=-3, keepdim=True)


def saturation_mat(s: Tensor) -> Tensor:
    """Colour matrices (bs, 3, 3) scaling saturation by `s` (bs,): 0 gives grey, 1 leaves the colour, 2 doubles it."""
    s = s.float()
    w = torch.tensor(LUMA, dtype=s.dtype, device=s.device)
    eye = torch.eye(3, dtype=s.dtype, device=s.device)
    return s[:, None, None] * eye + (1 - s)[:, None, None] * w.expand(3, 3)


def hue_mat(h: Tensor) -> Tensor:
    """Colour matrices (bs, 3, 3) turning the hue by `h` (bs,) of a full turn, about the grey axis.

    A rotation of RGB space about (1, 1, 1): linear, so it composes with saturation, and greys stay grey.
    """
    th = h.float() * (2 * math.pi)
    c, s = th.cos()[:, None, None], th.sin()[:, None, None]
    eye = torch.eye(3, dtype=c.dtype, device=c.device)
    ones = torch.full((3, 3), 1 / 3, dtype=c.dtype, device=c.device)
    k = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=c.dtype, device=c.device) / math.sqrt(3)
    return c * eye + (1 - c) * ones + s * k


def apply_lighting(x: Tensor, brightness: Tensor | None = None, contrast: Tensor | None = None,
                   color: Tensor | None = None) -> Tensor:
    """`sigmoid(contrast * (logit(color @ x) + logit(brightness)))` per item, in one pass over the batch.

    `brightness` (bs,) in (0, 1) with 0.5 neutral; `contrast` (bs,) > 0 with 1 neutral; `color` (bs, 3, 3) or
    None. Returns a new tensor; `x` is left alone.
    """
    if x.ndim != 4:
        raise ValueError(f"apply_lighting expects a (bs, c, h, w) float batch, got shape {tuple(x.shape)}")
    if color is not None:
        if x.shape[1] != 3:
            raise ValueError(f"saturation and hue need 3-channel images, got {x.shape[1]} channels")
        bs, _, h, w = x.shape
        x = torch.bmm(color.to(x.dtype), x.reshape(bs, 3, h * w)).view(bs, 3, h, w)
    t = torch.special.logit(x, eps=_EPS)
    if brightness is not None:
        t = t.add_(torch.special.logit(brightness.to(x.dtype), eps=_EPS).view(-1, 1, 1, 1))
    if contrast is not None:
        t = t.mul_(contrast.to(x.dtype).view(-1, 1, 1, 1))
    return torch.sigmoid_(t)


def rgb2hsv(img: Tensor) -> Tensor:
    """RGB (bs, 3, h, w) in [0, 1] to HSV with every channel in [0, 1]."""
    r, g, b = img.unbind(-3)
    mx, argmx = img.max(dim=-3)
    mn = img.min(dim=-3).values
    d = mx - mn
    safe = d.clamp_min(1e-12)
    h = torch.where(argmx == 0, ((g - b) / safe) % 6, torch.where(argmx == 1, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(d > 0, h / 6, torch.zeros_like(h))
    s = torch.where(mx > 0, d / mx.clamp_min(1e-12), torch.zeros_like(mx))
    return torch.stack([h, s, mx], dim=-3)


def hsv2rgb(img: Tensor) -> Tensor:
    """HSV (bs, 3, h, w) with channels in [0, 1] back to RGB; the inverse of `rgb2hsv`."""
    h, s, v = img.unbind(-3)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=-3)
    f = torch.minimum(k, 4 - k).clamp(0, 1)
    return v.unsqueeze(-3) - (v * s).unsqueeze(-3) * f


def cutout_gaussian(x: Tensor, areas: list[tuple[slice, slice]]) -> Tensor:
    """Fill each (rows, cols) slice pair of one image (c, h, w) with N(0, 1) noise, in place; returns `x`."""
    for rows, cols in areas:
        x[:, rows, cols] = torch.randn_like(x[:, rows, cols])
    return x
