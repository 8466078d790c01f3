"""`TabularPandas`: a DataFrame with named categorical, continuous and target columns, processed by procs whose
state is learned on the training rows only and then applied to every row (validation, test, inference)."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import torch

from tiers.data.categorical import (
    Categorize,
    CategoryMap,
    EncodedMultiCategorize,
    MultiCategorize,
    RegressionSetup,
)
from tiers.dispatch import L, camel2snake
from tiers.pipeline import Transform

if TYPE_CHECKING:
    from tiers.data.block import TransformBlock
    from tiers.tabular.data import TabDataLoader, TabularDataLoaders

__all__ = ["TabularPandas", "Tabular", "TabularProc", "Procs", "check_columns", "need_frame", "read_csv", "load_pandas"]


def _listify(o: Any) -> list:
    if o is None:
        return []
    if isinstance(o, str) or not isinstance(o, Iterable):
        return [o]
    return list(o)


def _writable(a: np.ndarray) -> np.ndarray:
    "`a` as a C-contiguous writable array (pandas may hand out read-only views; torch warns on those)."
    return np.require(a, requirements=("C", "W"))


_F32_MAX = float(np.finfo(np.float32).max)


def _positions(idx: Any, n: int, where: str, what: str, df: pd.DataFrame | None = None) -> np.ndarray:
    """`idx` as int64 row positions of a frame of `n` rows: positions (0-based, like iloc) or a boolean mask of `n`
    values (a `df.is_valid` column, its `.values`, a list of bools), whose True rows are taken. A mask of another
    length, a missing value in a mask, positions that are not whole numbers, outside 0..n-1 or repeated are refused
    naming them (`what` says which argument): read as positions, a mask selects rows 0 and 1 over and over."""
    if isinstance(idx, pd.Series) and df is not None and not idx.index.equals(df.index) and len(idx) == n \
            and idx.index.sort_values().equals(df.index.sort_values()):
        idx = idx.reindex(df.index)  # a mask in another row order: by label, as pandas would align it
    if isinstance(idx, pd.Series | pd.Index):
        na = idx.isna().to_numpy()
        if na.any():
            raise ValueError(f"{where}: {what} has missing values (NA) at positions {np.flatnonzero(na)[:10].tolist()}; "
                             "fill them (mask.fillna(False)) or drop those rows first.")
        idx = idx.to_numpy()
    a = np.asarray(list(idx) if not hasattr(idx, "__array__") else idx)
    if a.dtype == object and len(a) and all(isinstance(o, bool | np.bool_) for o in a):
        a = a.astype(bool)
    if a.dtype.kind == "b":
        if a.ndim != 1 or len(a) != n:
            raise ValueError(f"{where}: {what} is a boolean mask of {a.size} values for {n} rows; give one True/False "
                             "per row (e.g. df.is_valid), or row positions (np.flatnonzero(mask)).")
        return np.flatnonzero(a)
    if a.dtype.kind == "f":
        frac = a[~np.isfinite(a) | (a != np.floor(a))] if a.size else a
        if frac.size:
            raise ValueError(f"{where}: {what} holds values that are not whole numbers, so not row positions: "
                             f"{frac[:10].tolist()}; pass integer positions (0-based, like iloc).")
    elif a.size and a.dtype.kind not in "iu":
        raise TypeError(f"{where}: {what} must be row positions (integers, 0-based like iloc) or a boolean mask of "
                        f"{n} values; got {a.dtype} values {a.ravel()[:5].tolist()}.")
    a = a.astype(np.int64).ravel()
    out = a[(a < 0) | (a >= n)]
    if len(out):
        raise IndexError(f"{where}: {what} holds row positions outside 0..{n - 1} (the frame has {n} rows): "
                         f"{sorted(set(out.tolist()))[:10]}; {what} are positions (0-based, like iloc), not index "
                         "labels.")
    uniq, counts = np.unique(a, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{where}: {what} repeats row positions {uniq[counts > 1][:10].tolist()}, which would put "
                         "those rows in it several times; pass each row once (np.unique(...)).")
    return a


def need_frame(o: object, where: str, arg: str = "df", columns: Sequence[str] | None = None, then: str = "") -> None:
    """Raise `TypeError` unless `o` is a DataFrame, saying what it is and how to make one: a numpy array needs column
    names (`columns`, the ones a caller expects, else `[...]`); `then` is said after the fix.

    >>> need_frame(np.zeros((2, 3)), "f")
    Traceback (most recent call last):
    TypeError: f: df is a numpy ndarray of shape (2, 3), not a pandas DataFrame; name its columns: pd.DataFrame(arr, columns=[...]).
    """
    if isinstance(o, pd.DataFrame):
        return
    if isinstance(o, np.ndarray):
        got = f"a numpy ndarray of shape {o.shape}"
        names = "[...]" if columns is None else repr(list(columns))
        if columns is not None and o.ndim == 2 and o.shape[1] > len(columns):
            names = names[:-1] + ", ...]"  # the array has more columns than we can name
        fix = f"name its columns: pd.DataFrame(arr, columns={names})"
    else:
        got = f"a {type(o).__name__}"
        fix = "convert it with pd.DataFrame(...)"
    raise TypeError(f"{where}: {arg} is {got}, not a pandas DataFrame; {fix}{then}.")


def _delimiter_hint(df: pd.DataFrame, missing: Sequence) -> str:
    """A hint when `df` looks read with the wrong delimiter: a column name such as 'a;b;y' that splits on ';', tab
    or '|' into parts among the `missing` names (or the only column of `df`), else ''."""
    for col in df.columns:
        if not isinstance(col, str):
            continue
        for sep in (";", "\t", "|"):
            parts = [p.strip() for p in col.split(sep)]
            if len(parts) > 1 and (len(df.columns) == 1 or any(m in parts for m in missing)):
                return (f" The column name {col!r} holds {sep!r}: was the file read with the wrong delimiter? Read it "
                        f"with pd.read_csv(path, sep={sep!r}) and use from_df, or pass sep={sep!r} to "
                        "TabularDataLoaders.from_csv.")
    return ""


def check_columns(df: pd.DataFrame, names: Sequence[str], kind: str) -> None:
    """Raise `KeyError` naming every entry of `names` that is not a column of `df` (`kind` says which list), with
    a hint when `df` looks read with the wrong delimiter (one column named 'a;b;y')."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise KeyError(f"TabularPandas: {kind} {missing} not found in the DataFrame (its columns are "
                       f"{list(df.columns)[:30]}); fix the spelling or remove them from {kind}."
                       + _delimiter_hint(df, missing))


