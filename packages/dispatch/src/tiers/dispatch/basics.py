"""Small functional helpers used throughout tiers (and by fastai code being ported): `ifnone`, `listify`, `first`,
`compose`, `camel2snake`... Each is a few lines of plain Python with no dependency."""

import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, cast, overload

__all__ = [
    "NoneType", "noop", "noops", "true", "stop", "lt", "gt", "le", "ge", "eq", "ne", "add", "sub", "mul",
    "truediv", "ifnone", "is_array", "is_iter", "is_coll", "is_listy", "listify",
    "tuplify", "detuplify", "first", "last", "only", "setify", "merge", "range_of", "compose", "partialler",
    "camel2snake", "snake2camel", "class2attr", "risinstance", "using_attr", "even_mults", "chunked",
    "uniqueify", "val2idx", "groupby", "flatten", "equals", "all_equal", "num_cpus", "annotations",
]

NoneType = type(None)
_T = TypeVar("_T")
_U = TypeVar("_U")

# `noop`/`noops` carry no annotations at run time on purpose: `Transform(noop)` (an empty Pipeline, DataBlock
# getters) dispatches on the first parameter's annotation and treats the result by the return annotation, and an
# unannotated function is what they rely on (any input, the input's subclass kept). Type checkers read the
# overloads below instead.
if TYPE_CHECKING:

    @overload
    def noop() -> None: ...
    @overload
    def noop(x: _T, *args: Any, **kwargs: Any) -> _T: ...
    def noop(x: Any = None, *args: Any, **kwargs: Any) -> Any: ...
    @overload
    def noops(self: object) -> None: ...
    @overload
    def noops(self: object, x: _T, *args: Any, **kwargs: Any) -> _T: ...
    def noops(self: object, x: Any = None, *args: Any, **kwargs: Any) -> Any: ...

else:

    def noop(x=None, *args, **kwargs):
        """Return `x` unchanged, ignoring any other argument: the default for optional transforms.

        >>> noop(3, "ignored")
        3
        """
        return x

    def noops(self, x=None, *args, **kwargs):
        """`noop` as a method: returns `x`, ignoring `self` and the rest."""
        return x


def true(*args: Any, **kwargs: Any) -> bool:
    """Always True, whatever the arguments (a default predicate)."""
    return True


def _oper(op: Callable[[Any, Any], Any], name: str, sym: str) -> Callable[..., Any]:
    def f(a, b=_NO_ARG):
        if b is _NO_ARG:  # one argument: a predicate/function of the other operand
            return lambda x: op(x, a)
        return op(a, b)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"`{name}(a, b)` is `a {sym} b`; `{name}(b)` is the function `lambda a: a {sym} b` (for "
                 f"`L.filter({name}(4))`).")
    return f


_NO_ARG = object()
lt, gt, le, ge = (_oper(operator.lt, "lt", "<"), _oper(operator.gt, "gt", ">"), _oper(operator.le, "le", "<="),
                  _oper(operator.ge, "ge", ">="))
eq, ne = _oper(operator.eq, "eq", "=="), _oper(operator.ne, "ne", "!=")
add, sub, mul, truediv = (_oper(operator.add, "add", "+"), _oper(operator.sub, "sub", "-"),
                          _oper(operator.mul, "mul", "*"), _oper(operator.truediv, "truediv", "/"))


def stop(e: BaseException | type[BaseException] = StopIteration) -> NoReturn:
    """Raise `e` (default `StopIteration`): ends a generator-like `create_item` from inside an expression,
    `return r if r < 0.95 else stop()`."""
    raise e


def ifnone(a: _T | None, b: _U) -> _T | _U:
    """`b` if `a` is None else `a`.

    >>> ifnone(None, 3), ifnone(0, 3)
    (3, 0)
    """
    return b if a is None else a


def is_array(x: object) -> bool:
    """True for array-likes that should stay one item (NumPy arrays, tensors, pandas objects): they have
    `__array__` or `iloc`."""
    return hasattr(x, "__array__") or hasattr(x, "iloc")


def is_iter(o: object) -> bool:
    """True when `iter(o)` works, except for rank-0 arrays/tensors (which claim `__iter__` but raise)."""
    if isinstance(o, type) or getattr(o, "ndim", 1) == 0:
        return False
    return hasattr(o, "__iter__") or hasattr(o, "__getitem__")


