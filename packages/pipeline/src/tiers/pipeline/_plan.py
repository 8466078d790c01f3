"""Compiled plans: how a `Pipeline` runs a stretch of plain Transforms at close to the cost of the functions.

A *plain* Transform uses `Transform`'s own call machinery (not an `ItemTransform`, `InplaceTransform`, or a class
that overrides `__call__`, such as random augmentations that draw their parameters per call). For a run of plain
Transforms, the second item of a given shape (a plain tuple's element types, or one object's type) is processed
the ordinary way while its steps are recorded (the first one just runs, so a Pipeline called once never compiles):
which Transform changed which element with which function, and the type that came back. The record is turned into one straight-line Python function that checks the input's
types, calls those functions in the same order, and checks each result's type. Elements a Transform does not
match cost nothing. When a result's type differs from the recorded one, the plan hands the half-done item back
to the ordinary path, which finishes it (nothing runs twice). Plans are dropped whenever a dispatcher gains a
function, a Transform's `split_idx` changes, or the Pipeline's `split_idx` or Transforms change.
"""

import weakref

from tiers.dispatch import noop
from tiers.pipeline import _methods
from tiers.pipeline._methods import _CAST
from tiers.pipeline.transform import Transform, _reraise

__all__ = []  # private machinery of Pipeline

_MISS = object()
_MAX_PLANS = 32  # input shapes compiled per Chain; more run the ordinary way
_MAX_SEEN = 1024
_finish = Transform._finish
_CHAINS = weakref.WeakSet()  # every live Chain
_BY_TFM = weakref.WeakKeyDictionary()  # Transform -> the Chains holding it


def _invalidate(tfm=None):
    "Drop the plans of the Chains holding `tfm` (of all Chains when None, or when `tfm` is unhashable)."
    chains = None
    if tfm is not None:
        try:
            held = _BY_TFM.get(tfm)
        except TypeError:  # a Transform class defining __eq__ without __hash__
            held = None
        else:
            chains = list(held) if held is not None else []
    for c in list(_CHAINS) if chains is None else chains:
        c.reset()


_methods._on_change.append(_invalidate)


def is_plain(t) -> bool:
    "Whether `t` runs through `Transform`'s own element-wise call machinery (so its calls can be compiled)."
    c = type(t)
    return (
        isinstance(t, Transform)
        and c.__call__ is Transform.__call__
        and c._apply is Transform._apply
        and c._one is Transform._one
        and c._finish is Transform._finish
    )


def _miss_stub(o):
    return _MISS


class Chain:
    """A run of consecutive plain Transforms of a Pipeline, applied through per-input-type compiled plans.

    `chain.last(o)` runs the plan used last (or returns `_MISS` when `o` does not fit it); `chain.run(o, s)` finds,
    or records and compiles, the plan for `o` under the Pipeline's split_idx `s`."""

    def __init__(self, tfms):
        self.tfms = list(tfms)
        self.plans: dict = {}
        self.seen: dict = {}  # input shape -> times met without a plan
        self.last = _miss_stub
        _CHAINS.add(self)
        for t in self.tfms:
            try:
                _BY_TFM.setdefault(t, weakref.WeakSet()).add(self)
            except TypeError:  # unhashable: only a change to every Transform reaches it
                pass

    def reset(self):
        self.plans.clear()
        self.seen.clear()
        self.last = _miss_stub

    def __call__(self, o, s):
        r = self.last(o)
        return self.run(o, s) if r is _MISS else r

    def run(self, o, s):
        if type(o) is tuple:
            key = tuple(map(type, o))
        elif isinstance(o, tuple):  # a tuple subclass or namedtuple: no plan, the ordinary path decides
            return self.generic(o, s)
        else:
            key = type(o)
        plan = self.plans.get(key)
        if plan is not None:
            r = plan(o)
            if r is not _MISS:
                self.last = plan
                return r
        # compiling costs ~100x a call: only for a shape seen before, and only for a bounded number of shapes
        seen = self.seen.get(key, 0)
        if not seen or len(self.plans) >= _MAX_PLANS:
            if len(self.seen) < _MAX_SEEN:
                self.seen[key] = seen + 1
            return self.generic(o, s)
        r, plan = self._trace(o, s, key)
        self.plans[key] = self.last = plan
        return r

    def active(self, s):
        return [t for t in self.tfms if t.split_idx is None or t.split_idx == s]

    def generic(self, o, s):
        for t in self.tfms:
            o = t(o, split_idx=s)
        return o

    def _trace(self, o, s, key):
        "Run `o` the ordinary way, recording each step; returns (result, plan for inputs of types `key`)."
        tfms = self.active(s)
        as_tuple = type(o) is tuple
        vals = list(o) if as_tuple else [o]
        steps = []
        for j, t in enumerate(tfms):
            m = t._encm
            whole = tuple(vals) if as_tuple else None
            for i, x in enumerate(vals):
                tx = type(x)
                e = m.cache.get(tx) or m.fill(tx)
                f = e[0]
                if f is None or f is noop and e[2] is not _CAST:  # changes nothing: leave it out of the plan
                    continue
                try:
                    raw = f(t, x) if e[1] else f(x)
                except Exception as exc:
                    _reraise(exc, t, m, x, i if as_tuple else None, whole)
                r = _finish(raw, x, tx, e)
                # `_finish` returns `raw` itself unless it casts it, so "type changed" says whether to re-run it
                steps.append((j, i, t, m, e, type(raw), type(r) is not type(raw)))
                vals[i] = r
            v = vals[0]
            if not as_tuple and isinstance(v, tuple) and not hasattr(v, "_fields") and j < len(tfms) - 1:
                # one object became a tuple: the next Transforms map over it, which a one-element plan cannot say
                for t2 in tfms[j + 1 :]:
                    v = t2._apply(t2._encm, v, {})
                return v, _generic_plan(self, s)
        res = tuple(vals) if as_tuple else vals[0]
        return res, _compile(key, as_tuple, tfms, steps)


