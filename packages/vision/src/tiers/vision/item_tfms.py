"""Item transforms: run on each item on the CPU, before collation (PIL images and masks, points, boxes).

Their job is to bring items of any size to one size so they can be batched: `Resize` (crop, pad or squish),
`RandomResizedCrop`, `CropPad`, `RandomCrop`, `RatioResize`, plus the cheap exact flips `FlipItem` and
`DihedralItem`. Images are resampled bilinearly and masks with nearest-neighbour (`resamples`), in one Pillow call
that crops and resizes together. Points and boxes are in the normalised [-1, 1] coordinates that `PointScaler`
gives them and move with the crop.

Sizes are given as an int or `(height, width)`, like tensor shapes.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from tiers.pipeline import DisplayedTransform
from tiers.tensors import TensorBBox, TensorImageBase, TensorPoint
from tiers.vision.core import BILINEAR, NEAREST, PILBase, PILMask

__all__ = [
    "PadMode",
    "ResizeMethod",
    "RandTransform",
    "crop_pad",
    "FlipItem",
    "DihedralItem",
    "CropPad",
    "RandomCrop",
    "Resize",
    "RandomResizedCrop",
    "RatioResize",
]


class PadMode:
    """How to fill pixels outside the source image: `Zeros`, `Border` (repeat the edge), `Reflection` (mirror)."""

    Zeros = "zeros"
    Border = "border"
    Reflection = "reflection"


class ResizeMethod:
    """How `Resize` reaches the target aspect ratio: `Squish` (stretch), `Crop` (cut the excess), `Pad` (add borders)."""

    Squish = "squish"
    Crop = "crop"
    Pad = "pad"


_PAD_MODES = (PadMode.Zeros, PadMode.Border, PadMode.Reflection)
_NP_PAD: dict[str, Literal["constant", "edge", "reflect"]] = {
    # reflection mirrors about the edge pixel without repeating it (numpy's "reflect", torchvision's and so fastai's)
    PadMode.Zeros: "constant", PadMode.Border: "edge", PadMode.Reflection: "reflect"}


def _whole(v: Any) -> int | None:
    "`v` as an int when it is a whole number (`224`, `np.int64(224)`, `224.0`), else None (text, bools, `224.5`)."
    if isinstance(v, torch.Tensor | np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
        return None
    if isinstance(v, numbers.Integral):
        return int(v)
    f = float(v)
    return int(f) if math.isfinite(f) and f.is_integer() else None


def _pixels(v: Any, where: str, arg: str, shown: Any = None) -> int:
    """`v` as a number of pixels, or a `ValueError` (a number that is not a whole one > 0: `Resize(0)` failed at the
    first batch with a ZeroDivisionError) or `TypeError` (anything else) naming `where`, `arg` and `shown` (the value
    the user passed, default `v`)."""
    n = _whole(v)
    if n is not None and n > 0:
        return n
    shown = v if shown is None else shown
    err = ValueError if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) else TypeError
    side = "" if shown is v else f" ({v!r} is not)"
    raise err(f"{where}: {arg}={shown!r} is not a size in pixels{side}: give a whole number > 0, e.g. 224"
              + (" or a (height, width) pair such as (224, 320)" if arg == "size" else "") + ".")


def _hw(size: Any, where: str = "Resize") -> tuple[int, int]:
    """`size` (an int, or a `(height, width)` pair) as `(h, w)` in pixels; anything else raises naming `where`."""
    if isinstance(size, str | bytes):  # `h, w = "22"` would give (2, 2)
        sides: list = [size]
    else:
        try:
            sides = list(size)
        except TypeError:  # a single number
            sides = [size]
    if len(sides) not in (1, 2) or len(sides) == 1 and sides[0] is not size:
        raise ValueError(f"{where}: size={size!r} is neither one number nor a (height, width) pair; give an int such as "
                         "224 or a pair such as (224, 320).")
    h, w = (_pixels(v, where, "size", size) for v in (sides * 2)[:2])
    return h, w


def _check_pad(pad_mode: str) -> str:
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode={pad_mode!r} is not one of {_PAD_MODES} (see PadMode)")
    return pad_mode


def _item_hw(x) -> tuple[int, int]:
    "(h, w) of an item: the first element of a tuple; points and boxes read their `img_size` (w, h) metadata."
    if isinstance(x, tuple):
        x = x[0]
    if isinstance(x, Image.Image):
        return x.size[1], x.size[0]
    if isinstance(x, TensorPoint):
        sz = getattr(x, "img_size", None)
        if sz is None:
            raise ValueError("points/boxes without img_size metadata: create them with TensorPoint.create(t, "
                             "img_size=(w, h)) or put the image first in the item")
        return int(sz[1]), int(sz[0])
    if isinstance(x, torch.Tensor):
        return int(x.shape[-2]), int(x.shape[-1])
    raise TypeError(f"cannot find the image size of a {type(x).__name__}")


class RandTransform(DisplayedTransform):
    """A Transform that runs with probability `p`, on the training set only (`split_idx=0`).

    Before each call `before_call(b, split_idx)` draws `self.do` (and whatever else a subclass needs) once for
    the whole item or batch `b`, so every element of a tuple (image, mask, points) gets the same draw.
    `before_call` may also be passed as an argument.
    """

    split_idx: int | None = 0
    _draw_attrs = frozenset({"do", "pcts", "tl", "win", "final_size", "k"})  # per-call draws, not settings

    def __init__(self, p: float = 1.0, nm: str | None = None,
                 before_call: Callable[[Any, int | None], None] | None = None, **kwargs: Any) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p={p} is not a probability in [0, 1]")
        self.p = p
        if before_call is not None:
            self.before_call = before_call  # type: ignore[method-assign, assignment]  # per-instance hook
        super().__init__(**kwargs)

    def _state(self) -> dict:
        return {k: v for k, v in super()._state().items() if k not in self._draw_attrs}

    def before_call(self, b: Any, split_idx: int | None) -> None:
        """Draw whether to apply this call: `self.do`."""
        self.do = self.p == 1.0 or random.random() < self.p

    def __call__(self, x: Any, split_idx: int | None = None, **kwargs: Any) -> Any:
        if self.split_idx is not None and self.split_idx != split_idx:
            return x
        self.before_call(x, split_idx)
        return super().__call__(x, split_idx=split_idx, **kwargs) if self.do else x


# ---------------------------------------------------------------------------------------------- crop and pad


def _pad(im: Image.Image, widths: tuple[int, int, int, int], pad_mode: str) -> Image.Image:
    "Pad `im` by `widths` (left, top, right, bottom) pixels, filled by `pad_mode`."
    left, top, right, bottom = widths
    if not (left or top or right or bottom):
        return im
    a = np.asarray(im)
    a = np.pad(a, ((top, bottom), (left, right)) + (((0, 0),) if a.ndim == 3 else ()), mode=_NP_PAD[pad_mode])
    return Image.fromarray(a, mode=im.mode)


def _crop_then_pad(im: Image.Image, box: tuple[int, int, int, int], pad_mode: str) -> Image.Image:
    "The window `box` (x0, y0, x1, y1) of `im`: the part inside the image cut out, then padded to the window's size."
    w, h = im.size
    x0, y0, x1, y1 = box
    widths = (max(0, -x0), max(0, -y0), max(0, x1 - w), max(0, y1 - h))
    inside = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
    if inside[2] <= inside[0] or inside[3] <= inside[1]:
        # the window misses the image along one axis: pad the whole image, then cut the window out of it
        big = _pad(im, widths, pad_mode)
        return big.crop((x0 + widths[0], y0 + widths[1], x1 + widths[0], y1 + widths[1]))
    # fastai's order (its `_do_crop_pad`): a reflection mirrors the pixels inside the window, not the whole image
    return _pad(im.crop(inside), widths, pad_mode)


def crop_pad(x: Image.Image | TensorPoint, size: tuple[int, int], tl: tuple[int, int] | None = None,
             pad_mode: str = PadMode.Zeros, resize_to: tuple[int, int] | None = None,
             resample: int | None = None) -> Image.Image | TensorPoint:
    """Cut the window of `size` (h, w) whose top-left corner is `tl` (row, col) out of `x`, then resize it.

    `tl=None` centres the window. A window reaching outside the image is filled by `pad_mode`. `resize_to`
    (h, w) resizes the window in the same Pillow call. `x` is a PIL image (masks use nearest-neighbour whatever
    `resample` says), or points/boxes in normalised coordinates, which are moved to the window's coordinates.
    """
    h, w = size
    oh, ow = _item_hw(x)
    if tl is None:
        tl = ((oh - h) // 2, (ow - w) // 2)
    top, left = tl
    out_h, out_w = resize_to if resize_to is not None else (h, w)
    if isinstance(x, TensorPoint):
        return _crop_pad_points(x, (oh, ow), (top, left, h, w), (out_h, out_w))
    if not isinstance(x, Image.Image):
        raise TypeError(f"crop_pad: cannot crop a {type(x).__name__}; pass a PIL image, TensorPoint or TensorBBox")
    res = _crop_then_pad(x, (left, top, left + w, top + h), _check_pad(pad_mode))
    if isinstance(x, PILMask):
        resample = NEAREST
    elif resample is None:
        resample = BILINEAR
    if (out_w, out_h) != (w, h):
        # Resizing the cut-out window, not `resize(box=...)` of the whole image: with a box, Pillow's filter also
        # reads the pixels just outside the window, so the edge rows/columns differ from fastai's (and a model
        # trained with fastai sees other pixels)
        res = res.resize((out_w, out_h), resample=resample)
    if isinstance(x, PILBase):
        res = type(x)._wrap(res)
    return res


def _crop_pad_points(x: TensorPoint, orig: tuple[int, int], win: tuple[int, int, int, int], out: tuple[int, int]):
    oh, ow = orig
    top, left, h, w = win
    pts = x.as_subclass(torch.Tensor).reshape(-1, 2)
    scale = pts.new_tensor([ow / w, oh / h])
    shift = pts.new_tensor([2 * left / w, 2 * top / h])
    new = (pts + 1) * scale - shift - 1
    return type(x)(new.reshape(x.shape), **{**x.__dict__, "img_size": (out[1], out[0])})


# ---------------------------------------------------------------------------------------------- flips


class FlipItem(RandTransform):
    """Flip left-right with probability `p` (exact: no resampling), for images, masks, points and boxes."""

    order = 1

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=p)

    def encodes(self, x: Image.Image):
        return x.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    def encodes(self, x: TensorImageBase):  # type: ignore[no-redef]  # noqa: F811
        return x.flip(-1)

    def encodes(self, x: TensorPoint):  # type: ignore[no-redef]  # noqa: F811
        p = x.clone()
        p[..., 0] = -p[..., 0]
        return p

    def encodes(self, x: TensorBBox):  # type: ignore[no-redef]  # noqa: F811
        b = x.clone().reshape(-1, 4)
        b[:, [0, 2]] = -x.reshape(-1, 4)[:, [2, 0]]
        return b.reshape(x.shape)


def _dihedral_pts(p: torch.Tensor, k: int) -> torch.Tensor:
    # k's bits: 1 flip x, 2 flip y, 4 transpose; the same numbering as tiers.vision.affine.dihedral_mat
    p = p.clone()
    if k & 4:
        p = p.flip(-1)
    if k & 1:
        p[..., 0] = -p[..., 0]
    if k & 2:
        p[..., 1] = -p[..., 1]
    return p


class DihedralItem(RandTransform):
    """One of the 8 flips/rotations by multiples of 90 degrees, drawn uniformly, with probability `p` (exact)."""

    order = 1

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p=p)

    def before_call(self, b: Any, split_idx: int | None) -> None:
        super().before_call(b, split_idx)
        self.k = random.randint(0, 7)

    def encodes(self, x: Image.Image):
        # PIL's ops act on the picture; compose flips after the transpose like the point maths below
        k = self.k
        if k & 4:
            x = x.transpose(Image.Transpose.TRANSPOSE)
        if k & 1:
            x = x.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if k & 2:
            x = x.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return x

    def encodes(self, x: TensorImageBase):  # type: ignore[no-redef]  # noqa: F811
        k = self.k
        out: torch.Tensor = x  # flips and transposes keep the subclass (and its metadata)
        if k & 4:
            out = out.transpose(-1, -2)
        if k & 1:
            out = out.flip(-1)
        if k & 2:
            out = out.flip(-2)
        return out

    def encodes(self, x: TensorPoint):  # type: ignore[no-redef]  # noqa: F811
        p = _dihedral_pts(x.reshape(-1, 2), self.k).reshape(x.shape)
        if self.k & 4 and getattr(x, "img_size", None) is not None:
            p.img_size = tuple(x.img_size)[::-1]  # type: ignore[attr-defined]  # undeclared metadata
        return p

    def encodes(self, x: TensorBBox):  # type: ignore[no-redef]  # noqa: F811
        corners = x.reshape(-1, 2, 2)  # (x0,y0), (x1,y1)
        p = _dihedral_pts(corners, self.k)
        lo, hi = p.min(dim=1).values, p.max(dim=1).values
        out = type(x)(torch.cat([lo, hi], dim=1).reshape(x.shape), **x.__dict__)
        if self.k & 4 and getattr(x, "img_size", None) is not None:
            out.img_size = tuple(x.img_size)[::-1]  # type: ignore[attr-defined]  # undeclared metadata
        return out


# ---------------------------------------------------------------------------------------------- crops and resizes


class CropPad(DisplayedTransform):
    """Centre-crop to `size` (h, w), padding with `pad_mode` where the image is smaller."""

    order = 0

    def __init__(self, size: int | tuple[int, int], pad_mode: str = PadMode.Zeros) -> None:
        self.size, self.pad_mode = _hw(size, type(self).__name__), _check_pad(pad_mode)
        super().__init__()

    def encodes(self, x: Image.Image | TensorPoint):
        return crop_pad(x, self.size, pad_mode=self.pad_mode)


class RandomCrop(RandTransform):
    """Crop a random window of `size` (h, w) on the training set and the centre one on validation."""

    split_idx = None
    order = 1

    def __init__(self, size: int | tuple[int, int], pad_mode: str = PadMode.Zeros) -> None:
        self.size, self.pad_mode = _hw(size, type(self).__name__), _check_pad(pad_mode)
        super().__init__()

    def before_call(self, b: Any, split_idx: int | None) -> None:
        self.do = True
        oh, ow = _item_hw(b)
        h, w = self.size
        if split_idx == 0:
            self.tl = (random.randint(0, max(0, oh - h)), random.randint(0, max(0, ow - w)))
        else:
            self.tl = ((oh - h) // 2, (ow - w) // 2)

    def encodes(self, x: Image.Image | TensorPoint):
        return crop_pad(x, self.size, self.tl, pad_mode=self.pad_mode)


def _resize_window(oh: int, ow: int, size: tuple[int, int], method: str,
                   pcts: tuple[float, float]) -> tuple[tuple[int, int], tuple[int, int]]:
    "The window (top, left), (h, w) of an (oh, ow) image that `Resize` to `size` by `method` resizes."
    h, w = size
    if method == ResizeMethod.Squish:
        return (0, 0), (oh, ow)
    # scale factor source pixels per target pixel: crop keeps the smaller ratio, pad the larger. The window's
    # sides are truncated (not rounded) and its corner is int(pct * spare), as fastai's Resize does: a model
    # trained with fastai sees the same validation pixels
    rh, rw = oh / h, ow / w
    m = min(rh, rw) if method == ResizeMethod.Crop else max(rh, rw)
    # (+1e-9: a side that is exactly the image's, e.g. 15/11*11 = 14.999999999999998 in floats, stays whole; fastai
    # truncates it, cutting a row that `pad` promises to keep)
    ch, cw = max(1, int(m * h + 1e-9)), max(1, int(m * w + 1e-9))
    return (int(pcts[1] * (oh - ch)), int(pcts[0] * (ow - cw))), (ch, cw)


class Resize(RandTransform):
    """Resize to `size` (h, w) by `method`: `crop` (random window on train, centre on valid), `pad` or `squish`.

    The crop/pad and the resize are one Pillow call; images use `resamples[0]`, masks `resamples[1]`.

    >>> Resize(224)  # doctest: +SKIP
    """

    split_idx = None
    order = 1

    def __init__(self, size: int | tuple[int, int], method: str = ResizeMethod.Crop, pad_mode: str = PadMode.Reflection,
                 resamples: tuple[int, int] = (BILINEAR, NEAREST), **kwargs: Any) -> None:
        if method not in (ResizeMethod.Crop, ResizeMethod.Pad, ResizeMethod.Squish):
            raise ValueError(f"Resize: method={method!r} is not 'crop', 'pad' or 'squish' (see ResizeMethod)")
        self.size, self.method, self.pad_mode = _hw(size, type(self).__name__), method, _check_pad(pad_mode)
        self.resamples = resamples
        super().__init__(**kwargs)

    def before_call(self, b: Any, split_idx: int | None) -> None:
        self.do = True
        self.pcts = (0.5, 0.5) if split_idx != 0 else (random.random(), random.random())

    def encodes(self, x: Image.Image | TensorPoint):
        oh, ow = _item_hw(x)
        tl, win = _resize_window(oh, ow, self.size, self.method, self.pcts)
        resample = self.resamples[1] if isinstance(x, PILMask) else self.resamples[0]
        return crop_pad(x, win, tl, pad_mode=self.pad_mode, resize_to=self.size, resample=resample)


class RandomResizedCrop(RandTransform):
    """Crop a random window (area `min_scale`..`max_scale` of the image, aspect in `ratio`) and resize to `size`.

    On validation: centre-crop to the target aspect, resize to `size` plus `val_xtra` (14%), and centre-crop to
    `size`, as Inception-style evaluation does (the aspect ratio is kept, not squished; fastai squishes the whole
    image, see the README's "Where this layer differs from fastai").
    """

    split_idx = None
    order = 1

    def __init__(self, size: int | tuple[int, int], min_scale: float = 0.08, ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 resamples: tuple[int, int] = (BILINEAR, NEAREST), val_xtra: float = 0.14, max_scale: float = 1.0,
                 **kwargs: Any) -> None:
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"RandomResizedCrop: need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
        self.size, self.min_scale, self.max_scale = _hw(size, type(self).__name__), min_scale, max_scale
        self.ratio, self.resamples, self.val_xtra = ratio, resamples, val_xtra
        super().__init__(**kwargs)

    def before_call(self, b: Any, split_idx: int | None) -> None:
        self.do = True
        oh, ow = _item_hw(b)
        self.final_size = self.size
        if split_idx == 0:
            lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
            for _ in range(10):
                area = random.uniform(self.min_scale, self.max_scale) * oh * ow
                r = math.exp(random.uniform(lo, hi))
                cw, ch = round(math.sqrt(area * r)), round(math.sqrt(area / r))
                if 0 < cw <= ow and 0 < ch <= oh:
                    self.win = (ch, cw)
                    self.tl = (random.randint(0, oh - ch), random.randint(0, ow - cw))
                    return
            # no draw fitted (extreme aspect): fall back to the largest centred window with a ratio in range
            r = min(max(ow / oh, self.ratio[0]), self.ratio[1])
            ch, cw = (oh, min(ow, round(oh * r))) if ow / oh >= r else (min(oh, round(ow / r)), ow)
        else:
            h, w = self.size
            xtra = math.ceil(max(h, w) * self.val_xtra / 8) * 8
            self.final_size = (h + xtra, w + xtra)
            m = min(oh / (h + xtra), ow / (w + xtra))
            ch, cw = max(1, round(m * (h + xtra))), max(1, round(m * (w + xtra)))
        self.win, self.tl = (ch, cw), ((oh - ch) // 2, (ow - cw) // 2)

    def encodes(self, x: Image.Image | TensorPoint):
        resample = self.resamples[1] if isinstance(x, PILMask) else self.resamples[0]
        res = crop_pad(x, self.win, self.tl, resize_to=self.final_size, resample=resample)
        if self.final_size != self.size:
            res = crop_pad(res, self.size)
        return res


class RatioResize(DisplayedTransform):
    """Resize so the longer side is `max_sz` pixels, keeping the aspect ratio.

    The shorter side is truncated to whole pixels, as fastai's is, and the image centre-cropped to that aspect first
    (the few pixels lost to the truncation; fastai picks that window at random, even on the validation set).
    """

    order = 1

    def __init__(self, max_sz: int, resamples: tuple[int, int] = (BILINEAR, NEAREST)) -> None:
        self.max_sz, self.resamples = _pixels(max_sz, type(self).__name__, "max_sz"), resamples
        super().__init__()

    def encodes(self, x: Image.Image | TensorPoint):
        oh, ow = _item_hw(x)
        if ow >= oh:
            size = (max(1, int(oh * self.max_sz / ow)), self.max_sz)
        else:
            size = (self.max_sz, max(1, int(ow * self.max_sz / oh)))
        tl, win = _resize_window(oh, ow, size, ResizeMethod.Crop, (0.5, 0.5))
        resample = self.resamples[1] if isinstance(x, PILMask) else self.resamples[0]
        return crop_pad(x, win, tl, pad_mode=PadMode.Reflection, resize_to=size, resample=resample)

