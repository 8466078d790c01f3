"""Star-import surface of tiers.data: the lower layers' `all`, then this layer's public names."""
# isort: skip_file
# (order matters: this layer's names come last so they win over lower layers' names)

from tiers.dispatch.all import *
from tiers.tensors.all import *
from tiers.pipeline.all import *
from tiers.data import *
from tiers.data.imports import *

# fastai's star import carries these two as well (fastbook: `download_url(ims[0], dest, show_progress=False)`,
# `Config().data`); they stay out of `tiers.data`'s own `__all__`, as in fastai, where they are utilities.
from tiers.data.download import download_url
from tiers.data.external import Config
