"""Image classification in four lines (the paper's section 2.1), offline: digits from scikit-learn.

    python examples/vision_digits.py
"""

from tiers.vision.all import (
    ImageDataLoaders,
    accuracy,
    aug_transforms,
    make_digits_folder,
    vision_learner,
    xresnet18,
)

path = make_digits_folder()  # train/ and valid/ folders of 28x28 digit PNGs, under ~/.tiers/samples
dls = ImageDataLoaders.from_folder(path, batch_tfms=aug_transforms(do_flip=False))
learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy)
learn.fit_one_cycle(3, 3e-3)
print(f"validation accuracy: {learn.validate()[1]:.3f}")
