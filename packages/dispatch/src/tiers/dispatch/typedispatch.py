"""Multiple dispatch on the type annotations of a function's first two parameters.

`TypeDispatch` holds functions keyed on the annotations of their first two
parameters (`self`/`cls` skipped). A call looks at the types of its first two
positional arguments and runs the most specific function. Rules, in order:

* per argument, a type earlier in the argument's MRO is more specific; an
  abstract base class (ABC) that the argument's class only registers with sits
  just after the last MRO class that is a subclass of it, and between two such
  ABCs the subclass wins;
* an unannotated parameter (or `typing.Any`) matches anything and ranks below
  every annotated type, `object` included;
* the first argument decides first; the second breaks ties;
* two candidates that no rule orders raise `TypeError` (never a silent pick).

Resolutions are cached per `(type(a), type(b))`, so a repeated call costs a dict
lookup plus the call itself.
"""

import sys
import types
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["TypeDispatch", "DispatchReg", "typedispatch", "anno_types", "Missing"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _AnyType:
    "Marker for an unannotated parameter: matches anything, ranks below `object`."

    __slots__ = ()

    def __repr__(self) -> str:
        return "any"

    def __reduce__(self):
        return "_ANY"  # pickled by reference: the marker stays a singleton


_ANY = _AnyType()


class _Empty:
    __slots__ = ()


_EMPTY = _Empty()  # "no annotation" (distinct from an annotation of None)


class Missing:
    """The type of an argument that was not passed: `d.resolve(int)` and one-argument calls resolve as
    `(int, Missing)`. An unannotated second parameter matches it first, then one annotated `object`, then one of
    any other annotation that has a default value, so `f(x: int, y: float = 1.)` serves `f(1)`."""


def _second_has_default(f) -> bool:
    "Whether the second dispatched parameter of `f` (after `self`/`cls`) has a default value (or does not exist)."
    code = getattr(f, "__code__", None)
    if code is not None:
        names = list(code.co_varnames[: code.co_argcount])
        disp = [i for i, n in enumerate(names) if n not in _SKIP][:2]
        if len(disp) < 2:
            return True
        return disp[1] >= code.co_argcount - len(getattr(f, "__defaults__", None) or ())
    import inspect

    try:
        ps = [p for p in inspect.signature(f).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _SKIP]
    except (TypeError, ValueError):
        return False
    return len(ps) < 2 or ps[1].default is not ps[1].empty


def _rank_missing(a, f):
    "Rank of second annotation `a` of `f` for a call that did not pass a second argument; None if `f` needs one."
    if a is _ANY:
        return 0
    if a is object:
        return 0.5
    return 1 if _second_has_default(f) else None

_SKIP = ("self", "cls")


def _name(t) -> str:
    if t is _ANY:
        return "any"
    if t is Missing:
        return "not passed"
    return getattr(t, "__qualname__", None) or repr(t)


def _is_union(a) -> bool:
    if isinstance(a, types.UnionType):
        return True
    typing = sys.modules.get("typing")  # a typing.Union can only exist if typing was imported
    return typing is not None and getattr(a, "__origin__", None) is typing.Union


def anno_types(a: Any, where: str = "annotation") -> tuple[Any, ...]:
    """The tuple of classes an annotation stands for: `int | str` -> `(int, str)`, `Optional[int]` -> `(int, NoneType)`,
    `list[int]` -> `(list,)`, an old-style tuple `(A, B)` -> `(A, B)`, unannotated or `Any` -> the "any" marker.

    >>> anno_types(int | None)
    (<class 'int'>, <class 'NoneType'>)
    """
    if a is _ANY or a is _EMPTY:
        return (_ANY,)
    typing = sys.modules.get("typing")
    if typing is not None and a is typing.Any:  # checked before `type`: typing.Any is a class since 3.11
        return (_ANY,)
    if a is None:
        return (type(None),)
    if isinstance(a, type):
        return (a,)
    if isinstance(a, tuple) or _is_union(a):
        args = a if isinstance(a, tuple) else a.__args__
        out = []
        for x in args:
            for t in anno_types(x, where):
                if t not in out:
                    out.append(t)
        return tuple(out)
    origin = getattr(a, "__origin__", None)
    if isinstance(origin, type):  # list[int], typing.List[int], typing.Callable[..., int]
        return (origin,)
    raise TypeError(
        f"{where}: cannot dispatch on the annotation {a!r}; use a class, a union of classes "
        f"(`A | B`, `Optional[A]`), a parameterised generic such as `list[int]`, or leave it unannotated"
    )


def _eval_anno(a, f):
    if isinstance(a, str):  # `from __future__ import annotations` leaves strings
        try:
            return eval(a, getattr(f, "__globals__", {}))
        except Exception as e:
            raise TypeError(
                f"annotation {a!r} of {_fname(f)} could not be evaluated in its module ({e!r}); "
                f"define the names it uses before decorating the function"
            ) from None
    return a


def _fname(f) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)


