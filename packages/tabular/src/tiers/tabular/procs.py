"""The standard procs of `TabularPandas`: `Categorify`, `FillMissing` and `Normalize`, each learning its state from
the training rows and applying it, vectorised column by column, to every row."""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Sequence
from enum import Enum

import numpy as np
import pandas as pd

from tiers.data.categorical import CategoryMap
from tiers.data.transforms import Normalize
from tiers.tabular.core import Tabular, TabularPandas, TabularProc, _Subset

__all__ = ["Categorify", "FillMissing", "FillStrategy", "Normalize", "warn_unseen"]

_NA_CLASSES = ["#na#", False, True]


def _kind(v: object) -> str:
    "'bool', 'number', 'text' or the type's name: what a value is, for matching across dtypes."
    if isinstance(v, bool | np.bool_):
        return "bool"
    if isinstance(v, numbers.Number):
        return "number"
    return "text" if isinstance(v, str) else type(v).__name__


def _key(v: object) -> tuple | None:
    """A dtype-free form of `v`: a number (or text that reads as one: '3', '3.0', ' 3') by its value, with whole
    numbers as ints (so 3, 3.0, '3' and '3.0' agree and '3.5' does not), a bool (or 'True'/'False') by its truth;
    None for anything else (words, dates), which is only ever matched exactly."""
    if isinstance(v, bool | np.bool_):
        return ("bool", bool(v))
    if isinstance(v, str):
        t = v.strip()
        if t in ("True", "False"):
            return ("bool", t == "True")
        try:
            return ("num", int(t))  # exact for ids beyond 2**53
        except ValueError:
            pass
        try:
            v = float(t)
        except ValueError:
            return None
    if isinstance(v, numbers.Integral):
        return ("num", int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if not math.isfinite(f):
            return None
        return ("num", int(f)) if f.is_integer() else ("num", f)
    return None


def _retyped(values: Sequence, vocab: CategoryMap) -> dict:
    """The values among `values` (not in `vocab`) that are a class of `vocab` written with another type: ints read as
    text ('3' for 3), text read as numbers (3 for '3'), floats for their text form: value -> its index in `vocab`.
    A value is only matched to a class of another kind (text is never matched to other text), and never to a class
    that shares its key with another class (`'3'` and `3` both in the vocab)."""
    keys = {v: k for v in values if (k := _key(v)) is not None}
    if not keys:  # words, dates: nothing another type could spell (and no pass over a large vocab)
        return {}
    found: dict[tuple, list[int]] = {}
    for i, o in enumerate(vocab):
        if i:  # 0 is '#na#'
            k = _key(o)
            if k is not None:
                found.setdefault(k, []).append(i)
    res = {}
    for v, k in keys.items():
        hit = found.get(k, [])
        if len(hit) == 1 and _kind(vocab[hit[0]]) != _kind(v):
            res[v] = hit[0]
    return res


def _codes(col: pd.Series, vocab: CategoryMap) -> tuple[np.ndarray, list]:
    """Codes of `col` in `vocab` (which starts with '#na#'): missing values get 0, and so do values that are not
    classes, unless they are a class written with another type (`_retyped`); also returns those unseen values."""
    cats = pd.Index(list(vocab)[1:])
    if isinstance(col.dtype, pd.CategoricalDtype):
        # Map each category once, then the codes: no hashing of the (many) values themselves.
        lut = np.append(cats.get_indexer(col.cat.categories), -1)
        codes = lut[col.cat.codes.to_numpy()]
    else:
        codes = cats.get_indexer(col)
    codes = codes + 1
    unseen: list = []
    miss = (codes == 0) & col.notna().to_numpy()
    if miss.any():
        sub = col[miss].astype(object)
        vals = list(pd.unique(sub))
        lut2 = _retyped(vals, vocab)
        if lut2:
            codes[miss] = sub.map(lut2).fillna(0).to_numpy(np.int64)
        unseen = [v.item() if isinstance(v, np.generic) else v for v in vals if v not in lut2]  # 998, not np.int64
    n = len(vocab)
    dt = np.int8 if n < 127 else np.int16 if n < 32767 else np.int32 if n < 2**31 - 1 else np.int64
    return codes.astype(dt, copy=False), unseen


def _user_stacklevel() -> int:
    "The `stacklevel` for a warning raised by this function's caller that points at the first line outside tiers."
    f, level = sys._getframe(1), 1
    while f.f_back is not None and f.f_globals.get("__name__", "").startswith("tiers."):
        f, level = f.f_back, level + 1
    return level


def warn_unseen(unknown: dict[str, list], note: str = "", changed: dict[str, str] | None = None) -> None:
    """Warn once about values that are not classes of the training rows, so they are encoded as '#na#' and read
    through its untrained embedding: `unknown` is column -> those values (a few are named, with their count),
    `changed` column -> why (e.g. the dtype differs from training), `note` what that means for the model.
    Categorify calls it for every column it encodes; collab's unknown users and items are said by it too."""
    if not unknown:
        return
    changed = changed or {}
    parts = []
    for c, v in unknown.items():
        shown = [str(o) if isinstance(o, pd.Timestamp) else o for o in v[:10]]
        why = f" ({changed[c]})" if c in changed else ""
        parts.append(f"{c}: {len(v)} unknown {shown}{' ...' if len(v) > 10 else ''}{why}")
    note = note or "the model reads them through the untrained '#na#' embedding"
    warnings.warn(f"Categorify: values not in the training rows, encoded as '#na#' ({note}): {'; '.join(parts)}.",
                  UserWarning, stacklevel=_user_stacklevel())


class Categorify(TabularProc):
    """Replace each categorical column by integer codes: 0 is `'#na#'` (missing values, and values not seen in the
    training rows, which are warned about naming the column and the values), then the training values (sorted; for
    a pandas Categorical, all its declared categories in their order, as fastai). A value written with another
    type than in training (`'3'` for 3, 3 for `'3'`, from a CSV or JSON) is read as that class. `classes[col]` is
    the vocabulary of `col` (also at `to.classes`).

    >>> from tiers.tabular import TabularPandas
    >>> df = pd.DataFrame({"c": ["b", "a", None]})
    >>> to = TabularPandas(df, Categorify, cat_names="c")
    >>> to.items["c"].tolist(), list(to.classes["c"])
    ([2, 1, 0], ['#na#', 'a', 'b'])
    """

    order = 1

    def __init__(self) -> None:
        self.classes: dict[str, CategoryMap] = {}

    def setups(self, to) -> None:
        declared: set[str] = getattr(to, "_declared_cats", set())
        for c in to.cat_names:
            if c in to.classes:  # encoded by another proc (FillMissing's `_na` columns)
                continue
            col = to.train_col(c)
            if isinstance(col.dtype, pd.CategoricalDtype):
                # a Categorical of the user's keeps every declared level, in order (fastai: col.cat.categories);
                # text that reduce_memory made categorical keeps the values seen in training only
                vocab = CategoryMap(col, add_na=True, strict=c not in declared)
            else:
                vocab = CategoryMap(col.dropna().unique(), add_na=True)
            self.classes[c] = vocab
        to.classes.update(self.classes)

    def encodes(self, to) -> None:
        unknown, changed = {}, {}
        for c, vocab in self.classes.items():
            if c in to.items.columns:
                col = to.items[c]
                to.items[c], unseen = _codes(col, vocab)
                if unseen:
                    unknown[c] = unseen
                    if not (to.items[c].to_numpy() != 0).any():
                        was = sorted({_kind(o) for o in list(vocab)[1:]})
                        now = sorted({_kind(o) for o in unseen})
                        if was != now:  # e.g. read from a CSV as text where the training column held numbers
                            tr = sorted({type(o).__name__ for o in list(vocab)[1:]})
                            new = sorted({type(o).__name__ for o in unseen})
                            changed[c] = (f"every value of the column; the training values are {'/'.join(tr)} "
                                          f"({', '.join(map(repr, list(vocab)[1:4]))}...), these are "
                                          f"{'/'.join(new)}: convert the column to the training type")
        warn_unseen(unknown, getattr(to, "unseen_note", ""), changed)

    def decodes(self, df: pd.DataFrame) -> pd.DataFrame:
        for c, vocab in self.classes.items():
            if c in df.columns:
                df[c] = np.asarray(list(vocab), dtype=object)[df[c].to_numpy(np.int64)]
        return df

    def __getitem__(self, c: str) -> CategoryMap:
        return self.classes[c]

    def __repr__(self) -> str:
        return f"Categorify({ {c: len(v) for c, v in self.classes.items()} })"


class FillStrategy(Enum):
    """How `FillMissing` chooses the value for missing entries: the training `median`, the most common value
    (`mode`, also called `common`), or a `constant` (`fill_vals[col]`, default 0)."""

    median = "median"
    common = "common"
    mode = "mode"  # fastai's name for `common`
    constant = "constant"


class FillMissing(TabularProc):
    """Fill missing values of continuous columns with a value learned from the training rows (`fill_strategy`:
    median, most common, or constant `fill_vals`), and, when `add_col`, add a categorical `<col>_na` column saying
    which were missing, only for columns that had missing training values. A column complete in training but with
    missing values in new data is filled the same way, with a warning (the model has no `_na` column for it).

    >>> from tiers.tabular import TabularPandas
    >>> df = pd.DataFrame({"x": [1.0, None, 3.0]})
    >>> to = TabularPandas(df, FillMissing, cont_names="x")
    >>> to.items["x"].tolist(), to.cat_names
    ([1.0, 2.0, 3.0], ['x_na'])
    """

    order = 1

    def __init__(self, fill_strategy: FillStrategy | str = FillStrategy.median, add_col: bool = True,
                 fill_vals: dict | None = None):
        self.fill_strategy = FillStrategy(fill_strategy.value if isinstance(fill_strategy, FillStrategy)
                                          else fill_strategy)
        self.add_col, self.fill_vals = add_col, dict(fill_vals or {})
        self.na_dict: dict[str, float] = {}
        self.fill_all: dict[str, float] = {}

    def _value(self, col: pd.Series, name: str):
        if self.fill_strategy is FillStrategy.constant:
            return self.fill_vals.get(name, 0)
        if self.fill_strategy in (FillStrategy.common, FillStrategy.mode):
            return col.mode(dropna=True).iloc[0]
        return col.median()

    def setups(self, to) -> None:
        for c in to.cont_names:
            col = to.train_col(c)
            self.fill_all[c] = self._value(col, c)
            if col.isna().any():
                self.na_dict[c] = self.fill_all[c]
        if self.add_col:
            for c in self.na_dict:
                n = f"{c}_na"
                if n not in to.cat_names:
                    to.cat_names = [*to.cat_names, n]
                to.classes[n] = CategoryMap(_NA_CLASSES, sort=False)

    def encodes(self, to) -> None:
        df = to.items
        late = []
        # With a Categorify, `<col>_na` holds its codes (1 False, 2 True, after '#na#'); alone, booleans (fastai).
        coded = any(isinstance(p, Categorify) for p in getattr(to, "procs", ()))
        for c, v in self.fill_all.items():
            if c not in df.columns:
                continue
            na = df[c].isna()
            any_na = bool(na.any())
            if c in self.na_dict:
                if self.add_col:
                    df[f"{c}_na"] = na.to_numpy().astype(np.int8) + 1 if coded else na.to_numpy()
                if any_na:
                    df[c] = df[c].fillna(v)
            elif any_na:
                late.append(c)
                df[c] = df[c].fillna(v)
        if late:
            warnings.warn(f"FillMissing: columns {late} had no missing values in the training rows but have some "
                          f"here; they were filled with the training {self.fill_strategy.value} values "
                          f"({ {c: self.fill_all[c] for c in late} }) and get no `_na` indicator (the model has none).",
                          stacklevel=4)

    def decodes(self, df: pd.DataFrame) -> pd.DataFrame:
        for c in self.na_dict:
            n = f"{c}_na"
            if self.add_col and n in df.columns and not pd.api.types.is_bool_dtype(df[n]):
                df[n] = np.asarray(_NA_CLASSES, dtype=object)[df[n].to_numpy(np.int64)]
        return df


# ---- Normalize ------------------------------------------------------------------------------------------------
# One `Normalize` for every kind of data, as in fastai: the class is data's (images: `Normalize.from_stats(...)` in
# `batch_tfms`), and the tabular behaviour is registered on it here, dispatched on the type of what it is given
# (a `TabularPandas` or a DataFrame). So `procs=[Normalize]` and `batch_tfms=Normalize` name the same class, whatever
# the order of the star imports.

_EPS = 1e-7


def _train_col(to: Tabular, c: str) -> pd.Series:
    # The tabular `setups` dispatches on `Tabular`, so a row subset (`to.train`) reaches it too: its training rows
    # are its TabularPandas's. Any other `Tabular` has no training rows to learn from.
    root = to.parent if isinstance(to, _Subset) else to
    if not isinstance(root, TabularPandas):
        raise TypeError(f"Normalize.setup: got a {type(to).__name__}, not a TabularPandas, so there are no training "
                        "rows to learn the means and stds from; pass a TabularPandas (TabularPandas(df, "
                        "procs=[Normalize], cont_names=[...])).")
    return root.train_col(c)


def _int_col(dt: object) -> bool:
    return pd.api.types.is_integer_dtype(dt) and not pd.api.types.is_extension_array_dtype(dt)


@Normalize  # type: ignore[arg-type]  # the Transform metaclass registers the function on the class; mypy sees a constructor call
def setups(self, to: Tabular):
    """Learn `means` and `stds` (population std, ddof=0, plus 1e-7, as fastai) of the continuous columns from the
    training rows."""
    self.means, self.stds = {}, {}
    self.int_cols = set()  # integer columns decode back to integers (an age is 46, not 45.999998)
    self.whole_cols = set()  # float columns of whole numbers (integers with a NaN) decode to whole numbers too
    for c in to.cont_names:
        col = _train_col(to, c).to_numpy(np.float64, na_value=np.nan)
        if _int_col(to.items[c].dtype):
            self.int_cols.add(c)
        elif np.isfinite(col).any() and np.array_equal(col[np.isfinite(col)], np.rint(col[np.isfinite(col)])):
            self.whole_cols.add(c)
        self.means[c] = float(np.nanmean(col))
        self.stds[c] = float(np.nanstd(col, ddof=0)) + _EPS


def _norm_frame(self, df: pd.DataFrame) -> None:
    if getattr(self, "means", None) is None:
        raise ValueError("Normalize: not set up on tabular data yet (no `means`); use it in TabularPandas(procs=...) "
                         "or call setup(to) on a TabularPandas first.")
    for c, m in self.means.items():
        if c in df.columns:
            df[c] = ((df[c].to_numpy(np.float32, na_value=np.nan) - np.float32(m)) /
                     np.float32(self.stds[c])).astype(np.float32, copy=False)


def _denorm_frame(self, df: pd.DataFrame) -> pd.DataFrame:
    for c, m in getattr(self, "means", {}).items():
        if c in df.columns:
            v = df[c].to_numpy(np.float64) * self.stds[c] + m
            ints = c in getattr(self, "int_cols", ())
            # int64, not the stored (maybe downcast) dtype: a decoded prediction input may lie outside its range
            if ints and np.isfinite(v).all():
                v = np.rint(v).astype(np.int64)
            elif ints or c in getattr(self, "whole_cols", ()):
                # float32 storage noise removed (16.0, not 16.000000055); a real fraction (a filled median of
                # 38.5) and NaN stay as they are
                r = np.rint(v)
                v = np.where(np.abs(v - r) <= 1e-5 * np.maximum(1.0, np.abs(v)), r, v)
            df[c] = v
    return df


@Normalize
def encodes(self, to: Tabular):
    "Standardise the continuous columns of `to` in place (float32); returns `to`."
    _norm_frame(self, to.items)
    return to


@Normalize  # type: ignore[no-redef]  # one function per type (dispatched)
def encodes(self, df: pd.DataFrame):  # noqa: F811
    "A standardised copy of the DataFrame `df` (its continuous columns)."
    df = df.copy()
    _norm_frame(self, df)
    return df


@Normalize
def decodes(self, to: Tabular):
    "A copy of `to` with the continuous columns mapped back to their original scale."
    res = to.copy()
    res.items = _denorm_frame(self, res.items)
    return res


@Normalize  # type: ignore[no-redef]  # one function per type (dispatched)
def decodes(self, df: pd.DataFrame):  # noqa: F811
    "`df` (processed values) with the continuous columns mapped back to their original scale."
    return _denorm_frame(self, df.copy())
