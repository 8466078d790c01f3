"""Callbacks: the `Callback` base, the default callbacks, and every optional one (schedules, trackers,
mixed precision, mixup, loggers, hooks, distributed training, the LR finder).
"""

from tiers.train.callbacks import (
    core,
    distributed,
    fp16,
    hooks,
    logging,
    lr_finder,
    mixup,
    progress,
    recorder,
    schedule,
    tracker,
    training,
)
from tiers.train.callbacks.core import *  # noqa: F403
from tiers.train.callbacks.distributed import *  # noqa: F403
from tiers.train.callbacks.fp16 import *  # noqa: F403
from tiers.train.callbacks.hooks import *  # noqa: F403
from tiers.train.callbacks.logging import *  # noqa: F403
from tiers.train.callbacks.lr_finder import *  # noqa: F403
from tiers.train.callbacks.mixup import *  # noqa: F403
from tiers.train.callbacks.progress import *  # noqa: F403
from tiers.train.callbacks.recorder import *  # noqa: F403
from tiers.train.callbacks.schedule import *  # noqa: F403
from tiers.train.callbacks.tracker import *  # noqa: F403
from tiers.train.callbacks.training import *  # noqa: F403

__all__ = [name for mod in (core, progress, recorder, schedule, lr_finder, tracker, training, mixup, fp16, distributed, logging, hooks) for name in mod.__all__]
