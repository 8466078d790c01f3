"""`Learner`: a model, its data, loss and optimizer, and the training loop wrapped in callback events.

>>> learn = Learner(dls, model, metrics=accuracy)          # doctest: +SKIP
>>> learn.fit_one_cycle(3, 1e-3)                            # doctest: +SKIP
>>> preds, targs = learn.get_preds()                        # doctest: +SKIP

Everything a Learner can do is declared in this file; where the work lives in another module (schedules,
the LR finder, inference, persistence, mixed precision...) the method is a short delegate to it.

The loop (`fit` -> epochs -> train/validate -> batches -> backward/step) is a set of small methods; every
level goes through the one event wrapper `_with_events` (before_X, the body, after_cancel_X on
`CancelXException`, after_X), so a callback can observe or change every step (see `tiers.train.events`,
and `show_training_loop()`). The loop itself sets `train()`/`eval()` modes, `training` and the progress
counters; its state lives in `learn.state` (a `LoopState`), exposed as `learn.xb`, `learn.pred`, ...

Attributes: a Learner does not forward unknown attribute reads to its model except, as in fastai, the
model's own children, parameters and buffers (`learn.fc` is `learn.model.fc`). `learn.train()`,
`learn.eval()`, `learn.to()`, `learn.state_dict()` are the Learner's own (see their docstrings and the
package README).
"""

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from tiers.dispatch import defaults
from tiers.dispatch.paths import Path as _TPath
from tiers.optim import Adam
from tiers.tensors import L, to_device
from tiers.train import checks as _checks
from tiers.train import plain_torch as _plain
from tiers.train import predict as _predict
from tiers.train.callbacks import distributed as _distributed
from tiers.train.callbacks import fp16 as _fp16
from tiers.train.callbacks import lr_finder as _lr_finder
from tiers.train.callbacks import schedule as _schedule
from tiers.train.callbacks import training as _training
from tiers.train.callbacks.core import Callback, CastToTensor, reraise_in_callback
from tiers.train.callbacks.progress import ProgressCallback
from tiers.train.callbacks.recorder import Recorder
from tiers.train.events import (
    CANCEL_EXCEPTIONS,
    EVENT_NAMES,
    INNER_LOOP,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
)
from tiers.train.io.checkpoint import resume_callback, save_checkpoint
from tiers.train.io.export import export_learner
from tiers.train.io.persist import learner_load, learner_save
from tiers.train.metrics.base import mk_metric
from tiers.train.nn.loss_choice import loss_for_batch
from tiers.train.nn.model_utils import norm_bias_params, trainable_params
from tiers.train.nn.summary import ModelSummary, learner_summary
from tiers.train.state import _LAZY as _LAZY_LOSS
from tiers.train.state import LoopState

__all__ = ["Learner"]

# (before, after_cancel, after) names per loop level, built once rather than formatted per batch.
_LEVELS = {k: (f"before_{k}", f"after_cancel_{k}", f"after_{k}") for k in ("fit", "epoch", "train", "validate", "batch", "backward", "step")}

# What `learn.<name>` may read from the model when the Learner has no such attribute: only the model's own
# children, parameters and buffers (fastai's `learn.fc`), never its methods (`train`, `to`, `state_dict`...).
_MODEL_MEMBERS = ("_modules", "_parameters", "_buffers")


# Callbacks that deal with a NaN/inf training loss themselves: the loop's own check (a NonFiniteLossError) stays off.
_NAN_CBS = (_training.TerminateOnNaNCallback, _lr_finder.LRFinder)


def _make_default_cbs() -> list[Callback]:
    # What every Learner starts with unless default_cbs=False, then whatever `defaults.callbacks` adds.
    extra = [cb() if isinstance(cb, type) else cb for cb in (getattr(defaults, "callbacks", None) or [])]
    return [Recorder(), CastToTensor(), ProgressCallback(), *extra]


def _listify(o: Any) -> list:
    if o is None:
        return []
    if isinstance(o, (list, tuple, L)):
        return list(o)
    return [o]


def _first_tensor(b: Any) -> Tensor | None:
    if isinstance(b, Tensor):
        return b
    if isinstance(b, (tuple, list)):
        for o in b:
            t = _first_tensor(o)
            if t is not None:
                return t
    if isinstance(b, dict):
        return _first_tensor(list(b.values()))
    return None


_SEQ = (tuple, list)


def _first_member(m: nn.Module, kind: str) -> Tensor | None:
    # The first tensor of `m.<kind>` (`_parameters` or `_buffers`) in `named_modules` order (the module itself, then
    # its children depth first; a module reached twice is skipped as there), or None.
    seen: set[int] = set()
    stack = [m]
    while stack:
        mod = stack.pop()
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        for t in mod.__dict__.get(kind, {}).values():
            if t is not None:
                return t
        stack.extend(c for c in reversed(mod._modules.values()) if c is not None)
    return None


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class _LoopStep:
    # The loop's own per-batch bookkeeping, run as the first `after_batch` handler in training (where
    # fastai's TrainEvalCallback ran): callbacks handling after_batch see the batch counted.
    run = True

    def __init__(self, learn: "Learner") -> None:
        self.learn = learn

    def __repr__(self) -> str:
        return "Learner (advance train_iter, pct_train)"


def _cast_noop_on_plain(cb: Any) -> bool:
    # A `CastToTensor` whose before_batch is the class's own: it does nothing to a batch of plain tensors.
    return (isinstance(cb, CastToTensor) and type(cb).before_batch is CastToTensor.before_batch
            and "before_batch" not in cb.__dict__)


def _batch_plan(ev: dict[str, tuple], batch_level: tuple, grad_inline: bool) -> tuple:
    # One mode's handlers of the batch level, as `_run_batches` reads them once per batch (see `_invalidate_cbs`).
    h_before, h_cancel, h_after, count = batch_level[3], batch_level[4], batch_level[5], batch_level[6]
    # CastToTensor first (no handler before it could have changed the batch): skipped on plain tensors.
    h_plain = h_before[1:] if h_before and _cast_noop_on_plain(h_before[0][0]) else h_before
    # A Recorder whose after_batch is the class's own, running first among the callbacks' after_batch handlers in
    # training: the loop records the batch itself (the usual case written out, the handler called otherwise).
    rec = None
    # (A Recorder being unpickled has no batch log yet: the handler is called until the plan is next rebuilt.)
    if count and h_after and _plain_recorder(*h_after[0]):
        rec, h_after = (h_after[0][0], h_after[0][1], h_after[0][0].__dict__["_log"]), h_after[1:]
    h_pred, h_loss = ev["after_pred"], ev["after_loss"]
    # Steady: between the before_batch and after_batch handlers nothing runs but the loop itself (no after_pred or
    # after_loss handler; backward and step written out when training), so `Learner._steady_batches` may run it.
    steady = not (h_pred or h_loss) and (grad_inline or not count)
    return h_before, h_plain, h_pred, h_loss, h_cancel, h_after, count, grad_inline, rec, steady


