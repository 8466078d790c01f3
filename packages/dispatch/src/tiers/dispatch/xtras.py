"""Extra helpers fastai code relies on: `fastuple` (element-wise tuple arithmetic, for sizes), `Inf` (endless
iterators), `Stateful`, `ContextManagers`, `ReindexCollection`, pickling and path helpers."""

import contextlib
import functools
import itertools
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from tiers.dispatch.attrs import GetAttr
from tiers.dispatch.basics import compose, noop
from tiers.dispatch.foundation import L

__all__ = [
    "fastuple", "Inf", "Stateful", "ContextManagers", "working_directory", "ReindexCollection", "round_multiple",
    "save_pickle", "load_pickle", "join_path_file", "nested_attr", "getcallable", "maps", "instantiate",
]

_T = TypeVar("_T")
_Tup = TypeVar("_Tup", bound=tuple[Any, ...])


def _cycled(args):
    "Each argument as an endless iterator: scalars repeat, collections cycle."
    return [itertools.cycle(a) if isinstance(a, (tuple, list, L)) else itertools.repeat(a) for a in args]


class fastuple(tuple):
    """A tuple with element-wise arithmetic, scalars broadcast: `fastuple(224, 160) // 2` is `(112, 80)`. As in
    fastcore, `+` and `*` keep their tuple meaning (concatenate, repeat); use `add` and `mul` for element-wise
    sums and products. Also `max`, `min` and element-wise comparisons `eq`, `ne`, `lt`, `le`, `gt`, `ge`.
    `fastuple(x)` unpacks an iterable; `fastuple(a, b)` packs.

    >>> fastuple(224, 160) // 2, fastuple(1, 2).add(10), fastuple(1, 2) + (3,)
    ((112, 80), (11, 12), (1, 2, 3))
    """

    def __new__(cls, x=None, *rest):
        if x is None and not rest:
            x = ()
        elif rest:
            x = (x, *rest)
        elif not isinstance(x, tuple):
            try:
                x = tuple(iter(x))
            except TypeError:
                x = (x,)
        return super().__new__(cls, x)

    def _op(self, op: Callable[[Any, Any], Any], *args: Any) -> "fastuple":
        return type(self)(tuple(map(lambda *xs: functools.reduce(op, xs), self, *_cycled(args))))

    def add(self, *args: Any) -> "fastuple":
        """Element-wise sum with each argument (scalar or sequence)."""
        return self._op(operator.add, *args)

    def mul(self, *args: Any) -> "fastuple":
        """Element-wise product with each argument (scalar or sequence)."""
        return self._op(operator.mul, *args)

    def max(self, *args: Any) -> "fastuple":
        """Element-wise maximum with each argument."""
        return self._op(max, *args)

    def min(self, *args: Any) -> "fastuple":
        """Element-wise minimum with each argument."""
        return self._op(min, *args)

    def eq(self, other: Any) -> "fastuple":
        """Element-wise `==`."""
        return self._op(operator.eq, other)

    def ne(self, other: Any) -> "fastuple":
        """Element-wise `!=`."""
        return self._op(operator.ne, other)

    def lt(self, other: Any) -> "fastuple":
        """Element-wise `<`."""
        return self._op(operator.lt, other)

    def le(self, other: Any) -> "fastuple":
        """Element-wise `<=`."""
        return self._op(operator.le, other)

    def gt(self, other: Any) -> "fastuple":
        """Element-wise `>`."""
        return self._op(operator.gt, other)

    def ge(self, other: Any) -> "fastuple":
        """Element-wise `>=`."""
        return self._op(operator.ge, other)

    def __neg__(self):
        return type(self)(-o for o in self)

    def __abs__(self):
        return type(self)(abs(o) for o in self)


def _binop(op):
    def f(self, other):
        return self._op(op, other)

    def rf(self, other):
        return type(self)(tuple(map(op, _cycled([other])[0], self)))

    return f, rf


for _n in ("sub", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift", "rshift"):
    _f, _rf = _binop(getattr(operator, f"{_n}_" if _n in ("and", "or") else _n))
    setattr(fastuple, f"__{_n}__", _f)
    setattr(fastuple, f"__r{_n}__", _rf)
del _n, _f, _rf


class _InfMeta(type):
    @property
    def count(cls):
        return itertools.count()

    @property
    def zeros(cls):
        return itertools.repeat(0)

    @property
    def ones(cls):
        return itertools.repeat(1)

    @property
    def nones(cls):
        return itertools.repeat(None)


class Inf(metaclass=_InfMeta):
    """Endless iterators as class attributes: `Inf.count` (0, 1, 2...), `Inf.zeros`, `Inf.ones`, `Inf.nones`;
    each access gives a fresh iterator."""


class Stateful:
    """Base class whose attributes named in `_stateattrs` are left out of pickling and rebuilt by `_init_state`
    (called at construction and after unpickling)."""

    _stateattrs: tuple = ()

    def __init__(self, *args: Any, **kwargs: Any):
        self._init_state()
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._stateattrs}

    def __setstate__(self, state: dict):
        self.__dict__.update(state)
        self._init_state()

    def _init_state(self):
        pass


