"""The Learner with plain PyTorch objects: torch loaders, dict batches, torch optimizer classes and torch losses.

- `Learner((train_dl, valid_dl), model)` and `Learner(train_dl, model)` take torch `DataLoader`s directly
  (`as_dataloaders`); with no validation loader, `fit` trains without validating (those columns stay blank).
- Dict batches (`{'x': ..., 'y': ...}`) need `cbs=DictBatch(inputs='x', targets='y')` to say which keys feed the
  model (positionally, in that order) and which are the targets; without it the first batch is refused before
  any step.
- `opt_func=torch.optim.AdamW` (any torch optimizer class, or a `partial` of one) is wrapped in `OptimWrapper`.
- Batches of several inputs: set `dls.n_inp` (e.g. 2 for `(a, b, y)`).
- `get_preds` applies the activation of a torch loss it knows (`nn.CrossEntropyLoss`: softmax over dim 1,
  `nn.BCEWithLogitsLoss`: sigmoid, `nn.NLLLoss`: exp, and their functional forms); any other loss without an
  `activation` attribute gives the model's raw outputs (pass `act=` to choose). `with_decoded` (and so `predict`
  and `ClassificationInterpretation`) decodes them the same way: the class index (argmax over the class dim) for
  `nn.CrossEntropyLoss`/`nn.NLLLoss`, `probability > 0.5` for `nn.BCEWithLogitsLoss`/`nn.BCELoss`.
- A fit that would run zero training steps (e.g. a batch size larger than the training set with
  `drop_last=True`) is refused before it starts, naming the batch size, the items and `drop_last`.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from tiers.train.callbacks.core import Callback

__all__ = ["DictBatch", "as_dataloaders", "as_opt_func", "loss_activation", "loss_decodes"]


def as_dataloaders(dls: Any) -> Any:
    """`dls` as a `tiers.data.DataLoaders`: one unchanged; a tuple or list of loaders, or a single loader, wrapped."""
    from tiers.data import DataLoaders

    if isinstance(dls, DataLoaders) or hasattr(dls, "train"):
        return dls  # a DataLoaders, or any object that has the loaders as `train`/`valid`
    if isinstance(dls, (tuple, list)):
        if not dls:
            raise ValueError("Learner: dls is an empty sequence; pass (train_loader, valid_loader) or a DataLoaders")
        return DataLoaders(*dls)
    if hasattr(dls, "__iter__") and not isinstance(dls, (str, bytes, dict)):
        return DataLoaders(dls)  # a single loader: train only
    raise TypeError(f"Learner: dls is a {type(dls).__name__}; pass a DataLoaders, a (train, valid) tuple of loaders "
                    "or a single training loader")


def has_loader(dls: Any, i: int) -> bool:
    """Whether `dls` holds a loader at index `i` (1: validation)."""
    loaders = getattr(dls, "loaders", None)
    return loaders is None or len(loaders) > i and loaders[i] is not None


def as_opt_func(opt_func: Callable) -> Callable:
    """`opt_func` itself, or `partial(OptimWrapper, opt=...)` for a torch optimizer class (or a partial of one)."""
    from tiers.optim import OptimWrapper

    def torch_cls(f: Any) -> bool:
        return isinstance(f, type) and issubclass(f, torch.optim.Optimizer) and not hasattr(f, "set_hypers")

    if torch_cls(opt_func):
        return functools.partial(OptimWrapper, opt=opt_func)
    if isinstance(opt_func, functools.partial) and torch_cls(opt_func.func) and not opt_func.args:
        return functools.partial(OptimWrapper, opt=opt_func.func, **opt_func.keywords)
    return opt_func


def _softmax1(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=1)


_TORCH_ACTS: dict[Any, Callable] = {
    nn.CrossEntropyLoss: _softmax1, nn.BCEWithLogitsLoss: torch.sigmoid, nn.NLLLoss: torch.exp,
    nn.functional.cross_entropy: _softmax1, nn.functional.binary_cross_entropy_with_logits: torch.sigmoid,
    nn.functional.nll_loss: torch.exp,
}


def _argmax1(x: torch.Tensor) -> torch.Tensor:
    # torch's class-index losses put the classes on dim 1 ((N, C) or (N, C, d1, ...)), where `_softmax1` works
    return x.argmax(dim=1 if x.ndim > 1 else -1)


def _above_half(x: torch.Tensor) -> torch.Tensor:
    # probabilities (after the sigmoid of BCEWithLogitsLoss; BCELoss's inputs already are) -> predicted labels
    return x > 0.5


_TORCH_DECODES: dict[Any, Callable] = {
    nn.CrossEntropyLoss: _argmax1, nn.NLLLoss: _argmax1, nn.BCEWithLogitsLoss: _above_half, nn.BCELoss: _above_half,
    nn.functional.cross_entropy: _argmax1, nn.functional.nll_loss: _argmax1,
    nn.functional.binary_cross_entropy_with_logits: _above_half, nn.functional.binary_cross_entropy: _above_half,
}


def _known(table: dict[Any, Callable], loss_func: Any) -> Callable | None:
    # The entry of `table` for a torch loss module (by class, subclasses included) or functional loss (or a partial
    # of one); None for any other loss.
    if isinstance(loss_func, nn.Module):
        for cls, f in table.items():
            if isinstance(cls, type) and isinstance(loss_func, cls):
                return f
        return None
    f = loss_func.func if isinstance(loss_func, functools.partial) else loss_func
    try:
        return table.get(f)
    except TypeError:  # unhashable
        return None


def loss_activation(loss_func: Any) -> Callable | None:
    """The activation turning the model's outputs into what `loss_func` compares: the loss's `activation`
    attribute, else the known one of a torch loss (softmax, sigmoid, exp), else None (raw outputs)."""
    act = getattr(loss_func, "activation", None)
    if act is not None:
        return act
    return _known(_TORCH_ACTS, loss_func)


def loss_decodes(loss_func: Any) -> Callable | None:
    """What turns activated outputs into predicted targets for `loss_func`: the loss's `decodes` attribute, else
    the known one of a torch loss (`nn.CrossEntropyLoss`/`nn.NLLLoss`: the class index, argmax over the class dim;
    `nn.BCEWithLogitsLoss`/`nn.BCELoss`: probability > 0.5; and their functional forms), else None (unchanged)."""
    dec = getattr(loss_func, "decodes", None)
    if dec is not None:
        return dec
    return _known(_TORCH_DECODES, loss_func)


def _loader_facts(dl: Any) -> tuple[Any, Any, Any]:
    bs = getattr(dl, "bs", None) or getattr(dl, "batch_size", None)
    ds = getattr(dl, "dataset", None)
    try:
        n = getattr(dl, "n", None)
        n = len(ds) if n is None and ds is not None else n
    except TypeError:
        n = None
    return bs, n, getattr(dl, "drop_last", None)


def check_train_steps(dls: Any, where: str = "fit") -> None:
    """Raise `ValueError` before a fit whose training loader yields no batch (it would run zero steps)."""
    try:
        dl = dls.train
        n_batches = len(dl)
    except (TypeError, AttributeError, IndexError):
        return  # an iterable without a length, or no loaders at all: the loop reports it
    if n_batches > 0:
        return
    bs, n, drop_last = _loader_facts(dl)
    fix = (f"lower the batch size to at most {n}, or pass drop_last=False" if drop_last and n and bs and bs > n
           else "give the training set some items")
    raise ValueError(f"{where}: the training loader yields no batch, so it would run zero training steps (batch "
                     f"size {bs}, {n} items in the training set, drop_last={drop_last}): {fix}")


def split_dict_batch(learn: Any, b: dict) -> tuple[tuple, tuple]:
    """`(xb, yb)` of dict batch `b` by the learner's `DictBatch` callback; without one, a `TypeError` that says
    how to add it (raised before any step)."""
    for cb in learn.cbs:
        if isinstance(cb, DictBatch):
            return cb.split(b)
    keys = ", ".join(repr(k) for k in b)
    raise TypeError(f"Learner: the loader yields dict batches (keys {keys}); say which keys are the model's inputs "
                    f"and which the targets with `cbs=DictBatch(inputs=..., targets=...)`, e.g. "
                    f"DictBatch(inputs={next(iter(b), 'x')!r}, targets=...)")


class DictBatch(Callback):
    """Split dict batches: `inputs` keys go to the model (positionally, in order), `targets` keys to the loss.

    >>> learn = Learner((train_dl, valid_dl), model, cbs=DictBatch(inputs="x", targets="y"))   # doctest: +SKIP
    """

    order = -100  # a marker read when the loop splits a batch; it handles no event

    def __init__(self, inputs: str | Sequence[str], targets: str | Sequence[str] = ()) -> None:
        self.inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        self.targets = (targets,) if isinstance(targets, str) else tuple(targets)
        if not self.inputs:
            raise ValueError("DictBatch: name at least one input key")

    def split(self, b: dict) -> tuple[tuple, tuple]:
        """`(inputs, targets)` of batch `b`."""
        missing = [k for k in (*self.inputs, *self.targets) if k not in b]
        if missing:
            raise KeyError(f"DictBatch: the batch has no key {missing[0]!r} (its keys: {', '.join(map(repr, b))}); "
                           "fix inputs=/targets=")
        return tuple(b[k] for k in self.inputs), tuple(b[k] for k in self.targets)
