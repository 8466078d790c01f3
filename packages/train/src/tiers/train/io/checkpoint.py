"""Checkpoints and exact resume: `learn.save_checkpoint(path)`, `CheckpointCallback`, `learn.fit(..., resume=path)`.

A checkpoint holds the model, the optimizer, the epoch and the number of training batches done in
it, the RNG states (python, numpy, torch, CUDA) both now and at the start of the epoch (which fixes
the data order of shuffling loaders), and the state of every callback with a `state_dict` method
(grad scaler, trackers, accumulation counters). Resuming replays the epoch's data order, skips the
batches already done and restores the RNGs, so an interrupted run ends with the same weights as an
uninterrupted one (bitwise on CPU with deterministic algorithms and `num_workers=0`). Files are
written to a temporary file and renamed, so a crash mid-save keeps the last good checkpoint.

>>> learn.fit(5, cbs=CheckpointCallback("ckpt", every_n_batches=100))      # doctest: +SKIP
>>> learn.fit(5, resume=learn.path/"models"/"ckpt.pth")                     # doctest: +SKIP
"""

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tiers.dispatch.files import atomic_write
from tiers.train.callbacks.core import Callback
from tiers.train.io.paths import learner_file, write_once
from tiers.train.io.persist import _unwrap, check_model_state

__all__ = ["CheckpointCallback", "save_checkpoint", "get_rng_states", "set_rng_states", "load_checkpoint_state", "resume_callback"]

_VERSION = 1


