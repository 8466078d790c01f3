"""Transformed collections: `TfmdLists` (items through one Pipeline, lazily) and `Datasets` (several Pipelines in
parallel over the same items), both split into subsets (train, valid...) by index lists.

A transform is set up on the training subset only (so a vocabulary or statistics never see validation data), and
each subset applies the transforms with its own `split_idx` (0 for training), so training-only augmentations skip
the validation set.
"""

import contextlib
import operator
import os
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tiers.data.dataloaders import DataLoaders
from tiers.data.missing import check_no_missing
from tiers.data.tfmdl import TfmdDL
from tiers.dispatch import GetAttr, L, coll_repr, ifnone, is_indexer, mask2idxs, tuplify
from tiers.pipeline import Pipeline, gather_attr_names, gather_attrs

__all__ = ["FilteredBase", "TfmdLists", "Datasets", "check_splits", "test_set", "decode_at", "show_at"]


def _split_list(s, n: int) -> list[int]:
    if isinstance(s, slice):
        return list(range(n))[s]
    if isinstance(s, range):
        return list(s)
    return mask2idxs(s)


_OVERLAP_FIX = ("pass disjoint index lists (e.g. from RandomSplitter()(items)), or allow_overlap=True to Datasets/"
                "TfmdLists if the overlap is deliberate (validating on training items, e.g. to check that a model can "
                "overfit them)")


def check_splits(splits: Sequence[Sequence[int]], n: int, who: str = "The splits", allow_overlap: bool = False,
                  fix: str = _OVERLAP_FIX) -> None:
    """Refuse split indices (lists of positions) out of range for `n` items with an `IndexError` and, unless
    `allow_overlap`, an item in two subsets with a `ValueError` naming the subsets and the first indices (validation
    metrics on trained items measure memorisation). The one check of `TfmdLists`, `Datasets` and `DataBlock`, for
    any collection split by index lists; its messages start with `who` and the overlap one ends with `fix`.

    >>> check_splits([[0, 1], [2]], 3)
    >>> check_splits([[0, 1], [1, 2]], 3)
    Traceback (most recent call last):
    ...
    ValueError: The splits put items in both the training and the validation sets (indices [1]); pass disjoint ...
    """
    idxs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in splits]
    for k, ix in enumerate(idxs):
        bad = ix[(ix < -n) | (ix >= n)]
        if len(bad):
            raise IndexError(f"{who}: split {k} holds indices {bad[:5].tolist()} out of range for {n} items; a "
                             "splitter must return positions in the list of items.")
    if allow_overlap:
        return
    names = ["training", "validation"] + [f"subset {k}" for k in range(2, len(splits))]
    owner = np.full(n, -1, dtype=np.int64)  # the first subset each item is in
    for k, ix in enumerate(idxs):
        ix = ix % max(n, 1)  # a negative index is the item it points at
        prev = owner[ix]
        clash = (prev >= 0) & (prev != k)
        if clash.any():
            j = int(prev[clash].min())
            both = np.unique(ix[prev == j]).tolist()
            more = f"... {len(both)} in all" if len(both) > 5 else ""
            raise ValueError(f"{who} put items in both the {names[j]} and the {names[k]} sets (indices "
                             f"{both[:5]}{more}); {fix}.")
        owner[ix] = k


def _floatish(o) -> bool:
    "A float scalar or a small float vector: what a plain regression target looks like."
    import numpy as np
    import torch

    if isinstance(o, float | np.floating):
        return True
    if isinstance(o, torch.Tensor):
        return o.is_floating_point() and o.ndim <= 1 and o.numel() <= 64
    if isinstance(o, np.ndarray):
        return o.dtype.kind == "f" and o.ndim <= 1 and o.size <= 64
    if isinstance(o, list | tuple) and 0 < len(o) <= 64:
        return all(isinstance(x, float | np.floating) for x in o)
    return False


