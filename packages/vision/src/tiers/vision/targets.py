"""Targets that live in image space: masks (`AddMaskCodes`), points and boxes (`PointScaler`, `BBoxLabeler`).

Points and boxes are stored in pixels in the data and scaled by `PointScaler` to [-1, 1] (x, y), relative to the
image they belong to, so every later transform (crop, resize, rotate...) can move them without knowing the image
size; decoding scales them back to the pixels of the image as it is then. Boxes of one batch are padded to the
same count by `bb_pad`, with all-zero boxes of label `pad_idx`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from tiers.dispatch import L
from tiers.pipeline import DisplayedTransform, ItemTransform, Transform
from tiers.tensors import TensorBBox, TensorImageBase, TensorMask, TensorMultiCategory, TensorPoint
from tiers.train import MSELossFlat
from tiers.vision.core import PILMask

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["AddMaskCodes", "MaskCodes", "PointScaler", "LabeledBBox", "BBoxLabeler", "clip_remove_empty", "bb_pad",
           "TensorPointCreate", "TensorBBoxCreate", "PointsMSELossFlat"]


class MaskCodes(list):
    """The class names of segmentation masks (pixel value i is `codes[i]`) plus `void`, the pixel value of 'void'
    pixels (unlabelled, object boundaries: 255 in Pascal VOC) that belong to no class and that training skips.

    Pass it wherever `codes` go, `MaskBlock(MaskCodes(codes, void=255))` or
    `SegmentationDataLoaders.from_label_func(..., codes=MaskCodes(codes, void=255))`, and train with a loss that
    skips those pixels, `CrossEntropyLossFlat(axis=1, ignore_index=255)`; the metrics `acc_segment`, `foreground_acc`
    and `DiceMulti` skip them with `void_code=255`. `void` is not a class: `c` (the model's outputs) stays
    `len(codes)`.

    >>> MaskCodes(['bg', 'cat'], void=255).void
    255
    """

    def __init__(self, codes: Iterable[str], void: int | None = None) -> None:
        super().__init__(codes)
        self.void = _check_void(void, self)

    def __repr__(self) -> str:
        return f"MaskCodes({list(self)!r}, void={self.void!r})"


def _check_void(void: Any, codes: Sequence[str] | None) -> int | None:
    if void is None:
        return None
    if isinstance(void, bool) or not isinstance(void, (int, np.integer)) or not 0 <= void <= 255:
        raise ValueError(f"MaskBlock: void={void!r} is not a mask pixel value; void is the value 0..255 of the pixels "
                         "that belong to no class (e.g. 255), or None")
    if codes is not None and void < len(codes):
        raise ValueError(f"MaskBlock: void={int(void)} is the code of class {str(codes[int(void)])!r} (codes lists "
                         f"{len(codes)} classes, 0..{len(codes) - 1}); void must be a value no class uses, e.g. 255")
    return int(void)


class AddMaskCodes(Transform):
    """Give decoded masks their class names (`codes`) so they show with a fixed colour per class; sets `vocab` and `c`.

    With `codes`, a mask holding a value that names no class is refused when it is loaded, naming the file, unless
    that value is `void` (a `MaskCodes` brings its own): pixels that belong to no class, left in the mask for the
    loss to skip (`CrossEntropyLossFlat(axis=1, ignore_index=void)`).

    >>> AddMaskCodes(['bg', 'cat']).c
    2
    """

    void: int | None = None  # class default: transforms pickled before `void` existed load with none

    def __init__(self, codes: Sequence[str] | None = None, void: int | None = None) -> None:
        super().__init__()
        own = getattr(codes, "void", None)
        if void is not None and own is not None and void != own:
            raise ValueError(f"MaskBlock: void={void} but the codes say void={own}; give it once")
        # plain list: what `vocab` and an export hold
        self.codes = None if codes is None else list(codes)
        self.void = _check_void(own if void is None else void, self.codes)
        if self.codes is not None:
            self.vocab, self.c = self.codes, len(self.codes)

    def encodes(self, o: PILMask):
        # A code past the last class fails deep in the loss (torch's bare "Target 7 is out of bounds") or, on a GPU,
        # as a device assert; with codes given, name the mask and the values here instead.
        if self.codes is not None:
            vals = np.unique(np.asarray(o))
            bad = vals[vals >= len(self.codes)]
            if self.void is not None:
                bad = bad[bad != self.void]  # void pixels stay, for the loss's ignore_index to skip
            if len(bad):
                where = getattr(o, "filename", None) or "a mask"
                v = int(bad[-1])
                fix = (f" (void={self.void} is the one value allowed outside them)" if self.void is not None else
                       f"; if {v} marks 'void' pixels (unlabelled, object boundaries) that training should skip, "
                       f"declare it: codes=MaskCodes(codes, void={v}) and loss_func=CrossEntropyLossFlat(axis=1, "
                       f"ignore_index={v})")
                raise ValueError(f"MaskBlock: {where} holds class code(s) {bad.tolist()[:10]}, but codes lists "
                                 f"{len(self.codes)} classes (0..{len(self.codes) - 1}: {self.codes[:10]}); give "
                                 f"codes= one name per value used in the masks, or fix the mask{fix}.")
        return o

    def decodes(self, o: TensorMask):
        if self.codes is not None:
            o.codes = self.codes  # type: ignore[attr-defined]  # codes: per-instance metadata, not declared on TensorMask
        return o


def _wh(x) -> tuple[int, int]:
    if isinstance(x, Image.Image):
        return x.size
    return int(x.shape[-1]), int(x.shape[-2])


class PointScaler(Transform):
    """Scale points and boxes from pixels to [-1, 1] (x, y) using the size of the image in the same item; decode back.

    The image must come before the points in the item (it does with `DataBlock(blocks=(ImageBlock, PointBlock))`);
    points alone use their `img_size` metadata. `y_first=True` reads (row, col) pairs. `do_scale=False` only
    attaches the metadata (points already in [-1, 1]). After `setup`, `c` is the number of values of one item's
    points (what a regression head predicts).
    """

    order = 1

    def __init__(self, do_scale: bool = True, y_first: bool = False) -> None:
        super().__init__()
        self.do_scale, self.y_first = do_scale, y_first
        self.sz: tuple[int, int] | None = None

    def __call__(self, x: Any, split_idx: int | None = None, **kwargs: Any) -> Any:
        self.sz = None  # the size of THIS item's image, grabbed when the image element goes by
        return super().__call__(x, split_idx=split_idx, **kwargs)

    def decode(self, x: Any, split_idx: int | None = None, **kwargs: Any) -> Any:
        self.sz = None
        return super().decode(x, split_idx=split_idx, **kwargs)

    def _size(self, x) -> tuple[int, int]:
        sz = self.sz if self.sz is not None else getattr(x, "img_size", None)
        if sz is None:
            raise ValueError("PointScaler: no image size for these points; put the image before them in the item "
                             "or create them with TensorPoint.create(t, img_size=(w, h))")
        return int(sz[0]), int(sz[1])

    def setups(self, dl):
        # A loader builds item 0 through the transforms set up so far (those before this one); a dataset indexes.
        get = getattr(dl, "do_item", None) or getattr(dl, "__getitem__", None)
        try:
            item = get(0)
        except Exception:  # empty, or not indexable: `c` stays unknown
            return
        for o in item if isinstance(item, tuple) else (item,):
            if isinstance(o, TensorPoint) and not isinstance(o, TensorBBox):
                self.c = o.numel()

    def encodes(self, x: Image.Image | TensorImageBase):
        self.sz = _wh(x)
        return x

    def decodes(self, x: Image.Image | TensorImageBase):  # noqa: F811
        self.sz = _wh(x)
        return x

    def encodes(self, x: TensorPoint):  # type: ignore[no-redef]  # noqa: F811
        w, h = self._size(x)
        p = x.as_subclass(Tensor).reshape(-1, 2).float()
        if self.y_first:
            p = p.flip(-1)
        if self.do_scale:
            p = p * p.new_tensor([2 / w, 2 / h]) - 1
        return type(x)(p.reshape(*x.shape[:-1], 2) if x.shape[-1] == 2 else p.reshape(x.shape),
                       **{**x.__dict__, "img_size": (w, h)})

    def decodes(self, x: TensorPoint):  # type: ignore[no-redef]  # noqa: F811
        w, h = self._size(x)
        p = x.as_subclass(Tensor).float()
        if p.shape[-1] % 2:
            raise ValueError(f"PointScaler: cannot decode {type(x).__name__} of shape {tuple(x.shape)} to (x, y) "
                             f"pixels: its last dimension ({p.shape[-1]}) is odd; a points model predicts 2 values "
                             "per point (n_out = 2 * points per image)")
        p = (p.reshape(*p.shape[:-1], -1, 2) + 1) * p.new_tensor([w / 2, h / 2])
        return type(x)(p.reshape(_decoded_shape(x)), **{**x.__dict__, "img_size": (w, h)})


def _decoded_shape(x: Tensor) -> tuple[int, ...]:
    # A model predicts an item's points flat, (2n,) (a batch: (bs, 2n)); decoded they are (n, 2) (x, y) pairs like
    # the targets, so `pts[0]` is the first point. Boxes (n, 4) and points already (n, 2) keep their shape.
    if isinstance(x, TensorBBox) or (x.ndim >= 2 and x.shape[-1] == 2):
        return tuple(x.shape)
    return (*x.shape[:-1], -1, 2)


class LabeledBBox(L):
    """Boxes with their labels, `LabeledBBox(bbox, lbl)`: what `BBoxLabeler` decodes to, shown with a caption per box."""

    @property
    def bbox(self) -> TensorBBox:
        """The boxes (n, 4)."""
        return self[0]

    @property
    def lbl(self) -> list:
        """The labels, one per box."""
        return self[1]

    def show(self, ctx: Axes | None = None, **kwargs: Any) -> Axes:
        """Draw each box not labelled `#na#` (padding) with its label on `ctx`; returns `ctx`."""
        from tiers.vision.show import draw_boxes

        keep = [i for i, lbl in enumerate(self.lbl) if str(lbl) != "#na#"]
        boxes = self.bbox.reshape(-1, 4)[keep] if keep else self.bbox.reshape(-1, 4)[:0]
        return draw_boxes(boxes, [str(self.lbl[i]) for i in keep], ctx=ctx, **kwargs)


class BBoxLabeler(ItemTransform):
    """On decode, pair the boxes of an item with their label names as a `LabeledBBox` (for showing).

    The labels element becomes the `LabeledBBox` and the boxes element stays, so `show` draws the boxes once,
    captioned. Labels still as ids are looked up in `vocab` (learned at `setup` from the dataset's vocab).
    Its order (0) puts its decode after `PointScaler`'s, so the boxes it pairs are already in pixels.
    """

    order = 0

    def __init__(self) -> None:
        super().__init__()
        self.vocab = None

    def setups(self, dl):
        vocab = getattr(dl, "vocab", None)
        if vocab is not None:
            # the vocab of the labels block: the last list of a per-block vocab (image, bbox, label)
            if isinstance(vocab, (list, tuple, L)) and vocab and isinstance(vocab[-1], (list, tuple, L)):
                vocab = vocab[-1]
            self.vocab = list(vocab)

    def decodes(self, x: tuple):
        boxes = [i for i, o in enumerate(x) if isinstance(o, TensorBBox)]
        lbls = [i for i, o in enumerate(x) if isinstance(o, (TensorMultiCategory, list, L)) and i not in boxes]
        if not boxes or not lbls:
            return x
        b, li = boxes[0], lbls[0]
        lbl = x[li]
        if isinstance(lbl, Tensor):
            ids = lbl.reshape(-1).tolist()
            lbl = [self.vocab[int(i)] if self.vocab is not None else int(i) for i in ids]
        out = list(x)
        out[li] = LabeledBBox(x[b], list(lbl))
        # the boxes are drawn by the LabeledBBox (with captions): hide the bare copy
        out[b] = x[b].as_subclass(_HiddenBBox)
        out[b].__dict__.update(x[b].__dict__)
        return tuple(out)


class _HiddenBBox(TensorBBox):
    "Boxes already drawn by a `LabeledBBox` in the same item: `show` does nothing."

    def show(self, ctx=None, **kwargs: Any):
        return ctx


def clip_remove_empty(bbox: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
    """Clip boxes (n, 4) to [-1, 1] and drop the ones left with no area, and their labels."""
    bbox = torch.clamp(bbox, -1, 1)
    empty = (bbox[..., 2] - bbox[..., 0]) * (bbox[..., 3] - bbox[..., 1]) <= 0.0
    return bbox[~empty], label[~empty.as_subclass(Tensor)]


def bb_pad(samples: list, *, pad_idx: int = 0) -> list:
    """Collation helper (`before_batch`): clip and drop empty boxes, then pad every item's boxes and labels to the
    largest count with all-zero boxes labelled `pad_idx`. Items are (image, boxes, labels, ...)."""
    cleaned = [(s[0], *clip_remove_empty(*s[1:3]), *s[3:]) for s in samples]
    max_len = max((len(s[2]) for s in cleaned), default=0)

    def pad(s):
        img, bbox, lbl, *rest = s
        n = max_len - len(lbl)
        bbox = torch.cat([bbox, bbox.new_zeros(n, 4)]) if n else bbox
        lbl = torch.cat([lbl, lbl.new_full((n,), pad_idx)]) if n else lbl
        return (img, bbox, lbl, *rest)

    return [pad(s) for s in cleaned]


class PointsMSELossFlat(MSELossFlat):
    """`MSELossFlat` of `PointBlock` targets whose `decodes` gives the flat outputs (bs, 2n) back as points
    (bs, n, 2), the targets' shape (`get_preds(with_decoded=True)`, `predict`, `show_results`).

    >>> PointsMSELossFlat().decodes(torch.zeros(3, 4)).shape
    torch.Size([3, 2, 2])
    """

    def decodes(self, out: Tensor) -> Tensor:
        """The outputs as `TensorPoint` (bs, n, 2), still in [-1, 1] (the loaders' decode scales them to pixels)."""
        if out.ndim != 2 or out.shape[-1] % 2:
            return out  # not one flat row of (x, y) pairs per item: a custom model's shape, left as it is
        return TensorPoint(out.reshape(out.shape[0], -1, 2))


class TensorPointCreate(DisplayedTransform):
    """Type transform of `PointBlock`: points from a list/array to `TensorPoint` (n, 2); loss `PointsMSELossFlat`."""

    def __init__(self) -> None:
        super().__init__()

    def encodes(self, o) -> TensorPoint:
        return TensorPoint.create(o)

    @property
    def loss_func(self) -> PointsMSELossFlat:
        return PointsMSELossFlat()


class TensorBBoxCreate(DisplayedTransform):
    """Type transform of `BBoxBlock`: boxes from a list/array to `TensorBBox` (n, 4), pixels x0, y0, x1, y1."""

    def __init__(self) -> None:
        super().__init__()

    def encodes(self, o) -> TensorBBox:
        return TensorBBox.create(o)
