"""Read weights files written by fastai's `learn.save()` safely (no fastai or fastcore needed).

fastai's default `learn.save(name)` (`with_opt=True`) stores `{'model': state_dict, 'opt': opt.state_dict()}`, and
fastai's optimizer state is `{'state': [per-parameter dict, ...], 'hypers': L([per-group dict, ...])}`: the hypers
are a `fastcore.foundation.L`, which `torch.load(weights_only=True)` refuses. The safe load here registers a
data-only stand-in under that name (`FastcoreL`, a list that only takes the pickled items: nothing runs), turns
it into plain lists, and converts the optimizer state to torch's format (`{'state': {index: dict},
'param_groups': [...]}`) when it fits the optimizer it is loaded into.
"""

import re
import warnings
from pathlib import Path
from typing import Any

import torch

__all__: list[str] = []  # machinery of load_model (`learn.load`), not a public surface

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_UNSUPPORTED = re.compile(r"Unsupported (?:global|operand)[^:]*:\s*(?:GLOBAL\s+)?([\w.]+)")


class FastcoreL(list):
    """Data-only stand-in for `fastcore.foundation.L` in a weights file: a list of the pickled items."""

    def __setstate__(self, state: Any) -> None:
        # An L pickles its `__dict__` ({'items': [...]}); slots-style (dict, slots) and plain lists are accepted too.
        if isinstance(state, tuple) and len(state) == 2:
            state = state[0] or state[1]
        items = state.get("items", []) if isinstance(state, dict) else state
        self[:] = list(items or [])


def _plain(o: Any) -> Any:
    # Stand-ins become plain lists, recursively, so nothing downstream sees a foreign-looking type.
    if isinstance(o, FastcoreL):
        return [_plain(v) for v in o]
    if isinstance(o, dict):
        for k, v in o.items():
            o[k] = _plain(v)
        return o
    if isinstance(o, list):
        return [_plain(v) for v in o]
    return o


def safe_torch_load(file: Path, map_location: Any = None, trusted: bool = False, what: str = "load_model") -> Any:
    """`torch.load(file, weights_only=True)` that also reads fastai's `L`; a refused global raises a `ValueError`
    naming it, the file and the fix, without torch's terminal escape codes. `trusted=True` loads with
    `weights_only=False` (runs code the file names: only for files you trust)."""
    if trusted:
        return torch.load(file, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals([(FastcoreL, "fastcore.foundation.L")]):
            return _plain(torch.load(file, map_location=map_location, weights_only=True))
    except Exception as e:
        text = _ANSI.sub("", str(e))
        m = _UNSUPPORTED.search(text)
        if m:
            raise ValueError(
                f"{what}: {file} holds an object of {m.group(1)}, which a safe (weights_only) load does not rebuild; "
                f"nothing was loaded. If you trust this file, load it with `load_model(file, model, opt, "
                f"trusted=True)` (this runs code the file names), or save it again holding only tensors and plain "
                f"values (e.g. `torch.save(model.state_dict(), f)`)"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise ValueError(f"{what}: {file} is not a readable weights file ({type(e).__name__}: {first})") from e


def is_fastai_opt_state(state: Any) -> bool:
    """Whether `state` is a fastai `Optimizer.state_dict()` (`{'state': [...], 'hypers': [...]}`)."""
    return (isinstance(state, dict) and "hypers" in state and "param_groups" not in state
            and isinstance(state.get("state"), list))


def convert_fastai_opt_state(file: Path, opt: Any, state: dict) -> dict | None:
    """fastai's optimizer state as torch's format for `opt`, or None (with a warning saying why) when it does not
    fit `opt`: another number of parameter groups or parameters, other hyper-parameters (another optimizer)."""
    hypers, per_param = list(state["hypers"]), list(state["state"])
    groups = opt.param_groups
    sizes = [len(g["params"]) for g in groups]
    ours_hypers = [{k: v for k, v in g.items() if k != "params"} for g in groups]
    why = None
    if len(hypers) != len(groups):
        why = f"it has {len(hypers)} parameter groups, the optimizer {len(groups)} (another splitter?)"
    elif len(per_param) != sum(sizes):
        why = f"it holds state for {len(per_param)} parameters, the optimizer has {sum(sizes)}"
    else:
        for i, (h, o) in enumerate(zip(hypers, ours_hypers)):
            if not isinstance(h, dict) or set(h) != set(o):
                theirs = sorted(h) if isinstance(h, dict) else type(h).__name__
                why = (f"its group {i} has the hyper-parameters {theirs}, the optimizer {sorted(o)} (saved with "
                       "another opt_func?)")
                break
    if why is None:
        params = [p for g in groups for p in g["params"]]
        for i, (st, p) in enumerate(zip(per_param, params)):
            bad = [k for k, v in (st.items() if isinstance(st, dict) else [])
                   if isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape != p.shape]
            if not isinstance(st, dict) or bad:
                why = f"the state of parameter {i} does not fit its shape {list(p.shape)} ({bad or type(st).__name__})"
                break
    if why is not None:
        warnings.warn(f"load: {file} was saved by fastai with its optimizer state, which was skipped: {why}. The "
                      "weights were loaded; pass with_opt=False to load only the weights without this warning",
                      UserWarning, stacklevel=3)
        return None
    out_groups, start = [], 0
    for h, n in zip(hypers, sizes):
        out_groups.append({**h, "params": list(range(start, start + n))})
        start += n
    return {"state": {i: st for i, st in enumerate(per_param) if st}, "param_groups": out_groups}
