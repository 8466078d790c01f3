"""Vision architectures: XResNet and its variants, and the dynamic U-Net."""

from tiers.vision.models.xresnet import *  # noqa: F403
from tiers.vision.models.xresnet import __all__ as _xresnet_all

__all__ = list(_xresnet_all)
