"""The dispatchers behind a Transform's `encodes`/`decodes`/`setups`, and the metaclass that builds them.

Each Transform class gets one `_TfmMethod` per method name, wrapping a `tiers.dispatch.TypeDispatch` linked live to
its parent classes' ones, plus a per-input-type cache of the resolved function with how to call it and what to do
with its result. An instance that gains functions of its own (`Transform(enc=f)`, `@tfm.encodes`) gets its own
`_TfmMethod` whose parent is its class's. Private: `tiers.pipeline.transform` is the public face.
"""

import weakref
from types import FunctionType
from typing import Any

from tiers.dispatch import TypeDispatch, anno_types

__all__ = []  # private machinery of Transform

_METHODS = ("encodes", "decodes", "setups")
_HOT = {"encodes": "_encm", "decodes": "_decm", "setups": "_setm"}  # attribute the hot path reads: one lookup
_MISSING = object()
_RETAIN, _KEEP, _CAST = 0, 1, 2  # what to do with a method's result: keep the input's subclass, nothing, cast
_PASS = (None, False, _KEEP, None, False)  # cache entry of a type no method matches
_NO_RETAIN = (bool,)  # `True + 1` is an int on purpose; casting it back to bool would lose it
# How many times something that decides how a Pipeline runs its Transforms has changed: a dispatcher gained a
# function, a Transform's `split_idx` (or dispatcher, or class) was set, a Transform class attribute was set. A
# Pipeline keeps what it worked out (`pipeline._Route`) with the count it saw and works it out again when the count
# moved: one comparison per call, and nothing to notify (no listener, no registry of Pipelines). These are set-up
# events (class bodies, constructors, `@MyTfm def encodes`), not per-item ones.
_CHANGES = [0]


def _changed() -> None:
    "Count a change that may alter how a Pipeline runs its Transforms (see `_CHANGES`)."
    _CHANGES[0] += 1


def _callable_name(f) -> str:
    for o in (f, getattr(f, "func", None), type(f)):  # a function, a functools.partial, a callable object
        n = getattr(o, "__name__", None)
        if n:
            return n
    return repr(f)


class _Callee:
    """A callable that is not a Python function (builtin, partial, bound method, callable object) presented to
    `TypeDispatch` as a one-argument function carrying the callee's first annotation; picklable when it is."""

    def __init__(self, f):
        import inspect  # only for wrapped callables; keeps the layer's import cheap

        self.f, self.__name__ = f, _callable_name(f)
        self.__qualname__ = self.__name__
        anno, ret = inspect.Parameter.empty, inspect.Signature.empty
        try:
            # eval_str: a callee from a `from __future__ import annotations` module (`TensorPoint.create`) carries
            # strings that only its own module can resolve; this wrapper has no globals to resolve them later
            sig = inspect.signature(f, eval_str=True)
        except NameError:  # an annotation naming something its module does not define: keep the strings
            sig = inspect.signature(f)
        except (TypeError, ValueError):  # builtins without a signature: dispatch on anything
            sig = None
        if sig is not None:
            ps = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if ps:
                anno = ps[0].annotation
            ret = sig.return_annotation
        if anno is inspect.Parameter.empty and isinstance(getattr(f, "__objclass__", None), type):
            anno = f.__objclass__  # `str.upper` applies to str only
        self.__signature__ = inspect.Signature(
            [inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=anno)], return_annotation=ret
        )
        self.__annotations__ = {} if ret is inspect.Signature.empty else {"return": ret}

    def __call__(self, x, **kwargs):
        return self.f(x, **kwargs)

    def __reduce__(self):
        return (_Callee, (self.f,))

    def __repr__(self) -> str:
        return self.__name__


def _dispatchable(f, instance_level: bool):
    "(function for TypeDispatch, whether it takes the Transform as first argument)."
    if isinstance(f, staticmethod):
        return f.__func__, False
    if isinstance(f, FunctionType):
        if not instance_level:  # defined in a class body or added to the class: a method
            return f, True
        # a function written as `def _(self, x)` for an instance gets the Transform; `SomeClass.method` (its `self`
        # is the data) does not
        code, qn = f.__code__, f.__qualname__
        is_method = "." in qn and not qn.rsplit(".", 1)[0].endswith("<locals>")
        return f, code.co_argcount > 1 and code.co_varnames[0] == "self" and not is_method
    if isinstance(f, _Callee):
        return f, False
    if not callable(f):
        raise TypeError(f"Transform: {f!r} is not callable; pass a function to encodes/decodes/setups")
    return _Callee(f), False


