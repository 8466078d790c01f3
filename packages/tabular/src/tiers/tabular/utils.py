"""DataFrame helpers for tabular work: date features (`add_datepart`, `add_elapsed_times`), splitting columns into
categorical and continuous (`cont_cat_split`), and shrinking dtypes (`df_shrink`)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["add_datepart", "add_elapsed_times", "cont_cat_split", "df_shrink", "df_shrink_dtypes", "make_date"]

_DATE_ATTRS = ["Year", "Month", "Week", "Day", "Dayofweek", "Dayofyear", "Is_month_end", "Is_month_start",
               "Is_quarter_end", "Is_quarter_start", "Is_year_end", "Is_year_start"]


def make_date(df: pd.DataFrame, date_field: str) -> None:
    "Make `df[date_field]` a datetime64 column (parsing strings), in place."
    if date_field not in df.columns:
        raise KeyError(f"make_date: column {date_field!r} not in the DataFrame (columns: {list(df.columns)[:30]}).")
    col = df[date_field]
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_localize(None)
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        col = pd.to_datetime(col)
    df[date_field] = col


def add_datepart(df: pd.DataFrame, field_name: str, prefix: str | None = None, drop: bool = True,
                 time: bool = False) -> pd.DataFrame:
    """Replace the date column `field_name` by its parts (Year, Month, Week, Day, Dayofweek, Dayofyear, the
    month/quarter/year start/end flags, and `Elapsed` seconds since 1970; Hour/Minute/Second with `time`), named
    `prefix` + part (default prefix: the field name without a trailing 'date'). Changes and returns `df`.

    >>> df = add_datepart(pd.DataFrame({"saledate": ["2020-01-31"]}), "saledate")
    >>> int(df["saleYear"][0]), int(df["saleDay"][0]), bool(df["saleIs_month_end"][0])
    (2020, 31, True)
    """
    make_date(df, field_name)
    field = df[field_name]
    prefix = re.sub("[Dd]ate$", "", field_name) if prefix is None else prefix
    attrs = _DATE_ATTRS + (["Hour", "Minute", "Second"] if time else [])
    for n in attrs:
        if n == "Week":
            df[prefix + n] = field.dt.isocalendar().week.astype("float32").to_numpy() if len(field) else []
        else:
            attr = {"Dayofweek": "day_of_week", "Dayofyear": "day_of_year"}.get(n, n.lower())
            df[prefix + n] = getattr(field.dt, attr)
    mask = ~field.isna()
    df[prefix + "Elapsed"] = np.where(mask, field.to_numpy("datetime64[s]").astype(np.int64), np.nan)
    if drop:
        del df[field_name]
    return df


def _elapsed(s: pd.Series, dates: pd.Series) -> np.ndarray:
    "Days since the last True of `s` (NaN before the first)."
    last = dates.where(s.astype(bool)).ffill()
    return ((dates - last).dt.days).to_numpy(np.float64)


def add_elapsed_times(df: pd.DataFrame, field_names: list[str], date_field: str, base_field: str) -> pd.DataFrame:
    """For each boolean event column in `field_names`, add `After<field>` (days since the last event) and
    `Before<field>` (days to the next event), computed within each group of `base_field` in `date_field` order. Returns a new frame in the original order.

    >>> df = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=4), "store": 1, "hol": [1, 0, 0, 1]})
    >>> add_elapsed_times(df, ["hol"], "date", "store")["Afterhol"].tolist()
    [0.0, 1.0, 2.0, 0.0]
    """
    field_names = [field_names] if isinstance(field_names, str) else list(field_names)
    for c in [*field_names, date_field, base_field]:
        if c not in df.columns:
            raise KeyError(f"add_elapsed_times: column {c!r} not in the DataFrame.")
    df = df.copy()
    make_date(df, date_field)
    order = df.sort_values([base_field, date_field]).index
    work = df.loc[order]
    for f in field_names:
        after = np.empty(len(work))
        before = np.empty(len(work))
        pos = 0
        for _, g in work.groupby(base_field, sort=False):
            n = len(g)
            after[pos:pos + n] = _elapsed(g[f], g[date_field])
            rev = g.iloc[::-1]
            before[pos:pos + n] = 0.0 - _elapsed(rev[f], rev[date_field])[::-1]
            pos += n
        work[f"After{f}"] = after
        work[f"Before{f}"] = before
    return work.loc[df.index]


def cont_cat_split(df: pd.DataFrame, max_card: int = 20, dep_var: str | list | None = None) -> tuple[list, list]:
    """Split the columns of `df` (minus `dep_var`) into continuous and categorical names: floats, and integers with
    more than `max_card` distinct values, are continuous; everything else is categorical.

    >>> cont_cat_split(pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "y"], "t": [0, 1]}), dep_var="t")
    (['a'], ['b'])
    """
    deps = [] if dep_var is None else [dep_var] if isinstance(dep_var, str) else list(dep_var)
    cont, cat = [], []
    for c in df.columns:
        if c in deps:
            continue
        col = df[c]
        if pd.api.types.is_float_dtype(col) or (pd.api.types.is_integer_dtype(col) and col.nunique() > max_card):
            cont.append(c)
        else:
            cat.append(c)
    return cont, cat


def _smallest_int(lo, hi, int2uint: bool):
    types: list[Any] = ([np.uint8, np.uint16, np.uint32, np.uint64] if int2uint and lo >= 0 else []) + \
        [np.int8, np.int16, np.int32, np.int64]
    for t in types:
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            return t
    return np.int64


def df_shrink_dtypes(df: pd.DataFrame, skip: list | None = None, obj2cat: bool = True,
                     int2uint: bool = False) -> dict:
    """The smaller dtypes `df_shrink` would give each column: floats to float32, integers to the smallest type that
    holds their range, object columns to `category` when `obj2cat` and fewer than half the values are distinct."""
    skipped = set(skip or [])
    res: dict[str, Any] = {}
    for c in df.columns:
        if c in skipped:
            continue
        col = df[c]
        dt = col.dtype
        if pd.api.types.is_bool_dtype(dt) or isinstance(dt, pd.CategoricalDtype):
            continue
        if pd.api.types.is_float_dtype(dt) and dt != np.float32 and dt.itemsize > 4:
            res[c] = np.float32
        elif pd.api.types.is_integer_dtype(dt) and not isinstance(dt, pd.api.extensions.ExtensionDtype) \
                and len(col):
            t = _smallest_int(col.min(), col.max(), int2uint)
            if np.dtype(t) != dt:
                res[c] = t
        elif obj2cat and (pd.api.types.is_object_dtype(dt) or pd.api.types.is_string_dtype(dt)) and len(col) and col.nunique(dropna=True) < len(col) / 2:
            res[c] = "category"
    return res


def df_shrink(df: pd.DataFrame, skip: list | None = None, obj2cat: bool = True, int2uint: bool = False) -> pd.DataFrame:
    """A copy of `df` with smaller dtypes (see `df_shrink_dtypes`): typically half the memory or less.

    >>> df_shrink(pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})).dtypes.tolist()
    [dtype('int8'), dtype('float32')]
    """
    return df.astype(df_shrink_dtypes(df, skip, obj2cat, int2uint))
