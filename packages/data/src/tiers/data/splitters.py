"""Splitters: functions from a collection of items to `(train_idxs, valid_idxs)`, all reproducible under a seed.

A splitter never touches global random state: a `seed` seeds a private generator; without one, the split is drawn
from torch's global generator, so `set_seed` (or `torch.manual_seed`) makes it repeat.
"""

import math
from collections.abc import Callable, Hashable, Iterable, Sequence, Sized
from pathlib import Path

import torch

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


def _mask_split(mask: Sequence[bool]) -> tuple[L, L]:
    return L(i for i, m in enumerate(mask) if not m), L(i for i, m in enumerate(mask) if m)


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

    return _inner


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

    return _inner


def IndexSplitter(valid_idx: Iterable[int]) -> Callable:
    "Put the items at positions `valid_idx` in the validation set and the rest in the training set."
    valid_idx = [int(i) for i in valid_idx]

    def _inner(o):
        n = len(o)
        bad = [i for i in valid_idx if not -n <= i < n]
        if bad:
            raise IndexError(f"IndexSplitter: indices {bad[:5]} are out of range for {n} items.")
        valid = sorted({i % n for i in valid_idx})
        vset = set(valid)
        return L(i for i in range(n) if i not in vset), L(valid)

    return _inner


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

    return _inner


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

    return _inner


def FuncSplitter(func: Callable) -> Callable:
    "Put the items for which `func(item)` is true in the validation set."

    def _inner(o):
        return _mask_split([bool(func(x)) for x in o])

    return _inner


def MaskSplitter(mask: Sequence[bool]) -> Callable:
    "Put the items where the boolean `mask` is true in the validation set."
    mask = [bool(m) for m in mask]

    def _inner(o):
        if len(mask) != len(o):
            raise ValueError(f"MaskSplitter: the mask has {len(mask)} entries but there are {len(o)} items.")
        return _mask_split(mask)

    return _inner


def FileSplitter(fname: str | Path) -> Callable:
    "Put the items whose file name is listed (one per line) in the text file `fname` in the validation set."
    fname = Path(fname)
    if not fname.is_file():
        raise FileNotFoundError(f"FileSplitter: the list of validation file names {fname} does not exist.")
    valid = set(fname.read_text().split())

    def _inner(o):
        return _mask_split([Path(x).name in valid for x in o])

    return _inner


def ColSplitter(col: str | int = "is_valid", on: Hashable | Iterable[Hashable] | None = None) -> Callable:
    """Split a DataFrame by its column `col`: rows where it is true go to the validation set (or, with `on`, rows
    whose value is `on` or in `on`)."""

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
            return _mask_split(c.values.astype(bool))
        return _mask_split(c.isin(_names(on) if not isinstance(on, str | int | float) else [on]).values)

    return _inner


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

    return _inner
