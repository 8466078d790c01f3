"""`Learner`: a model, its data, loss and optimizer, and the training loop wrapped in callback events.

>>> learn = Learner(dls, model, metrics=accuracy)          # doctest: +SKIP
>>> learn.fit_one_cycle(3, 1e-3)                            # doctest: +SKIP
>>> preds, targs = learn.get_preds()                        # doctest: +SKIP

The loop (`fit` -> epochs -> train/validate -> batches -> backward/step) is a set of small methods,
each wrapped by `_with_events`, so a callback can observe or change every step; see
`tiers.train.events` for the event table.
"""

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tiers.optim import Adam
from tiers.train.callbacks import distributed as _distributed
from tiers.train.callbacks import fp16 as _fp16
from tiers.train.callbacks import training as _training
from tiers.train.callbacks.core import Callback, CastToTensor, TrainEvalCallback
from tiers.train.callbacks.lr_finder import LRFindMixin
from tiers.train.callbacks.progress import ProgressCallback
from tiers.train.callbacks.recorder import Recorder
from tiers.train.callbacks.schedule import ScheduleMixin
from tiers.train.cb_handling import CallbackHandlingMixin, _listify
from tiers.train.events import (
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
)
from tiers.train.io.checkpoint import save_checkpoint
from tiers.train.io.export import export_learner
from tiers.train.io.persist import load_model, save_model
from tiers.train.metrics.base import mk_metric
from tiers.train.nn.loss_choice import loss_for_batch
from tiers.train.nn.model_utils import norm_bias_params, trainable_params
from tiers.train.nn.summary import ModelSummary, learner_summary
from tiers.train.predict import PredictMixin

__all__ = ["Learner"]

# (before, after_cancel, after) names per loop level, built once rather than formatted per batch.
_EVENTS = {k: (f"before_{k}", f"after_cancel_{k}", f"after_{k}") for k in ("fit", "epoch", "train", "validate", "batch", "backward", "step")}


def _make_default_cbs() -> list[Callback]:
    # What every Learner starts with unless default_cbs=False.
    return [TrainEvalCallback(), Recorder(), CastToTensor(), ProgressCallback()]


def _to_device(b: Any, device: torch.device) -> Any:
    if isinstance(b, Tensor):
        return b.to(device, non_blocking=True)
    if isinstance(b, (tuple, list)):
        return type(b)(_to_device(o, device) for o in b)
    if isinstance(b, dict):
        return {k: _to_device(v, device) for k, v in b.items()}
    return b


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


