"""Splitters: functions from a collection of items to `(train_idxs, valid_idxs)`, all reproducible under a seed.

A splitter never touches global random state: a `seed` seeds a private generator; without one, the split is drawn
from torch's global generator, so `set_seed` (or `torch.manual_seed`) makes it repeat.

Each splitter's function is named after the call that made it (`ColSplitter('is_valid')`), so messages about a split
say which one, and carries `empty_valid`: True when its settings ask for no validation items (`valid_pct=0`, an empty
`valid_idx`, a validation column that is all False), False when they ask for some (so an empty validation set is a
mistake, e.g. a `valid_pct` too small for the items or a folder name that matches nothing). `DataBlock` trains on
every item in the first case and refuses the second.
"""

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence, Sized
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tiers.data.missing import MissingValueError, is_missing
from tiers.dispatch import L

__all__ = ["RandomSplitter", "TrainTestSplitter", "IndexSplitter", "EndSplitter", "GrandparentSplitter",
           "FuncSplitter", "MaskSplitter", "FileSplitter", "ColSplitter", "RandomSubsetSplitter"]


def _generator(seed: int | None) -> torch.Generator | None:
    return None if seed is None else torch.Generator().manual_seed(seed)


def _perm(n: int, seed: int | None) -> list[int]:
    return torch.randperm(n, generator=_generator(seed)).tolist()


def _check_pct(name: str, pct: float) -> None:
    if not 0 <= pct <= 1:
        raise ValueError(f"{name} must be between 0 and 1 (a fraction of the items), got {pct!r}.")


def _mask_split(mask: Sequence[bool] | np.ndarray) -> tuple[L, L]:
    m = np.asarray(mask, dtype=bool)
    return L(np.flatnonzero(~m).tolist()), L(np.flatnonzero(m).tolist())


def _named(fn: Callable, name: str, empty_valid: bool | None,
           explain_empty: Callable[[Any], str] | None = None) -> Callable:
    """Give the splitter function `fn` its public `name` (for messages), its `empty_valid` intent (see the module)
    and, optionally, `explain_empty(items)`: what in the items a refused empty validation set comes from."""
    fn.__name__ = fn.__qualname__ = name
    fn.empty_valid = empty_valid  # type: ignore[attr-defined]  # a plain attribute on a function object
    if explain_empty is not None:
        fn.explain_empty = explain_empty  # type: ignore[attr-defined]  # same
    return fn


def _some(vals: Sequence[Any], k: int = 5) -> str:
    "The first `k` of `vals` as a list, with the total when there are more."
    vals = list(vals)
    return f"{vals[:k]!r}" + (f" ... ({len(vals)} in all)" if len(vals) > k else "")


_TRUE_FALSE = {"true": True, "false": False}


def _one_flag(o: Any) -> bool | None:
    "A validation flag as a bool (True/False, 0/1, 'True'/'False' in any case), or None when `o` is not one."
    if isinstance(o, bool | np.bool_):
        return bool(o)
    if isinstance(o, Integral | Real) and not is_missing(o) and o in (0, 1):
        return bool(o)
    if isinstance(o, str):
        return _TRUE_FALSE.get(o.strip().lower())
    return None


