"""The coordinate engine of batch augmentation, on plain tensors (paper section 5.5).

Every geometric augmentation is a 3x3 matrix per item that maps an OUTPUT coordinate to the INPUT coordinate it
samples from, in normalised coordinates (x then y, each in [-1, 1], as `F.grid_sample` reads them). A chain of
transforms applied to the image in the order T1, T2, ... samples with the product M1 @ M2 @ ...; a perspective
warp is a homography, so it joins the same product. The whole chain then costs ONE `F.grid_sample`, instead of
one interpolation (and one loss of sharpness) per transform. Points and boxes go the other way, through the
inverse matrix, so they land where their pixels land.

Nothing here draws random numbers: the `*_mat` builders take their parameters as tensors (one value per item), so
the randomness lives in the Transforms of `tiers.vision.augment` and these functions are easy to test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "affine_grid",
    "apply_perspective",
    "mask_tensor",
    "affine_mat",
    "identity_mat",
    "flip_mat",
    "dihedral_mat",
    "rotate_mat",
    "zoom_mat",
    "crop_mat",
    "find_coeffs",
    "warp_mat",
    "mat_grid",
    "sample_with_mat",
    "transform_points",
    "transform_bboxes",
]


def affine_mat(*rows: list) -> Tensor:
    """Stack per-item rows into a (bs, 3, 3) matrix: each row is a list of three (bs,) tensors or numbers.

    >>> affine_mat([1, 0, 0], [0, 1, 0], [0, 0, 1]).shape
    torch.Size([1, 3, 3])
    """
    bs = max((e.shape[0] for r in rows for e in r if isinstance(e, Tensor) and e.ndim), default=1)
    ref = next((e for r in rows for e in r if isinstance(e, Tensor)), None)
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    device = ref.device if ref is not None else None

    def col(e):
        return e.to(dtype).expand(bs) if isinstance(e, Tensor) else torch.full((bs,), float(e), dtype=dtype, device=device)

    return torch.stack([torch.stack([col(e) for e in r], dim=1) for r in rows], dim=1)


def identity_mat(bs: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """`bs` identity matrices, shape (bs, 3, 3)."""
    return torch.eye(3, device=device, dtype=dtype).expand(bs, 3, 3).clone()


def flip_mat(do: Tensor) -> Tensor:
    """Horizontal flip where `do` (bs,) is true, identity elsewhere."""
    sign = 1.0 - 2.0 * do.float()
    return affine_mat([sign, 0, 0], [0, 1, 0], [0, 0, 1])


def dihedral_mat(k: Tensor) -> Tensor:
    """One of the 8 symmetries of the square per item, `k` in 0..7 (bit 0 flips x, bit 1 flips y, bit 2 transposes).

    On non-square images a transpose also stretches (the output keeps its size), as in fastai.
    """
    k = k.long()
    fx = 1.0 - 2.0 * (k & 1).float()
    fy = 1.0 - 2.0 * ((k >> 1) & 1).float()
    t = ((k >> 2) & 1).float()
    return affine_mat([fx * (1 - t), fy * t, 0], [fx * t, fy * (1 - t), 0], [0, 0, 1])


def rotate_mat(deg: Tensor, aspect: float = 1.0) -> Tensor:
    """Rotation by `deg` degrees (bs,) about the centre, counter-clockwise on screen for positive angles.

    `aspect` is the input's width / height: the rotation happens in pixel space, so a non-square image turns
    without shearing (fastai rotates in normalised space and shears rectangles).
    """
    th = deg.float() * (math.pi / 180)
    c, s = th.cos(), th.sin()
    # Screen y points down, so sampling with [[c, -s], [s, c]] turns the content counter-clockwise. In normalised
    # units x spans `aspect` times more pixels than y: rotate in pixels, i.e. D^-1 R D in [-1, 1].
    return affine_mat([c, -s / aspect, 0], [s * aspect, c, 0], [0, 0, 1])


def zoom_mat(scale: Tensor, col_pct: Tensor | float = 0.5, row_pct: Tensor | float = 0.5) -> Tensor:
    """Zoom in by `scale` (>1 magnifies) around the point at (`col_pct`, `row_pct`) of the image (0..1 each).

    The centre is placed so the zoomed view stays inside the image.
    """
    inv = 1.0 / scale.float()
    cx = (torch.as_tensor(col_pct, dtype=inv.dtype, device=inv.device) * 2 - 1) * (1 - inv)
    cy = (torch.as_tensor(row_pct, dtype=inv.dtype, device=inv.device) * 2 - 1) * (1 - inv)
    return affine_mat([inv, 0, cx], [0, inv, cy], [0, 0, 1])


def crop_mat(w_frac: Tensor, h_frac: Tensor, col_pct: Tensor, row_pct: Tensor) -> Tensor:
    """Sample the window covering `w_frac` x `h_frac` of the input, positioned at (`col_pct`, `row_pct`) in 0..1.

    With a target size this is a random-resized crop done inside the same single interpolation.
    """
    w, h = w_frac.float(), h_frac.float()
    return affine_mat([w, 0, (col_pct * 2 - 1) * (1 - w)], [0, h, (row_pct * 2 - 1) * (1 - h)], [0, 0, 1])


def find_coeffs(src: Tensor, dst: Tensor) -> Tensor:
    """The homographies (bs, 3, 3) sending the 4 points `src` (bs, 4, 2) onto `dst` (bs, 4, 2).

    Solves the usual 8x8 linear system per item (batched `torch.linalg.solve`).
    """
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    z, o = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, o, z, z, z, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([z, z, z, x, y, o, -v * x, -v * y], dim=-1)
    a = torch.cat([rows_u, rows_v], dim=1)  # (bs, 8, 8)
    b = torch.cat([u, v], dim=1)  # (bs, 8)
    h = torch.linalg.solve(a.double(), b.double()).to(src.dtype)
    return torch.cat([h, torch.ones_like(h[:, :1])], dim=1).view(-1, 3, 3)


_CORNERS = ((-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0))


def warp_mat(x_mag: Tensor, y_mag: Tensor) -> Tensor:
    """Perspective warp: `x_mag` tilts about the vertical axis, `y_mag` about the horizontal (bs,) each.

    The output's corners sample from corners moved by the magnitudes (a trapezoid), so magnitude 0 is identity.
    """
    xm, ym = x_mag.float(), y_mag.float()
    src = torch.tensor(_CORNERS, dtype=xm.dtype, device=xm.device).expand(xm.shape[0], 4, 2)
    dst = torch.stack([
        torch.stack([-1 - ym, -1 - xm], -1), torch.stack([-1 + ym, 1 + xm], -1),
        torch.stack([1 + ym, -1 + xm], -1), torch.stack([1 - ym, 1 - xm], -1),
    ], dim=1)
    return find_coeffs(src, dst)


def _is_affine(mat: Tensor) -> bool:
    last = mat[:, 2]
    return bool((last[:, :2] == 0).all() and (last[:, 2] == 1).all())


def _base_coords(n: int, align_corners: bool, like: Tensor) -> Tensor:
    if align_corners:
        return torch.linspace(-1, 1, n, dtype=like.dtype, device=like.device)
    return (torch.arange(n, dtype=like.dtype, device=like.device) * 2 + 1) / n - 1


def mat_grid(mat: Tensor, size: tuple[int, int], align_corners: bool = True) -> Tensor:
    """The sampling grid (bs, h, w, 2) of matrices `mat` (bs, 3, 3) for an output of `size` (h, w).

    Built by broadcasting one row and one column of coordinates (about twice as fast as `F.affine_grid` on the
    CPU); a projective last row adds one division.
    """
    h, w = size
    xs, ys = _base_coords(w, align_corners, mat), _base_coords(h, align_corners, mat)[:, None]
    m = mat[..., None, None]  # (bs, 3, 3, 1, 1): each coefficient broadcasts over the (h, w) plane
    grid = torch.empty(mat.shape[0], h, w, 2, dtype=mat.dtype, device=mat.device)
    if _is_affine(mat):
        for i in range(2):
            grid[..., i].copy_(m[:, i, 0] * xs + (m[:, i, 1] * ys + m[:, i, 2]))
        return grid
    rden = (m[:, 2, 0] * xs + (m[:, 2, 1] * ys + m[:, 2, 2])).clamp_min_(1e-6).reciprocal_()
    for i in range(2):
        torch.mul(m[:, i, 0] * xs + (m[:, i, 1] * ys + m[:, i, 2]), rden, out=grid[..., i])
    return grid


def _prefilter(x: Tensor, mat: Tensor, size: tuple[int, int]) -> Tensor:
    # Bilinear sampling reads only 4 pixels: shrinking by 2x or more would alias, so average blocks first. The
    # shrink factor is the size ratio times the matrix's own scale (a zoom-in needs less), taken over the whole
    # batch at its smallest so no item is blurred more than it needs.
    step = mat[:, :2, :2].abs().amax(dim=1)  # (bs, 2): input units per output unit along x and y
    k = int(min(x.shape[-1] / size[1] * step[:, 0].min().item(), x.shape[-2] / size[0] * step[:, 1].min().item()))
    return F.avg_pool2d(x, k, ceil_mode=True) if k >= 2 else x


def sample_with_mat(x: Tensor, mat: Tensor, size: tuple[int, int] | None = None, mode: str = "bilinear",
                    pad_mode: str = "reflection", align_corners: bool = True) -> Tensor:
    """Resample a batch with one `grid_sample`: images (bs, c, h, w) float, or masks (bs, h, w) of class ids.

    Masks are sampled with `mode='nearest'` whatever `mode` says, and keep their dtype. `size` (h, w) defaults
    to the input's. `pad_mode` is 'reflection', 'border' or 'zeros'.
    """
    if pad_mode not in ("reflection", "border", "zeros"):
        raise ValueError(f"pad_mode={pad_mode!r} is not one of 'reflection', 'border', 'zeros'")
    is_mask = x.ndim == 3
    # (h, w): a pair by the signature, else the input's last two dims
    hw = cast("tuple[int, int]", tuple(size) if size is not None else tuple(x.shape[-2:]))
    grid = mat_grid(mat.to(torch.float32), hw, align_corners)
    if is_mask:
        out = F.grid_sample(x[:, None].float(), grid, mode="nearest", padding_mode=pad_mode,
                            align_corners=align_corners)
        return out[:, 0].to(x.dtype)
    src = x if x.is_floating_point() else x.float()
    src = _prefilter(src, mat, hw)
    if src.dtype != grid.dtype:
        grid = grid.to(src.dtype)
    return F.grid_sample(src, grid, mode=mode, padding_mode=pad_mode, align_corners=align_corners)


def _apply_h(mat: Tensor, pts: Tensor) -> Tensor:
    ph = torch.cat([pts, torch.ones_like(pts[..., :1])], dim=-1) @ mat.transpose(1, 2)
    return ph[..., :2] / ph[..., 2:].clamp_min(1e-6)


def transform_points(pts: Tensor, mat: Tensor) -> Tensor:
    """Move points (bs, n, 2), normalised x,y, to where `sample_with_mat(img, mat)` moves their pixels."""
    return _apply_h(torch.linalg.inv(mat.double()).to(pts.dtype), pts)


def transform_bboxes(boxes: Tensor, mat: Tensor, clip: bool = True) -> Tensor:
    """Move boxes (bs, n, 4), normalised x0,y0,x1,y1: the box around the moved corners, clipped to [-1, 1].

    All-zero rows are padding (see `bb_pad`) and stay all-zero.
    """
    bs, n = boxes.shape[:2]
    x0, y0, x1, y1 = boxes.unbind(-1)
    corners = torch.stack([torch.stack([x0, y0], -1), torch.stack([x1, y0], -1),
                           torch.stack([x0, y1], -1), torch.stack([x1, y1], -1)], dim=2)  # (bs, n, 4, 2)
    moved = transform_points(corners.view(bs, n * 4, 2), mat).view(bs, n, 4, 2)
    out = torch.cat([moved.min(dim=2).values, moved.max(dim=2).values], dim=-1)
    if clip:
        out = out.clamp(-1, 1)
    pad = (boxes == 0).all(dim=-1, keepdim=True)
    return out.masked_fill(pad, 0.0)


def affine_grid(theta: Tensor, size: Sequence[int], align_corners: bool | None = None) -> Tensor:
    """The sampling grid (bs, h, w, 2) of the affine matrices `theta` (bs, 2, 3) for an output of `size`
    (bs, c, h, w): `torch.nn.functional.affine_grid`, as fastai names it."""
    return F.affine_grid(theta, list(size), align_corners=align_corners)


def apply_perspective(coords: Tensor, coeffs: Tensor) -> Tensor:
    """`coords` (bs, ..., 2) moved by the homographies `coeffs`: (bs, 3, 3) as `find_coeffs` gives them, or fastai's
    8 coefficients per item (bs, 8). Points sent to infinity (w = 0) leave the coordinates unchanged."""
    sz = coords.shape
    if coeffs.ndim == 2 and coeffs.shape[-1] == 8:
        coeffs = torch.cat([coeffs, coeffs.new_ones(coeffs.shape[0], 1)], dim=1).view(-1, 3, 3)
    pts = coords.reshape(sz[0], -1, 2)
    hom = pts @ coeffs[..., :2].transpose(1, 2).to(pts.dtype) + coeffs[..., 2].unsqueeze(1).to(pts.dtype)
    if (hom[..., 2] == 0).any():
        return coords
    return (hom[..., :2] / hom[..., 2:]).reshape(sz)


def mask_tensor(x: Tensor, p: float = 0.5, neutral: float = 0.0, batch: bool = False) -> Tensor:
    """Keep each element of `x` with probability `p`, else set it to `neutral` (with `batch`, the whole tensor at
    once). Used to apply a random transform's parameters to only part of a batch; `x` is changed in place."""
    if p == 1.0:
        return x
    if batch:
        return x if float(torch.rand(())) < p else x.new_zeros(x.shape) + neutral
    if neutral != 0:
        x.add_(-neutral)
    x.mul_(x.new_empty(x.shape).float().bernoulli_(p).to(x.dtype))
    return x.add_(neutral) if neutral != 0 else x
