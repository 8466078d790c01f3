"""`Transform`: a reversible function dispatched on the type of its input, applied element-wise over tuples.

A Transform has three type-dispatched methods: `encodes` (the forward direction, run by calling the Transform),
`decodes` (its inverse, run by `decode`) and `setups` (learns state from data, run by `setup`). Each can be defined
several times with different type annotations, and a call runs the one whose annotation best matches the input's
type (`tiers.dispatch.TypeDispatch` rules: most specific class wins, unannotated ranks last). Rules of a call:

* a plain tuple (not a namedtuple) is mapped element-wise and each element is dispatched on its own type, so one
  Transform treats the image and the mask of an `(image, mask)` pair differently;
* an element no method matches passes through unchanged;
* the result keeps the input's subclass (a `TensorImage` stays one even if the code returns a plain `Tensor`),
  unless the method's return annotation says otherwise: `-> None` keeps the result as returned, `-> T` casts to `T`;
* when the Transform has a `split_idx` it runs only on calls made with that same `split_idx` (0: training data).

Resolutions are cached per input type, so a call costs a dict lookup plus the method itself.
"""

import os
from collections.abc import Callable, Iterable
from numbers import Integral
from pathlib import Path
from typing import Any

from tiers.dispatch import retain_type
from tiers.pipeline._methods import (
    _CAST,
    _CHANGES,
    _HOT,
    _NO_RETAIN,
    _RETAIN,
    _callable_name,
    _first_anno,
    _TfmMeta,
    _TfmMethod,
)

__all__ = ["Transform", "InplaceTransform", "DisplayedTransform", "ItemTransform", "compose_tfms"]


def _row_position_hint(exc: KeyError, x: Any) -> str | None:
    """The fix for `row[0]` on a DataFrame row (fastai's data block tutorial getter `lambda x: x[0]`): a pandas Series
    is indexed by column names, and pandas >= 3 no longer falls back to positions. None when that is not the cause."""
    k = exc.args[0] if len(exc.args) == 1 else None
    if type(k) is not int or not type(x).__module__.startswith("pandas") or not hasattr(x, "iloc"):
        return None
    labels = list(getattr(x, "index", ()))
    # integer labels: `x[0]` is a label lookup there (pandas never fell back to positions), not this slip
    if k in labels or not -len(labels) <= k < len(labels) or any(isinstance(c, Integral) for c in labels):
        return None
    shown = labels if len(labels) <= 10 else [*labels[:10], "..."]
    return (f"The item is a pandas Series (a DataFrame row) indexed by column names {shown}: x[{k}] looks up a column "
            f"named {k}, and pandas >= 3 no longer falls back to positions. Use x.iloc[{k}] or the column name, "
            f"x[{labels[k]!r}].")


