"""Star-import surface of tiers.dispatch: the lower layers' `all`, then this layer's public names."""

from tiers.dispatch import *
