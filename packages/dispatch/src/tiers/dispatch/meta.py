"""Class and signature construction: `patch`/`patch_to` (add methods to existing classes), `delegates` (show
forwarded `**kwargs` in the signature), `funcs_kwargs` (methods replaceable through `__init__` kwargs),
`use_kwargs`, and `PrePostInitMeta`. `inspect` is imported only when a signature is built."""

import builtins
import functools
import types
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast, overload

from tiers.dispatch.typedispatch import anno_types

__all__ = [
    "copy_func", "patch_to", "patch", "delegates", "use_kwargs", "use_kwargs_dict", "funcs_kwargs",
    "method", "FixSigMeta", "PrePostInitMeta",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=type)


def copy_func(f: _F) -> _F:
    """A copy of function `f` (same code, globals, defaults, closure and attributes), so patching it onto several
    classes gives each its own `__qualname__`."""
    if not isinstance(f, types.FunctionType):
        import copy

        return copy.copy(f)
    fn = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    fn.__kwdefaults__ = None if f.__kwdefaults__ is None else dict(f.__kwdefaults__)
    fn.__dict__.update(f.__dict__)
    fn.__annotations__ = dict(f.__annotations__)
    fn.__qualname__ = f.__qualname__
    fn.__doc__, fn.__module__ = f.__doc__, f.__module__
    return cast(_F, fn)  # a function, as `f` is


