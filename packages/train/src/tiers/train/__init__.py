"""tiers.train: The `Learner` with two-way callbacks, schedules, `lr_find`, metrics, losses, layers, mixed precision, checkpoints and export.

`Learner(dls, model, metrics=accuracy).fit_one_cycle(3, 1e-3)` trains any `nn.Module` on tiers or plain
torch loaders; callbacks (`tiers.train.callback`) see and change every step of the loop.
"""

__version__ = "0.1.0"

from tiers.train import (
    blocks,
    callback,
    cb_handling,
    checkpoint,
    distributed,
    export,
    fp16,
    hook,
    interpret,
    layers,
    layers_extra,
    learner,
    logging_cbs,
    loss_choice,
    losses,
    lr_finder,
    metric,
    metrics,
    mixup,
    model_utils,
    persist,
    predict,
    progress,
    recorder,
    schedule,
    tracker,
    training_cbs,
)
from tiers.train.blocks import *  # noqa: F403
from tiers.train.callback import *  # noqa: F403
from tiers.train.cb_handling import *  # noqa: F403
from tiers.train.checkpoint import *  # noqa: F403
from tiers.train.distributed import *  # noqa: F403
from tiers.train.export import *  # noqa: F403
from tiers.train.fp16 import *  # noqa: F403
from tiers.train.hook import *  # noqa: F403
from tiers.train.interpret import *  # noqa: F403
from tiers.train.layers import *  # noqa: F403
from tiers.train.layers_extra import *  # noqa: F403
from tiers.train.learner import *  # noqa: F403
from tiers.train.logging_cbs import *  # noqa: F403
from tiers.train.loss_choice import *  # noqa: F403
from tiers.train.losses import *  # noqa: F403
from tiers.train.lr_finder import *  # noqa: F403
from tiers.train.metric import *  # noqa: F403
from tiers.train.metrics import *  # noqa: F403
from tiers.train.mixup import *  # noqa: F403
from tiers.train.model_utils import *  # noqa: F403
from tiers.train.persist import *  # noqa: F403
from tiers.train.predict import *  # noqa: F403
from tiers.train.progress import *  # noqa: F403
from tiers.train.recorder import *  # noqa: F403
from tiers.train.schedule import *  # noqa: F403
from tiers.train.tracker import *  # noqa: F403
from tiers.train.training_cbs import *  # noqa: F403

__all__ = [
    name
    for mod in (
        blocks, callback, cb_handling, checkpoint, distributed, export, fp16, hook, interpret, layers, layers_extra, learner, logging_cbs,
        loss_choice, losses, lr_finder, metric, metrics, mixup, model_utils, persist, predict, progress, recorder,
        schedule, tracker, training_cbs,
    )
    for name in mod.__all__
]
