"""The DataBlock API: `TransformBlock`s say what each element of an item is (`CategoryBlock`, `RegressionBlock`...),
and a `DataBlock` says how to get the items, split them and read each element, then builds `Datasets` and
`DataLoaders` (section 4.7 of the paper)."""

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from types import FunctionType, LambdaType
from typing import Any

from tiers.data.categorical import (
    Categorize,
    EncodedMultiCategorize,
    MultiCategorize,
    OneHotEncode,
    RegressionSetup,
)
from tiers.data.core import Datasets, _split_list, check_splits
from tiers.data.dataloaders import DataLoaders
from tiers.data.splitters import RandomSplitter
from tiers.data.tfmdl import TfmdDL
from tiers.data.transforms import ToTensor
from tiers.dispatch import L, noop
from tiers.pipeline import ItemTransform, Pipeline, Transform

__all__ = ["TransformBlock", "CategoryBlock", "MultiCategoryBlock", "RegressionBlock", "DataBlock"]

# Transforms as the block and loader arguments take them: one transform (a function, a Transform or a Transform
# class), a list of them, or None.
_Tfms = Callable[..., Any] | Iterable[Callable[..., Any]] | None


class TransformBlock:
    """What one element of an item is: the `type_tfms` that make it (after its getter), the `item_tfms` and
    `batch_tfms` it needs in the loader (`ToTensor` always comes first), and optionally the loader class `dl_type`
    and keyword arguments `dls_kwargs` for the loaders."""

    def __init__(self, type_tfms: _Tfms = None, item_tfms: _Tfms = None, batch_tfms: _Tfms = None,
                 dl_type: Callable[..., TfmdDL] | None = None, dls_kwargs: dict | None = None):
        self.type_tfms = L(type_tfms)
        self.item_tfms = L([ToTensor]) + L(item_tfms)
        self.batch_tfms = L(batch_tfms)
        self.dl_type = dl_type
        self.dls_kwargs = {} if dls_kwargs is None else dls_kwargs

    def __repr__(self) -> str:
        return f"TransformBlock(type_tfms={list(self.type_tfms)})"


def CategoryBlock(vocab: Iterable[Any] | None = None, sort: bool = True, add_na: bool = False) -> TransformBlock:
    "A single-label classification target: `Categorize` (vocabulary learned from the training labels)."
    return TransformBlock(type_tfms=Categorize(vocab=vocab, sort=sort, add_na=add_na))


def MultiCategoryBlock(encoded: bool = False, vocab: Iterable[Any] | None = None,
                       add_na: bool = False) -> TransformBlock:
    """A multi-label target: a list of labels (`MultiCategorize` + `OneHotEncode`), or, with `encoded`, labels
    already one-hot encoded (then `vocab` names the columns)."""
    tfm = EncodedMultiCategorize(vocab=vocab) if encoded else [MultiCategorize(vocab=vocab, add_na=add_na),
                                                                OneHotEncode()]
    return TransformBlock(type_tfms=tfm)


def RegressionBlock(n_out: int | None = None) -> TransformBlock:
    "A regression target of `n_out` float values (read from the data when None)."
    return TransformBlock(type_tfms=RegressionSetup(c=n_out))


def _merge_key(o):
    "Transforms of the same class are merged (the last wins); each function is its own group."
    if isinstance(o, LambdaType | FunctionType | partial):
        return id(o)
    return o if isinstance(o, type) else type(o)


def _merge_tfms(*tfms) -> L:
    groups: dict = {}
    for t in (t for ts in tfms for t in L(ts)):
        groups.pop(_merge_key(t), None)  # re-insert so the order is that of the last occurrence
        groups[_merge_key(t)] = t
    return L(t() if isinstance(t, type) else t for t in groups.values())


class _Getter(ItemTransform):
    "A plain function used as a getter: it gets the whole item (a tuple item is not split into its elements)."

    _retain = False

    def __repr__(self) -> str:
        return self.name


def _as_getter(g):
    if g is noop or isinstance(g, Transform | Pipeline):
        return g
    if not callable(g):
        raise TypeError(f"DataBlock: the getter {g!r} is not callable; pass a function such as ColReader('label').")
    return _Getter(enc=g)


def _fname(f) -> str:
    if isinstance(f, Pipeline):
        return repr(f)
    return getattr(f, "__name__", None) or getattr(getattr(f, "func", None), "__name__", None) or repr(f)


