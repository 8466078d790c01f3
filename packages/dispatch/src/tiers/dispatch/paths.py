"""`Path`: a `pathlib.Path` with the conveniences fastai patches onto `pathlib.Path` (`ls`, `mk_write`, `read_json`,
`relpath`), as a subclass, so nothing foreign is patched.

tiers returns this `Path` where fastai returns a patched one (`untar_data`, `get_files`...), and the `all` star
imports export it under the name `Path`, so `path.ls()` works in listings as printed. A plain `pathlib.Path` built
by other code has no `ls`: wrap it, `Path(p).ls()`.
"""

import json
import os
import pathlib
from collections.abc import Iterable
from typing import Any

from tiers.dispatch.foundation import L

__all__ = ["Path"]


class Path(type(pathlib.Path())):  # type: ignore[misc]  # the concrete class (PosixPath/WindowsPath): pathlib.Path can't be subclassed on 3.10/3.11
    """A `pathlib.Path` that can also list itself (`ls`), write a file making its folder (`mk_write`), read JSON
    (`read_json`) and give itself relative to another folder (`relpath`). Everything made from it (`p / "x"`,
    `p.parent`, `p.iterdir()`) is one too. It pickles as a plain `pathlib.Path`, so saved objects need no tiers.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "b.txt").mk_write("b"); (d / "a.csv").mk_write("a")
    >>> [p.name for p in d.ls()], [p.name for p in d.ls(file_exts=".csv")]
    (['a.csv', 'b.txt'], ['a.csv'])

    As in fastai, setting the class attribute `Path.BASE_PATH` to a folder makes the repr of every path under it
    relative to it (`Path('train/3')`), which keeps listings short; only the repr changes, the path stays absolute.
    """

    BASE_PATH: "str | os.PathLike[str] | None" = None

    def ls(self, n_max: int | None = None, file_type: str | None = None,
           file_exts: str | Iterable[str] | None = None) -> "L":
        """The entries of this folder as an `L` of `Path`s, sorted by name; at most `n_max` of them, only those
        with a suffix in `file_exts` (a string or a list) or a MIME type starting with `file_type` (`"image"`)."""
        if not self.is_dir():
            raise NotADirectoryError(f"Path.ls: {str(self)!r} is not a folder" +
                                     ("" if self.exists() else " (it does not exist)") + ".")
        exts = {file_exts} if isinstance(file_exts, str) else set(file_exts or ())
        if file_type:
            import mimetypes

            exts |= {k for k, v in mimetypes.types_map.items() if v.startswith(file_type + "/")}
        res = sorted(o for o in self.iterdir() if not exts or o.suffix.lower() in exts)
        return L(res if n_max is None else res[:n_max])

    def mk_write(self, data: str, encoding: str | None = "utf8", errors: str | None = None,
                 mode: int | None = None) -> None:
        "Write the text `data` to this file, creating its parent folders first (and `chmod`ing it to `mode` if given)."
        self.parent.mkdir(parents=True, exist_ok=True)
        self.write_text(data, encoding=encoding, errors=errors)
        if mode is not None:
            os.chmod(self, mode)

    def read_json(self, encoding: str | None = "utf8") -> Any:
        "The JSON document this file holds."
        return json.loads(self.read_text(encoding=encoding))

    def relpath(self, start: str | os.PathLike[str] | None = None) -> "Path":
        "This path relative to `start` (default: the current folder), `..` allowed."
        return type(self)(os.path.relpath(self, pathlib.Path.cwd() if start is None else start))

    def __repr__(self) -> str:
        base = Path.BASE_PATH  # read on this class: a subclass sees the same setting, as fastai's patch does
        shown: pathlib.PurePath = self
        if base is not None:
            try:
                shown = self.relative_to(base)
            except ValueError:  # not under BASE_PATH (or relative while BASE_PATH is absolute): the full path
                pass
        return f"Path({shown.as_posix()!r})"

    def __reduce__(self):
        return (pathlib.Path, (str(self),))
