"""Metadata is read without creating an empty `__dict__` (`object.__getstate__`), and that gives the same results as
reading `__dict__`: the same types and metadata through fast methods, `__torch_function__`, `cast` and the
constructor, with and without metadata, for subclasses with `__slots__` too."""

import gc

import pytest
import torch
from torch import Tensor

from tiers.tensors import TensorBase, TensorImage, TensorPoint, cast
from tiers.tensors.base import _meta, _meta_of_310, _state


def _has_dict(t) -> bool:
    "Whether `t` holds a materialised `__dict__` (the GC sees it as a referent), without creating one."
    return any(type(r) is dict for r in gc.get_referents(t))


_OPS = {
    "fast method": lambda t: t.flip(-1),
    "fast operator": lambda t: t * 2,
    "torch function": lambda t: t[0],
    "torch.cat": lambda t: torch.cat([t, t]),
    "tuple result": lambda t: t.split(1)[0],
    "cast": lambda t: cast(t, TensorPoint),
}


@pytest.mark.parametrize("name", sorted(_OPS))
def test_ops_on_metadata_free_tensors_create_no_dict(name):
    t = TensorImage(torch.arange(12.0).reshape(2, 2, 3))
    assert not _has_dict(t)
    r = _OPS[name](t)
    assert isinstance(r, TensorBase) and r.__dict__ == {}
    assert not _has_dict(t), "reading the metadata of the input created an empty __dict__ on it"


@pytest.mark.parametrize("name", sorted(_OPS))
def test_ops_copy_metadata(name):
    t = TensorImage(torch.arange(12.0).reshape(2, 2, 3), tag="m", img_size=(3, 2))
    r = _OPS[name](t)
    assert r.tag == "m" and r.img_size == (3, 2)
    r.tag = "other"  # a shallow copy: the source keeps its own
    assert t.tag == "m"


def test_an_emptied_dict_counts_as_no_metadata():
    t = TensorImage(torch.zeros(2), tag=1)
    del t.tag
    assert _meta(t) is None and t.flip(0).__dict__ == {}


def test_constructor_takes_metadata_of_a_typed_input_only():
    src = TensorImage(torch.zeros(2), tag="s")
    assert TensorPoint(src).tag == "s"
    plain = torch.zeros(2)
    TensorImage(plain)
    assert not _has_dict(plain)


class Slotted(TensorBase):
    __slots__ = ("extra",)


def test_slotted_subclass_metadata_follows_ops():
    s = Slotted(torch.ones(2), tag="s")
    s.extra = 3
    assert type(_state(s)) is tuple  # what object.__getstate__ gives with a filled slot
    assert _meta(s) == {"tag": "s"}
    for r in (s.flip(0), s + 1, s[:1]):
        assert type(r) is Slotted and r.tag == "s"


@pytest.mark.parametrize("meta", [{}, {"tag": 1}])
def test_python_310_fallback_reads_the_same(meta):
    t = TensorImage(torch.zeros(2), **meta)
    assert _meta_of_310(t) == _meta(t) == (meta or None)


def test_cast_of_a_plain_tensor_keeps_its_attributes():
    plain = torch.zeros(1)
    plain.note = "n"
    res = cast(plain, TensorImage)
    assert type(res) is TensorImage and res.note == "n"
    assert _meta(torch.zeros(1)) is None and type(cast(torch.zeros(1), Tensor)) is Tensor
