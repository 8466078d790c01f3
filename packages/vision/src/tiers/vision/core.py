"""Image types and I/O: `PILImage`, `PILImageBW`, `PILMask`, `load_image`, `image2tensor`, COCO annotations.

`PILImage` and friends are subclasses of `PIL.Image.Image`, so every Pillow method works on them; their type says
what the image means (a photo, a black-and-white image, a segmentation mask), which is what transforms dispatch on
(a mask is resized with nearest-neighbour, an image bilinearly). Nothing is patched onto Pillow: the extra
helpers (`shape`, `n_px`, `aspect`, `reshape`, `to_thumb`...) are methods of `PILBase` only.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from tiers.data import ToTensor
from tiers.tensors import TensorImage, TensorImageBase, TensorImageBW, TensorMask, show_image

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from numpy.typing import ArrayLike

__all__ = [
    "imagenet_stats",
    "cifar_stats",
    "mnist_stats",
    "BILINEAR",
    "NEAREST",
    "Image",
    "to_image",
    "load_image",
    "wide_to_8bit",
    "WIDE_MODES",
    "image2tensor",
    "PILBase",
    "PILImage",
    "PILImageBW",
    "PILMask",
    "get_annotations",
]

imagenet_stats = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
cifar_stats = ([0.491, 0.482, 0.447], [0.247, 0.243, 0.261])
mnist_stats = ([0.131, 0.131, 0.131], [0.308, 0.308, 0.308])
BILINEAR = Image.Resampling.BILINEAR
NEAREST = Image.Resampling.NEAREST


def to_image(x: Image.Image | Tensor | ArrayLike) -> Image.Image:
    """A PIL image from an image, a CHW (or HW) tensor or an HWC (or HW) array; floats are taken as 0..1."""
    if isinstance(x, Image.Image):
        return x
    if isinstance(x, Tensor):
        t = x.detach().cpu().as_subclass(Tensor)
        if t.ndim == 3:
            t = t.permute(1, 2, 0)
        x = t.numpy()
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.dtype.kind == "f":
        x = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif x.dtype != np.uint8:
        if x.min(initial=0) < 0 or x.max(initial=0) > 255:
            raise ValueError(f"to_image: integer values from {x.min()} to {x.max()} do not fit in 0..255; "
                             "scale them or pass floats in 0..1")
        x = x.astype(np.uint8)
    return Image.fromarray(x)


_VERIFY_HINT = ("find such files before training with verify_images(fnames) (it lists the files that cannot be "
                "read), or DataBlock(get_items=verified(get_image_files), ...) / ImageDataLoaders.from_*(..., "
                "verify=True) to check every image up front")


def load_image(fn: str | os.PathLike | io.IOBase, mode: str | None = None) -> Image.Image:
    """Open image file `fn`, read its pixels now (so the file is closed) and convert it to `mode` when given.

    A 16-bit or 32-bit grey image (Pillow modes `I;16`, `I`, `F`) converted to an 8-bit `mode` is scaled to 0..255
    (see `wide_to_8bit`) instead of being clipped at 255."""
    where = "<bytes>" if isinstance(fn, io.IOBase) else str(fn)
    im: Image.Image
    try:
        im = Image.open(fn)  # type: ignore[arg-type]  # Pillow reads any binary file object; its stub wants IO[bytes]
        im.load()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"load_image: no image file at {fn!s}; check the path and the getter that made it") from e
    except Image.UnidentifiedImageError as e:
        raise ValueError(f"load_image: {where} is not an image Pillow can read ({e}); {_VERIFY_HINT}") from e
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data ("image file is truncated", ...)
        raise OSError(f"load_image: {where} is truncated or corrupt ({e}); {_VERIFY_HINT}") from e
    im = im._new(im.im)  # a plain Image, detached from the file object
    if mode and im.mode != mode and im.mode in WIDE_MODES and mode in ("L", "RGB", "RGBA", "LA"):
        im = wide_to_8bit(im)
    return im.convert(mode) if mode and im.mode != mode else im


WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def wide_to_8bit(im: Image.Image) -> Image.Image:
    """A mode-L copy of the 16/32-bit grey image `im`, its range scaled to 0..255 (Pillow's own conversion clips
    at 255, turning almost every pixel of a 16-bit image white).

    `I;16*` and `I` are 16-bit data (0..65535, divided by 257); an `I` image with values outside 0..65535 is
    refused. `F` (float) is taken as 0..1 when its values fit there, else 0..255, else 0..65535.

    >>> wide_to_8bit(Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))).getpixel((1, 0))
    128
    """
    a = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        hi = float(np.nanmax(a)) if a.size else 0.0
        scale = 255.0 if hi <= 1.0 else 1.0 if hi <= 255.0 else 255.0 / 65535.0
    else:
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"wide_to_8bit: a mode-{im.mode} image with values from {a.min():g} to {a.max():g} is "
                             "not 16-bit data; scale it to 0..65535 (or 0..255) yourself before making an image.")
        scale = 255.0 / 65535.0
    out = np.clip(np.rint(np.nan_to_num(a) * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def image2tensor(img: Image.Image | ArrayLike) -> Tensor:
    """A uint8 CHW tensor from a PIL image or an HWC/HW array (HW gives 1HW).

    One copy of the pixels (Pillow's buffer is read-only); the result is a channels-first view of it.
    """
    arr = np.array(img, copy=True)
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(arr).permute(2, 0, 1)


_CHANNELS = (1, 2, 3, 4)  # the channel counts Pillow builds an image from: L, LA, RGB, RGBA
_LAYOUTS = ("an image is (h, w), a channels-first tensor (c, h, w) (TensorImage, image2tensor, ToTensor) or "
            "channels-last (h, w, c) pixels (a numpy array, tensor(Image.open(f))), with c = 1, 3 or 4 channels")


def _pixels_hwc(x: Tensor | np.ndarray, who: str) -> np.ndarray:
    # Pixels in Pillow's layout, (h, w) or (h, w, c). A TensorImage is channels-first, and so is a plain tensor whose
    # first dim is a channel count (what image2tensor gives, so it round-trips); a plain tensor with only its LAST
    # dim a channel count is channels-last, as `tensor(Image.open(f))` gives it (fastai reads plain tensors so).
    # An array is channels-last, as Pillow's own.
    shape = tuple(x.shape)
    kind = type(x).__name__
    if len(shape) not in (2, 3):
        hint = "; for a batch of one, pass x[0]" if len(shape) == 4 and shape[0] == 1 else ""
        raise ValueError(f"{who}: cannot make an image from a {kind} of shape {shape}: {_LAYOUTS}{hint}")
    if not isinstance(x, Tensor):
        a = np.asarray(x)
        if a.ndim == 3 and shape[-1] not in _CHANNELS:
            hint = ("; it looks channels-first: pass x.transpose(1, 2, 0) (or torch.as_tensor(x))"
                    if shape[0] in _CHANNELS else "")
            raise ValueError(f"{who}: a numpy array is read channels-last (h, w, c), but shape {shape} has "
                             f"{shape[-1]} channels: {_LAYOUTS}{hint}")
        return a
    t = x.detach().cpu().as_subclass(Tensor)
    if t.ndim == 3:
        if isinstance(x, TensorImageBase) and shape[0] not in _CHANNELS:
            raise ValueError(f"{who}: a {kind} is channels-first (c, h, w), but shape {shape} has {shape[0]} "
                             f"channels: {_LAYOUTS}; for channels-last pixels pass x.permute(2, 0, 1)")
        if shape[0] in _CHANNELS:
            t = t.permute(1, 2, 0)
        elif shape[-1] not in _CHANNELS:
            raise ValueError(f"{who}: cannot tell the channels of a tensor of shape {shape} (neither its first nor "
                             f"its last dim is a channel count): {_LAYOUTS}")
    return t.numpy()


class PILBase(Image.Image):
    """Base of the PIL image types: build with `create`, draw with `show`, plus a few size helpers.

    Subclasses set `_open_args` (how files are opened, e.g. the mode), `_tensor_cls` (what `ToTensor` makes of
    them) and `_show_args` (default arguments of `show`).
    """

    _open_args: dict[str, Any] = {"mode": "RGB"}
    _tensor_cls: type = TensorImage
    _show_args: dict[str, Any] = {"cmap": "viridis"}
    _scale_wide: bool = True  # 16-bit grey pixels are intensities, scaled to 0..255 (not for masks: class codes)
    filename: str  # set by `create` from a path, as Pillow's opened images have it

    @classmethod
    def _wrap(cls, im: Image.Image) -> PILBase:
        # A new Image object sharing the pixel core (no copy), so the caller's object keeps its class.
        im.load()
        out = im._new(im.im)
        out.__class__ = cls
        return cast(PILBase, out)  # its class was just set to `cls`

    @classmethod
    def create(cls, fn, **kwargs: Any):  # untyped: used as a type transform (Transform(PILImage.create)); an annotation on fn or the return would pick its dispatch type and cast
        """Build from a path, bytes, a file object, a PIL image, a tensor or an HWC array.

        A `TensorImage` is read channels-first (c, h, w); a plain tensor too when its first dim is a channel count
        (1, 3 or 4, as `image2tensor` gives), else channels-last (h, w, c) when its last dim is one (as
        `tensor(Image.open(f))` gives); any other shape is refused, naming it.

        The result is converted to the class's mode (`PILImage`: RGB, `PILImageBW` and `PILMask`: L);
        `kwargs` override `_open_args` when opening a file.

        >>> PILImage.create(np.zeros((4, 6, 3), np.uint8)).shape
        (4, 6)
        """
        mode = {**cls._open_args, **kwargs}.get("mode")
        if isinstance(fn, (Tensor, np.ndarray)):
            im = cls._from_array(fn)
        elif isinstance(fn, Image.Image):
            im = fn
        elif isinstance(fn, (bytes, bytearray)):
            im = load_image(io.BytesIO(fn))
        elif isinstance(fn, (str, os.PathLike, io.IOBase)):
            im = load_image(fn)  # converted below: a 16-bit image is scaled (images) or kept as codes (masks)
        else:
            raise TypeError(f"{cls.__name__}.create: cannot make an image from a {type(fn).__name__}; pass a path, "
                            "bytes, a PIL image, a CHW tensor or an HWC array")
        if mode and im.mode != mode:
            if im.mode in WIDE_MODES and cls._scale_wide:
                im = wide_to_8bit(im)
            im = im.convert(mode)
        out = cls._wrap(im)
        if isinstance(fn, (str, os.PathLike)):
            out.filename = str(fn)  # as Pillow's opened images have it: later checks (mask codes) name the file
        return out

    # what `create` accepts, for `Transform(PILImage.create)` to say where raw inputs enter (`learn.predict('x.jpg')`)
    # (in the class body `create` is the classmethod object; mypy sees the function, which has no `__func__`)
    create.__func__.input_types = (str, os.PathLike, bytes, bytearray, io.IOBase, Image.Image, Tensor,  # type: ignore[attr-defined]
                                   np.ndarray)

    @classmethod
    def _from_array(cls, x) -> Image.Image:
        a = _pixels_hwc(x, f"{cls.__name__}.create")
        if a.dtype == np.uint16 and (a.ndim == 2 or a.shape[-1] == 1):
            return wide_to_8bit(Image.fromarray(a.reshape(a.shape[:2])))  # 16-bit grey: scaled, not clipped
        return to_image(a)

    def show(self, ctx: Axes | None = None, **kwargs: Any) -> Axes:  # type: ignore[override]  # draws on an axis, unlike Pillow's viewer
        """Draw on matplotlib axis `ctx` (a new one when None) and return it; `kwargs` go to `show_image`."""
        return show_image(self, ctx=ctx, **{**self._show_args, **kwargs})

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the order of tensor shapes (Pillow's `size` is (width, height))."""
        return self.size[1], self.size[0]

    @property
    def n_px(self) -> int:
        """Number of pixels."""
        return self.size[0] * self.size[1]

    @property
    def aspect(self) -> float:
        """Width divided by height."""
        return self.size[0] / self.size[1]

    def reshape(self, h: int, w: int, resample: int | None = None) -> PILBase:
        """Resize to height `h` and width `w` (note the order, as for tensors); same class as `self`."""
        return self._wrap(self.resize((w, h), resample=self._resample(resample)))

    def resize_max(self, resample: int | None = None, max_px: int | None = None, max_h: int | None = None,
                   max_w: int | None = None) -> PILBase:
        """Shrink, keeping the aspect ratio, until at most `max_px` pixels, `max_h` high and `max_w` wide."""
        h, w = self.shape
        scale = 1.0
        if max_px and h * w > max_px:
            scale = min(scale, (max_px / (h * w)) ** 0.5)
        if max_h and h > max_h:
            scale = min(scale, max_h / h)
        if max_w and w > max_w:
            scale = min(scale, max_w / w)
        if scale >= 1.0:
            return self
        return self.reshape(max(1, round(h * scale)), max(1, round(w * scale)), resample)

    def to_thumb(self, h: int, w: int | None = None) -> PILBase:
        """A copy shrunk to fit in `h` x `w` (square when `w` is None), aspect ratio kept."""
        im = self.copy()
        im.thumbnail((w or h, h))
        return self._wrap(im)

    def to_bytes_format(self, format: str = "png") -> bytes:
        """The image encoded in `format` (png, jpeg...), as bytes."""
        buf = io.BytesIO()
        self.save(buf, format=format)
        return buf.getvalue()

    def _resample(self, resample: int | None) -> int:
        return BILINEAR if resample is None else resample

    def __repr__(self) -> str:
        return f"{type(self).__name__} mode={self.mode} size={self.size[0]}x{self.size[1]}"


class PILImage(PILBase):
    """An RGB image: `PILImage.create('cat.jpg')`; `ToTensor` makes it a `TensorImage` (3, h, w) of uint8."""


class PILImageBW(PILImage):
    """A black-and-white (mode L) image; `ToTensor` makes it a `TensorImageBW` (1, h, w)."""

    _open_args = {"mode": "L"}
    _tensor_cls = TensorImageBW
    _show_args = {"cmap": "Greys"}


class PILMask(PILBase):
    """A segmentation mask (mode L, pixel value = class code); resized with nearest-neighbour, never blended.

    `ToTensor` makes it a `TensorMask` (h, w) of class codes.
    """

    _open_args = {"mode": "L"}
    _tensor_cls = TensorMask
    _show_args = {"alpha": 0.5, "cmap": "tab20"}
    _scale_wide = False

    @classmethod
    def _from_array(cls, x) -> Image.Image:
        a = x.detach().cpu().as_subclass(Tensor).numpy() if isinstance(x, Tensor) else np.asarray(x)
        if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]):
            a = a.reshape(a.shape[1:] if a.shape[0] == 1 else a.shape[:-1])
        if a.ndim != 2:
            raise ValueError(f"PILMask.create: a mask array must be (h, w), got shape {a.shape}")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"PILMask.create: class codes from {a.min()} to {a.max()} do not fit in 0..255")
        return Image.fromarray(a.astype(np.uint8), mode="L")

    def _resample(self, resample: int | None) -> int:
        return NEAREST if resample is None else resample


