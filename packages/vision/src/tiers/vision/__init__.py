"""tiers.vision: Computer vision: images, masks, points and boxes; GPU batch augmentation; XResNet, U-Net and GANs."""

__version__ = "0.1.0"
