"""Star-import surface of tiers.pipeline: the lower layers' `all`, then this layer's public names."""

# isort: skip_file
# (this layer last, so its names win over a lower layer's on a clash)
from tiers.dispatch.all import *
from tiers.tensors.all import *
from tiers.pipeline import *
