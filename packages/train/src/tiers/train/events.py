"""The training loop's events (paper 4.2), in firing order, and the exceptions that cancel a level of the loop.

Every step of `Learner.fit` is wrapped in events. For each level X of the loop (fit, epoch, train,
validate, batch, backward, step) the learner fires `before_X`, runs the body, fires
`after_cancel_X` if the body raised `CancelXException`, then always fires `after_X`:

======================  ==========================================================
event                   fires
======================  ==========================================================
after_create            once, at the end of `Learner.__init__`
before_fit / after_fit  around the whole `fit` (after_cancel_fit on CancelFitException)
before_epoch ...        around each epoch (training pass then validation pass)
before_train ...        around the training pass of an epoch
before_validate ...     around the validation pass
before_batch            batch in `learn.xb`/`learn.yb`, before the model
after_pred              model output in `learn.pred`
after_loss              loss in `learn.loss_grad` (and detached `learn.loss`)
before_backward ...     around `loss_grad.backward()` (training only)
before_step ...         around `opt.step()` (training only); `opt.zero_grad()` follows after_step
after_batch             end of the batch, even after CancelBatchException
======================  ==========================================================

"""

from enum import Enum

__all__ = [
    "Event",
    "event",
    "CancelFitException",
    "CancelEpochException",
    "CancelTrainException",
    "CancelValidException",
    "CancelBatchException",
    "CancelBackwardException",
    "CancelStepException",
]


class Event(str, Enum):
    """The events of the training loop, in firing order; each value is the event's name."""

    after_create = "after_create"
    before_fit = "before_fit"
    before_epoch = "before_epoch"
    before_train = "before_train"
    before_batch = "before_batch"
    after_pred = "after_pred"
    after_loss = "after_loss"
    before_backward = "before_backward"
    after_cancel_backward = "after_cancel_backward"
    after_backward = "after_backward"
    before_step = "before_step"
    after_cancel_step = "after_cancel_step"
    after_step = "after_step"
    after_cancel_batch = "after_cancel_batch"
    after_batch = "after_batch"
    after_cancel_train = "after_cancel_train"
    after_train = "after_train"
    before_validate = "before_validate"
    after_cancel_validate = "after_cancel_validate"
    after_validate = "after_validate"
    after_cancel_epoch = "after_cancel_epoch"
    after_epoch = "after_epoch"
    after_cancel_fit = "after_cancel_fit"
    after_fit = "after_fit"

    def __str__(self) -> str:
        return self.value


event = Event
EVENT_NAMES: tuple[str, ...] = tuple(e.value for e in Event)

# Events that fire per batch; `run_train`/`run_valid` only filter these (fit/epoch events always run).
INNER_LOOP = frozenset(
    "before_batch after_pred after_loss before_backward after_cancel_backward after_backward before_step "
    "after_cancel_step after_step after_cancel_batch after_batch".split()
)



_EVENT_SET = frozenset(EVENT_NAMES)


_CLASS_EVENTS: dict[type, tuple[str, ...]] = {}


def _class_events(cls: type) -> tuple[str, ...]:
    # Which events a callback class defines; classes don't change after definition, so cache it.
    found = _CLASS_EVENTS.get(cls)
    if found is None:
        found = _CLASS_EVENTS[cls] = tuple(n for n in EVENT_NAMES if getattr(cls, n, None) is not None)
    return found


class CancelFitException(Exception):
    """Raise in a callback to stop training: `after_cancel_fit`, then `after_fit` fire."""


class CancelEpochException(Exception):
    """Raise to skip the rest of the current epoch: `after_cancel_epoch`, then `after_epoch` fire."""


class CancelTrainException(Exception):
    """Raise to skip the rest of the training pass: `after_cancel_train`, then `after_train` fire."""


class CancelValidException(Exception):
    """Raise to skip the rest of the validation pass: `after_cancel_validate`, then `after_validate` fire."""


class CancelBatchException(Exception):
    """Raise to skip the rest of the current batch: `after_cancel_batch`, then `after_batch` fire."""


class CancelBackwardException(Exception):
    """Raise in `before_backward` to skip the backward pass: `after_cancel_backward`, `after_backward` fire."""


class CancelStepException(Exception):
    """Raise in `before_step` to skip the optimizer step: `after_cancel_step`, `after_step` fire."""


CANCEL_EXCEPTIONS = (
    CancelFitException,
    CancelEpochException,
    CancelTrainException,
    CancelValidException,
    CancelBatchException,
    CancelBackwardException,
    CancelStepException,
)
