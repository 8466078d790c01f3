"""Save and load a model's weights and its optimizer's state (`Learner.save` / `Learner.load`).

Files are written atomically (`tiers.dispatch.files.atomic_write`): an interrupted save keeps the previous
file. Loading uses `torch.load(weights_only=True)` (a weights file cannot run code) and is all-or-nothing: the
file's keys and shapes are checked against the model, and its optimizer state against the optimizer, BEFORE
anything is copied, so a failed load leaves the model and the optimizer exactly as they were.

>>> save_model("m.pth", model, opt)           # doctest: +SKIP
>>> load_model("m.pth", model, opt)           # doctest: +SKIP
"""

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tiers.dispatch.files import atomic_write
from tiers.train.io.fastai_compat import convert_fastai_opt_state, is_fastai_opt_state, safe_torch_load
from tiers.train.io.paths import learner_file, write_once

__all__ = ["save_model", "load_model", "StateMismatchError", "learner_save", "learner_load", "check_model_state", "save_state"]


class StateMismatchError(ValueError, RuntimeError):
    """A weights file does not fit the model or optimizer it is loaded into (nothing was loaded).

    A `RuntimeError` as torch's own `load_state_dict` error is, and a `ValueError` (the file is the bad input)."""


def _unwrap(model: nn.Module) -> nn.Module:
    # DataParallel / DistributedDataParallel keep the real model in `.module`.
    return model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model


def save_model(file: str | Path, model: nn.Module, opt: Any = None, with_opt: bool = True) -> None:
    """Write `model`'s state dict (and `opt`'s, when `with_opt` and there is one) to `file`, atomically."""
    state: dict[str, Any] = {"model": _unwrap(model).state_dict()}
    if with_opt and opt is not None:
        state["opt"] = opt.state_dict()
    with atomic_write(file) as f:
        torch.save(state, f)


def _listed(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def check_model_state(file: Path, model: nn.Module, state: dict, strict: bool = True) -> None:
    """Raise `StateMismatchError` if `state` does not fit `model`: missing or unexpected keys (when `strict`), or
    any tensor whose shape differs (always)."""
    ours = _unwrap(model).state_dict()
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    shapes = [f"{k} {list(state[k].shape)} in the file, {list(v.shape)} in the model" for k, v in ours.items()
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape]
    problems = []
    if strict and missing:
        problems.append(f"{len(missing)} of the model's tensors are missing from the file ({_listed(missing)})")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} tensors of the file are not in the model ({_listed(unexpected)})")
    if shapes:
        problems.append(f"{len(shapes)} tensors have another shape ({_listed(shapes, 3)})")
    if problems:
        hint = ("; pass strict=False to load only the tensors whose names match" if not shapes and strict
                else "; was it saved from another architecture or number of classes?")
        raise StateMismatchError(f"load: {file} does not fit {type(_unwrap(model)).__name__}: {'; '.join(problems)}. "
                                 f"Nothing was loaded{hint}")


def _check_opt_state(file: Path, opt: Any, state: Any) -> None:
    if not isinstance(state, dict) or "param_groups" not in state or "state" not in state:
        raise StateMismatchError(f"load: the optimizer state in {file} is not an optimizer state dict; "
                                 "pass with_opt=False to load only the weights")
    saved = [len(g["params"]) for g in state["param_groups"]]
    ours = [len(g["params"]) for g in opt.param_groups]
    if saved != ours:
        raise StateMismatchError(f"load: the optimizer state in {file} has parameter groups of sizes {saved}, the "
                                 f"optimizer has {ours} (another splitter or model?). Nothing was loaded; pass "
                                 "with_opt=False to load only the weights")
    params = [p for g in opt.param_groups for p in g["params"]]
    index = {i: p for i, p in enumerate(params)}
    for k, st in state["state"].items():
        p = index.get(k) if isinstance(k, int) else None
        if p is None or not isinstance(st, dict):
            continue
        for name, v in st.items():
            if isinstance(v, torch.Tensor) and v.ndim == p.ndim and v.ndim > 0 and v.shape != p.shape:
                raise StateMismatchError(
                    f"load: the optimizer state {name!r} of parameter {k} in {file} has shape {list(v.shape)}, the "
                    f"parameter {list(p.shape)}. Nothing was loaded; pass with_opt=False to load only the weights")


