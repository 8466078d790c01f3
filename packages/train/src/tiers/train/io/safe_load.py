"""The safe-load allow-list of `load_learner`: which globals an export may name, and a restricted unpickler.

A pickle names globals (`module.name`) that the unpickler imports, and calls some of them to rebuild objects:
that is how a crafted pickle runs code. The safe load therefore resolves only these globals:

- everything in `tiers.*`, `torch`, `numpy` and `pandas` (minus functions that read, write or fetch files);
- a short list of plain stdlib types (`pathlib.Path`, `collections.OrderedDict`, `functools.partial`...);
- what a tiers layer declares safe in its `tiers.<layer>.safe_globals` module: a `SAFE_GLOBALS` tuple of dotted
  names (`"PIL.Image.Image"`) and of module prefixes ending in `.*` (`"torchvision.models.*"`: classes of that
  package); that module is read (never executed beyond its import) for each layer the export names;
- plain functions defined at the top level of the user's own modules (modules outside the standard library and
  site-packages, e.g. a `get_y` in `my_project/labels.py`) that the loading process has already imported:
  referenced by name, never called while loading. The safe load imports no module of the user's by itself (a
  `.py` file planted next to the export would run), and no installed package beyond those listed here;
- what the caller adds with `allowed=[obj or "module.name"]`.

Functions and classes of the exporting script's `__main__` (a script, a notebook) are found by name in the
loading process's `__main__`, as fastai does ("define the function before load_learner"): a function defined
there is used as a value, like a function of the user's own module, with a warning when its source differs from
the source stored in the export; a class defined there needs `allowed=[MyClass]`, like a class of the user's own
module (a class runs its code while loading). The look-up reads attributes statically (no property, descriptor or
`__getattr__` runs), and a name that leads to something `__main__` merely imported is judged where that object
really lives. When the name is absent, the code stored by value (see `by_value`) is restored only by
`trusted=True`, which runs that code; lambdas and code defined inside a function have no name and always need it.
Before unpickling anything, every global the pickle names is checked, so a refusal names ALL the offending globals
at once; the unpickler then checks each global again as it resolves it, and refuses to call anything but classes
and known rebuild helpers.
"""

import functools
import importlib
import importlib.util
import inspect
import os
import pickle
import pickletools
import re
import site
import sys
import sysconfig
import types
import warnings
from collections.abc import Iterable
from typing import Any, cast

import torch
from torch import nn

from tiers.train.io import by_value

__all__ = ["UnsafeExportError"]  # the rest is the machinery of load_learner

# Module prefixes whose classes may be rebuilt and whose functions may be referenced (as values).
_SAFE_ROOTS = {"torch", "numpy", "pandas"}  # and every `tiers.*` module
# Stdlib (module, name) pairs the pickles of ordinary objects need, and abstract types that type-dispatch tables
# (tiers transforms) keep as keys.
_SAFE_STDLIB = {
    ("builtins", n) for n in (
        "set", "frozenset", "slice", "range", "complex", "bytearray", "bytes", "object", "list", "dict", "tuple",
        "int", "float", "str", "bool", "print", "getattr", "type", "NoneType",
    )
} | {
    ("collections", n) for n in ("OrderedDict", "defaultdict", "Counter", "deque", "namedtuple")
} | {
    ("functools", "partial"), ("copyreg", "_reconstructor"), ("operator", "itemgetter"), ("operator", "attrgetter"),
    ("pathlib", "Path"), ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"), ("pathlib", "PurePosixPath"),
    ("pathlib", "PureWindowsPath"), ("pathlib", "PurePath"), ("datetime", "datetime"), ("datetime", "date"),
    ("datetime", "timedelta"), ("datetime", "timezone"), ("enum", "Enum"), ("re", "compile"), ("re", "_compile"), ("_codecs", "encode"),
    ("uuid", "UUID"), ("decimal", "Decimal"), ("fractions", "Fraction"), ("math", "inf"), ("random", "Random"),
    ("os", "PathLike"), ("io", "IOBase"), ("io", "BufferedIOBase"), ("io", "RawIOBase"), ("io", "TextIOBase"),
    ("types", "NoneType"), ("numbers", "Number"), ("numbers", "Integral"), ("numbers", "Real"),
    ("collections.abc", "Iterable"), ("collections.abc", "Sequence"), ("collections.abc", "Mapping"),
    ("collections.abc", "Callable"), ("collections.abc", "Generator"), ("collections.abc", "Iterator"),
    ("typing", "Any"), ("typing", "Union"), ("typing", "Optional"),
}
# Non-class callables the pickle may CALL (everything else it references is only a value).
# (`re._compile` is how a compiled pattern pickles: `from_name_re`'s labeller holds one.)
_CALLABLE_STDLIB = {("functools", "partial"), ("copyreg", "_reconstructor"), ("_codecs", "encode"), ("re", "compile"),
                    ("re", "_compile"),
                    ("operator", "itemgetter"), ("operator", "attrgetter")}
