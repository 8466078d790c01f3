"""Code without an importable name, exported by value: lambdas, functions and classes defined in `__main__` (a
script or notebook) or inside a function.

A pickle stores a function as `module.name`, which a fresh process cannot find for a lambda or for a function of
the exporting script. `export` stores these by value instead, with cloudpickle (the optional extra
`tiers-train[cloudpickle]`, imported only when such code is met), together with their description (kind, qualified
name, module, file:line) and, for a function or class of `__main__`, its source text.

Loading (`tiers.train.io.safe_load`) first looks a function or class of `__main__` up by its qualified name in the
loading process's `__main__` (fastai's by-reference rule: "define the function before load_learner"), warning when
its source differs from the stored one; only `load_learner(..., trusted=True)` restores the stored code, which runs
code from the file. Lambdas and functions or classes defined inside a function have no name to look up.
"""

import difflib
import inspect
import pickle
import re
import textwrap
import types
from typing import Any, NamedTuple

from tiers.dispatch.extras import require

__all__: list[str] = []  # the machinery of export / load_learner

_EXTRA = "tiers-train[cloudpickle]"


def needs_by_value(obj: Any) -> bool:
    """Whether `obj` is a function or class that a fresh process could not import by its name."""
    if not isinstance(obj, (types.FunctionType, type)):
        return False
    qual = getattr(obj, "__qualname__", "")
    return getattr(obj, "__module__", None) == "__main__" or "<lambda>" in qual or "<locals>" in qual


def describe(obj: Any) -> str:
    """`obj` as an error message names it: kind, qualified name and where it was defined.

    The form `"<function|class> <qualname> (module <module>, <file>:<line>)"` is also what `named` reads back."""
    kind = "class" if isinstance(obj, type) else "function"
    return f"{kind} {obj.__qualname__} (module {obj.__module__}, {where(obj)})"


def where(obj: Any) -> str:
    """`file:line` where the function or class `obj` was defined, or "?" when Python does not know."""
    try:
        return f"{inspect.getsourcefile(obj) or '?'}:{inspect.getsourcelines(obj)[1]}"
    except (OSError, TypeError):
        return "?"


class Named(NamedTuple):
    """What a description written by `describe` says: the code's kind, module and qualified name."""

    kind: str
    module: str
    qualname: str

    @property
    def by_name(self) -> bool:
        """Whether the loading process can look this code up by name: a function or class of `__main__` (a lambda
        or anything defined inside a function has no name to look up)."""
        return self.module == "__main__" and "<" not in self.qualname and bool(self.qualname)


_DESCRIPTION = re.compile(r"(function|class) (\S+) \(module (\S+), ")


def named(desc: str) -> Named | None:
    """The kind, module and qualified name in a description written by `describe` (None if it is not one)."""
    m = _DESCRIPTION.match(desc)
    return Named(m[1], m[3].rstrip(","), m[2]) if m else None


def source_of(obj: Any) -> str | None:
    """The source text of the function or class `obj`, dedented; None when Python cannot find it (code typed at an
    interactive prompt or passed to `python -c`)."""
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return None


def source_diff(stored: str | None, obj: Any, max_lines: int = 20) -> str | None:
    """A short unified diff from the `stored` source to the source of `obj`, or None when they are the same or
    either is unknown (a warning is cheap to give only when both texts are at hand)."""
    here = source_of(obj)
    if stored is None or here is None or stored.strip() == here.strip():
        return None
    lines = list(difflib.unified_diff(stored.strip().splitlines(), here.strip().splitlines(),
                                      "exported", "this process", lineterm="", n=1))
    more = len(lines) - max_lines
    return "\n".join(lines[:max_lines] + ([f"... ({more} more lines)"] if more > 0 else []))


def _cloudpickle(obj: Any) -> Any:
    try:
        return require("cloudpickle", dist="tiers-train", extra="cloudpickle",
                       what=f"export of the {describe(obj)}, which has no importable name (a lambda, or defined in "
                            "__main__ or inside a function) and so is stored by value,")
    except ModuleNotFoundError as e:
        e.add_note("Or define it at the top level of a module and import it from there.")
        raise


def reduce_by_value(obj: Any, seen: list[str]) -> tuple:
    """The pickle reduction of `obj` by value (a cloudpickle payload), recording its description in `seen`.

    A function or class of `__main__` also keeps its source text, so that a load which finds it by name can tell
    whether the loading process defines the same code."""
    desc = describe(obj)
    blob = _cloudpickle(obj).dumps(obj, protocol=4)
    seen.append(desc)
    ref = named(desc)
    if ref is not None and ref.by_name:
        return _load_by_value, (desc, blob, source_of(obj))
    return _load_by_value, (desc, blob)


def _load_by_value(desc: str, blob: bytes, source: str | None = None) -> Any:
    # Only a trusted load restores the payload (it is code); the safe unpickler never calls this function, it looks
    # a `__main__` name up itself (`safe_load.SafeUnpickler`). `source` is for that look-up's warning.
    try:
        return pickle.loads(blob)
    except ImportError as e:
        e.add_note(f'while restoring the {desc} stored by value; restoring it needs cloudpickle: pip install "{_EXTRA}"')
        raise