def load_model(
    file: str | Path,
    model: nn.Module,
    opt: Any = None,
    with_opt: bool = True,
    device: Any = None,
    strict: bool = True,
    trusted: bool = False,
) -> None:
    """Load weights written by `save_model` from `file` into `model` (and `opt` when given and saved), all or nothing.

    A file holding a bare state dict (`torch.save(model.state_dict(), f)`) is accepted too, and so is one saved by
    fastai's `learn.save()`: its optimizer state is converted when it fits `opt`, else skipped with a warning (see
    `tiers.train.io.fastai_compat`). `strict=False` skips missing and unexpected tensors; a tensor of another shape
    is always an error. The load is safe (`weights_only`); `trusted=True` lifts that for a file you trust.
    """
    file = Path(file)
    if not file.exists():
        raise FileNotFoundError(f"load_model: no file at {file}; check the name and `learn.path / learn.model_dir`")
    if isinstance(device, int):
        device = torch.device("cuda", device)
    elif device is None:
        device = "cpu"
    state = safe_torch_load(file, map_location=device, trusted=trusted)
    has_parts = isinstance(state, dict) and set(state) <= {"model", "opt"} and "model" in state
    model_state = state["model"] if has_parts else state
    if not isinstance(model_state, dict):
        raise ValueError(f"load_model: {file} holds a {type(model_state).__name__}, not a state dict")
    check_model_state(file, model, model_state, strict=strict)  # the model first: the likelier, clearer cause
    opt_state = None
    if has_parts and with_opt and opt is not None:
        if "opt" not in state:
            raise StateMismatchError(f"load: {file} holds no optimizer state (saved with with_opt=False); pass "
                                     "with_opt=False to load only the weights. Nothing was loaded")
        opt_state = state["opt"]
        if is_fastai_opt_state(opt_state):
            opt_state = convert_fastai_opt_state(file, opt, opt_state)
        if opt_state is not None:
            _check_opt_state(file, opt, opt_state)
    before = copy.deepcopy(opt.state_dict()) if opt_state is not None else None
    try:
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        _unwrap(model).load_state_dict(model_state, strict=strict)
    except Exception as e:
        # checked above, so only a model's own load hook gets here: put the optimizer back as it was
        if before is not None:
            opt.load_state_dict(before)
        e.add_note(f"while loading {file}")
        raise


def learner_save(learn: Any, file: str | Path, with_opt: bool = True) -> Path:
    """`learn.save`: the model (and optimizer) state to `file` under the one path rule (`tiers.train.io.paths`:
    `.pth` added, relative to `learn.path / learn.model_dir`); only rank 0 writes. Returns the path."""
    return write_once(learner_file(learn, file), lambda p: save_model(p, learn.model, learn.opt, with_opt=with_opt))


def learner_load(learn: Any, file: str | Path, device: Any = None, with_opt: bool = True, strict: bool = True) -> Any:
    """`learn.load`: the state saved by `learner_save` from `file` (same path rule), onto `device` (default the
    data's), all or nothing (see `load_model`). Returns `learn`."""
    if device is None:
        device = getattr(learn.dls, "device", None)
    if with_opt and learn.opt is None:
        learn.create_opt()
    load_model(learner_file(learn, file), learn.model, learn.opt if with_opt else None, device=device, strict=strict)
    return learn


def save_state(learn: Any, file: str | Path, state: Any) -> Path:
    """Write `state` (e.g. a part of the model's state dict) with `torch.save` to `file` under the one path rule,
    atomically and on rank 0 only, like `learn.save` (text's `save_encoder` uses it). Returns the path."""

    def write(path: Path) -> None:
        with atomic_write(path) as f:
            torch.save(state, f)

    return write_once(learner_file(learn, file), write)
