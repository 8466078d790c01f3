"""Checks the training loop runs so that bad settings and bad batches fail loudly instead of training on garbage.

Pure functions, called by `Learner`:

- `check_lr` (start of `fit`): a NaN, infinite or negative learning rate is refused; lr=0 warns (it trains nothing).
  `check_wd`, `check_div`, `check_moms`, `check_n_epoch` do the same for the weight decay, the one-cycle divisors,
  the momentums and the number of epochs (the `fit*` entry points).
- `check_loss_inputs` (first batch of a fit): an elementwise loss (MSE, L1, BCE...) given an output and a target
  of different shapes that broadcast (`(bs, 1)` and `(bs,)` silently become `(bs, bs)`) is refused, and so is a
  class label that the model's output has no class for.
- `check_finite_loss` (every training batch, before backward and step): a NaN/inf loss stops the fit while the
  weights are still those of the last finite step. On a GPU, `check_recorded_losses` checks the losses the Recorder
  reads in bulk instead (no device sync per batch), a few steps late.
- `annotate_forward_error`, `annotate_loss_error`, `annotate_backward_error`: an error raised by the model, the
  loss or backward keeps its type, args and traceback and gets a note (PEP 678) saying where it happened, the
  shapes and dtypes involved and the likely fix. They cost nothing unless something raised.
"""

import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tiers.train.events import CANCEL_EXCEPTIONS

# The Learner's own checks live in `tiers.train.checks`; only the error a user may catch is exported.
__all__ = ["NonFiniteLossError"]

# Losses that compare output and target element by element (a shape difference broadcasts silently).
_ELEMENTWISE_MODULES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss, nn.BCEWithLogitsLoss)
_ELEMENTWISE_FUNCS = (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.binary_cross_entropy,
                      F.binary_cross_entropy_with_logits)
# Losses that take class indices as targets (the class scores on dim 1, or on dim 0 for one unbatched item).
_CLASS_MODULES = (nn.CrossEntropyLoss, nn.NLLLoss)
_CLASS_FUNCS = (F.cross_entropy, F.nll_loss)
_NOTED = "_tiers_loop_note"  # set on an exception once noted, so nested Learners do not note it twice


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the fit stopped before that batch's backward and step."""


def describe(o: Any) -> str:
    """`o` in a few words for an error message: a tensor's shape and dtype, a tuple of them, or its type."""
    if isinstance(o, Tensor):
        return f"shape {tuple(o.shape)} {str(o.dtype).removeprefix('torch.')}"
    if isinstance(o, (tuple, list)):
        if len(o) == 1:
            return describe(o[0])
        return "(" + ", ".join(describe(x) for x in o) + ")"
    return type(o).__name__


def loss_name(loss_func: Any) -> str:
    """A readable name for a loss function, module or wrapper."""
    if isinstance(loss_func, nn.Module) or not callable(loss_func) or not hasattr(loss_func, "__name__"):
        return type(loss_func).__name__
    return loss_func.__name__


def _lr_values(lr: Any) -> list[float]:
    if isinstance(lr, slice):
        return [v for v in (lr.start, lr.stop) if v is not None]
    if isinstance(lr, Tensor):
        return [float(v) for v in lr.detach().flatten().tolist()]
    if isinstance(lr, (list, tuple)) or (hasattr(lr, "tolist") and hasattr(lr, "ndim")):
        # a tuple is per-group values like a list (as set_hyper takes it); kept a tuple, it would recurse forever
        vals = lr.tolist() if hasattr(lr, "tolist") else list(lr)
        vals = vals if isinstance(vals, list) else [vals]
        return [v for x in vals for v in _lr_values(x)]
    return [lr]


