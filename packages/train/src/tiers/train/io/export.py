"""Export a `Learner` for inference (`learn.export`) and load it back safely (`load_learner`).

The file is a zip archive of three members: `manifest.json` (format, sizes, SHA-256 of the others, and the code
stored by value), `tensors.safetensors` (every tensor: weights, buffers, normalisation statistics) and
`learner.pkl` (the learner with `dls.new_empty()`, no optimizer and no training data, whose tensors are
references into the safetensors member). It lands where `tiers.train.io.paths` says (`<path>/models/export.pkl`
by default) and is written atomically.

Loading is safe by default (`tiers.train.io.safe_load`): only allow-listed globals are resolved and only classes
and rebuild helpers are called, so a crafted file cannot run code; every refused global is named in one error.
Lambdas and functions or classes of `__main__` are stored by value (`tiers.train.io.by_value`, needs the extra
`tiers-train[cloudpickle]`). A function of `__main__` loads safely wherever the loading process defines the same
name (fastai's rule: define `label_func` before `load_learner`; a class so defined needs `allowed=[MyClass]`); the
stored code itself is restored only by `load_learner(..., trusted=True)`.

>>> learn.export()                                            # doctest: +SKIP
>>> learn = load_learner("models/export.pkl")                 # doctest: +SKIP
>>> learn = load_learner("export.pkl", allowed=[MyModel])     # a model class of your own module
"""

import hashlib
import io
import json
import pickle
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tiers.dispatch.files import atomic_write
from tiers.train.io.by_value import needs_by_value, reduce_by_value
from tiers.train.io.paths import learner_file, write_once
from tiers.train.io.safe_load import SafeUnpickler, UnsafeExportError, check_globals, policy

__all__ = ["load_learner", "UnsafeExportError", "export_learner"]

_FORMAT = "tiers-export/1"
_MEMBERS = ("manifest.json", "tensors.safetensors", "learner.pkl")


class _TensorPickler(pickle.Pickler):
    # Tensors leave the pickle: each becomes a reference into the safetensors member. Code without an importable
    # name is stored by value.
    def __init__(self, file: Any, protocol: int = 4) -> None:
        super().__init__(file, protocol=protocol)
        self.tensors: dict[str, torch.Tensor] = {}
        self._ids: dict[int, str] = {}
        self.by_value: list[str] = []

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

    def reducer_override(self, obj: Any) -> Any:
        if needs_by_value(obj):
            return reduce_by_value(obj, self.by_value)
        return NotImplemented


def sha256_hex(b: bytes) -> str:
    """The SHA-256 of `b` in hex: what a manifest records for each member of an archive."""
    return hashlib.sha256(b).hexdigest()


_sha = sha256_hex