def _as_mask(values: Any, who: str, what: str, rows: Sequence[Any] | None = None, fix: str | None = None) -> np.ndarray:
    """The boolean mask that `values` (flags: bool, 0/1, 'True'/'False'; a NumPy array, a list or a pandas Series)
    spell. A missing flag raises `MissingValueError` and any other value a ValueError: `bool()` would read NaN and
    every non-empty string ('False', 'no', '0') as True and put those rows in the validation set. Messages start with
    `who`, call the values `what`, name rows by `rows` (their labels; positions when None) and end with `fix` for
    values that are not flags (default: how to turn a DataFrame column into flags)."""
    if hasattr(values, "to_numpy"):  # a pandas Series: its NA-aware values (nullable dtypes hold pd.NA)
        values = values.to_numpy(dtype=object) if values.dtype.kind not in "biuf" else values.to_numpy()
    if not isinstance(values, np.ndarray):
        values = list(values)
    a = np.asarray(values)
    if a.dtype.kind in "US":  # text kept as Python objects (NumPy would also turn True into 'True' beside text)
        a = np.asarray(values, dtype=object)
    if a.ndim != 1:
        raise ValueError(f"{who}: {what} must be one flag per item (1-d), got shape {a.shape}.")
    if a.dtype.kind == "b":
        return a
    if a.dtype.kind in "iuf":
        missing = np.isnan(a) if a.dtype.kind == "f" else np.zeros(len(a), dtype=bool)
        ok = ~missing & ((a == 0) | (a == 1))
        mask = a == 1
    else:
        missing = np.array([is_missing(o) for o in a], dtype=bool)
        flags = [None if m else _one_flag(o) for o, m in zip(a, missing)]
        ok = np.array([f is not None for f in flags], dtype=bool)
        mask = np.array([bool(f) for f in flags], dtype=bool)
    if missing.any():
        pos = np.flatnonzero(missing)
        labels = pos.tolist() if rows is None else np.asarray(rows, dtype=object)[pos].tolist()
        where = "rows (index labels)" if rows is not None else "positions"
        raise MissingValueError(f"{who}: {what} is missing (NaN/None) at {where} {_some(labels)}; each item must be "
                                "either training (False) or validation (True), and bool(NaN) is True, so those rows "
                                "would go to validation unseen. Fill the gaps (e.g. df[col] = df[col].fillna(False)) "
                                "or drop those rows.")
    bad = ~ok
    if bad.any():
        vals = list(dict.fromkeys(a[bad].tolist()))
        example = next((v for v in vals if str(v).strip().lower() in ("yes", "y", "valid", "validation", "1", "t")),
                       vals[0])
        raise ValueError(f"{who}: {what} (dtype {a.dtype}) holds values {_some(vals)} that are not validation flags "
                         "(True/False, 0/1, or the text 'True'/'False'); bool() would count every non-empty string "
                         "and every non-zero number as validation. " + (fix or "Say which value marks a validation row: "
                         f"convert the column first (df[col] = df[col] == {example!r}) or use ColSplitter(col, "
                         f"on={example!r})."))
    return mask


def RandomSplitter(valid_pct: float = 0.2, seed: int | None = None) -> Callable:
    """Split items at random: `valid_pct` of them (rounded down) go to the validation set.

    >>> RandomSplitter(0.25, seed=0)(list("abcdefgh"))[1]   # doctest: +SKIP
    [1, 6]
    """
    _check_pct("RandomSplitter: valid_pct", valid_pct)

    def _inner(o):
        idxs = _perm(len(o), seed)
        cut = int(valid_pct * len(o))
        return L(idxs[cut:]), L(idxs[:cut])

    def _explain(o) -> str:
        return f"int({valid_pct} * {len(o)} items) is 0"

    return _named(_inner, f"RandomSplitter(valid_pct={valid_pct!r}, seed={seed!r})", valid_pct == 0, _explain)


def _counts(n: int, size: float | int | None, name: str) -> int | None:
    if size is None:
        return None
    if isinstance(size, float):
        if not 0 < size < 1:
            raise ValueError(f"TrainTestSplitter: {name}={size} as a fraction must be strictly between 0 and 1.")
        return math.ceil(size * n) if name == "test_size" else math.floor(size * n)
    if not 0 <= size <= n:
        raise ValueError(f"TrainTestSplitter: {name}={size} items, but there are only {n} items.")
    return int(size)


def _allocate(class_counts: list[int], total: int) -> list[int]:
    "Share `total` among classes in proportion to `class_counts`, by largest remainder (ties to bigger classes)."
    n = sum(class_counts)
    exact = [c * total / n for c in class_counts]
    alloc = [math.floor(e) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - alloc[i]), -class_counts[i], i))
    for i in order[: total - sum(alloc)]:
        alloc[i] += 1
    return alloc


