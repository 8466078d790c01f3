"""Jupyter widgets to look at and clean an image dataset, as fastai's `fastai.vision.widgets`.

`ImageClassifierCleaner(learn)` shows, for a chosen category and dataset (train or valid), the images with the
highest loss first, each with a dropdown: `<Keep>`, `<Delete>` or another category. Then, as in fastbook:

>>> cleaner = ImageClassifierCleaner(learn); cleaner                       # doctest: +SKIP
>>> for idx in cleaner.delete(): cleaner.fns[idx].unlink()                # doctest: +SKIP
>>> for idx, cat in cleaner.change(): shutil.move(str(cleaner.fns[idx]), path/cat)  # doctest: +SKIP

The marks are those of the category and dataset on show: apply them before choosing another one (the new choice
starts from `<Keep>`). Files that no longer exist (deleted or moved) are left out when a choice is shown again.

Needs ipywidgets, the optional extra `tiers-vision[widgets]`: it is imported when a widget is built (or one of the
ipywidgets names this module re-exports, `HBox`, `VBox`, `Button`..., is used), so this module imports without it.
"""

import io
import os
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image

from tiers.dispatch.extras import require
from tiers.dispatch.foundation import L
from tiers.dispatch.paths import Path

# the ipywidgets names fastai's widgets module re-exports (fastbook's chapter 2 app uses them), loaded on first use
_IPYWIDGETS_NAMES = ("Box", "Button", "Checkbox", "Dropdown", "FileUpload", "HBox", "Label", "Layout", "Output",
                     "VBox", "widgets")

# the ipywidgets names come from the module __getattr__ below (F822: ruff cannot see that)
__all__ = ["KEEP", "DELETE", "widget", "carousel", "ImagesCleaner", "ImageClassifierCleaner",  # noqa: F822
           "Box", "Button", "Checkbox", "Dropdown", "FileUpload", "HBox", "Label", "Layout", "Output", "VBox",
           "widgets"]

KEEP = "<Keep>"
DELETE = "<Delete>"


def _ipywidgets(what: str) -> ModuleType:
    return require("ipywidgets", dist="tiers-vision", extra="widgets", what=what)


def __getattr__(name: str) -> Any:
    # PEP 562: `from tiers.vision.widgets import *` or `widgets.HBox` imports ipywidgets only then
    if name in _IPYWIDGETS_NAMES:
        return getattr(_ipywidgets(f"tiers.vision.widgets.{name}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _to_pil(im: Any) -> Image.Image:
    if isinstance(im, Image.Image):
        return im
    if isinstance(im, (str, os.PathLike)):
        try:
            with Image.open(im) as opened:
                return opened.copy()  # read now: the file is closed on leaving
        except (OSError, ValueError) as e:
            e.add_note(f"widget: while opening the image file {str(im)!r}")
            raise
    if isinstance(im, bytes):
        return Image.open(io.BytesIO(im))
    if isinstance(im, torch.Tensor):
        im = im.detach().cpu().numpy()
        if im.ndim == 3 and im.shape[0] in (1, 3):  # channels first, as tiers/torch images are
            im = im.transpose(1, 2, 0)
    if isinstance(im, np.ndarray):
        arr = im.squeeze(-1) if im.ndim == 3 and im.shape[-1] == 1 else im
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8) if arr.max(initial=0) <= 1 else arr.clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr)
    raise TypeError(f"widget: cannot show {type(im).__name__!r}; pass a file path, a PIL image, PNG/JPEG bytes, "
                    "a numpy array or a tensor (HWC or CHW).")


