"""`TensorBase`: a `torch.Tensor` subclass whose type and metadata survive torch operations.

A `TensorImage` stays a `TensorImage` after `x * 2`, `x[0]`, `x.to(device)`, `torch.cat`, pickling or
`copy.deepcopy`, and metadata stored as attributes (`TensorPoint(pts, img_size=(28, 28))`) follows it. Nothing is
patched on `torch.Tensor`: all of it happens in `TensorBase.__torch_function__`, which torch calls only for
instances of these subclasses, and in a few hot methods (`flip`, `float`, `permute`...) that `TensorBase` defines
itself with the same rules at a third of the cost.

Rules for a result (kept simple so they can be predicted):
- a tensor result takes the type, and a shallow copy of the metadata, of the first `TensorBase` argument (scanning
  positional arguments, one level into lists/tuples such as `torch.cat([a, b])`, then keyword arguments), so
  `image + mask` is a `TensorImage` and `mask + image` a `TensorMask`;
- tuples and lists of tensors (`x.split(2)`, `x.max(0)`) get the same treatment element-wise;
- anything else (`x.shape`, `x.item()`, `x.tolist()`, `bool(x)`, strings) is returned untouched, and so is an
  in-place result (`x.add_(1)` returns `x` itself) or an `out=` tensor;
- `as_subclass` is not a torch function, so `x.as_subclass(torch.Tensor)` returns a plain, metadata-free alias.
"""

from __future__ import annotations

import copy
import numbers
import sys
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["TensorBase", "cast", "safe_tensor_types", "tensor"]

# One C call that runs `func` with subclass `__torch_function__` disabled: cheaper than entering the
# `DisableTorchFunctionSubclass` context manager in Python on every op.
_run_plain = torch._C._disabled_torch_function_impl
# The same switch as a guard object: the fast methods enter and leave a fresh one around a direct call. (Typed loosely:
# torch's stub declares it a function returning a context manager; it is a class whose methods are called unbound.)
_SubclassOff: Any = torch._C.DisableTorchFunctionSubclass


def _guard_leave() -> Any:
    """How the fast methods leave their guard: torch's `__exit__` itself when it takes the guard alone (its C method
    ignores the exception arguments; ~10 ns less per op than passing three Nones), else a call that passes them."""
    g = _SubclassOff()
    _SubclassOff.__enter__(g)
    try:
        _SubclassOff.__exit__(g)
    except TypeError:  # a torch whose __exit__ checks its arguments
        _SubclassOff.__exit__(g, None, None, None)
        return lambda g: _SubclassOff.__exit__(g, None, None, None)
    return _SubclassOff.__exit__


_leave = _guard_leave()
# Getters whose results torch itself never wraps (`.grad`, `._base`, `._grad`).
_NOWRAP = frozenset(torch.overrides.get_default_nowrap_functions())
_refcount = sys.getrefcount


def _meta_of_310(o):
    d = o.__dict__
    return d or None


# `_state(t)`: the metadata dict of `t`, or None when it has none, WITHOUT creating an empty `__dict__` the way
# reading `t.__dict__` does (`object.__getstate__`, Python >= 3.11; for a subclass with filled `__slots__` it gives a
# tuple instead of a dict). The rules below are paid per op: a tensor that never had metadata keeps no dict, so
# every later `x.method` lookup on it stays on CPython's specialised path (an instance with a dict, even an empty
# one, sends each method lookup through the generic one), and datasets of typed items hold one dict less per item.
_state = getattr(object, "__getstate__", _meta_of_310)


def _meta(o: Tensor) -> dict | None:
    "The metadata dict of `o` (its non-empty `__dict__`), or None; no empty dict is created."
    st = _state(o)
    return st if st is None or type(st) is dict else (o.__dict__ or None)


def _first_typed(args, kwargs):
    "The first `TensorBase` argument of an op: positional (one level into lists/tuples), then keyword; else None."
    for a in args:
        if isinstance(a, TensorBase):
            return a
        if type(a) is list or type(a) is tuple:
            for b in a:
                if isinstance(b, TensorBase):
                    return b
    if kwargs:
        return _first_typed(kwargs.values(), None)
    return None