def _dispatch_params(f):
    "The annotations of the first two dispatched parameters of `f` (after `self`/`cls`), padded with _EMPTY."
    code = getattr(f, "__code__", None)
    if code is not None:
        names = code.co_varnames[: code.co_argcount]
        annos = getattr(f, "__annotations__", {})
        ret = annos.get("return", _EMPTY)
    else:  # partials, callable objects: pay for inspect only here
        import inspect

        try:
            sig = inspect.signature(f)
        except (TypeError, ValueError) as e:
            raise TypeError(f"TypeDispatch.add: cannot read the signature of {f!r} ({e}); pass a function") from None
        names, annos = [], {}
        for p in sig.parameters.values():
            if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                break
            names.append(p.name)
            if p.annotation is not p.empty:
                annos[p.name] = p.annotation
        ret = _EMPTY if sig.return_annotation is sig.empty else sig.return_annotation
    names = [n for n in names if n not in _SKIP][:2]
    annos_out = [_eval_anno(annos[n], f) if n in annos else _EMPTY for n in names]
    while len(annos_out) < 2:
        annos_out.append(_EMPTY)
    return annos_out, (None if ret is _EMPTY else _eval_anno(ret, f))


def _rank(a, t, mro):
    "Position of annotation class `a` in the (ABC-augmented) MRO of `t`; None when `a` does not match `t`."
    if a is _ANY:
        return float("inf")
    if a is object:  # the root: below every ABC too, although `object` passes issubclass checks like Hashable's
        return len(mro)
    try:
        return mro.index(a)
    except ValueError:
        pass
    if not issubclass(t, a):
        return None
    # a virtual base (ABC registration or __subclasshook__) sits after the last MRO class that is a subclass of it
    last = 0
    for i, c in enumerate(mro[:-1]):
        if issubclass(c, a):
            last = i
    return last + 0.5


def _cmp(a, b, ra, rb):
    "-1 if annotation a is more specific than b for the same argument, 1 if less, None if unordered."
    if a is b:
        return 0
    if ra != rb:
        return -1 if ra < rb else 1
    if a is _ANY or b is _ANY:
        return None
    if issubclass(a, b):
        return -1
    if issubclass(b, a):
        return 1
    return None


