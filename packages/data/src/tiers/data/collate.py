"""Turning a list of items into a batch: `fa_collate` (stack, keeping container and tensor types) and `fa_convert`;
and how a worker process hands a batch to the main process (`to_main`)."""

import io
import pickle
from collections.abc import Callable, Mapping, Sequence
from numbers import Number
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

__all__ = ["fa_collate", "fa_convert", "collate_error"]

# typed loosely: torch's C function takes `args` and `kwargs` as optional, the stub marks them required
_run_plain: Callable[..., Any] = torch._C._disabled_torch_function_impl

# Batches up to this many bytes of tensor data leave a worker through its result pipe as bytes; larger ones through
# shared memory. Torch moves every tensor through shared memory: a new shared segment in the worker and, per tensor,
# a socket round trip to the worker's file-descriptor server in the main process (~0.2-1 ms on a busy machine),
# when copying 100 KB through the pipe takes ~20 us. Measured with 2 workers: the pipe is 1.4x faster at 128 KB a batch,
# 1.1x at 1 MB, even at 2 MB, and slower past that.
PIPE_BYTES = 1 << 20


def _is_namedtuple(o) -> bool:
    return isinstance(o, tuple) and hasattr(type(o), "_fields")


def _rebuild(proto, parts: list):
    "Rebuild a sequence of the type of `proto` from `parts` (namedtuples take positional fields)."
    if type(proto) is tuple:  # the usual batch, before the namedtuple checks
        return tuple(parts)
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


def _stack_tensors(items: Sequence, where: str) -> Tensor:
    elem = items[0]
    out = None
    if (get_worker_info() is not None and elem.device.type == "cpu"
            and elem.numel() * elem.element_size() * len(items) > PIPE_BYTES):
        # A large batch crosses to the main process through shared memory: stack straight into it (no extra copy).
        storage = torch.UntypedStorage._new_shared(elem.numel() * elem.element_size() * len(items))
        out = torch.empty(0, dtype=elem.dtype).set_(  # type: ignore[call-overload]  # the stub lacks stride=None
            storage, 0, (len(items), *elem.shape))
    try:
        # Subclass dispatch off: the result is re-typed once below, rather than torch's override protocol scanning
        # the whole list for `__torch_function__` (for typed tensors that doubled the cost of the stack).
        res = _run_plain(torch.stack, (), (items, 0)) if out is None else \
            _run_plain(torch.stack, (), (items, 0), {"out": out})
    except RuntimeError as e:
        if len({tuple(x.shape) for x in items}) > 1:
            raise RuntimeError(collate_error(items, where)) from e
        raise
    cls = type(elem)
    if type(res) is not cls:
        try:
            res.__class__ = cls  # a fresh tensor no one else holds: re-type it in place, not through an alias
        except TypeError:  # a subclass with __slots__ has another layout
            res = res.as_subclass(cls)
        if getattr(elem, "__dict__", None):
            res.__dict__.update(elem.__dict__)
    return res


# numpy builds an int64/float array from a list of Python numbers ~5x faster than torch.tensor infers one
_NP_FLOAT = {torch.float32: np.float32, torch.float64: np.float64}


def _numbers_tensor(items: Sequence, t: type) -> Tensor:
    "A tensor of the Python ints or floats `items`, with the dtype `torch.tensor(items)` would give."
    if t is int:
        a = np.array(items)
        if a.dtype == np.int64:  # else floats mixed in, or ints past int64: torch's own rules decide
            return torch.from_numpy(a)
    else:
        dt = _NP_FLOAT.get(torch.get_default_dtype())
        if dt is not None:
            try:
                return torch.from_numpy(np.array(items, dtype=dt))
            except (TypeError, ValueError):  # something that is not a number: torch's own error
                pass
    return torch.tensor(items)


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
    t = type(elem)
    # The usual cases first, by exact type: the abstract-class checks below cost ~1 us each, per field and batch.
    if t is tuple or t is list:
        return _collate_fields(items, elem, where)
    if t is int or t is float:
        return _numbers_tensor(items, t)
    if isinstance(elem, Tensor):
        return _stack_tensors(items, where)
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
            mapping: Callable[..., Any] = type(elem)  # a concrete Mapping class, built from a dict
            return mapping({k: fa_collate([d[k] for d in items], f"{where}[{k!r}]") for k in elem})
        except TypeError:
            return {k: fa_collate([d[k] for d in items], f"{where}[{k!r}]") for k in elem}
    if isinstance(elem, Sequence):
        return _collate_fields(items, elem, where)
    return list(items)


def _collate_fields(items: Sequence, elem: Sequence, where: str) -> Any:
    "Collate items that are sequences field by field (one stack per field), keeping the sequence type."
    n = len(elem)
    t = type(elem)
    if t is tuple or t is list:
        try:  # the usual batch: one pass both checks the lengths and transposes
            fields = list(zip(*items, strict=True))
        except ValueError:
            fields = None
    else:
        fields = list(zip(*items)) if len(set(map(len, items))) == 1 else None
    if fields is None:
        i, o = next((i, o) for i, o in enumerate(items) if len(o) != n)
        raise RuntimeError(f"Cannot collate {where}s into a batch: item 0 has {n} elements but item {i} "
                           f"has {len(o)}. Every item of a batch must have the same structure.")
    cols = [fa_collate(col, f"element {j} of each {where}") for j, col in enumerate(fields)]
    return _rebuild(elem, cols)


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


# ---- from a worker to the main process ---------------------------------------------------------------------------
class _TooBig(Exception):
    pass


def _tensor_from_bytes(cls: type, dtype: torch.dtype, shape: tuple, buf: bytearray, meta: dict | None) -> Tensor:
    t = torch.frombuffer(buf, dtype=torch.uint8).view(dtype).view(shape) if len(buf) else torch.empty(shape, dtype=dtype)
    if cls is not Tensor:
        t = t.as_subclass(cls)
        if meta:
            t.__dict__.update(meta)
    return t


class _BytesPickler(pickle.Pickler):
    "Pickles CPU tensors as their bytes (not through shared memory), giving up past `PIPE_BYTES` of tensor data."

    def __init__(self, f):
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.size = 0

    def reducer_override(self, o):
        if not isinstance(o, Tensor):
            return NotImplemented
        if o.device.type != "cpu" or o.layout != torch.strided or o.requires_grad or o.is_quantized:
            raise _TooBig
        self.size += o.numel() * o.element_size()
        if self.size > PIPE_BYTES:
            raise _TooBig
        with torch._C.DisableTorchFunctionSubclass():
            t = o.resolve_conj().resolve_neg().contiguous()
            buf = bytearray(t.reshape(-1).view(torch.uint8).numpy()) if t.numel() else bytearray()
        return _tensor_from_bytes, (type(o), o.dtype, tuple(o.shape), buf, getattr(o, "__dict__", None) or None)


class _Piped:
    "A batch pickled as bytes: unpickling it in the main process gives the batch back."

    __slots__ = ("blob",)

    def __init__(self, blob: bytes):
        self.blob = blob

    def __reduce__(self):
        return pickle.loads, (self.blob,)


def to_main(b: Any) -> Any:
    """What a worker puts on its result queue for the batch `b`: `b` pickled as bytes when its tensors are small
    (it then unpickles as `b` in the main process), else `b` itself (its tensors travel through shared memory)."""
    f = io.BytesIO()
    try:
        _BytesPickler(f).dump(b)
    except Exception:  # too large, or not picklable this way: torch's own transfer handles (or reports) it
        return b
    return _Piped(f.getvalue())