def _check_float_target(tl, i: int) -> None:
    """A target pipeline with no transform that checks values (no `RegressionSetup`), whose outputs are floats:
    refuse NaN/None and infinite values in it too (a generic regression target)."""
    fs = list(tl.tfms.fs)
    if not len(tl) or any(getattr(f, "refuses_missing", None) is not None for f in fs):
        return
    src = tl.splits[0] if tl.splits and tl.splits[0] else [0]
    try:
        first = tl[src[0]]
    except Exception:  # noqa: BLE001 -- a failing item is reported where it is used, with its own context
        return
    if first is None or _floatish(first):
        check_no_missing(tl, fs, f"target {i} (float values)", finite=torch.as_tensor)


def _no_batches(dl) -> bool:
    "Whether the loader `dl` has items but no batch (its length counted the way its class counts it)."
    try:
        return bool(dl.n) and len(dl) == 0
    except TypeError:  # an unknown length: nothing to tell
        return False


class FilteredBase:
    "Shared by `TfmdLists` and `Datasets`: subsets from `splits`, and `dataloaders` over them."

    _dl_type: Callable[..., TfmdDL] = TfmdDL
    _dbunch_type: Callable[..., DataLoaders] = DataLoaders
    if TYPE_CHECKING:  # supplied by the subclass (TfmdLists, Datasets)
        def subset(self, i: int) -> Any: ...

        # Read-only here: an attribute of TfmdLists, a property of Datasets (declared only for the type checker: a
        # property on this class would shadow TfmdLists' attribute).
        @property
        def splits(self) -> list[list[int]]: ...

    def __init__(self, *args: Any, dl_type: Callable[..., TfmdDL] | None = None, **kwargs: Any):
        # For subclasses written for fastai (tabular collections), which pass their loader class this way.
        super().__init__(*args, **kwargs)
        if dl_type is not None:
            self._dl_type = dl_type

    @property
    def n_subsets(self) -> int:
        "How many subsets the splits define."
        return len(self.splits)

    @property
    def train(self) -> Any:
        "The training subset (`subset(0)`)."
        return self.subset(0)

    @property
    def valid(self) -> Any:
        "The validation subset (`subset(1)`)."
        return self.subset(1)

    def overlapping_splits(self) -> L:
        "The indices that are in more than one subset."
        counts = Counter(i for s in self.splits for i in s)
        return L(i for i, c in counts.items() if c > 1)

    def dataloaders(self, bs: int = 64, shuffle: bool = True, val_shuffle: bool = False, n: int | None = None,
                    path: str | os.PathLike = ".", dl_type: Callable[..., TfmdDL] | None = None,
                    dl_kwargs: list[dict] | None = None, device: str | torch.device | None = None,
                    drop_last: bool | None = None, val_bs: int | None = None, **kwargs: Any) -> DataLoaders:
        """`DataLoaders` over the subsets: the training loader (`shuffle`, `drop_last` defaulting to `shuffle`, but
        to False, with a warning, when the training set is smaller than `bs`: dropping would leave no batch) is
        built first and the others are `new` copies of it (no shuffling, `val_bs`); keyword arguments prefixed
        `val_` go to the other loaders only and `dl_kwargs` (one dict per subset) to each. `device` defaults to
        `default_device()`."""
        from tiers.tensors import default_device

        if device is None:
            device = default_device()
        dl_kwargs = dl_kwargs or [{} for _ in range(self.n_subsets)]
        if len(dl_kwargs) < self.n_subsets:
            raise ValueError(f"dataloaders: dl_kwargs has {len(dl_kwargs)} dicts for {self.n_subsets} subsets.")
        dl_type = dl_type or self._dl_type
        val_kw = {k[4:]: v for k, v in kwargs.items() if k.startswith("val_")}
        kwargs = {k: v for k, v in kwargs.items() if not k.startswith("val_")}
        auto_drop = drop_last is None and "drop_last" not in dl_kwargs[0]
        if drop_last is None:
            drop_last = shuffle
        trn_kw = {**kwargs, "bs": bs, "shuffle": shuffle, "drop_last": drop_last, "n": n, "device": device,
                  **dl_kwargs[0]}
        # With drop_last defaulted, the loader is first built without setting up its transforms, to see whether
        # dropping the last partial batch leaves no batch at all (a training set smaller than bs): an epoch of zero
        # steps trains nothing, so the short batch is kept. An explicit drop_last=True is left as asked.
        defer = (auto_drop and trn_kw["drop_last"] and isinstance(dl_type, type) and issubclass(dl_type, TfmdDL)
                 and trn_kw.get("do_setup", True))
        if defer:
            trn_kw["do_setup"] = False
        dl = dl_type(self.subset(0), **trn_kw)
        if auto_drop and trn_kw["drop_last"] and _no_batches(dl):
            dl.drop_last = False
            warnings.warn(f"dataloaders: the training set has {dl.n} items, fewer than bs={bs}; its one short batch "
                          "is kept (drop_last=False) so an epoch is not empty. Pass a smaller bs to get several "
                          "batches per epoch.", UserWarning, stacklevel=2)
        if defer:
            dl.setup_tfms(verbose=bool(kwargs.get("verbose")))
        dls = [dl]
        for i in range(1, self.n_subsets):
            kw = {**kwargs, "bs": bs if val_bs is None else val_bs, "shuffle": val_shuffle, "n": None,
                  "drop_last": False, **val_kw, **dl_kwargs[i]}
            kw.pop("verbose", None)
            dls.append(dl.new(self.subset(i), **kw))
        return self._dbunch_type(*dls, path=path, device=device)

    def weighted_dataloaders(self, wgts: Iterable[float] | None, bs: int = 64, **kwargs: Any) -> DataLoaders:
        """`dataloaders` whose training loader is a `WeightedDL`: each epoch draws its items with replacement, item
        `i` of the training subset with probability proportional to `wgts[i]` (one weight per training item)."""
        from tiers.data.sampling import WeightedDL

        xtra: list[dict] = [{} for _ in range(self.n_subsets - 1)]
        return self.dataloaders(bs=bs, dl_type=WeightedDL, dl_kwargs=[{"wgts": wgts}, *xtra], **kwargs)

    def partial_dataloaders(self, partial_n: int, bs: int = 64, **kwargs: Any) -> DataLoaders:
        """`dataloaders` whose training loader is a `PartialDL`: each epoch uses `partial_n` training items drawn at
        random (the validation loaders use everything)."""
        from tiers.data.sampling import PartialDL

        xtra: list[dict] = [{} for _ in range(self.n_subsets - 1)]
        return self.dataloaders(bs=bs, dl_type=PartialDL, dl_kwargs=[{"partial_n": partial_n}, *xtra], **kwargs)