# Methods of C types (no Python function to inspect) that an export may keep as values: a compiled pattern's
# matchers (`from_name_re`/`RegexLabeller` keep `pattern.search`). Pure functions of their arguments.
_SAFE_C_METHODS = {re.Pattern: frozenset({"search", "match", "fullmatch", "findall", "finditer", "split", "sub", "subn"})}
# Functions that can read or write files or fetch/execute code: never loaded, even from allowed modules.
_DENY_NAMES = {"load", "save", "hub", "system", "exec", "eval", "compile_extension", "untar_data", "download_url",
               "save_model", "load_model", "load_learner", "export_learner", "from_file", "fromfile", "tofile",
               "read_pickle", "to_pickle", "read_csv", "to_csv", "loadtxt", "savetxt", "open", "memmap"}
# The helper that restores code stored by value (see `by_value`): resolvable, but only a trusted load calls it.
_BY_VALUE = ("tiers.train.io.by_value", "_load_by_value")


class UnsafeExportError(pickle.UnpicklingError):
    """Raised when an export refers to a global that the safe loader does not allow (a possible code-execution)."""


def _qual(o: Any) -> tuple[str, str]:
    return getattr(o, "__module__", "") or "", getattr(o, "__qualname__", getattr(o, "__name__", repr(o)))


def _module_ok(mod: str) -> bool:
    return mod.startswith("tiers.") or mod.split(".", 1)[0] in _SAFE_ROOTS


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    # Folders of the standard library and of installed packages (of this environment and the base one).
    paths = set(site.getsitepackages()) | {site.getusersitepackages()}
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        p = sysconfig.get_paths(vars=scheme_vars)
        paths |= {p["stdlib"], p["platstdlib"], p["purelib"], p["platlib"]}
    return tuple(os.path.realpath(p) for p in paths if p)


def _module_kind(mod: str) -> str:
    """"user" for one of the user's own modules (found outside the stdlib and site-packages), "missing" for a module
    that cannot be found here, else "installed". The module is located, not imported."""
    top = mod.split(".", 1)[0]
    if mod == "__main__" or top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "tiers":
        return "installed"
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return "missing"
    if spec is None:
        return "missing"
    where = spec.origin if spec.origin not in (None, "built-in", "frozen") else None
    if where is None and spec.submodule_search_locations:
        where = next(iter(spec.submodule_search_locations), None)
    if where is None:
        return "installed"
    where = os.path.realpath(where)
    return "installed" if any(where == r or where.startswith(r + os.sep) for r in _installed_roots()) else "user"


def main_object(qualname: str) -> Any:
    """What the loading process's `__main__` holds at the dotted `qualname`, read statically (no property,
    descriptor or `__getattr__` runs), or None."""
    obj: Any = sys.modules.get("__main__")
    if obj is None or not qualname or "<" in qualname:
        return None
    for part in qualname.split("."):
        if not part.isidentifier():
            return None
        obj = inspect.getattr_static(obj, part, None)
        if obj is None:
            return None
    return obj


