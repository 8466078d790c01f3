"""tiers.optim: A generic optimizer built from stats and steppers (SGD, Adam(W), RAdam, LAMB, LARS, Lookahead...), plus `OptimWrapper` for any `torch.optim` optimizer.

`Adam(model.parameters(), lr=1e-3)` is AdamW with fastai's defaults; `Optimizer(params, [weight_decay, sgd_step], lr=0.1)`
composes your own. Every optimizer here is a `torch.optim.Optimizer`, with hypers per parameter group
(`opt.hypers`, `opt.set_hyper('lr', slice(1e-5, 1e-3))`) and freezing by group (`opt.freeze_to(-1)`).
"""

__version__ = "0.1.0"

from . import base, hypers, lookahead, optimizer, optimizers, steppers, trust, wrapper  # noqa: E402
from .base import *  # noqa: E402,F403
from .hypers import *  # noqa: E402,F403
from .lookahead import *  # noqa: E402,F403
from .optimizer import *  # noqa: E402,F403
from .optimizers import *  # noqa: E402,F403
from .steppers import *  # noqa: E402,F403
from .trust import *  # noqa: E402,F403
from .wrapper import *  # noqa: E402,F403

# The star-import surface is the modules' public names, not the modules themselves.
__all__ = [
    n for m in (base, hypers, lookahead, optimizer, optimizers, steppers, trust, wrapper) for n in m.__all__
]
