"""What a tiers.vision export may name beyond tiers/torch/numpy/pandas, read by `load_learner`'s safe load
(`tiers.train.io.safe_load`): PIL's image class and enums (kept by the image transforms), and the model classes
of torchvision and timm (a `vision_learner` body). A "pkg.mod.*" entry covers the classes and functions of that
package; functions are only referenced, never called, while loading."""

SAFE_GLOBALS = (
    "PIL.Image.Image", "PIL.Image.Resampling", "PIL.Image.Transpose", "PIL.Image.Transform", "PIL.Image.Dither",
    "PIL.Image.Palette", "PIL.Image.Quantize",
    "torchvision.models.*", "torchvision.ops.*", "timm.models.*", "timm.layers.*",
)