# `ToTensor` (tiers.data) is empty until the application layers teach it their types: PIL images become the
# tensor type their class names, masks drop the channel axis.
@ToTensor
def encodes(self, o: PILBase):
    return o._tensor_cls(image2tensor(o))


@ToTensor  # type: ignore[no-redef]  # one function per type (dispatched)
def encodes(self, o: PILMask):  # noqa: F811
    return o._tensor_cls(image2tensor(o)[0])


def get_annotations(fname: str | os.PathLike, prefix: str | None = None) -> tuple[list[str], list[tuple[list, list]]]:
    """Read a COCO-style JSON file: the image file names and, for each, `(boxes, labels)`.

    Boxes are `[x0, y0, x1, y1]` in pixels (COCO stores x, y, width, height), labels the category names. Images
    without annotations are left out. `prefix` is prepended to every file name.

    >>> images, lbl_bbox = get_annotations(path/'train.json')  # doctest: +SKIP
    >>> img2bbox = dict(zip(images, lbl_bbox))  # doctest: +SKIP
    """
    doc = json.loads(Path(fname).read_text())
    missing = [k for k in ("images", "annotations", "categories") if k not in doc]
    if missing:
        raise ValueError(f"get_annotations: {fname!s} lacks the COCO key(s) {missing}; is it a COCO annotation file?")
    id2img = {o["id"]: o["file_name"] for o in doc["images"]}
    id2cat = {o["id"]: o["name"] for o in doc["categories"]}
    boxes: dict[int, list] = {}
    labels: dict[int, list] = {}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        boxes.setdefault(a["image_id"], []).append([x, y, x + w, y + h])
        labels.setdefault(a["image_id"], []).append(id2cat[a["category_id"]])
    ids = list(boxes)
    pre = prefix or ""
    return [pre + id2img[i] for i in ids], [(boxes[i], labels[i]) for i in ids]