def _wrap(r, src):
    "A plain tensor `r` as `type(src)` carrying a copy of `src`'s metadata; anything else unchanged."
    if type(r) is not Tensor:
        return r
    r = r.as_subclass(type(src))
    meta = _meta(src)
    if meta:
        r.__dict__.update(meta)
    return r


class TensorBase(Tensor):
    """A `torch.Tensor` whose subclass type and attribute metadata survive torch operations.

    `TensorBase(x, **meta)` accepts a tensor (shared, not copied), a NumPy array, a list or a number (see `tensor`),
    and stores each keyword as an attribute. Results of torch ops, indexing, `.to`, `torch.cat`/`stack`,
    `deepcopy`, pickling and `torch.save`/`torch.load` keep the type and metadata.

    >>> t = TensorBase([1., 2.], tag="x")
    >>> (t * 2).tag, type(t[0]).__name__
    ('x', 'TensorBase')

    Subclass it to give tensors a meaning (`class TensorDepth(TensorImageBase): pass`). To hand a model plain
    tensors (no per-op overhead inside the model), use `as_plain`.
    """

    def __new__(cls, x, **meta):
        t = tensor(x)
        # always a new object (an alias sharing memory), so metadata given here never lands on the caller's tensor
        res = t.as_subclass(cls)
        tmeta = _meta(t) if isinstance(t, TensorBase) else None
        if tmeta:
            res.__dict__.update(tmeta)
        if meta:
            clash = [k for k in meta if hasattr(Tensor, k)]
            if clash:
                raise ValueError(
                    f"{cls.__name__}: metadata name(s) {clash} would hide torch.Tensor attributes of the same name; "
                    "choose other names (e.g. img_size instead of size)"
                )
            res.__dict__.update(meta)
        return res

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__torch_function__" in cls.__dict__:
            # a subclass with its own __torch_function__ must see every method call: give it torch's methods back
            for name in _FAST_METHODS:
                if name not in cls.__dict__:
                    setattr(cls, name, getattr(Tensor, name))

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        ret = _run_plain(func, types, args, kwargs) if kwargs else _run_plain(func, types, args)
        if type(ret) is Tensor:  # the hot path: an op that made a new plain tensor
            src = args[0] if args else None
            if ret is src:  # in place on a plain first argument (`plain.add_(typed)`): keep its identity
                return ret
            if not isinstance(src, TensorBase):
                src = _first_typed(args, kwargs)
            if src is None or func in _NOWRAP or (kwargs and ret is kwargs.get("out")):
                return ret
            meta = _meta(src)
            if _refcount(ret) == 2:
                # Nothing but this frame refers to the new Python object (not an argument, not a caller's or a
                # cache's tensor): re-type it in place, ~50 ns against ~1.5 us for `as_subclass`, which allocates
                # an alias through the dispatcher.
                try:
                    ret.__class__ = type(src)
                except TypeError:  # a subclass that adds `__slots__` has another memory layout
                    pass
                else:
                    if meta:
                        ret.__dict__.update(meta)
                    return ret
            res = ret.as_subclass(type(src))
            if meta:
                res.__dict__.update(meta)
            return res
        if (
            isinstance(ret, (tuple, list))
            and type(ret) is not torch.Size
            and any(type(r) is Tensor for r in ret)
        ):
            src = _first_typed(args, kwargs)
            if src is None:
                return ret
            rt = type(ret)
            items = [_wrap(r, src) for r in ret]
            return rt._make(items) if hasattr(rt, "_make") else rt(items)
        return ret

    def set_meta(self, x: Any, as_copy: bool = False) -> TensorBase:
        """Take the metadata of `x` (its `__dict__`; a shallow copy when `as_copy`) and return `self`."""
        d = getattr(x, "__dict__", None)
        if d is not None:
            self.__dict__ = dict(d) if as_copy else d
        return self

    def __reduce_ex__(self, proto):
        # torch's own reduction stores (rebuild function, subclass type, storage args, __dict__); calling it with
        # subclass dispatch off avoids one round trip through __torch_function__
        with torch._C.DisableTorchFunctionSubclass():
            return Tensor.__reduce_ex__(self, proto)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        if not self.is_leaf:
            raise RuntimeError(
                f"deepcopy of a {type(self).__name__} that is not a graph leaf (it has grad_fn={self.grad_fn}); "
                "call .detach() first, as for plain tensors"
            )
        # torch's deepcopy needs `new_empty` to return the subclass; run it on a plain alias instead (it shares the
        # storage, so views deep-copied together still share their copied storage) and re-type the copy
        with torch.no_grad():
            plain = self.as_subclass(Tensor)
        # keep the alias alive while memo lives, so its id cannot be reused by another object being copied
        memo.setdefault(id(memo), []).append(plain)
        new = Tensor.__deepcopy__(plain, memo).as_subclass(type(self))
        if self.requires_grad:
            new.requires_grad_()
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        memo[id(self)] = new
        return new


