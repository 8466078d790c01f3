"""Code without an importable name, exported by value: lambdas, functions and classes defined in `__main__` (a
script or notebook) or inside a function.

A pickle stores a function as `module.name`, which a fresh process cannot find for a lambda or for a function of
the exporting script. `export` stores these by value instead, with cloudpickle (the optional extra
`tiers-train[cloudpickle]`, imported only when such code is met). `load_learner(..., trusted=True)` restores them,
which runs code from the file; a safe load refuses them, naming each one.
"""

import inspect
import pickle
import types
from typing import Any

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
    """`obj` as an error message names it: kind, qualified name and where it was defined."""
    kind = "class" if isinstance(obj, type) else "function"
    try:
        where = f"{inspect.getsourcefile(obj) or '?'}:{inspect.getsourcelines(obj)[1]}"
    except (OSError, TypeError):
        where = "?"
    return f"{kind} {obj.__qualname__} (module {obj.__module__}, {where})"


def _cloudpickle(obj: Any) -> Any:
    try:
        return require("cloudpickle", dist="tiers-train", extra="cloudpickle",
                       what=f"export of the {describe(obj)}, which has no importable name (a lambda, or defined in "
                            "__main__ or inside a function) and so is stored by value,")
    except ModuleNotFoundError as e:
        e.add_note("Or define it at the top level of a module and import it from there.")
        raise


def reduce_by_value(obj: Any, seen: list[str]) -> tuple:
    """The pickle reduction of `obj` by value (a cloudpickle payload), recording its description in `seen`."""
    desc = describe(obj)
    blob = _cloudpickle(obj).dumps(obj, protocol=4)
    seen.append(desc)
    return _load_by_value, (desc, blob)


def _load_by_value(desc: str, blob: bytes) -> Any:
    # Only a trusted load calls this: the payload is code.
    try:
        return pickle.loads(blob)
    except ImportError as e:
        e.add_note(f'while restoring the {desc} stored by value; restoring it needs cloudpickle: pip install "{_EXTRA}"')
        raise
