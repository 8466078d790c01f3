"""timm backbones by name in vision_learner: a CNN and a small ViT, trained from scratch (offline).

    pip install 'tiers-vision[timm]'
    python examples/integrations_timm.py
"""

from tiers.vision.all import (
    ImageDataLoaders,
    Resize,
    accuracy,
    get_image_files,
    make_pets_tiny,
    vision_learner,
)

path = make_pets_tiny()
dls = ImageDataLoaders.from_name_re(path, get_image_files(path / "images"), pat=r"^([^/]+)_\d+.jpg$",
                                    item_tfms=Resize(32), bs=16, seed=0)

# Any timm model name; pretrained=True would load timm's ImageNet weights (from its cache or the Hub).
cnn = vision_learner(dls, "resnet10t", pretrained=False, metrics=accuracy)
cnn.fine_tune(1, 1e-3)
# Extra keyword arguments go to timm.create_model: a ViT for 32x32 images with 8x8 patches.
vit = vision_learner(dls, "vit_tiny_patch16_224", pretrained=False, metrics=accuracy, img_size=32, patch_size=8)
vit.fine_tune(1, 1e-3)
for name, learn in (("resnet10t", cnn), ("vit_tiny", vit)):
    print(f"{name}: {len(learn.splitter(learn.model))} parameter groups, "
          f"valid loss {learn.recorder.values[-1][1]:.3f}")
