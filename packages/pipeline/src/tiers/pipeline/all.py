"""Star-import surface of tiers.pipeline: the lower layers' `all`, then this layer's public names.

tiers-pipeline depends only on tiers-dispatch. When tiers-tensors is installed too (as it is under tiers-data
and everything above), its names come along, so `from tiers.pipeline.all import *` gives the semantic tensors
the Transforms usually work on; without it, nothing of torch is imported.
"""

# isort: skip_file
# (this layer last, so its names win over a lower layer's on a clash)
from importlib.util import find_spec as _find_spec

from tiers.dispatch.all import *

if _find_spec("tiers.tensors") is not None:
    from tiers.tensors.all import *
from tiers.pipeline import *

del _find_spec