def TrainTestSplitter(test_size: float | int | None = 0.2, random_state: int | None = None,
                      stratify: Iterable[Hashable] | None = None,
                      train_size: float | int | None = None, shuffle: bool = True) -> Callable:
    """Split items into train and test sets as scikit-learn's `train_test_split` does (`test_size` and `train_size`
    as fractions or counts, either one None for the complement of the other; a fractional test size rounds up),
    optionally keeping the class proportions of the labels `stratify` (one label per item) in both sets.
    Implemented here: scikit-learn is not needed.

    >>> trn, val = TrainTestSplitter(0.5, random_state=1, stratify=list("aabb"))(range(4))
    >>> sorted(val)   # doctest: +SKIP
    [1, 2]
    """
    if test_size is None and train_size is None:
        raise ValueError("TrainTestSplitter: test_size and train_size are both None; give at least one of them (a "
                         "fraction or a count of the items), e.g. test_size=0.2.")

    def _inner(o: Sized) -> tuple[L, L]:
        n = len(o)
        n_test = _counts(n, test_size, "test_size")
        n_train = _counts(n, train_size, "train_size")
        if n_test is None:
            assert n_train is not None  # refused above: one of the two sizes is given
            n_test = n - n_train
        if n_train is None:
            n_train = n - n_test
        if n_train + n_test > n:
            raise ValueError(f"TrainTestSplitter: train ({n_train}) + test ({n_test}) items exceed the {n} items.")
        if stratify is None:
            idxs = _perm(n, random_state) if shuffle else list(range(n))
            return L(idxs[:n_train]), L(idxs[n_train:n_train + n_test])
        if not shuffle:
            raise ValueError("TrainTestSplitter: a stratified split needs shuffle=True (the classes are sampled).")
        labels = list(stratify)
        if len(labels) != n:
            raise ValueError(f"TrainTestSplitter: stratify has {len(labels)} labels for {n} items; give one per item.")
        by_class: dict = {}
        for i, lbl in enumerate(labels):
            by_class.setdefault(lbl, []).append(i)
        classes = sorted(by_class, key=str)
        if min(len(by_class[c]) for c in classes) < 2:
            rare = [c for c in classes if len(by_class[c]) < 2]
            raise ValueError(f"TrainTestSplitter: classes {rare} have a single item, so they cannot be in both the "
                             "train and the test set; drop them or merge them, or do not stratify.")
        sizes = [len(by_class[c]) for c in classes]
        test_alloc = _allocate(sizes, n_test)
        left = [s - t for s, t in zip(sizes, test_alloc)]
        train_alloc = _allocate(left, n_train) if n_train < sum(left) else left
        g = _generator(random_state)
        train, test = [], []
        for c, nt, ntr in zip(classes, test_alloc, train_alloc):
            members = by_class[c]
            perm = [members[j] for j in torch.randperm(len(members), generator=g).tolist()]
            test += perm[:nt]
            train += perm[nt:nt + ntr]
        # Mix the classes so neither set comes out grouped by label.
        train = [train[j] for j in torch.randperm(len(train), generator=g).tolist()]
        test = [test[j] for j in torch.randperm(len(test), generator=g).tolist()]
        return L(train), L(test)

    return _named(_inner, f"TrainTestSplitter(test_size={test_size!r}, train_size={train_size!r})", test_size == 0)


def _positions(valid_idx: Any) -> tuple[list[int] | None, np.ndarray | None]:
    """`valid_idx` as integer positions, or as a boolean mask when every entry is a bool (a NumPy/pandas bool array
    or Python bools): `int(True)` is 1, so reading a mask as positions would validate on rows 0 and 1 only."""
    if hasattr(valid_idx, "to_numpy"):  # a pandas Series/Index: its values, NA-aware
        valid_idx = valid_idx.to_numpy(dtype=object) if valid_idx.dtype.kind not in "biuf" else valid_idx.to_numpy()
    vals = np.asarray(valid_idx) if isinstance(valid_idx, np.ndarray) else np.asarray(list(valid_idx), dtype=object)
    if vals.ndim != 1:
        raise ValueError(f"IndexSplitter: valid_idx must be a flat list of positions (or a boolean mask), got shape "
                         f"{vals.shape}.")
    if vals.dtype.kind == "b" or (len(vals) and all(isinstance(o, bool | np.bool_) for o in vals)):
        return None, vals.astype(bool)
    if vals.dtype.kind in "iu":
        return vals.astype(np.int64).tolist(), None
    bools = [o for o in vals if isinstance(o, bool | np.bool_)]
    if bools:
        raise TypeError(f"IndexSplitter: valid_idx mixes booleans ({_some(bools, 3)}) with positions; pass either "
                        "positions (e.g. np.flatnonzero(mask)) or a boolean mask with one flag per item.")
    bad = [o for o in vals if not (isinstance(o, Integral) or (isinstance(o, Real) and not is_missing(o)
                                                                 and float(o).is_integer()))]
    if bad:
        raise TypeError(f"IndexSplitter: valid_idx holds {_some(bad)}, which are not integer positions; pass 0-based "
                        "positions (like iloc), e.g. np.flatnonzero(df.is_valid), or a boolean mask.")
    return [int(o) for o in vals], None


