"""`Pipeline`: Transforms composed in `order`, set up in turn, decoded in reverse, and shown.

A Pipeline holds its Transforms in `fs`, sorted by their `order` (stable). Calling it applies each in turn with
the Pipeline's `split_idx`; `decode` runs their `decodes` last to first; `show` decodes until the object can show
itself. Each Transform is reachable as an attribute named after its class in snake_case (`pipe.categorize`), and
any other unknown attribute is looked up on the Transforms (`pipe.vocab`), which is how upper layers find the
state a Transform learned.
"""

import inspect
from collections import abc
from collections.abc import Callable, Iterable
from types import MethodType
from typing import Any, cast, get_origin

from tiers.dispatch import GetAttr, L, camel2snake, noop
from tiers.pipeline._methods import _CAST, _CHANGES, _RETAIN, _callable_name
from tiers.pipeline.transform import Transform, _reraise

__all__ = ["Pipeline", "mk_transform", "gather_attrs", "gather_attr_names"]


def mk_transform(f: Callable[..., Any]) -> "Transform | Pipeline":
    """`f` as a Transform: a Transform or Pipeline is returned as is, a Transform class is instantiated with no
    arguments, any other callable becomes `Transform(f)` (its annotation decides what it applies to)."""
    if isinstance(f, type) and issubclass(f, Transform):
        f = f()
    if isinstance(f, (Transform, Pipeline)):
        return f
    if not callable(f):
        raise TypeError(f"mk_transform: {f!r} is neither a Transform nor callable; pass a Transform or a function")
    made = _makes_transforms(f)
    if made is not None:
        # `batch_tfms=aug_transforms`: as a Transform it dispatches on its first parameter's annotation (`mult:
        # float`), matches nothing and passes every batch through: training without augmentation, silently.
        name = _callable_name(f)
        raise TypeError(f"{name} was given as a transform, but it is a function that makes transforms (every "
                        f"parameter has a default and it returns {made}): as is it would not transform the data; "
                        f"call it: {name}()")
    return Transform(f)


# What a transform factory's return annotation names: a list of transforms, a Transform or a Pipeline.
_FACTORY_RESULTS = frozenset({"list", "List", "L", "Sequence", "Transform", "Pipeline"})


def _result_name(r: Any) -> str | None:
    "The name of the return annotation `r` when it says 'transforms' (list, `list[...]`, a Transform...), else None."
    if isinstance(r, str):  # `from __future__ import annotations`, or a quoted annotation
        head = r.split("[", 1)[0].strip().rsplit(".", 1)[-1]
        return r if head in _FACTORY_RESULTS or head.endswith("Transform") else None
    origin = get_origin(r)
    if origin is not None and isinstance(origin, type) and issubclass(origin, (list, abc.Sequence)) \
            and not issubclass(origin, (str, bytes, tuple)):
        return repr(r)
    if isinstance(r, type) and issubclass(r, (list, L, Transform, Pipeline)):
        return r.__name__
    return None


def _makes_transforms(f: Callable[..., Any]) -> str | None:
    """What `f` returns when it is a transform factory (callable with no argument, annotated to return a list of
    transforms, a Transform or a Pipeline), else None. A real transform needs its input: it has a required
    parameter."""
    ret = getattr(f, "__annotations__", None)
    if isinstance(ret, dict) and "return" not in ret:  # the common case (functions, lambdas): no signature built
        return None
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):  # builtins without a signature
        return None
    if sig.return_annotation is sig.empty:
        return None
    made = _result_name(sig.return_annotation)
    if made is None:
        return None
    for p in sig.parameters.values():
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            return None
    return made


_NONE = object()


def _find(o, k: str):
    """Attribute `k` of `o` as `getattr` would find it, forwarding included (a `GetAttr` component, a Pipeline's
    Transforms), but `_NONE` on a miss instead of an exception: a gather over several parts pays for no
    exception in the parts that lack `k` (raising and catching one costs ~1 us per level)."""
    c = type(o)
    if getattr(c, "__getattr__", None) is None:  # no forwarding (a Transform): the ordinary lookup raises nothing
        return getattr(o, k, _NONE)
    if hasattr(c, k):  # a class attribute, method or property (no exception raised on a miss here)
        return getattr(o, k, _NONE)  # a property raising AttributeError counts as a miss, as for `getattr`
    d = getattr(o, "__dict__", None)
    if d is not None and k in d:
        return d[k]
    if k[:1] == "_":
        return _NONE
    if isinstance(o, Pipeline):
        return o._find(k)
    if isinstance(o, GetAttr) and c.__getattr__ is GetAttr.__getattr__:
        xtra = getattr(o, "_xtra", None)
        if xtra is None or k in xtra:
            comp = _find(o, o._default)
            return _NONE if comp is _NONE or comp is None else _find(comp, k)
        return _NONE
    return getattr(o, k, _NONE)  # a forwarding of its own: ask it the ordinary way