def _repeated_folder_hint(x: Any) -> str | None:
    """The cause of a missing file whose path repeats its leading folder(s) (`data/data/train/a.png`) while the path
    without the repetition exists: file names that already start with the folder a getter prefixes (`from_df(df,
    path='data')` on a column of 'data/train/a.png'). None otherwise; runs on the error path only."""
    if not isinstance(x, str | os.PathLike):
        return None
    p = os.fspath(x)
    parts = Path(p).parts if isinstance(p, str) else ()
    for k in range(1, len(parts) // 2 + 1):
        if parts[:k] == parts[k:2 * k] and Path(*parts[k:]).exists():
            folder = str(Path(*parts[:k]))
            return (f"The path repeats its folder {folder!r}: {p} does not exist, {Path(*parts[k:])} does. The file "
                    f"names (a DataFrame column?) already start with the folder they were prefixed with: pass "
                    f"path='.' (or ColReader(col) without pref), or store the names relative to {folder!r}.")
    return None


def _reraise(exc, tfm, m, x, i, whole, where=None):
    """Raise `exc` again, the same object (type, `args`, `errno`, `filename`... untouched), with a note (PEP 678)
    naming the Transform, the method, the element and its type."""
    if getattr(exc, "_tiers_tfm_noted", False):  # a nested Transform already said where
        raise exc
    if where is None:
        where = "the item (not a tuple)" if whole is None else f"element {i} of a {len(whole)}-tuple"
    name = getattr(tfm, "_name", None) or type(tfm).__name__  # not a DisplayedTransform's long name
    exc.add_note(f"{name}.{m.name} raised {type(exc).__name__} on {where}, of type {type(x).__qualname__}")
    hint = _row_position_hint(exc, x) if isinstance(exc, KeyError) else \
        _repeated_folder_hint(x) if isinstance(exc, FileNotFoundError) else None
    if hint:
        exc.add_note(hint)
    exc._tiers_tfm_noted = True  # every exception has a __dict__ (BaseException's)
    raise exc


# one function, or several (a list or tuple of them), for `encodes`/`decodes`
_Funcs = Callable[..., Any] | list[Callable[..., Any]] | tuple[Callable[..., Any], ...]
_WATCHED = frozenset({"split_idx", "__class__", "_encm", "_decm", "_setm"})  # settings a Pipeline's route relies on


class Transform(metaclass=_TfmMeta):
    """A reversible function dispatched on its input's type and applied element-wise over tuples.

    Define it by subclassing (several `encodes`/`decodes`/`setups` with different annotations), from functions
    (`Transform(enc=f, dec=g)` or `Transform(f)`), by extending a class later (`@MyTfm def encodes(self, x: str)`)
    or an instance (`@tfm.encodes def _(x: str)`). Calling applies `encodes`, `decode` applies `decodes`, `setup`
    runs `setups` (to learn state, e.g. a vocabulary). `split_idx` restricts it to calls made with that split
    (0: training), `order` sorts it in a `Pipeline`.

    >>> class Plus(Transform):
    ...     def __init__(self, n): self.n = n
    ...     def encodes(self, x: int): return x + self.n
    ...     def decodes(self, x: int): return x - self.n
    >>> t = Plus(1)
    >>> t((1, "a", 2.0)), t.decode(2)
    ((2, 'a', 2.0), 1)
    """

    split_idx: int | None = None
    order = 0
    train_setup: bool | None = None
    input_types: Any = None  # a type or a tuple of types
    _name: str | None = None
    _as_item = False
    _encm: _TfmMethod  # set on every class by _TfmMeta (encodes/decodes/setups)
    _decm: _TfmMethod
    _setm: _TfmMethod
    _extensible = False  # `@Transform def encodes(...)` makes a Transform instead of changing every Transform

    def __init__(self, enc: _Funcs | None = None, dec: _Funcs | None = None, split_idx: int | None = None,
                 order: int | None = None):
        if split_idx is not None:
            self.split_idx = split_idx
        if enc is not None:
            encs = list(enc) if isinstance(enc, (list, tuple)) else [enc]
            for f in encs:
                self._own_method("encodes").add(f)
            f = encs[0]
            self._name = _callable_name(f)
            self.order = getattr(f, "order", self.order)
            # a function may say what it takes without restricting dispatch (`PILImage.create` takes paths,
            # bytes, arrays...): loaders use it to find where a raw input enters the Pipeline (`infer_idx`)
            self.input_types = getattr(f, "input_types", None) or _first_anno(f)
        if dec is not None:
            for f in list(dec) if isinstance(dec, (list, tuple)) else [dec]:
                self._own_method("decodes").add(f)
        if order is not None:
            self.order = order

    def __setattr__(self, k, v):
        object.__setattr__(self, k, v)
        if k in _WATCHED:  # a Pipeline holding this Transform must see it from its next call on
            _CHANGES[0] += 1

    def __delattr__(self, k):
        object.__delattr__(self, k)
        if k in _WATCHED:
            _CHANGES[0] += 1

    # -- instance-level methods
    def _own_method(self, name: str, fresh: bool = False) -> _TfmMethod:
        "This instance's own dispatcher for `name` (created on first use, linked to the class's)."
        hot = _HOT[name]
        m = None if fresh else self.__dict__.get(hot)
        if m is None:
            m = _TfmMethod(name, type(self), (getattr(type(self), hot),), instance_level=True)
            self.__dict__[hot] = m
            _CHANGES[0] += 1
        return m

    # -- calling
    def __call__(self, x, split_idx: int | None = None, **kwargs):
        """Apply `encodes` to `x` (each element of a plain tuple), passing `kwargs` on; `x` unchanged when this
        Transform has a `split_idx` other than the call's."""
        s = self.split_idx
        if s is not None and s != split_idx:
            return x
        return self._apply(self._encm, x, kwargs)

    def decode(self, x: Any, split_idx: int | None = None, **kwargs: Any) -> Any:
        """Apply `decodes` (the inverse of the call), with the same element-wise and `split_idx` rules."""
        s = self.split_idx
        if s is not None and s != split_idx:
            return x
        return self._apply(self._decm, x, kwargs)

    def _apply(self, m, x, kwargs):
        # The hot path of every loader: the body of `_one` is inlined for tuple elements (a Python call per element
        # costs as much as the dispatch), and the common result (the input's own type) skips `_finish`.
        c = type(x)
        if c is tuple or issubclass(c, tuple) and not hasattr(c, "_fields"):
            cache, out = m.cache, []
            append = out.append
            for i, o in enumerate(x):
                t = type(o)
                e = cache.get(t) or m.fill(t)
                f = e[0]
                if f is None:  # unmatched: no call at all
                    append(o)
                    continue
                try:
                    if kwargs:
                        r = f(self, o, **kwargs) if e[1] else f(o, **kwargs)
                    else:
                        r = f(self, o) if e[1] else f(o)
                except Exception as exc:
                    _reraise(exc, self, m, o, i, x)
                append(r if type(r) is t and e[2] == _RETAIN else self._finish(r, o, t, e))
            return tuple(out) if c is tuple else retain_type(tuple(out), x)
        return self._one(m, x, kwargs)

    def _one(self, m, x, kwargs, i=None, whole=None):
        t = type(x)
        e = m.cache.get(t) or m.fill(t)
        f = e[0]
        if f is None:
            return x
        try:
            if kwargs:
                r = f(self, x, **kwargs) if e[1] else f(x, **kwargs)
            else:
                r = f(self, x) if e[1] else f(x)
        except Exception as exc:
            _reraise(exc, self, m, x, i, whole)
        return r if type(r) is t and e[2] == _RETAIN else self._finish(r, x, t, e)

    @staticmethod
    def _finish(r, x, t, e):
        mode = e[2]
        if mode == _RETAIN:
            rt = type(r)
            if rt is not t and issubclass(t, rt) and t not in _NO_RETAIN:
                return retain_type(r, x)
            return r
        if mode == _CAST:
            return retain_type(r, x, e[3])
        return r

    # -- setup
    def setup(self, items: Any = None, train_setup: bool = False) -> Any:
        """Run `setups` on `items` (on `items.train` when `train_setup`, unless the Transform's own `train_setup`
        attribute says otherwise); a Transform without a matching `setups` ignores the call."""
        ts = self.train_setup if self.train_setup is not None else train_setup
        if ts:
            items = getattr(items, "train", items)
        return self._run_setups(self._setm, items)

    def _run_setups(self, m, items):
        t = type(items)
        e = m.cache.get(t) or m.fill(t)
        f = e[0]
        if f is None:
            return None
        try:
            return f(self, items) if e[1] else f(items)
        except Exception as exc:
            _reraise(exc, self, m, items, None, None, where="the setup items")

    # -- description
    @property
    def name(self) -> str:
        """The Transform's name: its class name, or the function's name for `Transform(f)`."""
        return self._name or type(self).__name__

    def __repr__(self) -> str:
        return f"{self.name}(enc:{self._encm.n_funcs()},dec:{self._decm.n_funcs()})"


class InplaceTransform(Transform):
    """A Transform run for its side effects: the call returns its input (after `encodes` changed it in place)."""

    _extensible = False

    def _apply(self, m, x, kwargs):
        super()._apply(m, x, kwargs)
        return x


class DisplayedTransform(Transform):
    """A Transform whose repr shows its state (the arguments it was built with, or what `setup` learned).

    >>> class Scale(DisplayedTransform):
    ...     def __init__(self, k=2): self.k = k
    ...     def encodes(self, x: float): return x * self.k
    >>> Scale(3)
    Scale -- k=3
    """

    _extensible = False
    _plumbing = frozenset({"split_idx", "order", "train_setup", "input_types"})

    def _state(self) -> dict:
        stored = getattr(self, "__stored_args__", None)
        if stored:  # the constructor's arguments (`store_attr`), with the values they have now (after setup)
            return {k: getattr(self, k, v) for k, v in stored.items()}
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in self._plumbing}

    @property
    def name(self) -> str:
        parts = []
        for k, v in self._state().items():
            r = repr(v)
            parts.append(f"{k}={r if len(r) <= 60 else r[:57] + '...'}")
        base = super().name
        return f"{base} -- {', '.join(parts)}" if parts else base

    def __repr__(self) -> str:
        return self.name


