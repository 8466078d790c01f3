"""`DataLoaders`: the training and validation loaders (and any others) of a task, with their device and path."""

import os
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader as _TorchDataLoader

from tiers.data.load import DataLoader
from tiers.dispatch import Path
from tiers.tensors import default_device

if TYPE_CHECKING:
    from tiers.data.block import DataBlock
    from tiers.data.tfmdl import TfmdDL

__all__ = ["DataLoaders"]

_EVENTS = ("after_item", "before_batch", "after_batch")
_warned_no_cuda = False  # `cuda()` on a machine without CUDA says so once per process, not at every call


def _first_batch(dl: Any) -> Any:
    if hasattr(dl, "one_batch"):
        return dl.one_batch()
    it = iter(dl)
    try:
        return next(it)
    except StopIteration:
        raise ValueError(f"The loader {dl!r} yielded no batch: its dataset is empty or every batch was dropped.") \
            from None


def _torch_n_inp(dl: _TorchDataLoader) -> int | None:
    """fastai's rule (all but the last element of a tuple of two or more) on the first item of a torch loader's
    map-style dataset, when the loader batches it with torch's default collation (which keeps a tuple's length);
    None when that cannot be known without starting an epoch."""
    ds = dl.dataset
    if isinstance(ds, torch.utils.data.IterableDataset) or not hasattr(ds, "__getitem__"):
        return None
    if dl.collate_fn not in (torch.utils.data.default_collate, torch.utils.data.default_convert):
        return None
    try:
        if len(ds) == 0:  # type: ignore[arg-type]  # a map-style dataset without len: the except below
            return None
        o = ds[0]
    except (TypeError, IndexError, KeyError):
        return None
    return len(o) - 1 if isinstance(o, tuple | list) and len(o) >= 2 else 1


