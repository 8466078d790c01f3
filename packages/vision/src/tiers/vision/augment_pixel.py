"""Pixel-wise batch augmentation: lighting (`Brightness`, `Contrast`, `Saturation`, `Hue`, merged into one
`LightingTfm` pass in logit space) and `RandomErasing`. Training set only, on the batch's device."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from tiers.tensors import TensorImage
from tiers.vision._draws import Draw, _draw, _first_tensor, _uniform
from tiers.vision.item_tfms import RandTransform
from tiers.vision.lighting import apply_lighting, cutout_gaussian, hue_mat, saturation_mat

if TYPE_CHECKING:
    from tiers.data import Normalize

__all__ = ["LightingTfm", "Brightness", "Contrast", "Saturation", "Hue", "RandomErasing", "norm_apply_denorm"]


# ---------------------------------------------------------------------------------------------- lighting


class LightingTfm(RandTransform):
    """Change brightness, contrast and colour of image batches in one pass (training set only).

    Each of `fs` maps the batch to a dict with any of `brightness` (bs,), `contrast` (bs,) and `color`
    (bs, 3, 3); `compose` merges another LightingTfm's functions, and all of them apply in one
    `apply_lighting` call: colour matrix, then brightness and contrast in logit space.
    """

    order = 40
    _draw_attrs = frozenset({"do", "params", "fs"})

    def __init__(self, fs: Sequence[Callable] | None = None, **kwargs: Any) -> None:
        self.fs = list(fs or [])
        super().__init__(**kwargs)

    def compose(self, tfm: LightingTfm) -> LightingTfm:
        """Append `tfm`'s lighting functions to this one's."""
        self.fs += tfm.fs
        return self

    def before_call(self, b: Any, split_idx: int | None) -> None:
        self.do = True
        x = _first_tensor(b)
        bright, contrast, color = None, None, None
        for f in self.fs:
            d = f(x)
            if "brightness" in d:
                # chained brightness shifts add in logit space
                b_ = d["brightness"]
                bright = b_ if bright is None else torch.sigmoid(torch.logit(bright) + torch.logit(b_))
            if "contrast" in d:
                contrast = d["contrast"] if contrast is None else contrast * d["contrast"]
            if "color" in d:
                color = d["color"] if color is None else d["color"] @ color
        self.params = (bright, contrast, color)

    def encodes(self, x: TensorImage):
        bright, contrast, color = self.params
        if x.ndim != 4:
            return x
        if color is not None and x.shape[1] != 3:
            color = None  # saturation and hue mean nothing for one-channel images
        if bright is None and contrast is None and color is None:
            return x
        out = apply_lighting(x.as_subclass(Tensor), bright, contrast, None if color is None else color.to(x.device))
        return type(x)(out, **x.__dict__)


def _log_uniform(max_lighting: float, x: Tensor, n: int) -> Tensor:
    lim = -math.log(1 - max_lighting)
    return torch.exp(_uniform(n, -lim, lim, x))


class _MaxLighting(LightingTfm):
    # Brightness, Contrast and Saturation: each defines its lighting function `_f`, of strength `max_lighting`.
    _f: Callable[[Tensor], dict]

    def __init__(self, max_lighting: float = 0.2, p: float = 0.75, draw: Draw = None, batch: bool = False) -> None:
        if not 0 <= max_lighting < 1:
            raise ValueError(f"{type(self).__name__}: max_lighting={max_lighting} must be in [0, 1)")
        self.max_lighting, self.light_p, self.draw, self.batch = max_lighting, p, draw, batch
        super().__init__([self._f])


class Brightness(_MaxLighting):
    """Brightness: add `logit(b)` to the logit of each pixel, b uniform in 0.5 +/- `max_lighting`/2; probability `p`."""

    def _f(self, x: Tensor) -> dict:
        m = self.max_lighting
        return {"brightness": _draw(x, lambda n: _uniform(n, 0.5 * (1 - m), 0.5 * (1 + m), x), self.draw,
                                    self.light_p, 0.5, self.batch)}


class Contrast(_MaxLighting):
    """Contrast: multiply pixel logits by a factor drawn log-uniformly in [1-`max_lighting`, 1/(1-`max_lighting`)]."""

    def _f(self, x: Tensor) -> dict:
        return {"contrast": _draw(x, lambda n: _log_uniform(self.max_lighting, x, n), self.draw, self.light_p, 1.0,
                                  self.batch)}


class Saturation(_MaxLighting):
    """Saturation: scale the colour away from grey by a factor drawn log-uniformly like `Contrast`'s."""

    def _f(self, x: Tensor) -> dict:
        s = _draw(x, lambda n: _log_uniform(self.max_lighting, x, n), self.draw, self.light_p, 1.0, self.batch)
        return {"color": saturation_mat(s)}


class Hue(LightingTfm):
    """Hue: turn colours about the grey axis by up to `max_hue` of a full turn either way, probability `p`."""

    def __init__(self, max_hue: float = 0.1, p: float = 0.75, draw: Draw = None, batch: bool = False) -> None:
        self.max_hue, self.light_p, self.draw, self.batch = max_hue, p, draw, batch
        super().__init__([self._f])

    def _f(self, x: Tensor) -> dict:
        h = _draw(x, lambda n: _uniform(n, -self.max_hue, self.max_hue, x), self.draw, self.light_p, 0.0, self.batch)
        return {"color": hue_mat(h)}


# ---------------------------------------------------------------------------------------------- erasing


class RandomErasing(RandTransform):
    """Replace up to `max_count` random rectangles of each image by N(0, 1) noise, with probability `p` per item.

    Rectangles cover `sl`..`sh` of the image (split among them) with aspect at least `min_aspect`. Runs after
    `Normalize` (order 100), where N(0, 1) is the data's own scale. Each image gets its own rectangles.
    """

    order = 100

    def __init__(self, p: float = 0.5, sl: float = 0.0, sh: float = 0.3, min_aspect: float = 0.3,
                 max_count: int = 1) -> None:
        if not 0 <= sl <= sh <= 1:
            raise ValueError(f"RandomErasing: need 0 <= sl <= sh <= 1, got sl={sl}, sh={sh}")
        self.erase_p, self.sl, self.sh, self.min_aspect, self.max_count = p, sl, sh, min_aspect, max_count
        self.log_ratio = (math.log(min_aspect), math.log(1 / min_aspect))
        super().__init__(p=1.0)

    def _bounds(self, area: float, h: int, w: int) -> tuple[slice, slice]:
        r_area = random.uniform(self.sl, self.sh) * area
        aspect = math.exp(random.uniform(*self.log_ratio))
        eh, ew = min(h, int(round(math.sqrt(r_area / aspect)))), min(w, int(round(math.sqrt(r_area * aspect))))
        top, left = random.randint(0, h - eh), random.randint(0, w - ew)
        return slice(top, top + eh), slice(left, left + ew)

    def encodes(self, x: TensorImage):
        if x.ndim != 4:
            return x
        h, w = x.shape[-2:]
        out = x.as_subclass(Tensor).clone()
        for i in range(out.shape[0]):
            if random.random() >= self.erase_p:
                continue
            count = random.randint(1, self.max_count)
            area = h * w / count
            cutout_gaussian(out[i], [self._bounds(area, h, w) for _ in range(count)])
        return type(x)(out, **x.__dict__)


def norm_apply_denorm(x: Tensor, f: Callable[[Tensor], Tensor], nrm: Normalize) -> Tensor:
    """Apply `f` to a normalised batch `x` in pixel space: decode with `nrm` (a `Normalize`), `f`, encode again."""
    return nrm(f(nrm.decode(x)))
