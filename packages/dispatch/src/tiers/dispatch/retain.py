"""Keep a subclass type (and a tensor's metadata) across functions that return the plain parent type.

A transform that receives a `TensorImage` and returns what `torch` gives back (a plain `Tensor`) should hand on a
`TensorImage`; `retain_type` does that cast, duck-typed so this layer imports neither torch nor numpy.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["retain_type", "retain_types"]

_T = TypeVar("_T")

# builtins whose instances refuse `__class__` assignment; their subclasses are built with `typ(new)`
_BUILTIN = (int, float, complex, str, bytes, tuple, frozenset, list, dict, set, bytearray)


def _cast(new, typ):
    "`new` viewed as `typ`, a subclass of `type(new)`; `new` unchanged when that cannot be done safely."
    if hasattr(new, "as_subclass"):  # torch.Tensor: a new Python object sharing storage
        return new.as_subclass(typ)
    if hasattr(new, "__array__") and hasattr(new, "view"):  # numpy.ndarray
        try:
            return new.view(typ)
        except (TypeError, ValueError):
            return new
    if type(new) in _BUILTIN:
        try:
            res = typ(new)
        except (TypeError, ValueError):
            return new
        return res if type(res) is typ else new
    try:
        new.__class__ = typ  # only works when both classes share a memory layout
    except TypeError:
        return new
    return new


def _copy_meta(res, old):
    "Copy `old.__dict__` entries (tensor metadata) that `res` lacks; only for tensor/array views."
    od = getattr(old, "__dict__", None)
    if not od or res is old:
        return res
    rd = getattr(res, "__dict__", None)
    if rd is None:
        return res
    for k, v in od.items():
        if k not in rd:
            rd[k] = v
    return res


def retain_type(new: _T, old: Any = None, typ: type | None = None) -> _T:
    """`new` cast to `typ` (default: `type(old)`) when `new`'s type is a parent of it, else `new` unchanged.

    Tensors are cast with `as_subclass` and get `old`'s `__dict__` metadata copied over (keys `new` lacks); arrays
    with `.view`; builtins (`str`, `int`, `tuple`, `list`...) by calling `typ(new)`; other objects by `__class__`
    assignment when the layouts allow it. `old=None` and `typ=None` returns `new`.

    >>> class Name(str): pass
    >>> type(retain_type("bob", Name("alice"))).__name__
    'Name'
    >>> retain_type(3, Name("alice"))  # int is not a parent of Name: unchanged
    3
    """
    if new is None:
        return new
    if typ is None:
        if old is None:
            return new
        typ = type(old)
    elif not isinstance(typ, type):
        raise TypeError(f"retain_type: typ={typ!r} is not a class; pass a class or None")
    t = type(new)
    if t is typ or not issubclass(typ, t):
        return new
    res = _cast(new, typ)
    if res is not new and old is not None and (hasattr(new, "as_subclass") or hasattr(new, "__array__")):
        _copy_meta(res, old)
    return res


def retain_types(new: _T, old: Any = None, typs: type | Sequence[Any] | None = None) -> _T:
    """`retain_type` applied recursively over tuples and lists: item `i` of `new` follows item `i` of `old` (or of
    `typs`, a matching nested sequence of classes). The container itself keeps `old`'s type when that is a
    subclass of `new`'s.

    >>> class Name(str): pass
    >>> retain_types(("a", 1), (Name("b"), 2))
    ('a', 1)
    >>> type(retain_types(("a", 1), (Name("b"), 2))[0]).__name__
    'Name'
    """
    if not isinstance(new, (tuple, list)):
        return retain_type(new, old, typs if isinstance(typs, type) else None)
    olds = old if isinstance(old, (tuple, list)) and len(old) == len(new) else None
    tseq = typs if isinstance(typs, (tuple, list)) and len(typs) == len(new) else None
    items = [
        retain_types(x, None if olds is None else olds[i], None if tseq is None else tseq[i]) for i, x in enumerate(new)
    ]
    t: type = type(new)
    if old is not None and isinstance(old, t):
        t = type(old)
    elif isinstance(typs, type) and issubclass(typs, t):
        t = typs
    make = getattr(t, "_make", None)
    if make is not None:  # namedtuple
        return make(items)
    try:
        return t(items)
    except TypeError:
        return type(new)(items)
