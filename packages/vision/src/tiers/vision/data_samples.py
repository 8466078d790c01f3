"""Offline sample datasets in the classic layouts, written from data that installed packages ship.

The paper's listings read MNIST-tiny, Oxford pets, CamVid-tiny and COCO-tiny with `untar_data`. These functions
write small look-alikes to disk instead, so examples and tests run with no network:

* `make_mnist_tiny`: `train|valid/3|7/*.png` from scikit-learn's bundled 8x8 digits, upscaled.
* `make_digits_folder`: the same layout with all ten digits (the accuracy benchmark's data).
* `make_pets_tiny`: a flat `images/` folder, the label in the file name (`Seven_12.jpg`), capitalised labels
  playing the role of the cat breeds.
* `make_camvid_tiny`: `images/*.png`, `labels/*_P.png` masks and `codes.txt`, synthetic shapes.
* `make_coco_tiny`: `train/*.jpg` and a COCO-style `train.json` with boxes of synthetic shapes.

Each returns the dataset's root folder: `dest` when given, else `<tiers home>/samples/<name>` (`$TIERS_HOME`,
default `~/.tiers`; `samples =` in its config.ini moves it), a folder `untar_data` never reads, so the look-alikes
are never taken for the real datasets and a real download is never mixed with them. A dataset is written whole
into a hidden temporary folder, then renamed into place with a marker file naming its maker: a second call
returns at once, an interrupted one leaves nothing, and an existing non-empty folder without that marker (a real
extraction, anything else) is refused, never written into.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from tiers.data.external import SAMPLE_MARKER, tiers_home, tiers_path
from tiers.dispatch.extras import require
from tiers.dispatch.paths import Path  # a pathlib.Path with ls(), as untar_data returns

__all__ = [
    "SHAPE_CODES",
    "DIGIT_NAMES",
    "sample_data_path",
    "make_mnist_tiny",
    "make_digits_folder",
    "make_pets_tiny",
    "make_camvid_tiny",
    "make_coco_tiny",
]

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SHAPE_CODES = ("Background", "Circle", "Square", "Triangle")
# One colour per shape class, far apart so a tiny model can separate them; noise is added per pixel.
_SHAPE_RGB = {1: (220, 60, 50), 2: (50, 170, 60), 3: (60, 80, 220)}


def sample_data_path(name: str, dest: str | os.PathLike | None = None) -> Path:
    """Where sample dataset `name` lives: `dest` when given, else `<tiers home>/samples/<name>` (see
    `tiers_path('samples')`), apart from the `data` folder where `untar_data` extracts the real datasets.

    >>> sample_data_path('mnist_tiny', '/tmp/x')
    Path('/tmp/x')
    """
    if dest is not None:
        return Path(dest).expanduser()
    samples, data = tiers_path("samples"), tiers_path("data")
    if samples.resolve() == data.resolve():
        raise ValueError(f"The samples folder and the data folder are both {samples} (see `samples` and `data` in "
                         f"{tiers_home() / 'config.ini'}): the offline look-alikes would sit where untar_data keeps the "
                         "real datasets. Give `samples` a folder of its own, or pass dest=.")
    return samples / name


def _maker_of(path: Path) -> str | None:
    "Which maker finished the sample at `path` ('' for a marker written before markers named it), None: none."
    marker = path / SAMPLE_MARKER
    if not marker.is_file():
        return None
    text = marker.read_text(errors="replace").strip()
    return text if text.startswith("make_") else ""


def _write_sample(maker: str, name: str, dest: str | os.PathLike | None, write: Callable[[Path], None]) -> Path:
    """Return the sample `name` made by `maker` at `sample_data_path(name, dest)`, writing it with `write(folder)`
    first if it is not there: into a hidden temporary folder beside it, then renamed into place with its marker."""
    path = sample_data_path(name, dest)
    done_by = _maker_of(path)
    if done_by is not None and done_by in ("", maker):
        return path
    if done_by is not None or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
        default = sample_data_path(name)
        fix = (f"Call {maker}() without dest (it writes to {default}), or pass dest= a new or empty folder"
               if dest is not None and Path(dest).expanduser() != default else
               f"Pass dest= a new or empty folder, e.g. {maker}(dest={str(path.parent / (path.name + '_sample'))!r})")
        if done_by is not None:
            raise FileExistsError(f"{maker}: {path} already holds the sample dataset written by {done_by}; nothing "
                                  f"was written. {fix}.")
        what = "a file" if not path.is_dir() else f"a folder with other files and no {SAMPLE_MARKER} marker of ours"
        raise FileExistsError(f"{maker}: {path} is {what} (a dataset untar_data extracted, or your own files); "
                              f"nothing was written, since the synthetic look-alike would be mixed into it. {fix}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        write(tmp)
        (tmp / SAMPLE_MARKER).write_text(maker + "\n")
        if path.is_dir():
            path.rmdir()  # empty (checked above); os.replace needs it gone or empty anyway
        try:
            os.replace(tmp, path)
        except OSError:
            if _maker_of(path) != maker:  # not another call finishing the same sample first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _digits():
    # scikit-learn ships the 1797 8x8 digits inside its wheel, so this never touches the network.
    load_digits = require("sklearn.datasets", dist="tiers-vision", extra="samples",
                          what="the sample datasets built from scikit-learn's digits (make_mnist_tiny, ...)").load_digits

    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)


def _digit_to_pil(img8: np.ndarray, size: int) -> Image.Image:
    arr = np.clip(img8 * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="L").resize((size, size), Image.Resampling.BICUBIC)


def _split(n: int, valid_frac: float, rng: np.random.Generator) -> np.ndarray:
    is_valid = np.zeros(n, dtype=bool)
    is_valid[rng.permutation(n)[: int(round(n * valid_frac))]] = True
    return is_valid


def _write_digit_folders(path: Path, digits: tuple[int, ...], size: int, valid_frac: float, seed: int,
                         max_per_class: int | None) -> None:
    images, targets = _digits()
    rng = np.random.default_rng(seed)
    rows = []
    for d in digits:
        idx = np.nonzero(targets == d)[0]
        if max_per_class is not None:
            idx = idx[:max_per_class]
        is_valid = _split(len(idx), valid_frac, rng)
        for i, v in zip(idx, is_valid):
            split = "valid" if v else "train"
            folder = path / split / str(d)
            folder.mkdir(parents=True, exist_ok=True)
            fn = folder / f"{i:04d}.png"
            _digit_to_pil(images[i], size).save(fn)
            rows.append(f"{split}/{d}/{fn.name},{d}")
    (path / "labels.csv").write_text("name,label\n" + "\n".join(rows) + "\n")


def make_mnist_tiny(dest: str | os.PathLike | None = None, size: int = 28, valid_frac: float = 0.3,
                    seed: int = 0, max_per_class: int | None = None) -> Path:
    """Write an MNIST-tiny-like dataset of 3s and 7s: `train/3`, `train/7`, `valid/3`, `valid/7` and `labels.csv`.

    The images are scikit-learn's 8x8 digits upscaled to `size` pixels (mode L, light ink on black). About 360
    images in all, `valid_frac` of each class in `valid/`.

    >>> path = make_mnist_tiny('/tmp/mnist_tiny')  # doctest: +SKIP
    >>> sorted(p.name for p in (path/'train').iterdir())  # doctest: +SKIP
    ['3', '7']
    """
    return _write_sample("make_mnist_tiny", "mnist_tiny", dest,
                         lambda p: _write_digit_folders(p, (3, 7), size, valid_frac, seed, max_per_class))


def make_digits_folder(dest: str | os.PathLike | None = None, size: int = 28, valid_frac: float = 0.2,
                       seed: int = 0, max_per_class: int | None = None) -> Path:
    """Write all ten of scikit-learn's digits (1797 images) as `train|valid/<digit>/*.png` plus `labels.csv`.

    The layout of `make_mnist_tiny` with every class: the data of the accuracy benchmark.
    """
    return _write_sample("make_digits_folder", "digits", dest,
                         lambda p: _write_digit_folders(p, tuple(range(10)), size, valid_frac, seed, max_per_class))


def make_pets_tiny(dest: str | os.PathLike | None = None, n_per_class: int = 12, seed: int = 0,
                   digits: tuple[int, ...] = (3, 7, 1, 8)) -> Path:
    """Write a pets-like flat folder `images/<Label>_<n>.jpg` of coloured digits, sizes varying from 48 to 80 px.

    The label is the digit's English name; odd digits are capitalised (`Seven_3.jpg`) and even ones are not
    (`eight_3.jpg`), like the cat breeds (capitalised) and dog breeds of Oxford-IIIT Pets, so both the paper's
    regex listing (`r'^([^/]+)_\\d+.jpg$'`) and its `label_func=lambda x: x[0].isupper()` listing apply.
    """
    return _write_sample("make_pets_tiny", "pets_tiny", dest, lambda p: _write_pets(p, n_per_class, seed, digits))


def _write_pets(path: Path, n_per_class: int, seed: int, digits: tuple[int, ...]) -> None:
    images, targets = _digits()
    rng = np.random.default_rng(seed)
    out = path / "images"
    out.mkdir(parents=True, exist_ok=True)
    for d in digits:
        name = DIGIT_NAMES[d].capitalize() if d % 2 else DIGIT_NAMES[d]
        for n, i in enumerate(np.nonzero(targets == d)[0][:n_per_class]):
            h, w = (int(v) for v in rng.integers(48, 81, size=2))
            ink = _digit_to_pil(images[i], max(h, w)).resize((w, h), Image.Resampling.BILINEAR)
            alpha = np.asarray(ink, dtype=np.float32)[..., None] / 255.0
            bg = rng.integers(0, 90, size=3).astype(np.float32)
            fg = rng.integers(150, 256, size=3).astype(np.float32)
            noise = rng.normal(0, 8, size=(h, w, 3)).astype(np.float32)
            rgb = np.clip(bg * (1 - alpha) + fg * alpha + noise, 0, 255).astype(np.uint8)
            Image.fromarray(rgb, mode="RGB").save(out / f"{name}_{n}.jpg", quality=92)


def _random_shape(rng: np.random.Generator, h: int, w: int, lo: float, hi: float):
    cls = int(rng.integers(1, len(SHAPE_CODES)))
    s = int(rng.integers(int(lo * min(h, w)), int(hi * min(h, w)) + 1))
    x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
    return cls, (x0, y0, x0 + s, y0 + s)


def _draw_shape(draw: ImageDraw.ImageDraw, cls: int, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if cls == 1:
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif cls == 2:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    else:
        draw.polygon([((x0 + x1 - 1) / 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=fill)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    # A soft gradient plus noise: not a flat colour, so the model cannot segment by "anything not background".
    top, bottom = rng.integers(100, 200, size=3), rng.integers(100, 200, size=3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = top * (1 - t) + bottom * t + np.zeros((1, w, 1), np.float32)
    return img + rng.normal(0, 10, size=(h, w, 3))


def _shape_image(rng: np.random.Generator, h: int, w: int, n_shapes: int, lo: float, hi: float):
    rgb = Image.new("RGB", (w, h))
    mask = Image.new("L", (w, h), 0)
    shapes = [_random_shape(rng, h, w, lo, hi) for _ in range(n_shapes)]
    colour_layer = Image.new("RGB", (w, h))
    d_rgb, d_mask = ImageDraw.Draw(colour_layer), ImageDraw.Draw(mask)
    for cls, box in shapes:
        _draw_shape(d_rgb, cls, box, _SHAPE_RGB[cls])
        _draw_shape(d_mask, cls, box, cls)
    m = np.asarray(mask)
    bg = _background(rng, h, w)
    fg = np.asarray(colour_layer, dtype=np.float32) + rng.normal(0, 12, size=(h, w, 3))
    arr = np.where(m[..., None] > 0, fg, bg)
    rgb = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")
    return rgb, mask, shapes


def make_camvid_tiny(dest: str | os.PathLike | None = None, n_images: int = 24, size: tuple[int, int] = (72, 96),
                     seed: int = 0) -> Path:
    """Write a CamVid-tiny-like segmentation set of synthetic shapes: `images/*.png`, `labels/<stem>_P.png`, `codes.txt`.

    Masks are mode-L PNGs whose pixel values index `codes.txt` (`Background Circle Square Triangle`, one per line,
    so `np.loadtxt(path/'codes.txt', dtype=str)` reads them as in the paper). `size` is (height, width).
    """
    return _write_sample("make_camvid_tiny", "camvid_tiny", dest, lambda p: _write_camvid(p, n_images, size, seed))


def _write_camvid(path: Path, n_images: int, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = size
    (path / "images").mkdir(parents=True, exist_ok=True)
    (path / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        img, mask, _ = _shape_image(rng, h, w, int(rng.integers(2, 5)), 0.2, 0.45)
        img.save(path / "images" / f"scene_{i:03d}.png")
        mask.save(path / "labels" / f"scene_{i:03d}_P.png")
    (path / "codes.txt").write_text("\n".join(SHAPE_CODES) + "\n")


def make_coco_tiny(dest: str | os.PathLike | None = None, n_images: int = 30, size: tuple[int, int] = (96, 128),
                   seed: int = 0) -> Path:
    """Write a COCO-tiny-like detection set: `train/*.jpg` and `train.json` (COCO style, `bbox` as x, y, w, h).

    Each image holds 1 to 3 shapes; categories are `circle`, `square` and `triangle`. Read it back with
    `get_annotations(path/'train.json')`. `size` is (height, width).
    """
    return _write_sample("make_coco_tiny", "coco_tiny", dest, lambda p: _write_coco(p, n_images, size, seed))


def _write_coco(path: Path, n_images: int, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = size
    (path / "train").mkdir(parents=True, exist_ok=True)
    cats = [{"id": c, "name": SHAPE_CODES[c].lower()} for c in range(1, len(SHAPE_CODES))]
    images: list = []
    annots: list = []
    for i in range(n_images):
        # Shapes drawn later cover earlier ones; keep them apart by retrying so every box stays visible.
        for _ in range(20):
            img, _, shapes = _shape_image(rng, h, w, int(rng.integers(1, 4)), 0.2, 0.4)
            if not _overlapping([b for _, b in shapes]):
                break
        fname = f"{i:06d}.jpg"
        img.save(path / "train" / fname, quality=92)
        images.append({"id": i, "file_name": fname, "height": h, "width": w})
        for cls, (x0, y0, x1, y1) in shapes:
            annots.append({"id": len(annots), "image_id": i, "category_id": cls,
                           "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    doc = {"images": images, "annotations": annots, "categories": cats}
    (path / "train.json").write_text(json.dumps(doc))


def _overlapping(boxes: list[tuple[int, int, int, int]]) -> bool:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                return True
    return False