def _rows(df: pd.DataFrame, mask, n: int = 10) -> str:
    "The first `n` index labels of `df` where `mask` is true, and how many there are in all."
    idx = list(df.index[np.asarray(mask)])
    more = f" and {len(idx) - n} more" if len(idx) > n else ""
    return f"{idx[:n]}{more}"


def _check_cont(df: pd.DataFrame, c: str, where: str) -> None:
    """Raise a clear error for a continuous column `c` of `df` that a model cannot read: dates (with the
    `add_datepart` fix), words (naming the values and their rows), infinities (naming the rows)."""
    col = df[c]
    if pd.api.types.is_bool_dtype(col):
        return
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        raise TypeError(f"{where}: continuous column {c!r} holds dates ({col.dtype}), which are not numbers; expand "
                        f"it into numeric parts with add_datepart(df, {c!r}) and use those columns instead.")
    if not pd.api.types.is_numeric_dtype(col):
        num = pd.to_numeric(col, errors="coerce")
        bad = num.isna() & col.notna()
        vals = list(dict.fromkeys(col[bad].astype(str)))[:5]
        shown = f" values that are not numbers: {vals} (rows {_rows(df, bad)});" if vals else ""
        raise TypeError(f"{where}: continuous column {c!r} has dtype {col.dtype}, which is not numeric;{shown} "
                        f"move it to cat_names or convert it (pd.to_numeric(df[{c!r}], errors='coerce') turns "
                        "such values into NaN for FillMissing).")
    v = col.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(v)
    if inf.any():  # Normalize and every weight would turn NaN
        raise ValueError(f"{where}: continuous column {c!r} holds infinite values in rows {_rows(df, inf)}; "
                         f"replace them, e.g. df[{c!r}] = df[{c!r}].replace([np.inf, -np.inf], np.nan) (FillMissing "
                         "then fills them), or drop those rows.")
    with np.errstate(invalid="ignore"):
        big = np.abs(v) > _F32_MAX
    if big.any():  # the model reads float32: these become inf, then every weight NaN
        vals = [float(x) for x in v[big][:5]]
        raise ValueError(f"{where}: continuous column {c!r} holds values beyond the float32 range (+-{_F32_MAX:.3g}) "
                         f"the model computes in, in rows {_rows(df, big)}: {vals}; they would become inf. Rescale "
                         f"the column (e.g. np.log1p(df[{c!r}]) or df[{c!r}] / 1e30) or drop those rows.")


def _check_numeric(df: pd.DataFrame, names: Sequence[str], kind: str, where: str) -> None:
    """Make the columns `names` of `df` numeric in place: numbers written as text ('35') are converted, and anything
    else (a word, a date) raises `ValueError` naming the column, the values and their rows."""
    for c in names:
        if c not in df.columns or pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        bad = num.isna() & df[c].notna()
        if bad.any():
            vals = list(dict.fromkeys(df[c][bad].astype(str)))[:5]
            raise ValueError(f"{where}: {kind} column {c!r} holds values that are not numbers: {vals} (rows "
                             f"{_rows(df, bad)}); fix or drop those rows, or convert the column with "
                             f"pd.to_numeric(df[{c!r}], errors='coerce') to treat them as missing.")
        df[c] = num