def _check_empty_valid(splitter, who: str, n: int, items) -> None:
    """An empty validation set is fine when the splitter's settings ask for it (`valid_pct=0`, an empty `valid_idx`,
    a validation column all False: training on every item, e.g. the last fit before shipping; the Learner leaves the
    validation columns blank). It is refused when they asked for validation items (a `valid_pct` too small for the
    items, folder names that match nothing) and allowed with a warning for a splitter whose intent is unknown."""
    intent = getattr(splitter, "empty_valid", None)
    if intent:
        return
    if intent is None:
        warnings.warn(f"{who} gave no validation items for {n} items, so training runs on every item and the "
                      "validation columns stay blank. If that is not what you meant, check the splitter; to ask for "
                      "it explicitly, use RandomSplitter(valid_pct=0) or IndexSplitter([]).", stacklevel=4)
        return
    explain = getattr(splitter, "explain_empty", None)
    hint = f" ({explain(items)})" if explain is not None else ""
    raise ValueError(f"{who} gave an empty validation set for {n} items{hint}; use a larger valid_pct or more items, "
                     "or check the folder names. To train on every item without validation on purpose, pass "
                     "valid_pct=0 (RandomSplitter(valid_pct=0)) or an empty valid_idx.")


class DataBlock:
    """A recipe for `Datasets` and `DataLoaders`: `blocks` (one per element of an item, inputs first; `n_inp`
    inputs, default all but the last), `get_items(source)` to list the items, `splitter(items)` to split them
    (default `RandomSplitter()`), and `get_x`/`get_y` (or `getters`, one per block) to read each element of an item.
    `item_tfms` and `batch_tfms` are added to those of the blocks (one transform per class, the last wins).
    `get_items`, `splitter`, `get_x` and `get_y` can also be defined by subclassing.

    >>> dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=lambda o: "odd" if o % 2 else "even",
    ...                    splitter=lambda items: ([0, 1, 2], [3]))
    >>> dblock.datasets(range(4)).valid[0]
    (3, TensorCategory(1))
    """

    get_items: Callable[..., Any] | None = None
    splitter: Callable[..., Any] | None = None
    get_x: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None
    get_y: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None
    blocks: Sequence[TransformBlock | Callable[..., TransformBlock]] = (TransformBlock, TransformBlock)
    dl_type: Callable[..., TfmdDL] = TfmdDL
    _methods = ("get_items", "splitter", "get_x", "get_y")
    _hint = "To chain several functions in one getter, wrap them in a Pipeline([f, g])."

    def __init__(self, blocks: Iterable[TransformBlock | Callable[..., TransformBlock]] | None = None,
                 dl_type: Callable[..., TfmdDL] | None = None, getters: Iterable[Callable[..., Any]] | None = None,
                 n_inp: int | None = None, item_tfms: _Tfms = None, batch_tfms: _Tfms = None, **kwargs: Any):
        for k in self._methods:
            if k in kwargs:
                setattr(self, k, kwargs.pop(k))
        if kwargs:
            raise TypeError(f"DataBlock got unknown keyword arguments {sorted(kwargs)}; it takes blocks, dl_type, "
                            f"getters, n_inp, item_tfms, batch_tfms and {list(self._methods)}.")
        blocks = L(self.blocks if blocks is None else blocks)
        blocks = L(b() if callable(b) and not isinstance(b, TransformBlock) else b for b in blocks)
        for i, b in enumerate(blocks):
            if not hasattr(b, "type_tfms"):
                raise TypeError(f"DataBlock: block {i} is a {type(b).__name__}, not a TransformBlock; pass blocks such "
                                "as CategoryBlock or TransformBlock(type_tfms=...).")
        if not len(blocks):
            raise ValueError("DataBlock needs at least one block.")
        self.type_tfms = blocks.attrgot("type_tfms")
        self.default_item_tfms = _merge_tfms(*blocks.attrgot("item_tfms"))
        self.default_batch_tfms = _merge_tfms(*blocks.attrgot("batch_tfms"))
        for b in blocks:
            if getattr(b, "dl_type", None) is not None:
                self.dl_type = b.dl_type
        if dl_type is not None:
            self.dl_type = dl_type
        self.dls_kwargs = {k: v for b in blocks for k, v in getattr(b, "dls_kwargs", {}).items()}
        n_blocks = len(blocks)
        self.n_inp = n_inp if n_inp is not None else max(1, n_blocks - 1)
        if not 1 <= self.n_inp <= n_blocks:
            raise ValueError(f"DataBlock: n_inp={self.n_inp} but there are {n_blocks} blocks; n_inp counts the "
                             "input blocks, which come first.")
        if getters is not None and len(L(getters)) != n_blocks:
            raise ValueError(f"DataBlock: {len(L(getters))} getters for {n_blocks} blocks; give one getter per "
                             f"block (noop for an element that is the item itself). {self._hint}")
        self.getters = list(L(getters)) if getters is not None else [noop] * n_blocks
        if self.get_x is not None:
            gx = L(self.get_x)
            if len(gx) != self.n_inp:
                raise ValueError(f"DataBlock: get_x holds {len(gx)} functions but there are {self.n_inp} input "
                                 f"blocks; give one per input. {self._hint}")
            self.getters[: self.n_inp] = list(gx)
        if self.get_y is not None:
            gy = L(self.get_y)
            n_targ = n_blocks - self.n_inp
            if len(gy) != n_targ:
                raise ValueError(f"DataBlock: get_y holds {len(gy)} functions but there are {n_targ} target "
                                 f"blocks; give one per target. {self._hint}")
            self.getters[self.n_inp:] = list(gy)
        self.new(item_tfms, batch_tfms)

    def new(self, item_tfms: _Tfms = None, batch_tfms: _Tfms = None) -> "DataBlock":
        "Set the extra `item_tfms` and `batch_tfms` (merged with the blocks' own); returns `self`."
        self.item_tfms = _merge_tfms(self.default_item_tfms, item_tfms)
        self.batch_tfms = _merge_tfms(self.default_batch_tfms, batch_tfms)
        return self

    @classmethod
    def from_columns(cls, blocks: Iterable[TransformBlock | Callable[..., TransformBlock]] | None = None,
                     getters: Iterable[Callable[..., Any]] | None = None, get_items: Callable | None = None,
                     **kwargs: Any) -> "DataBlock":
        "A DataBlock for items that are tuples (or rows) whose columns are, in order, the elements of the blocks."
        from tiers.data.getters import ItemGetter

        if getters is None:
            getters = [ItemGetter(i) for i in range(2 if blocks is None else len(L(blocks)))]
        items = get_items if get_items is not None else (lambda o: list(zip(*o)) if isinstance(o, tuple) else o)
        return cls(blocks=blocks, getters=getters, get_items=items, **kwargs)

    def _combine_type_tfms(self) -> list:
        return [(list(g.fs) if isinstance(g, Pipeline) else [_as_getter(g)]) + list(tt)
                for g, tt in zip(self.getters, self.type_tfms)]

    def _items(self, source):
        if self.get_items is None and isinstance(source, str | os.PathLike):
            raise TypeError(f"DataBlock: the source {str(source)!r} is a path but the DataBlock has no get_items to "
                            "list the items in it; pass get_items=get_image_files (or get_files, get_text_files...) "
                            "to DataBlock, or pass the list of items instead of the path.")
        items = (self.get_items or noop)(source)
        try:
            n = len(items)
        except TypeError:
            items, n = list(items), None
        if (n if n is not None else len(items)) == 0:
            raise ValueError(f"DataBlock: no items were found in the source {source!r:.100}"
                             f"{' by get_items=' + _fname(self.get_items) if self.get_items else ''}; check the "
                             "path and the file extensions, or the get_items function.")
        return items

    def _splits(self, items) -> list:
        splitter = self.splitter or RandomSplitter()
        splits = splitter(items)
        n = len(items)
        splits = [_split_list(s, n) for s in splits]  # index lists (a boolean mask too), as Datasets reads them
        names = ["training", "validation"] + [f"subset {i}" for i in range(2, len(splits))]
        who = f"DataBlock: the splitter {_fname(splitter)}"
        if len(splits) < 1 or not splits[0]:
            raise ValueError(f"{who} gave an empty training set for {n} items (sizes {[len(x) for x in splits]}); "
                             "check its settings (valid_pct, folder names, the validation column...).")
        if len(splits) > 1 and not splits[1]:
            _check_empty_valid(splitter, who, n, items)
        for nm, s in zip(names[2:], splits[2:]):
            if not s:
                raise ValueError(f"{who} gave an empty {nm} set for {n} items (sizes {[len(x) for x in splits]}); "
                                 "give each subset some items.")
        check_splits(splits, n, who=who, fix="a splitter must give disjoint subsets")
        return splits

    def datasets(self, source: Any, verbose: bool = False) -> Datasets:
        "The `Datasets` for `source`: items from `get_items`, split by `splitter`, read by the getters and blocks."
        self.source = source
        items = self._items(source)
        if verbose:
            print(f"Collecting items from {source!r:.100}\nFound {len(items)} items")
        splits = self._splits(items)
        if verbose:
            print(f"{len(splits)} datasets of sizes {','.join(str(len(s)) for s in splits)}")
        return Datasets(items, tfms=self._combine_type_tfms(), splits=splits, dl_type=self.dl_type, n_inp=self.n_inp,
                        verbose=verbose)

    def dataloaders(self, source: Any, path: str | os.PathLike = ".", verbose: bool = False, item_tfms: _Tfms = None,
                    batch_tfms: _Tfms = None, **kwargs: Any) -> DataLoaders:
        """`DataLoaders` for `source`: the `datasets`, with the item and batch transforms in the loaders. `item_tfms`
        and `batch_tfms` given here are added to the block's own for these loaders only (a transform class, such as
        `batch_tfms=Normalize`, is instantiated; `Normalize()` then takes its statistics from a batch). `kwargs`
        (`bs`, `val_bs`, `shuffle`, `device`, `num_workers`...) go to `Datasets.dataloaders`.

        `databunch` is the same method under the name the paper's listings use."""
        for nm in ("after_item", "after_batch"):
            if nm in kwargs:
                raise TypeError(f"DataBlock.dataloaders: pass item_tfms=/batch_tfms= rather than {nm}= (the block's "
                                "own transforms would be replaced).")
        dsets = self.datasets(source, verbose=verbose)
        kwargs = {**self.dls_kwargs, **kwargs, "verbose": verbose}
        after_item = _merge_tfms(self.item_tfms, item_tfms)
        after_batch = _merge_tfms(self.batch_tfms, batch_tfms)
        return dsets.dataloaders(path=path, after_item=after_item, after_batch=after_batch, **kwargs)

    databunch = dataloaders  # the name used in the paper's listings

    def weighted_dataloaders(self, source: Any, wgts: Iterable[float] | None = None, bs: int = 64,
                             verbose: bool = False, item_tfms: _Tfms = None, batch_tfms: _Tfms = None,
                             **kwargs: Any) -> DataLoaders:
        """`dataloaders` whose training loader draws items with replacement, with probabilities proportional to
        `wgts`: one weight per item of `source` (as `get_items` lists them), of which the training items' are used
        (None: uniform)."""
        dsets = self.datasets(source, verbose=verbose)
        if wgts is not None:
            wgts = list(wgts)
            if len(wgts) != len(dsets.items):
                raise ValueError(f"DataBlock.weighted_dataloaders: {len(wgts)} weights for {len(dsets.items)} items; "
                                 "give one weight per item of the source (the training items' are used).")
            wgts = [wgts[i] for i in dsets.splits[0]]
        return dsets.weighted_dataloaders(wgts, bs=bs, after_item=_merge_tfms(self.item_tfms, item_tfms),
                                          after_batch=_merge_tfms(self.batch_tfms, batch_tfms),
                                          **{**self.dls_kwargs, **kwargs, "verbose": verbose})

    def summary(self, source: Any, bs: int = 4, show_batch: bool = False, **kwargs: Any) -> None:
        """Print, step by step, how one item of `source` goes through every stage (getting the items, splitting,
        each getter and type transform, each item transform, collation, each batch transform). When a step fails,
        the error is raised again with the stage and the transform named."""
        from tiers.data.summary import summarize

        summarize(self, source, bs=bs, show_batch=show_batch, **kwargs)

    def __repr__(self) -> str:
        return (f"DataBlock(n_inp={self.n_inp}, getters={[_fname(g) for g in self.getters]}, "
                f"item_tfms={list(self.item_tfms)}, batch_tfms={list(self.batch_tfms)})")