def patch_to(cls: type | tuple[type, ...] | list[type], as_prop: bool = False, cls_method: bool = False,
             static_method: bool = False, set_prop: bool = False,
             nm: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Decorator adding the function to `cls` (or to each class of a tuple) under its name (or `nm`): as a
    method, a property (`as_prop`), a property setter (`set_prop`), a classmethod (`cls_method`) or a staticmethod
    (`static_method`). A replaced attribute is kept as `_orig_<name>`. The decorated module name keeps what it
    held before (the function when nothing), so patching never clobbers a module-level function.

    >>> class A: pass
    >>> @patch_to(A)
    ... def double(self, x): return 2 * x
    >>> A().double(2)
    4
    """
    clss: tuple[type, ...]
    if isinstance(cls, type):
        clss = (cls,)
    elif isinstance(cls, (tuple, list)) and cls and all(isinstance(c, type) for c in cls):
        clss = tuple(cls)
    else:
        raise TypeError(f"patch_to: {cls!r} is not a class or a tuple of classes; pass the class to patch")
    if sum((as_prop, cls_method, static_method, set_prop)) > 1:
        raise ValueError("patch_to: as_prop, cls_method, static_method and set_prop are exclusive; pick one")

    def _inner(f):
        name = nm or f.__name__
        for c in clss:
            nf = copy_func(f)
            nf.__name__ = name
            nf.__qualname__ = f"{c.__name__}.{name}"
            if cls_method:
                val = classmethod(nf)
            elif static_method:
                val = staticmethod(nf)
            elif as_prop:
                val = property(nf)
            elif set_prop:
                prop = c.__dict__.get(name, getattr(c, name, None))
                if not isinstance(prop, property):
                    raise TypeError(f"patch_to(set_prop=True): {c.__name__}.{name} is not a property; patch the getter first")
                val = prop.setter(nf)
            else:
                val = nf
            if not set_prop and name in c.__dict__ and f"_orig_{name}" not in c.__dict__:
                setattr(c, f"_orig_{name}", c.__dict__[name])
            setattr(c, name, val)
        glb = getattr(f, "__globals__", {})
        return glb.get(name, builtins.__dict__.get(name, f))

    return _inner


def _first_param_classes(f, where: str):
    code = getattr(f, "__code__", None)
    if code is None or code.co_argcount == 0:
        raise TypeError(f"{where}: {f!r} needs a first parameter annotated with the class to patch")
    first = code.co_varnames[0]
    anno = f.__annotations__.get(first)
    if anno is None:
        raise TypeError(
            f"{where}: the first parameter {first!r} of {f.__qualname__} has no annotation; write "
            f"`def {f.__name__}({first}: MyClass, ...)`"
        )
    if isinstance(anno, str):
        anno = eval(anno, f.__globals__)
    return anno_types(anno, f"{where}: annotation of {f.__qualname__}")


@overload
def patch(f: Callable[..., Any], *, as_prop: bool = False, cls_method: bool = False,
          static_method: bool = False, set_prop: bool = False) -> Any: ...
@overload
def patch(f: None = None, *, as_prop: bool = False, cls_method: bool = False,
          static_method: bool = False, set_prop: bool = False) -> Callable[[Callable[..., Any]], Any]: ...
def patch(f: Callable[..., Any] | None = None, *, as_prop: bool = False, cls_method: bool = False,
          static_method: bool = False, set_prop: bool = False) -> Any:
    """Decorator adding `f` to the class named by its first parameter's annotation (`self: A`; `A | B` patches
    both). Options as in `patch_to`; with `cls_method` the annotated first parameter is the class itself.

    >>> class A: pass
    >>> @patch
    ... def triple(self: A, x): return 3 * x
    >>> A().triple(2)
    6
    """
    if f is None:
        return functools.partial(patch, as_prop=as_prop, cls_method=cls_method, static_method=static_method,
                                 set_prop=set_prop)
    clss = _first_param_classes(f, "patch")
    return patch_to(clss, as_prop=as_prop, cls_method=cls_method, static_method=static_method,
                    set_prop=set_prop)(f)


def delegates(to: Callable[..., Any] | None = None, keep: bool = False, but: Iterable[str] | None = None,
              sort_args: bool = False) -> Callable[[_F], _F]:
    """Decorator replacing `**kwargs` in a function's (or class's `__init__`'s) displayed signature by the
    keyword parameters with defaults of `to` (default: the base class's `__init__`), so `inspect.signature`, IDEs
    and docs show them. `keep` keeps `**kwargs` too; `but` lists names to leave out.

    >>> def base(a, b=1, c=2): ...
    >>> @delegates(base)
    ... def wrapper(x, **kwargs): return base(x, **kwargs)
    >>> import inspect; str(inspect.signature(wrapper))
    '(x, *, b=1, c=2)'
    """
    import inspect

    skip = set(but or ())

    def _f(f):
        if to is None:
            if not isinstance(f, type) or "__init__" not in f.__dict__:
                raise TypeError(f"delegates(): with no `to`, decorate a class defining __init__, not {f!r}")
            to_f, from_f = f.__base__.__init__, f.__init__
        else:
            if isinstance(f, type) and "__init__" not in f.__dict__:
                raise TypeError(f"delegates(): {f.__name__} does not define __init__; nothing to show the kwargs on")
            to_f, from_f = (to.__init__ if isinstance(to, type) else to), f.__init__ if isinstance(f, type) else f
        to_f = getattr(to_f, "__func__", to_f)
        from_f = getattr(from_f, "__func__", from_f)
        if hasattr(from_f, "__delwrap__") and from_f.__delwrap__ is to_f:
            return f  # already delegated to the same target
        sig = inspect.signature(from_f)
        sigd = dict(sig.parameters)
        var_kw = next((p for p in sigd.values() if p.kind is p.VAR_KEYWORD), None)
        if var_kw is None:
            raise TypeError(f"delegates: {getattr(from_f, '__qualname__', from_f)} has no **kwargs to replace; add one")
        del sigd[var_kw.name]
        try:
            to_params = inspect.signature(to_f).parameters
        except (TypeError, ValueError) as e:
            raise TypeError(f"delegates: cannot read the signature of {to_f!r} ({e}); pass a function or class") from None
        added = {
            k: v.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for k, v in to_params.items()
            if v.default is not inspect.Parameter.empty and k not in sigd and k not in skip
            and v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)
        }
        if sort_args:
            added = dict(sorted(added.items()))
        sigd.update(added)
        if keep:
            sigd[var_kw.name] = var_kw
        else:
            from_f.__delwrap__ = to_f
        from_f.__signature__ = sig.replace(parameters=list(sigd.values()))
        anno = getattr(to_f, "__annotations__", {}) or {}
        if hasattr(from_f, "__annotations__"):
            from_f.__annotations__.update({k: anno[k] for k in added if k in anno})
        return f

    return _f


def use_kwargs_dict(keep: bool = False, **kwargs: Any) -> Callable[[_F], _F]:
    """Decorator replacing `**kwargs` in the signature by the given keyword parameters and defaults."""
    import inspect

    def _f(f):
        sig = inspect.signature(f)
        sigd = dict(sig.parameters)
        var_kw = next((p for p in sigd.values() if p.kind is p.VAR_KEYWORD), None)
        if var_kw is not None:
            del sigd[var_kw.name]
        for k, v in kwargs.items():
            if k not in sigd:
                sigd[k] = inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
        if keep and var_kw is not None:
            sigd[var_kw.name] = var_kw
        f.__signature__ = sig.replace(parameters=list(sigd.values()))
        return f

    return _f


def use_kwargs(names: Iterable[str], keep: bool = False) -> Callable[[_F], _F]:
    """Decorator replacing `**kwargs` in the signature by keyword parameters `names`, each defaulting to None."""
    return use_kwargs_dict(keep=keep, **{n: None for n in names})


def method(f: Callable[..., Any]) -> "types.MethodType | _MethodMarker":
    """Mark `f` to become a method bound to the instance (see `funcs_kwargs(as_method=True)`)."""
    return f if isinstance(f, types.MethodType) else _MethodMarker(f)


class _MethodMarker:
    __slots__ = ("f",)

    def __init__(self, f):
        self.f = f


@overload
def funcs_kwargs(as_method: _C) -> _C: ...
@overload
def funcs_kwargs(as_method: bool = False) -> Callable[[_C], _C]: ...
def funcs_kwargs(as_method: bool | type = False) -> Callable[..., Any]:
    """Class decorator: every name in `cls._methods` may be passed to `__init__` as a keyword argument, which
    replaces that method on the instance (bound to it when `as_method=True`). The names show in
    `inspect.signature(cls)`. Usable as `@funcs_kwargs` or `@funcs_kwargs(as_method=True)`.

    >>> @funcs_kwargs
    ... class Loader:
    ...     _methods = ["get_item"]
    ...     def __init__(self, n=1): self.n = n
    ...     def get_item(self, i): return i
    >>> Loader(get_item=lambda i: i * 10).get_item(2)
    20
    """
    import inspect

    def _f(cls):
        names = list(getattr(cls, "_methods", ()))
        if not names:
            raise TypeError(f"funcs_kwargs: {cls.__name__} has no `_methods` list; list the replaceable method names")
        old_init = cls.__init__

        def _init(self, *args, **kwargs):
            for k in names:
                arg = kwargs.pop(k, None)
                if arg is None:
                    continue
                if isinstance(arg, _MethodMarker) or bind:
                    arg = types.MethodType(getattr(arg, "f", arg), self)
                elif isinstance(arg, types.MethodType):
                    arg = types.MethodType(arg.__func__, self)
                setattr(self, k, arg)
            old_init(self, *args, **kwargs)

        functools.update_wrapper(_init, old_init)
        sig = inspect.signature(old_init)
        params = dict(sig.parameters)
        var_kw = next((p for p in params.values() if p.kind is p.VAR_KEYWORD), None)
        if var_kw is not None:
            del params[var_kw.name]
        for k in names:
            if k not in params:
                params[k] = inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None)
        if var_kw is not None:
            params[var_kw.name] = var_kw
        _init.__signature__ = sig.replace(parameters=list(params.values()))
        cls.__init__ = _init
        return cls

    if isinstance(as_method, type):  # used bare: @funcs_kwargs
        bind = False
        return _f(as_method)
    bind = bool(as_method)
    return _f


class FixSigMeta(type):
    """Metaclass making `inspect.signature(cls)` show `__init__`'s parameters (without `self`), computed when asked,
    even though a metaclass defining `__call__` would otherwise hide them. A `__signature__` set in a class body
    wins."""

    @property
    def __signature__(cls):
        for c in cls.__mro__:
            if "__signature__" in c.__dict__:
                return c.__dict__["__signature__"]
        import inspect

        init = cls.__init__
        if init is object.__init__:
            return inspect.Signature()
        sig = inspect.signature(init)
        return sig.replace(parameters=list(sig.parameters.values())[1:])


class PrePostInitMeta(FixSigMeta):
    """Metaclass calling `__pre_init__` before and `__post_init__` after `__init__` when a class defines them
    (so subclasses of e.g. a `Module` need no `super().__init__()`)."""

    def __call__(cls, *args, **kwargs):
        res = cls.__new__(cls, *args, **kwargs)
        if isinstance(res, cls):
            if hasattr(res, "__pre_init__"):
                res.__pre_init__(*args, **kwargs)
            res.__init__(*args, **kwargs)
            if hasattr(res, "__post_init__"):
                res.__post_init__(*args, **kwargs)
        return res