def check_lr(lr: Any, where: str = "fit") -> None:
    """Refuse a learning rate that is NaN, infinite, negative or not a number (`lr` may be a number, a slice, a
    list/array/tensor of per-group values, or None for the default); warn when every value is 0 (nothing trains)."""
    if lr is None or (type(lr) is float and lr > 0.0 and lr != math.inf):  # the usual case: a positive float
        return
    vals = _lr_values(lr)
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{where}: lr={lr!r} is not a number (expected a float, a slice of floats, or one float "
                            "per parameter group)")
        if not math.isfinite(v):
            raise ValueError(f"{where}: lr={lr!r} is not a finite number, so the first step would turn every weight "
                             "into nan; pass a positive learning rate such as lr=1e-3 (learn.lr_find() suggests one)")
        if v < 0:
            raise ValueError(f"{where}: lr={lr!r} is negative, which would climb the loss instead of descending it; "
                             "pass a positive learning rate such as lr=1e-3 (learn.lr_find() suggests one)")
    if vals and all(v == 0 for v in vals):
        warnings.warn(f"{where}: lr={lr!r} is 0, so training will not change the weights; pass a positive learning "
                      "rate such as lr=1e-3 (learn.lr_find() suggests one)", UserWarning, stacklevel=3)


def check_n_epoch(n_epoch: Any, where: str = "fit", name: str = "n_epoch") -> None:
    """Refuse a number of epochs that is not a non-negative int (`fit('2')`, `fit(1.5)`, `fit(-1)`), by name."""
    if isinstance(n_epoch, int) and not isinstance(n_epoch, bool) and n_epoch >= 0:
        return
    msg = f"{where}: {name}={n_epoch!r} must be a non-negative int (the number of epochs), e.g. {name}=3"
    if isinstance(n_epoch, (int, float)) and not isinstance(n_epoch, bool):
        raise ValueError(msg)
    raise TypeError(f"{msg}; got a {type(n_epoch).__name__}")


def _number(v: Any, where: str, name: str, example: str) -> float:
    # `v` as a float, or a TypeError naming the argument.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            if isinstance(v, (str, bytes)) or v is None:
                raise TypeError
            return float(v)  # a 0-d tensor or numpy number
        except (TypeError, ValueError):
            raise TypeError(f"{where}: {name}={v!r} is not a number; pass e.g. {name}={example}") from None
    return float(v)


def check_div(div: Any, where: str, name: str = "div", default: str = "25.0") -> None:
    """Refuse a schedule divisor (`fit_one_cycle`'s `div`, `div_final`) that is not a positive number: the lr it
    gives (`lr_max / div`) would be infinite (0), negative or NaN, and the step would write inf/NaN into the weights."""
    v = _number(div, where, name, default)
    if not v > 0:
        why = ("infinite, so its steps would turn every weight into inf/NaN" if v == 0 else
               "NaN, so its steps would turn every weight into NaN" if v != v else
               "negative, so the steps would climb the loss instead of descending it")
        raise ValueError(f"{where}: {name}={div!r} must be a positive number: the schedule's lr is lr_max/{name}, "
                         f"which would be {why}; pass e.g. {name}={default}")


def check_wd(wd: Any, where: str, name: str = "wd") -> None:
    """Refuse a weight decay that is NaN, infinite or negative (None, the default, is fine): the step would write
    inf/NaN into every weight. `wd` may be a number or one number per parameter group."""
    if wd is None or (type(wd) is float and 0.0 <= wd < math.inf):  # the usual case
        return
    for v in _lr_values(wd):
        x = _number(v, where, name, "0.01")
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"{where}: {name}={wd!r} must be a finite number >= 0 (a weight decay "
                             f"{'that is not finite' if not math.isfinite(x) else 'below 0'} turns the weights into "
                             f"inf/NaN or grows them); pass e.g. {name}=0.01, or {name}=None for the default")


def check_moms(moms: Any, where: str = "fit_one_cycle", name: str = "moms") -> None:
    """Refuse momentums that are not 3 finite numbers (start, middle, end), e.g. Keras' two-value habit."""
    seq = not isinstance(moms, (str, bytes)) and hasattr(moms, "__len__") and hasattr(moms, "__iter__")
    if not seq or len(moms) != 3:
        n = f"{len(moms)} values" if seq else f"a {type(moms).__name__}"
        raise TypeError(f"{where}: {name}={moms!r} is {n}, but it takes 3 values (start, middle, end) of the "
                        f"momentum schedule, e.g. {name}=(0.95, 0.85, 0.95)")
    for v in (x for m in moms for x in _lr_values(m)):  # a value may be one per parameter group
        if not math.isfinite(_number(v, where, name, "(0.95, 0.85, 0.95)")):
            raise ValueError(f"{where}: {name}={moms!r} holds a value that is not finite; pass e.g. "
                             f"{name}=(0.95, 0.85, 0.95)")


