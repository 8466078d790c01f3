"""Blocks and DataLoaders factories for vision: images, masks, points and boxes.

`ImageBlock`, `MaskBlock`, `PointBlock`, `BBoxBlock` and `BBoxLblBlock` say how to make each element of an item;
`ImageDataLoaders` and `SegmentationDataLoaders` build whole `DataLoaders` in one call for the usual layouts
(folder per class, label in the file name, a DataFrame or CSV, plain lists).

>>> dls = ImageDataLoaders.from_folder(make_mnist_tiny(), item_tfms=Resize(28), bs=16)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import csv
import os
import re
import sys
import types
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tiers.data import (
    CategoryBlock,
    ColReader,
    ColSplitter,
    DataBlock,
    DataLoaders,
    GrandparentSplitter,
    IntToFloatTensor,
    MultiCategorize,
    MultiCategoryBlock,
    RandomSplitter,
    RegexLabeller,
    RegressionBlock,
    TransformBlock,
    get_image_files,
    image_extensions,
    parent_label,
)
from tiers.dispatch import is_listy, using_attr
from tiers.vision.core import PILBase, PILImage, PILMask
from tiers.vision.targets import (
    AddMaskCodes,
    BBoxLabeler,
    PointScaler,
    TensorBBoxCreate,
    TensorPointCreate,
    bb_pad,
)
from tiers.vision.verify import check_images, verified

if TYPE_CHECKING:
    import pandas as pd

# What `item_tfms=`/`batch_tfms=` take: a transform (any callable) or a list of them.
Tfms = Callable | Sequence[Callable] | None
# What `y_block=` takes: a block, or a function making one (`CategoryBlock`, `MultiCategoryBlock`...).
YBlock = TransformBlock | Callable[..., TransformBlock] | None

__all__ = ["ImageBlock", "MaskBlock", "PointBlock", "BBoxBlock", "BBoxLblBlock", "ImageDataLoaders",
           "SegmentationDataLoaders"]


def ImageBlock(cls: type[PILBase] = PILImage) -> TransformBlock:
    """Images read with `cls.create` (`PILImage` for RGB, `PILImageBW` for grey), turned into float batches."""
    return TransformBlock(type_tfms=cls.create, batch_tfms=IntToFloatTensor)


def MaskBlock(codes: Sequence[str] | None = None) -> TransformBlock:
    """Segmentation masks read with `PILMask.create`; `codes` names the classes (pixel value i is `codes[i]`)."""
    return TransformBlock(type_tfms=PILMask.create, item_tfms=AddMaskCodes(codes=codes), batch_tfms=IntToFloatTensor)


def PointBlock() -> TransformBlock:
    """Points (n, 2) in pixels (x, y), scaled to [-1, 1] by `PointScaler` so they follow every image transform."""
    return TransformBlock(type_tfms=TensorPointCreate(), item_tfms=PointScaler())


def BBoxBlock() -> TransformBlock:
    """Bounding boxes (n, 4) in pixels (x0, y0, x1, y1), scaled like points; batches pad the box count (`bb_pad`)."""
    return TransformBlock(type_tfms=TensorBBoxCreate(), item_tfms=PointScaler(), dls_kwargs={"before_batch": bb_pad})


def BBoxLblBlock(vocab: Sequence[str] | None = None, add_na: bool = True) -> TransformBlock:
    """The labels of the boxes of `BBoxBlock`; index 0 is the `#na#` label of padding boxes (`add_na`)."""
    return TransformBlock(type_tfms=MultiCategorize(vocab=vocab, add_na=add_na), item_tfms=BBoxLabeler())


def _check_label_func(label_func: Callable, where: str) -> None:
    # Lambdas cannot be pickled to worker processes where those are spawned (Windows, macOS): say so up front.
    if sys.platform == "win32" and isinstance(label_func, types.LambdaType) and label_func.__name__ == "<lambda>":
        raise ValueError(f"{where}: label_func is a lambda, which worker processes cannot receive on Windows; "
                         "define it with def at module level")


def _has_image(folder: Path) -> bool:
    "Whether `folder` holds an image file at any depth (stops at the first: a large dataset is not listed twice)."
    for _, _, files in os.walk(folder, followlinks=True):
        if any(os.path.splitext(f)[1].lower() in image_extensions for f in files):
            return True
    return False


def _col_name(df, c):
    "The name of column `c` of `df` when `c` is a position (an int that is not itself a column label)."
    if isinstance(c, int) and c not in df.columns and -df.shape[1] <= c < df.shape[1]:
        return df.columns[c]
    return c


def _first_file(item):
    "The image path of an item: itself, or the first element of a (file, label) pair."
    return item[0] if isinstance(item, tuple | list) else item


class _VerifyingLoaders(DataLoaders):
    "`from_dblock` with `verify`: every image is read once before the loaders are built (see `verified`)."

    @classmethod
    def from_dblock(cls, dblock: DataBlock, source: Any, path: str | os.PathLike = ".", bs: int = 64,
                    val_bs: int | None = None, shuffle: bool = True, device: Any = None, *,
                    verify: bool | str = False, **kwargs: Any) -> DataLoaders:
        """`DataLoaders.from_dblock` (same arguments); `verify=True` first checks that every image reads (raising
        `BadImagesError` naming the unreadable ones), `verify='drop'` leaves those out with a warning."""
        if verify not in (False, True, "drop"):
            raise ValueError(f"{cls.__name__}: verify={verify!r}; use False, True (refuse unreadable images) or "
                             "'drop' (leave them out with a warning)")
        if verify:
            drop, where = verify == "drop", f"{cls.__name__}(verify={verify!r})"
            get_items = dblock.get_items
            if get_items is not None and not isinstance(source, tuple):
                dblock = copy.copy(dblock)  # the caller's DataBlock keeps its own get_items
                dblock.get_items = verified(get_items, drop=drop)
            else:  # a list of files, or (files, labels) columns: check the files, keep the pairs together
                items = list(zip(*source)) if isinstance(source, tuple) else list(source)
                files = [_first_file(o) for o in items]
                kept = {str(f) for f in check_images(files, drop=drop, where=where)}  # raises, or warns and drops
                if len(kept) < len({str(f) for f in files}):
                    items = [o for o in items if str(_first_file(o)) in kept]
                    source = tuple(map(list, zip(*items))) if isinstance(source, tuple) else items
        return super().from_dblock(dblock, source, path=path, bs=bs, val_bs=val_bs, shuffle=shuffle, device=device,
                                   **kwargs)


class ImageDataLoaders(_VerifyingLoaders):
    """`DataLoaders` for image classification, built in one call from the common dataset layouts.

    Every factory takes `item_tfms`, `batch_tfms`, `img_cls` (`PILImage` or `PILImageBW`) and the loader arguments
    (`bs`, `val_bs`, `shuffle`, `device`, `num_workers`...), and `verify`: `True` reads every image once before
    building the loaders and raises `BadImagesError` naming the truncated or corrupt ones, `'drop'` leaves them out
    with a warning (default `False`: a bad file fails when its batch is built, with its name in the error).
    """

    @classmethod
    def from_folder(cls, path: str | os.PathLike, train: str = "train", valid: str = "valid",
                    valid_pct: float | None = None, seed: int | None = None, vocab: Sequence | None = None,
                    item_tfms: Tfms = None, batch_tfms: Tfms = None, img_cls: type[PILBase] = PILImage,
                    **kwargs: Any) -> DataLoaders:
        """Images in `path/train/<label>/` and `path/valid/<label>/` (ImageNet style); with `valid_pct`, all images
        under `path` split at random instead."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"ImageDataLoaders.from_folder: {path} is not a folder"
                                    f"{'' if path.exists() else ' (it does not exist)'}; pass the folder that holds "
                                    f"{train}/ and {valid}/ (or the images, with valid_pct=)")
        if valid_pct is None:
            for sub in (train, valid):
                if not (path / sub).is_dir():
                    found = sorted(p.name for p in path.iterdir() if p.is_dir())
                    if path.name in (train, valid):
                        hint = f" ({path} is the {path.name} folder itself: pass its parent, {path.parent})"
                    else:
                        hint = f" (its folders: {', '.join(found[:8]) or 'none'}{', ...' if len(found) > 8 else ''})"
                    raise FileNotFoundError(f"ImageDataLoaders.from_folder: no folder {path / sub}{hint}; pass "
                                            "train=/valid= with your folder names, or valid_pct= to split at random")
            for sub in (train, valid):  # else "empty validation set, use a larger valid_pct": wrong for folders
                if not _has_image(path / sub):
                    raise ValueError(f"ImageDataLoaders.from_folder: no images in {path / sub} (the {sub} folder "
                                     "holds no image files in its label folders); put images there, or pass "
                                     "valid_pct= to split all images under the path at random")
            splitter = GrandparentSplitter(train_name=train, valid_name=valid)
            get_items: Callable[..., Any] = partial(get_image_files, folders=[train, valid])
        else:
            splitter = RandomSplitter(valid_pct, seed=seed)
            get_items = get_image_files
        dblock = DataBlock(blocks=(ImageBlock(img_cls), CategoryBlock(vocab=vocab)), get_items=get_items,
                           splitter=splitter, get_y=parent_label, item_tfms=item_tfms, batch_tfms=batch_tfms)
        return cls.from_dblock(dblock, path, path=path, **kwargs)

    @classmethod
    def from_path_func(cls, path: str | os.PathLike, fnames: Sequence, label_func: Callable,
                       valid_pct: float = 0.2, seed: int | None = None, item_tfms: Tfms = None,
                       batch_tfms: Tfms = None, img_cls: type[PILBase] = PILImage, **kwargs: Any) -> DataLoaders:
        """Images `fnames`, labelled by `label_func(path_of_image)`, `valid_pct` of them for validation."""
        dblock = DataBlock(blocks=(ImageBlock(img_cls), CategoryBlock), splitter=RandomSplitter(valid_pct, seed=seed),
                           get_y=label_func, item_tfms=item_tfms, batch_tfms=batch_tfms)
        return cls.from_dblock(dblock, fnames, path=path, **kwargs)

    @classmethod
    def from_name_func(cls, path: str | os.PathLike, fnames: Sequence, label_func: Callable,
                       **kwargs: Any) -> DataLoaders:
        """Like `from_path_func`, `label_func` getting the file NAME (`'Seven_3.jpg'`)."""
        _check_label_func(label_func, "ImageDataLoaders.from_name_func")
        return cls.from_path_func(path, fnames, using_attr(label_func, "name"), **kwargs)

    @classmethod
    def from_path_re(cls, path: str | os.PathLike, fnames: Sequence, pat: str, **kwargs: Any) -> DataLoaders:
        """Labels from the first group of regular expression `pat` searched in the full path."""
        return cls.from_path_func(path, fnames, RegexLabeller(pat), **kwargs)

    @classmethod
    def from_name_re(cls, path: str | os.PathLike, fnames: Sequence, pat: str, **kwargs: Any) -> DataLoaders:
        """Labels from the first group of regular expression `pat` searched in the file name (in the whole path when
        `pat` has a `/` outside `[...]`, since a name has none: the paper's `r'/([^/]+)_\\d+.jpg$'` works as printed).

        >>> ImageDataLoaders.from_name_re(path, fnames, pat=r'^([^/]+)_\\d+.jpg$')  # doctest: +SKIP
        """
        re.compile(pat)  # a bad pattern fails here, not in the middle of building the datasets
        if "/" in re.sub(r"\[(?:\\.|[^\]])*\]", "", pat):
            # A file name holds no '/', so a pattern with one outside [...] is written for the path, as the
            # paper's r'/([^/]+)_\d+.jpg$' is: search it in the path (the name is its last part).
            return cls.from_path_re(path, fnames, pat, **kwargs)
        return cls.from_name_func(path, fnames, RegexLabeller(pat), **kwargs)

    @classmethod
    def from_df(cls, df: pd.DataFrame, path: str | os.PathLike = ".", valid_pct: float = 0.2,
                seed: int | None = None, fn_col: int | str = 0, folder: str | None = None, suff: str = "",
                label_col: int | str | list = 1, label_delim: str | None = None, y_block: YBlock = None,
                valid_col: int | str | None = None, item_tfms: Tfms = None, batch_tfms: Tfms = None,
                img_cls: type[PILBase] = PILImage, **kwargs: Any) -> DataLoaders:
        """Images named in column `fn_col` of `df` (relative to `path/folder`, plus `suff`), labels in `label_col`.

        Several label columns or a `label_delim` mean multi-label; `valid_col` (booleans) chooses the validation
        rows instead of a random `valid_pct`.
        """
        pref = f"{Path(path) if folder is None else Path(path) / folder}{os.path.sep}"
        verify = kwargs.pop("verify", False)
        if verify:  # the files are named in a column: check them here, dropping rows when asked
            col = df[fn_col] if not isinstance(fn_col, int) or fn_col in df.columns else df.iloc[:, fn_col]
            fns = [f"{pref}{v}{suff}" for v in col]
            kept = {str(f) for f in check_images(fns, drop=verify == "drop",
                                                 where=f"{cls.__name__}.from_df(verify={verify!r})")}
            df = df[[f in kept for f in fns]]
        # Positions become the columns' names, so an error about a column (a missing label...) names it.
        fn_col = _col_name(df, fn_col)
        labels = cast(list, label_col)  # several columns when is_listy
        label_col = [_col_name(df, c) for c in labels] if is_listy(label_col) else _col_name(df, label_col)
        if y_block is None:
            multi = (is_listy(label_col) and len(label_col) > 1) or label_delim is not None
            y_block = MultiCategoryBlock if multi else CategoryBlock
        splitter = RandomSplitter(valid_pct, seed=seed) if valid_col is None else ColSplitter(valid_col)
        dblock = DataBlock(blocks=(ImageBlock(img_cls), y_block), get_x=ColReader(fn_col, pref=pref, suff=suff),
                           get_y=ColReader(label_col, label_delim=label_delim), splitter=splitter,
                           item_tfms=item_tfms, batch_tfms=batch_tfms)
        return cls.from_dblock(dblock, df, path=path, **kwargs)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, csv_fname: str = "labels.csv",
                 header: int | Sequence[int] | str | None = "infer", delimiter: str | None = None,
                 quoting: int = csv.QUOTE_MINIMAL, encoding: str | None = None, **kwargs: Any) -> DataLoaders:
        """`from_df` on the CSV file `path/csv_fname` (image names relative to `path`; text in `encoding`, default
        UTF-8)."""
        import pandas as pd

        fn = Path(path) / csv_fname
        if not fn.is_file():
            raise FileNotFoundError(f"ImageDataLoaders.from_csv: no CSV file {fn}; check path= and csv_fname=")
        kw = {} if delimiter is None else {"delimiter": delimiter}  # None would make pandas sniff (slow, warns)
        try:
            df = pd.read_csv(fn, header=header, quoting=quoting, encoding=encoding, **kw)
        except UnicodeDecodeError as e:
            raise ValueError(f"ImageDataLoaders.from_csv: {fn} is not valid {encoding or 'utf-8'} text (byte "
                             f"{e.object[e.start:e.start + 1]!r} at position {e.start}); pass the file's encoding, "
                             "e.g. encoding='latin-1'.") from e
        return cls.from_df(df, path=path, **kwargs)

    @classmethod
    def from_lists(cls, path: str | os.PathLike, fnames: Sequence, labels: Sequence, valid_pct: float = 0.2,
                   seed: int | None = None, y_block: YBlock = None, item_tfms: Tfms = None,
                   batch_tfms: Tfms = None, img_cls: type[PILBase] = PILImage, **kwargs: Any) -> DataLoaders:
        """Images `fnames` with `labels` (one per image): lists of labels mean multi-label, floats regression."""
        if len(fnames) != len(labels):
            raise ValueError(f"ImageDataLoaders.from_lists: {len(fnames)} file names but {len(labels)} labels; "
                             "give one label per image")
        if y_block is None:
            first = labels[0]
            if is_listy(first) and len(first) > 1:
                y_block = MultiCategoryBlock
            elif isinstance(first, float):
                y_block = RegressionBlock
            else:
                y_block = CategoryBlock
        dblock = DataBlock.from_columns(blocks=(ImageBlock(img_cls), y_block),
                                        splitter=RandomSplitter(valid_pct, seed=seed), item_tfms=item_tfms,
                                        batch_tfms=batch_tfms)
        return cls.from_dblock(dblock, (list(fnames), list(labels)), path=path, **kwargs)


class SegmentationDataLoaders(_VerifyingLoaders):
    """`DataLoaders` for segmentation: images and their masks (`verify=` as for `ImageDataLoaders`)."""

    @classmethod
    def from_label_func(cls, path: str | os.PathLike, fnames: Sequence, label_func: Callable,
                        valid_pct: float = 0.2, seed: int | None = None, codes: Sequence[str] | None = None,
                        item_tfms: Tfms = None, batch_tfms: Tfms = None, img_cls: type[PILBase] = PILImage,
                        **kwargs: Any) -> DataLoaders:
        """Images `fnames`, the mask of each at `label_func(image_path)`; `codes` names the mask's classes.

        >>> SegmentationDataLoaders.from_label_func(path, fnames, lambda o: path/'labels'/f'{o.stem}_P{o.suffix}',
        ...                                         codes=codes)  # doctest: +SKIP
        """
        dblock = DataBlock(blocks=(ImageBlock(img_cls), MaskBlock(codes=codes)),
                           splitter=RandomSplitter(valid_pct, seed=seed), get_y=label_func, item_tfms=item_tfms,
                           batch_tfms=batch_tfms)
        return cls.from_dblock(dblock, fnames, path=path, **kwargs)