def _generic_plan(chain, s):
    def plan(o):
        return chain.generic(o, s)

    return plan


def _resume(tfms, steps, as_tuple):
    "Continuation used when a result's type differs from the recorded one: finish the item the ordinary way."

    def resume(k, r, vals):
        j, i, t, m, e, _, _ = steps[k]
        x = vals[i]
        vals[i] = _finish(r, x, type(x), e)
        whole = tuple(vals) if as_tuple else None
        for i2 in range(i + 1, len(vals)):
            vals[i2] = t._one(m, vals[i2], {}, i2, whole)
        o = tuple(vals) if as_tuple else vals[0]
        for t2 in tfms[j + 1 :]:
            o = t2._apply(t2._encm, o, {})
        return o

    return resume


def _compile(key, as_tuple, tfms, steps):
    """A straight-line function running `steps` on an input of types `key` (`_MISS` for any other input), with a
    `many` attribute: the same steps in a loop over a list, returning the results of the leading inputs it fits."""
    n = len(key) if as_tuple else 1
    names = [f"a{i}" for i in range(n)]
    ns = {"_MISS": _MISS, "_reraise": _reraise, "_finish": _finish, "tuple": tuple, "type": type, "len": len}
    ns["_resume"] = _resume(tfms, steps, as_tuple)
    if as_tuple:
        for i, t in enumerate(key):
            ns[f"T{i}"] = t
    else:
        ns["T0"] = key
    for k, (_j, _i, t, m, e, raw_t, _refinish) in enumerate(steps):
        ns[f"f{k}"], ns[f"t{k}"], ns[f"m{k}"], ns[f"e{k}"], ns[f"R{k}"] = e[0], t, m, e, raw_t
    one = ["def plan(o):", *_body(key, as_tuple, steps, names, "    ", miss="return _MISS",
                                  done=lambda v: f"return {v}")]
    many = ["def many(items):", "    out = []", "    ap = out.append", "    for o in items:",
            *_body(key, as_tuple, steps, names, "        ", miss="return out", done=lambda v: f"ap({v}); continue"),
            "    return out"]
    exec(compile("\n".join(one + many), f"<tiers.pipeline plan of {len(tfms)} Transform(s)>", "exec"), ns)
    plan = ns["plan"]
    plan.many = ns["many"]
    return plan


def _body(key, as_tuple, steps, names, ind, miss, done) -> list:
    "Source lines running `steps` on `o` at indent `ind`: `miss` when `o` does not fit, `done(value)` at the end."
    n = len(names)
    lines = []
    if as_tuple:
        lines += [f"if type(o) is not tuple: {miss}", "try:", f"    {', '.join(names)}{',' if n == 1 else ''} = o",
                  "except ValueError:", f"    {miss}"]  # another length
        guards = [f"type(a{i}) is not T{i}" for i in range(n)]
    else:
        lines.append("a0 = o")
        guards = ["type(a0) is not T0"]
    if guards:
        lines.append(f"if {' or '.join(guards)}: {miss}")
    vals = "[" + ", ".join(names) + "]"
    for k, (_j, i, _t, _m, e, _raw_t, refinish) in enumerate(steps):
        call = f"f{k}(t{k}, a{i})" if e[1] else f"f{k}(a{i})"
        where = f"{i}, o" if as_tuple else "None, None"
        lines += [
            "try:",
            f"    r = {call}",
            "except Exception as exc:",
            f"    _reraise(exc, t{k}, m{k}, a{i}, {where})",
            f"if type(r) is not R{k}: {done(f'_resume({k}, r, {vals})')}",
            f"a{i} = _finish(r, a{i}, type(a{i}), e{k})" if refinish else f"a{i} = r",
        ]
    lines.append(done(f"({', '.join(names)}{',' if n == 1 else ''})" if as_tuple else "a0"))
    return [ind + ln for ln in lines]