def _non_finite_param(learn: Any) -> str | None:
    # The name of the first parameter of the learner's model that holds NaN/inf, None when all are finite.
    model = getattr(learn, "model", None)
    if not isinstance(model, nn.Module):
        return None
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                return name
    return None


def _hypers_text(learn: Any) -> str:
    # "lr=..., wd=..." of the optimizer's last parameter group (what the last step used), or "" when unknown.
    hypers = getattr(getattr(learn, "opt", None), "hypers", None)
    if not hypers:
        return ""
    h = hypers[-1]
    return ", ".join(f"{k}={h[k]:.3g}" if isinstance(h[k], float) else f"{k}={h[k]!r}" for k in ("lr", "wd") if k in h)


def check_finite_loss(loss: Tensor, epoch: int, batch: int, learn: Any = None) -> None:
    """Raise `NonFiniteLossError` when the (scalar) training `loss` of `epoch`/`batch` is NaN or infinite.

    Called before backward and step, so the model keeps the weights of the last finite step, unless that step
    itself wrote inf/NaN into them: then (`learn` given, its parameters checked only here, when the loss is not
    finite) the message says so and how to recover. A loss that is not a scalar is left to backward (which refuses
    it with its own note)."""
    if loss.ndim or math.isfinite(loss.item()):
        return
    fixes = ("Likely fixes: a lower learning rate (learn.lr_find() suggests one); check the inputs and targets for "
             "NaN/inf (torch.isfinite(x).all()); clip the gradients (cbs=GradientClip(1.0)).")
    bad = _non_finite_param(learn) if learn is not None else None
    if bad is not None:
        hp = _hypers_text(learn)
        since = ("they were so when this fit started (an earlier fit or a load left them)"
                 if getattr(learn, "train_iter", None) == 0 else
                 "they are NaN/inf since the previous step" + (f", taken with {hp}" if hp else ""))
        raise NonFiniteLossError(
            f"the training loss is {loss.item()} at epoch {epoch}, batch {batch}, and the model's weights are no "
            f"longer finite (parameter {bad!r} holds NaN/inf): {since}. Training on cannot recover them: reload "
            "them (learn.load(...) of a saved model, or the last checkpoint) or re-create the learner. " + fixes)
    raise NonFiniteLossError(
        f"the training loss is {loss.item()} at epoch {epoch}, batch {batch}: the fit stopped before this batch's "
        "backward and step, so the weights are those of the last finite step. " + fixes + " A callback can skip such "
        "batches itself by raising CancelBatchException in after_loss.")


def check_recorded_losses(learn: Any, vals: list[float], first: int) -> None:
    """Raise `NonFiniteLossError` when one of `vals` (training losses the Recorder just read, the first being training
    batch `first` of the fit) is NaN or infinite.

    The GPU form of `check_finite_loss`: reading a loss each batch would make the CPU wait for the GPU, so the check
    rides on the values the Recorder copies in bulk anyway (at a progress redraw, every 512 batches, at the end of a
    pass). It stops the fit soon after, not before the step; it raises once (`learn._check_nan_late` goes None)."""
    bad = next((i for i, v in enumerate(vals) if not math.isfinite(v)), None)
    if bad is None:
        return
    learn._check_nan_late = None
    later = len(vals) - bad - 1
    raise NonFiniteLossError(
        f"the training loss is {vals[bad]} at training batch {first + bad} of the fit (epoch {learn.epoch}); on a GPU "
        "the loss is checked where the Recorder reads it (no device sync per batch), so the fit stopped "
        f"{later} step{'s' * (later != 1)} later and the weights are probably no longer finite: reload the last checkpoint. "
        "Likely fixes: a lower learning rate (learn.lr_find() suggests one); check the inputs and targets for NaN/inf "
        "(torch.isfinite(x).all()); clip the gradients (cbs=GradientClip(1.0)).")


