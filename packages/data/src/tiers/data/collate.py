"""Turning a list of items into a batch: `fa_collate` (stack, keeping container and tensor types) and `fa_convert`."""

from collections.abc import Mapping, Sequence
from numbers import Number
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

__all__ = ["fa_collate", "fa_convert", "collate_error"]


def _is_namedtuple(o) -> bool:
    return isinstance(o, tuple) and hasattr(type(o), "_fields")


def _rebuild(proto, parts: list):
    "Rebuild a sequence of the type of `proto` from `parts` (namedtuples take positional fields)."
    if _is_namedtuple(proto):
        return type(proto)(*parts)
    if type(proto) in (tuple, list):
        return type(proto)(parts)
    try:
        return type(proto)(parts)
    except TypeError:
        return tuple(parts)


def collate_error(items: Sequence, where: str = "item") -> str:
    "Explain why `items` (tensors or arrays) cannot be stacked: list the distinct shapes and where they first occur."
    shapes: dict[tuple, int] = {}
    for i, o in enumerate(items):
        shp = tuple(getattr(o, "shape", ()))
        shapes.setdefault(shp, i)
    desc = ", ".join(f"{list(s)} (first at item {i})" for s, i in shapes.items())
    return (f"Cannot collate {where} into a batch: its shapes differ across the batch: {desc}. "
            "Make every item the same size with an item transform (for example a resize or a crop), "
            "or pass `create_batch=` to the DataLoader to build the batch yourself.")


def _stack_tensors(items: list, where: str) -> Tensor:
    elem = items[0]
    out = None
    if get_worker_info() is not None and type(elem) is Tensor and elem.device.type == "cpu":
        # In a worker, stack straight into shared memory: the batch then crosses to the main process with no copy.
        numel = sum(x.numel() for x in items)
        storage = elem._typed_storage()._new_shared(numel, device=elem.device)
        out = elem.new(storage).resize_(len(items), *elem.shape)
    try:
        res = torch.stack(items, 0, out=out)
    except RuntimeError as e:
        if len({tuple(x.shape) for x in items}) > 1:
            raise RuntimeError(collate_error(items, where)) from e
        raise
    if type(res) is not type(elem):
        res = res.as_subclass(type(elem))
        if getattr(elem, "__dict__", None):
            res.__dict__.update(elem.__dict__)
    return res


def fa_collate(items: Sequence, where: str = "item") -> Any:
    """Collate `items` into a batch: tensors and arrays are stacked (keeping tensor subclasses and their metadata),
    numbers become a tensor (floats as the default float dtype), strings and other objects stay a list, and tuples,
    lists, namedtuples and mappings are collated element by element and keep their type.

    >>> fa_collate([(torch.zeros(2), 1), (torch.ones(2), 0)])[1]
    tensor([1, 0])
    """
    if len(items) == 0:
        raise ValueError("fa_collate got an empty list of items: a batch needs at least one item.")
    elem = items[0]
    if isinstance(elem, Tensor):
        return _stack_tensors(list(items), where)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUS":
            return list(items)
        try:
            return torch.from_numpy(np.stack(items))
        except ValueError as e:
            raise RuntimeError(collate_error(items, where)) from e
    if isinstance(elem, np.generic):
        return torch.as_tensor(np.array(items))
    if isinstance(elem, bool | Number) and not isinstance(elem, complex):
        return torch.tensor(items)
    if isinstance(elem, str | bytes) or elem is None:
        return list(items)
    if isinstance(elem, Mapping):
        try:
            return type(elem)({k: fa_collate([d[k] for d in items], f"{where}[{k!r}]") for k in elem})
        except TypeError:
            return {k: fa_collate([d[k] for d in items], f"{where}[{k!r}]") for k in elem}
    if isinstance(elem, Sequence):
        n = len(elem)
        for i, o in enumerate(items):
            if len(o) != n:
                raise RuntimeError(f"Cannot collate {where}s into a batch: item 0 has {n} elements but item {i} "
                                   f"has {len(o)}. Every item of a batch must have the same structure.")
        cols = [fa_collate(list(col), f"element {j} of each {where}") for j, col in enumerate(zip(*items))]
        return _rebuild(elem, cols)
    return list(items)


def fa_convert(o: Any) -> Any:
    "Convert an already-batched `o` for the model: numpy arrays become tensors, recursing into tuples, lists and dicts."
    if isinstance(o, Tensor):
        return o
    if isinstance(o, np.ndarray):
        return o if o.dtype.kind in "OUS" else torch.from_numpy(o)
    if isinstance(o, str | bytes):
        return o
    if isinstance(o, Mapping):
        return {k: fa_convert(v) for k, v in o.items()}
    if isinstance(o, Sequence):
        return _rebuild(o, [fa_convert(v) for v in o])
    return o