def _layer_safe_globals(layer: str) -> tuple[set[tuple[str, str]], tuple[str, ...]]:
    # `tiers.<layer>.safe_globals.SAFE_GLOBALS`: dotted names, and module prefixes written "pkg.mod.*".
    try:
        mod = importlib.import_module(f"tiers.{layer}.safe_globals")
    except ModuleNotFoundError as e:
        if e.name != f"tiers.{layer}.safe_globals":
            raise
        return set(), ()
    names, prefixes = set(), []
    for entry in getattr(mod, "SAFE_GLOBALS", ()):
        if entry.endswith(".*"):
            prefixes.append(entry[:-2])
        else:
            m, _, n = entry.rpartition(".")
            names.add((m, n))
    return names, tuple(prefixes)


class _Policy:
    """Which globals a safe load resolves: the lists above, the layers' declarations, and `allowed`."""

    def __init__(self, allowed: Iterable = ()) -> None:
        self.allowed_objs: set[int] = set()
        self.allowed_names: set[tuple[str, str]] = set()
        for a in allowed:
            if isinstance(a, str):
                m, _, n = a.rpartition(".")
                self.allowed_names.add((m, n))
            else:
                self.allowed_objs.add(id(a))
                self.allowed_names.add(_qual(a))
        self.layer_names: set[tuple[str, str]] = set()
        self.layer_prefixes: tuple[str, ...] = ()
        self._layers: set[str] = set()
        self._kinds: dict[str, str] = {}

    def add_layer(self, module: str) -> None:
        """Read the safe globals declared by the tiers layer `module` belongs to (once per layer)."""
        parts = module.split(".")
        if parts[0] != "tiers" or len(parts) < 2 or parts[1] in self._layers:
            return
        self._layers.add(parts[1])
        names, prefixes = _layer_safe_globals(parts[1])
        self.layer_names |= names
        self.layer_prefixes += prefixes

    def explicit(self, obj: Any, mod: str, name: str) -> bool:
        return id(obj) in self.allowed_objs or (mod, name) in self.allowed_names

    def _by_layer(self, mod: str, name: str) -> bool:
        return (mod, name) in self.layer_names or any(mod == p or mod.startswith(p + ".") for p in self.layer_prefixes)

    def kind(self, mod: str) -> str:
        """`_module_kind(mod)`, cached."""
        if mod not in self._kinds:
            self._kinds[mod] = _module_kind(mod)
        return self._kinds[mod]

    def user(self, mod: str) -> bool:
        """Whether `mod` is one of the user's own modules."""
        return self.kind(mod) == "user"

    def main(self, qualname: str, kind: str | None = None) -> tuple[Any, str | None]:
        """The function or class (`kind`, None: either) that the loading process's `__main__` defines at
        `qualname`, and why a safe load may not use it (None: it may). `(None, "main")` when there is none."""
        obj = main_object(qualname)
        if not (isinstance(obj, type) if kind == "class" else isinstance(obj, types.FunctionType) if kind == "function"
                else isinstance(obj, (type, types.FunctionType))):
            return None, "main"
        real_mod, real_name = _qual(obj)
        if real_mod != "__main__":  # imported into __main__: judged where it lives
            return obj, self.name_problem(real_mod, real_name) or self.object_problem(obj, real_mod, real_name)
        if isinstance(obj, type) and not (self.explicit(obj, "__main__", qualname) or self.explicit(obj, real_mod, real_name)):
            return obj, "user_class"  # a class runs its code while loading: allowed=[...] only, as for your modules
        return obj, None

    def stored_code(self, desc: str) -> tuple[Any, str | None, str]:
        """For code stored by value with the description `desc` (see `by_value.describe`): the function or class the
        loading process's `__main__` defines under its name (or None), why a safe load may not use it (None: it may;
        "main": not defined here; "by_value": a lambda or closure, with no name to look up), and the name a refusal
        gives."""
        ref = by_value.named(desc)
        if ref is None or not ref.by_name:
            return None, "by_value", desc
        obj, why = self.main(ref.qualname, ref.kind)
        if why == "main":
            held = main_object(ref.qualname)
            note = (f"; this process's __main__.{ref.qualname} is not a {ref.kind} but a {type(held).__name__} object"
                    if held is not None else "")
            return None, why, desc + note
        return obj, why, ".".join(_qual(obj)) if why else ""

    def name_problem(self, mod: str, name: str) -> str | None:
        """Why `mod.name` may not be resolved, judged by its name alone (None: it may be imported and checked)."""
        if (mod, name) in self.allowed_names:
            return None
        if mod == "__main__":
            return self.main(name)[1]
        if name.rsplit(".", 1)[-1] in _DENY_NAMES:
            return "deny"
        if (mod, name) in _SAFE_STDLIB or _module_ok(mod) or self._by_layer(mod, name):
            return None
        if self.user(mod):
            # Your own code is trusted once YOU import it: a safe load never imports a module of yours by itself
            # (a .py file planted next to the export would run).
            return None if mod in sys.modules else "not_imported"
        return "missing" if self.kind(mod) == "missing" else "other"

    def object_problem(self, obj: Any, mod: str, name: str) -> str | None:
        """Why the resolved `obj` (named `mod.name`) may not be used (None: it may)."""
        if isinstance(obj, types.ModuleType):
            return "other"
        if mod == "__main__":
            found, why = self.main(name)
            return why if found is obj else "main"
        if (mod, name) in _SAFE_STDLIB or self.explicit(obj, mod, name) or self.explicit(obj, *_qual(obj)):
            return None
        if self._by_layer(mod, name):
            # a layer's "pkg.*" covers the classes and functions defined in pkg (functions are values: a safe load
            # calls only classes); a dotted name that walks out of pkg is judged where it lands
            real = getattr(obj, "__module__", None) or mod
            if (mod, name) in self.layer_names or self._by_layer(real, name) and isinstance(obj, (type, types.FunctionType)):
                return None
            return "other"
        if not isinstance(obj, type) and not callable(obj):
            return None  # a constant such as math.inf
        real = getattr(obj, "__module__", None) or mod
        if _module_ok(real) or isinstance(obj, types.BuiltinFunctionType) and _module_ok(mod):
            return None
        if self.user(mod) and real == mod:
            if isinstance(obj, types.FunctionType) and "<" not in obj.__qualname__:
                return None  # a top-level function of the user's own module: a value, never called while loading
            return "user_class"
        return "other"