def is_coll(o: object) -> bool:
    """True for sized collections (`len` works), except rank-0 arrays/tensors."""
    return hasattr(o, "__len__") and getattr(o, "ndim", 1) != 0


def is_listy(x: object) -> bool:
    """True for lists, tuples, slices, generators and `L` (sequences that `listify` would unpack, but not strings
    or arrays).

    >>> is_listy([1]), is_listy((1,)), is_listy("ab")
    (True, True, False)
    """
    return isinstance(x, _LISTY)


# tiers.dispatch.foundation appends `L` when it is defined (it imports this module, so not the other way round)
_LISTY: tuple[type, ...] = (tuple, list, slice, type(_ for _ in ()))


def listify(o: Any = None, *rest: Any, use_list: bool = False, match: int | Sized | None = None) -> list[Any]:
    """`o` as a list: None -> `[]`, a list stays itself, strings/bytes/mappings/arrays become one item, other
    iterables are unpacked, anything else is wrapped. Extra positional arguments are appended. `match` (an int
    or a collection) repeats a length-1 result to that length.

    >>> listify(None), listify(1), listify("ab"), listify((1, 2)), listify(1, match=3)
    ([], [1], ['ab'], [1, 2], [1, 1, 1])
    """
    if rest:
        o = (o, *rest)
    res: list[Any]
    if use_list:
        res = list(o)
    elif o is None:
        res = []
    elif isinstance(o, list):
        res = o
    elif isinstance(o, (str, bytes, dict)) or is_array(o):
        res = [o]
    elif is_iter(o):
        res = list(o)
    else:
        res = [o]
    if match is not None:
        n = len(cast(Sized, match)) if is_coll(match) else cast(int, match)  # is_coll: what `len` accepts
        if len(res) == 1:
            res = res * n
        elif len(res) != n:
            raise ValueError(f"listify: {len(res)} items cannot match length {n}; pass 1 or {n} items")
    return res


def tuplify(o: Any, use_list: bool = False, match: int | Sized | None = None) -> tuple[Any, ...]:
    """`listify` as a tuple.

    >>> tuplify(1), tuplify([1, 2])
    ((1,), (1, 2))
    """
    return tuple(listify(o, use_list=use_list, match=match))


def detuplify(x: Any) -> Any:
    """The single element of a length-1 collection, `None` for an empty one, else `x` itself."""
    return None if len(x) == 0 else x[0] if len(x) == 1 and getattr(x, "ndim", 1) == 1 else x


def first(x: Iterable[_T], f: Callable[..., Any] | None = None, negate: bool = False, **kwargs: Any) -> _T | None:
    """The first element of `x` (optionally the first for which `f` is truthy, or falsy with `negate`), None if
    there is none.

    >>> first([3, 4]), first([1, 2, 3], lambda o: o > 1), first([])
    (3, 2, None)
    """
    it = iter(x)
    if f is not None:
        it = (o for o in it if bool(f(o, **kwargs)) != negate)
    return next(it, None)


def last(x: Iterable[_T], f: Callable[..., Any] | None = None, negate: bool = False, **kwargs: Any) -> _T | None:
    """The last element of `x` (optionally the last matching `f`), None if there is none."""
    res: _T | None = None
    for o in x:
        if f is None or bool(f(o, **kwargs)) != negate:
            res = o
    return res


def only(o: Iterable[_T]) -> _T:
    """The single element of `o`; ValueError when it has zero or several."""
    it = iter(o)
    try:
        res = next(it)
    except StopIteration:
        raise ValueError("only: the iterable is empty; expected exactly one element") from None
    if next(it, _SENTINEL) is not _SENTINEL:
        raise ValueError("only: the iterable has more than one element; expected exactly one")
    return res


_SENTINEL = object()


def setify(o: Any) -> set[Any]:
    """`o` as a set: a set stays itself, None is empty, other values go through `listify`."""
    return o if isinstance(o, set) else set(listify(o))


def merge(*ds: Mapping[Any, Any] | None) -> dict[Any, Any]:
    """Merge dicts left to right (later keys win), skipping Nones.

    >>> merge({"a": 1}, None, {"a": 2, "b": 3})
    {'a': 2, 'b': 3}
    """
    return {k: v for d in ds if d is not None for k, v in d.items()}


def range_of(x: Sized) -> list[int]:
    """`list(range(len(x)))`."""
    return list(range(len(x)))


