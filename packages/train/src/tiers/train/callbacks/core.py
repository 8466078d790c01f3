"""Two-way callbacks (paper 4.2): the `Callback` base and the core callbacks (events are in `tiers.train.events`).

A callback is any `Callback` subclass defining methods named after events. It reads the
learner through `self.learn` (unknown attributes fall back to it, so `self.model` works) and
writes loop state either as `self.learn.xb = ...` or simply `self.xb = ...`: names in
`LOOP_ATTRS` write through to the learner's `state`. Other Learner attributes (`model`, `opt`, `loss_func`...)
are never replaced that way: `self.model = m` keeps `m` on the callback (with a warning, as fastai); replace
the Learner's with `self.learn.model = m`.

>>> class Double(Callback):
...     def before_batch(self): self.xb = tuple(x * 2 for x in self.xb)
"""

import types
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from tiers.dispatch import class2attr
from tiers.tensors import as_plain, find_bs, to_detach
from tiers.train.events import _EVENT_SET, EVENT_NAMES, INNER_LOOP, _class_events
from tiers.train.state import LOOP_ATTRS

_PLAIN_TYPES = frozenset({Tensor})  # what CastToTensor leaves alone

# Learner attributes that are not loop state: a callback assigning one keeps it as its own (with a warning).
_LEARNER_OWN = frozenset("model opt loss_func dls cbs metrics opt_func splitter path model_dir lr wd".split())
# Attributes whose assignment on a callback does more than set it (see Callback.__setattr__).
_SPECIAL_ATTRS = LOOP_ATTRS | _LEARNER_OWN | {"order", "run_train", "run_valid"}

__all__ = [
    "Callback",
    "TrainEvalCallback",
    "CastToTensor",
    "GatherPredsCallback",
    "FetchPredsCallback",
    "before_batch_cb",
]


class Callback:
    """Base class of callbacks: define methods named after `Event`s; set `order` to run before/after others.

    The base class defines no event methods, so a callback handles exactly the events it defines
    (the learner calls nothing else: an unused event costs nothing).

    Class attributes: `order` (lower runs first; default callbacks use -10, 9, 50, 60),
    `run_train`/`run_valid` (whether per-batch events run in training/validation), `run`
    (set False to mute the callback until the end of the current fit). Event functions can also be
    given as keyword arguments: `Callback(after_batch=lambda self: ...)`.
    """

    order: int = 0
    run: bool = True
    run_train: bool = True
    run_valid: bool = True
    remove_on_fetch: bool = False
    learn: Any = None

    def __init__(self, **event_fns: Callable[..., Any]) -> None:
        for name, f in event_fns.items():
            if name not in EVENT_NAMES:
                raise ValueError(f"{type(self).__name__}: {name!r} is not an event; events are {', '.join(EVENT_NAMES)}")
            object.__setattr__(self, name, types.MethodType(f, self))

    # ---- which events this callback handles ----------------------------------------------------------------
    def handles(self, name: str) -> bool:
        """True when this callback defines `name` (an event) itself."""
        return name in self.__dict__ or getattr(type(self), name, None) is not None

    def handled_events(self) -> tuple[str, ...]:
        """The events this callback defines, in firing order."""
        own = [n for n in self.__dict__ if n in _EVENT_SET]
        cls_events = _class_events(type(self))
        if not own:
            return cls_events
        return tuple(n for n in EVENT_NAMES if n in own or n in cls_events)

    def __call__(self, event_name: str) -> Any:
        """Run the handler of `event_name` if it applies now (same rules the Learner uses) and return its value
        (None when it does not apply)."""
        name = str(event_name)
        if not self.run or not self.handles(name):
            return None
        if name in INNER_LOOP and self.learn is not None:
            training = getattr(self.learn, "training", True)
            if not ((self.run_train and training) or (self.run_valid and not training)):
                return None
        return getattr(self, name)()

    # ---- reading and writing the learner -------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: fall back to the learner (fastai's `self.model`).
        if name.startswith("__") or name == "learn":
            raise AttributeError(name)
        learn = self.__dict__.get("learn", type(self).learn)
        if learn is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (and is not attached to a Learner)")
        try:
            return getattr(learn, name)
        except AttributeError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}, and neither has its Learner") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _SPECIAL_ATTRS:  # a callback's own attribute (the usual case): one set test
            object.__setattr__(self, name, value)
            return
        if name in LOOP_ATTRS:
            learn = self.__dict__.get("learn")
            if learn is not None:
                setattr(learn.state, name, value)
                return
        elif name in _LEARNER_OWN and self.__dict__.get("learn") is not None and name not in self.__dict__:
            # fastai warns here too: `self.model = teacher` keeps `teacher` on the callback, and the Learner's model
            # must not be replaced behind the user's back. Replacing it is spelled `self.learn.model = ...`.
            warnings.warn(
                f"{type(self).__name__}.{name} = ... sets the callback's own attribute, which now hides the Learner's "
                f"{name!r} when read through the callback; to replace the Learner's, assign self.learn.{name}",
                stacklevel=2,
            )
        object.__setattr__(self, name, value)
        if name in ("order", "run_train", "run_valid"):
            learn = self.__dict__.get("learn")
            if learn is not None:
                learn._invalidate_cbs()

    @property
    def name(self) -> str:
        """Attribute name of this callback on the learner: snake_case class name without 'Callback'."""
        return class2attr(self, "Callback")

    def __repr__(self) -> str:
        return type(self).__name__