def referenced_globals(data: bytes) -> list[tuple[str, str]]:
    """Every `(module, name)` the pickle `data` names, found by reading its opcodes (nothing is executed).

    Only a helper for reporting every refusal at once; the unpickler checks each global again when it resolves it.
    """
    found: list[tuple[str, str]] = []
    pushed: list[Any] = []  # values pushed by the opcodes, as far as strings matter (other values: None)
    memo: dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                mod, _, nm = str(arg).partition(" ")
                found.append((mod, nm))
                pushed.append(None)
            elif name == "STACK_GLOBAL":
                smod, snm = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
                if isinstance(smod, str) and isinstance(snm, str):
                    found.append((smod, snm))
                pushed.append(None)
            elif name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[cast(int, arg)] = pushed[-1] if pushed else None  # these opcodes always carry the memo index
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(cast(int, arg)))
            elif isinstance(arg, str) and op.stack_after:
                pushed.append(arg)
            elif op.stack_after:
                pushed.append(None)
    except (ValueError, pickle.UnpicklingError):
        pass  # a malformed pickle: the unpickler will report it
    return list(dict.fromkeys(found))


def _describe(problems: dict[str, list[str]]) -> str:
    parts = []
    if problems.get("main"):
        parts.append(f"functions or classes of the exporting script or notebook (its __main__) that this process does "
                     f"not define: {', '.join(problems['main'])}. Define each, with the same name, in this script or "
                     "notebook before calling load_learner (as with fastai): it is then used by name and no code from "
                     "the file runs (a class defined so also needs `allowed=[TheClass]`)")
    if problems.get("by_value"):
        parts.append(f"code stored by value that has no name to look up (lambdas, and functions or classes defined "
                     f"inside a function): {', '.join(problems['by_value'])}. A safe load never runs code from the "
                     "file; restoring these runs code from the file, which only `trusted=True` does (or define them "
                     "with `def` at the top level of the exporting script or of a module, and export again)")
    if problems.get("missing"):
        parts.append(f"globals of modules that cannot be found here: {', '.join(problems['missing'])} (install "
                     "them, or add the folder of your own module to sys.path / PYTHONPATH, then load again)")
    if problems.get("main_ref"):
        parts.append(f"references to the exporting script's __main__ that this process does not define: "
                     f"{', '.join(problems['main_ref'])} (define each, with the same name, in this script or notebook "
                     "before calling load_learner, or import it from a module there)")
    if problems.get("not_imported"):
        mods = sorted({n.rsplit(".", 1)[0] for n in problems["not_imported"]})
        parts.append(f"functions of your own modules that this process has not imported: "
                     f"{', '.join(problems['not_imported'])} (a safe load never imports your modules by itself, "
                     f"since a .py file next to the export would run: `import {', '.join(mods)}` first)")
    if problems.get("user_class"):
        parts.append(f"classes of your own modules (or of this script's __main__), which run their code while loading: "
                     f"{', '.join(problems['user_class'])}")
    if problems.get("deny"):
        parts.append(f"functions that read, write or fetch files or run code: {', '.join(problems['deny'])}")
    if problems.get("other"):
        parts.append(f"globals outside the allow-list (tiers, torch, numpy, pandas, plain stdlib types and what "
                     f"tiers layers declare safe): {', '.join(problems['other'])}")
    names = [n for k in ("user_class", "other", "deny") for n in problems.get(k, [])]
    hint = ", ".join(repr(n) for n in names[:6])
    msg = "load_learner refused the export: it holds " + "; ".join(parts) + "."
    if not names and not problems.get("by_value") and not problems.get("main"):
        return msg  # only modules missing here or absent __main__ names: neither allowed= nor trusted= would help
    fix = f"pass `allowed=[{hint}]` (or the objects themselves) to allow exactly these, or " if names else "pass "
    return msg + (f" If you made this file (or trust who did), {fix}`trusted=True` to allow anything, restoring the "
                  "code stored in the file (trusted=True runs code from the file).")