def _plain_recorder(cb: Any, f: Any) -> bool:
    return (isinstance(cb, Recorder) and type(cb).after_batch is Recorder.after_batch
            and "after_batch" not in cb.__dict__ and "_log" in cb.__dict__ and getattr(f, "__func__", None) is Recorder.after_batch
            and getattr(f, "__self__", None) is cb)


def _state_attr(name: str, doc: str) -> property:
    def fget(self: "Learner") -> Any:
        return getattr(self.state, name)

    def fset(self: "Learner", v: Any) -> None:
        setattr(self.state, name, v)

    return property(fget, fset, doc=doc)


class Learner:
    """Train `model` on `dls` with `loss_func` and an optimizer from `opt_func`, through callbacks.

    `loss_func=None` picks a loss from the targets' type (`default_loss`). `lr=None` reads `defaults.lr`.
    `splitter(model)` gives the parameter groups (for freezing and discriminative learning rates).
    `wd_bn_bias=False` keeps weight decay off normalisation and bias parameters; `train_bn=True` keeps
    normalisation layers trainable when their group is frozen. `cbs` (a callback, a class, or a list/`L` of
    them) are added to the defaults (`Recorder`, `CastToTensor`, `ProgressCallback`, then `defaults.callbacks`;
    `default_cbs=False` leaves them out and the loop still trains). The model goes to `dls.device` (when set)
    and batches follow the model. `learn.fc` reads the model's child `fc` (children, parameters and buffers
    only).
    """

    def __init__(
        self,
        dls: Any,
        model: nn.Module,
        loss_func: Callable | None = None,
        opt_func: Callable = Adam,
        lr: float | None = None,
        splitter: Callable[[nn.Module], list] = trainable_params,
        cbs: Callback | type | Iterable | None = None,
        metrics: Any = None,
        path: str | Path | None = None,
        model_dir: str | Path = "models",
        wd: float | None = None,
        wd_bn_bias: bool = False,
        train_bn: bool = True,
        moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
        default_cbs: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Learner: model must be a torch.nn.Module, got {type(model).__name__}")
        self.state = LoopState()
        self.dls, self.model = _plain.as_dataloaders(dls), model  # a (train, valid) tuple or a single torch loader too
        # tiers' Path (`.ls()`...), as `dls.path` is: fastai's `learn.path` is fastcore's patched Path
        self.path = _TPath(path if path is not None else getattr(self.dls, "path", "."))
        self.model_dir = _TPath(model_dir)
        self.loss_func = loss_func if loss_func is not None else self._default_loss()
        self.opt_func, self.splitter = opt_func, splitter
        self.lr = defaults.lr if lr is None else lr
        _checks.check_wd(wd, "Learner")  # nan/inf/negative would turn every weight into nan at the first step
        self.wd, self.wd_bn_bias, self.train_bn, self.moms = wd, wd_bn_bias, train_bn, moms
        self.opt: Any = None
        self.logger: Callable[[Any], Any] = print
        self.lock = threading.RLock()  # re-entrant: a callback may call get_preds during validation
        self._batch_device: torch.device | None = None
        self._batch_on_cpu = True
        self._n_inp = 1
        self._cpu_pairs = True
        self._start_epoch = 0
        self._loop_step = _LoopStep(self)
        self._step_size = 0.0
        self.metrics = metrics
        self.cbs: L = L()
        self._ev: tuple[dict, dict] = ({}, {})
        self._invalidate_cbs()
        if default_cbs:
            self.add_cbs(_make_default_cbs())
        self.add_cbs(cbs)
        self("after_create")

    # ------------------------------------------------------------------ the loop's state, as attributes

    xb = _state_attr("xb", "The batch's inputs (a tuple).")
    yb = _state_attr("yb", "The batch's targets (a tuple; empty when the loader gives none).")
    pred = _state_attr("pred", "The model's output on `xb`.")
    loss = _state_attr("loss", "The batch's loss, detached (for logging).")
    loss_grad = _state_attr("loss_grad", "The batch's loss that `backward` runs on.")
    dl = _state_attr("dl", "The loader of the current pass.")
    iter = _state_attr("iter", "Index of the current batch in the pass.")
    n_iter = _state_attr("n_iter", "Batches in the current pass (0 when the loader has no length).")
    epoch = _state_attr("epoch", "The current epoch.")
    n_epoch = _state_attr("n_epoch", "Epochs of the current fit.")
    training = _state_attr("training", "True during the training pass (the model is in train mode).")
    validating = _state_attr("validating", "True during a validation-only pass (`validate`, `get_preds`).")
    pct_train = _state_attr("pct_train", "Fraction of the fit's training batches done (schedules read it).")
    train_iter = _state_attr("train_iter", "Training batches done in this fit.")
    _check_first_batch = False  # set by fit: its first batch goes through checks.check_loss_inputs
    _check_nan = False  # set by fit: a non-finite training loss stops it (checks.check_finite_loss)
    _check_nan_late: Callable | None = None  # the same on a GPU, called by the Recorder on the losses it reads

    @property
    def metrics(self) -> L:
        """The metrics computed on validation (as `Metric` objects)."""
        return self._metrics

    @metrics.setter
    def metrics(self, ms: Any) -> None:
        self._metrics = L([mk_metric(m) for m in _listify(ms)])

    @property
    def x(self) -> Any:
        """The single input (`xb[0]`) when there is one input, else `xb`."""
        xb = self.state.xb
        return xb[0] if len(xb) == 1 else xb

    @property
    def y(self) -> Any:
        """The single target (`yb[0]`) when there is one target, else `yb`."""
        yb = self.state.yb
        return yb[0] if len(yb) == 1 else yb

    @property
    def smooth_loss(self) -> Any:
        """Exponentially smoothed training loss (kept by the `Recorder`; None without one)."""
        rec = self.__dict__.get("recorder")
        return None if rec is None else rec.smooth_loss

    @property
    def final_record(self) -> list | None:
        """`[train_loss, valid_loss, *metrics]` of the last epoch (or `[valid_loss, *metrics]` after `validate`);
        a cancelled phase's values are None."""
        rec = self.__dict__.get("recorder")
        return None if rec is None else rec.final_record

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails. The one fall-through: the model's children, parameters and buffers.
        d = self.__dict__
        if not name.startswith("_") and "model" in d:
            model = d["model"]
            for members in _MODEL_MEMBERS:
                found = model.__dict__.get(members)
                if found is not None and name in found:
                    return found[name]
            if hasattr(model, name):
                raise AttributeError(
                    f"Learner has no attribute {name!r}; the model has one, but a Learner only forwards the model's "
                    f"children, parameters and buffers: use learn.model.{name}")
            raise AttributeError(f"Learner has no attribute {name!r}, and neither has its model")
        raise AttributeError(f"Learner has no attribute {name!r}")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("lock", None)
        state["_ev"] = ({}, {})
        state.pop("_lv", None)  # rebuilt with _ev on unpickling
        state.pop("_bp", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()
        if "_loop_step" not in self.__dict__:
            self._loop_step = _LoopStep(self)
        self._invalidate_cbs()

    # ------------------------------------------------------------------ the Learner as a whole (not the model's)

    def train(self, mode: bool = True) -> "Learner":
        """Put the model in training mode (`mode=False`: evaluation) and set `training` to match; returns the Learner.

        The loop does this itself at each pass; call it to run the model by hand in a given mode."""
        self.model.train(mode)
        self.state.training = bool(mode)
        return self

    def eval(self) -> "Learner":
        """Put the model in evaluation mode and set `training` to False; returns the Learner."""
        return self.train(False)

    def to(self, device: str | torch.device) -> "Learner":
        """Move the model, the loss function (when it has state) and the loaders (when they can move) to `device`;
        returns the Learner. Batches follow the model."""
        device = torch.device(device)
        self.model.to(device)
        if isinstance(self.loss_func, nn.Module):
            self.loss_func.to(device)
        if hasattr(self.dls, "to"):
            self.dls.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """The Learner's state: `{'model': weights, 'opt': optimizer state (None before one exists),
        'loop': learn.state.state_dict() (epoch, counters, pct_train)}`."""
        return {"model": self.model.state_dict(), "opt": None if self.opt is None else self.opt.state_dict(),
                "loop": self.state.state_dict()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> "Learner":
        """Restore what `state_dict` returned (the optimizer is created when the state has one); returns the Learner."""
        missing = {"model", "opt", "loop"} - set(state)
        if missing:
            raise KeyError(f"Learner.load_state_dict: missing keys {sorted(missing)} (expected what state_dict returns)")
        self.model.load_state_dict(state["model"], strict=strict)
        if state["opt"] is not None:
            self._ensure_opt()
            self.opt.load_state_dict(state["opt"])
        self.state.load_state_dict(state["loop"])
        return self

    # ------------------------------------------------------------------ loss and device

    def _default_loss(self) -> Callable:
        dls = self.dls
        n_inp = getattr(dls, "n_inp", 1) or 1
        ds = getattr(getattr(dls, "train", None), "dataset", None)
        # One item of the dataset is enough to learn the target type, and far cheaper than a batch.
        if ds is not None and hasattr(ds, "__getitem__") and hasattr(ds, "__len__"):
            try:
                item = ds[0] if len(ds) else None
            except Exception:
                item = None
            if isinstance(item, (tuple, list)) and len(item) > n_inp:
                try:
                    return loss_for_batch(tuple(item[n_inp:]), "the training dataset's first item")
                except TypeError:
                    pass  # an item-level type (e.g. a PIL mask) the batch transforms turn into a tensor type
        b = dls.one_batch()
        if not isinstance(b, (tuple, list)):
            b = (b,)
        return loss_for_batch(tuple(b[n_inp:]), "the first training batch")

    def _data_device(self) -> torch.device | None:
        dev = getattr(self.dls, "device", None)
        return torch.device(dev) if isinstance(dev, str) else dev

    def _model_device(self) -> torch.device:
        # The device of the model's first parameter (else buffer), as `next(model.parameters())` finds it, without
        # its generators (this runs at the start of every fit).
        t = _first_member(self.model, "_parameters")
        if t is None:
            t = _first_member(self.model, "_buffers")
        return t.device if t is not None else torch.device("cpu")

    # ------------------------------------------------------------------ optimizer

    def create_opt(self) -> None:
        """Build `self.opt` from `opt_func` over `splitter(model)` with `lr` (and the BN/bias rules)."""
        kw = getattr(self.opt_func, "keywords", None) or {}
        if "lr" in kw:
            self.lr = kw["lr"]
        self.opt = _plain.as_opt_func(self.opt_func)(self.splitter(self.model), lr=self.lr)  # torch classes wrapped
        state = getattr(self.opt, "state", None)
        if state is None:
            return
        if not self.wd_bn_bias:
            for p in norm_bias_params(self.model, with_bias=True):
                _param_state(state, p)["do_wd"] = False
        if self.train_bn:
            for p in norm_bias_params(self.model, with_bias=False):
                _param_state(state, p)["force_train"] = True

    def _ensure_opt(self) -> None:
        if self.opt is None:
            self.create_opt()

    def freeze_to(self, n: int) -> None:
        """Train only parameter groups `n` onward (negative `n` counts from the end); norm layers stay trainable."""
        self._ensure_opt()
        self.opt.freeze_to(n)
        if hasattr(self.opt, "clear_state"):
            self.opt.clear_state()
        if self.train_bn:
            # The BN bypass (paper 4.1) is the Learner's rule, so enforce it whatever the optimizer does.
            for p in norm_bias_params(self.model, with_bias=False):
                p.requires_grad_(True)

    def freeze(self) -> None:
        """Train only the last parameter group (the head)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter group."""
        self.freeze_to(0)

    # ------------------------------------------------------------------ callbacks

    def _invalidate_cbs(self) -> None:
        # Rebuild, per mode (0: validation, 1: training) and event, the tuple of (callback, handler) to run: firing
        # an event is then a dict lookup and a loop over exactly the callbacks that define it.
        valid: dict[str, list] = {name: [] for name in EVENT_NAMES}
        train: dict[str, list] = {name: [] for name in EVENT_NAMES}
        train["after_batch"].append((self._loop_step, self._advance))
        for cb in sorted(self.cbs, key=lambda c: c.order):
            for name in cb.handled_events():
                f = getattr(cb, name)
                if name not in INNER_LOOP or cb.run_train:
                    train[name].append((cb, f))
                if name not in INNER_LOOP or cb.run_valid:
                    valid[name].append((cb, f))
        self._ev = ({k: tuple(v) for k, v in valid.items()}, {k: tuple(v) for k, v in train.items()})
        # Per mode and loop level, (before, after_cancel, after) names and their handler tuples: `_with_events`
        # then reads one entry per level instead of formatting or looking up three events.
        self._lv = tuple({k: (*names, *(ev[n] for n in names), False) for k, names in _LEVELS.items()} for ev in self._ev)
        # Training's batch level: the loop's own first after_batch handler (`_LoopStep`, counting the batch) is
        # written out in `_with_events` (the last field says so); `_ev` keeps it for `learn("after_batch")` and
        # `show_training_loop`. Same place in the order: after after_cancel_batch, before every callback's after_batch.
        *head, h_after, _ = self._lv[1]["batch"]
        if h_after and h_after[0][0] is self._loop_step:
            self._lv[1]["batch"] = (*head, h_after[1:], True)
        cls = type(self)
        self._inline_grad_step = cls._backward is _BACKWARD and cls._step is _STEP
        self._quiet_grad_step = not any(train[f"{w}_{k}"] for k in ("backward", "step")
                                        for w in ("before", "after", "after_cancel"))
        self._grad_inline = self._quiet_grad_step and self._inline_grad_step  # backward and step written out
        # The batch plan of `_run_batches`, per mode: (before_batch handlers, the same for a batch of two plain
        # tensors, after_pred, after_loss, after_cancel_batch, after_batch (the callbacks'), count the batch?,
        # backward and step written out?).
        self._bp = tuple(_batch_plan(ev, lv["batch"], self._grad_inline) for ev, lv in zip(self._ev, self._lv))

    def __call__(self, event_name: str | Iterable[str]) -> None:
        """Fire the event `event_name` (or each of a list of events) on the callbacks, in `order`."""
        if not isinstance(event_name, str):
            for e in event_name:
                self(e)
            return
        try:
            handlers = self._ev[self.state.training][event_name]
        except KeyError:
            raise ValueError(f"Learner: {event_name!r} is not an event; events are {', '.join(EVENT_NAMES)}") from None
        if handlers:
            self._run_handlers(handlers, event_name)

    def _run_handlers(self, handlers: tuple, event_name: str) -> None:
        for cb, f in handlers:
            if cb.run:
                try:
                    f()
                except CANCEL_EXCEPTIONS:
                    raise
                except Exception as e:
                    reraise_in_callback(e, cb, event_name)

    def ordered_cbs(self, event_name: str) -> L:
        """Callbacks that handle `event_name`, in the order they run."""
        name = str(event_name)
        return L([cb for cb in sorted(self.cbs, key=lambda c: c.order) if name in cb.handled_events()])

    def add_cb(self, cb: Callback | type) -> "Learner":
        """Attach `cb` (an instance or a class to instantiate); it becomes `learn.<cb.name>`."""
        if isinstance(cb, type):
            cb = cb()
        if not isinstance(cb, Callback):
            raise TypeError(f"add_cb: {cb!r} is not a Callback (subclass tiers.train.Callback)")
        if cb.learn is not None and cb.learn is not self:
            raise ValueError(f"add_cb: {type(cb).__name__} is already attached to another Learner")
        object.__setattr__(cb, "learn", self)
        current = self.__dict__.get(cb.name)
        if current is None or isinstance(current, Callback):
            self.__dict__[cb.name] = cb
        self.cbs.append(cb)
        self._invalidate_cbs()
        return self

    def add_cbs(self, cbs: Any) -> "Learner":
        """Attach each of `cbs` (a callback, a class, or a list/`L` of them)."""
        for cb in _listify(cbs):
            self.add_cb(cb)
        return self

    def remove_cb(self, cb: Callback | type) -> "Learner":
        """Detach `cb`, or every callback of class `cb`."""
        # `learn.cbs` holds Callbacks only (add_cb refuses anything else)
        targets = cast(list[Callback], [c for c in self.cbs if isinstance(c, cb)] if isinstance(cb, type) else [cb])
        for c in targets:
            if c in self.cbs:
                self.cbs.remove(c)
            object.__setattr__(c, "learn", None)
            name = c.name
            if self.__dict__.get(name) is c:
                del self.__dict__[name]
        self._invalidate_cbs()
        return self

    def remove_cbs(self, cbs: Any) -> "Learner":
        """Detach each of `cbs`."""
        for cb in _listify(cbs):
            self.remove_cb(cb)
        return self

    @contextmanager
    def added_cbs(self, cbs: Any) -> Iterator["Learner"]:
        """Context manager: `cbs` are attached inside the block only."""
        cbs = [cb() if isinstance(cb, type) else cb for cb in _listify(cbs)]
        self.add_cbs(cbs)
        try:
            yield self
        finally:
            self.remove_cbs(cbs)

    @contextmanager
    def removed_cbs(self, cbs: Any) -> Iterator["Learner"]:
        """Context manager: `cbs` are detached inside the block only (then re-attached)."""
        cbs = [c for c in _listify(cbs) if c in self.cbs]
        self.remove_cbs(cbs)
        try:
            yield self
        finally:
            self.add_cbs(cbs)

    @contextmanager
    def no_logging(self) -> Iterator["Learner"]:
        """Context manager: no per-epoch metrics output inside the block."""
        old = self.logger
        self.logger = _noop
        try:
            yield self
        finally:
            self.logger = old

    @contextmanager
    def no_bar(self) -> Iterator["Learner"]:
        """Context manager: no progress bar inside the block (the metrics table is still printed)."""
        progress = [cb for cb in self.cbs if isinstance(cb, ProgressCallback)]
        olds = [cb.show_bar for cb in progress]
        for cb in progress:
            cb.show_bar = False
        try:
            yield self
        finally:
            for cb, old in zip(progress, olds):
                cb.show_bar = old

    no_mbar = no_bar

    def show_training_loop(self) -> str:
        """Print (and return) the loop's levels and events in firing order, each event with its handlers in order.

        The first handler of training's `after_batch` is the loop itself (it counts the batch)."""
        batch = ["before_batch", "after_pred", "after_loss", "before_backward", "after_cancel_backward", "after_backward",
                 "before_step", "after_cancel_step", "after_step", "after_cancel_batch", "after_batch"]
        layout: list[tuple[int, str, int]] = [(0, "Start Fit", -1), (1, "before_fit", 1), (1, "Start Epoch Loop", -1),
                                              (2, "before_epoch", 1), (2, "Start Train", -1), (3, "before_train", 1),
                                              (3, "Start Batch Loop", -1)]
        layout += [(4, e, 1) for e in batch]
        layout += [(3, "End Batch Loop", -1), (2, "End Train", -1), (3, "after_cancel_train", 1), (3, "after_train", 1),
                   (2, "Start Valid", -1), (3, "before_validate", 1), (3, "Start Batch Loop", -1)]
        layout += [(4, e, 0) for e in batch if "backward" not in e and "step" not in e]
        layout += [(3, "End Batch Loop", -1), (2, "End Valid", -1), (3, "after_cancel_validate", 1),
                   (3, "after_validate", 1), (1, "End Epoch Loop", -1), (2, "after_cancel_epoch", 1),
                   (2, "after_epoch", 1), (0, "End Fit", -1), (1, "after_cancel_fit", 1), (1, "after_fit", 1)]
        width = max(len(e) for e in EVENT_NAMES)
        lines = []
        for depth, label, mode in layout:
            pad = "  " * depth
            if mode < 0:
                lines.append(pad + label)
            else:
                names = ", ".join(repr(cb) for cb, _ in self._ev[mode][label])
                lines.append(f"{pad} - {label:<{width}}: [{names}]")
        text = "\n".join(lines)
        print(text)
        return text

    # ------------------------------------------------------------------ the loop

    def _with_events(self, f: Callable[[], Any], kind: str, ex: type[BaseException], final: Callable | None = None) -> None:
        # The one event wrapper of every loop level: before_X, the body, after_cancel_X when the body raises
        # CancelXException, then after_X (and `final`, e.g. the end-of-fit cleanup). The handler table is read
        # once: the mode never changes inside a level's own events.
        # The before/after handler loops are `_run_handlers` written out: this runs several times per batch.
        st = self.state
        before, cancel, after, h_before, h_cancel, h_after, count = self._lv[st.training][kind]
        try:
            for cb, fn in h_before:
                if cb.run:
                    try:
                        fn()
                    except CANCEL_EXCEPTIONS:
                        raise
                    except Exception as e:
                        reraise_in_callback(e, cb, before)
            f()
        except ex:
            if h_cancel:
                self._run_handlers(h_cancel, cancel)
        if count:  # a training batch: `_advance` written out (it runs every batch)
            st.pct_train += self._step_size
            st.train_iter += 1
        for cb, fn in h_after:
            if cb.run:
                try:
                    fn()
                except CANCEL_EXCEPTIONS:
                    raise
                except Exception as e:
                    reraise_in_callback(e, cb, after)
        if final is not None:
            final()

    def _advance(self) -> None:
        # The loop's own after_batch step in training (first handler): count the batch.
        st = self.state
        st.pct_train += self._step_size
        st.train_iter += 1

    def _set_device(self, b: Any) -> Any:
        dev = self._batch_device
        if dev is None:
            return b
        t = b[0] if type(b) in (tuple, list) and b and isinstance(b[0], Tensor) else _first_tensor(b)
        if t is None:
            return b
        # `is_cpu` is a plain flag; building `t.device` to compare costs several times more.
        if (t.is_cpu if self._batch_on_cpu else t.device == dev):
            return b
        return to_device(b, dev, non_blocking=True)

    def _split(self, b: Any) -> None:
        st = self.state
        if isinstance(b, (tuple, list)):  # tuple subclasses too (fastai's fastuple, namedtuples): split at n_inp
            i = self._n_inp
            if i == 1 and len(b) == 2:
                st.xb, st.yb = (b[0],), (b[1],)
            else:
                st.xb, st.yb = tuple(b[:i]), tuple(b[i:])
        elif isinstance(b, dict):
            st.xb, st.yb = _plain.split_dict_batch(self, b)  # by DictBatch(inputs=, targets=), else refused
        else:
            st.xb, st.yb = (b,), ()

    def _backward(self) -> None:
        try:
            self.state.loss_grad.backward()
        except Exception as e:
            _checks.annotate_backward_error(e, self.state.loss_grad)  # a loss that is not a scalar names its reduction
            raise

    def _step(self) -> None:
        self.opt.step()

    def _do_one_batch(self) -> None:
        st = self.state
        ev = self._ev[st.training]
        try:
            st.pred = self.model(*st.xb)
        except Exception as e:
            _checks.annotate_forward_error(e, self.model, st.xb)  # try/except: no cost unless it raised
            raise
        h = ev["after_pred"]
        if h:
            self._run_handlers(h, "after_pred")
        if st.yb:
            if self._check_first_batch:  # the first batch of a fit: shapes that would broadcast, labels beyond n_out
                self._check_first_batch = False
                _checks.check_loss_inputs(self.loss_func, st.pred, st.yb)
            try:
                lg = self.loss_func(st.pred, *st.yb)
            except Exception as e:
                _checks.annotate_loss_error(e, self.loss_func, st.pred, st.yb)
                raise
            # `loss` is its detached view, built when first read (LoopState.set_loss_grad). A callback that rescales
            # the loss for backward should assign a new loss_grad rather than modify it in place.
            st.set_loss_grad(lg)
        h = ev["after_loss"]
        if h:
            self._run_handlers(h, "after_loss")
        if not st.training or not st.yb:
            return
        lg = st.loss_grad
        # Before backward and step (CPU only: on a GPU reading the value would sync each batch). `v - v` is 0.0 for
        # every finite float and NaN otherwise: `check_finite_loss`'s test without a call; it raises through that
        # function. The value read is kept as `loss_value` when it is the loss `loss` shows.
        if self._check_nan and not lg.ndim:
            v = lg.item()
            if v - v:
                _checks.check_finite_loss(lg, st.epoch, st.iter, self)
            if lg is st._loss_src:
                st.loss_value = v
        if self._grad_inline:
            # No callback handles the backward/step events and nothing overrides `_backward`/`_step` (the usual
            # case): their bodies, without the empty dispatch and two calls.
            try:
                lg.backward()
            except CancelBackwardException:
                pass
            except Exception as e:
                _checks.annotate_backward_error(e, lg)
                raise
            try:
                self.opt.step()
            except CancelStepException:
                pass
        else:
            self._grad_step()
        self.opt.zero_grad()

    def _grad_step(self) -> None:
        # Backward then step, each through its events (or, when no callback handles them, straight to the methods).
        if self._quiet_grad_step:
            try:
                self._backward()
            except CancelBackwardException:
                pass
            try:
                self._step()
            except CancelStepException:
                pass
        else:
            self._with_events(self._backward, "backward", CancelBackwardException)
            self._with_events(self._step, "step", CancelStepException)

    def one_batch(self, i: int, b: Any) -> None:
        """Run batch `b` (index `i`) through the model, loss and (when training) backward and step."""
        st = self.state
        st.iter = i
        # The usual batch, `(x, y)` of CPU tensors for a CPU model, is split here: `_set_device` and `_split` would
        # do the same through two more calls per batch.
        if self._cpu_pairs and type(b) in _SEQ and len(b) == 2 and isinstance(x := b[0], Tensor) and x.is_cpu:
            st.xb, st.yb = (x,), (b[1],)
        else:
            self._split(self._set_device(b))
        self._with_events(self._do_one_batch, "batch", CancelBatchException)

    def all_batches(self) -> None:
        """Run every batch of `self.dl`."""
        st = self.state
        d = self.__dict__
        cls = type(self)
        # Overrides (a subclass, an instance attribute, or a patch of Learner itself) take the general path.
        if (self._cpu_pairs and cls.one_batch is _ONE_BATCH and cls._with_events is _WITH_EVENTS
                and cls._do_one_batch is _DO_ONE_BATCH and "one_batch" not in d and "_with_events" not in d
                and "_do_one_batch" not in d):
            self._run_batches(st.dl)
            return
        one_batch = self.one_batch
        for i, b in enumerate(st.dl):
            one_batch(i, b)

    def _run_batches(self, dl: Iterable) -> None:
        # `all_batches` in the usual case (a CPU model with one input; nothing overrides `one_batch`, `_with_events`
        # or `_do_one_batch`). While the batch plan is steady (see `_batch_plan`) and the fit's first-batch checks
        # are done, `_steady_batches` runs the batches; each batch it does not take, and every batch of another plan,
        # goes through `one_batch`, the general path. `tests/train/test_loop_fast_path.py` runs both side by side.
        st = self.state
        it = enumerate(dl)
        one_batch = self.one_batch
        for i, b in it:
            if self._bp[st.training][9] and not self._check_first_batch:
                item = self._steady_batches(it, (i, b))
                if item is None:
                    return
                i, b = item
            one_batch(i, b)

    def _steady_batches(self, it: Iterator[tuple[int, Any]], first: tuple[int, Any]) -> tuple[int, Any] | None:
        # `one_batch` -> `_with_events(_do_one_batch, "batch")` written out as one loop for a steady plan: the same
        # events in the same order, the same state, errors and records, without what the plan rules out (after_pred
        # and after_loss handlers, backward and step events). Batches of two CPU tensors only. The plan is read once;
        # after any handler ran, a changed plan or mode hands the next batch back (returned, None at the end), and
        # a batch whose before_batch handlers changed the plan or left other than one input and one target is
        # finished by the general path. `CastToTensor` (when first) is not called for two plain tensors, on which
        # it does nothing. On a CPU fit every training loss is read before the step (`check_finite_loss`'s test: `v
        # - v` is 0.0 for every finite float) and kept as `loss_value` for the Recorder.
        st = self.state
        bps = self._bp
        training = st.training
        h_before, h_plain, _, _, h_cancel, h_after, _, _, rec, _ = bps[training]
        level = self._lv[training]["batch"]  # the same generation as `bps` (both rebuilt by `_invalidate_cbs`)
        read_loss, step_size = training and self._check_nan, self._step_size  # (off: a callback deals with NaN)
        for i, b in chain((first,), it):
            if bps is not self._bp or st.training is not training or type(b) not in _SEQ or len(b) != 2:
                return i, b
            x, y = b
            if not (isinstance(x, Tensor) and isinstance(y, Tensor) and x.is_cpu):
                return i, b
            st.iter = i
            st.xb, st.yb = xb0, yb0 = (x,), (y,)
            try:
                hb = h_plain if type(x) is Tensor and type(y) is Tensor else h_before
                if hb:
                    self._run_handlers(hb, "before_batch")
                    xb, yb = st.xb, st.yb
                    if bps is not self._bp or st.training is not training or len(xb) != 1 or len(yb) != 1:
                        self._finish_batch(level)  # the general path from here (the plan or the batch changed)
                        continue
                    if xb is not xb0 or yb is not yb0:
                        x, y = xb[0], yb[0]
                model = self.model
                try:
                    pred = st.pred = model(x)
                except Exception as e:
                    _checks.annotate_forward_error(e, model, st.xb)
                    raise
                loss_func = self.loss_func
                try:
                    lg = loss_func(pred, y)
                except Exception as e:
                    _checks.annotate_loss_error(e, loss_func, pred, st.yb)
                    raise
                st.loss_grad = st._loss_src = lg  # `st.set_loss_grad(lg)` written out
                st._loss = _LAZY_LOSS
                if not read_loss or lg.ndim:  # (a loss that is not a scalar: backward names the reduction)
                    st.loss_value = None
                else:
                    v = lg.item()
                    if v - v:  # NaN or inf
                        _checks.check_finite_loss(lg, st.epoch, i, self)
                    st.loss_value = v
                if training:
                    opt = self.opt
                    try:
                        lg.backward()
                    except CancelBackwardException:
                        pass
                    except Exception as e:
                        _checks.annotate_backward_error(e, lg)
                        raise
                    try:
                        opt.step()
                    except CancelStepException:
                        pass
                    opt.zero_grad()
            except CancelBatchException:
                if h_cancel:
                    self._run_handlers(h_cancel, "after_cancel_batch")
            if training:
                st.pct_train += step_size  # the loop's own first after_batch step (`_advance`)
                st.train_iter += 1
                if rec is not None:  # the Recorder's after_batch (see `_batch_plan`), its usual case written out
                    cb, fn, log = rec
                    if cb.run:
                        try:
                            if (log.state is st and st.training and (v := st.loss_value) is not None and st.yb
                                    and not log.train_metrics):
                                log.pending.append(v)
                                grp = log.lr_group
                                if grp is not None:
                                    log.lrs.append(grp["lr"])
                            else:
                                fn()
                        except CANCEL_EXCEPTIONS:
                            raise
                        except Exception as e:
                            reraise_in_callback(e, cb, "after_batch")
            for cb, fn in h_after:
                if cb.run:
                    try:
                        fn()
                    except CANCEL_EXCEPTIONS:
                        raise
                    except Exception as e:
                        reraise_in_callback(e, cb, "after_batch")
        return None

    def _finish_batch(self, level: tuple) -> None:
        # The rest of a batch whose before_batch handlers have run: `_with_events(_do_one_batch, "batch")` after its
        # before handlers. `level` is the batch level's entry read at the batch's start, as `_with_events` reads it.
        st = self.state
        _, cancel, after, _, h_cancel, h_after, count = level
        try:
            self._do_one_batch()
        except CancelBatchException:
            if h_cancel:
                self._run_handlers(h_cancel, cancel)
        if count:
            st.pct_train += self._step_size
            st.train_iter += 1
        if h_after:
            self._run_handlers(h_after, after)

    def _set_dl(self, dl: Any) -> None:
        st = self.state
        st.dl = dl
        try:
            st.n_iter = len(dl)
        except TypeError:
            st.n_iter = 0

    def _do_epoch_train(self) -> None:
        st = self.state
        self._set_dl(self.dls.train)
        # The loop owns the modes and the progress counters (fastai's TrainEvalCallback did this).
        st.pct_train = st.epoch / st.n_epoch
        self._step_size = 1.0 / (max(st.n_iter, 1) * st.n_epoch)
        self.model.train()
        st.training = True
        self._with_events(self.all_batches, "train", CancelTrainException)

    def _do_epoch_validate(self, ds_idx: int = 1, dl: Any = None) -> None:
        st = self.state
        if dl is None:
            dl = self.dls[ds_idx]
        self._set_dl(dl)
        self.model.eval()
        st.training = False
        with torch.no_grad():
            self._with_events(self.all_batches, "validate", CancelValidException)

    def _do_epoch(self) -> None:
        self._do_epoch_train()
        if _plain.has_loader(self.dls, 1):  # no validation loader: train only, the validation columns stay blank
            self._do_epoch_validate()

    def _do_fit(self) -> None:
        st = self.state
        for epoch in range(self._start_epoch, st.n_epoch):
            st.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def _prepare_run(self) -> None:
        self._n_inp = getattr(self.dls, "n_inp", 1) or 1
        dev = self._data_device()
        if dev is not None:
            self.model.to(dev)
            if isinstance(self.loss_func, nn.Module) or hasattr(self.loss_func, "to"):
                self.loss_func.to(dev)
        self._batch_device = self._model_device()
        self._batch_on_cpu = self._batch_device.type == "cpu"
        self._cpu_pairs = self._batch_on_cpu and self._n_inp == 1  # one_batch's fast split applies

    def _begin(self, n_epoch: int) -> None:
        # Start of a fit or of a validation-only pass: counters reset, model and loss on the data's device.
        self.state.start_fit(n_epoch)
        self.state.loss = torch.tensor(0.0)
        self._prepare_run()
        if hasattr(self.model, "reset"):  # a recurrent model's state (fastai's protocol)
            self.model.reset()  # type: ignore[operator]  # torch's stub types unknown Module attributes as Tensor|Module

    def _end_cleanup(self) -> None:
        self.state.clear_batch()
        for cb in self.cbs:
            cb.run = True

    def fit(
        self, n_epoch: int, lr: float | slice | None = None, wd: float | None = None, cbs: Any = None,
        reset_opt: bool = False, start_epoch: int = 0, resume: str | Path | None = None,
    ) -> None:
        """Train for `n_epoch` epochs at learning rate `lr` (default `self.lr`; a slice spreads it over groups).

        `cbs` are attached for this call only; `reset_opt` rebuilds the optimizer; `start_epoch` skips
        the first epochs (schedules still see the full length). `resume` is a checkpoint written by
        `save_checkpoint`/`CheckpointCallback`: training continues exactly where it stopped (its epoch
        replaces `start_epoch`).
        """
        _checks.check_n_epoch(n_epoch)
        if resume is not None:
            if start_epoch:
                raise ValueError(f"fit: start_epoch={start_epoch} and resume={str(resume)!r} both given; the "
                                 "checkpoint knows its epoch, so pass resume alone")
            resume_cb, start_epoch = resume_callback(self, resume)
            cbs = [*_listify(cbs), resume_cb]
        if not 0 <= start_epoch <= n_epoch:
            raise ValueError(f"fit: start_epoch={start_epoch} must be between 0 and n_epoch={n_epoch}")
        _plain.check_train_steps(self.dls)  # a fit of zero training steps is refused before it starts
        _checks.check_lr(self.lr if lr is None else lr)  # nan/inf/negative refused, 0 warns
        _checks.check_wd(self.wd if wd is None else wd, "fit", "wd" if wd is not None else "learn.wd")
        with self.added_cbs(cbs):
            if reset_opt or self.opt is None:
                self.create_opt()
            wd = self.wd if wd is None else wd
            if wd is not None:
                self.opt.set_hypers(wd=wd)
            self.opt.set_hypers(lr=self.lr if lr is None else lr)
            self._start_epoch = start_epoch
            self._check_first_batch = True
            self._begin(n_epoch)
            handled = any(isinstance(c, _NAN_CBS) for c in self.cbs)  # these deal with a NaN loss themselves
            self._check_nan = self._batch_on_cpu and not handled
            self._check_nan_late = None if self._batch_on_cpu or handled else _checks.check_recorded_losses
            self._with_events(self._do_fit, "fit", CancelFitException, self._end_cleanup)

    # ------------------------------------------------------------------ validation

    @contextmanager
    def validation_context(self, cbs: Any = None, inner: bool = False) -> Iterator["Learner"]:
        """Context for a validation-only pass: `cbs` attached, no logging; fires before_fit/before_epoch
        on entry and after_epoch/after_fit on exit unless `inner` (already inside a fit)."""
        st = self.state
        with self.lock, self.added_cbs(cbs), self.no_logging():
            if inner:
                # Inside a fit: keep the fit's own state and keep recorder/progress out of this pass.
                snap, model_training = st.snapshot(), self.model.training
                st.validating = True
                try:
                    with self.removed_cbs([c for c in self.cbs if c.remove_on_fetch]):
                        yield self
                finally:
                    st.restore(snap)
                    self.model.train(model_training)  # a fetch from a training batch must not leave eval mode on
                return
            old_training, old_validating = st.training, st.validating
            st.validating, st.training = True, False
            self._begin(1)
            try:
                self(["before_fit", "before_epoch"])
                yield self
                self(["after_epoch", "after_fit"])
            finally:
                st.validating, st.training = old_validating, old_training
                self._end_cleanup()

    def validate(self, ds_idx: int = 1, dl: Any = None, cbs: Any = None) -> list | None:
        """Loss and metrics on `dls[ds_idx]` (or `dl`): `[valid_loss, *metrics]`."""
        with self.validation_context(cbs=cbs):
            self._do_epoch_validate(ds_idx, dl)
        return self.final_record

    # ------------------------------------------------------------------ scheduled training (tiers.train.callbacks.schedule)

    def fit_one_cycle(
        self, n_epoch: int, lr_max: Any = None, div: float = 25.0, div_final: float = 1e5, pct_start: float = 0.25,
        wd: float | None = None, moms: tuple[float, float, float] | None = None, cbs: Any = None,
        reset_opt: bool = False, start_epoch: int = 0, resume: str | Path | None = None,
    ) -> None:
        """One-cycle policy: lr warms up (cosine) from `lr_max/div` to `lr_max` over `pct_start` of training,
        then anneals to `lr_max/div_final`; momentum goes the opposite way (`moms`, default `learn.moms`).
        `lr_max` may be a slice for discriminative learning rates. `start_epoch` and `resume` are `fit`'s."""
        _checks.check_lr(lr_max, "fit_one_cycle")
        _schedule.fit_one_cycle(self, n_epoch, lr_max, div, div_final, pct_start, wd, moms, cbs, reset_opt, start_epoch, resume)

    def fit_flat_cos(
        self, n_epoch: int, lr: Any = None, div_final: float = 1e5, pct_start: float = 0.75, wd: float | None = None,
        cbs: Any = None, reset_opt: bool = False, start_epoch: int = 0, resume: str | Path | None = None,
    ) -> None:
        """Flat lr for `pct_start` of training, then cosine annealing to `lr/div_final` (`start_epoch`, `resume`: see `fit`)."""
        _checks.check_lr(lr, "fit_flat_cos")
        _schedule.fit_flat_cos(self, n_epoch, lr, div_final, pct_start, wd, cbs, reset_opt, start_epoch, resume)

    def fit_sgdr(
        self, n_cycles: int, cycle_len: int, lr_max: Any = None, cycle_mult: int = 2, cbs: Any = None,
        reset_opt: bool = False, wd: float | None = None, start_epoch: int = 0, resume: str | Path | None = None,
    ) -> None:
        """SGD with warm restarts: `n_cycles` cosine cycles from `lr_max` to 0, the i-th lasting
        `cycle_len * cycle_mult**i` epochs. `start_epoch` and `resume` are `fit`'s."""
        _checks.check_lr(lr_max, "fit_sgdr")
        _schedule.fit_sgdr(self, n_cycles, cycle_len, lr_max, cycle_mult, cbs, reset_opt, wd, start_epoch, resume)

    def fine_tune(
        self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100, pct_start: float = 0.3,
        div: float = 5.0, **kwargs: Any,
    ) -> None:
        """Transfer learning: `freeze_epochs` one-cycle epochs on the head only, then unfreeze and train
        `epochs` more with discriminative lrs `slice(base_lr/2/lr_mult, base_lr/2)`."""
        _checks.check_lr(base_lr, "fine_tune")
        _schedule.fine_tune(self, epochs, base_lr, freeze_epochs, lr_mult, pct_start, div, **kwargs)

    def lr_find(
        self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
        show_plot: bool = True, suggest_funcs: Any = (_lr_finder.valley,),
    ) -> Any:
        """Mock-train with an exponentially growing lr, restore the weights, and suggest learning rates
        (a namedtuple with one field per suggestion function, e.g. `.valley`; None when `suggest_funcs` is None)."""
        return _lr_finder.lr_find(self, start_lr, end_lr, num_it, stop_div, show_plot, suggest_funcs)

    # ------------------------------------------------------------------ inference (tiers.train.predict)

    def get_preds(
        self, ds_idx: int = 1, dl: Any = None, with_input: bool = False, with_decoded: bool = False,
        with_loss: bool = False, act: Any = None, inner: bool = False, reorder: bool = True, cbs: Any = None,
        concat_dim: int = 0,
    ) -> tuple:
        """Predictions on `dls[ds_idx]` (or `dl`): `([inputs], preds, targets, [decoded], [losses])`.

        `preds` are activated by `act` (default: the loss's `activation`, or a torch loss's known one, e.g. softmax
        for `nn.CrossEntropyLoss`; raw model outputs for any other loss: `tiers.train.plain_torch.loss_activation`);
        `decoded` by the loss's `decodes` (or a torch loss's known one, e.g. the argmax for `nn.CrossEntropyLoss`:
        `tiers.train.plain_torch.loss_decodes`); `losses` are per item. Results are in dataset order (`reorder`)."""
        return _predict.get_preds(self, ds_idx, dl, with_input, with_decoded, with_loss, act, inner, reorder, cbs, concat_dim)

    def predict(self, item: Any, rm_type_tfms: Any = None, with_input: bool = False) -> tuple:
        """Predict one `item`: `(decoded prediction, prediction as the loss decodes it, probabilities)`."""
        return _predict.predict(self, item, rm_type_tfms, with_input)

    def tta(
        self, ds_idx: int = 1, dl: Any = None, n: int = 4, item_tfms: Any = None, batch_tfms: Any = None,
        beta: float | None = 0.25, use_max: bool = False,
    ) -> tuple:
        """Test-time augmentation: `(preds, targs)` on `dls[ds_idx]` (or `dl`).

        The predictions are taken `n` times with the training transforms (augmentation) and averaged (`use_max`:
        their maximum); the result is `lerp(average, plain predictions, beta)`, i.e. `(1-beta)*average +
        beta*plain` where plain uses the validation transforms. `beta=None` returns `(average, plain)`.
        `item_tfms`/`batch_tfms` replace the loader's transforms for these passes, keeping its type conversions
        (`ToTensor`, `IntToFloatTensor`) and `Normalize` when they lack them. Needs a tiers loader."""
        return _predict.tta(self, ds_idx, dl, n, item_tfms, batch_tfms, beta, use_max)

    def show_results(self, ds_idx: int = 1, dl: Any = None, max_n: int = 9, shuffle: bool = True, **kwargs: Any) -> Any:
        """Show `max_n` items of `dls[ds_idx]` with their targets and predictions (tiers loaders only)."""
        return _predict.show_results(self, ds_idx, dl, max_n, shuffle, **kwargs)

    def loss_not_reduced(self) -> Any:
        """Context manager: the loss function returns one loss per item inside the block."""
        return _predict.loss_not_reduced(self)

    # ------------------------------------------------------------------ persistence (tiers.train.io)

    def save(self, file: str | Path, with_opt: bool = True) -> Path:
        """Save model (and optimizer) state to `path/model_dir/file.pth` (unless absolute); returns the path written."""
        return learner_save(self, file, with_opt)

    def load(self, file: str | Path, device: Any = None, with_opt: bool = True, strict: bool = True) -> "Learner":
        """Load state saved by `save` from `path/model_dir/file.pth` (onto `device`, default the data's)."""
        return learner_load(self, file, device, with_opt, strict)

    def save_checkpoint(self, file: str | Path, batches_done: int | None = None) -> Path:
        """Write a resumable checkpoint to `path/model_dir/file.pth` (unless absolute); returns the path."""
        return save_checkpoint(self, file, batches_done)

    def export(self, fname: str | Path = "export.pkl", pickle_module: Any = None, pickle_protocol: int = 4) -> Path:
        """Save the learner for inference to `path/model_dir/fname` (unless absolute): weights (safetensors), model,
        transforms, no data. Load it with `load_learner`. `pickle_module` is accepted for fastai compatibility and
        ignored."""
        return export_learner(self, fname, pickle_protocol)

    def export_onnx(self, fname: str | Path = "model.onnx", **kwargs: Any) -> Path:
        """Write the model, with its input preprocessing and output activation, as ONNX to `path/model_dir/fname`
        (unless absolute; extra tiers-train[onnx]; what the graph takes, the options: `tiers.train.io.onnx`)."""
        from tiers.train.io.onnx import export_onnx  # onnx is an optional extra: imported only when exporting

        return export_onnx(self, fname, **kwargs)

    # ------------------------------------------------------------------ precision, memory format, compile, DDP

    def to_fp16(self, **kwargs: Any) -> "Learner":
        """Train in mixed precision fp16 with dynamic loss scaling (replaces any `MixedPrecision`)."""
        return _fp16.to_fp16(self, **kwargs)

    def to_bf16(self, **kwargs: Any) -> "Learner":
        """Train in mixed precision bf16 (no loss scaling needed; works on CPU) (replaces any `MixedPrecision`)."""
        return _fp16.to_bf16(self, **kwargs)

    def to_fp32(self) -> "Learner":
        """Back to full precision: remove `MixedPrecision` and make sure the model is fp32."""
        return _fp16.to_fp32(self)

    def to_channels_last(self) -> "Learner":
        """Add `ChannelsLast` (replacing one already there)."""
        return _training.to_channels_last(self)

    def to_channelslast(self, use_amp: bool = True, amp_mode: str | torch.dtype = "fp16", **kwargs: Any) -> "Learner":
        """fastai's name: `ChannelsLast`, plus `MixedPrecision(amp_mode, **kwargs)` when `use_amp` and none is there."""
        return _training.to_channelslast(self, use_amp, amp_mode, **kwargs)

    def to_contiguous(self) -> "Learner":
        """Remove `ChannelsLast` and put the model back in the contiguous format."""
        return _training.to_contiguous(self)

    def compile(self, **kwargs: Any) -> "Learner":
        """Compile the model in place with `torch.compile` options `kwargs` (e.g. `backend='eager'`, `mode=...`)."""
        return _training.compile_learner(self, **kwargs)

    def to_distributed(self, sync_bn: bool = True, seed: int = 0, **ddp_kwargs: Any) -> "Learner":
        """Make `fit` run as one of several processes of the current process group (see `DistributedTrainer`)."""
        return _distributed.to_distributed(self, sync_bn=sync_bn, seed=seed, **ddp_kwargs)

    def detach_distributed(self) -> "Learner":
        """Remove what `to_distributed` added (restoring rank > 0's progress and logging)."""
        return _distributed.detach_distributed(self)

    def distrib_ctx(self, sync_bn: bool = True, seed: int = 0, backend: str | None = None,
                    **ddp_kwargs: Any) -> Any:
        """Context manager: join the torchrun process group if needed, train distributed inside, then undo it."""
        return _distributed.distrib_ctx(self, sync_bn=sync_bn, seed=seed, backend=backend, **ddp_kwargs)

    def summary(self) -> ModelSummary:
        """Per-layer output shapes, parameters, trainability and MACs on one training batch, plus optimizer, loss, callbacks."""
        return learner_summary(self)

    def __repr__(self) -> str:
        return f"Learner(model={type(self.model).__name__}, loss_func={self.loss_func!r}, cbs={list(self.cbs)})"


# The loop methods as this module defines them: the written-out paths run only where these are the ones in use.
_ONE_BATCH, _WITH_EVENTS, _DO_ONE_BATCH = Learner.one_batch, Learner._with_events, Learner._do_one_batch
_BACKWARD, _STEP = Learner._backward, Learner._step


def _param_state(state: Any, p: Tensor) -> dict:
    try:
        return state[p]
    except KeyError:
        state[p] = {}
        return state[p]