class TrainEvalCallback(Callback):
    """fastai's callback that set `train()`/`eval()` modes and the progress counters: in tiers the `Learner`'s loop
    does this itself (so `default_cbs=False` still trains). The class stays so that code naming it
    (`cbs=TrainEvalCallback`, `learn.remove_cb(TrainEvalCallback)`) runs unchanged; it handles no event."""

    order = -10


class CastToTensor(Callback):
    """Default callback (order 9): strip semantic tensor subclasses from `xb`/`yb` before the model.

    Typed tensors carry metadata through every torch op, which costs time in the model and
    breaks some compilers; the model and loss only need plain tensors.
    """

    order = 9

    def before_batch(self) -> None:
        """Replace `xb` and `yb` with plain tensors (no copy)."""
        st = self.learn.state
        # On the state's slots, and the type test in C (a set test over `map(type, ...)`): this runs for every batch.
        if not _PLAIN_TYPES.issuperset(map(type, st.xb)):
            st.xb = as_plain(st.xb)
        if not _PLAIN_TYPES.issuperset(map(type, st.yb)):
            st.yb = as_plain(st.yb)


class GatherPredsCallback(Callback):
    """Collect inputs, activated predictions, targets and per-item losses of a pass, on the CPU.

    Predictions go through `act` and to the CPU batch by batch, so memory holds only the outputs.
    `concat_dim` is the axis batches are concatenated on. Results are in `.inputs`, `.preds`,
    `.targets`, `.losses` after the pass (tuples/lists stay nested).
    """

    order = 45  # before Recorder (50): it sees the prediction as the model produced it

    def __init__(
        self,
        with_input: bool = False,
        with_loss: bool = False,
        save_preds: Any = None,
        save_targs: Any = None,
        with_preds: bool = True,
        with_targs: bool = True,
        concat_dim: int = 0,
        act: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if save_preds is not None or save_targs is not None:
            raise NotImplementedError(
                "GatherPredsCallback: save_preds/save_targs (writing predictions to disk) are not supported; "
                "save the returned tensors with torch.save instead"
            )
        self.with_input, self.with_loss, self.with_preds, self.with_targs = with_input, with_loss, with_preds, with_targs
        self.concat_dim, self.act = concat_dim, act

    def before_validate(self) -> None:
        """Start empty lists."""
        self._inputs: list[Any] = []
        self._preds: list[Any] = []
        self._targets: list[Any] = []
        self._losses: list[Tensor] = []

    def after_batch(self) -> None:
        """Store this batch's results on the CPU."""
        learn = self.learn
        if self.with_input:
            self._inputs.append(_to_cpu_detached(learn.xb))
        if not hasattr(learn, "pred") or learn.pred is None:
            return
        if self.with_preds:
            pred = learn.pred if self.act is None else self.act(learn.pred)
            self._preds.append(_to_cpu_detached(pred))
        if self.with_targs and learn.yb:
            self._targets.append(_to_cpu_detached(learn.yb))
        if self.with_loss and learn.yb:
            bs = find_bs(learn.yb)
            loss = learn.loss_grad if getattr(learn, "loss_grad", None) is not None else learn.loss
            loss = loss.detach().float().reshape(-1)
            if loss.numel() != bs:
                # A loss that ignores reduction='none' (or flattens, e.g. per pixel): average per item.
                loss = loss.reshape(bs, -1).mean(dim=1) if loss.numel() % bs == 0 else loss.mean().expand(bs)
            self._losses.append(loss.cpu())

    def after_validate(self) -> None:
        """Concatenate everything gathered."""
        dim = self.concat_dim
        self.inputs = _concat(self._inputs, dim) if self._inputs else None
        self.preds = _concat(self._preds, dim) if self._preds else None
        targets = _concat(self._targets, dim) if self._targets else None
        self.targets = targets[0] if isinstance(targets, tuple) and len(targets) == 1 else targets
        self.losses = torch.cat(self._losses) if self._losses else None
        del self._inputs, self._preds, self._targets, self._losses


class FetchPredsCallback(Callback):
    """Fetch predictions on `ds_idx`/`dl` during training (e.g. in `after_epoch`); results in `.preds`."""

    remove_on_fetch = True

    def __init__(
        self, ds_idx: int = 1, dl: Any = None, with_input: bool = False, with_decoded: bool = False, reorder: bool = True
    ) -> None:
        self.ds_idx, self.dl, self.with_input, self.with_decoded, self.reorder = ds_idx, dl, with_input, with_decoded, reorder

    def after_validate(self) -> None:
        """Run `get_preds` (callbacks marked `remove_on_fetch`, such as the recorder, sit it out)."""
        self.preds = self.learn.get_preds(
            ds_idx=self.ds_idx, dl=self.dl, with_input=self.with_input, with_decoded=self.with_decoded,
            inner=True, reorder=self.reorder,
        )


def before_batch_cb(f: Callable[..., tuple[Any, Any]]) -> Callback:
    """Make a callback from `f(self, xb, yb) -> (xb, yb)`, run in `before_batch` to rewrite the batch."""

    def before_batch(self: Callback) -> None:
        self.learn.xb, self.learn.yb = f(self, self.learn.xb, self.learn.yb)

    return Callback(before_batch=before_batch)


# ---------------------------------------------------------------- small helpers on nested batches


def _to_cpu_detached(b: Any) -> Any:
    return to_detach(b, cpu=True, gather=False)


def _concat(items: list[Any], dim: int = 0) -> Any:
    first = items[0]
    if isinstance(first, Tensor):
        if all(o.shape[:dim] + o.shape[dim + 1 :] == first.shape[:dim] + first.shape[dim + 1 :] for o in items):
            return torch.cat(items, dim=dim)
        return [t for o in items for t in o.unbind(dim)]  # ragged outputs: a list of items
    if isinstance(first, (tuple, list)):
        return type(first)(_concat([o[i] for o in items], dim) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _concat([o[k] for o in items], dim) for k in first}
    return items


def reraise_in_callback(e: Exception, cb: Any, event_name: str) -> None:
    """Re-raise `e` (raised by `cb` during `event_name`) with a note naming the callback and event (PEP 678): the
    exception keeps its type, args, errno/filename and traceback."""
    if not getattr(e, "_tiers_cb_context", False):
        e.add_note(f"Exception in callback {type(cb).__name__} during event {event_name}")
        e._tiers_cb_context = True  # type: ignore[attr-defined]  # nested Learners add the note once
    raise e
