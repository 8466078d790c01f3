"""Transform and Pipeline on tiers.tensors' semantic tensors: per-element dispatch, retention of the subclass
and its metadata, return-annotation casts, and `tiers.pipeline.all` re-exporting the tensor layer.

tiers-pipeline depends only on tiers-dispatch; these are the parts that work when tiers-tensors (and torch) is
installed too. Without it the whole module is skipped, and the rest of tests/pipeline runs with no torch at all.
"""

import pytest

pytest.importorskip("tiers.tensors", reason="tiers-tensors is not installed (tiers-pipeline works without it)")

import torch  # noqa: E402

from tiers.pipeline import Pipeline, Transform  # noqa: E402
from tiers.tensors import TensorBase, TensorImage, TensorMask  # noqa: E402


class Mean(Transform):
    "Records what setup saw."

    order = 10

    def setups(self, items):
        self.seen = items


class ImgMask(Transform):
    "Treats images and masks of one (x, y) pair differently."

    def encodes(self, x: TensorImage):
        return x * 2

    def encodes(self, x: TensorMask):  # noqa: F811 (collected by the metaclass, not a redefinition)
        return x + 100


def test_tensor_types_survive_the_pipeline():
    class Scale(Transform):
        def encodes(self, x: torch.Tensor):
            return x.as_subclass(torch.Tensor) * 2

    pipe = Pipeline([Scale(), Scale()])
    for _ in range(3):  # the same result on every call
        x = pipe((TensorImage(torch.ones(2)), torch.ones(2)))
        assert type(x[0]) is TensorImage and type(x[1]) is torch.Tensor
        assert x[0].sum() == 8


def test_setup_passes_a_batch_whole_through_earlier_transforms():
    class Scale(Transform):
        def encodes(self, x: torch.Tensor):
            return x * 10

    m = Mean()
    Pipeline([m, Scale()]).setup((torch.ones(2), 3))
    assert m.seen[0].tolist() == [10.0, 10.0] and m.seen[1] == 3


def test_tuple_elements_dispatch_on_their_own_type():
    img, msk = TensorImage(torch.ones(2, 2)), TensorMask(torch.ones(2, 2))
    x, y = ImgMask()((img, msk))
    assert type(x) is TensorImage and type(y) is TensorMask
    assert x.sum() == 8 and y.sum() == 404


def test_tensor_result_keeps_subclass_and_metadata():
    class Plain(Transform):
        def encodes(self, x: TensorBase):
            return x.as_subclass(torch.Tensor) + 1  # a plain Tensor comes back

    img = TensorImage(torch.zeros(2))
    img.note = "kept"
    out = Plain()(img)
    assert type(out) is TensorImage and out.note == "kept"


def test_return_annotation_casts_to_a_tensor_subclass():
    class ToImage(Transform):
        def encodes(self, x: torch.Tensor) -> TensorImage:
            return x * 1

    assert type(ToImage()(torch.zeros(2))) is TensorImage


def test_all_reexports_the_tensor_layer_when_installed():
    ns: dict = {}
    exec("from tiers.pipeline.all import *", ns)
    assert ns["TensorImage"] is TensorImage and ns["Pipeline"] is Pipeline and "L" in ns
