"""`DataLoader`: batches from any dataset, with every step of loading an overridable method.

Order of the steps in one epoch (all in the main process unless noted):
`randomize` -> `before_iter` -> `sample` (= `chunkify(get_idxs())`, with `shuffle_fn` when shuffling) ->
for each chunk of indices, in the main process or in a worker: `do_item(i)` = `after_item(create_item(i))` for
each index, then `do_batch(items)` = `retain(create_batch(before_batch(items)), items)` (`create_batches` drives
this loop) -> back in the main process: pin memory, move to `device`, `after_batch` -> `after_iter`.
"""

import copy
import itertools
import operator
import random
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, cast

import torch
from torch.utils.data import DataLoader as _TorchDataLoader
from torch.utils.data import Dataset as _TorchDataset
from torch.utils.data import IterableDataset, get_worker_info

from tiers.data.collate import fa_collate, fa_convert, to_main
from tiers.data.samples import ShowBatchMixin
from tiers.dispatch import retain_types
from tiers.pipeline import Pipeline
from tiers.tensors import apply, to_detach, to_device

__all__ = ["DataLoader", "SkipItemException"]

_LOADER_STEPS = ("wif", "before_iter", "after_item", "before_batch", "after_batch", "after_iter",
                 "create_batches", "create_item", "create_batch", "retain", "get_idxs", "sample",
                 "shuffle_fn", "do_batch", "do_item", "chunkify", "randomize", "to_detach")


_UNSET: Any = object()  # "argument not given" where None is a meaningful value


class SkipItemException(Exception):
    "Raise from `create_item` or `after_item` to leave that item out of its batch."


def _pin(b):
    return apply(lambda t: t.pin_memory() if isinstance(t, torch.Tensor) and t.device.type == "cpu" else t, b)


def _default_method(dl, name: str) -> bool:
    "True when step `name` of `dl` is DataLoader's own (neither passed to the constructor nor overridden)."
    return name not in dl.__dict__ and getattr(type(dl), name) is getattr(DataLoader, name)


class _ChunkSampler:
    "The batch plan torch's loader iterates: reassigned each epoch, so a persistent worker pool can be reused."

    def __init__(self) -> None:
        self.chunks: list | None = []

    def __iter__(self):
        return iter(self.chunks)

    def __len__(self):
        return len(self.chunks)


class _MapBatches(_TorchDataset):
    "Presents a tiers DataLoader to torch as a map-style dataset whose item `chunk` is a whole batch."

    def __init__(self, dl):
        self.dl = dl

    def __getitem__(self, chunk):
        b = self.dl._build_batch(chunk)
        return None if b is None else to_main(b)

    def __len__(self):
        return len(self.dl)


class _IterBatches(IterableDataset):
    """Presents a tiers DataLoader to torch as an iterable dataset: worker k builds batches k, k+nw, ... .
    Used for iterable-style data (every worker reads the stream and skips the other workers' items, so each item is
    loaded once, in the same order as without workers) and when `create_batches` is overridden."""

    def __init__(self, dl, chunks: list | None):
        self.dl, self.chunks = dl, chunks

    def __iter__(self):
        dl, info = self.dl, get_worker_info()
        k, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        # An endless plan (iterable data, no `n`) is rebuilt here: it cannot be sent to a worker, and it is
        # deterministic because iterable data is never shuffled.
        chunks = self.chunks if self.chunks is not None else dl.sample()
        if dl.indexed:
            for b in dl.create_batches(itertools.islice(chunks, k, None, nw)):
                yield to_main(b)
            return
        dl.it = _stream(dl.dataset)
        for j, chunk in enumerate(chunks):
            if j % nw == k:
                b, exhausted = dl._batch_or_none(chunk)
                if b is not None:
                    yield to_main(b)
            else:
                size = 1 if dl.bs is None else len(chunk)
                exhausted = len(dl._skip_items(range(size))) < size
            if exhausted:
                return


def _stream(dataset):
    "The iterator `create_item(None)` reads; without a dataset there is none (`create_item` makes the items)."
    return None if dataset is None else iter(dataset)


