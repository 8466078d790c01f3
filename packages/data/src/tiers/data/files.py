"""Finding items on disk (`get_files` and friends) and labelling file paths (`parent_label`, `RegexLabeller`)."""

import mimetypes
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from tiers.dispatch import L, Path

__all__ = ["get_files", "FileGetter", "image_extensions", "get_image_files", "ImageGetter", "get_text_files",
           "parent_label", "RegexLabeller"]

# `extensions` and `folders` arguments: one name, several, or None (all)
_Names = str | Iterable[str] | None
_Folders = str | os.PathLike | Iterable[str | os.PathLike] | None

image_extensions: set[str] = {k for k, v in mimetypes.types_map.items() if v.startswith("image/")} | {
    ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}


def _norm_exts(extensions: _Names) -> set[str] | None:
    if extensions is None:
        return None
    if isinstance(extensions, str):
        extensions = [extensions]
    return {(e if e.startswith(".") else "." + e).lower() for e in extensions}


def _files_in(p: Path, names: Iterable[str], exts: set[str] | None) -> list[Path]:
    return [p / f for f in sorted(names)
            if not f.startswith(".") and (exts is None or os.path.splitext(f)[1].lower() in exts)]


def get_files(path: str | os.PathLike, extensions: _Names = None, recurse: bool = True, folders: _Folders = None,
              followlinks: bool = True) -> L:
    """All files under `path` with one of the `extensions` (case-insensitive; all files when None), searching
    subfolders when `recurse` (only the top-level subfolders named in `folders`, when given, plus the top level itself
    if `folders` holds "."). Hidden files and
    folders are skipped. The result is sorted, so it is the same on every file system.

    >>> get_files("data", extensions=[".csv"])   # doctest: +SKIP
    (#2) [Path('data/a.csv'), Path('data/sub/b.csv')]
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"get_files: {path} is not a folder (it {'is a file' if path.exists() else 'does not exist'}).")
    exts = _norm_exts(extensions)
    folders = [folders] if isinstance(folders, str | os.PathLike) else list(folders or [])
    folders = [str(f) for f in folders]
    if not recurse:
        names = [e.name for e in os.scandir(path) if e.is_file()]
        return L(_files_in(path, names, exts))
    res = []
    for i, (root, dirs, files) in enumerate(os.walk(path, followlinks=followlinks)):
        # Pruning `dirs` in place tells os.walk which folders to enter; sorting it fixes the visiting order.
        keep = [d for d in dirs if not d.startswith(".") and (i != 0 or not folders or d in folders)]
        dirs[:] = sorted(keep)
        if i == 0 and folders and "." not in folders:
            continue  # with `folders`, files at the top level are left out unless "." is one of them
        res += _files_in(Path(root), files, exts)
    return L(res)


def FileGetter(suf: str = "", extensions: _Names = None, recurse: bool = True, folders: _Folders = None) -> Callable:
    "A function that returns `get_files(path/suf, extensions, recurse, folders)` for the `path` it gets."

    def _inner(o, extensions=extensions, recurse=recurse, folders=folders):
        return get_files(Path(o) / suf, extensions, recurse, folders)

    return _inner


def get_image_files(path: str | os.PathLike, recurse: bool = True, folders: _Folders = None) -> L:
    "All image files under `path` (by extension; see `image_extensions`)."
    return get_files(path, extensions=image_extensions, recurse=recurse, folders=folders)


def ImageGetter(suf: str = "", recurse: bool = True, folders: _Folders = None) -> Callable:
    "A function that returns the image files under `path/suf` for the `path` it gets."

    def _inner(o, recurse=recurse, folders=folders):
        return get_files(Path(o) / suf, image_extensions, recurse, folders)

    return _inner


def get_text_files(path: str | os.PathLike, recurse: bool = True, folders: _Folders = None) -> L:
    "All `.txt` files under `path`."
    return get_files(path, extensions=[".txt"], recurse=recurse, folders=folders)


def parent_label(o: Any) -> str:
    "The name of the folder holding the file `o` (`pets/cat/1.jpg` -> `cat`)."
    # `o: Any`, not `str | PathLike`: used as a getter, this function becomes a Transform that dispatches on its first
    # annotation, so a narrower one would pass other items through unchanged (as labels) instead of failing.
    return Path(o).parent.name


class RegexLabeller:
    """Label an item with the first group of the regular expression `pat` found in (or, with `match=True`, matched at
    the start of) its string form; path separators are normalised to `/` first.

    >>> RegexLabeller(r"^(.*)_\\d+\\.jpg$")("images/great_pyrenees_12.jpg".split("/")[-1])
    'great_pyrenees'
    """

    def __init__(self, pat: str, match: bool = False):
        self.pat, self.match = pat, match
        self.matcher = re.compile(pat).match if match else re.compile(pat).search

    def __call__(self, o) -> str:
        s = str(o).replace(os.sep, "/")
        res = self.matcher(s)
        if res is None:
            raise ValueError(f"RegexLabeller: the pattern {self.pat!r} was not found in {s!r}; check the pattern "
                             f"against this item{' (match=True anchors it at the start)' if self.match else ''}.")
        if not res.groups():
            raise ValueError(f"RegexLabeller: the pattern {self.pat!r} has no group; put the label in parentheses.")
        return res.group(1)

    def __repr__(self) -> str:
        return f"RegexLabeller({self.pat!r}, match={self.match})"