class ItemTransform(Transform):
    """A Transform that receives the whole item: a tuple is not split into elements but dispatched on as one.

    A function that returns a list for a tuple input has its result turned back into a tuple of the input's type
    (unless the class sets `_retain = False`). For code written for fastai, an `encodes` annotated `x: list` also
    receives tuples, converted to a list.

    >>> class Swap(ItemTransform):
    ...     def encodes(self, x: tuple): return (x[1], x[0])
    >>> Swap()((1, "a"))
    ('a', 1)
    """

    _as_item = True
    _retain = True
    _extensible = False

    def _apply(self, m, x, kwargs):
        t = type(x)
        e = m.cache.get(t) or m.fill(t)
        if e[0] is None:
            return x
        arg = list(x) if e[4] else x
        f = e[0]
        try:
            if kwargs:
                r = f(self, arg, **kwargs) if e[1] else f(arg, **kwargs)
            else:
                r = f(self, arg) if e[1] else f(arg)
        except Exception as exc:
            _reraise(exc, self, m, x, None, None)
        r = self._finish(r, x, t, e)
        if isinstance(x, tuple) and type(r) is list:
            r = tuple(r)
        if self._retain and isinstance(x, tuple) and isinstance(r, tuple):
            r = retain_type(r, x)
        return r


def compose_tfms(x: Any, tfms: Iterable[Transform], is_enc: bool = True, reverse: bool = False,
                 **kwargs: Any) -> Any:
    """Apply `tfms` to `x` in turn (their decodes when `is_enc=False`, last first when `reverse`), passing `kwargs`
    (e.g. `split_idx`) to each."""
    if reverse:
        tfms = reversed(list(tfms))
    for f in tfms:
        x = f(x, **kwargs) if is_enc else f.decode(x, **kwargs)
    return x