class TfmdLists(GetAttr, FilteredBase):
    """`items` passed lazily through the Pipeline `tfms` when indexed: `tl[i]` is one transformed item, `tl[[i, j]]`
    or `tl[mask]` an `L` of them. `splits` (lists of indices, default: everything in training) define the subsets
    `tl.train`, `tl.valid`, `tl.subset(i)`; they must be disjoint (an item both trained and validated on is refused
    with a `ValueError` naming it) unless `allow_overlap=True` says the overlap is deliberate. The transforms are set
    up on the training subset (`train_setup=True`).
    Unknown attributes are looked up on the Pipeline `tfms` (`GetAttr`), hence on its transforms (`tl.vocab`).

    >>> tl = TfmdLists(["a", "b", "a"], [str.upper], splits=[[0, 1], [2]])
    >>> tl[0], list(tl.valid)
    ('A', ['A'])
    """

    splits: list[list[int]]

    def __init__(self, items: Iterable[Any], tfms: Any = None, use_list: bool | None = None, do_setup: bool = True,
                 split_idx: int | None = None, train_setup: bool = True, splits: Sequence[Any] | None = None,
                 types: list | None = None, verbose: bool = False, dl_type: Callable[..., TfmdDL] | None = None,
                 allow_overlap: bool = False):
        self.items = L(items, use_list=use_list)
        n = len(self.items)
        self.splits = [list(range(n)), []] if splits is None else [_split_list(s, n) for s in splits]
        check_splits(self.splits, n, allow_overlap=allow_overlap)
        self.split_idx, self.train_setup, self.types = split_idx, train_setup, types
        if dl_type is not None:
            self._dl_type = dl_type
        self.tfms = Pipeline(tfms, split_idx=split_idx)
        if do_setup:
            if verbose:
                print(f"Setting up {self.tfms}")
            self.setup(train_setup=train_setup)

    # ---- items ---------------------------------------------------------------------------------------------------
    def _get(self, i):
        return self.items[i]

    def __getitem__(self, idx):
        if is_indexer(idx):
            return self.tfms(self.items[idx])
        return L(self.tfms(o) for o in self.items[idx])

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator:
        return (self[i] for i in range(len(self)))

    def subset(self, i: int) -> "TfmdLists":
        "Subset `i` of the splits, applying the transforms with `split_idx=i`."
        if not 0 <= i < len(self.splits):
            raise IndexError(f"There is no subset {i}: the splits define {len(self.splits)} subsets.")
        store = self.items.items
        # A DataFrame stays one (rows taken with iloc), so getters and splitters keep seeing a DataFrame.
        items = store.iloc[self.splits[i]] if hasattr(store, "iloc") else self.items[self.splits[i]]
        return self._new(items, split_idx=i)

    def _new(self, items: Iterable[Any], split_idx: int | None = None, **kwargs: Any) -> "TfmdLists":
        return type(self)(items, tfms=self.tfms, do_setup=False, types=self.types,
                          split_idx=ifnone(split_idx, self.split_idx), dl_type=self._dl_type, **kwargs)

    def new(self, items: Iterable[Any], split_idx: int | None = None, **kwargs: Any) -> "TfmdLists":
        "A TfmdLists over other `items` with the same (already set up) transforms."
        return self._new(items, split_idx=split_idx, **kwargs)

    def new_empty(self) -> "TfmdLists":
        "The same transforms over no items (what export keeps)."
        return self._new([])

    # ---- transforms ----------------------------------------------------------------------------------------------
    def setup(self, train_setup: bool = True) -> None:
        """Set up the transforms in turn (on the training subset when `train_setup`) and record the types they see.
        A transform that cannot take missing values (`refuses_missing`: `Categorize`, `RegressionSetup`) gets the
        values of every item (all subsets) checked first: NaN or None raises `MissingValueError` naming the rows;
        for one that needs finite numbers (`refuses_nonfinite`: `RegressionSetup`), infinite values or text that is
        not a number raise `NonFiniteValueError`."""
        fs = list(self.tfms.fs)
        k = next((i for i, f in enumerate(fs) if getattr(f, "refuses_missing", False)), None)
        try:
            self.tfms.setup(self, train_setup)
        except TypeError as e:
            # Labels where some are None fail in setup (`CategoryMap` cannot sort None among strings): the missing
            # ones, named by row and item, are the cause to report (the steps before `k` are set up by now).
            if k is not None and len(self):
                finite = fs[k] if getattr(fs[k], "refuses_nonfinite", False) else None
                try:
                    check_no_missing(self, fs[:k], type(fs[k]).__name__, finite=finite)
                except ValueError as missing:
                    raise missing from e
            raise
        if len(self) == 0:
            return
        if k is not None:
            # a transform that needs finite numbers (RegressionSetup) converts each value the way it will encode it
            finite = fs[k] if getattr(fs[k], "refuses_nonfinite", False) else None
            check_no_missing(self, fs[:k], type(fs[k]).__name__, finite=finite)
        src = self.splits[0] if self.splits and self.splits[0] else [0]
        x = self.items[src[0]]
        self.types = []
        for f in self.tfms.fs:
            self.types.append(getattr(f, "input_types", None) or type(x))
            x = f(x, split_idx=self.split_idx)
        self.types.append(type(x))

    def infer_idx(self, x: Any) -> int:
        "The position in the Pipeline where an object like `x` enters (how many transforms to skip for it)."
        if not self.types:
            return 0
        for i, t in enumerate(self.types):
            if isinstance(x, t if isinstance(t, type) else tuple(t)):
                return i
        names = list(dict.fromkeys(getattr(t, "__name__", str(t)) for ts in self.types
                                   for t in (ts if isinstance(ts, tuple | list) else (ts,))))
        raise TypeError(f"An input of type {type(x).__name__} fits no step of {self.tfms}: the steps take "
                        f"{', '.join(names)}. Pass an item of one of those types (e.g. Path(x) for a file name).")

    def infer(self, x: Any) -> Any:
        "Apply the transforms from the step where `x` fits (see `infer_idx`)."
        return Pipeline(list(self.tfms.fs)[self.infer_idx(x):], split_idx=self.split_idx)(x)

    def decode(self, o: Any, **kwargs: Any) -> Any:
        "Run the transforms' decodes on `o`."
        return self.tfms.decode(o, **kwargs)

    def show(self, o: Any, **kwargs: Any) -> Any:
        "Decode `o` and show it."
        return self.tfms.show(o, **kwargs)

    _default, _xtra = "tfms", None  # GetAttr: forward to the Pipeline (every public name)

    def __getstate__(self) -> dict:
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {coll_repr(self.items, 5)}\ntfms - {self.tfms}"