# Methods that per-item transforms call all the time. On a TensorBase they are Python methods that run torch's own
# method with subclass dispatch off and re-type the result by the rules above: that skips torch's generic override
# protocol (parse the arguments, collect the overloaded ones, call `__torch_function__`, parse again), about 1.4 us
# of the ~2 us per-op cost. Every other method and function goes through `__torch_function__`.
_FAST_METHODS = (
    "flip", "fliplr", "flipud", "rot90", "roll", "float", "half", "double", "long", "int", "byte", "bool", "to",
    "cpu", "cuda", "permute", "transpose", "view", "reshape", "contiguous", "clone", "detach", "squeeze",
    "unsqueeze", "expand", "flatten", "narrow", "clamp", "mul", "add", "sub", "div", "neg", "abs",
    # batch transforms (to float, normalize) do their arithmetic in place or with operators
    "mul_", "add_", "sub_", "div_", "clamp_", "__add__", "__sub__", "__mul__", "__truediv__",
)
_NO_TYPES = ()


def _fast_slow(func, args, kwargs):
    "A fast method called with keyword arguments (rare in hot loops): same rules, `out=` left alone."
    ret = _run_plain(func, _NO_TYPES, args, kwargs)
    if ret is kwargs.get("out") or not args:
        return ret
    return _wrap(ret, args[0])


def _fast_method(name: str):
    func = getattr(Tensor, name)
    plain, rc, state, slow, wrap, tp = Tensor, _refcount, _state, _fast_slow, _wrap, type
    off, enter, leave = _SubclassOff, _SubclassOff.__enter__, _leave

    # The hot path is written for the common call (positional arguments, a fresh plain result): every line here is
    # paid per item by data pipelines. Measured per call (thread time, `TensorImage.flip`), each choice below saves
    # 20-50 ns against the obvious spelling:
    # - `self` is not a named parameter: `args` (self included) is passed to torch as is, not rebuilt as
    #   `(self,) + args`;
    # - helpers (`type` included) are closure cells, not keyword-only defaults (`_f=func`), which CPython fills from
    #   `__kwdefaults__` with a dict lookup each, on every call;
    # - subclass dispatch is turned off by a fresh `DisableTorchFunctionSubclass` entered and left through its
    #   unbound methods, and torch's method called directly: ~25 ns less than `_disabled_torch_function_impl(func,
    #   (), args)`, which parses its own arguments and calls `func` through a tuple. A fresh guard per call (it
    #   keeps the state to restore) stays right when threads interleave or calls nest.
    def method(*args, **kwargs):
        if kwargs:
            return slow(func, args, kwargs)
        g = off()
        enter(g)
        try:
            ret = func(*args)
        finally:
            leave(g)
        if rc(ret) == 2 and tp(ret) is plain:
            # a fresh object only this frame holds: re-type it in place (see __torch_function__)
            self = args[0]
            try:
                ret.__class__ = tp(self)
            except TypeError:
                return wrap(ret, self)
            st = state(self)  # no empty __dict__ made on `self` (see `_state`)
            if st is not None:
                ret.__dict__.update(st if tp(st) is dict else self.__dict__)
            return ret
        if tp(ret) is not plain or ret is args[0]:
            # self (in place, a no-op `.float()`; also a plain `self` of an unbound call), a typed tensor, or not a
            # tensor at all
            return ret
        return wrap(ret, args[0])  # a plain tensor something else also holds: re-typed through an alias, not in place

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`torch.Tensor.{name}`, with the result keeping this tensor's type and metadata."
    return method


for _name in _FAST_METHODS:
    setattr(TensorBase, _name, _fast_method(_name))
del _name