def get_rng_states() -> dict:
    """The python, numpy, torch (and CUDA) RNG states, in a form `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys).copy()), int(pos), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_states(st: dict) -> None:
    """Restore states from `get_rng_states`."""
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, gauss = st["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _cb_states(learn: Any) -> dict:
    out = {}
    for cb in learn.cbs:
        if callable(getattr(type(cb), "state_dict", None)):
            out[f"{cb.name}:{type(cb).__name__}"] = cb.state_dict()
    return out


def _ckpt_file(learn: Any, file: str | Path) -> Path:
    # the one path rule (tiers.train.io.paths): `.pth` added, relative to learn.path / learn.model_dir
    return learner_file(learn, file)


def save_checkpoint(self: Any, file: str | Path, batches_done: int | None = None) -> Path:
    """Write a resumable checkpoint to `file` (relative to `path/model_dir` unless absolute, `.pth` added);
    returns the path. Only rank 0 writes in distributed training (every rank must call it).

    Called between batches of a training pass, `batches_done` defaults to the batches finished in the
    current epoch; called outside a fit, the checkpoint resumes at the start of the next epoch.
    """
    in_train = bool(self.training) and self.dl is not None
    if batches_done is None:
        batches_done = int(self.iter) + 1 if in_train else 0
    epoch = int(self.epoch) if in_train else int(getattr(self, "_ckpt_next_epoch", 0))
    st = {
        "version": _VERSION,
        "model": _unwrap(self.model).state_dict(),
        "opt": None if self.opt is None else self.opt.state_dict(),
        "epoch": epoch,
        "batches_done": int(batches_done),
        "train_iter": int(self.train_iter),
        "loop": self.state.state_dict(),  # the Learner's loop counters (pct_train...) as they were
        "rng": get_rng_states(),
        "epoch_rng": getattr(self, "_epoch_rng", None) if batches_done else get_rng_states(),
        "callbacks": _cb_states(self),
    }

    def write(path: Path) -> None:
        with atomic_write(path) as f:
            torch.save(st, f)

    return write_once(_ckpt_file(self, file), write)


def load_checkpoint_state(file: str | Path) -> dict:
    """Read a checkpoint written by `save_checkpoint` (safe: `weights_only=True`), with a clear error if unreadable."""
    file = Path(file)
    if not file.exists():
        raise FileNotFoundError(f"load_checkpoint_state: no checkpoint at {file}")
    try:
        st = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"load_checkpoint_state: {file} is not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(st, dict) or st.get("version") != _VERSION:
        raise ValueError(f"load_checkpoint_state: {file} is not a tiers checkpoint (version {_VERSION})")
    return st


class _EpochRNG(Callback):
    # Records the RNG state at the start of each training pass (just before the loader draws its order).
    order = 1000

    def before_train(self) -> None:
        self.learn._epoch_rng = get_rng_states()

    def after_epoch(self) -> None:
        self.learn._ckpt_next_epoch = int(self.learn.epoch) + 1


class CheckpointCallback(Callback):
    """Save a resumable checkpoint to `fname` every `every_n_batches` training batches and/or at each epoch end.

    Every rank calls `save_checkpoint`, which lets only rank 0 write. Resume with `learn.fit(n_epoch, resume=path)`.
    """

    order = 90

    def __init__(self, fname: str | Path = "checkpoint", every_n_batches: int | None = None, every_epoch: bool = True) -> None:
        if every_n_batches is not None and (not isinstance(every_n_batches, int) or every_n_batches < 1):
            raise ValueError(f"CheckpointCallback: every_n_batches={every_n_batches!r} must be a positive int or None")
        self.fname, self.every_n_batches, self.every_epoch = fname, every_n_batches, every_epoch
        self.path: Path | None = None

    def after_create(self) -> None:
        """Make sure epoch-start RNG states are recorded."""
        if not any(isinstance(cb, _EpochRNG) for cb in self.learn.cbs):
            self.learn.add_cb(_EpochRNG())

    def before_fit(self) -> None:
        """Attach the RNG recorder when added after creation."""
        self.after_create()

    def after_batch(self) -> None:
        """Checkpoint every `every_n_batches` training batches."""
        learn = self.learn
        if not learn.training or not self.every_n_batches:
            return
        if (learn.iter + 1) % self.every_n_batches == 0 and learn.iter + 1 < learn.n_iter:
            self.path = learn.save_checkpoint(self.fname)

    run_valid = False

    def after_epoch(self) -> None:
        """Checkpoint at the end of the epoch (resumes at the next one)."""
        if self.every_epoch and not getattr(self.learn, "validating", False):
            self.learn._ckpt_next_epoch = int(self.learn.epoch) + 1
            dl, training = self.learn.dl, self.learn.training
            self.learn.dl, self.learn.training = None, False
            try:
                self.path = self.learn.save_checkpoint(self.fname, batches_done=0)
            finally:
                self.learn.dl, self.learn.training = dl, training


class _SkipLoader:
    # Replays a loader's order for the resumed epoch: drops the first `skip` batches, then restores the RNG
    # to the checkpoint's state so the rest of the epoch draws exactly what the interrupted run drew.
    def __init__(self, dl: Any, skip: int, rng: dict) -> None:
        self.dl, self.skip, self.rng = dl, skip, rng

    def __len__(self) -> int:
        return len(self.dl)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dl, name)

    def __iter__(self) -> Any:
        it = iter(self.dl)
        for _ in range(self.skip):
            next(it)
        set_rng_states(self.rng)
        yield from it


class _Resume(Callback):
    order = 1001  # after every other before_fit / before_train, including _EpochRNG's

    def __init__(self, state: dict, file: Path) -> None:
        self.state, self.done, self.file = state, False, file

    def before_fit(self) -> None:
        learn, st = self.learn, self.state
        dev = next(iter(learn.model.parameters()), torch.empty(0)).device
        check_model_state(self.file, learn.model, st["model"])  # nothing changes if the checkpoint does not fit
        _unwrap(learn.model).load_state_dict({k: v.to(dev) for k, v in st["model"].items()})
        if st["opt"] is not None:
            if learn.opt is None:
                learn.create_opt()
            learn.opt.load_state_dict(st["opt"])
        states = st["callbacks"]
        for cb in learn.cbs:
            key = f"{cb.name}:{type(cb).__name__}"
            if key in states and callable(getattr(type(cb), "load_state_dict", None)):
                cb.load_state_dict(states[key])

    def before_train(self) -> None:
        if self.done:
            return
        self.done = True
        learn, st = self.learn, self.state
        k = st["batches_done"]
        if k == 0:
            set_rng_states(st["rng"])
            return
        set_rng_states(st["epoch_rng"])
        learn._epoch_rng = st["epoch_rng"]
        learn.dl = _SkipLoader(learn.dl, k, st["rng"])
        # Schedules read pct_train: take it (and train_iter) from the saved loop state.
        loop = st.get("loop")
        if loop is not None and loop["n_epoch"] == learn.n_epoch:
            learn.state.pct_train, learn.state.train_iter = loop["pct_train"], loop["train_iter"]
        else:  # written before the loop state was saved, or resumed into a fit of another length
            learn.pct_train += k / (max(learn.n_iter, 1) * learn.n_epoch)
            learn.train_iter = st["train_iter"]


def resume_callback(learn: Any, file: str | Path) -> tuple[Callback, int]:
    """The callback that restores checkpoint `file` at the start of a fit, and the epoch to start at.

    `learn.fit(..., resume=file)` (and `fit_one_cycle`, `fit_flat_cos`, `fit_sgdr`) use it; call it yourself
    to resume through a fitting method of your own: pass the callback in `cbs` and the epoch as `start_epoch`.
    """
    file = _ckpt_file(learn, file)
    st = load_checkpoint_state(file)
    if not any(isinstance(cb, _EpochRNG) for cb in learn.cbs):
        learn.add_cb(_EpochRNG())
    return _Resume(st, file), int(st["epoch"])

