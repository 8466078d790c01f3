"""Star-import surface of tiers.tensors: the lower layers' `all`, then this layer's public names."""

from tiers.dispatch.all import *  # noqa: F401,F403
from tiers.tensors import *  # noqa: F401,F403
