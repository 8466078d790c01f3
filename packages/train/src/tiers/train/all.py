"""Star-import surface of tiers.train: the lower layers' `all`, then this layer's public names."""

from tiers.dispatch.all import *
from tiers.tensors.all import *
from tiers.pipeline.all import *
from tiers.data.all import *
from tiers.optim.all import *
from tiers.train import *