def read_csv(csv: str | Path, where: str, encoding: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """`pandas.read_csv(csv, encoding=encoding, **kwargs)`, with errors that name the file: a missing file, and text
    that is not valid in `encoding` (default UTF-8) says which encoding to try."""
    csv = Path(csv)
    if not csv.exists():
        raise FileNotFoundError(f"{where}: {csv} does not exist.")
    try:
        return pd.read_csv(csv, encoding=encoding, **kwargs)
    except UnicodeDecodeError as e:
        enc = encoding or "utf-8"
        raise ValueError(f"{where}: {csv} is not valid {enc} text (byte {e.object[e.start:e.start + 1]!r} at "
                         f"position {e.start}); pass the file's encoding, e.g. encoding='latin-1' or "
                         "encoding='cp1252'.") from e


class TabularProc:
    """A preprocessing step of a `TabularPandas`: `setup(to)` learns its state from `to.train` (the training rows)
    and `encodes(to)` changes `to.items` in place for every row; `decodes(df)` maps processed values back.
    Subclasses implement `setups` and `encodes` (and `decodes` when the step can be undone)."""

    order = 0

    def setup(self, to: TabularPandas) -> TabularProc:
        "Learn this proc's state from the training rows of `to`; returns `self`."
        self.setups(to)
        return self

    def setups(self, to: TabularPandas) -> None:
        "Learn the state (default: none)."

    def __call__(self, to: TabularPandas) -> TabularPandas:
        self.encodes(to)
        return to

    def encodes(self, to: TabularPandas) -> None:
        "Process `to.items` in place."
        raise NotImplementedError(f"{type(self).__name__} must implement encodes(to)")

    def decodes(self, df: pd.DataFrame) -> pd.DataFrame:
        "Undo this step on a DataFrame of processed values (default: unchanged)."
        return df

    def decode(self, o: pd.DataFrame | Tabular) -> pd.DataFrame | TabularPandas:
        """Undo this step on `o`: a DataFrame of processed values, or a `TabularPandas` (a decoded copy is returned,
        `o` is left as it is)."""
        if isinstance(o, Tabular):
            res = cast(TabularPandas, o).copy()  # a row subset has `copy` too: it forwards to its TabularPandas
            res.items = self.decodes(res.items)
            return res
        return self.decodes(o.copy())

    def __repr__(self) -> str:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_") and not isinstance(v, dict)}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in state.items())})"


def _mk_proc(p: Any) -> TabularProc | Transform:
    p = p() if isinstance(p, type) else p
    # A Transform is a proc when it has tabular behaviour registered (`Normalize` does: tiers.tabular.procs);
    # one that would pass the table through unchanged (an image transform) is refused, not silently skipped.
    ok = isinstance(p, TabularProc) or (isinstance(p, Transform) and
                                        type(p).encodes.resolve(TabularPandas) is not None)  # type: ignore[attr-defined]  # set by Transform's metaclass
    if not ok:
        raise TypeError(f"TabularPandas: procs must be TabularProc classes or instances (Categorify, FillMissing, "
                        f"Normalize), or Transforms with tabular encodes; got {p!r}.")
    return p


def _proc_name(p: object) -> str:
    return camel2snake(type(p).__name__)


class Procs(list):
    """The procs of a `TabularPandas` in the order they run: a list whose items can also be read by their snake-case
    class name (`to.procs.categorify`, `to.procs.fill_missing`, `to.procs.normalize`), as in fastai.

    >>> Procs([TabularProc()]).tabular_proc
    TabularProc()
    """

    def __getattr__(self, name: str):
        if not name.startswith("_"):
            for p in self:
                if _proc_name(p) == name:
                    return p
        names = [_proc_name(p) for p in self]
        raise AttributeError(f"no proc named {name!r} (the procs are {names})")

    def __getitem__(self, i):
        res = super().__getitem__(i)
        return Procs(res) if isinstance(i, slice) else res

    def decode(self, o: pd.DataFrame | Tabular) -> pd.DataFrame | Tabular:
        "Undo every proc on `o` (a DataFrame or a `TabularPandas`), last one first."
        for p in reversed(self):
            o = p.decode(o)
        return o


class _TabIloc:
    "`to.iloc[rows]` / `to.iloc[rows, cols]`: the selected rows (and columns) as a new `TabularPandas`."

    def __init__(self, to: Tabular):
        self.to = to

    def __getitem__(self, idx):
        rows, cols = idx if isinstance(idx, tuple) else (idx, None)
        df = self.to.items
        df = df.iloc[[rows]] if isinstance(rows, (int, np.integer)) else df.iloc[rows]  # one row stays a frame
        if isinstance(cols, str):
            df = df[[cols]]
        elif isinstance(cols, list) and cols and isinstance(cols[0], str):
            df = df[cols]
        elif cols is not None:
            df = df.iloc[:, [cols] if isinstance(cols, (int, np.integer)) else cols]
        res = copy.copy(_root(self.to))  # same procs and state; not `new`, which insists on every input column
        res.items = df.copy()
        res.splits = [np.arange(len(df)), np.array([], dtype=np.int64)]
        return res


def _y_kind(y_block, ys: pd.DataFrame) -> str:
    """'category', 'multi' (one 0/1 column per label), 'multi-list' (lists of labels) or 'regression', from `y_block`
    or, without one, from the dtype of the targets."""
    if y_block is None:
        if all(pd.api.types.is_float_dtype(ys[c]) for c in ys.columns):
            return "regression"
        return "category"
    blk = y_block() if callable(y_block) and not hasattr(y_block, "type_tfms") else y_block
    for t in L(getattr(blk, "type_tfms", [])):
        t = t if not isinstance(t, type) else t()
        # before Categorize: both are subclasses of it
        if isinstance(t, EncodedMultiCategorize):
            return "multi"  # one 0/1 column per label
        if isinstance(t, MultiCategorize):
            return "multi-list"  # lists of labels in one column
        if isinstance(t, Categorize):
            return "category"
        if isinstance(t, RegressionSetup):
            return "regression"
    return "regression"


def _block_vocab(y_block) -> list | None:
    "The label names an `EncodedMultiCategorize` in `y_block` was given (None when it has none)."
    blk = y_block() if callable(y_block) and not hasattr(y_block, "type_tfms") else y_block
    for t in L(getattr(blk, "type_tfms", [])):
        if isinstance(t, EncodedMultiCategorize) and t.vocab is not None:
            return list(t.vocab)
    return None


class Tabular:
    """Shared column logic of `TabularPandas` and its row subsets: `cats`, `conts`, `ys`, `xs` views of `items`."""

    items: pd.DataFrame
    cat_names: list
    cont_names: list
    y_names: list

    @property
    def cats(self) -> pd.DataFrame:
        "The categorical columns."
        return self.items[self.cat_names]

    @cats.setter
    def cats(self, v: Any) -> None:  # anything `DataFrame.__setitem__` takes
        self._set_cols(self.cat_names, v)

    @property
    def conts(self) -> pd.DataFrame:
        "The continuous columns."
        return self.items[self.cont_names]

    @conts.setter
    def conts(self, v: Any) -> None:  # anything `DataFrame.__setitem__` takes
        self._set_cols(self.cont_names, v)

    @property
    def ys(self) -> pd.DataFrame:
        "The target columns."
        return self.items[self.y_names]

    @ys.setter
    def ys(self, v: Any) -> None:  # anything `DataFrame.__setitem__` takes
        self._set_cols(self.y_names, v)

    @property
    def xs(self) -> pd.DataFrame:
        "The input columns (categorical then continuous)."
        return self.items[self.cat_names + self.cont_names]

    @xs.setter
    def xs(self, v: Any) -> None:  # anything `DataFrame.__setitem__` takes
        self._set_cols(self.cat_names + self.cont_names, v)

    @property
    def y(self) -> pd.Series:
        "The first target column."
        return self.items[self.y_names[0]]

    def _set_cols(self, names: list, v) -> None:
        self.items[names] = v

    @property
    def x_names(self) -> list:
        "The input column names (categorical then continuous)."
        return self.cat_names + self.cont_names

    @property
    def all_col_names(self) -> list:
        "Inputs then targets."
        return self.x_names + self.y_names

    @property
    def all_cols(self) -> pd.DataFrame:
        "The input and target columns."
        return self.items[[c for c in self.all_col_names if c in self.items.columns]]

    @property
    def targ(self) -> pd.DataFrame:
        "The target columns (as `ys`)."
        return self.ys

    @property
    def loc(self) -> Any:  # pandas' `_LocIndexer` (pandas ships no types here)
        "Label-based access to the processed frame (`to.loc[rows, cols]`, pandas' `.loc`)."
        return self.items.loc

    @property
    def iloc(self) -> _TabIloc:
        "Rows by position: `to.iloc[2:5]` or `to.iloc[rows, cols]` is a new `TabularPandas` with the same procs."
        return _TabIloc(self)

    def __getitem__(self, k):
        "Column(s) `k` of the processed frame: `to['age']`, `to[['a', 'b']]`."
        return self.items[k]

    def __setitem__(self, k, v) -> None:
        self.items[k] = v

    def __len__(self) -> int:
        return len(self.items)


class _Subset(Tabular):
    "The training or validation rows of a `TabularPandas` (a view that reads the parent's columns lazily)."

    def __init__(self, parent: TabularPandas, idx: np.ndarray):
        self.parent, self.idx = parent, idx

    def __getattr__(self, name):
        if name.startswith("_") or name in ("parent", "idx"):
            raise AttributeError(name)
        return getattr(self.parent, name)

    @property
    def items(self) -> pd.DataFrame:
        return self.parent.items.iloc[self.idx]

    def decode(self, df: pd.DataFrame | None = None):
        "These rows decoded (a `TabularPandas`), or the processed frame `df` decoded (a DataFrame)."
        if df is not None:
            return self.parent.decode(df)
        res = copy.copy(self.parent)
        res.items = self.parent._decode_frame(self.items)
        res.splits = [np.arange(len(res.items)), np.array([], dtype=np.int64)]
        return res

    def show(self, max_n: int = 10, show: bool = True):
        "Print the first `max_n` of these rows decoded (`show=False` returns the DataFrame)."
        return _root(self).new(self.items.iloc[:max_n], inplace=True).show(max_n, show)

    def _set_cols(self, names: list, v) -> None:
        cols = [self.parent.items.columns.get_loc(c) for c in names]
        self.parent.items.iloc[self.idx, cols] = v

    def __setitem__(self, k, v) -> None:
        self._set_cols([k] if isinstance(k, str) else list(k), v)

    def __len__(self) -> int:
        return len(self.idx)


def _root(to: Tabular) -> TabularPandas:
    return to.parent if isinstance(to, _Subset) else cast(TabularPandas, to)


class TabularPandas(Tabular):
    """A DataFrame `df` with categorical `cat_names`, continuous `cont_names` and targets `y_names`, processed by
    `procs` (e.g. `[Categorify, FillMissing, Normalize]`). `splits` is `(train_idx, valid_idx)` of row positions
    (default: all rows train); every proc learns its state from the training rows only and is then applied to all
    rows. `y_block` (`CategoryBlock()`, `RegressionBlock()`) says how targets are encoded; without it float targets
    are regression and the rest are classes. `reduce_memory` shrinks dtypes (`df_shrink`); `inplace` processes `df`
    itself instead of a copy. `new(df)` + `process()` apply the same state to new rows (test or inference data).

    >>> from tiers.tabular import Categorify, FillMissing, Normalize
    >>> df = pd.DataFrame({"a": ["x", "y", "x", "z"], "b": [1.0, None, 3.0, 4.0], "t": [0, 1, 0, 1]})
    >>> to = TabularPandas(df, [Categorify, FillMissing, Normalize], ["a"], ["b"], "t", splits=([0, 1, 2], [3]))
    >>> list(to.classes["a"])
    ['#na#', 'x', 'y']
    """

    # what `Categorify`'s warning about values not in the training rows says they mean (a subclass may say more)
    unseen_note: str = ""

    def __init__(self, df: pd.DataFrame,
                 procs: TabularProc | Transform | type | Iterable[TabularProc | Transform | type] | None = None,
                 cat_names: str | Sequence[str] | None = None, cont_names: str | Sequence[str] | None = None,
                 y_names: str | Sequence[str] | None = None,
                 y_block: TransformBlock | Callable[[], TransformBlock] | None = None,
                 splits: Sequence[Sequence[int] | np.ndarray] | None = None, do_setup: bool = True,
                 reduce_memory: bool = True, inplace: bool = False, with_cont: bool = True) -> None:
        need_frame(df, "TabularPandas", then=", and list those names in cat_names, cont_names and y_names")
        self.cat_names, self.cont_names, self.y_names = _listify(cat_names), _listify(cont_names), _listify(y_names)
        for kind, names in (("cat_names", self.cat_names), ("cont_names", self.cont_names),
                            ("y_names", self.y_names)):
            check_columns(df, names, kind)
        used = set(self.cat_names + self.cont_names + self.y_names)
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()] if c in used})
        if dup:  # df[c] would be a DataFrame, and pandas fails deep inside with no column named
            raise ValueError(f"TabularPandas: the DataFrame has several columns named {dup}; give each column a "
                             "distinct name (df.columns) or drop the duplicate (df.loc[:, ~df.columns.duplicated()]).")
        self.input_cat_names = list(self.cat_names)  # before procs add columns such as `<col>_na`
        # pandas Categoricals the user declared (Categorify keeps all their levels, as fastai), not the text columns
        # `reduce_memory` makes categorical below (whose levels would include the validation rows' values)
        self._declared_cats = {c for c in self.cat_names if isinstance(df[c].dtype, pd.CategoricalDtype)}
        both = set(self.cat_names) & set(self.cont_names)
        if both:
            raise ValueError(f"TabularPandas: columns {sorted(both)} are in both cat_names and cont_names; "
                             "put each column in one list.")
        leak = [c for c in self.y_names if c in self.cat_names or c in self.cont_names]
        if leak:  # the model would read the answer from its input: a perfect score on garbage
            raise ValueError(f"TabularPandas: target column(s) {leak} are also in "
                             f"{'cat_names' if leak[0] in self.cat_names else 'cont_names'}, so the model would be "
                             "given the answer as an input; remove them from cat_names/cont_names.")
        for c in self.cont_names:
            _check_cont(df, c, "TabularPandas")
        if reduce_memory:
            from tiers.tabular.utils import df_shrink_dtypes
            # Only the columns we use are shrunk; text categorical columns become `category` (hashed once, so
            # Categorify maps category codes instead of strings) without the cost of counting distinct values.
            shrunk = self.cat_names + self.cont_names
            dtypes = df_shrink_dtypes(df[[c for c in shrunk if c not in self.cat_names]], obj2cat=False)
            for c in self.cat_names:
                if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c]):
                    dtypes[c] = "category"
            df = df.astype(dtypes)
            inplace = True  # astype already copied
        self.items = df if inplace else df.copy()
        n = len(df)
        if splits is None:
            splits = (np.arange(n), np.array([], dtype=np.int64))
        parts = [_positions(s, n, "TabularPandas", f"split {i}", df) for i, s in enumerate(splits)]
        if len(parts[0]) == 0:
            raise ValueError("TabularPandas: the training split is empty; procs need training rows to learn from.")
        for i, s in enumerate(parts[1:], 1):
            shared = np.intersect1d(parts[0], s)
            if len(shared):  # a leak, but maybe deliberate (scores on training rows): said, not refused
                warnings.warn(f"TabularPandas: split {i} shares {len(shared)} rows with the training split (positions "
                              f"{shared[:10].tolist()}{' ...' if len(shared) > 10 else ''}), so its scores are measured "
                              "partly on training rows; pass disjoint splits (e.g. RandomSplitter()(range_of(df))).",
                              UserWarning, stacklevel=2)
        self.splits = parts
        self.y_block, self.with_cont = y_block, with_cont
        self.procs = Procs(_mk_proc(p) for p in sorted(_listify(procs), key=lambda p: getattr(p, "order", 0)))
        self.y_kind = _y_kind(y_block, df[self.y_names]) if self.y_names else None
        self.vocab: CategoryMap | None = None  # the target's classes, once set up
        self.classes: dict[str, CategoryMap] = {}
        if do_setup:
            self.setup()

    # ---- subsets -------------------------------------------------------------------------------------------
    @property
    def train(self) -> _Subset:
        "The training rows."
        return _Subset(self, self.splits[0])

    @property
    def valid(self) -> _Subset:
        "The validation rows."
        return _Subset(self, self.splits[1])

    @property
    def n_subsets(self) -> int:
        return len(self.splits)

    def subset(self, i: int) -> _Subset:
        "The rows of split `i`."
        return _Subset(self, self.splits[i])

    # ---- processing ----------------------------------------------------------------------------------------
    def train_col(self, c: str) -> pd.Series:
        "Column `c` of the training rows (one column is copied, not the whole frame)."
        return self.items[c].iloc[self.splits[0]]

    def _check_train(self) -> None:
        for c in self.cat_names + self.cont_names:
            if self.train_col(c).isna().all():
                raise ValueError(f"TabularPandas: column {c!r} is empty (all NaN) in the training rows, so nothing "
                                 "can be learned from it; drop it from cat_names/cont_names.")

    def setup(self) -> TabularPandas:
        "Set up each proc on the training rows (in order, each seeing the previous ones' output) and apply it."
        self._check_train()
        for p in self.procs:
            p.setup(self)
            p(self)
        self._check_conts_finite("TabularPandas")
        self._setup_y()
        return self

    def _check_conts_finite(self, where: str) -> None:
        # After the procs: a NaN left in an input (no FillMissing) makes every prediction and, in training, every
        # weight NaN; the loss guard would stop at a batch without naming the column.
        for c in self.cont_names:
            if c not in self.items.columns:
                continue
            v = self.items[c].to_numpy(np.float64, na_value=np.nan)
            bad = ~np.isfinite(v)
            if not bad.any():
                continue
            nan = np.isnan(v)
            fill = any(type(p).__name__ == "FillMissing" for p in self.procs)
            fix = ("fill or drop those rows before building" if fill else
                   "add FillMissing to procs (procs=[Categorify, FillMissing, Normalize]), which fills them with the "
                   "training median and adds a `_na` column, or fill or drop those rows")
            what = (f"{int(nan.sum())} missing (NaN)" if nan[bad].all() else
                    f"{int(bad.sum())} missing or infinite")
            raise ValueError(f"{where}: continuous column {c!r} has {what} values after the procs (rows "
                             f"{_rows(self.items, bad)}); the model would read NaN and train or predict on it: {fix}.")

    def _setup_y(self) -> None:
        if not self.y_names:
            return
        if self.y_kind == "category":
            if len(self.y_names) != 1:
                raise ValueError(f"TabularPandas: single-label classification takes one target column, got "
                                 f"{self.y_names}; use a RegressionBlock or one column.")
            yn = self.y_names[0]
            col = self.items[yn]
            if col.isna().any():
                raise ValueError(f"TabularPandas: the target column {yn!r} has {int(col.isna().sum())} missing "
                                 f"values (rows {_rows(self.items, col.isna())}); drop those rows or fill them "
                                 "before building TabularPandas.")
            if self.vocab is None:
                self.vocab = CategoryMap(col.iloc[self.splits[0]])
                if len(self.vocab) < 2:
                    raise ValueError(f"TabularPandas: the target column {yn!r} has one class ({list(self.vocab)}) in "
                                     "the training rows; a classifier needs at least two (or use a RegressionBlock).")
            self._encode_y()
        elif self.y_kind == "regression":
            for c in self.y_names:
                if not pd.api.types.is_numeric_dtype(self.items[c]):
                    raise TypeError(f"TabularPandas: regression target {c!r} has dtype {self.items[c].dtype}; use "
                                    "y_block=CategoryBlock() for class labels or convert it to numbers.")
            self._check_y_finite()
            self.items[self.y_names] = self.items[self.y_names].astype(np.float32)
        elif self.y_kind == "multi":
            names = _block_vocab(self.y_block)
            names = list(self.y_names) if names is None else list(names)
            if len(names) != len(self.y_names):
                raise ValueError(f"TabularPandas: MultiCategoryBlock(encoded=True) names {len(names)} labels "
                                 f"{names[:10]} for {len(self.y_names)} target columns {self.y_names[:10]}; give one "
                                 "label per column (vocab=y_names).")
            self.vocab = CategoryMap(names, sort=False)
            self._encode_multi()
        else:
            raise NotImplementedError("TabularPandas: multi-label targets as lists of labels in one column are not "
                                      "supported; one-hot encode them into one 0/1 column per label "
                                      "(df[label] = df[col].str.contains(label)) and pass those columns as y_names "
                                      "with y_block=MultiCategoryBlock(encoded=True, vocab=[...]).")

    def _encode_multi(self) -> None:
        # one 0/1 (or bool) column per label -> float32, as BCEWithLogitsLossFlat and accuracy_multi take them
        for c in self.y_names:
            col = self.items[c]
            v = pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan) \
                if not pd.api.types.is_bool_dtype(col) else col.to_numpy(np.float64, na_value=np.nan)
            bad = ~np.isin(v, (0.0, 1.0))
            if bad.any():
                vals = [o.item() if isinstance(o, np.generic) else o for o in dict.fromkeys(col[bad].tolist())][:5]
                raise ValueError(f"TabularPandas: multi-label target column {c!r} must hold 0/1 (or True/False) for "
                                 f"each row; rows {_rows(self.items, bad)} hold {vals}. Fix or drop those rows "
                                 f"(missing means 'not this label': df[{c!r}].fillna(0)).")
        self.items[self.y_names] = self.items[self.y_names].astype(np.float32)

    def _check_y_finite(self) -> None:
        # A NaN (or inf) target makes the loss NaN, and then every weight: refuse before any training.
        for c in self.y_names:
            if c not in self.items.columns:
                continue
            v = self.items[c].to_numpy(np.float64, na_value=np.nan)
            bad = ~np.isfinite(v)
            if bad.any():
                what = "missing (NaN)" if np.isnan(v[bad]).all() else "missing or infinite"
                raise ValueError(f"TabularPandas: the regression target column {c!r} has {int(bad.sum())} "
                                 f"{what} values (rows {_rows(self.items, bad)}); training on them would turn every "
                                 "weight into NaN. Drop those rows (df.dropna(subset=[...])) or fill them first.")

    def _encode_y(self) -> None:
        assert self.vocab is not None  # set by setup before the target is encoded
        yn = self.y_names[0]
        col = self.items[yn]
        if pd.api.types.is_integer_dtype(col) and len(col) and col.min() >= 0 and list(self.vocab) == list(
                range(len(self.vocab))):
            return  # already codes 0..c-1 of themselves
        # -1 for labels not in the vocab (pd.Categorical with unknown values is deprecated: it will raise its own error)
        codes = pd.Index(list(self.vocab)).get_indexer(col)
        if (codes < 0).any():
            bad = sorted(set(col[codes < 0].astype(str)))[:10]
            hint = ""
            if pd.api.types.is_numeric_dtype(col):  # integers read as classes: usually a quantity to predict
                hint = (f" Column {yn!r} holds numbers ({len(self.vocab)} distinct in the training rows), so it was "
                        "taken as classes; to predict the number, pass y_block=RegressionBlock() (or convert it with "
                        f"df[{yn!r}].astype('float32')).")
            raise ValueError(f"TabularPandas: target labels {bad} of column {yn!r} do not occur in the training "
                             f"rows (classes: {list(self.vocab)[:20]}); add such rows to the training split.{hint}")
        self.items[yn] = codes.astype(np.int64)

    def process(self) -> TabularPandas:
        "Apply the procs (with their learned state) to all rows, e.g. after `new(df)`; returns `self`."
        _check_numeric(self.items, self.cont_names, "continuous", "TabularPandas.process")
        for c in self.cont_names:
            if c in self.items.columns:
                _check_cont(self.items, c, "TabularPandas.process")
        for p in self.procs:
            p(self)
        self._check_conts_finite("TabularPandas.process")
        if self.y_names and all(c in self.items.columns for c in self.y_names):
            if self.y_kind == "category":
                self._encode_y()
            elif self.y_kind == "regression":
                _check_numeric(self.items, self.y_names, "target", "TabularPandas.process")
                self._check_y_finite()
                self.items[self.y_names] = self.items[self.y_names].astype(np.float32)
            elif self.y_kind == "multi":
                self._encode_multi()
        return self

    def new(self, df: pd.DataFrame, inplace: bool = False) -> TabularPandas:
        """A `TabularPandas` over the new rows `df` with these procs and their learned state, not yet processed
        (call `process()`). Target columns may be absent (test data)."""
        check_columns(df, self.input_cat_names, "cat_names")
        check_columns(df, self.cont_names, "cont_names")
        res = copy.copy(self)
        res.items = df if inplace else df.copy()
        res.splits = [np.arange(len(df)), np.array([], dtype=np.int64)]
        return res

    def new_empty(self) -> TabularPandas:
        "A copy with no rows that keeps the procs' state (used by export)."
        return self.new(self.items.iloc[:0])

    def export(self, fname: str | os.PathLike[str] = "export.pkl", pickle_protocol: int = 4) -> Path:
        """Write this object without its rows (`new_empty()`: the procs with the state they learned, the column
        names, the target's kind and classes: what `new(df)` + `process()` need) to `fname`, relative to the working
        folder as in fastai, atomically; returns the path. `load_pandas(fname)` reads it back, through the safe
        loader of `load_learner`. Reuses fitted procs without a Learner, e.g. to feed a random forest at inference:
        `to2 = load_pandas('to.pkl'); to_new = to2.new(test_df); to_new.process(); to_new.xs`."""
        return _export_pandas(self, Path(fname), pickle_protocol)

    def copy(self) -> TabularPandas:
        "A copy whose frame can be changed without touching this one."
        res = copy.copy(self)
        res.items = self.items.copy()
        return res

    # ---- tensors and display -------------------------------------------------------------------------------
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The processed rows as `(cats int64 [n, n_cat], conts float32 [n, n_cont], ys or None)`: classification
        targets are int64 codes [n], regression targets float32 [n, n_y]."""
        cats = torch.from_numpy(_writable(self.items[self.cat_names].to_numpy(np.int64))) \
            if self.cat_names else torch.zeros(len(self), 0, dtype=torch.int64)
        conts = torch.from_numpy(_writable(self.items[self.cont_names].to_numpy(np.float32))) \
            if self.cont_names else torch.zeros(len(self), 0)
        ys = None
        if self.y_names and all(c in self.items.columns for c in self.y_names):
            if self.y_kind == "category":
                ys = torch.from_numpy(_writable(self.items[self.y_names[0]].to_numpy(np.int64)))
            else:
                ys = torch.from_numpy(_writable(self.items[self.y_names].to_numpy(np.float32)))
        return cats, conts, ys

    def decode(self, df: pd.DataFrame | None = None) -> TabularPandas | pd.DataFrame:
        """Readable values: with no argument, a copy of this `TabularPandas` whose frame is decoded (as fastai's
        `to.decode()`: `to.decode().items`, `to.decode()['col']`); given a processed DataFrame `df`, that frame
        decoded. Procs are undone in reverse order and class targets named."""
        if df is None:
            res = self.copy()
            res.items = self._decode_frame(self.items)
            return res
        return self._decode_frame(df)

    def _decode_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for p in reversed(self.procs):
            df = p.decode(df)
        if self.y_kind == "multi":
            for c in self.y_names:
                if c in df.columns and pd.api.types.is_numeric_dtype(df[c]):
                    df[c] = df[c].to_numpy(np.float64) > 0.5
        if self.y_kind == "category" and self.y_names and self.y_names[0] in df.columns:
            yn = self.y_names[0]
            assert self.vocab is not None  # a category target has its vocab once set up
            df[yn] = np.asarray(list(self.vocab), dtype=object)[df[yn].to_numpy(np.int64)]
        return df

    def transform(self, cols: str | Sequence[str], f: Callable[..., Any] | str, all_col: bool = True) -> None:
        """Apply `f` to the columns `cols` in place (`df[cols].transform(f)`); with `all_col=False`, columns that are
        not in the frame are skipped instead of raising."""
        cols = _listify(cols)
        if not all_col:
            cols = [c for c in cols if c in self.items.columns]
        if cols:
            self.items[cols] = self.items[cols].transform(f)

    def decode_row(self, row: pd.Series) -> pd.Series:
        "One processed row (`to.items.iloc[i]`) with its readable values."
        return self._decode_frame(row.to_frame().T).iloc[0]

    def show(self, max_n: int = 10, show: bool = True) -> pd.DataFrame | None:
        "Print the first `max_n` rows decoded (`show=False` returns the DataFrame instead)."
        cols = [c for c in self.cat_names + self.cont_names + self.y_names if c in self.items.columns]
        df = self._decode_frame(self.items.iloc[:max_n])[cols]
        if not show:
            return df
        from tiers.data.show import show_table

        show_table(df)  # an HTML DataFrame in a notebook, width-aware text in a terminal
        return None

    def dataloaders(self, bs: int = 64, val_bs: int | None = None, shuffle_train: bool = True,
                    device: str | torch.device | None = None, path: str | Path = ".",
                    dl_type: type[TabDataLoader] | None = None, train_kwargs: dict | None = None,
                    **kwargs: Any) -> TabularDataLoaders:
        """`TabularDataLoaders` over the splits (the training one shuffled, dropping its last partial batch);
        `dl_type` (default `TabDataLoader`) and `train_kwargs` apply to the training loader."""
        from tiers.tabular.data import TabDataLoader, TabularDataLoaders, _no_bs
        if bs is None:  # `len(to) > bs` below would fail with an unrelated TypeError
            raise _no_bs("TabularPandas.dataloaders")
        dls = []
        for i in range(len(self.splits)):
            to = self.new(self.items.iloc[self.splits[i]], inplace=True)
            tr = i == 0
            cls = (dl_type or TabDataLoader) if tr else TabDataLoader
            extra = dict(train_kwargs or {}) if tr else {}
            dls.append(cls(to, bs=bs if tr or val_bs is None else val_bs, shuffle=tr and shuffle_train,
                           drop_last=tr and shuffle_train and len(to) > bs, **extra, **kwargs))
        return TabularDataLoaders(*dls, path=path, device=device)

    def weighted_dataloaders(self, wgts: Sequence[float] | np.ndarray, bs: int = 64, **kwargs: Any) -> TabularDataLoaders:
        """Loaders whose training loader draws rows with probability proportional to `wgts` (one weight per row of
        the frame, or per training row), with replacement (`TabWeightedDL`); `kwargs` go to `dataloaders`."""
        from tiers.tabular.data import TabWeightedDL
        w = np.asarray(list(wgts) if not hasattr(wgts, "__array__") else wgts, dtype=float)
        if w.ndim == 1 and len(w) == len(self.items) and len(w) != len(self.splits[0]):
            w = w[self.splits[0]]  # one weight per row of the frame: keep the training rows'
        return self.dataloaders(bs=bs, dl_type=TabWeightedDL, train_kwargs={"wgts": w}, **kwargs)

    def partial_dataloaders(self, partial_n: int, bs: int = 64, **kwargs: Any) -> TabularDataLoaders:
        "Loaders whose training epochs use `partial_n` random rows (`TabPartialDL`); `kwargs` go to `dataloaders`."
        from tiers.tabular.data import TabPartialDL
        return self.dataloaders(bs=bs, dl_type=TabPartialDL, train_kwargs={"partial_n": partial_n}, **kwargs)

    def __getattr__(self, name: str):
        # procs by name (`to.categorify`, `to.normalize`) and columns as attributes (`to.age`), as in fastai
        d = self.__dict__
        if not name.startswith("_") and "procs" in d and "items" in d:
            for p in d["procs"]:
                if _proc_name(p) == name:
                    return p
            if name in d["items"].columns:
                return d["items"][name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return (f"TabularPandas({len(self)} rows, cat_names={self.cat_names}, cont_names={self.cont_names}, "
                f"y_names={self.y_names}, procs={[type(p).__name__ for p in self.procs]})")


# ---- export / load_pandas ------------------------------------------------------------------------------------------
# The file is a zip of `manifest.json` (format, SHA-256 of the other members), `tensors.pt` (any tensor the procs
# hold, read back with torch's weights-only loader) and `pandas.pkl` (the row-less TabularPandas, its tensors replaced
# by references into `tensors.pt`), read by the restricted unpickler of `load_learner`: a crafted file runs no code.
_PANDAS_FORMAT = "tiers-tabular-pandas/1"
_PANDAS_MEMBERS = ("manifest.json", "tensors.pt", "pandas.pkl")


class _TensorRefPickler(pickle.Pickler):
    # Each tensor leaves the pickle as the reference the safe unpickler resolves: ("tensor", key, type, grad, meta).
    def __init__(self, file: io.BytesIO, protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        self.tensors: dict[str, torch.Tensor] = {}
        self._ids: dict[int, str] = {}

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, torch.Tensor):
            return None
        key = self._ids.get(id(obj))
        if key is None:  # a tensor held twice is stored once
            key = self._ids[id(obj)] = f"t{len(self._ids)}"
            self.tensors[key] = obj.detach().cpu().as_subclass(torch.Tensor).contiguous().clone()
        meta = dict(getattr(obj, "__dict__", {}) or {}) if type(obj) not in (torch.Tensor, torch.nn.Parameter) else {}
        return ("tensor", key, type(obj), bool(obj.requires_grad), meta)


def _export_pandas(to: TabularPandas, path: Path, pickle_protocol: int) -> Path:
    from tiers.dispatch.files import atomic_write
    from tiers.train.io.export import sha256_hex
    from tiers.train.io.paths import write_once

    buf = io.BytesIO()
    pk = _TensorRefPickler(buf, pickle_protocol)
    try:
        pk.dump(to.new_empty())
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        e.add_note("TabularPandas.export: a proc (or the y_block) holds something that cannot be pickled; define the "
                   "functions and classes it uses at the top level of a module (not a lambda or a local function)")
        raise
    tbuf = io.BytesIO()
    torch.save(pk.tensors, tbuf)
    pkl, pt = buf.getvalue(), tbuf.getvalue()
    manifest = {"format": _PANDAS_FORMAT, "class": f"{type(to).__module__}.{type(to).__qualname__}",
                "pandas.pkl": sha256_hex(pkl), "tensors.pt": sha256_hex(pt)}

    def write(target: Path) -> None:
        # deflated: small without rows, and `tensors.pt` (itself a zip) is not left readable inside the file, where
        # a truncated export would be taken for that inner archive
        with atomic_write(target) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest))
            z.writestr("tensors.pt", pt)
            z.writestr("pandas.pkl", pkl)

    return write_once(path, write)


def _foreign(path: Path) -> ValueError:
    "The error for a file that is not written by `TabularPandas.export`, saying what it looks like and what to do."
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        what = "empty; export it again with to.export(fname)"
    elif head[:1] == b"\x80":
        what = ("a plain pickle (save_pickle, or fastai's TabularPandas.export), which could run code when loaded, so "
                "load_pandas does not read it. If you made it yourself, load it with load_pickle(fname) and export it "
                "again with to.export(fname)")
    elif head[:2] == b"PK":
        what = "a zip file but not an export of TabularPandas.export; export it again with to.export(fname)"
        try:
            with zipfile.ZipFile(path) as z:
                if "learner.pkl" in z.namelist():
                    what = ("a Learner export (learn.export): load it with load_learner (learn.dls.train_ds is its "
                            "TabularPandas), or write one with learn.dls.train_ds.export(fname)")
        except (zipfile.BadZipFile, OSError):
            what = "a truncated or corrupted zip file; export it again with to.export(fname)"
    else:
        what = f"not an export of TabularPandas.export (it starts with {head!r}); export it again with to.export(fname)"
    return ValueError(f"load_pandas: {path} is {what}.")


def _read_pandas_export(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "manifest.json" not in names or "pandas.pkl" not in names:
                raise _foreign(path)
            missing = [m for m in _PANDAS_MEMBERS if m not in names]
            if missing:
                raise ValueError(f"load_pandas: {path} is incomplete (missing {missing}); export it again.")
            return {m: z.read(m) for m in _PANDAS_MEMBERS}
    except zipfile.BadZipFile as e:
        raise _foreign(path) from e
    except (zlib.error, EOFError) as e:
        raise ValueError(f"load_pandas: {path} is corrupted ({e}); export it again.") from e


def load_pandas(fname: str | os.PathLike[str], trusted: bool = False, allowed: Iterable[Any] = ()) -> TabularPandas:
    """The `TabularPandas` (without rows) written by `TabularPandas.export` to `fname`: `new(df)` + `process()` apply
    its fitted procs to new rows. Loaded as `load_learner` loads an export, safely by default: only tiers, torch,
    numpy, pandas and plain stdlib types are rebuilt (a crafted file cannot run code); a proc class of your own
    module needs `allowed=[MyProc]`, anything else `trusted=True` (only for files you made or trust). A file that is
    not such an export, or is corrupted, raises `ValueError` saying what it is.

    >>> df = pd.DataFrame({"a": ["x", "y", "x", "z"], "b": [1.0, None, 3.0, 4.0], "t": [0, 1, 0, 1]})
    >>> from tiers.tabular import Categorify, FillMissing, Normalize
    >>> to = TabularPandas(df, [Categorify, FillMissing, Normalize], ["a"], ["b"], "t", splits=([0, 1, 2], [3]))
    >>> import tempfile
    >>> to2 = load_pandas(to.export(Path(tempfile.mkdtemp()) / "to.pkl"))
    >>> to_new = to2.new(pd.DataFrame({"a": ["y"], "b": [None]})).process()
    >>> to_new.xs.equals(to.new(pd.DataFrame({"a": ["y"], "b": [None]})).process().xs)
    True
    """
    from tiers.train.io.export import check_manifest
    from tiers.train.io.safe_load import SafeUnpickler, UnsafeExportError, check_globals, policy

    path = Path(fname)
    if path.is_dir():
        raise IsADirectoryError(f"load_pandas: {path} is a folder; pass the file written by to.export(fname).")
    if not path.is_file():
        raise FileNotFoundError(f"load_pandas: no file at {path}; write one with to.export({str(path)!r}).")
    parts = _read_pandas_export(path)
    check_manifest(parts, path, _PANDAS_FORMAT, ("pandas.pkl", "tensors.pt"), "load_pandas", "export it again.")
    try:
        tensors = torch.load(io.BytesIO(parts["tensors.pt"]), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError) as e:
        raise ValueError(f"load_pandas: the tensors in {path} are unreadable ({e}); export it again.") from e
    pol = policy(allowed)
    try:
        if not trusted:
            check_globals(parts["pandas.pkl"], pol)
        res = SafeUnpickler(io.BytesIO(parts["pandas.pkl"]), tensors, pol, trusted=trusted).load()
    except UnsafeExportError as e:  # its text speaks of load_learner, whose loader this is
        e.add_note(f"load_pandas refused {path}: pass `allowed=[...]` or `trusted=True` to load_pandas itself.")
        raise
    if not isinstance(res, TabularPandas):
        raise TypeError(f"load_pandas: {path} holds a {type(res).__name__}, not a TabularPandas.")
    return res
