"""Export a `Learner` for inference (`learn.export`) and load it back safely (`load_learner`).

The file is a zip archive of three members: `manifest.json` (format, sizes, SHA-256 of the others),
`tensors.safetensors` (every tensor: weights, buffers, normalisation statistics) and `learner.pkl`
(the learner with `dls.new_empty()`, no optimizer and no training data, whose tensors are references
into the safetensors member). Loading is safe by default: the pickle is read by a restricted
unpickler that only resolves allow-listed globals (tiers, torch, numpy, pandas and a few stdlib types)
and only *calls* classes and a short list of rebuild helpers, so a crafted file cannot run code.

>>> learn.export("export.pkl")                               # doctest: +SKIP
>>> learn = load_learner("models/export.pkl")                # doctest: +SKIP
>>> learn = load_learner("export.pkl", allowed=[MyModel])    # a model class defined outside tiers/torch
"""

import hashlib
import io
import json
import os
import pickle
import tempfile
import types
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["load_learner", "UnsafeExportError", "export_learner"]

_FORMAT = "tiers-export/1"
_MEMBERS = ("manifest.json", "tensors.safetensors", "learner.pkl")

# Module prefixes whose classes may be rebuilt and whose functions may be referenced (as values).
_SAFE_ROOTS = {"torch", "numpy", "pandas"}  # and every `tiers.*` module
# Stdlib (module, name) pairs the pickles of ordinary objects need.
_SAFE_STDLIB = {
    ("builtins", n) for n in (
        "set", "frozenset", "slice", "range", "complex", "bytearray", "bytes", "object", "list", "dict", "tuple",
        "int", "float", "str", "bool", "print", "getattr",
    )
} | {
    ("collections", n) for n in ("OrderedDict", "defaultdict", "Counter", "deque", "namedtuple")
} | {
    ("functools", "partial"), ("copyreg", "_reconstructor"), ("operator", "itemgetter"), ("operator", "attrgetter"),
    ("pathlib", "Path"), ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"), ("pathlib", "PurePosixPath"),
    ("pathlib", "PureWindowsPath"), ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("enum", "Enum"), ("re", "compile"), ("_codecs", "encode"), ("uuid", "UUID"),
    ("decimal", "Decimal"), ("fractions", "Fraction"), ("math", "inf"), ("random", "Random"),
}
# Non-class callables the pickle may CALL (everything else it references is only a value).
_CALLABLE_STDLIB = {("functools", "partial"), ("copyreg", "_reconstructor"), ("_codecs", "encode"), ("re", "compile"),
                    ("operator", "itemgetter"), ("operator", "attrgetter")}
# Functions that can read or write files or fetch/execute code: never loaded, even from allowed modules.
_DENY_NAMES = {"load", "save", "hub", "system", "exec", "eval", "compile_extension", "untar_data", "download_url",
               "save_model", "load_model", "load_learner", "export_learner", "from_file", "fromfile", "tofile",
               "read_pickle", "to_pickle", "read_csv", "to_csv", "loadtxt", "savetxt", "open", "memmap"}


class UnsafeExportError(pickle.UnpicklingError):
    """Raised when an export refers to a global that the safe loader does not allow (a possible code-execution)."""


def _qual(o: Any) -> tuple[str, str]:
    return getattr(o, "__module__", "") or "", getattr(o, "__qualname__", getattr(o, "__name__", repr(o)))


def _module_ok(mod: str) -> bool:
    return mod.startswith("tiers.") or mod.split(".", 1)[0] in _SAFE_ROOTS


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