def gather_attrs(o: object, k: str, nm: str) -> Any:
    """Attribute `k` looked up on each object of `getattr(o, nm)`: the value when one has it (not None), an `L` of
    the values, in order, when several do; AttributeError when none does. The `__getattr__` of objects made of
    several parts (a Pipeline's Transforms, a Datasets' TfmdLists) forwards through it."""
    if k.startswith("_") or k == nm:
        raise AttributeError(f"{type(o).__name__!r} object has no attribute {k!r}", name=k, obj=o)
    objs = getattr(o, nm, None)
    if objs is None:
        raise AttributeError(f"{type(o).__name__!r} object has no attribute {k!r}", name=k, obj=o)
    res = [v for v in (_find(t, k) for t in objs) if v is not _NONE and v is not None]
    if not res:
        raise AttributeError(
            f"{type(o).__name__!r} object has no attribute {k!r}, and none of its {nm} ({len(objs)} objects) has it",
            name=k,
            obj=o,
        )
    return res[0] if len(res) == 1 else L(res)


def gather_attr_names(o: object, nm: str) -> list[str]:
    """The public attribute names of the objects in `getattr(o, nm)` (for `__dir__`)."""
    return sorted({k for t in getattr(o, nm) for k in dir(t) if not k.startswith("_")})


# ---- how a Pipeline runs its Transforms: routes, runs and plans (interpreted; no generated code) -----------------
#
# A call resolves, for each Transform, which function an element's type dispatches to and how to treat its result.
# For a given input shape (a plain tuple's element types, or one object's type) that work is the same on every call,
# so a Pipeline records it once, as a *plan*: the list of (element, function, type it returns) in the order the
# ordinary path calls them (Transform by Transform, element by element), leaving out the elements a Transform does
# not match. A call with a known shape then costs a few type comparisons (the plan used last) or a dict lookup, and,
# per function, a call and a type check. When a result's type differs from the recorded one, the item is finished
# the ordinary way from that point (nothing runs twice). What the plans rely on (the Transforms, their `split_idx`
# and dispatchers) is checked on each call by one comparison with `_methods._CHANGES` plus one with the list of
# Transforms (`fs`, which may change in place).

_TCALL, _TAPPLY, _TONE, _finish = Transform.__call__, Transform._apply, Transform._one, Transform._finish
_NOKW: dict = {}  # the keyword arguments of a Pipeline's calls: none (never written to)
_ELEMENTWISE, _WHOLE, _OWN_CALL = 0, 1, 2
_FIN = object()  # a plan's "result type" for a step whose result `_finish` changes: never a type, so always checked
_UNPLANNED = object()  # plan of an input shape that always runs the ordinary way (a tuple subclass...)
_MAX_PLANS = 64  # input shapes planned per run of Transforms; more run the ordinary way


def _steps(fs, s) -> list:
    """How to run each Transform of `fs` under split `s`, as `(kind, transform, dispatcher)`.

    A Transform using `Transform`'s own call has its `split_idx` checked here, once (left out when it skips `s`);
    `_ELEMENTWISE` when it also maps tuples element by element the standard way, `_WHOLE` when its `_apply` (or
    `_one`, `_finish`) is its own (`ItemTransform`...). `_OWN_CALL`: a `__call__` of its own, called as is on every
    item, even on a split it then skips (random augmentations draw their parameters there)."""
    out = []
    for t in fs:
        c = type(t)
        if c.__call__ is _TCALL:
            ts = t.split_idx
            if ts is None or ts == s:
                plain = c._apply is _TAPPLY and c._one is _TONE and c._finish is _finish
                out.append((_ELEMENTWISE if plain else _WHOLE, t, t._encm))
        else:
            out.append((_OWN_CALL, t, None))
    return out


