"""`TfmdDL`: a `DataLoader` whose `after_item`, `before_batch` and `after_batch` are Pipelines of transforms, and
which can decode and show its batches."""

from typing import Any, cast

import torch

from tiers.data.load import DataLoader, _default_method
from tiers.data.samples import _is_column
from tiers.dispatch import L, retain_types
from tiers.pipeline import Pipeline, Transform
from tiers.tensors import TensorImage, TensorImageBW, TensorMask, to_cpu, to_device

__all__ = ["TfmdDL"]

_BATCH_TFMS = ("after_item", "before_batch", "after_batch")


# Types no element of a collated batch can have: collation turns numbers into tensors and strings into lists.
_SCALARS = (bool, int, float, complex, str, bytes)


def _refuse_dead_batch_tfms(dl: "TfmdDL") -> None:
    """Refuse a plain function in `after_batch` (`batch_tfms`) whose first parameter is annotated with a scalar type:
    dispatched on that annotation it matches no element of a collated batch, so it would never run. This is what a
    transform factory given without its call looks like (`batch_tfms=aug_transforms`, `mult: float`)."""
    if dl.bs is None or not _default_method(dl, "create_batch"):  # uncollated items, or the caller's own batches
        return
    for t in dl.after_batch.fs:
        # a Transform class's encodes are its author's choice; `encodes` is a slot the metaclass sets
        if type(t) is not Transform or len(t.encodes) != 1:  # type: ignore[attr-defined]  # metaclass slot
            continue
        ts = t.input_types
        ts = ts if isinstance(ts, tuple) else (ts,)
        if ts and all(isinstance(c, type) and issubclass(c, _SCALARS) for c in ts):
            name, anno = t.name, " | ".join(c.__name__ for c in ts)
            raise TypeError(
                f"batch_tfms (after_batch) holds the function {name}, whose first parameter is annotated {anno}: "
                f"no element of a collated batch is a {anno} (numbers become tensors), so it would never run and "
                f"the batches would pass unchanged. If {name} makes transforms, call it: {name}(); if it transforms "
                "a batch, annotate its first parameter with the batch's type (e.g. Tensor) or not at all.")


# What a PIL image or mask is in a collated batch (a PIL class may name its own in `_tensor_cls`).
_BATCH_IMAGES = (TensorImage, TensorImageBW, TensorMask)
# The batch version of tiers' item transforms, for the message
_BATCH_VERSION = {"RandomResizedCrop": "RandomResizedCropGPU", "FlipItem": "Flip", "DihedralItem": "Dihedral",
                  "Resize": "aug_transforms(size=...) or RandomResizedCropGPU(size, min_scale=1.)",
                  "RandomCrop": "RandomResizedCropGPU", "CropPad": "RandomResizedCropGPU(size, min_scale=1.)"}


def _is_pil(c: Any) -> bool:
    "Whether `c` is a PIL image class (found by its bases' module: the data layer does not import PIL)."
    return isinstance(c, type) and any(k.__name__ == "Image" and k.__module__ == "PIL.Image" for k in c.__mro__)


def _pil_only_types(t: Any) -> list[type] | None:
    """The encodes types of `t` when it is an item transform: it takes PIL images and no tensor image (nothing a
    collated batch of images or masks is); None otherwise (it handles batches, or does not take images at all)."""
    m = getattr(t, "_encm", None)
    if m is None:
        return None
    ins = [k[0] for k in m.td._all_funcs()]
    pil = [c for c in ins if _is_pil(c)]
    if not pil:
        return None
    batch_types: set[type] = set(_BATCH_IMAGES)
    for c in pil:  # the tensor types these PIL classes (and their subclasses) become, where they say so
        todo = [c]
        while todo:
            k = todo.pop()
            todo.extend(k.__subclasses__())
            tc = getattr(k, "_tensor_cls", None)
            if isinstance(tc, type):
                batch_types.add(tc)
    for b in batch_types:
        try:
            if m.resolve(b) is not None:
                return None
        except TypeError:  # ambiguous: some method takes it, so it is meant for batches too
            return None
    return [c for c in ins if isinstance(c, type)]


def _refuse_item_tfms_in_batch(dl: "TfmdDL") -> None:
    """Refuse an item transform in `after_batch` (`batch_tfms`): one whose `encodes` take PIL images but no tensor
    image (`Resize`, `RandomResizedCrop`) never matches a collated batch, where images are tensors, so the batches
    would pass unchanged. Decided once per loader, from the transforms' dispatch tables."""
    if dl.bs is None or not _default_method(dl, "create_batch"):  # uncollated items, or the caller's own batches
        return
    for t in dl.after_batch.fs:
        ts = _pil_only_types(t)
        if ts is None:
            continue
        cls = type(t).__name__
        alt = _BATCH_VERSION.get(cls)
        alt = f"its batch version: {alt}" if alt else "a batch transform (one whose encodes take a TensorImage)"
        takes = ", ".join(c.__name__ for c in ts)
        raise TypeError(
            f"batch_tfms (after_batch) holds {cls}, an item transform: its encodes take {takes}, and a collated batch "
            f"holds no PIL image (images are tensors by then), so it would never run on the images and the batches "
            f"would pass unchanged. Put {cls} in item_tfms (after_item), or use {alt} in batch_tfms.")