class _SafeUnpickler(pickle._Unpickler):  # the pure-Python unpickler: its REDUCE step can be checked
    """Unpickler that resolves only allow-listed globals and calls only classes and rebuild helpers."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: Any, tensors: dict[str, torch.Tensor], allowed: Iterable = (), trusted: bool = False):
        super().__init__(file)
        self._tensors, self._trusted = tensors, trusted
        self._allowed_objs: set[int] = set()
        self._allowed_names: set[tuple[str, str]] = set()
        for a in allowed:
            if isinstance(a, str):
                mod, _, nm = a.rpartition(".")
                self._allowed_names.add((mod, nm))
            else:
                self._allowed_objs.add(id(a))
                self._allowed_names.add(_qual(a))

    def _explicit(self, obj: Any, mod: str, name: str) -> bool:
        return id(obj) in self._allowed_objs or (mod, name) in self._allowed_names

    def find_class(self, module: str, name: str) -> Any:
        if self._trusted:
            return super().find_class(module, name)
        explicit_name = (module, name) in self._allowed_names
        if not (explicit_name or (module, name) in _SAFE_STDLIB or _module_ok(module)):
            raise self._refuse(module, name)
        if name.rsplit(".", 1)[-1] in _DENY_NAMES and not explicit_name:
            raise self._refuse(module, name)
        obj = super().find_class(module, name)
        if isinstance(obj, types.ModuleType):
            raise self._refuse(module, name)
        # A dotted name may walk out of an allowed module (`tiers.x` + `os.system`): check where it lands.
        real_mod = getattr(obj, "__module__", None) or module
        if (module, name) not in _SAFE_STDLIB and not explicit_name and not self._explicit(obj, *_qual(obj)):
            if not isinstance(obj, type) and not callable(obj):
                pass  # a constant such as math.inf
            elif not (_module_ok(real_mod) or isinstance(obj, types.BuiltinFunctionType) and _module_ok(module)):
                raise self._refuse(real_mod, name)
        return obj

    def _refuse(self, module: str, name: str) -> UnsafeExportError:
        return UnsafeExportError(
            f"load_learner refused the global {module}.{name}: it is not on the safe-load allow-list (tiers, torch, "
            f"numpy, pandas and plain stdlib types). If you made this file and trust it, pass "
            f"`allowed=['{module}.{name}']` (or the class itself) to load_learner, or `trusted=True` to allow anything."
        )

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
        if self._explicit(func, mod, name) or (mod, name) in _CALLABLE_STDLIB or _callable_helper_ok(func, mod, name):
            return
        if func is getattr:  # tiers' transform methods pickle as getattr(TransformClass, "_encm")
            if len(args) == 2 and isinstance(args[0], type) and isinstance(args[1], str) and not args[1].startswith("__"):
                return
        raise UnsafeExportError(
            f"load_learner refused to call {mod}.{name} while loading: only classes and rebuild helpers may be "
            "called by a safe load. If you trust this file, pass `trusted=True` to load_learner."
        )

    def load_reduce(self) -> None:
        args = self.stack[-1]
        func = self.stack[-2]
        self._checked_call(func, args)
        super().load_reduce()

    dispatch[pickle.REDUCE[0]] = load_reduce


class _TensorPickler(pickle.Pickler):
    # Tensors leave the pickle: each becomes a reference into the safetensors member.
    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=4)
        self.tensors: dict[str, torch.Tensor] = {}
        self._ids: dict[int, str] = {}

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, torch.Tensor):
            return None
        key = self._ids.get(id(obj))
        if key is None:
            key = f"t{len(self._ids)}"
            self._ids[id(obj)] = key
            # clone: safetensors refuses tensors that share storage (views, tied weights held twice)
            self.tensors[key] = obj.detach().to("cpu").as_subclass(torch.Tensor).contiguous().clone()
        meta = dict(getattr(obj, "__dict__", {}) or {}) if type(obj) not in (torch.Tensor, nn.Parameter) else {}
        return ("tensor", key, type(obj), bool(obj.requires_grad), meta)


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def export_learner(learn: Any, fname: str | Path, pickle_protocol: int = 4) -> Path:
    """Write what inference needs from `learn` to `fname` (see the module doc); returns the path written."""
    from safetensors.torch import save as st_save

    fname = Path(fname)
    dls, opt = learn.dls, learn.opt
    empty = dls.new_empty() if hasattr(dls, "new_empty") else None
    if empty is None:
        raise TypeError(
            f"export: learn.dls is a {type(dls).__name__} without `new_empty()`; wrap your loaders in "
            "tiers.data.DataLoaders so export can keep the transforms without the data"
        )
    try:
        learn.dls, learn.opt = empty, None
        buf = io.BytesIO()
        pk = _TensorPickler(buf)
        pk.dump(learn)
    finally:
        learn.dls, learn.opt = dls, opt
    pkl = buf.getvalue()
    st = st_save(pk.tensors)
    manifest = {"format": _FORMAT, "torch": torch.__version__, "learner.pkl": _sha(pkl),
                "tensors.safetensors": _sha(st), "n_tensors": len(pk.tensors)}
    fname.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{fname.name}.", dir=fname.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            z.writestr("manifest.json", json.dumps(manifest))
            z.writestr("tensors.safetensors", st)
            z.writestr("learner.pkl", pkl)
        os.replace(tmp, fname)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return fname


def _read(fname: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(fname) as z:
            names = set(z.namelist())
            missing = [m for m in _MEMBERS if m not in names]
            if missing:
                raise ValueError(f"load_learner: {fname} is a zip file but not a tiers export (missing {missing})")
            return {m: z.read(m) for m in _MEMBERS}
    except zipfile.BadZipFile as e:
        raise ValueError(
            f"load_learner: {fname} is truncated or corrupted, or not a tiers export ({e}); export the learner again"
        ) from e
    except zlib.error as e:
        raise ValueError(f"load_learner: {fname} is corrupted ({e}); export the learner again") from e


def load_learner(
    fname: str | Path, cpu: bool = True, pickle_module: Any = None, trusted: bool = False, allowed: Iterable = (),
) -> Any:
    """Load a learner written by `Learner.export` from `fname`, on the CPU when `cpu` (else the default device).

    Safe by default: only allow-listed globals are rebuilt (tiers, torch, numpy, pandas, plain stdlib types);
    a model class from your own module needs `allowed=[MyModel]` (or its dotted name), and `trusted=True`
    accepts anything (only for files you made). Truncated or corrupted files raise `ValueError`.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    fname = Path(fname)
    if not fname.exists():
        raise FileNotFoundError(f"load_learner: no file at {fname}; check the path (export writes to learn.path)")
    if fname.is_dir():
        found = sorted(p.name for p in fname.glob("*.pkl"))
        raise IsADirectoryError(f"load_learner: {fname} is a folder; pass the exported file in it, e.g. "
                                f"{fname / (found[0] if found else 'export.pkl')}"
                                f"{' (its .pkl files: ' + ', '.join(found[:5]) + ')' if found else ''}")
    parts = _read(fname)
    try:
        manifest = json.loads(parts["manifest.json"])
    except ValueError as e:
        raise ValueError(f"load_learner: {fname} has an unreadable manifest ({e}); export the learner again") from e
    if manifest.get("format") != _FORMAT:
        raise ValueError(f"load_learner: {fname} has format {manifest.get('format')!r}, this version reads {_FORMAT!r}")
    for m in ("learner.pkl", "tensors.safetensors"):
        if manifest.get(m) != _sha(parts[m]):
            raise ValueError(f"load_learner: {fname} is corrupted ({m} fails its checksum); export the learner again")
    try:
        tensors = st_load(parts["tensors.safetensors"])
    except SafetensorError as e:
        raise ValueError(f"load_learner: the weights in {fname} are unreadable ({e})") from e
    up = _SafeUnpickler(io.BytesIO(parts["learner.pkl"]), tensors, allowed=allowed, trusted=trusted)
    learn = up.load()
    from tiers.train.learner import Learner  # the Learner builds on this module, so import it when called

    if not isinstance(learn, Learner):
        raise TypeError(f"load_learner: {fname} holds a {type(learn).__name__}, not a Learner")
    if not cpu and torch.cuda.is_available():
        learn.model.to("cuda")
        if hasattr(learn.dls, "to"):
            learn.dls.to("cuda")
    elif hasattr(learn.dls, "cpu"):
        learn.dls.cpu()
    return learn
