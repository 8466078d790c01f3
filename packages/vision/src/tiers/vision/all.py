"""Star-import surface of tiers.vision: the lower layers' `all`, then this layer's public names."""

from tiers.dispatch.all import *  # noqa: F401,F403
from tiers.tensors.all import *  # noqa: F401,F403
from tiers.pipeline.all import *  # noqa: F401,F403
from tiers.data.all import *  # noqa: F401,F403
from tiers.optim.all import *  # noqa: F401,F403
from tiers.train.all import *  # noqa: F401,F403
from tiers.vision import *  # noqa: F401,F403