class _Run:
    """Consecutive element-wise Transforms of a Pipeline (`steps`: `(transform, dispatcher)` pairs) and their plans
    by input shape. The plan used last for a pair, `(type 0, type 1, plan, lone)`, and for one object, `(type, plan,
    lone)`, are kept apart too: `Pipeline.__call__` checks them with type comparisons instead of building a key to
    look up (`lone`: see `_lone_op`). Each is one tuple, replaced whole: a thread never pairs one plan with another
    plan's types."""

    __slots__ = ("steps", "plans", "last2", "last1")

    def __init__(self, steps: list):
        self.steps, self.plans = steps, dict[Any, Any]()
        self.last2: tuple = (None, None, (), None)  # None is never a type: no last plan yet
        self.last1: tuple = (None, (), None)


class _Route:
    """How a Pipeline runs under split `s`: its stages in order (a `_Run`, or a `(kind, transform, dispatcher)` step
    for the others), `run` when one `_Run` is all of it. Valid while `_CHANGES` is `gen` and the Pipeline's `fs`
    holds the Transforms of `snap` (`fsd` is the `__dict__` of that `L`: its list as it is now, changed in place or
    not, without the cost of attribute lookups on objects that forward attributes)."""

    __slots__ = ("snap", "fsd", "gen", "s", "stages", "run")

    def __init__(self, fs, s):
        self.snap, self.fsd, self.gen, self.s = list(fs.items), fs.__dict__, _CHANGES[0], s
        self.stages = []
        for kind, t, m in _steps(self.snap, s):
            if kind != _ELEMENTWISE:
                self.stages.append((kind, t, m))
            elif self.stages and type(self.stages[-1]) is _Run:
                self.stages[-1].steps.append((t, m))
            else:
                self.stages.append(_Run([(t, m)]))
        one = len(self.stages) == 1 and type(self.stages[0]) is _Run
        self.run = self.stages[0] if one else None


class _NoRoute:
    "What a Pipeline's `_route` is before its first call: never valid."

    gen, fsd, snap = -1, {"items": None}, ()


def _run_route(r: _Route, o):
    "Apply the stages of route `r` to `o`."
    for st in r.stages:
        if type(st) is _Run:
            o = _apply_run(st, o)
        else:
            kind, t, m = st
            o = t._apply(m, o, _NOKW) if kind == _WHOLE else t(o, split_idx=r.s)
    return o


def _apply_run(run: _Run, o):
    """Apply the element-wise Transforms of `run` to `o` by the plan of its shape (recorded on first sight)."""
    c = type(o)
    key: Any
    if c is tuple:
        n = len(o)
        if n == 2:  # the usual (input, target): a key without building an iterator
            a, b = o
            key = (type(a), type(b))
        elif n == 1:
            key = (type(o[0]),)
        else:
            key = tuple(map(type, o))
    else:
        key = c
    plan = run.plans.get(key)
    if plan is None:
        return _trace(run, o, key)
    if plan is _UNPLANNED:
        return _generic(run.steps, o)
    if c is not tuple:
        run.last1 = (c, plan, _lone_op(plan))
    elif n == 2:
        run.last2 = (*key, plan, _lone_op(plan))
    return _replay(run, plan, [*o] if c is tuple else [o], o, c is tuple)


def _replay(run: _Run, plan: tuple, vals: list, o, as_tuple: bool):
    """Run `plan` (of `run`) on `vals`, the elements of `o` (or `[o]`). `Pipeline.__call__` and `map_items` hold a
    copy of this loop for pairs and single objects (kept in two variables instead of a list)."""
    for i, f, rt, meta in plan:
        x = vals[i]
        try:
            y = f(x)
        except Exception as exc:
            _reraise(exc, meta[3], meta[4], x, *((i, o) if as_tuple else (None, None)))
        if type(y) is not rt:
            if rt is _FIN and type(y) is meta[7]:
                y = _finish(y, x, meta[6], meta[5])
            else:
                return _resume(run, meta, y, x, vals, as_tuple)
        vals[i] = y
    return tuple(vals) if as_tuple else vals[0]


class _NotPair:
    "The type of `_NOT_PAIR`, which stands for the input of a tuple that is not a pair: never a recorded type."


_NOT_PAIR = _NotPair()


