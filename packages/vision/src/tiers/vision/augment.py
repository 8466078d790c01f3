"""Batch augmentation (paper section 5.5): random flips, rotations, zooms, warps, crops and lighting on whole batches.

They run after collation, on the device the batch is on (the GPU when there is one). Every geometric transform
contributes a 3x3 matrix per item; `setup_aug_tfms` (called by `aug_transforms`) merges all of them into ONE
`AffineCoordTfm`, so the batch is resampled once (`F.grid_sample`), whatever the number of transforms, and all
lighting transforms into one `LightingTfm` (one logit/sigmoid round trip). Masks are resampled with
nearest-neighbour and points and boxes are moved by the same matrices, so targets stay aligned.

Each transform draws its parameters per item (`batch=True`: one draw for the whole batch) and applies with
probability `p` per item; `draw=` overrides the random draw (a constant, a list with one value per item, or a
function of the batch). They run on the training set; on validation the geometric transform only resizes (when it
has a `size`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor

from tiers.tensors import TensorBBox, TensorImage, TensorMask, TensorPoint
from tiers.vision._draws import Draw, _draw, _first_tensor, _uniform
from tiers.vision.affine import (
    crop_mat,
    dihedral_mat,
    flip_mat,
    identity_mat,
    rotate_mat,
    sample_with_mat,
    transform_bboxes,
    transform_points,
    warp_mat,
    zoom_mat,
)
from tiers.vision.augment_pixel import Brightness, Contrast, LightingTfm
from tiers.vision.item_tfms import PadMode, RandTransform, _check_pad, _hw

__all__ = [
    "TensorTypes",
    "AffineCoordTfm",
    "RandomResizedCropGPU",
    "Flip",
    "DeterministicFlip",
    "Dihedral",
    "DeterministicDihedral",
    "Rotate",
    "Zoom",
    "Warp",
    "setup_aug_tfms",
    "aug_transforms",
]

TensorTypes = (TensorImage, TensorMask, TensorPoint, TensorBBox)
_MODES = ("bilinear", "nearest", "bicubic")


# ---------------------------------------------------------------------------------------------- geometry


class AffineCoordTfm(RandTransform):
    """Resample a batch once with the product of the matrices of `mat_fs` (and resize to `size`, h and w).

    Each of `mat_fs` maps `(batch, split_idx)` to (bs, 3, 3) sampling matrices; the first is applied to the image
    first. `compose(other)` appends the other transform's matrices, so any number of geometric transforms costs
    one `grid_sample`. Images use `mode` (bilinear), masks `mode_mask` (nearest), `pad_mode` fills the outside.
    On validation (`split_idx=1`) only the crop/resize part runs. Points and boxes (normalised) follow the pixels
    and get `img_size` set to the output size.
    """

    order = 30
    split_idx = None
    _draw_attrs = frozenset({"do", "mat", "split", "mat_fs"})

    def __init__(self, mat_fs: Sequence[Callable] | None = None, size: int | tuple[int, int] | None = None,
                 mode: str = "bilinear", pad_mode: str = PadMode.Reflection, mode_mask: str = "nearest",
                 align_corners: bool = True, **kwargs: Any) -> None:
        if mode not in _MODES:
            raise ValueError(f"{type(self).__name__}: mode={mode!r} is not one of {_MODES}")
        self.mat_fs = list(mat_fs or [])
        self.size = None if size is None else _hw(size, type(self).__name__)
        self.mode, self.pad_mode, self.mode_mask = mode, _check_pad(pad_mode), mode_mask
        self.align_corners = align_corners
        super().__init__(**kwargs)

    def compose(self, tfm: AffineCoordTfm) -> AffineCoordTfm:
        """Append `tfm`'s matrices to this transform's (applied after them); adopt its `size` if this has none."""
        self.mat_fs += tfm.mat_fs
        if self.size is None:
            self.size = tfm.size
        return self

    def before_call(self, b: Any, split_idx: int | None) -> None:
        self.do = True
        self.split = split_idx
        x = _first_tensor(b)
        bs = x.shape[0]
        mat = None
        for f in self.mat_fs:
            m = f(x, split_idx)
            if m is not None:
                mat = m if mat is None else mat @ m
        self.mat = identity_mat(bs, x.device) if mat is None else mat.to(x.device)
        # nothing to do: validation without a resize, or only identity draws at the same size
        self._identity = (self.size is None or tuple(self.size) == tuple(x.shape[-2:])) and bool(
            (self.mat == identity_mat(bs, x.device)).all())

    def _out_size(self, x: Tensor) -> tuple[int, int]:
        return cast("tuple[int, int]", tuple(self.size) if self.size is not None else tuple(x.shape[-2:]))

    def encodes(self, x: TensorImage):
        if self._identity:
            return x
        out = sample_with_mat(x.as_subclass(Tensor), self.mat, self._out_size(x), self.mode, self.pad_mode,
                              self.align_corners)
        return type(x)(out, **x.__dict__)

    def encodes(self, x: TensorMask):  # type: ignore[no-redef]  # noqa: F811
        if self._identity:
            return x
        plain = x.as_subclass(Tensor)
        squeeze = plain.ndim == 4
        src = plain[:, 0] if squeeze else plain
        if self.mode_mask == "nearest":
            out = sample_with_mat(src, self.mat, self._out_size(x), pad_mode=self.pad_mode,
                                  align_corners=self.align_corners)
        else:  # soft masks: sample as images
            out = sample_with_mat(src[:, None].float(), self.mat, self._out_size(x), self.mode_mask, self.pad_mode,
                                  self.align_corners)[:, 0]
        return type(x)(out[:, None] if squeeze else out, **x.__dict__)

    def _img_size(self, x: TensorPoint) -> dict:
        if self.size is None:
            return dict(x.__dict__)
        return {**x.__dict__, "img_size": (self.size[1], self.size[0])}

    def encodes(self, x: TensorPoint):  # type: ignore[no-redef]  # noqa: F811
        if self._identity:
            return x
        out = transform_points(x.as_subclass(Tensor).reshape(x.shape[0], -1, 2), self.mat).reshape(x.shape)
        return type(x)(out, **self._img_size(x))

    def encodes(self, x: TensorBBox):  # type: ignore[no-redef]  # noqa: F811
        if self._identity:
            return x
        out = transform_bboxes(x.as_subclass(Tensor).reshape(x.shape[0], -1, 4), self.mat).reshape(x.shape)
        return type(x)(out, **self._img_size(x))


class _train_only:
    "A matrix function that only applies to training batches (identity, i.e. None, on validation); picklable."

    def __init__(self, f: Callable[[Tensor], Tensor]) -> None:
        self.f = f

    def __call__(self, x: Tensor, split_idx) -> Tensor | None:
        return None if split_idx == 1 else self.f(x)


class Flip(AffineCoordTfm):
    """Flip left-right with probability `p` per item; `draw` forces the choice (1 flips, 0 does not)."""

    def __init__(self, p: float = 0.5, draw: Draw = None, size: int | tuple[int, int] | None = None,
                 mode: str = "bilinear", pad_mode: str = PadMode.Reflection, align_corners: bool = True,
                 batch: bool = False) -> None:
        self.flip_p, self.draw, self.batch = p, draw, batch
        super().__init__([_train_only(self._mat)], size=size, mode=mode, pad_mode=pad_mode, align_corners=align_corners)

    def _mat(self, x: Tensor) -> Tensor:
        do = _draw(x, lambda n: torch.ones(n, device=x.device), self.draw, self.flip_p, 0.0, self.batch)
        return flip_mat(do > 0.5)


class _Cycling:
    # Mixed in before Flip or Dihedral: always applies, and the n-th call draws (n - 1) % _period for the batch.
    _period: int

    def __init__(self, size: int | tuple[int, int] | None = None, mode: str = "bilinear",
                 pad_mode: str = PadMode.Reflection, align_corners: bool = True) -> None:
        self.count = 0
        super().__init__(p=1.0, draw=self._next, size=size, mode=mode, pad_mode=pad_mode, align_corners=align_corners)  # type: ignore[call-arg]  # a mixin: the next class in the MRO takes these

    def _next(self, x: Tensor) -> float:
        self.count += 1
        return float((self.count - 1) % self._period)


class DeterministicFlip(_Cycling, Flip):
    """Flip every other call (for test-time augmentation): the whole batch, alternately not flipped and flipped."""

    _period = 2


class Dihedral(AffineCoordTfm):
    """One of the 8 symmetries of the square (flips and 90-degree turns), uniformly, with probability `p` per item.

    `draw` forces the symmetry index (0..7; 0 is the identity).
    """

    def __init__(self, p: float = 0.5, draw: Draw = None, size: int | tuple[int, int] | None = None,
                 mode: str = "bilinear", pad_mode: str = PadMode.Reflection, align_corners: bool = True,
                 batch: bool = False) -> None:
        self.dihedral_p, self.draw, self.batch = p, draw, batch
        super().__init__([_train_only(self._mat)], size=size, mode=mode, pad_mode=pad_mode, align_corners=align_corners)

    def _mat(self, x: Tensor) -> Tensor:
        k = _draw(x, lambda n: torch.randint(0, 8, (n,), device=x.device).float(), self.draw, self.dihedral_p, 0.0,
                  self.batch)
        return dihedral_mat(k.round().long())


class DeterministicDihedral(_Cycling, Dihedral):
    """Cycle through the 8 symmetries, one per call, for the whole batch (for test-time augmentation)."""

    _period = 8


class Rotate(AffineCoordTfm):
    """Rotate by an angle drawn uniformly in [-`max_deg`, `max_deg`] degrees, with probability `p` per item.

    Non-square images turn in pixel space (no shear).
    """

    def __init__(self, max_deg: float = 10.0, p: float = 0.5, draw: Draw = None,
                 size: int | tuple[int, int] | None = None, mode: str = "bilinear",
                 pad_mode: str = PadMode.Reflection, align_corners: bool = True, batch: bool = False) -> None:
        self.max_deg, self.rotate_p, self.draw, self.batch = max_deg, p, draw, batch
        super().__init__([_train_only(self._mat)], size=size, mode=mode, pad_mode=pad_mode, align_corners=align_corners)

    def _mat(self, x: Tensor) -> Tensor:
        deg = _draw(x, lambda n: _uniform(n, -self.max_deg, self.max_deg, x), self.draw, self.rotate_p, 0.0, self.batch)
        return rotate_mat(deg, aspect=x.shape[-1] / x.shape[-2])


class Zoom(AffineCoordTfm):
    """Zoom in by a factor in [`min_zoom`, `max_zoom`] (below 1 zooms out) around a random point, probability `p`.

    `draw` forces the factor, `draw_x`/`draw_y` the centre (0..1 across the image).
    """

    def __init__(self, min_zoom: float = 1.0, max_zoom: float = 1.1, p: float = 0.5, draw: Draw = None,
                 draw_x: Draw = None, draw_y: Draw = None, size: int | tuple[int, int] | None = None,
                 mode: str = "bilinear", pad_mode: str = PadMode.Reflection, batch: bool = False,
                 align_corners: bool = True) -> None:
        if min_zoom <= 0 or max_zoom < min_zoom:
            raise ValueError(f"Zoom: need 0 < min_zoom <= max_zoom, got {min_zoom}, {max_zoom}")
        self.min_zoom, self.max_zoom, self.zoom_p = min_zoom, max_zoom, p
        self.draw, self.draw_x, self.draw_y, self.batch = draw, draw_x, draw_y, batch
        super().__init__([_train_only(self._mat)], size=size, mode=mode, pad_mode=pad_mode, align_corners=align_corners)

    def _mat(self, x: Tensor) -> Tensor:
        s = _draw(x, lambda n: _uniform(n, self.min_zoom, self.max_zoom, x), self.draw, self.zoom_p, 1.0, self.batch)
        cx = _draw(x, lambda n: _uniform(n, 0, 1, x), self.draw_x, 1.0, 0.5, self.batch)
        cy = _draw(x, lambda n: _uniform(n, 0, 1, x), self.draw_y, 1.0, 0.5, self.batch)
        return zoom_mat(s, cx, cy)


class Warp(AffineCoordTfm):
    """Perspective warp: tilt about both axes by magnitudes drawn in [-`magnitude`, `magnitude`], probability `p`.

    A homography, so it joins the affine matrices in the same single resampling.
    """

    def __init__(self, magnitude: float = 0.2, p: float = 0.5, draw_x: Draw = None, draw_y: Draw = None,
                 size: int | tuple[int, int] | None = None, mode: str = "bilinear",
                 pad_mode: str = PadMode.Reflection, batch: bool = False, align_corners: bool = True) -> None:
        self.magnitude, self.warp_p, self.draw_x, self.draw_y, self.batch = magnitude, p, draw_x, draw_y, batch
        super().__init__([_train_only(self._mat)], size=size, mode=mode, pad_mode=pad_mode, align_corners=align_corners)

    def _mat(self, x: Tensor) -> Tensor:
        m = self.magnitude
        bs = x.shape[0]
        coin = (torch.rand(1 if self.batch else bs, device=x.device) < self.warp_p).expand(bs).float()
        mx = _draw(x, lambda n: _uniform(n, -m, m, x), self.draw_x, 1.0, 0.0, self.batch) * coin
        my = _draw(x, lambda n: _uniform(n, -m, m, x), self.draw_y, 1.0, 0.0, self.batch) * coin
        return warp_mat(mx, my)


class RandomResizedCropGPU(AffineCoordTfm):
    """Random-resized crop on the batch, per item: area `min_scale`..`max_scale`, aspect in `ratio`, output `size`.

    On validation, the centre crop of the largest window with an aspect in `ratio`, shrunk by `valid_scale`.
    Composed with the other geometric transforms, the crop costs no extra resampling.
    """

    def __init__(self, size: int | tuple[int, int], min_scale: float = 0.08,
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), mode: str = "bilinear",
                 valid_scale: float = 1.0, max_scale: float = 1.0, mode_mask: str = "nearest",
                 pad_mode: str = PadMode.Reflection, align_corners: bool = True, batch: bool = False) -> None:
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"RandomResizedCropGPU: need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
        self.min_scale, self.max_scale, self.ratio, self.valid_scale, self.batch = (
            min_scale, max_scale, ratio, valid_scale, batch)
        super().__init__([self._mat], size=size, mode=mode, pad_mode=pad_mode, mode_mask=mode_mask,
                         align_corners=align_corners)

    def _mat(self, x: Tensor, split_idx) -> Tensor:
        bs = x.shape[0]
        h, w = x.shape[-2:]
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        if split_idx == 1:
            rv = min(max(w / h, self.ratio[0]), self.ratio[1])
            fw, fh = (min(1.0, rv * h / w), 1.0) if w / h >= rv else (1.0, min(1.0, w / (rv * h)))
            wt, ht = torch.full((bs,), fw * self.valid_scale), torch.full((bs,), fh * self.valid_scale)
            half = torch.full((bs,), 0.5)
            return crop_mat(wt, ht, half, half).to(x.device)
        n = 1 if self.batch else bs
        area = _uniform(n, self.min_scale, self.max_scale, x)
        r = torch.exp(_uniform(n, lo, hi, x))
        # crop width/height as fractions of the image: area*H*W = cw*ch and cw/ch = r (in pixels)
        wf = torch.sqrt(area * r * h / w).clamp(max=1.0)
        hf = torch.sqrt(area / r * w / h).clamp(max=1.0)
        cx, cy = _uniform(n, 0, 1, x), _uniform(n, 0, 1, x)
        return crop_mat(wf.expand(bs), hf.expand(bs), cx.expand(bs), cy.expand(bs))


# ---------------------------------------------------------------------------------------------- recipe


def _compose_same(tfms: list):
    if not tfms:
        return None
    res = tfms[0]
    for t in tfms[1:]:
        res.compose(t)
    return res


def setup_aug_tfms(tfms: Sequence) -> list:
    """Merge every `AffineCoordTfm` of `tfms` into the first one and every `LightingTfm` into the first one.

    The geometric transforms keep their list order (the first listed is applied to the image first); other
    transforms follow unchanged.
    """
    tfms = list(tfms)
    aff = [t for t in tfms if isinstance(t, AffineCoordTfm)]
    light = [t for t in tfms if isinstance(t, LightingTfm)]
    others = [t for t in tfms if not isinstance(t, (AffineCoordTfm, LightingTfm))]
    return [t for t in (_compose_same(aff), _compose_same(light)) if t is not None] + others


def aug_transforms(mult: float = 1.0, do_flip: bool = True, flip_vert: bool = False, max_rotate: float = 10.0,
                   min_zoom: float = 1.0, max_zoom: float = 1.1, max_lighting: float = 0.2,
                   max_warp: float = 0.2, p_affine: float = 0.75, p_lighting: float = 0.75,
                   xtra_tfms: Sequence | None = None, size: int | tuple[int, int] | None = None,
                   mode: str = "bilinear", pad_mode: str = PadMode.Reflection, align_corners: bool = True,
                   batch: bool = False, min_scale: float = 1.0) -> list:
    """The standard batch augmentation: flip (or dihedral with `flip_vert`), warp, rotate, zoom, brightness, contrast.

    `mult` scales `max_rotate`, `max_lighting` and `max_warp`; `size` (int or h, w) also resizes; `min_scale<1`
    adds a `RandomResizedCropGPU` of square aspect. Everything geometric is merged into one transform (one
    resampling) and everything lighting into another, so this returns two transforms (plus `xtra_tfms`).

    >>> [type(t).__name__ for t in aug_transforms()]
    ['Flip', 'Brightness']
    """
    res: list = []
    if size is not None:
        size = _hw(size, "aug_transforms")  # named here, not by the first transform that takes it
    kw: dict[str, Any] = dict(size=size if min_scale == 1.0 else None, mode=mode, pad_mode=pad_mode, batch=batch,
              align_corners=align_corners)
    max_rotate, max_lighting, max_warp = max_rotate * mult, max_lighting * mult, max_warp * mult
    if min_scale != 1.0:
        if size is None:
            raise ValueError(f"aug_transforms: min_scale={min_scale} crops randomly and needs a target size; pass size")
        res.append(RandomResizedCropGPU(size, min_scale=min_scale, ratio=(1, 1), mode=mode, pad_mode=pad_mode,
                                        align_corners=align_corners, batch=batch))
    if do_flip:
        res.append(Dihedral(p=0.5, **kw) if flip_vert else Flip(p=0.5, **kw))
    if max_warp:
        res.append(Warp(magnitude=max_warp, p=p_affine, **kw))
    if max_rotate:
        res.append(Rotate(max_deg=max_rotate, p=p_affine, **kw))
    if min_zoom < 1 or max_zoom > 1:
        res.append(Zoom(min_zoom=min_zoom, max_zoom=max_zoom, p=p_affine, **kw))
    if not res and size is not None:
        res.append(AffineCoordTfm(size=size, mode=mode, pad_mode=pad_mode, align_corners=align_corners))
    if max_lighting:
        res.append(Brightness(max_lighting=max_lighting, p=p_lighting, batch=batch))
        res.append(Contrast(max_lighting=max_lighting, p=p_lighting, batch=batch))
    return setup_aug_tfms(res + list(xtra_tfms or []))