class DataLoaders:
    """Hold the loaders of a task: `train` (`dls[0]`), `valid` (`dls[1]`) and any more, which may be tiers
    `DataLoader`s or plain `torch.utils.data.DataLoader`s. Unknown attributes are looked up on the training loader
    (and from there its dataset and transforms), so `dls.vocab` and `dls.c` work. Setting `device` moves the batches
    of tiers loaders; for plain torch loaders the device is only recorded (the Learner moves their batches).

    >>> dls = DataLoaders(DataLoader(list(range(8)), bs=4), DataLoader(list(range(4)), bs=4))
    >>> dls.one_batch().tolist()
    [0, 1, 2, 3]
    """

    def __init__(self, *loaders: Iterable[Any], path: str | os.PathLike = ".",
                 device: str | torch.device | None = None):
        for i, dl in enumerate(loaders):
            if not hasattr(dl, "__iter__"):
                raise TypeError(f"DataLoaders: loader {i} is a {type(dl).__name__}, which cannot be iterated; pass "
                                "tiers DataLoaders or torch.utils.data.DataLoaders.")
        self.loaders: list[Any] = list(loaders)
        self.path = Path(path)
        self._device: torch.device | None = None
        if device is not None:
            self.device = device

    # ---- the loaders -------------------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> Any:
        return self.loaders[i]

    def __len__(self) -> int:
        return len(self.loaders)

    def _loader(self, i: int, name: str) -> Any:
        if len(self.loaders) <= i:
            raise IndexError(f"This DataLoaders has {len(self.loaders)} loader(s), so it has no `{name}` loader; "
                             f"pass at least {i + 1} loaders.")
        return self.loaders[i]

    @property
    def train(self) -> Any:
        "The training loader, `dls[0]`."
        return self._loader(0, "train")

    @train.setter
    def train(self, dl: Iterable[Any]) -> None:
        self._set(0, dl)

    @property
    def valid(self) -> Any:
        "The validation loader, `dls[1]`."
        return self._loader(1, "valid")

    @valid.setter
    def valid(self, dl: Iterable[Any]) -> None:
        self._set(1, dl)

    def _set(self, i: int, dl: Iterable[Any]) -> None:
        while len(self.loaders) <= i:
            self.loaders.append(None)
        self.loaders[i] = dl

    @property
    def train_ds(self) -> Any:
        "The dataset of the training loader."
        return self.train.dataset

    @property
    def valid_ds(self) -> Any:
        "The dataset of the validation loader."
        return self.valid.dataset

    # ---- device ------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device | None:
        "The device batches go to: the one set on this object, else the training loader's (None: not chosen yet)."
        if self._device is not None:
            return self._device
        return getattr(self.loaders[0], "device", None) if self.loaders else None

    @device.setter
    def device(self, d: str | torch.device | None) -> None:
        d = torch.device(d) if isinstance(d, str) else d
        self._device = d
        for dl in self.loaders:
            if isinstance(dl, DataLoader) or (hasattr(dl, "to") and not isinstance(dl, _TorchDataLoader)):
                dl.to(d)

    def to(self, device: str | torch.device | None) -> "DataLoaders":
        "Send the batches of every loader to `device`; returns `self`."
        self.device = device
        return self

    def cuda(self) -> "DataLoaders":
        """Send the batches to the current CUDA device. Without CUDA they go to `default_device()` instead (MPS or
        the CPU), and a `UserWarning` says so once per process, so the paper's `DataLoaders(...).cuda()` runs
        unchanged on a machine without a GPU."""
        global _warned_no_cuda
        if torch.cuda.is_available():
            return self.to(torch.device("cuda", torch.cuda.current_device()))
        dev = default_device()
        if not _warned_no_cuda:
            _warned_no_cuda = True
            warnings.warn(f"DataLoaders.cuda(): CUDA is not available on this machine; the batches stay on {dev}.",
                          UserWarning, stacklevel=2)
        return self.to(dev)

    def cpu(self) -> "DataLoaders":
        "Send the batches to the CPU."
        return self.to(torch.device("cpu"))

    # ---- batches -----------------------------------------------------------------------------------------------
    def one_batch(self) -> Any:
        "The first batch of the training loader."
        return _first_batch(self.train)

    @property
    def n_inp(self) -> int:
        "How many elements of a batch are model inputs: the value set (`dls.n_inp = 2`), else the training loader's."
        if self.__dict__.get("_n_inp") is not None:
            return self.__dict__["_n_inp"]
        n = getattr(self.train, "n_inp", None) or getattr(getattr(self.train, "dataset", None), "n_inp", None)
        if n is None and isinstance(self.train, _TorchDataLoader):
            seen = self.__dict__.get("_torch_n_inp")  # (loader, n): the first item is read once per loader
            if seen is None or seen[0] is not self.train:
                seen = self.__dict__["_torch_n_inp"] = (self.train, _torch_n_inp(self.train))
            n = seen[1]
        return 1 if n is None else n  # a dataset without n_inp (or with n_inp=None) has one input

    @n_inp.setter
    def n_inp(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"DataLoaders.n_inp must be a positive int (the number of inputs in a batch), got {n!r}")
        self._n_inp = n

    def add_tfms(self, tfms: Any, event: str, loaders: int | Iterable[int] | None = None) -> None:
        """Add the transforms `tfms` to the `event` pipeline (`after_item`, `before_batch` or `after_batch`) of the
        loaders with indices `loaders` (default: all)."""
        if event not in _EVENTS:
            raise ValueError(f"add_tfms: event must be one of {_EVENTS}, got {event!r}.")
        idxs = range(len(self.loaders)) if loaders is None else (
            [loaders] if isinstance(loaders, int) else list(loaders))
        for i in idxs:
            pipe = getattr(self.loaders[i], event, None)
            if pipe is None or not hasattr(pipe, "add"):
                raise TypeError(f"add_tfms: loader {i} ({type(self.loaders[i]).__name__}) has no transform pipeline "
                                f"at `{event}`; only TfmdDL loaders can take transforms.")
            pipe.add(tfms)

    def show_batch(self, b: Any = None, max_n: int = 9, ctxs: Sequence[Any] | None = None, show: bool = True,
                   unique: bool = False, **kwargs: Any) -> tuple | None:
        "Show a batch of the training loader (see `TfmdDL.show_batch`)."
        if not hasattr(self.train, "show_batch"):
            raise TypeError(f"show_batch needs a TfmdDL training loader, not a {type(self.train).__name__}: plain "
                            "loaders carry no types to decode and show.")
        return self.train.show_batch(b=b, max_n=max_n, ctxs=ctxs, show=show, unique=unique, **kwargs)

    def test_dl(self, test_items: Collection[Any], rm_type_tfms: int | Sequence[int] | None = None,
                with_labels: bool = False, **kwargs: Any) -> Any:
        """A loader over `test_items` with the validation loader's settings and transforms (no labels unless
        `with_labels`; the first `rm_type_tfms` type transforms of each pipeline can be skipped)."""
        from tiers.data.core import Datasets, TfmdLists, test_set  # core imports this module

        ds = self.valid_ds
        test_ds: Any = (test_set(ds, test_items, rm_tfms=rm_type_tfms, with_labels=with_labels)
                        if isinstance(ds, Datasets | TfmdLists) else test_items)
        if not hasattr(self.valid, "new"):
            # a torch loader takes any map-style collection (`__getitem__`, `__len__`), not only a `Dataset`
            return _TorchDataLoader(test_ds, batch_size=self.valid.batch_size, collate_fn=self.valid.collate_fn)
        return self.valid.new(test_ds, **kwargs)

    def new_empty(self) -> "DataLoaders":
        """A copy with empty datasets that keeps the transforms and their state (vocab, statistics) and the batch
        types the loaders learned from one batch (an empty loader cannot learn them): used by export."""
        loaders = []
        for dl in self.loaders:
            ds: Any = getattr(dl, "dataset", None)  # any collection, or none: probed with hasattr
            if hasattr(dl, "_one_pass") and "_types" not in dl.__dict__ and hasattr(ds, "__len__") and len(ds):
                dl._one_pass()
            empty = ds.new_empty() if hasattr(ds, "new_empty") else []
            if hasattr(dl, "new") and not isinstance(dl, _TorchDataLoader):
                loaders.append(dl.new(empty))
            else:
                empty_ds: Any = empty  # a torch loader takes any map-style collection (a list here)
                loaders.append(_TorchDataLoader(empty_ds, batch_size=getattr(dl, "batch_size", None)))
        return type(self)(*loaders, path=self.path, device=self._device)

    # ---- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_dsets(cls, *ds: Any, path: str | os.PathLike = ".", bs: int = 64,
                   device: str | torch.device | None = None, dl_type: "Callable[..., TfmdDL] | None" = None,
                   **kwargs: Any) -> "DataLoaders":
        """Loaders over the datasets `ds` (of class `dl_type`, default `TfmdDL`): the first shuffles and drops its
        last partial batch; `kwargs` go to every loader."""
        from tiers.data.core import TfmdDL

        dl_type = dl_type or TfmdDL
        dls = []
        for i, d in enumerate(ds):
            kw = dict(shuffle=i == 0, drop_last=i == 0)
            kw.update(kwargs)
            dls.append(dl_type(d, bs=bs, **kw))
        return cls(*dls, path=path, device=device)

    @classmethod
    def from_dblock(cls, dblock: "DataBlock", source: Any, path: str | os.PathLike = ".", bs: int = 64,
                    val_bs: int | None = None, shuffle: bool = True, device: str | torch.device | None = None,
                    **kwargs: Any) -> "DataLoaders":
        "The loaders `dblock.dataloaders(source, ...)` makes."
        return dblock.dataloaders(source, path=path, bs=bs, val_bs=val_bs, shuffle=shuffle, device=device, **kwargs)

    # ---- forwarding --------------------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or "loaders" not in self.__dict__ or not self.__dict__["loaders"]:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        train = self.__dict__["loaders"][0]
        # A tiers loader forwards to its dataset itself (asking the dataset again would walk it twice on a miss); a
        # plain torch loader does not, so its dataset is asked next.
        for o in (train,) if isinstance(train, DataLoader) else (train, getattr(train, "dataset", None)):
            if o is None:
                continue
            try:
                return getattr(o, name)
            except AttributeError:
                continue
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}, and neither has its training loader "
                             f"({type(train).__name__}) nor that loader's dataset.")

    def __repr__(self) -> str:
        return f"DataLoaders({', '.join(type(d).__name__ for d in self.loaders)}; device={self.device})"
