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

__all__ = ["MissingValueError", "is_missing"]


class MissingValueError(ValueError):
    "A target (label or regression value) is missing (NaN or None) in some rows."


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


def check_no_missing(tl: "TfmdLists", fs: Sequence[Callable[..., Any]], what: str) -> None:
    """Raise `MissingValueError` when an item of `tl` is missing after the transforms `fs` (the steps before the one
    that needs values): name the rows (DataFrame index labels, else positions), the items and the column."""
    vals = _values(tl, fs)
    bad = [i for i, v in enumerate(vals) if is_missing(v)]
    if not bad:
        return
    store = tl.items.items
    col = _column_of(fs)
    rows = list(store.index[bad]) if hasattr(store, "index") and hasattr(store, "iloc") else bad
    show = rows[:10]
    more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
    where = "" if col is None else f" of columns {col}" if isinstance(col, list) else f" of column {col!r}"
    items = "" if hasattr(store, "iloc") else f"; items {[tl.items[i] for i in bad[:3]]}"
    cols = col if isinstance(col, list) else [col]
    fix = (f"drop or fill those rows first (df.dropna(subset={cols!r}) or df[{cols!r}].fillna(...))" if col is not None
           else "drop those items (or fill their values) before building the DataLoaders")
    raise MissingValueError(f"{what}: {len(bad)} of {len(vals)} values{where} are missing (NaN or None), in rows "
                            f"{show}{more}{items}; training on them would give NaN losses or fail mid-epoch. {fix}.")
