"""Getters that read part of an item: `ItemGetter`, `AttrGetter` and `ColReader` (DataFrame rows, namedtuples)."""

import os
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from tiers.dispatch import L
from tiers.pipeline import ItemTransform

__all__ = ["ItemGetter", "AttrGetter", "ColReader", "MissingColumnError"]


class MissingColumnError(KeyError):
    "A row lacks the column a `ColReader` reads (a KeyError whose message prints as written)."

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ItemGetter(ItemTransform):
    """Return `item[i]` (the whole item is indexed, tuples included).

    >>> ItemGetter(1)(("img.png", "cat"))
    'cat'
    """

    _retain = False

    def __init__(self, i: Any):
        self.i = i

    def encodes(self, x):
        return x[self.i]

    def __repr__(self) -> str:
        return f"ItemGetter({self.i!r})"


class AttrGetter(ItemTransform):
    "Return `getattr(item, nm, default)`."

    _retain = False

    def __init__(self, nm: str, default: Any = None):
        self.nm, self.default = nm, default

    def encodes(self, x):
        return getattr(x, self.nm, self.default)

    def __repr__(self) -> str:
        return f"AttrGetter({self.nm!r})"


_SEPS = {"/", os.path.sep}  # a prefix ending with one names a folder


class ColReader(ItemTransform):
    """Read column(s) `cols` (names or positions) of a row: a pandas Series, a namedtuple, a dict or a tuple. A value
    gets the prefix `pref` and suffix `suff` when given (a `Path` prefix ends with a separator; under a folder prefix
    an absolute path keeps its own folder, as `Path(pref) / value` would), or is split on `label_delim` into a list
    of labels. Several columns give an `L` of values.

    >>> import pandas as pd
    >>> row = pd.DataFrame({"name": ["a.png"], "tags": ["cat dog"]}).iloc[0]
    >>> ColReader("name", pref="images/")(row), ColReader("tags", label_delim=" ")(row)
    ('images/a.png', ['cat', 'dog'])
    """

    _retain = False

    def __init__(self, cols: Hashable | Iterable[Hashable], pref: str | Path = "", suff: str = "",
                 label_delim: str | None = None):
        self.cols = L(cols)
        self.pref = str(pref) + os.path.sep if isinstance(pref, Path) else pref
        self.suff, self.label_delim = suff, label_delim

    def _read(self, r, c):
        if isinstance(c, int) and not isinstance(r, dict):
            return r.iloc[c] if hasattr(r, "iloc") else r[c]
        if c in getattr(r, "_fields", ()):
            return getattr(r, c)
        try:
            return r[c]
        except (KeyError, IndexError, TypeError):
            cols = list(getattr(r, "index", getattr(r, "_fields", getattr(r, "keys", lambda: [])())))
            raise MissingColumnError(f"ColReader: the row has no column {c!r}; its columns are {cols}.") from None

    def _do_one(self, r, c):
        o = self._read(r, c)
        if not self.pref and not self.suff and self.label_delim is None:
            return o
        if self.label_delim is None:
            if self.pref and self.pref[-1] in _SEPS and isinstance(o, str | os.PathLike) and os.path.isabs(o):
                # A column of absolute paths (Kaggle CSVs) under a folder prefix (`from_df`'s `path`): joined as
                # paths, the absolute one wins (gluing gave './/root/...', every file "not found")
                return f"{os.fspath(o)}{self.suff}"
            return f"{self.pref}{o}{self.suff}"
        if not isinstance(o, str):  # a missing value (NaN) means no labels
            return []
        # Stray delimiters ('a  b', 'b ') leave empty pieces: not a class (they would train an output on "has a
        # trailing space").
        return [x for x in o.split(self.label_delim) if x.strip()]

    def encodes(self, r):
        if len(self.cols) == 1:
            return self._do_one(r, self.cols[0])
        return L(self._do_one(r, c) for c in self.cols)

    def __repr__(self) -> str:
        return f"ColReader({list(self.cols)!r})"