def _worker_init(worker_id: int) -> None:
    info = get_worker_info()
    assert info is not None  # torch calls this in a worker process
    dl = cast(Any, info.dataset).dl  # the _MapBatches/_IterBatches wrapping the loader
    # Torch already seeded `random`, numpy and torch from the loader's generator; one thread per worker avoids
    # oversubscribing the cores the workers share.
    torch.set_num_threads(1)
    dl.num_workers, dl.offs = info.num_workers, worker_id
    dl.wif()


def _identity(b):
    return b


class DataLoader(ShowBatchMixin):
    """Load batches from `dataset` (anything with `__getitem__` and `__len__`, or any iterable) with every step an
    overridable method: subclass, or pass a replacement function to the constructor (`create_item=...`,
    `after_batch=...`; see `_methods`). `bs=None` loads one item at a time without collating. Batches are built in
    `num_workers` processes with torch's loading machinery (`pin_memory`, `timeout`, `persistent_workers`, and
    `prefetch_factor` are passed on), then moved to `device` and passed through `after_batch` in the main process.
    A worker sends each whole batch once: up to `collate.PIPE_BYTES` (1 MB) of tensors as bytes through its result
    pipe, larger ones in shared memory (torch shares every tensor, a costly round trip per tensor for small batches).
    The order of items depends only on `seed` (or, without one, on Python's `random` state when the loader is made),
    never on the number of workers; workers are seeded from the same chain, so random item transforms repeat too.
    Batches can be decoded and shown (`decode`, `decode_batch`, `show_batch`, `show_results`; see `TfmdDL`).

    >>> dl = DataLoader(list(range(10)), bs=4, shuffle=True, seed=0)
    >>> [b.tolist() for b in dl]   # doctest: +SKIP
    [[6, 2, 1, 5], [0, 7, 9, 8], [4, 3]]
    """

    _methods = _LOADER_STEPS

    def __init__(self, dataset: Any = None, bs: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 timeout: float = 0, batch_size: int | None = None, shuffle: bool = False, drop_last: bool = False,
                 indexed: bool | None = None, n: int | None = None, device: str | torch.device | None = None,
                 persistent_workers: bool = False,
                 pin_memory_device: str = "", prefetch_factor: int | None = None, seed: int | None = None,
                 **kwargs: Any):
        for name in list(kwargs):
            if name in self._methods:
                setattr(self, name, kwargs.pop(name))
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}; "
                            f"the replaceable steps are {list(self._methods)}.")
        if batch_size is not None:
            bs = batch_size
        if bs is not None:
            given = bs
            try:
                bs = operator.index(bs)  # numpy integers are fine
            except TypeError:
                bs = -1
            if bs < 1:
                raise ValueError(f"bs must be a positive int or None (no batching), got {given!r}.")
        if drop_last and bs is None:
            raise ValueError("drop_last=True needs a batch size: pass bs=... or set drop_last=False.")
        if num_workers is None or num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}.")
        if indexed is None:
            indexed = (dataset is not None and hasattr(dataset, "__getitem__")
                       and not isinstance(dataset, IterableDataset))
        if shuffle and not indexed:
            raise ValueError(f"Cannot shuffle a dataset without __getitem__ ({type(dataset).__name__}): "
                             "pass shuffle=False or an indexable dataset.")
        self.dataset, self.bs, self.shuffle, self.drop_last, self.indexed = dataset, bs, shuffle, drop_last, indexed
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.persistent_workers, self.pin_memory_device, self.prefetch_factor = (
            persistent_workers, pin_memory_device, prefetch_factor)
        self.device, self.offs, self.seed = device, 0, seed
        self._n = n
        self.rng = random.Random(seed if seed is not None else random.getrandbits(64))
        self._torch_dl: _TorchDataLoader | None = None

    # ---- size ------------------------------------------------------------------------------------------------
    @property
    def n(self) -> int | None:
        "Number of items per epoch: the one given to the constructor, else `len(dataset)` when it has one."
        if self._n is not None:
            return self._n
        try:
            return len(self.dataset)
        except TypeError:
            return None

    @n.setter
    def n(self, v: int | None) -> None:
        self._n = v

    @property
    def prebatched(self) -> bool:
        "True when `bs` is None: the dataset's items are already batches (or are loaded one at a time)."
        return self.bs is None

    def __len__(self) -> int:
        n = self.n
        if n is None:
            raise TypeError(f"The length of this DataLoader is unknown: its dataset ({type(self.dataset).__name__}) "
                            "has no len() and no `n` was given; pass n=<number of items>.")
        if self.bs is None:
            return n
        return n // self.bs if self.drop_last else -(-n // self.bs)

    # ---- sample creation ---------------------------------------------------------------------------------------
    def randomize(self) -> None:
        "Draw this epoch's random generator `self.rng` from the previous one (called at the start of each epoch)."
        self.rng = random.Random(self.rng.getrandbits(64))

    def get_idxs(self) -> Iterable:
        "The indices of this epoch's items (`None`s for iterable data), cut to `n`, shuffled when `shuffle`."
        n = self.n
        idxs: Iterable
        if self.indexed:
            if n is None:
                raise TypeError(f"Cannot list the items of {type(self.dataset).__name__}: it has __getitem__ but no "
                                "__len__; pass n=<number of items> to the DataLoader.")
            idxs = range(n)
        else:
            idxs = itertools.repeat(None, n) if n is not None else itertools.repeat(None)
        if self.shuffle:
            # A replaced shuffle_fn gets a list, as in fastai; the default one shuffles a range without copying it.
            # (shuffled data is indexed, so `idxs` is the range above)
            idxs = self.shuffle_fn(cast(range, idxs) if _default_method(self, "shuffle_fn") else list(idxs))
        return idxs

    def shuffle_fn(self, idxs: Sequence) -> list:
        "Return `idxs` in a random order drawn from `self.rng`."
        # torch.randperm is ~50x faster than random.sample on large epochs; it is seeded from `rng`.
        perm = torch.randperm(len(idxs), generator=torch.Generator().manual_seed(self.rng.getrandbits(63))).tolist()
        if isinstance(idxs, range) and idxs.start == 0 and idxs.step == 1:
            return perm
        return [idxs[i] for i in perm]

    def chunkify(self, b: Iterable) -> Iterator:
        "Split `b` into lists of `bs` (the last shorter unless `drop_last`); with `bs=None`, yield its elements."
        if self.bs is None:
            yield from b
            return
        it = iter(b)
        while chunk := list(itertools.islice(it, self.bs)):
            if len(chunk) < self.bs and self.drop_last:
                return
            yield chunk

    def sample(self) -> Iterable:
        "The epoch's plan: one list of item indices per batch (one index per step with `bs=None`)."
        return self.chunkify(self.get_idxs())

    # ---- item creation -----------------------------------------------------------------------------------------
    def create_item(self, i: Any) -> Any:
        """Item `i` of the dataset (the next item of the stream for iterable data). A loader made without a
        dataset overrides this to produce items itself, until it raises `StopIteration` (`stop()`)."""
        if self.dataset is None:
            raise TypeError(f"{type(self).__name__} has no dataset: pass one, or override create_item to make the "
                            "items (raising StopIteration, e.g. with stop(), when there are no more).")
        return next(self.it) if i is None else self.dataset[i]

    def after_item(self, o: Any) -> Any:
        "Hook applied to each item after `create_item`; identity by default."
        return o

    def do_item(self, i: Any) -> Any:
        "Make item `i`: `after_item(create_item(i))`."
        return self.after_item(self.create_item(i))

    # ---- batch creation ----------------------------------------------------------------------------------------
    def before_batch(self, b: Any) -> Any:
        "Hook applied to the list of items before collation; identity by default."
        return b

    def create_batch(self, b: Any) -> Any:
        "Collate the list of items `b` with `fa_collate` (with `bs=None`, convert the single item with `fa_convert`)."
        return fa_collate(b) if self.bs is not None else fa_convert(b)

    def retain(self, res: Any, b: Any) -> Any:
        "Give the collated `res` the types of the elements of the first item of `b` (tensor subclasses, tuples)."
        old = b[0] if self.bs is not None and len(b) else b
        if type(res) is tuple and type(old) is tuple and len(res) == len(old):
            # The usual batch: `fa_collate` already kept every element's type (a stacked TensorImage is one), so
            # `retain_types` would rebuild an equal tuple; answered here without it, per batch.
            for r, o in zip(res, old):
                tr = type(r)
                if isinstance(r, tuple | list) or (o is not None and tr is not type(o) and issubclass(type(o), tr)):
                    break  # a nested container, or an element to cast: the general rule
            else:
                return res
        return retain_types(res, old)

    def do_batch(self, b: Any) -> Any:
        "Make a batch from the items `b`: `retain(create_batch(before_batch(b)), b)`."
        return self.retain(self.create_batch(self.before_batch(b)), b)

    def after_batch(self, b: Any) -> Any:
        "Hook applied to each batch in the main process, after the move to `device`; identity by default."
        return b

    def create_batches(self, samps: Iterable) -> Iterator:
        "Yield the batches of the plan `samps` (lists of indices), leaving out skipped items and empty batches."
        if not self.indexed:
            self.it = _stream(self.dataset)
        make = self._item_maker() if self.bs is not None else None
        for chunk in samps:
            b, exhausted = self._batch_or_none(chunk, make)
            if b is not None:
                yield b
            if exhausted:
                return

    def to_detach(self, b: Any, cpu: bool = True, gather: bool = True) -> Any:
        "Detach the tensors of `b` (and move them to the CPU when `cpu`); `gather` is for distributed subclasses."
        return to_detach(b, cpu=cpu, gather=gather)

    # ---- hooks ------------------------------------------------------------------------------------------------
    def before_iter(self) -> None:
        "Hook called at the start of each epoch, after `randomize`."

    def after_iter(self) -> None:
        "Hook called when an epoch has been fully iterated."

    def wif(self) -> None:
        "Hook called once in each worker process after it is seeded (`self.offs` is the worker's id)."

    # ---- the engine -------------------------------------------------------------------------------------------
    def _item_maker(self) -> Callable[[Sequence], list | tuple[list, list]] | None:
        """How to make the items of a chunk in one call, or None when each item needs the general loop (a replaced
        `do_item` or `create_item`, or data read as a stream). Worked out once per epoch by `create_batches`, so the
        checks are not paid per batch. With an after-item Pipeline and the batch steps DataLoader's own, the maker
        may give the items as two columns `(inputs, targets)` (`Pipeline.map_pairs`; see `_collate_pairs`)."""
        if not (self.indexed and _default_method(self, "do_item") and _default_method(self, "create_item")):
            return None
        ds, f = self.dataset, self.after_item
        # No per-item method calls beyond the dataset's own (and after_item's when it does something).
        if _default_method(self, "after_item") or isinstance(f, Pipeline) and f.identity:
            return lambda chunk: [ds[i] for i in chunk]
        if type(f) is Pipeline:
            if self._collates_columns():
                return lambda chunk: f.map_pairs([ds[i] for i in chunk])
            return lambda chunk: f.map_items([ds[i] for i in chunk])
        return lambda chunk: [f(ds[i]) for i in chunk]

    def _collates_columns(self) -> bool:
        """Whether a batch may be collated from the columns of its pairs (`_collate_pairs`): `do_batch`,
        `create_batch` and `retain` are DataLoader's own and `before_batch` does nothing, so what `do_batch` would
        do with the list of pairs is exactly that."""
        bb = self.before_batch
        return (self.bs is not None and all(_default_method(self, k) for k in ("do_batch", "create_batch", "retain"))
                and (_default_method(self, "before_batch") or isinstance(bb, Pipeline) and bb.identity))

    def _collate_pairs(self, cols: tuple[list, list]) -> Any:
        """`do_batch` of the pairs `zip(*cols)`, without building them: each column collated as `fa_collate` collates
        the fields of a list of pairs (same values, types and errors), then `retain` as `do_batch` does."""
        xs, ys = cols
        res = (fa_collate(xs, "element 0 of each item"), fa_collate(ys, "element 1 of each item"))
        return self.retain(res, [(xs[0], ys[0])])

    def _items(self, chunk, make: Any = _UNSET) -> tuple[list | tuple[list, list], bool]:
        """Items of `chunk` without the skipped ones (or their two columns, see `_item_maker`), and whether an
        iterable dataset ran out. `make` is the epoch's `_item_maker()` (worked out here when not given)."""
        if make is _UNSET:
            make = self._item_maker()
        if make is not None:
            try:
                return make(chunk), False
            except SkipItemException:
                pass  # the per-item loop below leaves out just the skipped items
        items = []
        for i in chunk:
            try:
                items.append(self.do_item(i))
            except SkipItemException:
                continue
            except StopIteration:
                return items, True
        return items, False

    def _skip_items(self, chunk) -> list:
        "Consume the items of `chunk` from the stream without transforming them (another worker builds this batch)."
        got = []
        for _ in chunk:
            try:
                got.append(self.create_item(None))
            except StopIteration:
                break
        return got

    def _batch_or_none(self, chunk, make: Any = _UNSET):
        if self.bs is None:
            try:
                return self.do_batch(self.do_item(chunk)), False
            except SkipItemException:
                return None, False
            except StopIteration:
                return None, True
        items, exhausted = self._items(chunk, make)
        if type(items) is tuple:  # the columns of a batch of pairs (indexed data: never exhausted)
            return self._collate_pairs(items), exhausted
        if not items or (exhausted and self.drop_last and len(items) < self.bs):
            return None, exhausted
        return self.do_batch(items), exhausted

    def _build_batch(self, chunk):
        return self._batch_or_none(chunk)[0]

    def _torch_loader(self, chunks: list | None):
        # Workers are seeded from this generator, itself seeded from the epoch's `rng`: reproducible under a seed.
        worker_seed = self.rng.getrandbits(63)
        kw: dict[str, Any] = dict(batch_size=None, num_workers=self.num_workers, pin_memory=self.pin_memory, timeout=self.timeout,
                  worker_init_fn=_worker_init, collate_fn=_identity, pin_memory_device=self.pin_memory_device,
                  prefetch_factor=self.prefetch_factor, generator=torch.Generator())
        if self.indexed and _default_method(self, "create_batches"):
            tdl = self._torch_dl
            if tdl is None or not self.persistent_workers:
                # A persistent pool is kept on `self`; its dataset then holds a shallow copy of `self` rather than
                # `self`, because a reference cycle through torch's iterator makes its workers' shutdown time out.
                owner = copy.copy(self) if self.persistent_workers else self
                owner.__dict__["_torch_dl"] = None
                tdl = _TorchDataLoader(_MapBatches(owner), sampler=_ChunkSampler(),
                                       persistent_workers=self.persistent_workers, **kw)
            cast(_ChunkSampler, tdl.sampler).chunks = chunks
            self._torch_dl = tdl if self.persistent_workers else None
        else:
            tdl = _TorchDataLoader(_IterBatches(self, chunks), **kw)
        tdl.generator.manual_seed(worker_seed)
        return tdl

    def _batches(self) -> Iterator:
        plan = self.sample()
        if self.num_workers == 0:
            for b in self.create_batches(plan):
                yield _pin(b) if self.pin_memory else b
            return
        finite = self.indexed or self.n is not None
        tdl = self._torch_loader(list(plan) if finite else None)
        it = iter(tdl)
        try:
            for b in it:
                if b is not None:
                    yield b
        finally:
            del it

    def __iter__(self) -> Iterator:
        self.randomize()
        self.before_iter()
        for b in self._batches():
            if self.device is not None:
                b = to_device(b, self.device, non_blocking=self.pin_memory)
            yield self.after_batch(b)
        self.after_iter()
        self.__dict__.pop("it", None)

    # ---- conveniences -------------------------------------------------------------------------------------------
    def one_batch(self) -> Any:
        "The first batch of an epoch, built in the main process (workers are not started)."
        if self.n is not None and len(self) == 0:
            raise ValueError(f"This DataLoader has no batches: {self.n} items, bs={self.bs}, "
                             f"drop_last={self.drop_last}. Use a smaller bs or drop_last=False.")
        nw, self.num_workers = self.num_workers, 0
        it = cast(Generator, iter(self))  # __iter__ is a generator function
        try:
            return next(it)
        except StopIteration:
            raise ValueError("This DataLoader yielded no batch: every item was skipped or the dataset is empty.") \
                from None
        finally:
            it.close()
            self.num_workers = nw
            self.__dict__.pop("it", None)

    def to(self, device: str | torch.device | None) -> "DataLoader":
        "Set the device batches are moved to (before `after_batch`) and return `self`."
        self.device = device
        return self

    @property
    def n_inp(self) -> int:
        """How many elements of a batch are model inputs (the rest are targets): the dataset's `n_inp`, else, as in
        fastai, found once from a batch of the first item: all but the last element of a tuple of two or more (a
        dataset of `(x1, x2, y)` has two inputs), else 1. A stream (no `__getitem__`) is not read ahead: 1."""
        n = getattr(self.dataset, "n_inp", None)
        if n is not None:
            return n
        n = self.__dict__.get("_n_inp")
        if n is None:
            n = self.__dict__["_n_inp"] = self._first_n_inp()
        return n

    def _first_n_inp(self) -> int:
        "fastai's rule on a batch of the first item (built in the main process, no epoch started): see `n_inp`."
        if not self.indexed or self.n == 0:
            return 1
        try:
            b = self.do_item(0)
        except SkipItemException:
            return 1
        b = self.do_batch([b]) if self.bs is not None else b
        if self.device is not None:
            b = to_device(b, self.device)
        b = self.after_batch(b)
        return 1 if not isinstance(b, tuple | list) or len(b) < 2 else len(b) - 1

    def _new_kwargs(self) -> dict:
        kw = dict(bs=self.bs, num_workers=self.num_workers, pin_memory=self.pin_memory, timeout=self.timeout,
                  shuffle=self.shuffle, drop_last=self.drop_last, indexed=self.indexed, device=self.device,
                  persistent_workers=self.persistent_workers, pin_memory_device=self.pin_memory_device,
                  prefetch_factor=self.prefetch_factor)
        for name in self._methods:
            if name in self.__dict__:
                kw[name] = self.__dict__[name]
        return kw

    def new(self, dataset: Any = None, cls: type | None = None, **kwargs: Any) -> "DataLoader":
        """A loader like this one (same settings and replaced steps) over `dataset` (default: the same one), of class
        `cls` (default: the same), with `kwargs` overriding settings. An explicit `n` is kept for the same dataset."""
        kw = self._new_kwargs()
        if dataset is None:
            dataset = self.dataset
            if self._n is not None:
                kw["n"] = self._n
        kw.update(kwargs)
        return (cls or type(self))(dataset=dataset, **kw)

    def __getattr__(self, name: str):
        # Forward unknown public attributes to the dataset, so `dl.vocab` reaches the dataset's transforms.
        ds = self.__dict__.get("dataset")
        if name.startswith("_") or ds is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        try:
            return getattr(ds, name)
        except AttributeError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}, and neither has its dataset "
                                 f"({type(ds).__name__}).") from None

    def __getstate__(self) -> dict:
        # A live worker pool and an open stream cannot be pickled (export pickles the loaders).
        state = dict(self.__dict__)
        state["_torch_dl"] = None
        state.pop("it", None)
        return state

    def __repr__(self) -> str:
        n = self.n
        return (f"{type(self).__name__}(n={n if n is not None else '?'}, bs={self.bs}, shuffle={self.shuffle}, "
                f"num_workers={self.num_workers}, device={self.device})")