def _lone_op(plan: tuple):
    "The one step of `plan` when that is all it does, to element 0 (`map_items` then runs `_map_lone`), else None."
    return plan[0] if len(plan) == 1 and plan[0][0] == 0 else None


def _map_lone(run: _Run, items: Iterable[Any], lone: tuple, t0: type, t1: type | None) -> list:
    """`map_items` by a plan of one function on element 0 (`lone`), for inputs of types `t0`, `t1` (the pair
    `(t0, t1)`, or one object of type `t0` when `t1` is None): the usual after-item Pipeline (transform the input,
    leave the target) applied to items that all have the same types. The loop of `Pipeline.__call__` without its
    per-step loop and element bookkeeping: per item, the type checks, the call, and the pair built. An item of other
    types goes through `_apply_run`, a result of another type is finished as `__call__` does (`_finish`,
    `_resume`): the same calls in the same order, and the same results, types and errors."""
    _, f, rt, meta = lone
    # Per item these loops pay every lookup: `type` and `tuple` are read from locals (~6 ns less per item than the
    # builtins), and results appended with `out.append(...)`, which CPython 3.11 specialises to an in-place append
    # (~3 ns less per call than a bound `append` held in a local).
    tp, tup = type, tuple
    out: list = []
    if t1 is None:
        for o in items:
            if tp(o) is not t0:
                out.append(_apply_run(run, o))
                continue
            try:
                y = f(o)
            except Exception as exc:
                _reraise(exc, meta[3], meta[4], o, None, None)
            if tp(y) is rt:
                out.append(y)
            elif rt is _FIN and tp(y) is meta[7]:
                out.append(_finish(y, o, meta[6], meta[5]))
            else:
                out.append(_resume(run, meta, y, o, [o], False))
        return out
    for o in items:
        if tp(o) is tup:
            try:  # a pair: cheaper than checking len(o) first (no exception in the usual case)
                a, b = o
            except ValueError:
                a = _NOT_PAIR  # of no type a plan is recorded for: the general way below
            if tp(a) is t0 and tp(b) is t1:
                try:
                    y = f(a)
                except Exception as exc:
                    _reraise(exc, meta[3], meta[4], a, 0, o)
                if tp(y) is rt:
                    out.append((y, b))
                elif rt is _FIN and tp(y) is meta[7]:
                    out.append((_finish(y, a, meta[6], meta[5]), b))
                else:
                    out.append(_resume(run, meta, y, a, [a, b], True))
                continue
        out.append(_apply_run(run, o))
    return out


def _map_lone_pairs(run: _Run, items: list, lone: tuple, t0: type, t1: type) -> tuple[list, list] | list:
    """`_map_lone` on pairs of types `(t0, t1)`, with the results kept as two lists `(inputs, targets)` rather than a
    tuple per item, for a loader that collates them column by column (`Pipeline.map_pairs`). The same calls, in the
    same order, as `_map_lone`. At the first result that is not a plain pair, the results so far become pairs again
    and the rest of the items go through `_map_lone`: the list it would have returned."""
    _, f, rt, meta = lone
    tp, tup = type, tuple  # as in `_map_lone`
    xs: list = []
    ys: list = []
    it = iter(items)
    for o in it:
        if tp(o) is tup:
            try:  # as in `_map_lone`
                a, b = o
            except ValueError:
                a = _NOT_PAIR
            if tp(a) is t0 and tp(b) is t1:
                try:
                    y = f(a)
                except Exception as exc:
                    _reraise(exc, meta[3], meta[4], a, 0, o)
                if tp(y) is rt:
                    xs.append(y)
                    ys.append(b)
                    continue
                if rt is _FIN and tp(y) is meta[7]:
                    r = (_finish(y, a, meta[6], meta[5]), b)
                else:
                    r = _resume(run, meta, y, a, [a, b], True)
            else:
                r = _apply_run(run, o)
        else:
            r = _apply_run(run, o)
        if tp(r) is tup and len(r) == 2:
            xs.append(r[0])
            ys.append(r[1])
            continue
        out = list(zip(xs, ys))
        out.append(r)
        out += _map_lone(run, it, lone, t0, t1)
        return out
    return xs, ys