class Datasets(FilteredBase):
    """Several `TfmdLists` over the same `items` and `splits`, one per list of transforms in `tfms` (or given as
    `tls`); `dsets[i]` is the tuple of their results, e.g. `(input, target)`. `n_inp` (default: all but the last)
    says how many are inputs. Other keyword arguments (`splits`, `allow_overlap`...) go to each `TfmdLists`. Unknown
    attributes are looked up on the TfmdLists (`dsets.vocab`).

    >>> dsets = Datasets(["cat", "dog"], [[str.upper], [len]])
    >>> dsets[0], dsets.n_inp
    (('CAT', 3), 1)
    """

    def __init__(self, items: Iterable[Any] | None = None, tfms: Any = None, tls: Iterable[TfmdLists] | None = None,
                 n_inp: int | None = None, dl_type: Callable[..., TfmdDL] | None = None, **kwargs: Any):
        built = tls is None  # made here from items: check their targets (given tls were checked by their maker)
        if tls is None:
            if items is None:
                raise ValueError("Datasets needs `items` (with `tfms`) or `tls`.")
            # One transform (a function, a Transform, a Pipeline) is one pipeline, as fastai's `L(tfms)` makes it.
            tfm_lists = [None] if tfms is None else [tfms] if callable(tfms) else list(tfms)
            if not tfm_lists:
                raise ValueError("Datasets: `tfms` is empty; give one list of transforms per element of an item.")
            tls = [TfmdLists(items, t, **kwargs) for t in tfm_lists]
        self.tls = L(tls)
        if dl_type is not None:
            self._dl_type = dl_type
        self.n_inp = n_inp if n_inp is not None else max(1, len(self.tls) - 1)
        for i, tl in enumerate(self.tls):
            if i >= self.n_inp and built:
                _check_float_target(tl, i)

    def __getitem__(self, it):
        res = tuple(tl[it] for tl in self.tls)
        return res if is_indexer(it) else list(zip(*res))

    def __len__(self) -> int:
        return len(self.tls[0])

    def __iter__(self) -> Iterator:
        return (self[i] for i in range(len(self)))

    def __getattr__(self, k: str):
        return gather_attrs(self, k, "tls")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(gather_attr_names(self, "tls")))

    def __getstate__(self) -> dict:
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def splits(self) -> list[list[int]]:
        "The index lists of the subsets."
        return self.tls[0].splits

    @property
    def split_idx(self) -> int | None:
        "The split these datasets apply their transforms for (0: training, 1: validation, None: all)."
        return self.tls[0].tfms.split_idx

    @property
    def items(self) -> L:
        "The items (shared by every TfmdLists)."
        return self.tls[0].items

    @items.setter
    def items(self, v: Iterable[Any]) -> None:
        for tl in self.tls:
            tl.items = L(v, use_list=None)  # keeps a DataFrame or array as one collection of rows

    @contextlib.contextmanager
    def set_split_idx(self, i: int) -> Iterator["Datasets"]:
        "Context manager: apply the transforms as for split `i` inside the block."
        old = [tl.tfms.split_idx for tl in self.tls]
        try:
            for tl in self.tls:
                tl.tfms.split_idx = i
            yield self
        finally:
            for tl, o in zip(self.tls, old):
                tl.tfms.split_idx = o

    def subset(self, i: int) -> "Datasets":
        "Subset `i` of the splits."
        return type(self)(tls=L(tl.subset(i) for tl in self.tls), n_inp=self.n_inp, dl_type=self._dl_type)

    def new_empty(self) -> "Datasets":
        "The same transforms over no items (what export keeps)."
        return type(self)(tls=[tl.new_empty() for tl in self.tls], n_inp=self.n_inp, dl_type=self._dl_type)

    def decode(self, o: Sequence[Any], full: bool = True) -> tuple:
        "Decode each element of the tuple `o` with its TfmdLists."
        return tuple(tl.decode(x, full=full) for x, tl in zip(o, tuplify(self.tls, match=o)))

    def show(self, o: Sequence[Any], ctx: Any = None, **kwargs: Any) -> Any:
        "Decode each element of `o` and show them on the same `ctx`."
        for x, tl in zip(o, self.tls):
            ctx = tl.show(x, ctx=ctx, **kwargs)
        return ctx

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {coll_repr(self, 3)}"


