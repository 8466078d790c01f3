"""Vision architectures: XResNet and its variants, and the dynamic U-Net."""

from tiers.vision.models import unet, xresnet
from tiers.vision.models.unet import *  # noqa: F403
from tiers.vision.models.xresnet import *  # noqa: F403

__all__ = [*xresnet.__all__, *unet.__all__]