def check_globals(data: bytes, policy: _Policy, by_value: Iterable[str] = ()) -> None:
    """Raise one `UnsafeExportError` naming every global of pickle `data` that `policy` refuses, and the code
    stored by value (`by_value`: its descriptions from the export's manifest)."""
    refs = referenced_globals(data)
    for mod, _ in refs:
        policy.add_layer(mod)
    problems: dict[str, list[str]] = {}
    if _BY_VALUE in refs:  # the unpickler checks each piece of code again as it meets it
        for desc in list(by_value) or ["code of unknown origin"]:
            _, why, entry = policy.stored_code(desc)
            if why is not None:
                problems.setdefault(why, []).append(entry)
    for mod, name in refs:
        if (mod, name) == _BY_VALUE:
            continue
        why = policy.name_problem(mod, name)
        if why == "main":
            why = "main_ref"  # a plain reference: no code stored, so trusted=True would not help
        if why is None and policy.user(mod) and (mod, name) not in policy.allowed_names:
            # the user's own module (already imported): tell a function from a class
            try:
                obj = getattr(sys.modules[mod], name.split(".")[0])  # imported by the user: nothing runs
                for part in name.split(".")[1:]:
                    obj = getattr(obj, part)
            except (ImportError, AttributeError):
                continue  # the unpickler reports it, with the module's own error
            why = policy.object_problem(obj, mod, name)
        if why is not None:
            problems.setdefault(why, []).append(f"{mod}.{name}")
    if set(problems) == {"missing"}:  # nothing unsafe: code the export needs is not installed here
        raise ModuleNotFoundError(_describe(problems), name=problems["missing"][0].split(".")[0])
    if problems:
        raise UnsafeExportError(_describe(problems))


def _callable_helper_ok(obj: Any, mod: str, name: str) -> bool:
    # Functions from allowed libraries that pickles call to rebuild objects.
    short = name.rsplit(".", 1)[-1]
    if mod.startswith("torch"):
        return mod == "torch._utils" and short.startswith("_rebuild") and "from_bytes" not in short
    if mod.startswith(("numpy", "pandas")):
        return any(k in short for k in ("_reconstruct", "unpickle", "_new_", "scalar", "_frombuffer", "__newobj__"))
    if mod.startswith("tiers."):
        return short.startswith(("_rebuild", "_new", "_Callee")) or short == "_Callee"
    return False


