"""Star-import surface of tiers.text: the lower layers' `all`, then this layer's public names."""

from typing import NoReturn as _NoReturn

from tiers.dispatch.all import *  # noqa: F401,F403
from tiers.tensors.all import *  # noqa: F401,F403
from tiers.pipeline.all import *  # noqa: F401,F403
from tiers.data.all import *  # noqa: F401,F403
from tiers.optim.all import *  # noqa: F401,F403
from tiers.train.all import *  # noqa: F401,F403
from tiers.text import *  # noqa: F401,F403


class _UnavailableArch:
    """A fastai architecture name tiers does not implement: any use raises `NotImplementedError` saying what to use
    instead (a silent alias would train another model than the listing says)."""

    def __init__(self, name: str, instead: str):
        self._name = name
        self._instead = instead

    def __call__(self, *args: object, **kwargs: object) -> _NoReturn:
        raise NotImplementedError(f"{self._name} is not available in tiers: {self._instead}")

    def __repr__(self) -> str:
        # `language_model_learner(dls, AWD_QRNN)` names the architecture by repr in its "no model_meta entry" error
        return f"{self._name} (not available in tiers: {self._instead})"


AWD_QRNN = _UnavailableArch(
    "AWD_QRNN", "fastai's QRNN needs CUDA kernels compiled at run time, which tiers does not ship. Use AWD_LSTM "
    "(`language_model_learner(dls, AWD_LSTM)`, the default), the same ULMFiT recipe with an LSTM and the only "
    "architecture with pretrained WikiText-103 weights.")
