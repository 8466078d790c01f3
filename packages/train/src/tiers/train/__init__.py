"""tiers.train: The `Learner` with two-way callbacks, schedules, `lr_find`, metrics, losses, layers, mixed precision, checkpoints and export.

`Learner(dls, model, metrics=accuracy).fit_one_cycle(3, 1e-3)` trains any `nn.Module` on tiers or plain
torch loaders; callbacks (`tiers.train.callbacks`) see and change every step of the loop.

Layout: `learner` (the Learner), `state` (the loop's state), `events` (event names and cancel exceptions),
`callbacks/` (every callback), `metrics/`, `nn/` (the model-building toolkit, usable without a Learner),
`io/` (save, checkpoint, export), `interpret` (inspecting a trained classifier).
"""

__version__ = "0.1.0"

from tiers.train import (
    callbacks,
    checks,
    events,
    interpret,
    io,
    learner,
    metrics,
    nn,
    plain_torch,
    predict,
    state,
)
from tiers.train.callbacks import *  # noqa: F403
from tiers.train.checks import *  # noqa: F403
from tiers.train.events import *  # noqa: F403
from tiers.train.interpret import *  # noqa: F403
from tiers.train.io import *  # noqa: F403
from tiers.train.learner import *  # noqa: F403
from tiers.train.metrics import *  # noqa: F403
from tiers.train.nn import *  # noqa: F403
from tiers.train.plain_torch import *  # noqa: F403
from tiers.train.predict import *  # noqa: F403
from tiers.train.state import *  # noqa: F403

__all__ = [
    name
    for mod in (callbacks, checks, events, interpret, io, learner, metrics, nn, plain_torch, predict, state)
    for name in mod.__all__
]
