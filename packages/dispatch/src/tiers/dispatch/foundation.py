"""`L`: a list with NumPy-like indexing and a functional toolkit (`map`, `filter`, `itemgot`, `attrgot`, `sorted`,
`unique`, `groupby`...), and the indexing helpers it is built on."""

import functools
import itertools
import operator
import reprlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sized
from typing import Any, SupportsIndex, cast

from tiers.dispatch import basics
from tiers.dispatch.attrs import GetAttr
from tiers.dispatch.basics import equals, is_array, is_coll, is_iter, listify, noop

__all__ = ["L", "coll_repr", "is_bool", "is_indexer", "mask2idxs", "cycle", "zip_cycle"]


def coll_repr(c: Collection[Any], max_n: int = 10) -> str:
    """A short repr of a collection: `[1, 2, 3]`, or `(#1000) [0, 1, ..., 9, ...]` when it is longer than 6 items.

    >>> coll_repr(range(20), 3)
    '(#20) [0, 1, 2, ...]'
    """
    n = len(c)
    body = ", ".join(repr(o) for o in itertools.islice(c, max_n))
    if n > max_n:
        body += ", ..."
    return f"(#{n}) [{body}]" if n > 6 else f"[{body}]"


def is_bool(x: object) -> bool:
    """True for Python and NumPy/torch booleans (duck-typed on the dtype name)."""
    return type(x) is bool or "bool" in str(getattr(x, "dtype", ""))


def _to_index_list(idx):
    "An index array (NumPy, torch: anything with `tolist`) as a plain Python value."
    return idx.tolist() if hasattr(idx, "tolist") and not isinstance(idx, (list, tuple)) else idx


def mask2idxs(mask: Iterable[Any]) -> list[int]:
    """Convert a boolean mask (or pass through a list of ints) to a list of integer indices.

    >>> mask2idxs([True, False, True])
    [0, 2]
    """
    mask = _to_index_list(mask)
    if isinstance(mask, (list, tuple)) and mask and isinstance(mask[0], bool):
        return [i for i, m in enumerate(mask) if m]
    return [int(i) for i in mask]


def is_indexer(idx: object) -> bool:
    """True when `idx` selects one element (an int or rank-0 integer array), False for slices, masks and lists."""
    return hasattr(idx, "__index__") and not isinstance(idx, bool) and getattr(idx, "ndim", 0) == 0


def cycle(o: Collection[Any] | None) -> Iterator[Any]:
    """Cycle over `o` forever; an empty or None `o` cycles over `[None]`."""
    return itertools.cycle(o) if o is not None and len(o) > 0 else itertools.cycle([None])


def zip_cycle(x: Iterable[Any], *args: Collection[Any] | None) -> Iterator[tuple[Any, ...]]:
    """`zip(x, *args)` where every argument after `x` is cycled, so the length is `len(x)`."""
    return zip(x, *map(cycle, args))


def _mk_func(f, args, kwargs):
    "A callable from `f`: callables get args bound, strings become `str.format`, mappings a lookup."
    if callable(f):
        return functools.partial(f, *args, **kwargs) if args or kwargs else f
    if isinstance(f, str):
        return f.format
    if hasattr(f, "__getitem__"):
        return f.__getitem__
    raise TypeError(f"L.map: {f!r} is neither callable, a format string, nor a mapping; pass a function")


class _Curryable:
    "Method descriptor: on an instance a normal method; on the class with a non-L first argument, a curried function."

    def __init__(self, f):
        self.f = f
        functools.update_wrapper(self, f)

    def __get__(self, inst, owner):
        if inst is not None:
            return self.f.__get__(inst, owner)
        f = self.f

        def _curried(*args, **kwargs):
            if args and isinstance(args[0], owner):
                return f(*args, **kwargs)
            return lambda o: f(owner(o), *args, **kwargs)

        functools.update_wrapper(_curried, f)
        return _curried


