"""Star-import surface of tiers.tensors: the lower layers' `all`, then this layer's public names."""

from tiers.dispatch.all import *
from tiers.tensors import *
