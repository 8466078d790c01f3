"""Star-import surface of tiers.data: the lower layers' `all`, then this layer's public names."""
# isort: skip_file
# (order matters: this layer's names come last so they win over lower layers' names)

from tiers.dispatch.all import *
from tiers.tensors.all import *
from tiers.pipeline.all import *
from tiers.data import *
from tiers.data.imports import *
