"""`model_summary`: each leaf layer's output shape, parameters, trainability and multiply-accumulates.

`learner_summary(learn)` (what `Learner.summary()` returns) adds the optimizer, loss and callbacks.
"""

from typing import Any

import torch
from torch import Tensor, nn

from tiers.train.nn.hooks import Hooks
from tiers.train.nn.model_utils import flatten_model

__all__ = ["ModelSummary", "model_summary", "layer_info", "module_summary"]



def _leaf_outputs(model: nn.Module, leaves: list, xb: tuple) -> list:
    "The output of each of `leaves` for one eval-mode, no-grad forward of `model` on `xb` (its mode restored)."
    with Hooks(leaves, lambda m, i, o: o) as hs:
        training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(*xb)
        finally:
            model.train(training)
        return hs.stored

def _macs(m: nn.Module, out: Any, bs: int) -> int:
    # Multiply-accumulates per item: each output element of a Linear/Conv costs one MAC per weight it reads.
    if not isinstance(out, Tensor) or bs == 0:
        return 0
    if isinstance(m, nn.Linear):
        return out.numel() // bs * m.in_features
    if isinstance(m, nn.modules.conv._ConvNd):
        k = 1
        for s in m.kernel_size:
            k *= s
        return out.numel() // bs * (m.in_channels // m.groups) * k
    return 0


def _shape(o: Any) -> str:
    if isinstance(o, Tensor):
        return "x".join(str(s) for s in o.shape)
    if isinstance(o, (tuple, list)):
        return "(" + ", ".join(_shape(x) for x in o) + ")"
    return type(o).__name__


class ModelSummary(str):
    """The text of `learn.summary()`; `rows` holds one dict per leaf layer (name, shape, params, trainable, macs)."""

    rows: list[dict]
    total_params: int
    trainable_params: int
    total_macs: int

    def __repr__(self) -> str:  # the table itself at the `>>>` prompt and as a cell's value, not an escaped string
        return str.__str__(self)

    def _repr_pretty_(self, p, cycle: bool) -> None:  # IPython and Jupyter: str subclasses would print as a str
        p.text(str.__str__(self))


def model_summary(model: nn.Module, *xb: Tensor, title: str | None = None) -> ModelSummary:
    """Run `model` once on the inputs `xb` (eval mode, no gradients) and report each leaf layer's output shape,
    parameter count, whether it trains, and multiply-accumulate count (Linear and Conv, per item)."""
    leaves = flatten_model(model)
    bs = xb[0].shape[0] if xb and isinstance(xb[0], Tensor) and xb[0].dim() else 1
    outs = _leaf_outputs(model, leaves, xb)
    rows: list[dict[str, Any]] = []
    for m, o in zip(leaves, outs):
        ps = list(m.parameters(recurse=False))
        n = sum(p.numel() for p in ps)
        rows.append({"layer": type(m).__name__, "shape": _shape(o) if o is not None else "(not run)", "params": n,
                     "trainable": None if not ps else any(p.requires_grad for p in ps), "macs": _macs(m, o, bs)})
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = sum(r["macs"] for r in rows)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    w = max([len(r["layer"]) for r in rows] + [5]) + 2
    sw = max([len(r["shape"]) for r in rows] + [12]) + 2
    lines = [title or type(model).__name__ + f" (input batch of {bs})",
             "=" * (w + sw + 36),
             f"{'Layer':<{w}}{'Output shape':<{sw}}{'Params':>12}{'Trainable':>11}{'MACs':>13}",
             "=" * (w + sw + 36)]
    for r in rows:
        tr = "" if r["trainable"] is None else ("True" if r["trainable"] else "False")
        lines.append(f"{r['layer']:<{w}}{r['shape']:<{sw}}{r['params']:>12,}{tr:>11}{r['macs']:>13,}")
    lines += ["=" * (w + sw + 36),
              f"Total params: {total:,} ({size / 2**20:.2f} MiB)",
              f"Trainable params: {train:,}",
              f"Non-trainable params: {total - train:,}",
              f"Multiply-accumulates per item: {macs:,}"]
    res = ModelSummary("\n".join(lines))
    res.rows, res.total_params, res.trainable_params, res.total_macs = rows, total, train, macs
    return res


def learner_summary(self: Any) -> ModelSummary:
    """Report the model on one training batch: per-layer output shapes, parameters, frozen or trainable, totals,
    multiply-accumulates; plus the optimizer, loss and callbacks. Printing it shows the table."""
    b = self.dls.one_batch()
    b = b if isinstance(b, (tuple, list)) else (b,)
    n_inp = getattr(self.dls, "n_inp", 1) or 1
    dev = self._model_device()
    xb = tuple(x.to(dev).as_subclass(Tensor) if isinstance(x, Tensor) else x for x in b[:n_inp])
    res = model_summary(self.model, *xb, title=f"{type(self.model).__name__} (input batch {_shape(list(xb))})")
    opt = getattr(self.opt_func, "__name__", type(self.opt_func).__name__)
    lf = getattr(self.loss_func, "__name__", type(self.loss_func).__name__)
    cbs = ", ".join(type(c).__name__ for c in self.cbs)
    text = f"{res}\n\nOptimizer: {opt}\nLoss function: {lf}\nCallbacks: {cbs}"
    out = ModelSummary(text)
    out.rows, out.total_params, out.trainable_params, out.total_macs = (
        res.rows, res.total_params, res.trainable_params, res.total_macs)
    return out



def _model_of(learn_or_model: Any) -> nn.Module:
    return learn_or_model if isinstance(learn_or_model, nn.Module) else learn_or_model.model


def layer_info(learn: Any, *xb: Tensor) -> list[tuple]:
    """One `(layer name, parameter count, trainable, output shape, same batch size)` tuple per leaf layer of
    `learn.model` (or a module), from one no-grad eval pass on `xb`. `trainable` is None for a layer without parameters."""
    model = _model_of(learn)
    leaves = flatten_model(model)
    bs = xb[0].shape[0] if xb and isinstance(xb[0], Tensor) and xb[0].dim() else None
    outs = _leaf_outputs(model, leaves, xb)
    res = []
    for m, o in zip(leaves, outs):
        ps = list(m.parameters(recurse=False))
        shape = o.shape if isinstance(o, Tensor) else None
        same_bs = bool(shape is not None and len(shape) and shape[0] == bs)
        res.append((type(m).__name__, sum(p.numel() for p in ps), None if not ps else any(p.requires_grad for p in ps),
                    shape, same_bs))
    return res


def module_summary(learn: Any, *xb: Tensor) -> ModelSummary:
    """The layer table of `learn.model` (or a module) on inputs `xb`, without the learner's details."""
    return model_summary(_model_of(learn), *xb)