def _png_bytes(im: Any, max_size: tuple[int, int] | None) -> bytes:
    pil = _to_pil(im)
    if max_size is not None:
        pil = pil.copy()
        pil.thumbnail(max_size)  # keeps the aspect ratio
    if pil.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        pil = pil.convert("RGB")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def widget(im: Any, *args: dict[str, Any], max_size: tuple[int, int] | None = None, **layout: Any) -> Any:
    """An ipywidgets `Image` showing `im` (a file path, PIL image, image bytes, numpy array or tensor), scaled down
    to fit `max_size` (width, height) if given; `layout` (dicts in `args`, then keywords, e.g. `height='128px'`) is
    its `Layout`."""
    ipw = _ipywidgets("widget")
    lay: dict[str, Any] = {}
    for a in (*args, layout):
        lay.update(a)
    return ipw.Image(value=_png_bytes(im, max_size), format="png", layout=ipw.Layout(**lay))


def carousel(children: Iterable[Any] = (), **layout: Any) -> Any:
    """An ipywidgets `Box` that lays `children` out in one row, scrolling sideways when they do not fit; `layout`
    overrides the `Layout` settings."""
    ipw = _ipywidgets("carousel")
    lay = {"overflow": "scroll hidden", "flex_flow": "row", "display": "flex", **layout}
    return ipw.Box(children=tuple(children), layout=ipw.Layout(**lay))