class TypeDispatch:
    """A dispatcher over functions keyed on the type annotations of their first two parameters.

    Parameters named `self`/`cls` are skipped, so methods work; an unannotated parameter matches anything and ranks
    below every annotated type. Per argument the most specific annotation wins by the argument's MRO (ABCs it
    only registers with sit after the last MRO class that subclasses them); the first argument decides first, the
    second breaks ties; a tie no rule settles raises `TypeError`. `bases` are other dispatchers consulted live at
    resolution time (their functions compete on specificity; on an identical signature this dispatcher's own
    function wins). Resolutions are cached per type pair and the cache is cleared by `add` here or in any base
    (an ABC `register` call made later is seen after the next `add`).

    >>> def f(x: int, y): return "int"
    >>> def g(x: object, y: str): return "obj,str"
    >>> d = TypeDispatch([f, g])
    >>> d(1, 2), d(1.0, "s")
    ('int', 'obj,str')
    """

    def __init__(self, funcs: Callable[..., Any] | Iterable[Callable[..., Any]] = (),
                 bases: Iterable["TypeDispatch"] = ()):
        if callable(funcs):
            funcs = (funcs,)
        self.funcs: dict = {}  # (ann1, ann2) -> function, in registration order
        self._rets: dict = {}  # function id -> return annotation
        self._cache: dict = {}  # (t1, t2) -> function | None
        self._cache1: dict = {}  # t1 -> function | None, for one-argument calls (t2 = Missing)
        self._children: weakref.WeakSet[TypeDispatch] = weakref.WeakSet()
        self.bases = tuple(bases)
        for b in self.bases:
            if not isinstance(b, TypeDispatch):
                raise TypeError(f"TypeDispatch(bases=...): {b!r} is not a TypeDispatch; pass TypeDispatch objects")
            b._children.add(self)
        for f in funcs:
            self.add(f)

    # registration
    def add(self, f: _F) -> _F:
        """Register `f` under the annotations of its first two parameters (a union registers each member); a later
        function with identical annotations replaces the earlier one. Returns `f`."""
        if not callable(f):
            raise TypeError(f"TypeDispatch.add: {f!r} is not callable; register a function")
        (a1, a2), ret = _dispatch_params(f)
        where = f"annotation of {_fname(f)}"
        for t1 in anno_types(a1, where):
            for t2 in anno_types(a2, where):
                self.funcs[(t1, t2)] = f
        self._rets[id(f)] = (f, ret)  # keeps f alive so its id cannot be reused
        live = {id(g) for g in self.funcs.values()}
        for k in [k for k in self._rets if k not in live]:  # functions fully replaced by later ones
            del self._rets[k]
        self._clear()
        return f

    register = add  # the functools.singledispatch spelling

    def _clear(self):
        self._cache.clear()
        self._cache1.clear()
        for c in list(self._children):
            c._clear()

    def _all_funcs(self) -> dict:
        out = {}
        for b in reversed(self.bases):
            out.update(b._all_funcs())
        out.update(self.funcs)
        return out

    def _ret_of(self, f):
        hit = self._rets.get(id(f))
        if hit is not None and hit[0] is f:
            return hit[1]
        for b in self.bases:
            r = b._ret_of(f)
            if r is not None:
                return r
        return None

    # resolution
    def _resolve(self, t1, t2):
        m1, m2 = t1.__mro__, t2.__mro__
        cands = []
        for (a1, a2), f in self._all_funcs().items():
            r1 = _rank(a1, t1, m1)
            if r1 is None:
                continue
            r2 = _rank_missing(a2, f) if t2 is Missing else _rank(a2, t2, m2)
            if r2 is None:
                continue
            cands.append((a1, a2, r1, r2, f))
        if not cands:
            return None
        if len(cands) == 1:
            return cands[0][4]
        for c in cands:
            if all(c is d or self._beats(c, d) for d in cands):
                return c[4]
        # nobody beats everybody: report the candidates no other candidate beats
        best = [c for c in cands if not any(d is not c and self._beats(d, c) for d in cands)]
        sigs = ", ".join(f"({_name(c[0])}, {_name(c[1])}) -> {_fname(c[4])}" for c in best)
        raise TypeError(
            f"TypeDispatch: ambiguous call for argument types ({_name(t1)}, {_name(t2)}): {sigs} are equally specific; "
            f"register a function for exactly ({_name(t1)}, {_name(t2)}) to settle it"
        )

    @staticmethod
    def _beats(c, d) -> bool:
        r = _cmp(c[0], d[0], c[2], d[2])
        if r == 0:
            r = _cmp(c[1], d[1], c[3], d[3])
        return r == -1

    def resolve(self, t1: type, t2: type = Missing) -> Callable[..., Any] | None:
        """The function the types `(t1, t2)` dispatch to, or None when nothing matches (TypeError when ambiguous).
        Leaving out `t2` asks for a one-argument call (see `Missing`)."""
        try:
            return self._cache[(t1, t2)]
        except KeyError:
            pass
        except TypeError:
            raise TypeError(f"TypeDispatch.resolve: expected classes, got {t1!r}, {t2!r}") from None
        if not isinstance(t1, type) or not isinstance(t2, type):
            raise TypeError(f"TypeDispatch.resolve: expected classes, got {t1!r}, {t2!r}; pass type(x), not x")
        f = self._cache[(t1, t2)] = self._resolve(t1, t2)
        return f

    def __getitem__(self, k):
        if isinstance(k, tuple):
            if not 1 <= len(k) <= 2:
                raise TypeError(f"TypeDispatch[...]: expected one or two types, got {k!r}")
            return self.resolve(*k)
        return self.resolve(k)

    def _miss(self, args):
        if not args:
            raise TypeError(f"{self._label()}: called without positional arguments; it dispatches on the first two")
        t1 = type(args[0])
        if len(args) == 1:
            f = self._cache1[t1] = self.resolve(t1, Missing)
        else:
            f = self.resolve(t1, type(args[1]))
        return f

    def _no_match(self, args):
        ts = ", ".join(_name(type(a)) for a in args[:2]) if len(args) > 1 else f"{_name(type(args[0]))}, not passed"
        known = ", ".join(f"({_name(a)}, {_name(b)})" for a, b in self._all_funcs()) or "none"
        return TypeError(
            f"{self._label()}: no function registered for argument types ({ts}); registered: {known}. "
            f"Add one with .add() or @typedispatch"
        )

    def _label(self) -> str:
        f = self.first()
        return f"TypeDispatch {f.__name__!r}" if f is not None and hasattr(f, "__name__") else "TypeDispatch"

    def __call__(self, *args, **kwargs):
        try:
            f = self._cache1[type(args[0])] if len(args) == 1 else self._cache[type(args[0]), type(args[1])]
        except (KeyError, IndexError):
            f = self._miss(args)
        if f is None:
            raise self._no_match(args)
        return f(*args, **kwargs)

    def returns(self, x: Any) -> type | None:
        """The class named by the return annotation of the function `type(x)` dispatches to: `-> list[int]` gives
        `list`; None when unannotated, annotated with a union or a non-class, or when nothing matches."""
        f = self.resolve(type(x))
        if f is None:
            return None
        r = self._ret_of(f)
        if r is Any or r is object:  # "no particular type", not a class to cast to (typing.Any is a class in 3.11)
            return None
        if r is None or isinstance(r, type):
            return r
        origin = getattr(r, "__origin__", None)
        return origin if isinstance(origin, type) else None

    def __get__(self, inst, owner=None):
        if inst is None:
            return self
        return _BoundDispatch(self, inst)

    def __len__(self) -> int:
        return len(self.funcs)

    def __getstate__(self) -> dict:
        # caches and the weak set of children are rebuilt; children re-link themselves when unpickled
        return {"funcs": self.funcs, "rets": list(self._rets.values()), "bases": self.bases}

    def __setstate__(self, state: dict):
        self.__init__(bases=state["bases"])  # type: ignore[misc]  # unpickling: rebuild the caches in place
        self.funcs.update(state["funcs"])
        self._rets = {id(f): (f, r) for f, r in state["rets"]}

    def __contains__(self, f) -> bool:
        return f in self.funcs.values()

    def first(self) -> Callable[..., Any] | None:
        """The first function registered on this dispatcher (or its first base), None when empty."""
        for f in self.funcs.values():
            return f
        for b in self.bases:
            f = b.first()
            if f is not None:
                return f
        return None

    def __repr__(self) -> str:
        lines = [f"({_name(a)}, {_name(b)}) -> {_fname(f)}" for (a, b), f in self.funcs.items()]
        if self.bases:
            lines.append(f"+ {len(self.bases)} base dispatcher(s)")
        return "TypeDispatch(" + ("\n  " + "\n  ".join(lines) + "\n" if lines else "") + ")"