def _ret_rule(f):
    "How to treat what `f` returns, from its return annotation: (mode, class to cast to)."
    ann = getattr(f, "__annotations__", {}).get("return", _MISSING)
    if isinstance(ann, str):  # `from __future__ import annotations`; TypeDispatch.add already checked it evaluates
        ann = eval(ann, getattr(f, "__globals__", {}))
    if ann is _MISSING or ann is Any or ann is object:
        # `-> Any`/`-> object` say "no particular type" (a typed public signature), not "cast to Any": same as none
        return _RETAIN, None
    if isinstance(ann, type) and ann is not type(None):
        return _CAST, ann
    return _KEEP, None  # `-> None`, or a union/generic: nothing single to cast to


class _TfmMethod:
    """The dispatcher behind one of `encodes`/`decodes`/`setups` of a Transform class or instance.

    Wraps a `TypeDispatch` whose `bases` are the parent classes' dispatchers (linked live: a method added to a
    parent later is seen here), and caches, per input type, the resolved function with how to call it and how to
    treat its result. Accessed on a class it is the dispatcher itself (`MyTfm.encodes.add(f)`, `@MyTfm.encodes`);
    on an instance, a bound view (`tfm.encodes(x)`, `@tfm.encodes` adds to that instance only)."""

    def __init__(self, name: str, owner: type, parents=(), instance_level: bool = False):
        self.name, self.owner, self.instance_level = name, owner, instance_level
        self.parents = tuple(parents)
        self.td = TypeDispatch(bases=[p.td for p in self.parents])
        self.funcs: list = []  # own functions in registration order (for pickling and repr)
        self._takes_self: dict = {}
        self.cache: dict = {}
        self._children: weakref.WeakSet[_TfmMethod] = weakref.WeakSet()
        for p in self.parents:
            p._children.add(self)

    def add(self, f):
        """Register `f` (dispatched on the annotation of its first parameter after `self`); returns `f`."""
        g, takes_self = _dispatchable(f, self.instance_level)
        self.td.add(g)
        self.funcs.append(g)
        self._takes_self[g] = takes_self
        self._clear()
        _changed()
        return f

    def _clear(self):
        self.cache.clear()
        for c in list(self._children):
            c._clear()

    def _takes_self_of(self, f) -> bool:
        if f in self._takes_self:
            return self._takes_self[f]
        return any(p._takes_self_of(f) for p in self.parents)

    def _entry_for(self, f, as_list=False):
        return (f, self._takes_self_of(f), *_ret_rule(f), as_list)

    def fill(self, t: type):
        "Resolve input type `t` and cache (function, takes_self, result mode, cast class, pass-as-list)."
        f = self.td.resolve(t)
        if f is not None:
            e = self._entry_for(f)
        elif getattr(self.owner, "_as_item", False) and issubclass(t, tuple):
            # an ItemTransform written for fastai, where the whole tuple arrives as a list
            lf = self.td.resolve(list)
            e = _PASS if lf is None else self._entry_for(lf, as_list=True)
        else:
            e = _PASS
        self.cache[t] = e
        return e

    def resolve(self, t: type):
        """The function input type `t` dispatches to, or None."""
        return self.td.resolve(t)

    def n_funcs(self) -> int:
        "Number of distinct functions visible here (own and inherited, overridden ones excluded)."
        seen, out = set(), 0
        for m in self._chain():
            for f in m.funcs:
                if f not in seen and self._visible(f):
                    seen.add(f)
                    out += 1
        return out

    def _chain(self):
        yield self
        for p in self.parents:
            yield from p._chain()

    def _visible(self, f) -> bool:
        try:  # a function replaced by one with identical annotations further down is no longer reachable
            return any(g is f for g in self.td._all_funcs().values())
        except AttributeError:  # the dispatcher's internals moved: count every function
            return True

    def __call__(self, f):
        if callable(f) or isinstance(f, staticmethod):
            return self.add(f)
        raise TypeError(
            f"{self.owner.__name__}.{self.name} was called with {f!r} on the class; call the Transform instance "
            f"(or `instance.{self.name}(x)`) to apply it, or pass a function to register it"
        )

    def __len__(self) -> int:
        return self.n_funcs()

    def __bool__(self) -> bool:
        return True

    def __reduce__(self):
        if not self.instance_level:
            return (getattr, (self.owner, _HOT[self.name]))
        return (_rebuild_method, (self.owner, self.name, list(self.funcs)))

    def __repr__(self) -> str:
        return f"{self.owner.__name__}.{self.name}: {self.td!r}"


def _rebuild_method(owner, name, funcs):
    m = _TfmMethod(name, owner, (getattr(owner, _HOT[name]),), instance_level=True)
    for f in funcs:
        m.add(f)
    return m


