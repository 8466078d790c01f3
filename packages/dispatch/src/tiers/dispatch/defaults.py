"""`defaults`: the library-wide settings fastai keeps in `fastcore.basics.defaults`, in one namespace every layer
can read (this layer is the lowest, so none has to import a higher one to see them)."""

from types import SimpleNamespace

from tiers.dispatch.basics import num_cpus

__all__ = ["Defaults", "defaults"]


class Defaults(SimpleNamespace):
    """Library-wide settings, read when they are used (so changing one affects what is built afterwards):

    - `cpus`: CPUs this process may use, at most 16 as in fastai (worker counts default to it);
    - `lr`: the learning rate `Learner` uses when none is given (1e-3, as fastai);
    - `callbacks`: callback classes (or instances) every new `Learner` gets on top of its own defaults;
    - `use_cuda`: `None` picks the device automatically (CUDA, then MPS, then CPU), `False` keeps tiers on the CPU,
      `True` demands an accelerator (read by `tiers.tensors.default_device`);
    - `benchmark`: whether the cuDNN autotuner may be turned on when training on CUDA;
    - `activation`: the activation class layers use when none is given (`None` means `torch.nn.ReLU`; this layer
      cannot import torch).

    >>> defaults.lr
    0.001
    >>> old, defaults.lr = defaults.lr, 3e-3; defaults.lr
    0.003
    >>> defaults.lr = old
    """

    def __repr__(self) -> str:
        return "defaults(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


defaults = Defaults(cpus=min(16, num_cpus()), lr=1e-3, callbacks=[], use_cuda=None, benchmark=True, activation=None)