class Learner(CallbackHandlingMixin, ScheduleMixin, LRFindMixin, PredictMixin):
    """Train `model` on `dls` with `loss_func` and an optimizer from `opt_func`, through callbacks.

    `loss_func=None` picks a loss from the targets' type (`default_loss`). `splitter(model)` gives the
    parameter groups (for freezing and discriminative learning rates). `wd_bn_bias=False` keeps weight
    decay off normalisation and bias parameters; `train_bn=True` keeps normalisation layers trainable
    when their group is frozen. The model goes to `dls.device` (when set) and batches follow the model.
    Unknown attributes are read from the model, so `learn.fc` is `learn.model.fc`.
    """

    def __init__(
        self,
        dls: Any,
        model: nn.Module,
        loss_func: Callable | None = None,
        opt_func: Callable = Adam,
        lr: float = 1e-3,
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
        self.dls, self.model = dls, model
        self.path = Path(path) if path is not None else Path(getattr(dls, "path", "."))
        self.model_dir = Path(model_dir)
        self.loss_func = loss_func if loss_func is not None else self._default_loss()
        self.opt_func, self.lr, self.splitter = opt_func, lr, splitter
        self.wd, self.wd_bn_bias, self.train_bn, self.moms = wd, wd_bn_bias, train_bn, moms
        self.opt: Any = None
        self.training = False
        self.validating = False
        self.logger: Callable[[Any], Any] = print
        self.epoch, self.n_epoch, self.iter, self.n_iter, self.train_iter, self.pct_train = 0, 1, 0, 0, 0, 0.0
        self.dl: Any = None
        self.xb: tuple = ()
        self.yb: tuple = ()
        self.pred: Any = None
        self.loss_grad: Any = None
        self.loss: Any = None
        self.lock = threading.RLock()  # re-entrant: a callback may call get_preds during validation
        self._batch_device: torch.device | None = None
        self._batch_on_cpu = True
        self.metrics = metrics
        self.cbs: list[Callback] = []
        self._ev: tuple[dict, dict] = ({}, {})
        self._invalidate_cbs()
        if default_cbs:
            self.add_cbs(_make_default_cbs())
        self.add_cbs(cbs)
        self("after_create")

    # ------------------------------------------------------------------ properties

    @property
    def metrics(self) -> list:
        """The metrics computed on validation (as `Metric` objects)."""
        return self._metrics

    @metrics.setter
    def metrics(self, ms: Any) -> None:
        self._metrics = [mk_metric(m) for m in _listify(ms)]

    @property
    def x(self) -> Any:
        """The single input (`xb[0]`) when there is one input, else `xb`."""
        return self.xb[0] if len(self.xb) == 1 else self.xb

    @property
    def y(self) -> Any:
        """The single target (`yb[0]`) when there is one target, else `yb`."""
        return self.yb[0] if len(self.yb) == 1 else self.yb

    @property
    def smooth_loss(self) -> Any:
        """Exponentially smoothed training loss (kept by the `Recorder`; None without one)."""
        rec = self.__dict__.get("recorder")
        return None if rec is None else rec.smooth_loss

    @property
    def final_record(self) -> list | None:
        """`[train_loss, valid_loss, *metrics]` of the last epoch (or `[valid_loss, *metrics]` after `validate`)."""
        rec = self.__dict__.get("recorder")
        return None if rec is None else rec.final_record

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: forward to the model (fastai's `learn.fc`).
        if name.startswith("_") or "model" not in self.__dict__:
            raise AttributeError(f"Learner has no attribute {name!r}")
        try:
            return getattr(self.__dict__["model"], name)
        except AttributeError:
            raise AttributeError(f"Learner has no attribute {name!r}, and neither has its model") from None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("lock", None)
        state["_ev"] = ({}, {})
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()
        self._invalidate_cbs()

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
        p = next(self.model.parameters(), None)
        if p is None:
            b = next(self.model.buffers(), None)
            return b.device if b is not None else torch.device("cpu")
        return p.device

    # ------------------------------------------------------------------ optimizer

    def create_opt(self) -> None:
        """Build `self.opt` from `opt_func` over `splitter(model)` with `lr` (and the BN/bias rules)."""
        kw = getattr(self.opt_func, "keywords", None) or {}
        if "lr" in kw:
            self.lr = kw["lr"]
        self.opt = self.opt_func(self.splitter(self.model), lr=self.lr)
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

    # ------------------------------------------------------------------ the loop

    def _fire(self, event_name: str) -> None:
        # The loop's own event call: skips the work entirely when no callback handles the event
        # (most per-batch events), which matters because it runs ~10 times per batch.
        handlers = self._ev[self.training][event_name]
        if handlers:
            self._run_handlers(handlers, event_name)

    def _with_events(self, f: Callable[[], Any], kind: str, ex: type[BaseException], final: Callable | None = None) -> None:
        before, cancel, after = _EVENTS[kind]
        try:
            self._fire(before)
            f()
        except ex:
            self._fire(cancel)
        self._fire(after)
        if final is not None:
            final()

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
        return _to_device(b, dev)

    def _split(self, b: Any) -> None:
        if type(b) in (tuple, list):
            i = self._n_inp
            if i == 1 and len(b) == 2:
                self.xb, self.yb = (b[0],), (b[1],)
            else:
                self.xb, self.yb = tuple(b[:i]), tuple(b[i:])
        else:
            self.xb, self.yb = (b,), ()

    def _backward(self) -> None:
        self.loss_grad.backward()

    def _step(self) -> None:
        self.opt.step()

    def _do_one_batch(self) -> None:
        self.pred = self.model(*self.xb)
        # The per-batch events are fired inline (a dict lookup, then nothing when no callback handles them) rather
        # than through `_fire`: this runs for every batch, and most of these events have no handler.
        ev = self._ev[self.training]["after_pred"]
        if ev:
            self._run_handlers(ev, "after_pred")
        if self.yb:
            self.loss_grad = self.loss_func(self.pred, *self.yb)
            # A detached view for logging (no copy: this runs every batch). A callback that rescales the
            # loss for backward should assign a new loss_grad rather than modify it in place.
            self.loss = self.loss_grad.detach()
        ev = self._ev[self.training]["after_loss"]
        if ev:
            self._run_handlers(ev, "after_loss")
        if not self.training or not self.yb:
            return
        if self._quiet_grad_step:
            # No callback handles the backward/step events: skip their (empty) dispatch.
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
        self.opt.zero_grad()

    def one_batch(self, i: int, b: Any) -> None:
        """Run batch `b` (index `i`) through the model, loss and (when training) backward and step."""
        self.iter = i
        # The usual batch, `(x, y)` of CPU tensors for a CPU model, is split here: `_set_device` and `_split` would
        # do the same through two more calls per batch.
        x = b[0] if type(b) in (tuple, list) and len(b) == 2 and self._n_inp == 1 else None
        if self._batch_on_cpu and isinstance(x, Tensor) and x.is_cpu:
            self.xb, self.yb = (x,), (b[1],)
        else:
            self._split(self._set_device(b))
        # `_with_events(self._do_one_batch, "batch", CancelBatchException)`, inlined: it runs for every batch.
        try:
            ev = self._ev[self.training]["before_batch"]
            if ev:
                self._run_handlers(ev, "before_batch")
            self._do_one_batch()
        except CancelBatchException:
            self._fire("after_cancel_batch")
        ev = self._ev[self.training]["after_batch"]
        if ev:
            self._run_handlers(ev, "after_batch")

    def all_batches(self) -> None:
        """Run every batch of `self.dl`."""
        try:
            self.n_iter = len(self.dl)
        except TypeError:
            self.n_iter = 0
        one_batch = self.one_batch
        for i, b in enumerate(self.dl):
            one_batch(i, b)

    def _set_dl(self, dl: Any) -> None:
        self.dl = dl
        try:
            self.n_iter = len(dl)
        except TypeError:
            self.n_iter = 0

    def _do_epoch_train(self) -> None:
        self._set_dl(self.dls.train)
        self._with_events(self.all_batches, "train", CancelTrainException)

    def _do_epoch_validate(self, ds_idx: int = 1, dl: Any = None) -> None:
        if dl is None:
            dl = self.dls[ds_idx]
        self._set_dl(dl)
        with torch.no_grad():
            self._with_events(self.all_batches, "validate", CancelValidException)

    def _do_epoch(self) -> None:
        self._do_epoch_train()
        self._do_epoch_validate()

    def _do_fit(self) -> None:
        for epoch in range(self._start_epoch, self.n_epoch):
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def _prepare_run(self) -> None:
        self._n_inp = getattr(self.dls, "n_inp", 1) or 1
        dev = self._data_device()
        if dev is not None:
            self.model.to(dev)
        self._batch_device = self._model_device()
        self._batch_on_cpu = self._batch_device.type == "cpu"

    def _end_cleanup(self) -> None:
        self.dl, self.xb, self.yb, self.pred, self.loss_grad = None, (), (), None, None
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
        if n_epoch < 0 or not isinstance(n_epoch, int):
            raise ValueError(f"fit: n_epoch={n_epoch!r} must be a non-negative int")
        if resume is not None:
            if start_epoch:
                raise ValueError(f"fit: start_epoch={start_epoch} and resume={str(resume)!r} both given; the "
                                 "checkpoint knows its epoch, so pass resume alone")
            # Imported here: tiers.train.io.checkpoint builds on Learner, so a top-level import would be circular.
            from tiers.train.io.checkpoint import resume_callback

            resume_cb, start_epoch = resume_callback(self, resume)
            cbs = [*_listify(cbs), resume_cb]
        if not 0 <= start_epoch <= n_epoch:
            raise ValueError(f"fit: start_epoch={start_epoch} must be between 0 and n_epoch={n_epoch}")
        with self.added_cbs(cbs):
            if reset_opt or self.opt is None:
                self.create_opt()
            wd = self.wd if wd is None else wd
            if wd is not None:
                self.opt.set_hypers(wd=wd)
            self.opt.set_hypers(lr=self.lr if lr is None else lr)
            self.n_epoch, self._start_epoch = n_epoch, start_epoch
            self._prepare_run()
            self._with_events(self._do_fit, "fit", CancelFitException, self._end_cleanup)

    _start_epoch = 0

    # ------------------------------------------------------------------ validation context

    @contextmanager
    def validation_context(self, cbs: Any = None, inner: bool = False) -> Iterator["Learner"]:
        """Context for a validation-only pass: `cbs` attached, no logging; fires before_fit/before_epoch
        on entry and after_epoch/after_fit on exit unless `inner` (already inside a fit)."""
        with self.lock, self.added_cbs(cbs), self.no_logging():
            if inner:
                # Inside a fit: keep the fit's own state and keep recorder/progress out of this pass.
                saved = (self.dl, self.training, self.n_iter, self.iter, self.xb, self.yb, self.pred, self.loss,
                         self.loss_grad, self.validating)
                self.validating = True
                try:
                    with self.removed_cbs([c for c in self.cbs if c.remove_on_fetch]):
                        yield self
                finally:
                    (self.dl, self.training, self.n_iter, self.iter, self.xb, self.yb, self.pred, self.loss,
                     self.loss_grad, self.validating) = saved
                return
            old_training, old_validating = self.training, self.validating
            self.validating, self.training = True, False
            self.n_epoch, self.epoch, self._n_inp = 1, 0, getattr(self.dls, "n_inp", 1) or 1
            self._prepare_run()
            try:
                self(["before_fit", "before_epoch"])
                yield self
                self(["after_epoch", "after_fit"])
            finally:
                self.validating, self.training = old_validating, old_training
                self._end_cleanup()

    def validate(self, ds_idx: int = 1, dl: Any = None, cbs: Any = None) -> list | None:
        """Loss and metrics on `dls[ds_idx]` (or `dl`): `[valid_loss, *metrics]`."""
        with self.validation_context(cbs=cbs):
            self._do_epoch_validate(ds_idx, dl)
        return self.final_record

    # ------------------------------------------------------------------ persistence

    def _model_file(self, file: str | Path) -> Path:
        file = Path(file)
        if file.suffix == "":
            file = file.with_suffix(".pth")
        return file if file.is_absolute() else self.path / self.model_dir / file

    def save(self, file: str | Path, with_opt: bool = True) -> Path:
        """Save model (and optimizer) state to `path/model_dir/file.pth`; returns the path written."""
        target = self._model_file(file)
        save_model(target, self.model, self.opt, with_opt=with_opt)
        return target

    def load(self, file: str | Path, device: Any = None, with_opt: bool = True, strict: bool = True) -> "Learner":
        """Load state saved by `save` from `path/model_dir/file.pth` (onto `device`, default the data's)."""
        if device is None:
            device = self._data_device()
        if with_opt:
            self._ensure_opt()
        load_model(self._model_file(file), self.model, self.opt if with_opt else None, device=device, strict=strict)
        return self

    def save_checkpoint(self, file: str | Path, batches_done: int | None = None) -> Path:
        """Write a resumable checkpoint to `file` (a bare name goes to `path/model_dir`); returns the path."""
        return save_checkpoint(self, file, batches_done)

    def export(self, fname: str | Path = "export.pkl", pickle_module: Any = None, pickle_protocol: int = 4) -> Path:
        """Save the learner for inference to `self.path / fname`: weights (safetensors), model, transforms, no data.

        Load it with `load_learner`. `pickle_module` is accepted for fastai compatibility and ignored."""
        fname = Path(fname)
        return export_learner(self, fname if fname.is_absolute() else Path(self.path) / fname, pickle_protocol)

    def export_onnx(self, fname: str | Path = "model.onnx", **kwargs: Any) -> Path:
        """Write the model, with its input preprocessing and output activation, as ONNX to `self.path / fname` (extra
        tiers-train[onnx]; what the graph takes and the options: `tiers.train.io.onnx.export_onnx`)."""
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
        return f"Learner(model={type(self.model).__name__}, loss_func={self.loss_func!r}, cbs={self.cbs})"


def _param_state(state: Any, p: Tensor) -> dict:
    try:
        return state[p]
    except KeyError:
        state[p] = {}
        return state[p]
