"""Find unreadable images before training: `verify_image`, `verify_images`, and `verified` for a `DataBlock`.

A truncated or corrupt file otherwise fails in the middle of an epoch, when its batch is built. Check up front:

>>> failed = verify_images(get_image_files(path))   # doctest: +SKIP
>>> failed.map(Path.unlink)                         # delete them (fastai's recipe)  # doctest: +SKIP
>>> dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=verified(get_image_files), ...)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from tiers.dispatch import L

__all__ = ["verify_image", "verify_images", "verified", "check_images", "BadImagesError"]


class BadImagesError(ValueError):
    """Raised by `verified` (and `ImageDataLoaders.from_*(verify=True)`) when images cannot be read; `failed` holds
    their paths."""

    def __init__(self, msg: str, failed: list):
        super().__init__(msg)
        self.failed = failed


def verify_image(fn: str | os.PathLike) -> bool:
    """Whether the image file `fn` opens and decodes in full (a truncated or corrupt file gives False)."""
    try:
        with Image.open(fn) as im:
            im.draft(im.mode, (32, 32))  # JPEG: decode at a reduced size, still reading the whole stream
            im.load()
        return True
    except Exception:  # any failure to read means the file is unusable, whatever Pillow raises for it
        return False


def verify_images(fns: Iterable, n_workers: int | None = None) -> L:
    """The files of `fns` that cannot be read as images (an `L`, empty when all are fine), checked on `n_workers`
    threads (default: up to 8)."""
    fns = list(fns)
    if not fns:
        return L()
    n = n_workers if n_workers is not None else min(8, os.cpu_count() or 1)
    if n <= 1:
        ok = [verify_image(f) for f in fns]
    else:
        with ThreadPoolExecutor(n) as ex:  # decoding releases the GIL
            ok = list(ex.map(verify_image, fns))
    return L(f for f, good in zip(fns, ok) if not good)


def _report(failed: list, n: int, where: str) -> str:
    shown = ", ".join(str(f) for f in failed[:10])
    more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
    return f"{where}: {len(failed)} of {n} images cannot be read (truncated or corrupt): {shown}{more}"


def check_images(fns: list, drop: bool = False, where: str = "verify") -> list:
    """`fns` after verifying every image: unreadable ones raise `BadImagesError` naming them, or with `drop` are left
    out with a warning naming them."""
    failed = list(verify_images(fns))
    if not failed:
        return fns
    msg = _report(failed, len(fns), where)
    if not drop:
        raise BadImagesError(f"{msg}; delete or replace them (or pass drop=True to leave them out).", failed)
    warnings.warn(f"{msg}; they are left out.", UserWarning, stacklevel=3)
    bad = set(map(str, failed))
    return type(fns)(f for f in fns if str(f) not in bad) if isinstance(fns, L) else [f for f in fns
                                                                                        if str(f) not in bad]


class verified:  # noqa: N801 - used like a function, as fastai's helpers are
    """Wrap a `DataBlock`'s `get_items` (e.g. `get_image_files`) so that every image it returns is checked once,
    when the datasets are built: an unreadable one raises `BadImagesError` naming the files, or, with `drop`, is
    left out with a warning. `DataBlock(get_items=verified(get_image_files), ...)`. A class, not a closure, so a
    DataBlock holding it still pickles."""

    def __init__(self, get_items: Callable, drop: bool = False):
        self.get_items, self.drop = get_items, drop

    def __call__(self, source, *args, **kwargs):
        items = self.get_items(source, *args, **kwargs)
        return check_images(items, drop=self.drop, where=f"verified({self._name})")

    @property
    def _name(self) -> str:
        return getattr(self.get_items, "__name__", type(self.get_items).__name__)

    def __repr__(self) -> str:
        return f"verified({self._name}, drop={self.drop})"
