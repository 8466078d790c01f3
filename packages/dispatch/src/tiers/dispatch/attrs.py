"""Attribute plumbing: `GetAttr` (forward unknown attributes to a component), `store_attr` (save `__init__`
arguments as attributes in one line) and `add_props` (numbered properties such as `train`/`valid`)."""

import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["GetAttr", "delegate_attr", "custom_dir", "store_attr", "add_props"]


def custom_dir(c: object, add: Iterable[str]) -> list[str]:
    """`dir(c)` (the object's own attributes) plus the names in `add`, sorted and without duplicates."""
    return sorted(set(object.__dir__(c)) | set(add))


class GetAttr:
    """Base class forwarding unknown non-dunder attribute reads to the component named by `_default` (limited to
    the names in `_xtra` when that is set); `dir()` lists the forwarded names, for tab completion.

    >>> class Wrapper(GetAttr):
    ...     _default = "inner"
    ...     def __init__(self, inner): self.inner = inner
    >>> Wrapper([3, 1, 2]).count(3)
    1
    """

    _default = "default"

    def _component_attr_filter(self, k: str) -> bool:
        if k.startswith("__") or k in ("_xtra", self._default):
            return False
        xtra = getattr(self, "_xtra", None)
        return xtra is None or k in xtra

    def _dir(self) -> list:
        return [k for k in dir(getattr(self, self._default)) if self._component_attr_filter(k)]

    def __getattr__(self, k: str):
        if self._component_attr_filter(k):
            attr = getattr(self, self._default, None)
            if attr is not None:
                try:
                    return getattr(attr, k)
                except AttributeError:
                    raise AttributeError(
                        f"{type(self).__name__!r} object has no attribute {k!r}, and neither has its "
                        f"{self._default!r} component (a {type(attr).__name__})",
                        name=k,
                        obj=self,
                    ) from None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {k!r}", name=k, obj=self)

    def __dir__(self) -> list:
        try:
            return custom_dir(self, self._dir())
        except AttributeError:  # component not set yet
            return custom_dir(self, [])

    def __setstate__(self, data: dict):
        # without this, unpickling looks up __setstate__ before __dict__ holds the component
        self.__dict__.update(data)


def delegate_attr(self: object, k: str, to: str) -> Any:
    """For use inside a custom `__getattr__`: `getattr(self.<to>, k)` for non-dunder `k`, else AttributeError."""
    if k.startswith("_") or k == to:
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {k!r}", name=k, obj=self)
    try:
        return getattr(getattr(self, to), k)
    except AttributeError:
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {k!r} (also looked in .{to})", name=k, obj=self
        ) from None


def _split_names(names) -> list:
    if names is None:
        return []
    if isinstance(names, str):
        return names.replace(",", " ").split()
    return list(names)


def store_attr(names: str | Iterable[str] | None = None, self: Any = None, but: str | Iterable[str] = "",
               cast: bool = False, store_args: bool | None = None, **attrs: Any) -> None:
    """Store the calling function's arguments as attributes of `self` (the caller's first argument unless given):
    all of them by default (or the class's `__slots__`), or just `names` ("a,b" or a list), minus `but`. Extra
    `attrs` are stored too. With `cast`, values are converted with the class's `__init__` annotations. The stored
    values are also recorded in `self.__stored_args__` (unless the class uses `__slots__`).

    >>> class Box:
    ...     def __init__(self, a, b, c=3): store_attr(but="c")
    >>> b = Box(1, 2); (b.a, b.b, hasattr(b, "c"))
    (1, 2, False)
    """
    fr = sys._getframe(1)
    code = fr.f_code
    args = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    loc = fr.f_locals
    if self is None:
        if not args:
            raise TypeError("store_attr: the calling function has no arguments; pass self= explicitly")
        self = loc[args[0]]
        args = args[1:]
    else:
        args = tuple(a for a in args if loc.get(a) is not self)
    if store_args is None:
        store_args = not hasattr(self, "__slots__")
    ns = _split_names(names) if names is not None else list(getattr(self, "__slots__", args))
    missing = [n for n in ns if n not in loc]
    if missing:
        raise NameError(f"store_attr: {missing} are not local variables of the caller {code.co_name!r}; known: {args}")
    but = set(_split_names(but))
    vals = {**attrs, **{n: loc[n] for n in ns}}
    anno = {}
    if cast:
        init = getattr(type(self), "__init__", None)
        anno = dict(getattr(init, "__annotations__", {}) or {})
    if store_args and not hasattr(self, "__stored_args__"):
        self.__stored_args__ = {}
    for k, v in vals.items():
        if k in but:
            continue
        if k in anno and isinstance(anno[k], type) and v is not None:
            v = anno[k](v)
        setattr(self, k, v)
        if store_args:
            self.__stored_args__[k] = v


def add_props(f: Callable[[int, Any], Any], g: Callable[[int, Any, Any], Any] | None = None,
              n: int = 2) -> tuple[property, ...]:
    """`n` properties whose getter is `f(i, self)` for i in 0..n-1 (and setter `g(i, self, value)`), the fastai
    argument order: `train, valid = add_props(lambda i, self: self.loaders[i])` in a class body."""
    return tuple(property(functools.partial(f, i), None if g is None else functools.partial(g, i)) for i in range(n))
