"""Star-import surface of tiers.optim: the lower layers' `all`, then this layer's public names."""

from tiers.dispatch.all import *  # noqa: F401,F403
from tiers.tensors.all import *  # noqa: F401,F403
from tiers.optim import *  # noqa: F401,F403