def test_set(dsets: Datasets | TfmdLists, test_items: Collection[Any], rm_tfms: int | Sequence[int] | None = None,
             with_labels: bool = False) -> Datasets | TfmdLists:
    """A collection over `test_items` with the transforms of `dsets` applied as for validation (`split_idx=1`);
    without labels only the input pipelines are kept. The leading transforms that `test_items` do not need (for
    example opening a file when the items are already images) are skipped, found from the items' type unless
    `rm_tfms` (one count per pipeline) says how many."""
    if isinstance(dsets, Datasets):
        tls = dsets.tls if with_labels else dsets.tls[: dsets.n_inp]
        test_tls = [tl._new(test_items, split_idx=1) for tl in tls]
        if len(test_items) == 0:
            return Datasets(tls=test_tls, n_inp=dsets.n_inp, dl_type=dsets._dl_type)
        first = L(test_items)[0]
        rm = [tl.infer_idx(first) for tl in test_tls] if rm_tfms is None else tuplify(rm_tfms, match=test_tls)
        for tl, j in zip(test_tls, rm):
            tl.tfms.fs = L(list(tl.tfms.fs)[j:])
        return Datasets(tls=test_tls, n_inp=dsets.n_inp, dl_type=dsets._dl_type)
    if isinstance(dsets, TfmdLists):
        tl = dsets._new(test_items, split_idx=1)
        if len(test_items):
            j = dsets.infer_idx(L(test_items)[0]) if rm_tfms is None else _one_count(rm_tfms)
            tl.tfms.fs = L(list(tl.tfms.fs)[j:])
        return tl
    raise TypeError(f"test_set needs a Datasets or a TfmdLists, got a {type(dsets).__name__}.")


def _one_count(rm_tfms: int | Sequence[int]) -> int:
    "The `rm_tfms` of a TfmdLists: one count, for its one pipeline."
    if not isinstance(rm_tfms, Sequence):
        with contextlib.suppress(TypeError):
            return operator.index(rm_tfms)  # a NumPy integer too
    raise TypeError(f"test_set: rm_tfms={rm_tfms!r}, but a TfmdLists has one pipeline: pass one int, the number of "
                    "its leading transforms to skip (a list, one count per pipeline, is for a Datasets).")


test_set.__test__ = False  # type: ignore[attr-defined]  # its name starts with "test": keep pytest from collecting it where it is imported


def decode_at(o: Datasets | TfmdLists, idx: int) -> Any:
    "Item `idx` of `o`, transformed then decoded."
    return o.decode(o[idx])


def show_at(o: Datasets | TfmdLists, idx: int, **kwargs: Any) -> Any:
    "Show item `idx` of `o`."
    return o.show(o[idx], **kwargs)

