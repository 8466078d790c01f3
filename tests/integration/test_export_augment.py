"""AUDIT A1: a vision export made with `aug_transforms()` (or any affine/lighting batch transform alone) loads with
the default safe `load_learner` and predicts what the exporting learner predicted. Those transforms keep bound
methods (`getattr(<Rotate instance>, "_mat")` in the pickle); the safe loader accepts exactly that shape and still
refuses getattr on an allowed instance for dunder, denied or non-method names."""

import io
import pickle
from functools import partial

import pytest
import torch

from tiers.data import get_image_files
from tiers.train import load_learner
from tiers.train.io.safe_load import SafeUnpickler, UnsafeExportError, policy
from tiers.vision.all import (
    Brightness,
    Contrast,
    Dihedral,
    Flip,
    Hue,
    ImageDataLoaders,
    RandomResizedCropGPU,
    Resize,
    Rotate,
    Saturation,
    TensorImage,
    Warp,
    Zoom,
    aug_transforms,
    make_pets_tiny,
    resnet18,
    vision_learner,
    xresnet18,
)

torch.set_num_threads(1)

BATCH_TFMS = {
    "aug_transforms": lambda: aug_transforms(size=24),
    "Flip": lambda: [Flip(p=1.0)],
    "Rotate": lambda: [Rotate(p=1.0)],
    "Zoom": lambda: [Zoom(p=1.0)],
    "Warp": lambda: [Warp(p=1.0)],
    "Dihedral": lambda: [Dihedral(p=1.0)],
    "Brightness": lambda: [Brightness(p=1.0)],
    "Contrast": lambda: [Contrast(p=1.0)],
    "Saturation": lambda: [Saturation(p=1.0)],
    "Hue": lambda: [Hue(p=1.0)],
    "RandomResizedCropGPU": lambda: [RandomResizedCropGPU(24)],
}


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    return make_pets_tiny(tmp_path_factory.mktemp("pets") / "pets_tiny", n_per_class=3)


def _learner(pets, tmp_path, batch_tfms, arch=None):
    dls = ImageDataLoaders.from_name_re(pets, get_image_files(pets / "images"), r"^([^/]+)_\d+.jpg$",
                                        item_tfms=Resize(28), batch_tfms=batch_tfms, bs=4, device="cpu", seed=0)
    torch.manual_seed(0)
    return vision_learner(dls, arch or partial(xresnet18, widen=0.25), pretrained=False, path=tmp_path)


@pytest.mark.parametrize("name", list(BATCH_TFMS))
def test_export_with_batch_augmentation_loads_safely_and_predicts_the_same(pets, tmp_path, name):
    learn = _learner(pets, tmp_path, BATCH_TFMS[name]())
    fname = learn.export()
    loaded = load_learner(fname)  # the default: safe
    assert [type(t).__name__ for t in loaded.dls.after_batch.fs] == [type(t).__name__ for t in learn.dls.after_batch.fs]
    img = get_image_files(pets / "images")[0]
    dec, idx, probs = learn.predict(img)
    dec2, idx2, probs2 = loaded.predict(img)
    assert dec2 == dec and int(idx2) == int(idx)
    torch.testing.assert_close(probs2, probs, atol=1e-5, rtol=1e-4)


def test_the_audit_repro_resnet18_with_aug_transforms(pets, tmp_path):
    learn = _learner(pets, tmp_path, aug_transforms(size=24), arch=resnet18)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)
    loaded = load_learner(learn.export())
    img = get_image_files(pets / "images")[-1]
    torch.testing.assert_close(loaded.predict(img)[2], learn.predict(img)[2], atol=1e-5, rtol=1e-4)
    # the loaded augmentations still run (training split) on a batch
    x = torch.rand(2, 3, 28, 28)
    affine = next(t for t in loaded.dls.after_batch.fs if type(t).__name__ == "Flip")  # flip+rotate+zoom+warp+size
    out = affine(TensorImage(x), split_idx=0)
    assert out.shape == (2, 3, 24, 24) and torch.isfinite(out).all()


# ------------------------------------------------------------------ crafted pickles: still refused
class _GetattrOn:
    """Pickles as `getattr(obj, name)` (the shape of a bound method), so any name can be tried."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


def _safe_loads(data: bytes):
    return SafeUnpickler(io.BytesIO(data), {}, policy()).load()


@pytest.mark.parametrize("name", ["__reduce__", "__reduce_ex__", "__class__", "__globals__", "__init__", "__dict__",
                                  "__getattribute__", "__subclasses__"])
def test_getattr_on_an_allowed_instance_for_a_dunder_is_refused(name):
    data = pickle.dumps(_GetattrOn(Rotate(), name), protocol=4)
    with pytest.raises(UnsafeExportError, match="getattr"):
        _safe_loads(data)


def test_getattr_for_denied_or_non_method_names_is_refused():
    import numpy as np
    import pandas as pd

    cases = [
        (pd.DataFrame({"a": [1]}), "to_csv"),     # a file writer (denied name)
        (np.zeros(2), "dump"),                    # a C method that writes a file: not a plain Python function
        (Rotate(), "split_idx"),                  # not a method: an attribute value
        (Rotate(), "name"),                       # a property would run code while loading
        (torch.nn.ReLU(), "inplace"),             # an instance attribute, not a method of the class
        (torch.nn.ReLU(), "nonexistent"),         # nn.Module.__getattr__ would run
    ]
    for obj, name in cases:
        with pytest.raises(UnsafeExportError, match="getattr"):
            _safe_loads(pickle.dumps(_GetattrOn(obj, name), protocol=4))


def test_a_bound_method_handed_out_by_getattr_may_not_be_called_while_loading():
    # getattr gives the method as a value; a crafted pickle calling it is refused like any other call
    got = pickle.dumps(_GetattrOn(Rotate(), "_mat"), protocol=4)
    assert got.endswith(b".")
    data = got[:-1] + b"K\x01\x85R."  # ... then push (1,) and REDUCE: call the bound method while loading
    with pytest.raises(UnsafeExportError, match=r"refused to call .*Rotate._mat"):
        _safe_loads(data)


def test_the_accepted_shape_gives_the_bound_method():
    r = Rotate()
    m = _safe_loads(pickle.dumps(_GetattrOn(r, "_mat"), protocol=4))
    assert m.__func__ is Rotate._mat and type(m.__self__) is Rotate
