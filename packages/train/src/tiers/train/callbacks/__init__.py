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

# Literal, so type checkers read it; tests/train/test_all_lists.py checks it is the union of the modules' `__all__`.
# ruff: noqa: F405  (every name here comes from the star imports above, on purpose)
__all__ = [
    # core
    "Callback", "TrainEvalCallback", "CastToTensor", "GatherPredsCallback", "FetchPredsCallback",
    "before_batch_cb",
    # progress
    "ProgressCallback",
    # recorder
    "Recorder", "format_time",
    # schedule
    "sched_lin", "sched_cos", "sched_no", "sched_exp", "SchedLin", "SchedCos", "SchedNo", "SchedExp",
    "SchedPoly", "combine_scheds", "combined_cos", "ParamScheduler", "annealer",
    # lr_finder
    "LRFinder", "minimum", "steep", "valley", "slide", "SuggestionMethod",
    # tracker
    "TrackerCallback", "EarlyStoppingCallback", "SaveModelCallback", "ReduceLROnPlateau",
    # training
    "GradientAccumulation", "GradientClip", "TerminateOnNaNCallback", "ChannelsLast", "ShortEpochCallback",
    "set_bn_eval", "BnFreeze", "MCDropoutCallback", "SkipToEpoch",
    # mixup
    "MixHandler", "MixUp", "CutMix", "reduce_loss",
    # fp16
    "MixedPrecision", "get_amp_dtype",
    # distributed
    "rank_distrib", "num_distrib", "DistributedDL", "DistributedTrainer", "setup_distrib", "teardown_distrib",
    # logging
    "LoggerCallback", "CSVLogger", "ShowGraphCallback", "TensorBoardCallback", "CollectDataCallback",
    # hooks
    "HookCallback", "ActivationStats", "LayerStats",
]