def _types_of(o):
    "The nested structure of types of a batch, for `retain_types(typs=...)`."
    if isinstance(o, tuple | list) and not _is_column(o):
        return tuple(_types_of(x) for x in o)
    return type(o)


class TfmdDL(DataLoader):
    """A `DataLoader` (default `bs=64`) whose `after_item`, `before_batch` and `after_batch` are `Pipeline`s of
    transforms, set up on the loader itself (so `Normalize` can compute statistics from a batch). Each epoch, the
    pipelines get the dataset's `split_idx`. `decode(b)` re-types a collated batch and decodes `after_batch`;
    `decode_batch` goes on to per-sample decoding; `show_batch` and `show_results` display through the
    type-dispatched `show_batch` / `show_results`. `num_workers=None` means 0 (no worker processes)."""

    # the constructor makes each of these a Pipeline (declared only: DataLoader's methods stay the class attributes)
    after_item: Pipeline
    before_batch: Pipeline
    after_batch: Pipeline

    def __init__(self, dataset: Any, bs: int | None = 64, shuffle: bool = False, num_workers: int | None = None,
                 verbose: bool = False, do_setup: bool = True, **kwargs: Any):
        if num_workers is None:
            num_workers = 0
        for nm in _BATCH_TFMS:
            v = kwargs.get(nm)
            kwargs[nm] = v if isinstance(v, Pipeline) else Pipeline(v)
        super().__init__(dataset, bs=bs, shuffle=shuffle, num_workers=num_workers, **kwargs)
        _refuse_dead_batch_tfms(self)
        _refuse_item_tfms_in_batch(self)
        if self.device is not None:
            self.to(self.device)  # the state of the batch transforms (Normalize's statistics) follows the batches
        if do_setup:
            self.setup_tfms(verbose)

    def setup_tfms(self, verbose: bool = False) -> None:
        "Set up the `after_item`, `before_batch` and `after_batch` pipelines on this loader, in that order."
        for nm in _BATCH_TFMS:
            if verbose:
                print(f"Setting up {nm}: {getattr(self, nm)}")
            getattr(self, nm).setup(self)

    def before_iter(self) -> None:
        "Give the transforms the dataset's `split_idx` (so training-only transforms skip validation data)."
        super().before_iter()
        self._set_split_idx()

    def _set_split_idx(self) -> None:
        split_idx = getattr(self.dataset, "split_idx", None)
        for nm in _BATCH_TFMS:
            f = getattr(self, nm)
            if isinstance(f, Pipeline):
                f.split_idx = split_idx

    # ---- one pass: how many inputs, and the types a batch should have ---------------------------------------------
    def _one_pass(self) -> None:
        if self.n is not None and self.n == 0:
            raise ValueError("This TfmdDL has an empty dataset: there is no batch to learn the types from.")
        self._set_split_idx()
        b = self.do_batch([self.do_item(0 if self.indexed else None)]) if self.bs is not None else \
            self.do_batch(self.do_item(0 if self.indexed else None))
        if self.device is not None:
            b = to_device(b, self.device)
        its = self.after_batch(b)
        self._n_inp = 1 if not isinstance(its, tuple | list) or len(its) == 1 else len(its) - 1
        self._types = _types_of(its)
        self.__dict__.pop("it", None)

    @property
    def n_inp(self) -> int:
        "How many elements of a batch are inputs: the dataset's `n_inp`, else all but the last."
        n = getattr(self.dataset, "n_inp", None)
        if n is not None:
            return n
        if "_n_inp" not in self.__dict__:
            self._one_pass()
        return self._n_inp

    def _retain_dl(self, b):
        if "_types" not in self.__dict__:
            self._one_pass()
        return retain_types(b, typs=self._types)

    # ---- decoding and showing ------------------------------------------------------------------------------------
    def decode(self, b: Any) -> Any:
        "Re-type the collated batch `b`, decode it through `after_batch` and move it to the CPU."
        return to_cpu(self.after_batch.decode(self._retain_dl(b)))

    # ---- device and copies ---------------------------------------------------------------------------------------
    def to(self, device: str | torch.device | None) -> "TfmdDL":
        "Set the device and move the state of the `after_batch` transforms (`to`, or their `parameters`) to it."
        self.device = device
        for tfm in self.after_batch.fs:
            if hasattr(tfm, "to"):
                tfm.to(device)
            else:
                for a in L(getattr(tfm, "parameters", None)):
                    setattr(tfm, a, getattr(tfm, a).to(device))
        return self

    def _new_kwargs(self) -> dict:
        kw = super()._new_kwargs()
        for nm in _BATCH_TFMS:
            p = kw.get(nm)
            if isinstance(p, Pipeline):
                # A copy holding the same transforms: each loader sets its own split_idx, state stays shared.
                kw[nm] = Pipeline(list(p.fs), split_idx=p.split_idx)
        return kw

    def new(self, dataset: Any = None, cls: type | None = None, **kwargs: Any) -> "TfmdDL":
        "A loader like this one (see `DataLoader.new`) whose transforms are already set up."
        kwargs.setdefault("do_setup", False)
        res = cast(TfmdDL, super().new(dataset, cls, **kwargs))
        for a in ("_n_inp", "_types"):
            if a in self.__dict__:
                res.__dict__[a] = self.__dict__[a]
        return res
