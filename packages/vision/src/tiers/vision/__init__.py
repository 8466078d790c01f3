"""tiers.vision: Computer vision: images, masks, points and boxes; GPU batch augmentation; XResNet, U-Net and GANs.

>>> from tiers.vision import *  # doctest: +SKIP
>>> path = make_mnist_tiny()  # doctest: +SKIP
>>> dls = ImageDataLoaders.from_folder(path, batch_tfms=aug_transforms(size=28))  # doctest: +SKIP
>>> learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy)  # doctest: +SKIP
>>> learn.fit_one_cycle(3, 3e-3)  # doctest: +SKIP

Importing registers the vision encodes of `tiers.data.ToTensor` and the vision versions of `show_batch` /
`show_results`; torchvision and matplotlib are only imported when used.
"""

__version__ = "0.1.0"

from tiers.vision import (
    affine,
    augment,
    augment_pixel,
    core,
    data,
    data_samples,
    gan,
    item_tfms,
    learner,
    lighting,
    model_parts,
    models,
    show,
    targets,
    utils,
    verify,
)
from tiers.vision.affine import *  # noqa: F403
from tiers.vision.augment import *  # noqa: F403
from tiers.vision.augment_pixel import *  # noqa: F403
from tiers.vision.core import *  # noqa: F403
from tiers.vision.data import *  # noqa: F403
from tiers.vision.data_samples import *  # noqa: F403
from tiers.vision.gan import *  # noqa: F403
from tiers.vision.item_tfms import *  # noqa: F403
from tiers.vision.learner import *  # noqa: F403
from tiers.vision.lighting import *  # noqa: F403
from tiers.vision.model_parts import *  # noqa: F403
from tiers.vision.models import *  # noqa: F403
from tiers.vision.show import *  # noqa: F403
from tiers.vision.targets import *  # noqa: F403
from tiers.vision.utils import *  # noqa: F403
from tiers.vision.verify import *  # noqa: F403

__all__ = sorted({
    name
    for mod in (affine, augment, augment_pixel, core, data, data_samples, gan, item_tfms, learner, lighting, model_parts,
                models,
                show, targets, utils, verify)
    for name in mod.__all__
})
