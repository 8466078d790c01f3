"""Refusing missing targets (NaN, None) when the datasets are built: a NaN regression target makes every weight NaN
at the first step, and a missing class label only fails mid-epoch, so both are reported up front, naming the rows
(and the DataFrame column they were read from)."""

import math
from collections.abc import Callable, Sequence
from numbers import Number
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from tiers.dispatch import L

if TYPE_CHECKING:
    from tiers.data.core import TfmdLists

__all__ = ["MissingValueError", "NonFiniteValueError", "is_missing"]


class MissingValueError(ValueError):
    "A target (label or regression value) is missing (NaN or None) in some rows."


class NonFiniteValueError(ValueError):
    "A regression target is not a finite number in some rows: infinite, or text that is not a number."


def is_missing(o: Any) -> bool:
    """Whether `o` is, or holds, a missing value: None, a float NaN, pandas' NA/NaT, or a NaN inside a list, tuple,
    NumPy array or tensor.

    >>> is_missing(float("nan")), is_missing([1.0, None]), is_missing("a"), is_missing(0)
    (True, True, False, False)
    """
    if o is None:
        return True
    if isinstance(o, float | np.floating):
        return math.isnan(o)
    if isinstance(o, Number | str | bytes):
        return False
    if isinstance(o, Tensor):
        return o.is_floating_point() and bool(o.isnan().any())
    if isinstance(o, np.ndarray):
        if o.dtype.kind in "fc":
            return bool(np.isnan(o).any())
        return o.dtype == object and any(is_missing(x) for x in o.ravel())
    if isinstance(o, list | tuple | L):
        return any(is_missing(x) for x in o)
    return type(o).__name__ in ("NAType", "NaTType")


def _column_of(fs):
    "The DataFrame column a single-column `ColReader` among `fs` reads (a list of them for a multi-column one)."
    from tiers.data.getters import ColReader

    for f in fs:
        if isinstance(f, ColReader):
            return f.cols[0] if len(f.cols) == 1 else list(f.cols)
    return None


def _values(tl, fs) -> list:
    "The items of the TfmdLists `tl` through the transforms `fs` (a whole DataFrame column at once when possible)."
    store = tl.items.items
    col = _column_of(fs[:1])
    if col is not None and not isinstance(col, list) and len(fs) == 1 and hasattr(store, "iloc") and not (
            fs[0].pref or fs[0].suff or fs[0].label_delim is not None):
        ser = store.iloc[:, col] if isinstance(col, int) else store[col] if col in store else None
        if ser is not None:
            return ser.tolist()
    out = []
    for i in range(len(tl.items)):
        o = tl.items[i]
        for f in fs:
            o = f(o, split_idx=tl.split_idx)
        out.append(o)
    return out


def _nonfinite(vals: list, to_numbers: Callable[[Any], Any]) -> list[int]:
    """The positions of `vals` that `to_numbers` refuses (text that is not a number) or makes into numbers that are
    not all finite. Values without text are checked as one array when they have one shape (fast)."""
    if not any(isinstance(v, str | bytes) for v in vals):
        try:
            arr = np.asarray(vals, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or unusual values: one by one below
            pass
        else:
            if arr.size == 0:
                return []
            return np.flatnonzero(~np.isfinite(arr.reshape(len(vals), -1)).all(1)).tolist()
    bad = []
    for i, v in enumerate(vals):
        try:
            t = np.asarray(to_numbers(v), dtype=np.float64)
        except (TypeError, ValueError):
            bad.append(i)
            continue
        if not np.isfinite(t).all():
            bad.append(i)
    return bad


def check_no_missing(tl: "TfmdLists", fs: Sequence[Callable[..., Any]], what: str,
                     finite: Callable[[Any], Any] | None = None) -> None:
    """Raise `MissingValueError` when an item of `tl` is missing after the transforms `fs` (the steps before the one
    that needs values): name the rows (DataFrame index labels, else positions), the items and the column. With
    `finite` (the conversion to numbers the next step makes, e.g. `RegressionSetup`), then raise
    `NonFiniteValueError` for values it refuses (text that is not a number) or makes infinite."""
    vals = _values(tl, fs)
    if not vals:
        return
    bad = [i for i, v in enumerate(vals) if is_missing(v)]
    col = _column_of(fs)
    cols = col if isinstance(col, list) else [col]
    if bad:
        funcs = [n for n in (getattr(f, "name", None) for f in fs) if n and n != "noop"] if col is None else []
        fix = (f"drop or fill those rows first (df.dropna(subset={cols!r}) or df[{cols!r}].fillna(...))"
               if col is not None else
               f"{funcs[-1]} returned None or NaN for them: make it return a label for every item, or leave those "
               "items out (e.g. in get_items, or filter the list) before building the DataLoaders" if funcs else
               "drop those items (or fill their values) before building the DataLoaders")
        raise MissingValueError(f"{what}: {len(bad)} of {len(vals)} values{_where(col)} are missing (NaN or None), in "
                                f"rows {_rows(tl, bad)}; training on them would give NaN losses or fail mid-epoch. "
                                f"{fix}.")
    if finite is None:
        return
    bad = _nonfinite(vals, finite)
    if not bad:
        return
    fix = (f"drop or fix those rows first (df[{cols!r}] = df[{cols!r}].apply(pd.to_numeric, errors='coerce') turns "
           "text into numbers, df.replace([np.inf, -np.inf], np.nan).dropna(subset=...) drops the rest)"
           if col is not None else "drop those items (or fix their values) before building the DataLoaders")
    shown = [vals[i] for i in bad[:3]]
    raise NonFiniteValueError(f"{what}: {len(bad)} of {len(vals)} values{_where(col)} are not finite numbers "
                              f"(infinite, or text that is not a number), in rows {_rows(tl, bad)}; values "
                              f"{shown!r}; a target must be a finite number (text such as '3.5' is read with "
                              f"float()): {fix}.")


def _rows(tl: "TfmdLists", bad: list[int]) -> str:
    """The rows at positions `bad`, the first ten: DataFrame index labels, else positions followed by the first
    items."""
    store = tl.items.items
    more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
    if hasattr(store, "index") and hasattr(store, "iloc"):
        return f"{list(store.index[bad[:10]])}{more}"
    return f"{bad[:10]}{more}; items {[tl.items[i] for i in bad[:3]]}"


def _where(col: Any) -> str:
    "The DataFrame column(s) the values were read from, for a message."
    if col is None:
        return ""
    return f" of columns {col}" if isinstance(col, list) else f" of column {col!r}"