def check_manifest(parts: dict[str, bytes], fname: Path, fmt: str, members: tuple[str, ...], who: str,
                   redo: str) -> dict[str, Any]:
    """The manifest of an archive read into `parts` (member name -> bytes), checked: readable JSON, of format `fmt`,
    and each of `members` matching its recorded SHA-256. Errors name `who` (the loading function), the file and
    `redo` (how to make a good one). Shared by `load_learner` and tabular's `load_pandas`."""
    try:
        manifest = json.loads(parts["manifest.json"])
    except ValueError as e:
        raise ValueError(f"{who}: {fname} has an unreadable manifest ({e}); {redo}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise ValueError(f"{who}: {fname} has format {got!r}, this version reads {fmt!r}")
    for m in members:
        if manifest.get(m) != sha256_hex(parts[m]):
            raise ValueError(f"{who}: {fname} is corrupted ({m} fails its checksum); {redo}")
    return manifest


def _pickled(learn: Any, pickle_protocol: int) -> tuple[bytes, bytes, list[str], int]:
    from safetensors.torch import save as st_save

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
        pk = _TensorPickler(buf, protocol=pickle_protocol)
        try:
            pk.dump(learn)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            _note_culprit_callbacks(learn, e, pickle_protocol)
            e.add_note("export: this part of the learner cannot be pickled; define the functions and classes it uses "
                       "at the top level of a module (or in __main__, stored by value with tiers-train[cloudpickle])")
            raise
    finally:
        learn.dls, learn.opt = dls, opt
    return buf.getvalue(), st_save(pk.tensors), pk.by_value, len(pk.tensors)


def _note_culprit_callbacks(learn: Any, exc: BaseException, pickle_protocol: int) -> None:
    # A raw pickle error ("cannot pickle '_csv.writer' object") names no callback: find which ones fail alone.
    bad = []
    for cb in list(getattr(learn, "cbs", None) or []):
        getstate = getattr(cb, "__getstate__", None)
        state = getstate() if callable(getstate) else vars(cb)
        try:  # without its `learn`: the learner as a whole is what failed
            state = {k: v for k, v in state.items() if k != "learn"} if isinstance(state, dict) else state
            _TensorPickler(io.BytesIO(), protocol=pickle_protocol).dump((type(cb), state))
        except Exception:  # noqa: BLE001 - any failure makes this callback the culprit
            bad.append(cb)
    for cb in bad:
        name = type(cb).__name__
        exc.add_note(f"export: the callback {name} cannot be pickled (it holds run-time state such as an open file "
                     f"or a figure); remove it before exporting with `learn.remove_cb({name})`, or pass it to "
                     f"`fit(..., cbs=[{name}(...)])` for one fit instead of the Learner's cbs")


def export_learner(learn: Any, fname: str | Path = "export.pkl", pickle_protocol: int = 4) -> Path:
    """Write what inference needs from `learn` to `fname` (relative to `learn.path / learn.model_dir` unless
    absolute; see the module doc); returns the path. Only rank 0 writes in distributed training."""
    target = learner_file(learn, fname, suffix=None)
    pkl, st, by_value, n = _pickled(learn, pickle_protocol)
    manifest = {"format": _FORMAT, "torch": torch.__version__, "learner.pkl": _sha(pkl),
                "tensors.safetensors": _sha(st), "n_tensors": n, "by_value": by_value}

    def write(path: Path) -> None:
        with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            z.writestr("manifest.json", json.dumps(manifest))
            z.writestr("tensors.safetensors", st)
            z.writestr("learner.pkl", pkl)

    return write_once(target, write)


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


def _not_found(fname: Path) -> FileNotFoundError:
    hint = "check the path; export writes to learn.path / learn.model_dir (default <path>/models/export.pkl)"
    moved = fname.parent / "models" / fname.name
    if moved.is_file():
        hint = f"the export is at {moved} (export writes to learn.path / learn.model_dir)"
    return FileNotFoundError(f"load_learner: no file at {fname}; {hint}")


def load_learner(
    fname: str | Path, cpu: bool = True, pickle_module: Any = None, trusted: bool = False, allowed: Iterable = (),
) -> Any:
    """Load a learner written by `Learner.export` from `fname`, on the CPU when `cpu` (else the default device).

    Safe by default (see `tiers.train.io.safe_load`): tiers, torch, numpy, pandas, plain stdlib types, what tiers
    layers declare safe and the top-level functions of your own modules (import them first) are resolved; so is a
    function of the exporting script's `__main__` when this process's `__main__` defines one with the same name
    (define it before calling `load_learner`, as with fastai; a warning says when its source differs). A class of
    your own module or of `__main__` needs `allowed=[MyModel]` (or its dotted name); code stored by value with no
    definition here (lambdas, absent `__main__` functions) and anything else needs `trusted=True`, which runs code
    from the file (only for files you made or trust).
    Every refused global is named in one `UnsafeExportError`; truncated or corrupted files raise `ValueError`.
    `pickle_module` is accepted for fastai compatibility and ignored.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    fname = Path(fname)
    if not fname.exists():
        moved = fname.parent / "models" / fname.name
        if not moved.is_file():
            raise _not_found(fname)
        # fastai code loads `learn.path/'export.pkl'`; tiers' one path rule puts the export under model_dir.
        # Load it, and say where it really was so the user can update the path.
        warnings.warn(f"load_learner: no file at {fname}; loading {moved}, where `export` writes it "
                      f"(learn.path / learn.model_dir)", stacklevel=2)
        fname = moved
    if fname.is_dir():
        # export writes to <path>/models/: list the exports there too
        found = sorted(str(p.relative_to(fname)) for p in [*fname.glob("*.pkl"), *fname.glob("models/*.pkl")])
        example = next((f for f in found if f.endswith("export.pkl")), found[0] if found else "models/export.pkl")
        raise IsADirectoryError(f"load_learner: {fname} is a folder; pass the exported file in it, e.g. "
                                f"{fname / example}"
                                f"{' (its .pkl files: ' + ', '.join(found[:6]) + ')' if found else ''}")
    parts = _read(fname)
    manifest = check_manifest(parts, fname, _FORMAT, ("learner.pkl", "tensors.safetensors"), "load_learner",
                              "export the learner again")
    pol = policy(allowed)
    if not trusted:
        by_value = manifest.get("by_value") or []
        try:
            check_globals(parts["learner.pkl"], pol, [str(d) for d in by_value] if isinstance(by_value, list) else [])
        except UnsafeExportError as e:
            e.add_note(f"while loading {fname}")
            raise
    try:
        tensors = st_load(parts["tensors.safetensors"])
    except SafetensorError as e:
        raise ValueError(f"load_learner: the weights in {fname} are unreadable ({e})") from e
    learn = SafeUnpickler(io.BytesIO(parts["learner.pkl"]), tensors, pol, trusted=trusted).load()
    from tiers.train.learner import Learner  # the Learner builds on this module: imported when called

    if not isinstance(learn, Learner):
        raise TypeError(f"load_learner: {fname} holds a {type(learn).__name__}, not a Learner")
    if not cpu and torch.cuda.is_available():
        learn.model.to("cuda")
        if hasattr(learn.dls, "to"):
            learn.dls.to("cuda")
    elif hasattr(learn.dls, "cpu"):
        learn.dls.cpu()
    return learn