def _trace(run: _Run, o, key):
    """Apply `run` to `o` the ordinary way, recording the plan of inputs of types `key`: per function called, in
    order, `(element, function, type it returned, meta)` (`_FIN` as the type when `_finish` changed the result)."""
    c, plans = type(o), run.plans
    as_tuple = c is tuple
    if len(plans) >= _MAX_PLANS:
        return _generic(run.steps, o)
    if not as_tuple and issubclass(c, tuple) and not hasattr(c, "_fields"):  # `_apply` maps it and keeps its type
        plans[key] = _UNPLANNED
        return _generic(run.steps, o)
    vals, ops, last = [*o] if as_tuple else [o], list[Any](), len(run.steps) - 1
    for j, (t, m) in enumerate(run.steps):
        cache = m.cache
        for i, x in enumerate(vals):
            tx = type(x)
            e = cache.get(tx) or m.fill(tx)
            f = e[0]
            if f is None:
                continue
            try:
                r = f(t, x) if e[1] else f(x)
            except Exception as exc:
                _reraise(exc, t, m, x, *((i, tuple(vals)) if as_tuple else (None, None)))
            y = r if type(r) is tx and e[2] == _RETAIN else _finish(r, x, tx, e)
            vals[i] = y
            if f is noop and not e[1] and e[2] != _CAST:  # returned its input: nothing to record
                continue
            meta = (len(ops), i, j, t, m, e, tx, type(r))
            ops.append((i, MethodType(f, t) if e[1] else f, type(r) if y is r else _FIN, meta))
        v = vals[0]
        if not as_tuple and j < last and isinstance(v, tuple) and not hasattr(type(v), "_fields"):
            # one object became a tuple: the next Transforms map over it, which a one-object plan cannot say
            plans[key] = _UNPLANNED
            return _generic(run.steps[j + 1 :], v)
    plans[key] = tuple(ops)
    return tuple(vals) if as_tuple else vals[0]


def _resume(run: _Run, meta, y, x, vals: list, as_tuple: bool):
    """Finish an item after the step of `meta` returned `y`, of a type its plan did not record: that result gets the
    ordinary treatment, then the rest of the item runs the ordinary way."""
    _, i, j, t, m, e, tx, _ = meta
    vals[i] = y if type(y) is tx and e[2] == _RETAIN else _finish(y, x, tx, e)
    if as_tuple:
        whole = tuple(vals)
        for i2 in range(i + 1, len(vals)):  # the same Transform on the elements after it
            vals[i2] = t._one(m, vals[i2], _NOKW, i2, whole)
        o = tuple(vals)
    else:
        o = vals[0]
    return _generic(run.steps[j + 1 :], o)


def _generic(steps, o):
    """Apply element-wise `steps` (`(transform, dispatcher)` pairs) to `o` the ordinary way, exactly as calling each
    Transform in turn: a plain tuple is mapped in place in one list, one tuple built at the end."""
    vals = None  # the elements of the plain tuple being mapped in place
    for t, m in steps:
        if vals is None:
            if type(o) is not tuple:  # one object, or a tuple subclass (kept by `_apply`)
                o = t._apply(m, o, _NOKW)
                continue
            vals = [*o]
        cache = m.cache
        for i, x in enumerate(vals):
            tx = type(x)
            e = cache.get(tx) or m.fill(tx)
            f = e[0]
            if f is None:
                continue
            try:
                r = f(t, x) if e[1] else f(x)
            except Exception as exc:
                _reraise(exc, t, m, x, i, tuple(vals))
            vals[i] = r if type(r) is tx and e[2] == _RETAIN else _finish(r, x, tx, e)
    return o if vals is None else tuple(vals)


def _flatten(funcs):
    for f in funcs:
        if isinstance(f, Pipeline):
            yield from f.fs
        else:
            yield mk_transform(f)


def _sort(fs) -> L:
    return L(sorted(fs, key=lambda t: getattr(t, "order", 0)))


# What every Transform has as a setting of its own (`order`, `split_idx`, `name`, `setup`...): never gathered from
# the Transforms, where "the" value of a Pipeline means nothing (it would be one value per Transform).
_TFM_SETTINGS = frozenset(k for k in dir(Transform) if not k.startswith("_"))


def _snake(c: type) -> str:
    "The snake_case name of class `c` (`pipe.categorize`), kept on the class: the regex runs once per class."
    n = c.__dict__.get("_tiers_snake_name")
    if n is None:
        n = camel2snake(c.__name__)
        try:
            type.__setattr__(c, "_tiers_snake_name", n)
        except TypeError:  # a builtin or extension class
            pass
    return n


