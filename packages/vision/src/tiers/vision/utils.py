"""Image-folder chores from fastai's `vision.utils`: download images from a list of URLs, and resize a folder of
images (keeping the aspect ratio, the sub-folders and the file names)."""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tiers.data import get_image_files
from tiers.dispatch import L
from tiers.dispatch.files import atomic_write_bytes
from tiers.vision.verify import verify_image

__all__ = ["resize_to", "resize_image", "resize_images", "download_images"]


def resize_to(img: Image.Image, targ_sz: int, use_min: bool = False) -> tuple[int, int]:
    """The (width, height) that gives `img`'s longest side (shortest with `use_min`) the length `targ_sz`, aspect
    ratio kept.

    >>> resize_to(Image.new("RGB", (200, 100)), 50)
    (50, 25)
    """
    w, h = img.size
    ratio = targ_sz / (min if use_min else max)(w, h)
    return int(w * ratio), int(h * ratio)


def resize_image(file: str | os.PathLike, dest: str | os.PathLike, src: str | os.PathLike = ".",
                 max_size: int | None = None, n_channels: int = 3, ext: str | None = None,
                 img_format: str | None = None, resample: int | None = Image.Resampling.BILINEAR, resume: bool = False,
                 **kwargs: Any) -> Path | None:
    """Write image `src/file` to `dest/file`, shrunk so that no side exceeds `max_size` and converted to RGB when
    `n_channels=3`; an image already small enough (with the right channels) is copied. `ext` changes the suffix,
    `img_format` and `kwargs` go to `Image.save`; `resume` skips files already in `dest`. An unreadable image is
    skipped with a warning naming it. Returns the written path (None when skipped)."""
    dest_fname = Path(dest) / file
    dest_fname.parent.mkdir(parents=True, exist_ok=True)
    file = Path(src) / file
    if ext is not None:
        dest_fname = dest_fname.with_suffix(ext)
    if resume and dest_fname.exists():
        return None
    if not verify_image(file):
        warnings.warn(f"resize_image: {file} cannot be read (truncated or corrupt); skipped.", UserWarning,
                      stacklevel=2)
        return None
    with Image.open(file) as img:
        img.load()
        channels = 1 if np.asarray(img).ndim == 2 else np.asarray(img).shape[2]
        too_big = max_size is not None and (img.height > max_size or img.width > max_size)
        if too_big or channels != n_channels:
            out = img.resize(resize_to(img, max_size), resample=resample) if too_big and max_size is not None else img
            if n_channels == 3:
                out = out.convert("RGB")
            out.save(dest_fname, img_format, **kwargs)
        elif file.resolve() != dest_fname.resolve():
            shutil.copy2(file, dest_fname)
    return dest_fname


def resize_images(path: str | os.PathLike, max_workers: int | None = None, max_size: int | None = None,
                  recurse: bool = False, dest: str | os.PathLike = ".", n_channels: int = 3, ext: str | None = None,
                  img_format: str | None = None, resample: int | None = Image.Resampling.BILINEAR,
                  resume: bool | None = None, **kwargs: Any) -> L:
    """`resize_image` on every image under `path` (its sub-folders too when `recurse`), written below `dest` with the
    same relative paths, on `max_workers` threads. Returns the written paths."""
    path, dest = Path(path), Path(dest)
    if resume is None:
        resume = False
    dest.mkdir(parents=True, exist_ok=True)
    files = [o.relative_to(path) for o in get_image_files(path, recurse=recurse)]
    n = max_workers if max_workers is not None else min(8, os.cpu_count() or 1)

    def one(f):
        return resize_image(f, dest, src=path, max_size=max_size, n_channels=n_channels, ext=ext,
                            img_format=img_format, resample=resample, resume=resume, **kwargs)

    if n <= 1:
        done = [one(f) for f in files]
    else:
        with ThreadPoolExecutor(n) as ex:
            done = list(ex.map(one, files))
    return L(o for o in done if o is not None)


def _suffix(url: str) -> str:
    found = re.findall(r"\.\w+?(?=(?:\?|$))", url.split("/")[-1])
    return found[0] if found and found[0].lower() in {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"} else ".jpg"


def _fetch(url: str, fname: Path, timeout: float) -> None:
    import urllib.request  # here, not at import: it costs ~17 ms that most sessions never use

    # A fresh opener reads the proxy settings of now (urlopen's global one keeps those of its first use).
    with urllib.request.build_opener().open(url, timeout=timeout) as r:
        data = r.read()
    atomic_write_bytes(fname, data)  # a failed download leaves no half-written image behind


def download_images(dest: str | os.PathLike, url_file: str | os.PathLike | None = None,
                    urls: Iterable[str] | None = None, max_pics: int = 1000, n_workers: int = 8, timeout: float = 4,
                    preserve_filename: bool = False) -> L:
    """Download the images at `urls` (or one URL per line of `url_file`), at most `max_pics`, into `dest` as
    `00000000.jpg`, `00000001.png`... (the URL's file name with `preserve_filename`). URLs that fail are skipped,
    with one warning listing them. Returns the paths written; check them with `verify_images` before training."""
    if urls is None:
        if url_file is None:
            raise ValueError("download_images: pass urls=[...] or url_file= (a text file with one URL per line)")
        urls = Path(url_file).read_text().strip().splitlines()
    urls = [u.strip() for u in urls if u.strip()][:max_pics]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = [dest / (Path(u.split("?")[0]).name if preserve_filename else f"{i:08d}{_suffix(u)}")
             for i, u in enumerate(urls)]

    def one(pair):
        url, fname = pair
        try:
            _fetch(url, fname, timeout)
            return None
        except Exception as e:  # a dead link must not stop the others; all are reported below
            return f"{url} ({e})"

    with ThreadPoolExecutor(max(1, n_workers)) as ex:
        failed = [f for f in ex.map(one, zip(urls, names)) if f is not None]
    if failed:
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        warnings.warn(f"download_images: {len(failed)} of {len(urls)} downloads failed: {', '.join(failed[:5])}{more}",
                      UserWarning, stacklevel=2)
    return L(f for f in names if f.exists())