class ContextManagers(GetAttr):
    """Enter several context managers as one (`with ContextManagers([a, b]):`), exiting them in reverse order."""

    _default = "default"

    def __init__(self, mgrs: Iterable[contextlib.AbstractContextManager[Any]]):
        self.default = L(mgrs)
        self.stack = contextlib.ExitStack()

    def __enter__(self):
        for m in self.default:
            self.stack.enter_context(m)
        return self

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)


@contextlib.contextmanager
def working_directory(path: str | os.PathLike[str]) -> Iterator[None]:
    """Context manager running its body with `path` as the current directory, restoring the previous one."""
    prev = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(prev)


class ReindexCollection(GetAttr):
    """A view of `coll` through the index list `idxs` (identity by default), with `tfm` applied to each item read
    and an optional per-index cache (`cache=n` keeps n items). `reindex(idxs)` and `shuffle()` change the order."""

    _default = "coll"

    def __init__(self, coll: Sequence[Any], idxs: Iterable[int] | None = None, cache: int | None = None,
                 tfm: Callable[[Any], Any] = noop):
        self.coll, self.idxs, self.tfm = coll, (list(range(len(coll))) if idxs is None else list(idxs)), tfm
        self.cache = cache
        self._cache: dict = {}

    def _get(self, i):
        return self.tfm(self.coll[i])

    def __getitem__(self, i):
        j = self.idxs[i]
        if self.cache is None:
            return self._get(j)
        if j not in self._cache:
            if len(self._cache) >= self.cache:
                self._cache.pop(next(iter(self._cache)))
            self._cache[j] = self._get(j)
        return self._cache[j]

    def __len__(self) -> int:
        return len(self.idxs)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def reindex(self, idxs: Iterable[int]) -> None:
        """Read the collection in the order `idxs` from now on."""
        self.idxs = list(idxs)

    def shuffle(self) -> None:
        """Shuffle the index order in place (the `random` module's global generator)."""
        import random

        random.shuffle(self.idxs)

    def cache_clear(self) -> None:
        """Empty the item cache."""
        self._cache.clear()


@overload
def round_multiple(x: int, mult: int, round_down: bool = False) -> int: ...
@overload
def round_multiple(x: float, mult: int, round_down: bool = False) -> float: ...
@overload
def round_multiple(x: _Tup, mult: int, round_down: bool = False) -> _Tup: ...
def round_multiple(x: float | tuple[Any, ...], mult: int,
                   round_down: bool = False) -> float | tuple[Any, ...]:
    """`x` rounded to the nearest multiple of `mult` (down with `round_down`); works element-wise on tuples.

    >>> round_multiple(10, 8), round_multiple(10, 8, round_down=True), round_multiple((10, 17), 8)
    (8, 8, (8, 16))
    """
    def _f(v):
        return (v // mult if round_down else round(v / mult)) * mult

    return type(x)(_f(o) for o in x) if isinstance(x, tuple) else _f(x)


def save_pickle(fn: str | os.PathLike[str], o: Any) -> None:
    """Pickle `o` to the file `fn` (highest protocol)."""
    import pickle

    with open(fn, "wb") as f:
        pickle.dump(o, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_pickle(fn: str | os.PathLike[str]) -> Any:
    """Load a pickled object from the file `fn` (only load files you trust: unpickling can run code)."""
    import pickle

    with open(fn, "rb") as f:
        return pickle.load(f)


@overload
def join_path_file(file: str | Path, path: str | os.PathLike[str], ext: str = "") -> Path: ...
@overload
def join_path_file(file: _T, path: str | os.PathLike[str], ext: str = "") -> _T: ...
def join_path_file(file: Any, path: str | os.PathLike[str], ext: str = "") -> Any:
    """`Path(path)/f"{file}{ext}"`, creating `path` if needed; an absolute or path-like `file` is returned as is."""
    if not isinstance(file, (str, Path)):
        return file
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{file}{ext}"


def nested_attr(o: object, attr: str, default: Any = None) -> Any:
    """`o.a.b.c` for `attr="a.b.c"`, `default` when any link is missing."""
    try:
        for a in attr.split("."):
            o = getattr(o, a)
    except AttributeError:
        return default
    return o


def getcallable(o: object, attr: str) -> Callable[..., Any]:
    """`getattr(o, attr)`, or `noop` when `o` has no such attribute (calling an optional hook)."""
    return getattr(o, attr, noop)


def maps(*args: Any, retain: Callable[[Any, Any], Any] = noop) -> Iterator[Any]:
    """Map the composition of the leading functions over the last argument: `maps(f, g, xs)` yields
    `retain(g(f(x)), x)` for each x."""
    f = compose(*args[:-1])

    def _f(b):
        return retain(f(b), b)

    return map(_f, args[-1])


def instantiate(t: type[_T] | _T) -> _T:
    """`t()` when `t` is a class, else `t` (accept a class or an instance)."""
    return t() if isinstance(t, type) else t