def _is_tuple(o) -> bool:
    return isinstance(o, tuple) and not hasattr(o, "_fields")


def _is_identity(t) -> bool:
    "Whether `t` is a bare `Transform(noop)` (what an empty Pipeline holds): calling it returns its input."
    return type(t) is Transform and t._encm.funcs == [noop] and t._encm.resolve(object) is noop


def _showable(o) -> bool:
    if hasattr(o, "show"):
        return True
    return _is_tuple(o) and all(hasattr(x, "show") for x in o)


class Pipeline:
    """Transforms composed in `order`: call to encode, `decode` to reverse, `setup` to learn their state in turn.

    `funcs` may hold Transforms, Transform classes (instantiated) and plain functions (wrapped in `Transform`).
    `split_idx` is passed to every Transform on each call, so those with a different `split_idx` are skipped.

    >>> class Plus1(Transform):
    ...     def encodes(self, x: int): return x + 1
    ...     def decodes(self, x: int): return x - 1
    >>> pipe = Pipeline([Plus1, Transform(str.upper)])
    >>> pipe((1, "a")), pipe.decode((2, "A"))
    ((2, 'A'), (1, 'A'))
    """

    def __init__(self, funcs: Callable[..., Any] | Iterable[Callable[..., Any]] | None = None,
                 split_idx: int | None = None):
        self.split_idx = split_idx
        if funcs is None:
            funcs = [noop]
        elif isinstance(funcs, (Transform, Pipeline)) or callable(funcs) and not isinstance(funcs, (list, tuple, L)):
            funcs = [funcs]
        self.fs = _sort(_flatten(funcs))

    # -- applying
    @property
    def identity(self) -> bool:
        """Whether calling this Pipeline returns its input unchanged (no Transforms, or only `noop`): loaders skip
        calling it per item."""
        return all(_is_identity(t) for t in self.fs)

    _route = cast(_Route, _NoRoute)  # how calls run (`_Route`), worked out again on the first call after a change

    def _current_route(self) -> _Route:
        "The route calls take now: the one kept, or a new one when something it relied on changed."
        r = self._route
        if r.gen != _CHANGES[0] or r.fsd["items"] != r.snap:
            r = self.__dict__["_route"] = _Route(self.fs, self.split_idx)
        return r

    def __call__(self, o):
        r = self._route
        if r.gen != _CHANGES[0] or r.fsd["items"] != r.snap:  # what `_current_route` checks, inlined
            r = self._current_route()
        run = r.run
        if run is None:
            return _run_route(r, o)
        # `_apply_run(run, o)` with the plan used last, inlined (a call costs as much as a step here); a pair's
        # elements, or the one object, are held in `a`, `b` rather than a list
        if type(o) is tuple:
            if len(o) != 2:
                return _apply_run(run, o)
            a, b = o
            ta, tb, plan, _ = run.last2
            if type(a) is not ta or type(b) is not tb:
                return _apply_run(run, o)
            pair = True
        else:
            t1, plan, _ = run.last1
            if type(o) is not t1:
                return _apply_run(run, o)
            a, b, pair = o, None, False
        for i, f, rt, meta in plan:
            x = b if i else a
            try:
                y = f(x)
            except Exception as exc:
                _reraise(exc, meta[3], meta[4], x, *((i, o) if pair else (None, None)))
            if type(y) is not rt:
                if rt is _FIN and type(y) is meta[7]:
                    y = _finish(y, x, meta[6], meta[5])
                else:
                    return _resume(run, meta, y, x, [a, b] if pair else [a], pair)
            if i:
                b = y
            else:
                a = y
        return (a, b) if pair else a

    def map_items(self, items: Iterable[Any]) -> list[Any]:
        """`[self(o) for o in items]`, with the per-call overhead paid once: loaders call it on each batch's items.

        >>> Pipeline([Transform(lambda x: x + 1)]).map_items([1, 2, 3])
        [2, 3, 4]
        """
        r = self._current_route()
        run = r.run
        if run is None:
            return [_run_route(r, o) for o in items]
        if type(items) is list and items:  # the common case, chosen per batch by its first item: see `_map_lone`
            if type(items[0]) is tuple:
                ta, tb, _, lone = run.last2
                if lone is not None:
                    return _map_lone(run, items, lone, ta, tb)
            else:
                t1, _, lone = run.last1
                if lone is not None:
                    return _map_lone(run, items, lone, t1, None)
        out: list = []
        append = out.append
        for o in items:  # the body of `__call__` after its route check
            if type(o) is tuple:
                if len(o) != 2:
                    append(_apply_run(run, o))
                    continue
                a, b = o
                ta, tb, plan, _ = run.last2
                if type(a) is not ta or type(b) is not tb:
                    append(_apply_run(run, o))
                    continue
                pair = True
            else:
                t1, plan, _ = run.last1
                if type(o) is not t1:
                    append(_apply_run(run, o))
                    continue
                a, b, pair = o, None, False
            for i, f, rt, meta in plan:
                x = b if i else a
                try:
                    y = f(x)
                except Exception as exc:
                    _reraise(exc, meta[3], meta[4], x, *((i, o) if pair else (None, None)))
                if type(y) is not rt:
                    if rt is _FIN and type(y) is meta[7]:
                        y = _finish(y, x, meta[6], meta[5])
                    else:
                        append(_resume(run, meta, y, x, [a, b] if pair else [a], pair))
                        break
                if i:
                    b = y
                else:
                    a = y
            else:
                append((a, b) if pair else a)
        return out

    def map_pairs(self, items: list[Any]) -> tuple[list[Any], list[Any]] | list[Any]:
        """`map_items(items)` for a loader that collates `(input, target)` pairs column by column: when every result
        is a plain 2-tuple, the results as two lists `(inputs, targets)`, without a tuple built per item; otherwise
        the list `map_items` returns. Either way the same calls, in the same order, and the same errors. Columns come
        from `map_items`'s fast path (one function on the input, the plan the last call used): a first batch gives a
        list."""
        run = self._current_route().run
        if run is not None and type(items) is list and items and type(items[0]) is tuple:
            ta, tb, _, lone = run.last2
            if lone is not None:
                return _map_lone_pairs(run, items, lone, ta, tb)
        return self.map_items(items)

    def __setattr__(self, k, v):
        if k == "fs" and type(v) is not L:
            v = L(list(v))
        d = self.__dict__
        if k == "fs" or k == "split_idx" and d.get(k, _NONE) != v:
            d.pop("_route", None)
        super().__setattr__(k, v)

    def decode(self, o: Any, full: bool = True) -> Any:
        """Run the Transforms' `decodes` last to first. With `full=False`, stop as soon as the object (or every
        element of a tuple) has a `show` method: the form `show` needs."""
        s = self.split_idx
        for f in reversed(list(self.fs)):
            if not full and _showable(o):
                return o
            o = f.decode(o, split_idx=s)
        return o

    def show(self, o: Any, ctx: Any = None, **kwargs: Any) -> Any:
        """Decode `o` until it can show itself, then show it (each element of a tuple in turn, on the same `ctx`);
        returns the ctx the show methods returned."""
        o = self.decode(o, full=False)
        if hasattr(o, "show"):
            return o.show(ctx=ctx, **kwargs)
        for x in o if _is_tuple(o) else (o,):
            if hasattr(x, "show"):
                ctx = x.show(ctx=ctx, **kwargs)
        return ctx

    # -- setting up
    def setup(self, items: Any = None, train_setup: bool = False) -> None:
        """Run each Transform's `setup` in order, so each sees the data as it will at call time.

        What a Transform sees depends on `items`:

        * an object that applies this Pipeline itself (a lazy dataset holding it as an attribute, as fastai's
          `TfmdLists` and `TfmdDL` do) is passed as is, while the Pipeline holds only the Transforms set up so far;
        * a list or an `L`: each element as the earlier Transforms make it;
        * a tuple, a tensor or an array (one item or a batch): run whole through the earlier Transforms;
        * anything else (a DataFrame, a loader...) is passed as is: this Pipeline cannot know how to apply to it."""
        tfms = list(self.fs)
        if items is not None and self._applied_by(items):
            try:
                for i, t in enumerate(tfms):
                    self.fs = L(tfms[:i])
                    t.setup(items, train_setup)
            finally:
                self.fs = L(tfms)
            return
        staged = items
        for i, t in enumerate(tfms):
            if i and staged is not None:
                staged = self._stage(staged, tfms[i - 1])
            t.setup(staged, train_setup)

    def _applied_by(self, items) -> bool:
        "Whether `items` holds this Pipeline (so indexing it applies the Transforms the Pipeline holds now)."
        d: dict = getattr(items, "__dict__", None) or {}
        return any(v is self for v in d.values())

    def _stage(self, items, t):
        "`items` as Transform `t` makes them, by the rules of `setup`."
        s = self.split_idx
        if isinstance(items, L):
            return L([t(o, split_idx=s) for o in items])
        if isinstance(items, list):
            return [t(o, split_idx=s) for o in items]
        if isinstance(items, tuple) or hasattr(items, "shape") and hasattr(items, "dtype"):
            return t(items, split_idx=s)
        return items

    def add(self, ts: Callable[..., Any] | list[Callable[..., Any]] | tuple[Callable[..., Any], ...] | L,
            items: Any = None, train_setup: bool = False) -> "Pipeline":
        """Add Transform(s) `ts` in their `order` place, each set up first on `items` as the Transforms before it
        make them (same rules as `setup`)."""
        if isinstance(ts, Pipeline):
            ts = list(ts.fs)
        elif not isinstance(ts, (list, tuple, L)):
            ts = [ts]
        for t in _flatten(ts):
            fs = list(self.fs)
            pos = sum(1 for f in fs if getattr(f, "order", 0) <= getattr(t, "order", 0))
            if items is not None and self._applied_by(items):
                try:
                    self.fs = L(fs[:pos])
                    t.setup(items, train_setup)
                finally:
                    self.fs = L(fs)
            else:
                staged = items
                for f in fs[:pos]:
                    if staged is None:
                        break
                    staged = self._stage(staged, f)
                t.setup(staged, train_setup)
            self.fs = L(fs[:pos] + [t] + fs[pos:])
        return self

    def remove(self, t: Transform | type[Transform]) -> "Pipeline":
        """Remove Transform `t` (that object), or every Transform of class `t`; ValueError when none is there."""
        if isinstance(t, type):
            keep = [f for f in self.fs if not isinstance(f, t)]
        else:
            keep = [f for f in self.fs if f is not t]
        if len(keep) == len(self.fs):
            raise ValueError(f"Pipeline.remove: {t!r} is not in {self!r}; pass one of its Transforms or their class")
        self.fs = L(keep)
        return self

    # -- access
    def __getitem__(self, i):
        return self.fs[i]

    def __getattr__(self, k: str):
        v = self._find(k) if k[:1] != "_" else _NONE
        if v is not _NONE:
            return v
        if k in _TFM_SETTINGS:
            raise AttributeError(
                f"'Pipeline' object has no attribute {k!r}: it is a setting each Transform has (one value per "
                f"Transform), not forwarded; read it on one Transform, e.g. `pipe.fs[0].{k}`",
                name=k,
                obj=self,
            )
        fs = self.__dict__.get("fs") or ()
        raise AttributeError(
            f"'Pipeline' object has no attribute {k!r}, and none of its {len(fs)} Transforms has it", name=k, obj=self
        )

    def _find(self, k: str):
        "Forwarded attribute `k` (a Transform by snake_case class name, else gathered from the Transforms) or `_NONE`."
        fs = self.__dict__.get("fs")
        if fs is None:
            return _NONE
        named = [f for f in fs.items if _snake(type(f)) == k]
        if named:
            return named[0] if len(named) == 1 else L(named)
        if k in _TFM_SETTINGS:
            return _NONE
        res = [v for v in (_find(t, k) for t in fs.items) if v is not _NONE and v is not None]
        if not res:
            return _NONE
        return res[0] if len(res) == 1 else L(res)

    def __dir__(self):
        fs = self.__dict__.get("fs", ())
        names = {_snake(type(f)) for f in fs} | set(gather_attr_names(self, "fs")) - _TFM_SETTINGS
        return sorted(set(super().__dir__()) | names)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_route", None)  # worked out again on the first call
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)  # not through __setattr__/__getattr__: the object is half-built here
        self.fs = self.__dict__.get("fs", ())

    def __repr__(self) -> str:
        names = [f.name for f in self.fs if getattr(f, "name", None) != "noop"]
        return f"Pipeline: {' -> '.join(names)}" if names else "Pipeline: (empty)"