class ImagesCleaner:
    """A row of image thumbnails (`set_fns`, at most `max_n`, each fit in `width` x `height` pixels), each with a
    dropdown: `<Keep>`, `<Delete>` or one of `opts`. `delete()` gives the positions in `fns` marked `<Delete>`,
    `change()` the `(position, option)` pairs marked with an option. Displays itself in Jupyter (`widget` is the
    ipywidgets container)."""

    def __init__(self, opts: Sequence[Any] = (), height: int = 128, width: int = 256, max_n: int = 30):
        self._ipw = _ipywidgets("ImagesCleaner")
        opts = [str(o) for o in opts]
        clash = [o for o in opts if o in (KEEP, DELETE)]
        if clash:
            raise ValueError(f"ImagesCleaner: the options {clash} clash with the marks {KEEP!r}/{DELETE!r}; "
                             "rename those categories.")
        if max_n < 1 or height < 1 or width < 1:
            raise ValueError(f"ImagesCleaner: max_n, height and width must be positive (got {max_n}, {height}, {width}).")
        self.opts: tuple[str, ...] = (KEEP, DELETE, *opts)
        self.height, self.width, self.max_n = height, width, max_n
        self.widget = carousel(width="100%")
        self.fns: L = L()
        self.dropdowns: list[Any] = []

    def set_fns(self, fns: Iterable[str | os.PathLike[str]]) -> None:
        """Show the first `max_n` files of `fns` (their order is kept), every dropdown back on `<Keep>`."""
        self.fns = L(Path(f) for f in fns)[: self.max_n]
        ipw = self._ipw
        self.dropdowns = [ipw.Dropdown(options=self.opts, value=KEEP, layout=ipw.Layout(width="max-content"))
                          for _ in self.fns]
        self.widget.children = tuple(
            ipw.VBox([widget(fn, max_size=(self.width, self.height), max_width=f"{self.width}px"), dd])
            for fn, dd in zip(self.fns, self.dropdowns))

    @property
    def values(self) -> list[str]:
        "The dropdowns' current values, one per file of `fns`."
        return [dd.value for dd in self.dropdowns]

    def delete(self) -> list[int]:
        "The positions in `fns` marked `<Delete>`."
        return [i for i, v in enumerate(self.values) if v == DELETE]

    def change(self) -> list[tuple[int, str]]:
        "The `(position in fns, new option)` pairs of the files marked with an option (not `<Keep>`/`<Delete>`)."
        return [(i, v) for i, v in enumerate(self.values) if v not in (KEEP, DELETE)]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class ImageClassifierCleaner:
    """fastai's `ImageClassifierCleaner`: for the category (`dd_cats`) and dataset (`dd_ds`, `'Train'`/`'Valid'`)
    chosen, the images labelled with that category, highest loss first (at most `max_n`), each with a dropdown
    `<Keep>`, `<Delete>` or another category. `fns`, `delete()`, `change()` and `values` are those of the images
    on show (see `ImagesCleaner`). Needs a single-label classifier whose data items are image files."""

    def __init__(self, learn: Any, max_n: int = 30, height: int = 128, width: int = 256):
        ipw = _ipywidgets("ImageClassifierCleaner")
        vocab = getattr(learn.dls, "vocab", None)
        if vocab is None or not len(vocab):
            raise ValueError("ImageClassifierCleaner needs a classifier: learn.dls.vocab (the categories) is "
                             f"{vocab!r}. Build the DataLoaders with a CategoryBlock target.")
        self.learn, self.vocab = learn, [str(v) for v in vocab]
        self._data: dict[int, tuple[list[Path], torch.Tensor, torch.Tensor]] = {}
        self.iw = ImagesCleaner(self.vocab, height=height, width=width, max_n=max_n)
        self.dd_cats = ipw.Dropdown(options=self.vocab, description="Category:")
        self.dd_ds = ipw.Dropdown(options=("Train", "Valid"), description="Dataset:")
        self.widget = ipw.VBox([ipw.HBox([self.dd_cats, self.dd_ds]), self.iw.widget])
        self._render()  # before observing, so a failure here leaves no half-built widget behind
        self.dd_cats.observe(self._on_change, names="value")
        self.dd_ds.observe(self._on_change, names="value")

    def _load(self, ds_idx: int) -> tuple[list[Path], torch.Tensor, torch.Tensor]:
        # predictions once per dataset: the losses do not change while the user cleans
        if ds_idx not in self._data:
            name = ("train", "valid")[ds_idx]
            dl = self.learn.dls[ds_idx].new(shuffle=False, drop_last=False)
            items = list(getattr(dl, "items", None) or [])
            bad = [o for o in items if not isinstance(o, (str, os.PathLike))]
            if bad or len(items) != len(dl.dataset):
                raise TypeError(f"ImageClassifierCleaner: the {name} items must be image file paths, one per "
                                f"sample; got {type(bad[0]).__name__ if bad else 'no items'} (e.g. {bad[:1]!r}). "
                                "Build the DataLoaders from files (ImageDataLoaders.from_folder, DataBlock with "
                                "get_image_files).")
            if len(items) == 0:
                self._data[ds_idx] = ([], torch.zeros(0, dtype=torch.long), torch.zeros(0))
                return self._data[ds_idx]
            _, targs, losses = self.learn.get_preds(dl=dl, with_loss=True)
            if targs.ndim != 1:
                raise ValueError("ImageClassifierCleaner needs single-label targets (one category per image); got "
                                 f"targets of shape {tuple(targs.shape)} (multi-label?).")
            self._data[ds_idx] = ([Path(o) for o in items], targs.long().cpu(), losses.float().cpu())
        return self._data[ds_idx]

    def _shown_fns(self) -> list[Path]:
        items, targs, losses = self._load(("Train", "Valid").index(self.dd_ds.value))
        cat = self.vocab.index(self.dd_cats.value)
        idxs = torch.nonzero(targs == cat).flatten()
        order = idxs[losses[idxs].argsort(descending=True, stable=True)].tolist()
        return [items[i] for i in order if items[i].exists()]

    def _render(self) -> None:
        self.iw.set_fns(self._shown_fns())

    def _on_change(self, change: Any = None) -> None:
        self._render()

    @property
    def fns(self) -> L:
        "The image files on show, highest loss first: `delete()` and `change()` give positions in it."
        return self.iw.fns

    @property
    def values(self) -> list[str]:
        "The dropdowns' current values, one per file of `fns`."
        return self.iw.values

    def delete(self) -> list[int]:
        "The positions in `fns` marked `<Delete>`."
        return self.iw.delete()

    def change(self) -> list[tuple[int, str]]:
        "The `(position in fns, new category)` pairs of the files marked with another category."
        return self.iw.change()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