def IndexSplitter(valid_idx: Iterable[int] | Iterable[bool]) -> Callable:
    """Put the items at positions `valid_idx` (0-based, like `iloc`; negative ones count from the end) in the
    validation set and the rest in the training set. A boolean mask (a bool array or Series, such as `df.is_valid`)
    is read as a mask, one flag per item, not as positions 0 and 1. A position given twice is refused: the item would
    be validated twice. An empty `valid_idx` means no validation set (train on every item)."""
    idxs, mask = _positions(valid_idx)
    size = f"{len(mask)} flags" if mask is not None else f"{len(idxs or [])} positions"

    def _inner(o):
        n = len(o)
        if mask is not None:
            if len(mask) != n:
                raise ValueError(f"IndexSplitter: valid_idx is a boolean mask of {len(mask)} flags but there are {n} "
                                 "items; give one flag per item, or the positions (np.flatnonzero(mask)).")
            return _mask_split(mask)
        assert idxs is not None  # one of the two is set by _positions
        bad = [i for i in idxs if not -n <= i < n]
        if bad:
            raise IndexError(f"IndexSplitter: indices {bad[:5]} are out of range for {n} items.")
        norm = [i % n for i in idxs]
        if len(set(norm)) != len(norm):
            dups = sorted(i for i, k in Counter(norm).items() if k > 1)
            neg = " (a negative index is the position it counts back to)" if min(idxs) < 0 else ""
            raise ValueError(f"IndexSplitter: valid_idx names positions {_some(dups)} more than once{neg}; the "
                             "validation set would hold those items twice. Pass each position once, e.g. "
                             "sorted(set(valid_idx)).")
        valid = sorted(norm)
        vset = set(valid)
        return L(i for i in range(n) if i not in vset), L(valid)

    return _named(_inner, f"IndexSplitter(valid_idx=<{size}>)", True)


def EndSplitter(valid_pct: float = 0.2, valid_last: bool = True) -> Callable:
    "Put the last `valid_pct` of the items (the first, when `valid_last=False`) in the validation set, in order."
    _check_pct("EndSplitter: valid_pct", valid_pct)

    def _inner(o):
        n = len(o)
        cut = int(valid_pct * n)
        idxs = list(range(n))
        if valid_last:
            return L(idxs[: n - cut]), L(idxs[n - cut:])
        return L(idxs[cut:]), L(idxs[:cut])

    return _named(_inner, f"EndSplitter(valid_pct={valid_pct!r}, valid_last={valid_last!r})", valid_pct == 0)


def _names(o) -> set:
    return {o} if isinstance(o, str) else set(o)


def GrandparentSplitter(train_name: str | Sequence[str] = "train",
                        valid_name: str | Sequence[str] = "valid") -> Callable:
    """Split file paths by the name of their grandparent folder (`train/cat/1.jpg` -> `train`); items under neither
    name are left out."""
    train_names, valid_names = _names(train_name), _names(valid_name)

    def _inner(o):
        gp = [Path(p).parent.parent.name for p in o]
        return L(i for i, g in enumerate(gp) if g in train_names), L(i for i, g in enumerate(gp) if g in valid_names)

    def _explain(o) -> str:
        gps = sorted({Path(p).parent.parent.name for p in list(o)[:10000]})
        return f"no item is in a folder named {sorted(valid_names)} two levels up; the items' grandparent folders " \
               f"are {_some(gps, 8)}: pass valid_name= with yours"

    return _named(_inner, f"GrandparentSplitter(train_name={train_name!r}, valid_name={valid_name!r})", False,
                  _explain)


def FuncSplitter(func: Callable) -> Callable:
    """Put the items for which `func(item)` is true in the validation set. Text other than 'True'/'False' and NaN
    are refused (`bool()` would read them as true). When `func` is true for no item, the validation set is empty:
    `DataBlock` then trains on every item with a warning (a test that matches nothing is often a typo)."""

    name = f"FuncSplitter({getattr(func, '__name__', repr(func))})"

    def _inner(o):
        res = [func(x) for x in o]
        if any(isinstance(r, str | bytes) or (isinstance(r, Real) and is_missing(r)) for r in res):
            # Text ('valid'/'train') and NaN are true for bool(): every such item would go to validation.
            res = [r if isinstance(r, str | bytes) or (isinstance(r, Real) and is_missing(r)) else bool(r) for r in res]
            return _mask_split(_as_mask(res, name, "the values func returned", fix="Return True for a validation "
                                        "item and False for a training one, e.g. lambda o: label(o) == 'valid'."))
        return _mask_split([bool(r) for r in res])

    return _named(_inner, name, None)


