"""Save and load a model's weights and its optimizer's state (`Learner.save` / `Learner.load`).

Files are written atomically (to a temporary file, then renamed), so an interrupted save never
leaves a truncated file where a good one was. Loading uses `torch.load(weights_only=True)`:
a checkpoint cannot run code.

>>> save_model("m.pth", model, opt)           # doctest: +SKIP
>>> load_model("m.pth", model, opt)           # doctest: +SKIP
"""

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["save_model", "load_model"]


def _unwrap(model: nn.Module) -> nn.Module:
    # DataParallel / DistributedDataParallel keep the real model in `.module`.
    return model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model


def save_model(file: str | Path, model: nn.Module, opt: Any = None, with_opt: bool = True) -> None:
    """Write `model`'s state dict (and `opt`'s, when `with_opt` and there is one) to `file`, atomically."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"model": _unwrap(model).state_dict()}
    if with_opt and opt is not None:
        state["opt"] = opt.state_dict()
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, file)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_model(
    file: str | Path, model: nn.Module, opt: Any = None, with_opt: bool = True, device: Any = None, strict: bool = True
) -> None:
    """Load weights written by `save_model` from `file` into `model` (and `opt` when given and saved).

    A file holding a bare state dict (`torch.save(model.state_dict(), f)`) is accepted too.
    """
    file = Path(file)
    if not file.exists():
        raise FileNotFoundError(f"load_model: no file at {file}; check the name and `learn.path / learn.model_dir`")
    if isinstance(device, int):
        device = torch.device("cuda", device)
    elif device is None:
        device = "cpu"
    try:
        state = torch.load(file, map_location=device, weights_only=True)
    except Exception as e:
        raise ValueError(f"load_model: {file} is not a readable weights file ({type(e).__name__}: {e})") from e
    has_parts = isinstance(state, dict) and set(state) <= {"model", "opt"} and "model" in state
    model_state = state["model"] if has_parts else state
    _unwrap(model).load_state_dict(model_state, strict=strict)
    if has_parts and with_opt and opt is not None:
        if "opt" not in state:
            raise ValueError(f"load_model: {file} holds no optimizer state; pass with_opt=False")
        opt.load_state_dict(state["opt"])