def compose(*funcs: Callable[..., Any], order: str | None = None) -> Callable[..., Any]:
    """A function applying `funcs` left to right (sorted by their `order` attribute when `order` names it).

    >>> compose(lambda x: x + 1, lambda x: x * 2)(3)
    8
    """
    fs = listify(funcs)
    if not fs:
        return noop
    if len(fs) == 1:
        return fs[0]
    if order is not None:
        fs = sorted(fs, key=lambda o: getattr(o, order, 0))

    def _inner(x, *args, **kwargs):
        for f in fs:
            x = f(x, *args, **kwargs)
        return x

    return _inner


def partialler(f: Callable[..., Any], *args: Any, order: int | None = None, **kwargs: Any) -> functools.partial[Any]:
    """`functools.partial` that keeps `f`'s `order` attribute (or sets the one given), so partials of transforms
    still sort correctly."""
    fnew = functools.partial(f, *args, **kwargs)
    fnew.__doc__ = f.__doc__
    if order is not None:
        setattr(fnew, "order", order)  # noqa: B010  # a partial takes attributes; mypy's `partial` type has no `order`
    elif hasattr(f, "order"):
        setattr(fnew, "order", f.order)  # noqa: B010
    return fnew


@functools.cache
def _camel_res():
    import re  # not at module top: `re` costs several ms of import time where nothing else loaded it

    return re.compile("(.)([A-Z][a-z]+)"), re.compile("([a-z0-9])([A-Z])")


def camel2snake(name: str) -> str:
    """CamelCase -> snake_case.

    >>> camel2snake("TfmdDLHelper")
    'tfmd_dl_helper'
    """
    re1, re2 = _camel_res()
    return re2.sub(r"\1_\2", re1.sub(r"\1_\2", name)).lower()


def snake2camel(s: str) -> str:
    """snake_case -> CamelCase.

    >>> snake2camel("a_b_cc")
    'ABCc'
    """
    return "".join(p.title() for p in s.split("_"))


def class2attr(self: object, cls_name: str) -> str:
    """The snake-case name of `type(self)` with the suffix `cls_name` removed: `class2attr(ProgressCallback(),
    "Callback")` -> `"progress"`. Used to name callbacks as learner attributes."""
    name = type(self).__name__
    if cls_name and name.endswith(cls_name):
        name = name[: -len(cls_name)]
    return camel2snake(name or cls_name.lower())


_Types = type | str | tuple[type | str, ...]


@overload
def risinstance(types: _Types, obj: None = None) -> Callable[[Any], bool]: ...
@overload
def risinstance(types: _Types, obj: Any) -> bool: ...
def risinstance(types: _Types, obj: Any = None) -> bool | Callable[[Any], bool]:
    """`isinstance(obj, types)` with the arguments reversed; called with only `types` it returns a predicate.
    Type names given as strings match any class of that name in the MRO (no import needed).

    >>> risinstance(int)(3), risinstance("int", 3)
    (True, True)
    """
    ts = tuplify(types)
    if obj is None:
        return cast(Callable[[Any], bool], functools.partial(risinstance, ts))  # the `obj` overload, bound
    if any(isinstance(t, str) for t in ts):
        names = {t for t in ts if isinstance(t, str)}
        if any(c.__name__ in names for c in type(obj).__mro__):
            return True
        ts = tuple(t for t in ts if not isinstance(t, str))
    return isinstance(obj, ts)


def using_attr(f: Callable[[Any], _T], attr: str) -> Callable[[Any], _T]:
    """A function applying `f` to `o.<attr>`: `using_attr(len, "name")(path)` is `len(path.name)`."""
    return functools.partial(_using_attr, f, attr)


def _using_attr(f, attr, x):  # unannotated: `Transform(using_attr(...))` dispatches on `x`'s annotation
    return f(getattr(x, attr))


def even_mults(start: float, stop: float, n: int) -> list:
    """`n` values from `start` to `stop` spaced evenly on a log scale (discriminative learning rates).

    >>> even_mults(1e-4, 1e-2, 3)
    [0.0001, 0.001, 0.01]
    """
    if n == 1:
        return [stop]
    mult = stop / start
    step = mult ** (1 / (n - 1))
    return [round(start * step**i, 15) for i in range(n)]


