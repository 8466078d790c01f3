"""The model-building toolkit: layers, architecture blocks, losses, default loss choice, parameter and
module utilities, hooks and model summaries. Usable without a `Learner`.
"""

from tiers.train.nn import (
    hooks,
    layers,
    loss_choice,
    losses,
    model_blocks,
    model_utils,
    summary,
    utility_layers,
)
from tiers.train.nn.hooks import *  # noqa: F403
from tiers.train.nn.layers import *  # noqa: F403
from tiers.train.nn.loss_choice import *  # noqa: F403
from tiers.train.nn.losses import *  # noqa: F403
from tiers.train.nn.model_blocks import *  # noqa: F403
from tiers.train.nn.model_utils import *  # noqa: F403
from tiers.train.nn.summary import *  # noqa: F403
from tiers.train.nn.utility_layers import *  # noqa: F403

__all__ = [name for mod in (layers, utility_layers, model_blocks, losses, loss_choice, model_utils, hooks, summary) for name in mod.__all__]
