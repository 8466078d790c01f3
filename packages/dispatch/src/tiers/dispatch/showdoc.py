"""`doc(elt)`: the signature and docstring of a function, class, method or module, the way fastai notebooks call it:
a Markdown block in a Jupyter notebook, plain text at a terminal. `inspect` is imported by the call, and IPython only
inside a notebook kernel, which has always imported it already."""

import functools
import sys
import types
from typing import Any

__all__ = ["doc"]


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (a front end that renders Markdown); False at a terminal, in IPython's terminal
    shell and in scripts. IPython is never imported here."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    # by class name along the MRO: Colab's and VS Code's kernels subclass the ZMQ shell
    return any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def _target(elt: Any) -> tuple[Any, str]:
    """What to document for `elt`, and a line saying so when it is not `elt` itself: an instance that is neither a
    function, class, module nor property is documented by its class."""
    if isinstance(elt, property):
        return elt, ""
    if isinstance(elt, (type, types.ModuleType)) or callable(elt):
        return elt, ""
    cls = type(elt)
    return cls, f"(an instance of {cls.__module__}.{cls.__qualname__})"


def _name(elt: Any) -> str:
    if isinstance(elt, property):
        return _name(elt.fget) if elt.fget is not None else "property"
    if isinstance(elt, types.ModuleType):
        return elt.__name__
    name = getattr(elt, "__qualname__", None) or getattr(elt, "__name__", None)
    if isinstance(name, str):
        return name
    func = getattr(elt, "func", None)  # functools.partial
    if func is not None:
        return f"partial({_name(func)})"
    return type(elt).__qualname__


def _signature(elt: Any) -> str | None:
    """`(a, b=1)`, `''` for what has none (a module, a property), None where Python cannot tell (some built-ins)."""
    import inspect

    if isinstance(elt, (property, types.ModuleType)):
        return ""
    import re

    try:
        sig = str(inspect.signature(elt))
    except (TypeError, ValueError):
        return None
    # `Callable[..., Any]` reads better than `collections.abc.Callable[..., typing.Any]`
    return re.sub(r"\b(?:typing|collections\.abc)\.", "", sig)


def _source(elt: Any) -> str:
    "Where `elt` is defined: `module (file, line n)`, as much of it as Python knows."
    import inspect

    obj: Any = inspect.unwrap(elt) if callable(elt) else elt
    module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    try:
        file = inspect.getsourcefile(obj)
    except TypeError:
        file = None
    line = None
    if file and not isinstance(obj, types.ModuleType):
        try:
            line = inspect.getsourcelines(obj)[1]
        except (OSError, TypeError):
            pass
    where = ", ".join(p for p in (file, f"line {line}" if line else None) if p)
    if module and where:
        return f"{module} ({where})"
    return module or where or ""


def _parts(elt: Any) -> tuple[str, str, str, str]:
    "(heading, signature line, docstring, defined-in line) for `elt`."
    import inspect

    target, note = _target(elt)
    name = _name(target)
    sig = _signature(target)
    head = name if sig == "" else f"{name}{sig if sig is not None else '(...)'}"
    # what the text comes from: a property's getter, a partial's function (not functools.partial's own docstring)
    inner = target.fget if isinstance(target, property) and target.fget else target
    while isinstance(inner, functools.partial):
        inner = inner.func
    body = "\n".join(p for p in (note, inspect.getdoc(inner) or "(no docstring)") if p)
    return name, head, body, _source(inner)


def _markdown_docstring(text: str) -> str:
    """`text` as Markdown: doctest examples (`>>>` lines with their output, up to a blank line) go in Python code
    fences, which Markdown would otherwise render as nested quotes."""
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if not in_code and line.lstrip().startswith(">>>"):
            out.append("```python")
            in_code = True
        elif in_code and not line.strip():
            out.append("```")
            in_code = False
        out.append(line)
    if in_code:
        out.append("```")
    return "\n".join(out)


def _markdown(elt: Any) -> str:
    name, head, body, source = _parts(elt)
    md = f"### `{name}`\n\n```python\n{head}\n```\n\n{_markdown_docstring(body)}\n"
    return md + (f"\n*Defined in* `{source}`\n" if source else "")


def _plain(elt: Any) -> str:
    _, head, body, source = _parts(elt)
    return f"{head}\n{body}" + (f"\n\nDefined in {source}" if source else "")


def doc(elt: Any) -> None:
    """Show the signature and docstring of `elt` (a function, class, method, property or module; any other object
    shows its class), and where it is defined: a Markdown block in a Jupyter notebook, else printed as
    `name(signature)` followed by the docstring. fastai's `doc`, without the need for nbdev.

    >>> def area(w: int, h: int = 1) -> int:
    ...     "The area of a `w` by `h` rectangle."
    ...     return w * h
    >>> doc(area)  # doctest: +ELLIPSIS
    area(w: int, h: int = 1) -> int
    The area of a `w` by `h` rectangle.
    <BLANKLINE>
    Defined in ...
    """
    if _in_notebook():
        from IPython.display import display

        display({"text/markdown": _markdown(elt), "text/plain": _plain(elt)}, raw=True)
        return
    print(_plain(elt))