class SafeUnpickler(pickle._Unpickler):  # the pure-Python unpickler: its REDUCE step can be checked
    """Unpickler that resolves only allow-listed globals and calls only classes and rebuild helpers.

    Tensors come from `tensors` (the export's safetensors member) through persistent references.
    """

    dispatch = dict(pickle._Unpickler.dispatch)
    stack: list[Any]  # the pure-Python unpickler's value stack (typeshed does not declare it)

    def __init__(self, file: Any, tensors: dict[str, torch.Tensor], policy: _Policy, trusted: bool = False):
        super().__init__(file)
        self._tensors, self._trusted, self._policy = tensors, trusted, policy

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._find_class(module, name)
        except (ImportError, AttributeError) as e:
            e.add_note(f"load_learner: the export refers to {module}.{name}, which this environment cannot import; "
                       "install its package, or add the folder of your own module to sys.path, then load again")
            raise

    def _find_class(self, module: str, name: str) -> Any:
        if self._trusted:
            return super().find_class(module, name)
        self._policy.add_layer(module)
        why = self._policy.name_problem(module, name)
        if why is not None:
            raise UnsafeExportError(_describe({"main_ref" if why == "main" else why: [f"{module}.{name}"]}))
        if module == "__main__" and (module, name) not in self._policy.allowed_names:
            return self._policy.main(name)[0]  # found statically above, and allowed
        obj = super().find_class(module, name)
        why = None if (module, name) in self._policy.allowed_names else self._policy.object_problem(obj, module, name)
        if why is not None:
            real = _qual(obj) if isinstance(obj, type) else (module, name)
            raise UnsafeExportError(_describe({why: [".".join(real)]}))
        return obj

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "tensor"):
            raise pickle.UnpicklingError(f"load_learner: unknown persistent reference {pid!r} in the export")
        _, key, cls, requires_grad, meta = pid
        if key not in self._tensors:
            raise ValueError(f"load_learner: the export's pickle refers to tensor {key!r}, missing from its weights")
        t = self._tensors[key]
        if cls is nn.Parameter:
            return nn.Parameter(t, requires_grad=requires_grad)
        if cls is not torch.Tensor:
            if not (isinstance(cls, type) and issubclass(cls, torch.Tensor)):
                raise UnsafeExportError(f"load_learner: tensor {key!r} claims the non-tensor type {cls!r}")
            t = t.as_subclass(cls)
            if meta:
                t.__dict__.update(meta)
        return t.requires_grad_(requires_grad) if t.is_floating_point() else t

    def _checked_call(self, func: Any, args: tuple) -> None:
        if self._trusted or isinstance(func, type):
            return
        mod, name = _qual(func)
        if self._policy.explicit(func, mod, name) or (mod, name) in _CALLABLE_STDLIB or _callable_helper_ok(func, mod, name):
            return
        if func is getattr:  # tiers' transform methods pickle as getattr(TransformClass, "_encm")
            if len(args) == 2 and isinstance(args[0], type) and isinstance(args[1], str) and not args[1].startswith("__"):
                return
            if len(args) == 2 and self._bound_method_ok(args[0], args[1]):
                return  # a bound method kept as a value (vision's augmentations: getattr(<Rotate>, "_mat"))
        raise UnsafeExportError(
            f"load_learner refused to call {mod}.{name} while loading: only classes and rebuild helpers may be "
            "called by a safe load. If you trust this file, pass `trusted=True` to load_learner."
        )

    def _bound_method_ok(self, obj: Any, name: Any) -> bool:
        """Whether `getattr(obj, name)` only hands out a bound method: `obj` is an instance of a class this load
        allows, `name` is not a dunder nor a file/code function of `_DENY_NAMES`, and it names a plain Python
        function defined on that class (found without running anything: no property, descriptor or `__getattr__`,
        not shadowed by the instance). The method is a value; calling it later is checked like any other call."""
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__") or name in _DENY_NAMES:
            return False
        cls = type(obj)
        if name in _SAFE_C_METHODS.get(cls, ()):
            return True
        if isinstance(obj, type) or cls.__getattribute__ is not object.__getattribute__:
            return False
        mod, qual = _qual(cls)
        if self._policy.name_problem(mod, qual) is not None or self._policy.object_problem(cls, mod, qual) is not None:
            return False
        try:
            attr = inspect.getattr_static(cls, name)
        except AttributeError:
            return False
        if not isinstance(attr, types.FunctionType):
            return False
        try:
            inst_dict = object.__getattribute__(obj, "__dict__")  # never the class's own __getattr__
        except AttributeError:
            inst_dict = None
        return not (isinstance(inst_dict, dict) and name in inst_dict)

    def _stored_code(self, args: Any) -> Any:
        """The object for code stored by value (the arguments of `by_value._load_by_value`): what the loading
        process's `__main__` defines under its name, else (trusted loads only) the stored code itself."""
        if not (isinstance(args, tuple) and len(args) in (2, 3) and isinstance(args[0], str)
                and isinstance(args[1], bytes) and (len(args) == 2 or isinstance(args[2], (str, type(None))))):
            raise UnsafeExportError("load_learner: the export holds a malformed piece of code stored by value; "
                                    "export the learner again")
        desc = args[0]
        found, why, entry = self._policy.stored_code(desc)
        if found is not None and (why is None or self._trusted):
            diff = by_value.source_diff(args[2] if len(args) == 3 else None, found)
            if diff is not None:
                warnings.warn(
                    f"load_learner: the export stores the {desc}; this process's __main__ defines "
                    f"{found.__qualname__} differently ({by_value.where(found)}), and that definition is used (as "
                    f"fastai does). Difference:\n{diff}", UserWarning, stacklevel=2)
            return found
        if self._trusted:
            return by_value._load_by_value(*args)
        raise UnsafeExportError(_describe({why or "by_value": [entry]}))

    def load_reduce(self) -> None:
        args = self.stack[-1]
        func = self.stack[-2]
        if func is by_value._load_by_value:  # never called by a safe load: the code is looked up by name instead
            self.stack.pop()
            self.stack[-1] = self._stored_code(args)
            return
        self._checked_call(func, args)
        super().load_reduce()  # type: ignore[misc]  # pickle._Unpickler's opcode handlers exist; typeshed omits them

    def _instantiate(self, klass: Any, args: list) -> None:
        # The INST and OBJ opcodes (protocols 0 and 1) call `klass(*args)` without going through REDUCE: the same
        # checks apply to them.
        if klass is by_value._load_by_value:
            self.stack.append(self._stored_code(tuple(args)))
            return
        self._checked_call(klass, tuple(args))
        super()._instantiate(klass, args)  # type: ignore[misc]  # pickle._Unpickler's helper; typeshed omits it

    def load_newobj(self) -> None:
        # NEWOBJ calls `cls.__new__(cls, *args)`: only for a class (anything else could hand out a callable).
        if not self._trusted and not isinstance(self.stack[-2], type):
            raise UnsafeExportError(f"load_learner: the export asks to create an object of {self.stack[-2]!r}, "
                                    "which is not a class")
        super().load_newobj()  # type: ignore[misc]  # pickle._Unpickler's opcode handlers exist; typeshed omits them

    def load_newobj_ex(self) -> None:
        if not self._trusted and not isinstance(self.stack[-3], type):
            raise UnsafeExportError(f"load_learner: the export asks to create an object of {self.stack[-3]!r}, "
                                    "which is not a class")
        super().load_newobj_ex()  # type: ignore[misc]  # pickle._Unpickler's opcode handlers exist; typeshed omits them

    dispatch[pickle.REDUCE[0]] = load_reduce  # type: ignore[assignment]  # a handler of this subclass, as the base's are of it
    dispatch[pickle.NEWOBJ[0]] = load_newobj  # type: ignore[assignment]  # as above
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex  # type: ignore[assignment]  # as above


def policy(allowed: Iterable = ()) -> _Policy:
    """The allow-list of a safe load, extended by `allowed` (objects or "module.name" strings)."""
    return _Policy(allowed)