def _array2tensor(x: np.ndarray) -> Tensor:
    if x.dtype == np.uint16:  # torch supports almost no ops on uint16
        x = x.astype(np.float32)
    if x.dtype == object:
        raise TypeError(
            f"tensor: cannot convert a NumPy array of dtype object (shape {x.shape}); convert its items to numbers "
            "first, e.g. np.stack(list_of_arrays)"
        )
    if not x.flags.writeable or any(s < 0 for s in x.strides):
        x = np.array(x)  # torch cannot share read-only or negatively strided memory
    return torch.from_numpy(x)


def _from_any(x, dtype) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _array2tensor(x)
    if isinstance(x, (list, tuple)):
        if x and isinstance(x[0], (Tensor, np.ndarray)):
            return torch.stack([tensor(o) for o in x])
        return torch.tensor(x, dtype=dtype)  # dtype here: building float64 via float32 would lose precision
    if isinstance(x, (numbers.Number, np.generic)):
        return torch.tensor(x, dtype=dtype)
    if hasattr(x, "to_numpy"):  # pandas Series/DataFrame
        return _array2tensor(np.asarray(x.to_numpy()))
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):  # PIL images and other array-likes
        return _array2tensor(np.asarray(x))
    try:
        items = list(x)
    except TypeError:
        raise TypeError(
            f"tensor: cannot make a tensor from {type(x).__name__} {x!r:.60}; pass a tensor, NumPy array, "
            "number, list or array-like"
        ) from None
    return _from_any(items, dtype)


def tensor(
    x: Any, *rest: Any, dtype: torch.dtype | None = None, device: str | torch.device | None = None,
    requires_grad: bool = False, pin_memory: bool = False,
) -> Tensor:
    """Make a tensor from `x` (and `rest`, taken as further items): tensors pass through, NumPy arrays are shared
    (not copied) where possible, lists of tensors or arrays are stacked, numbers and nested lists go through
    `torch.tensor`, pandas objects and PIL images through NumPy. float64 becomes float32 unless `dtype` is given;
    then `dtype`, `device`, `pin_memory` and `requires_grad` are applied.

    >>> tensor(1, 2, 3)
    tensor([1, 2, 3])
    >>> tensor(np.zeros(2)).dtype
    torch.float32
    """
    if rest:
        x = (x, *rest)
    res = _from_any(x, dtype)
    if dtype is None and res.dtype is torch.float64:
        res = res.float()
    if dtype is not None or device is not None:
        res = res.to(device=device, dtype=dtype)
    if pin_memory:
        res = res.pin_memory()
    if requires_grad:
        res.requires_grad_()
    return res


def cast(x: Any, typ: type) -> Any:
    """`x` as an instance of `typ`: tensors are re-typed with `as_subclass` (sharing memory, keeping `TensorBase`
    metadata when `typ` is a `TensorBase`), NumPy arrays with `.view`, anything else by calling `typ(x)`.

    >>> t = cast(torch.zeros(2), TensorBase)
    >>> type(t).__name__, type(cast(t, Tensor)).__name__
    ('TensorBase', 'Tensor')
    """
    if not isinstance(typ, type):
        raise TypeError(f"cast: typ={typ!r} is not a class; pass the class to cast to, e.g. TensorImage")
    if type(x) is typ:
        return x
    if isinstance(x, Tensor) and issubclass(typ, Tensor):
        res = x.as_subclass(typ)
        if issubclass(typ, TensorBase):
            meta = _meta(x)
            if meta:
                res.__dict__.update(meta)
        return res
    if isinstance(x, np.ndarray) and issubclass(typ, np.ndarray):
        return x.view(typ)
    try:
        return typ(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"cast: cannot cast {type(x).__name__} to {typ.__name__}: {e}") from e


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def safe_tensor_types() -> list[type]:
    """Every `TensorBase` subclass defined so far (including those of other layers), for `torch.load`'s default
    `weights_only=True` mode, which refuses unknown classes:

    >>> import io
    >>> buf = io.BytesIO(); torch.save(TensorBase([1.]), buf); _ = buf.seek(0)
    >>> with torch.serialization.safe_globals(safe_tensor_types()):
    ...     type(torch.load(buf)).__name__
    'TensorBase'

    Nothing is registered globally at import; `torch.load(f, weights_only=False)` also works for trusted files.
    """
    return [TensorBase, *dict.fromkeys(_subclasses(TensorBase))]