class _MethodSlot:
    "Class attribute `encodes`/`decodes`/`setups`: the class's dispatcher on a class, a bound view on an instance."

    __slots__ = ("name", "hot")

    def __init__(self, name: str):
        self.name, self.hot = name, _HOT[name]

    def __get__(self, inst, owner=None):
        if inst is None:
            return getattr(owner, self.hot)
        return _BoundTfmMethod(getattr(inst, self.hot), inst)

    def __set__(self, inst, value):
        inst._own_method(self.name, fresh=True).add(value)


class _BoundTfmMethod:
    "`tfm.encodes`: applies that method alone to one object, or (given a function) registers it on `tfm`."

    __slots__ = ("m", "inst")

    def __init__(self, m, inst):
        self.m, self.inst = m, inst

    def __call__(self, x, **kwargs):
        if not kwargs and isinstance(x, (FunctionType, staticmethod)):
            return self.add(x)
        inst = self.inst
        if self.m.name == "setups":
            return inst._run_setups(self.m, x)
        # this method alone on `x`: a tuple is one object here, except for an ItemTransform, which always sees it whole
        return inst._apply(self.m, x, kwargs) if inst._as_item else inst._one(self.m, x, kwargs)

    def add(self, f):
        """Register `f` on this instance only (the class and its other instances are unchanged); returns `f`."""
        return self.inst._own_method(self.m.name).add(f)

    def resolve(self, t: type):
        return self.m.resolve(t)

    def __len__(self) -> int:
        return self.m.n_funcs()

    def __repr__(self) -> str:
        return f"<bound {self.m!r}>"


class _TfmDict(dict):
    "Class namespace that collects every `encodes`/`decodes`/`setups` defined in a class body instead of keeping the last."

    def __setitem__(self, k, v):
        if k in _METHODS and (callable(v) or isinstance(v, staticmethod)) and not isinstance(v, _TfmMethod):
            cur = self.get(k)
            if isinstance(cur, _Funcs):
                cur.append(v)
                return
            v = _Funcs([v])
        super().__setitem__(k, v)


class _Funcs(list):
    pass


class _TfmMeta(type):
    """Metaclass of `Transform`: builds one dispatcher per method name per class, linked to the parents' ones, and
    lets `@MyTransform` on a function named `encodes`/`decodes`/`setups` add it to `MyTransform`."""

    @classmethod
    def __prepare__(mcs, name, bases, **kwargs):
        return _TfmDict()

    def __new__(mcs, name, bases, ns, **kwargs):
        funcs = {k: ns.pop(k) for k in _METHODS if isinstance(ns.get(k), _Funcs)}
        cls = super().__new__(mcs, name, bases, dict(ns), **kwargs)
        for nm in _METHODS:
            parents = [getattr(b, _HOT[nm]) for b in bases if isinstance(b, _TfmMeta)]
            m = _TfmMethod(nm, cls, parents)
            for f in funcs.get(nm, ()):
                m.add(f)
            type.__setattr__(cls, _HOT[nm], m)
            if not any(isinstance(b, _TfmMeta) for b in bases):  # the root class: one slot serves every subclass
                type.__setattr__(cls, nm, _MethodSlot(nm))
        return cls

    def __call__(cls, *args, **kwargs):
        f = args[0] if len(args) == 1 and not kwargs else None
        if isinstance(f, FunctionType) and f.__name__ in _METHODS and cls.__dict__.get("_extensible", True):
            getattr(cls, _HOT[f.__name__]).add(f)
            return f
        return super().__call__(*args, **kwargs)

    def __setattr__(cls, k, v):
        if k in _METHODS and not isinstance(v, _MethodSlot):
            getattr(cls, _HOT[k]).add(v)  # `MyTfm.encodes = f` extends the class, like `@MyTfm`
            return
        super().__setattr__(k, v)
        _changed()  # `MyTfm.split_idx = 0`, a patched `__call__`...: how Pipelines run it may change

    def __delattr__(cls, k):
        super().__delattr__(k)
        _changed()


def _first_anno(f):
    "The classes the first parameter of `f` is annotated with (a tuple), None when unannotated."
    g, _ = _dispatchable(f, True)
    if isinstance(g, _Callee):
        a = g.__signature__.parameters["x"].annotation
        a = None if a is g.__signature__.empty else a
    else:
        code = g.__code__
        names = [n for n in code.co_varnames[: code.co_argcount] if n not in ("self", "cls")]
        a = g.__annotations__.get(names[0]) if names else None
        if isinstance(a, str):
            a = eval(a, g.__globals__)
    if a is None:
        return None
    ts = anno_types(a)
    return None if any(not isinstance(t, type) for t in ts) else ts
