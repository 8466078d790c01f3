"""Callback handling of `Learner`: attaching and detaching callbacks, and firing events on them.

The learner keeps, per event and per mode (training or validation), a tuple of the handlers that
apply, rebuilt whenever callbacks (or their `order`/`run_train`/`run_valid`) change. Firing an event
is then a dict lookup and a loop over exactly the callbacks that define it.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from tiers.train.callbacks.core import Callback
from tiers.train.callbacks.progress import ProgressCallback
from tiers.train.events import CANCEL_EXCEPTIONS, EVENT_NAMES, INNER_LOOP

__all__ = ["CallbackHandlingMixin"]


def _listify(o: Any) -> list:
    if o is None:
        return []
    if isinstance(o, (list, tuple)):
        return list(o)
    return [o]


class CallbackHandlingMixin:
    """`add_cb`/`remove_cb`, `added_cbs`/`removed_cbs`, `no_logging`/`no_bar`, and `learn(event)`."""

    cbs: list[Callback]

    def _invalidate_cbs(self) -> None:
        """Rebuild the per-event callback lists (after callbacks or their order/run_* change)."""
        valid: dict[str, list] = {name: [] for name in EVENT_NAMES}
        train: dict[str, list] = {name: [] for name in EVENT_NAMES}
        for cb in sorted(self.cbs, key=lambda c: c.order):
            for name in cb.handled_events():
                f = getattr(cb, name)
                if name not in INNER_LOOP or cb.run_train:
                    train[name].append((cb, f))
                if name not in INNER_LOOP or cb.run_valid:
                    valid[name].append((cb, f))
        self._ev = ({k: tuple(v) for k, v in valid.items()}, {k: tuple(v) for k, v in train.items()})
        self._quiet_grad_step = not any(
            train[f"{w}_{k}"] for k in ("backward", "step") for w in ("before", "after", "after_cancel")
        )

    def __call__(self, event_name: str | Iterable[str]) -> None:
        """Fire the event `event_name` (or each of a list of events) on the callbacks, in `order`."""
        if not isinstance(event_name, str):
            for e in event_name:
                self(e)
            return
        try:
            handlers = self._ev[self.training][event_name]
        except KeyError:
            raise ValueError(f"Learner: {event_name!r} is not an event; events are {', '.join(EVENT_NAMES)}") from None
        if handlers:
            self._run_handlers(handlers, event_name)

    def ordered_cbs(self, event_name: str) -> list[Callback]:
        """Callbacks that handle `event_name`, in the order they run."""
        name = str(event_name)
        return [cb for cb in sorted(self.cbs, key=lambda c: c.order) if name in cb.handled_events()]

    def add_cb(self, cb: Callback | type) -> "CallbackHandlingMixin":
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

    def add_cbs(self, cbs: Any) -> "CallbackHandlingMixin":
        """Attach each of `cbs`."""
        for cb in _listify(cbs):
            self.add_cb(cb)
        return self

    def remove_cb(self, cb: Callback | type) -> "CallbackHandlingMixin":
        """Detach `cb`, or every callback of class `cb`."""
        targets = [c for c in self.cbs if isinstance(c, cb)] if isinstance(cb, type) else [cb]
        for c in targets:
            if c in self.cbs:
                self.cbs.remove(c)
            object.__setattr__(c, "learn", None)
            if self.__dict__.get(c.name) is c:
                del self.__dict__[c.name]
        self._invalidate_cbs()
        return self

    def remove_cbs(self, cbs: Any) -> "CallbackHandlingMixin":
        """Detach each of `cbs`."""
        for cb in _listify(cbs):
            self.remove_cb(cb)
        return self

    @contextmanager
    def added_cbs(self, cbs: Any) -> Iterator["CallbackHandlingMixin"]:
        """Context manager: `cbs` are attached inside the block only."""
        cbs = [cb() if isinstance(cb, type) else cb for cb in _listify(cbs)]
        self.add_cbs(cbs)
        try:
            yield self
        finally:
            self.remove_cbs(cbs)

    @contextmanager
    def removed_cbs(self, cbs: Any) -> Iterator["CallbackHandlingMixin"]:
        """Context manager: `cbs` are detached inside the block only (then re-attached)."""
        cbs = [c for c in _listify(cbs) if c in self.cbs]
        self.remove_cbs(cbs)
        try:
            yield self
        finally:
            self.add_cbs(cbs)

    @contextmanager
    def no_logging(self) -> Iterator["CallbackHandlingMixin"]:
        """Context manager: no per-epoch metrics output inside the block."""
        old = self.logger
        self.logger = _noop
        try:
            yield self
        finally:
            self.logger = old

    @contextmanager
    def no_bar(self) -> Iterator["CallbackHandlingMixin"]:
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

    def _run_handlers(self, handlers: tuple, event_name: str) -> None:
        for cb, f in handlers:
            if cb.run:
                try:
                    f()
                except CANCEL_EXCEPTIONS:
                    raise
                except Exception as e:
                    _reraise_in_callback(e, cb, event_name)


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _reraise_in_callback(e: Exception, cb: Callback, event_name: str) -> None:
    if getattr(e, "_tiers_cb_context", False):
        raise e
    msg = f"Exception in callback {type(cb).__name__} during event {event_name}: {e}"
    try:
        new = type(e)(msg)
    except Exception:
        new = None
    if new is None or str(new) != msg:
        # The exception type does not take a message: keep it, and add the context as a note.
        if hasattr(e, "add_note"):
            e.add_note(msg)
        e._tiers_cb_context = True
        raise e
    new._tiers_cb_context = True
    raise new.with_traceback(e.__traceback__) from e