class _BoundDispatch:
    "A dispatcher bound to an instance: dispatches on the arguments after `self` and passes the instance first."

    __slots__ = ("d", "inst")

    def __init__(self, d: TypeDispatch, inst):
        self.d, self.inst = d, inst

    def __call__(self, *args, **kwargs):
        d = self.d
        try:
            f = d._cache1[type(args[0])] if len(args) == 1 else d._cache[type(args[0]), type(args[1])]
        except (KeyError, IndexError):
            f = d._miss(args)
        if f is None:
            raise d._no_match(args)
        return f(self.inst, *args, **kwargs)

    def returns(self, x):
        return self.d.returns(x)

    def resolve(self, t1, t2=Missing):
        f = self.d.resolve(t1, t2)
        return None if f is None else types.MethodType(f, self.inst)

    def __getitem__(self, k):
        f = self.d[k]
        return None if f is None else types.MethodType(f, self.inst)

    def __len__(self) -> int:
        return len(self.d)

    def __repr__(self) -> str:
        return f"<bound {self.d!r} of {self.inst!r}>"


class DispatchReg:
    """A registry of `TypeDispatch` objects by function name: decorating two functions with the same `__qualname__`
    (in any module; for module-level functions that is the plain name) adds both to one dispatcher, so a higher
    layer can specialise a lower layer's function. Methods (`A.f`) and functions local to another function get
    their own dispatcher because their qualified names differ.

    >>> @typedispatch
    ... def describe(x: int): return "int"
    >>> @typedispatch
    ... def describe(x: str): return "str"
    >>> describe(1), describe("a")
    ('int', 'str')
    """

    def __init__(self) -> None:
        self.d: dict[str, TypeDispatch] = {}

    def __call__(self, f):
        nm = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
        if nm is None:
            raise TypeError(f"typedispatch: {f!r} has no __name__; decorate a named function")
        d = self.d.get(nm)
        if d is None:
            d = self.d[nm] = TypeDispatch()
        d.add(f)
        return d

    def __getitem__(self, name: str) -> TypeDispatch:
        try:
            return self.d[name]
        except KeyError:
            raise KeyError(f"typedispatch: no function named {name!r} registered; known: {sorted(self.d)}") from None

    def __contains__(self, name) -> bool:
        return name in self.d


typedispatch = DispatchReg()