def _class_dim(loss_func: Any, pred: Tensor) -> int | None:
    # The dim of the class scores for a loss that takes class indices, None for any other loss.
    func = getattr(loss_func, "func", None)  # tiers' flattened losses (CrossEntropyLossFlat) wrap a torch loss
    if isinstance(func, _CLASS_MODULES) and isinstance(getattr(loss_func, "axis", None), int):
        return loss_func.axis
    if isinstance(loss_func, _CLASS_MODULES) or loss_func in _CLASS_FUNCS:
        return 1 if pred.ndim >= 2 else 0
    return None


def check_loss_inputs(loss_func: Callable, pred: Any, yb: tuple) -> None:
    """Check the first batch of a fit before its loss: refuse what a loss would silently get wrong.

    An elementwise loss (MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss, BCEWithLogitsLoss and their functional
    forms) given an output and a target of different shapes that broadcast: torch would compare every output with
    every target. A class-index loss (CrossEntropyLoss, NLLLoss, CrossEntropyLossFlat) given a label the output has no
    class for. Raises ValueError naming the loss, both shapes and the fix."""
    if not isinstance(pred, Tensor) or len(yb) != 1 or not isinstance(yb[0], Tensor):
        return
    targ, name = yb[0], loss_name(loss_func)
    if isinstance(loss_func, _ELEMENTWISE_MODULES) or loss_func in _ELEMENTWISE_FUNCS:
        if pred.shape != targ.shape:
            try:
                out = torch.broadcast_shapes(pred.shape, targ.shape)
            except RuntimeError:
                return  # torch refuses it itself (and annotate_loss_error explains)
            raise ValueError(
                f"loss {name}: the model's output has shape {tuple(pred.shape)} but the target has shape "
                f"{tuple(targ.shape)}; the loss would broadcast them to {tuple(out)} and compare every output with "
                "every target. Use the flattened loss (e.g. MSELossFlat(), L1LossFlat(), BCEWithLogitsLossFlat()), or "
                "make the shapes equal (squeeze the output's last dim, or unsqueeze the target).")
        return
    dim = _class_dim(loss_func, pred)
    if dim is None or targ.is_floating_point() or targ.is_complex() or not pred.is_floating_point() or not targ.numel():
        return
    if not -pred.ndim <= dim < pred.ndim:
        return
    n, dim = pred.shape[dim], dim % pred.ndim
    lo, hi = (int(v) for v in torch.aminmax(targ))  # one op and one read in the usual case (every label in range)
    if 0 <= lo and hi < n:
        return
    ignore = getattr(loss_func, "ignore_index", getattr(getattr(loss_func, "func", None), "ignore_index", -100))
    valid = targ[targ != ignore]
    if not valid.numel():
        return
    lo, hi = int(valid.min()), int(valid.max())  # one sync, on the first batch of a fit only
    if hi >= n or lo < 0:
        bad = hi if hi >= n else lo
        raise ValueError(
            f"loss {name}: the model's output has shape {tuple(pred.shape)}, i.e. {n} class{'es' * (n != 1)} on dim {dim}, but a "
            f"target label is {bad} (labels must be 0..{n - 1}): the model has {n} output{'s' * (n != 1)} but a label is {bad}; check "
            "n_out (the model's last layer) against the number of classes / the vocab"
            + (f"; if {bad} marks values to skip (e.g. 'void' mask pixels), give the loss ignore_index={bad}" if bad >= n else "")
            + ".")


def _once(e: BaseException) -> bool:
    # True the first time an exception is seen here (cancel exceptions are the loop's control flow: never noted).
    if isinstance(e, CANCEL_EXCEPTIONS) or getattr(e, _NOTED, False):
        return False
    try:
        setattr(e, _NOTED, True)
    except AttributeError:
        return False
    return True