def chunked(it: Iterable[_T], chunk_sz: int | None = None, drop_last: bool = False,
            n_chunks: int | None = None) -> Iterator[list[_T]]:
    """Iterate over `it` in lists of `chunk_sz` items (or in `n_chunks` roughly equal lists).

    >>> list(chunked(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    if (chunk_sz is None) == (n_chunks is None):
        raise ValueError("chunked: pass exactly one of chunk_sz and n_chunks")
    if n_chunks is not None:
        it = list(it)
        chunk_sz = max(-(-len(it) // n_chunks), 1)
    assert chunk_sz is not None  # exactly one of the two was given (checked above)
    if chunk_sz < 1:
        raise ValueError(f"chunked: chunk_sz={chunk_sz} must be at least 1")
    src = iter(it)
    while True:
        res = [o for _, o in zip(range(chunk_sz), src)]
        if not res or (drop_last and len(res) < chunk_sz):
            return
        yield res


@overload
def uniqueify(x: Any, sort: bool = False, bidir: Literal[False] = False, start: Any = None) -> list[Any]: ...
@overload
def uniqueify(x: Any, sort: bool = False, *, bidir: Literal[True], start: Any = None) -> tuple[list[Any], dict[Any, int]]: ...
@overload
def uniqueify(x: Any, sort: bool = False, bidir: bool = False,
              start: Any = None) -> list[Any] | tuple[list[Any], dict[Any, int]]: ...
def uniqueify(x: Any, sort: bool = False, bidir: bool = False,
              start: Any = None) -> list[Any] | tuple[list[Any], dict[Any, int]]:
    """The unique elements of `x` in first-seen order (unhashable elements compared by `==`); sorted with `sort`,
    prefixed by `start`, and with `bidir` also the value->index dict."""
    res = _unique(listify(x) if start is None else listify(start) + listify(x))
    if sort:
        res.sort()
    return (res, val2idx(res)) if bidir else res


def _unique(items) -> list:
    try:
        return list(dict.fromkeys(items))
    except TypeError:  # unhashable items
        out: list = []
        for o in items:
            if not any(equals(o, p) for p in out):
                out.append(o)
        return out


def val2idx(x: Iterable[Any]) -> dict[Any, int]:
    """`{value: index}` for the elements of `x`."""
    return {v: k for k, v in enumerate(x)}


def groupby(x: Iterable[Any], key: Callable[[Any], Any] | int | str,
            val: Callable[[Any], Any] | int | str = noop) -> dict[Any, list[Any]]:
    """Group `x` into `{key(o): [val(o), ...]}`; `key`/`val` may be an int (item index) or str (attribute name).

    >>> groupby(["aa", "b", "cc"], len)
    {2: ['aa', 'cc'], 1: ['b']}
    """
    kf, vf = _getter(key), _getter(val)
    res: dict[Any, list[Any]] = {}
    for o in x:
        res.setdefault(kf(o), []).append(vf(o))
    return res


def _getter(k):
    if isinstance(k, int):
        return operator.itemgetter(k)
    if isinstance(k, str):
        return operator.attrgetter(k)
    return k


def flatten(o: Iterable[Any]) -> Iterator[Any]:
    """Recursively yield the leaves of nested lists, tuples, generators and `L`s (strings stay whole)."""
    for item in o:
        if is_listy(item) and not isinstance(item, slice):
            yield from flatten(item)
        else:
            yield item


def equals(a: Any, b: Any) -> bool:
    """Deep equality that also works for arrays/tensors (compared element-wise with `.all()`) and nested lists."""
    if a is b:
        return True
    if is_array(a) or is_array(b):
        if getattr(a, "shape", None) != getattr(b, "shape", None) and hasattr(a, "shape") and hasattr(b, "shape"):
            return False
        try:
            res = a == b
            return bool(res.all()) if hasattr(res, "all") else bool(res)
        except (TypeError, ValueError, RuntimeError):
            return False
    if is_listy(a) and is_listy(b):
        return all_equal(a, b)
    return bool(a == b)


def all_equal(a: Any, b: Any) -> bool:
    """True when `a` and `b` have the same length and `equals` holds element-wise."""
    if not is_iter(a) or not is_iter(b):
        return False
    a, b = list(a), list(b)
    return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b))


def num_cpus() -> int:
    """The number of CPUs this process may use (its affinity set where the OS has one)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def annotations(o: object) -> dict[str, Any]:
    """The annotations of `o` (a function, or a class's `__init__` when `o` is a class or instance)."""
    if not isinstance(o, type) and not callable(o):
        o = type(o)
    if isinstance(o, type):
        o = o.__init__  # type: ignore[misc]  # the class's own __init__ is the one wanted
    return dict(getattr(o, "__annotations__", {}) or {})
