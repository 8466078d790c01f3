"""Per-group hyper-parameters: live views over torch-style parameter groups, and the value rules of `set_hyper`.

Every optimizer in this layer keeps its hyper-parameters where torch keeps them, in `param_groups` (a list of
dicts that also hold `params`), so torch schedulers and `GradScaler` see the same numbers as `opt.hypers`.
"""

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["HyperView", "detuplify_pg", "set_item_pg", "spread_values"]

# Keys of a torch parameter group that are bookkeeping, not hyper-parameters.
_NOT_HYPERS = ("params", "param_names")


def detuplify_pg(d: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten the hypers of torch parameter group `d`: `betas=(a, b)` becomes `betas__0=a, betas__1=b`.

    `params` and `param_names` are left out. Example: `detuplify_pg({'params': [], 'betas': (0.9, 0.99)})`
    gives `{'betas__0': 0.9, 'betas__1': 0.99}`.
    """
    flat: dict[str, Any] = {}
    for k, v in d.items():
        if k in _NOT_HYPERS:
            continue
        if isinstance(v, (tuple, list)):
            flat.update({f"{k}__{i}": o for i, o in enumerate(v)})
        else:
            flat[k] = v
    return flat


def set_item_pg(pg: dict[str, Any], k: str, v: Any) -> dict[str, Any]:
    """Set hyper `k` to `v` in torch parameter group `pg`; `name__i` addresses item `i` of a tuple such as `betas`.

    Returns `pg`. Example: `set_item_pg({'betas': (0.9, 0.99)}, 'betas__1', 0.95)` gives `{'betas': (0.9, 0.95)}`.
    """
    name, sep, idx = k.rpartition("__")
    if sep and idx.isdigit() and isinstance(pg.get(name), (tuple, list)):
        seq = list(pg[name])
        i = int(idx)
        if i >= len(seq):
            raise IndexError(
                f"set_item_pg: {k!r} addresses item {i} of {name}={pg[name]!r}, which has {len(seq)} items"
            )
        seq[i] = v
        pg[name] = type(pg[name])(seq)
    else:
        pg[k] = v
    return pg


class HyperView(MutableMapping):
    """A live dict view of the hyper-parameters of one torch parameter group, optionally under other names.

    Reading and writing go straight to the group, so a torch scheduler setting `group['lr']` and
    `opt.hypers[0]['lr'] = 1e-3` change the same number. `fwd` maps torch names (tuples split as `betas__0`)
    to the names users see (`mom`); `split_tuples` turns tuple hypers into one entry per item.
    """

    def __init__(
        self, group: dict[str, Any], fwd: Mapping[str, str] | None = None, split_tuples: bool = False
    ):
        self._group = group
        self._fwd = dict(fwd or {})
        self._renamed = set(self._fwd.values())  # names some torch key is shown under
        self._split = split_tuples

    def _flat(self) -> dict[str, Any]:
        if self._split:
            return detuplify_pg(self._group)
        return {k: v for k, v in self._group.items() if k not in _NOT_HYPERS}

    def _source_key(self, k: str) -> str | None:
        g = self._group
        # A key of the group shown under its own name, which no other key is shown under (`lr`, the usual case):
        # itself, as the search below finds it, without flattening the group (schedules set hypers every batch).
        if (k in g and k not in self._renamed and self._fwd.get(k, k) == k and k not in _NOT_HYPERS
                and not (self._split and isinstance(g[k], (tuple, list)))):
            return k
        for tk in self._flat():
            if self._fwd.get(tk, tk) == k:
                return tk
        return None

    def __getitem__(self, k: str) -> Any:
        tk = self._source_key(k)
        if tk is None:
            raise KeyError(k)
        return self._flat()[tk]

    def __setitem__(self, k: str, v: Any) -> None:
        if k in _NOT_HYPERS:
            raise KeyError(f"{k!r} is not a hyper-parameter; change parameters through `param_lists`")
        tk = self._source_key(k)
        if tk is None:
            self._group[k] = v
        else:
            set_item_pg(self._group, tk, v)

    def __delitem__(self, k: str) -> None:
        tk = self._source_key(k)
        if tk is None or tk not in self._group:
            raise KeyError(k)
        del self._group[tk]

    def __iter__(self) -> Iterator[str]:
        return (self._fwd.get(tk, tk) for tk in self._flat())

    def __len__(self) -> int:
        return len(self._flat())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def spread_values(k: str, v: Any, n: int) -> list[Any]:
    """The `n` per-group values that `set_hyper(k, v)` assigns.

    A slice `slice(a, b)` spreads geometrically from `a` to `b`; `slice(b)` gives `b/10` to every group but the
    last, which gets `b`; a list or tuple gives one value per group (a single item is broadcast); anything else is
    broadcast to every group.
    """
    if isinstance(v, slice):
        vals = _slice_values(k, v, n)
    elif isinstance(v, (list, tuple)):
        vals = list(v)
    elif getattr(v, "ndim", 0) and hasattr(v, "tolist"):
        vals = v.tolist()  # a 1-d tensor or array: one value per group
    else:
        vals = [v]
    bad = next((x for x in vals if isinstance(x, str) and _numeric(x)), None)
    if bad is not None:  # "1e-3" would only fail later, deep in a step, as "can't multiply sequence by float"
        raise TypeError(f"set_hyper({k!r}, {v!r}): got the string {bad!r}; pass a number (e.g. {k}=1e-3), a "
                        "slice, or one number per parameter group")
    if len(vals) == 1:
        vals = vals * n
    if len(vals) != n:
        raise ValueError(
            f"set_hyper({k!r}, ...) got {len(vals)} values for {n} parameter groups; "
            f"pass one value, one value per group, or a slice"
        )
    return vals


def _numeric(s: str) -> bool:
    "Whether `s` reads as a number: a number typed as a string (other strings are options, e.g. level='layer')."
    try:
        float(s)
    except ValueError:
        return False
    return True


def _slice_values(k: str, v: slice, n: int) -> list[float]:
    if v.step is not None or v.stop is None:
        raise ValueError(f"set_hyper({k!r}, {v}): use slice(stop) or slice(start, stop), with no step")
    stop = v.stop
    # A falsy start (None or 0) means "the last group gets `stop`, the others stop/10", as in fastai.
    if not v.start:
        return [stop / 10] * (n - 1) + [stop]
    start = v.start
    if n == 1:
        return [stop]
    if start * stop <= 0:
        raise ValueError(f"set_hyper({k!r}, {v}): a geometric spread needs start and stop of the same sign")
    ratio = (stop / start) ** (1 / (n - 1))
    vals = [start * ratio**i for i in range(n)]
    vals[-1] = stop  # exact end point despite rounding
    return vals