_CHANNELS = re.compile(r"expected input\[([^\]]*)\] to have (\d+) channels, but got (\d+) channels")
_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")


def annotate_forward_error(e: BaseException, model: nn.Module, xb: tuple) -> None:
    """Add a note to `e`, raised by `model`'s forward on inputs `xb`: where it happened, the inputs' shapes and
    dtypes, and the likely fix for the usual mismatches (input channels, input features)."""
    if not _once(e):
        return
    note = f"raised in the model's forward ({type(model).__name__}) on a batch of {describe(xb)}"
    msg = str(e)
    m = _CHANNELS.search(msg)
    if m:
        want, got = m.group(2), m.group(3)
        note += (f": the model's first layer expects {want} channel{'s' * (want != '1')} but the batch has {got}; "
                 f"build the model with n_in={got} (or a first layer with {got} input channels)")
        if want == "1":
            note += ", or convert the images to one channel (PILImageBW in the ImageBlock: ImageBlock(cls=PILImageBW))"
    m = _MATMUL.search(msg)
    if m:
        note += (f": a linear layer expects {m.group(3)} input features but gets {m.group(2)}; check the model's "
                 "input size (n_in / in_features) against the data's features")
    e.add_note(note)


def annotate_loss_error(e: BaseException, loss_func: Any, pred: Any, yb: tuple) -> None:
    """Add a note to `e`, raised by the loss: the loss, the output's and target's shapes and dtypes, and the likely
    fix (labels beyond the model's outputs, float targets for cross-entropy, output and target of other sizes)."""
    if not _once(e):
        return
    name = loss_name(loss_func)
    note = f"raised in the loss {name} on the model's output of {describe(pred)} and a target of {describe(yb)}"
    msg = str(e)
    targ = yb[0] if len(yb) == 1 and isinstance(yb[0], Tensor) else None
    m = re.search(r"Target (-?\d+) is out of bounds", msg)
    if m and isinstance(pred, Tensor):
        dim = _class_dim(loss_func, pred)
        n = pred.shape[dim] if dim is not None and -pred.ndim <= dim < pred.ndim else "fewer"
        note += (f": the model has {n} outputs but a label is {m.group(1)}; check n_out (the model's last layer) "
                 "against the number of classes / the vocab")
    elif targ is not None and targ.is_floating_point() and ("Long" in msg or "dtype" in msg or "scalar type" in msg):
        note += (f": this loss takes class indices, i.e. an integer (torch.long) target, but the target is "
                 f"{str(targ.dtype).removeprefix('torch.')}; for class labels convert them (.long(), or a "
                 "CategoryBlock), for a regression target use MSELossFlat()")
    elif (targ is not None and isinstance(pred, Tensor) and targ.ndim == 2 and targ.shape == pred.shape
          and targ.shape[1] > 1 and bool(((targ == 0) | (targ == 1)).all())):
        # Keras' to_categorical habit: a flat cross-entropy flattens (bs, C) one-hot targets into bs*C "labels"
        note += (f": the targets look one-hot (shape {tuple(targ.shape)}, only 0/1); this loss takes class indices: "
                 "pass y.argmax(1) (or a CategoryBlock), or for multi-label targets use BCEWithLogitsLossFlat()")
    elif "batch_size" in msg or "size" in msg or "shape" in msg:
        note += (": the loss expects an output of shape (batch, n_classes) for class targets, or the target's shape "
                 "for an elementwise loss; check the model's last layers (a missing Flatten, an extra dim, a view) "
                 "and n_out")
    e.add_note(note)


def annotate_backward_error(e: BaseException, loss: Any) -> None:
    """Add a note to `e`, raised by backward: a loss that is not a scalar needs a reduction."""
    if not isinstance(loss, Tensor) or not loss.ndim or not _once(e):
        return
    e.add_note(f"backward needs a scalar loss, but the loss returned a tensor of shape {tuple(loss.shape)}: use "
               "reduction='mean' (or 'sum') in the loss, or reduce it in your loss function")