class L(GetAttr):
    """A list with NumPy-like indexing and functional methods; every method returning a collection returns an `L`.

    `L(items)` wraps: None -> empty, a list (shared, not copied), any iterable (unpacked); strings, bytes, dicts
    and arrays/tensors stay one item; `L(a, b, c)` lists its arguments. `L(an_L)` is that same object. Index with
    an int, a slice, a list of ints, a boolean mask, or a NumPy/torch index array. Unknown attributes go to the
    underlying list (`append`, `sort`...).

    >>> t = L(range(10))
    >>> t[[1, 3]], t[t.map(lambda o: o % 4 == 0)], t.filter(lambda o: o > 7)
    ([1, 3], [0, 4, 8], [8, 9])
    >>> t
    (#10) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """

    _default = "items"
    __hash__ = None  # type: ignore[assignment]  # mutable, like list

    def __new__(cls, items=None, *rest, use_list=False, match=None):
        if isinstance(items, cls) and not rest and not use_list and match is None:
            return items
        return super().__new__(cls)

    def __init__(self, items: Any = None, *rest: Any, use_list: bool | None = False,
                 match: int | Sized | None = None):
        if items is self and not rest:
            return  # L(an_L): __new__ handed back the existing object
        if use_list is None and not rest and is_array(items):
            self.items = items  # keep arrays/DataFrames as the storage (indexed with .iloc where present)
        else:
            self.items = listify(items, *rest, use_list=bool(use_list), match=match)

    def _new(self, items: Any, *args: Any, **kwargs: Any) -> "L":
        "A new collection of the same class (subclasses with other constructors override this)."
        return type(self)(items, *args, **kwargs)

    # sequence protocol
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        items = self.items
        if type(items) is list:
            return iter(items)
        if hasattr(items, "iloc"):  # a DataFrame/Series kept with use_list=None: rows, as indexing gives them
            return (items.iloc[i] for i in range(len(items)))
        return iter(items)

    def __contains__(self, b) -> bool:
        return b in self.items

    def __reversed__(self):
        return reversed(self.items)

    def _get1(self, i):
        items = self.items
        return items.iloc[i] if hasattr(items, "iloc") else items[i]

    def __getitem__(self, idx):
        if type(idx) is int:
            items = self.items
            return items[idx] if type(items) is list else self._get1(idx)
        if isinstance(idx, slice):
            items = self.items
            return self._new(items.iloc[idx] if hasattr(items, "iloc") else items[idx], use_list=None)
        idx = _to_index_list(idx)
        if is_indexer(idx):
            return self._get1(int(idx))
        if isinstance(idx, (tuple, list)) or is_iter(idx):
            items = self.items
            if type(idx) is list and len(idx) > 1 and type(items) is list and type(idx[0]) is int:
                try:  # fast path for a list of ints: one C call gathers everything
                    return self._new(list(operator.itemgetter(*idx)(items)))
                except TypeError:
                    pass  # a non-int further on: _idxs validates and names it
            return self._new([self._get1(i) for i in self._idxs(idx)])
        raise TypeError(
            f"L index {idx!r} (a {type(idx).__name__}) is not supported; use an int, a slice, a list of ints, "
            f"a boolean mask, or an index array"
        )

    def _idxs(self, idx) -> list:
        "Integer positions from an index list or a boolean mask."
        idx = idx if type(idx) is list else list(idx)
        if not idx:
            return idx
        if is_bool(idx[0]):
            if len(idx) != len(self):
                raise IndexError(f"L: boolean mask of length {len(idx)} does not match the L's length {len(self)}")
            if not all(map(is_bool, idx)):
                raise TypeError(f"L: boolean mask {idx!r} also holds non-bools; index lists must be all ints or all bools")
            return [i for i, m in enumerate(idx) if m]
        if all(type(i) is int for i in idx):
            return idx
        for i in idx:
            if not hasattr(i, "__index__") or is_bool(i):
                raise TypeError(f"L: index list holds {i!r}; index lists must be all ints or all bools")
        return [operator.index(i) for i in idx]

    def __setitem__(self, idx, o):
        if isinstance(idx, (int, slice)) and not isinstance(idx, bool):
            self.items[idx] = o
            return
        idx = _to_index_list(idx)
        if is_indexer(idx):
            self.items[int(idx)] = o
            return
        idxs = self._idxs(idx)
        if is_iter(o) and not isinstance(o, (str, bytes, dict)):
            vals = list(o)
            if len(vals) != len(idxs):
                raise ValueError(f"L: cannot assign {len(vals)} values to {len(idxs)} positions; match the lengths")
        else:
            vals = [o] * len(idxs)  # broadcast a scalar
        for i, v in zip(idxs, vals):
            self.items[i] = v

    def __delitem__(self, idx):
        if isinstance(idx, (int, slice)) and not isinstance(idx, bool):
            del self.items[idx]
            return
        for i in sorted(set(self._idxs(_to_index_list(idx))), reverse=True):
            del self.items[i]

    # comparison and arithmetic
    def __eq__(self, b) -> bool:
        if isinstance(b, (str, bytes, dict)) or callable(b) or not is_coll(b):
            return False
        if is_array(b):
            return equals(list(self), b.tolist()) if hasattr(b, "tolist") else False
        return len(self) == len(b) and all(equals(x, y) for x, y in zip(self, b))

    def __ne__(self, b) -> bool:
        return not self.__eq__(b)

    def __add__(self, b):
        return self._new(list(self.items) + listify(b))

    def __radd__(self, b):
        return self._new(listify(b) + list(self.items))

    def __mul__(self, n: int):
        return self._new(list(self.items) * n)

    __rmul__ = __mul__

    def __invert__(self):
        return self._new([not o for o in self])

    @reprlib.recursive_repr("...")  # an L that holds itself shows `...` there, as a list does, not a RecursionError
    def __repr__(self) -> str:
        return coll_repr(self)

    def __getstate__(self):
        return self.__dict__

    # list methods (explicit for speed and docs; other list methods are forwarded to `items`)
    def append(self, o: Any) -> None:
        """Append `o` in place."""
        self.items.append(o)

    def extend(self, o: Any) -> None:
        """Append the elements of `o` (listified) in place."""
        self.items.extend(listify(o))

    def copy(self) -> "L":
        """A shallow copy."""
        return self._new(list(self.items))

    # functional methods
    @_Curryable
    def map(self, f: Callable[..., Any] | str | Mapping[Any, Any], *args: Any, **kwargs: Any) -> "L":
        """`f` applied to each item (extra args bound); `f` may be a format string or a mapping.
        `L.map(f)` on the class returns a function of a collection."""
        g = _mk_func(f, args, kwargs)
        return self._new(list(map(g, self)))

    def starmap(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> "L":
        """`f(*item, *args, **kwargs)` for each item."""
        return self._new([f(*o, *args, **kwargs) for o in self])

    def filter(self, f: Callable[..., Any] = noop, negate: bool = False, **kwargs: Any) -> "L":
        """The items for which `f(item, **kwargs)` is truthy (falsy with `negate`)."""
        return self._new([o for o in self if bool(f(o, **kwargs)) != negate])

    def argwhere(self, f: Callable[..., Any], negate: bool = False, **kwargs: Any) -> "L":
        """The indices of the items for which `f` is truthy (falsy with `negate`)."""
        return self._new([i for i, o in enumerate(self) if bool(f(o, **kwargs)) != negate])

    def argfirst(self, f: Callable[[Any], Any], negate: bool = False) -> int | None:
        """The index of the first item for which `f` is truthy, None if there is none."""
        return next((i for i, o in enumerate(self) if bool(f(o)) != negate), None)

    def first(self, f: Callable[..., Any] | None = None, negate: bool = False) -> Any:
        """The first item (the first matching `f` when given), None if there is none."""
        return basics.first(self, f, negate)

    def last(self, f: Callable[..., Any] | None = None, negate: bool = False) -> Any:
        """The last item (the last matching `f` when given), None if there is none."""
        return basics.last(self, f, negate)

    def itemgot(self, *idxs: Any) -> "L":
        """`item[i0][i1]...` for each item: `L([(1, 2), (3, 4)]).itemgot(1)` is `[2, 4]`."""
        x = self
        for idx in idxs:
            x = x._new([o[idx] for o in x])
        return x

    def attrgot(self, k: str, default: Any = None) -> "L":
        """`item.<k>` (or `item[k]` for dicts) for each item, `default` when missing."""
        return self._new([o.get(k, default) if isinstance(o, dict) else getattr(o, k, default) for o in self])

    # ---- methods that need torch: `tiers.tensors` registers them when it is imported (as higher layers register
    # typedispatch methods), so this layer stays standard-library only and there is one `L` class.
    _tensor_ops: dict[str, Callable[..., Any]] = {}

    def _tensor_op(self, name: str) -> Callable[..., Any]:
        f = L._tensor_ops.get(name)
        if f is None:
            raise AttributeError(f"L.{name} needs tensors: import tiers.tensors (pip install tiers-tensors), which "
                                 "provides it.")
        return f

    def tensored(self) -> "L":
        """Each item as a torch tensor (`tiers.tensors.tensor`); needs `tiers.tensors`."""
        return self._tensor_op("tensored")(self)

    def stack(self, dim: int = 0) -> Any:  # a torch.Tensor (this layer does not import torch)
        """The items, as tensors, stacked along a new dimension `dim` (`torch.stack`); needs `tiers.tensors`."""
        return self._tensor_op("stack")(self, dim)

    def cat(self, dim: int = 0) -> Any:  # a torch.Tensor (this layer does not import torch)
        """The items, as tensors, concatenated along dimension `dim` (`torch.cat`); needs `tiers.tensors`."""
        return self._tensor_op("cat")(self, dim)

    def itemgetter(self, *idxs: Any) -> "L":
        """`itemgot` under the name the paper's listings use: `L(d.items()).itemgetter(1)`."""
        return self.itemgot(*idxs)

    def attrgetter(self, k: str, default: Any = None) -> "L":
        """`attrgot` under its older fastcore name."""
        return self.attrgot(k, default)

    def sorted(self, key: Callable[[Any], Any] | str | int | None = None, reverse: bool = False,
               cmp: Callable[[Any, Any], int] | None = None) -> "L":
        """A sorted copy; `key` is a callable, an attribute name (str) or an item index (int); `cmp` an old-style
        comparison function."""
        k: Any
        if isinstance(key, str):
            k = operator.attrgetter(key)
        elif isinstance(key, int) and not isinstance(key, bool):
            k = operator.itemgetter(key)
        else:
            k = key
        if cmp is not None:
            if k is not None:
                raise ValueError("L.sorted: pass key or cmp, not both")
            k = functools.cmp_to_key(cmp)
        return self._new(sorted(self, key=k, reverse=reverse))

    def unique(self, sort: bool = False) -> "L":
        """The distinct items in first-seen order (sorted with `sort`)."""
        return self._new(basics.uniqueify(list(self), sort=sort))

    def val2idx(self) -> dict[Any, int]:
        """`{item: index}`."""
        return basics.val2idx(self)

    def enumerate(self) -> "L":
        """`(index, item)` pairs."""
        return self._new(list(enumerate(self)))

    def renumerate(self) -> "L":
        """`(item, index)` pairs."""
        return self._new([(o, i) for i, o in enumerate(self)])

    def zip(self, cycled: bool = False) -> "L":
        """Transpose: `L([[1, 2], [3, 4]]).zip()` is `[(1, 3), (2, 4)]` (`cycled` repeats the shorter ones)."""
        return self._new(list((zip_cycle if cycled else zip)(*self)))

    def zipwith(self, *rest: Iterable[Any], cycled: bool = False) -> "L":
        """`zip(self, *rest)` as an L of tuples."""
        return self._new([self, *rest]).zip(cycled=cycled)

    def map_zip(self, f: Callable[..., Any], *args: Any, cycled: bool = False, **kwargs: Any) -> "L":
        """`f(*t)` for each tuple `t` of `self.zip()`."""
        return self.zip(cycled=cycled).starmap(f, *args, **kwargs)

    def map_zipwith(self, f: Callable[..., Any], *rest: Iterable[Any], cycled: bool = False, **kwargs: Any) -> "L":
        """`f(a, b...)` over `zip(self, *rest)`."""
        return self.zipwith(*rest, cycled=cycled).starmap(f, **kwargs)

    def map_dict(self, f: Callable[..., Any] = noop, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        """`{item: f(item)}`."""
        return {k: f(k, *args, **kwargs) for k in self}

    def map_first(self, f: Callable[..., Any] = noop, g: Callable[..., Any] = noop, *args: Any, **kwargs: Any) -> Any:
        """The first truthy-under-`g` value of `f(item)`, None if none."""
        return basics.first(self.map(f, *args, **kwargs), g)

    def concat(self) -> "L":
        """Concatenate the items (each listified) one level: `L([[1], [2, 3]]).concat()` is `[1, 2, 3]`."""
        return self._new([o for x in self for o in listify(x)])

    def flatten(self) -> "L":
        """Flatten nested lists/tuples/Ls completely."""
        return self._new(list(basics.flatten(self)))

    def flatmap(self, f: Callable[..., Any] | str | Mapping[Any, Any], *args: Any, **kwargs: Any) -> "L":
        """`map` then `concat`."""
        return self.map(f, *args, **kwargs).concat()

    def reduce(self, f: Callable[[Any, Any], Any], initial: Any = None) -> Any:
        """`functools.reduce(f, self[, initial])`."""
        return functools.reduce(f, self) if initial is None else functools.reduce(f, self, initial)

    def sum(self) -> Any:
        """Sum of the items (0 when empty)."""
        return self.reduce(operator.add, 0)

    def product(self) -> Any:
        """Product of the items (1 when empty)."""
        return self.reduce(operator.mul, 1)

    def partition(self, f: Callable[..., Any] = noop, **kwargs: Any) -> tuple["L", "L"]:
        """`(items where f is truthy, the others)`."""
        a: list[Any] = []
        b: list[Any] = []
        for o in self:
            (a if f(o, **kwargs) else b).append(o)
        return self._new(a), self._new(b)

    def groupby(self, key: Callable[[Any], Any] | int | str,
                val: Callable[[Any], Any] | int | str = noop) -> dict[Any, "L"]:
        """`{key(item): L of val(item)}`; `key`/`val` may be an item index (int) or attribute name (str)."""
        return {k: self._new(v) for k, v in basics.groupby(self, key, val).items()}

    def shuffle(self) -> "L":
        """A shuffled copy (uses the `random` module's global generator, so `random.seed` makes it repeatable)."""
        import random

        it = list(self.items)
        random.shuffle(it)
        return self._new(it)

    def cycle(self) -> Iterator[Any]:
        """An endless iterator over the items."""
        return cycle(self)

    def takewhile(self, f: Callable[[Any], Any]) -> "L":
        """The leading items for which `f` is truthy."""
        return self._new(list(itertools.takewhile(f, self)))

    def dropwhile(self, f: Callable[[Any], Any]) -> "L":
        """The items after the leading run for which `f` is truthy."""
        return self._new(list(itertools.dropwhile(f, self)))

    def accumulate(self, f: Callable[[Any, Any], Any] = operator.add, initial: Any = None) -> "L":
        """Running results of `f` (running sums by default)."""
        return self._new(list(itertools.accumulate(self, f, initial=initial)))

    def pairwise(self) -> "L":
        """Consecutive pairs: `[(a, b), (b, c), ...]`."""
        return self._new(list(zip(self.items, self.items[1:])))

    def batched(self, n: int) -> "L":
        """Tuples of `n` consecutive items (the last may be shorter)."""
        if n < 1:
            raise ValueError(f"L.batched: n={n} must be at least 1")
        it = list(self)
        return self._new([tuple(it[i : i + n]) for i in range(0, len(it), n)])

    def compress(self, selectors: Iterable[Any]) -> "L":
        """The items whose matching selector is truthy."""
        return self._new(list(itertools.compress(self, selectors)))

    def permutations(self, r: int | None = None) -> "L":
        """All length-`r` permutations, as tuples."""
        return self._new(list(itertools.permutations(self, r)))

    def combinations(self, r: int) -> "L":
        """All length-`r` combinations, as tuples."""
        return self._new(list(itertools.combinations(self, r)))

    def setattrs(self, attr: str, val: Any) -> None:
        """Set `item.<attr> = val` on every item."""
        for o in self:
            setattr(o, attr, val)

    # constructors
    @classmethod
    def range(cls, a: SupportsIndex | Sized, b: SupportsIndex | None = None, step: SupportsIndex | None = None) -> "L":
        """`L(range(...))`; `a` may also be a collection, meaning `range(len(a))`."""
        n = len(cast(Sized, a)) if is_coll(a) else cast(SupportsIndex, a)  # is_coll: what `len` accepts
        args = (n,) if b is None else (n, b) if step is None else (n, b, step)
        return cls(range(*args))

    @classmethod
    def split(cls, s: str, sep: str | None = None, maxsplit: int = -1) -> "L":
        """`L(s.split(sep, maxsplit))`."""
        return cls(s.split(sep, maxsplit))

    @classmethod
    def splitlines(cls, s: str, keepends: bool = False) -> "L":
        """`L(s.splitlines(keepends))`."""
        return cls(s.splitlines(keepends))


basics._LISTY = (*basics._LISTY, L)