def MaskSplitter(mask: Sequence[bool]) -> Callable:
    """Put the items where the boolean `mask` is true in the validation set (flags: bools, 0/1, or the text
    'True'/'False'; NaN and other text are refused rather than read as True)."""
    flags = _as_mask(mask, "MaskSplitter", "the mask")

    def _inner(o):
        if len(flags) != len(o):
            raise ValueError(f"MaskSplitter: the mask has {len(flags)} entries but there are {len(o)} items.")
        return _mask_split(flags)

    return _named(_inner, f"MaskSplitter(<{len(flags)} flags>)", True)


def FileSplitter(fname: str | Path) -> Callable:
    "Put the items whose file name is listed (one per line) in the text file `fname` in the validation set."
    fname = Path(fname)
    if not fname.is_file():
        raise FileNotFoundError(f"FileSplitter: the list of validation file names {fname} does not exist.")
    valid = set(fname.read_text().split())

    def _inner(o):
        return _mask_split([Path(x).name in valid for x in o])

    # An empty list asks for no validation items; names that match no item are a mistake.
    def _explain(o) -> str:
        return f"none of the {len(valid)} names in {fname} (e.g. {_some(sorted(valid), 3)}) is the file name of an " \
               f"item (e.g. {_some([Path(x).name for x in list(o)[:3]], 3)}); list bare file names, one per line"

    return _named(_inner, f"FileSplitter({str(fname)!r})", not valid, _explain)


def ColSplitter(col: str | int = "is_valid", on: Hashable | Iterable[Hashable] | None = None) -> Callable:
    """Split a DataFrame by its column `col`: rows where it is true go to the validation set (or, with `on`, rows
    whose value is `on` or in `on`). Without `on`, the column must hold flags: bools, 0/1, or the text 'True'/'False'
    (any case, as a CSV written by another tool has them); a missing value (NaN/None) or other text ('yes', 'no')
    is refused naming the rows or values, as `bool()` would count it as validation. A column that is all False means
    no validation set (train on every row)."""

    def _inner(o):
        if not hasattr(o, "iloc"):
            raise TypeError(f"ColSplitter needs a pandas DataFrame, got a {type(o).__name__}.")
        if isinstance(col, int):
            c = o.iloc[:, col]
        elif col in o.columns:
            c = o[col]
        else:
            raise KeyError(f"ColSplitter: no column {col!r} in the DataFrame; its columns are {list(o.columns)}.")
        if on is None:
            return _mask_split(_as_mask(c, name, f"the column {col!r}", rows=o.index))
        return _mask_split(c.isin(_names(on) if not isinstance(on, str | int | float) else [on]).values)

    def _explain(o) -> str:
        c = o.iloc[:, col] if isinstance(col, int) else o[col]
        return f"no value of the column {col!r} is {on!r}; its values are {_some(sorted(map(str, c.unique())), 8)}"

    name = f"ColSplitter({col!r})" if on is None else f"ColSplitter({col!r}, on={on!r})"
    return _named(_inner, name, on is None, _explain)


def RandomSubsetSplitter(train_sz: float, valid_sz: float, seed: int | None = None) -> Callable:
    "Take random, disjoint subsets of `train_sz` and `valid_sz` of the items (fractions) for training and validation."
    _check_pct("RandomSubsetSplitter: train_sz", train_sz)
    _check_pct("RandomSubsetSplitter: valid_sz", valid_sz)
    if train_sz + valid_sz > 1:
        raise ValueError(f"RandomSubsetSplitter: train_sz + valid_sz = {train_sz + valid_sz} is more than 1.")

    def _inner(o):
        n = len(o)
        ntr, nv = int(train_sz * n), int(valid_sz * n)
        idxs = _perm(n, seed)
        return L(idxs[:ntr]), L(idxs[ntr:ntr + nv])

    return _named(_inner, f"RandomSubsetSplitter(train_sz={train_sz!r}, valid_sz={valid_sz!r}, seed={seed!r})",
                  valid_sz == 0)
