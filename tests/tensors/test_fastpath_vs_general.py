"""The fast methods of `TensorBase` (`flip`, `float`, `+`...: Python wrappers that run torch's method with subclass
dispatch off and re-type the result) give exactly what the general `__torch_function__` path gives: same values,
types, metadata (copied, not shared), aliasing, autograd links and errors. The general path is reached through a
subclass with its own `__torch_function__`, which gets torch's methods back (`TensorBase.__init_subclass__`)."""

import pickle

import pytest
import torch
from torch import Tensor

from tiers.tensors import TensorBase, TensorImage, TensorPoint
from tiers.tensors.base import _FAST_METHODS


class GeneralImage(TensorImage):
    "A TensorImage whose every method call goes through `TensorBase.__torch_function__` (no fast methods)."

    __torch_function__ = TensorBase.__dict__["__torch_function__"]


class GeneralPoint(TensorPoint):
    __torch_function__ = TensorBase.__dict__["__torch_function__"]


_CALLS = {  # every fast method, positional and keyword, fresh results, views, in place and no-op results
    "flip": lambda x: x.flip(-1), "flip_kw": lambda x: x.flip(dims=(-1,)), "fliplr": lambda x: x[0].fliplr(),
    "flipud": lambda x: x[0].flipud(), "rot90": lambda x: x.rot90(1, (1, 2)), "roll": lambda x: x.roll(1, -1),
    "float_noop": lambda x: x.float(), "float": lambda x: x.double().float(), "half": lambda x: x.half(),
    "double": lambda x: x.double(), "long": lambda x: x.long(), "int": lambda x: x.int(), "byte": lambda x: x.byte(),
    "bool": lambda x: x.bool(), "to": lambda x: x.to(torch.float64), "to_noop": lambda x: x.to(torch.float32),
    "to_kw": lambda x: x.to(dtype=torch.float16, copy=True), "cpu": lambda x: x.cpu(),
    "permute": lambda x: x.permute(1, 2, 0), "transpose": lambda x: x.transpose(1, 2), "view": lambda x: x.view(-1),
    "reshape": lambda x: x.reshape(3, -1), "contiguous": lambda x: x.mT.contiguous(),
    "contiguous_noop": lambda x: x.contiguous(), "clone": lambda x: x.clone(), "detach": lambda x: x.detach(),
    "squeeze": lambda x: x[:1].squeeze(0), "unsqueeze": lambda x: x.unsqueeze(0),
    "expand": lambda x: x[:1].expand(3, -1, -1), "flatten": lambda x: x.flatten(1), "narrow": lambda x: x.narrow(1, 0, 2),
    "clamp": lambda x: x.clamp(0.2, 0.6), "clamp_kw": lambda x: x.clamp(min=0.5), "mul": lambda x: x.mul(2),
    "add": lambda x: x.add(torch.ones(4), alpha=2), "sub": lambda x: x.sub(1), "div": lambda x: x.div(3),
    "div_kw": lambda x: x.div(2, rounding_mode="floor"), "neg": lambda x: x.neg(), "abs": lambda x: x.abs(),
    "mul_": lambda x: x.mul_(2), "add_": lambda x: x.add_(1), "sub_": lambda x: x.sub_(1), "div_": lambda x: x.div_(2),
    "clamp_": lambda x: x.clamp_(0.2, 0.6), "__add__": lambda x: x + torch.ones(4), "__sub__": lambda x: x - 0.5,
    "__mul__": lambda x: x * 2, "__truediv__": lambda x: x / torch.full((3, 1, 1), 0.25),
}


def _pair(cls_fast, cls_general, requires_grad=False, **meta):
    base = torch.rand(3, 4, 4)
    a, b = cls_fast(base.clone(), **meta), cls_general(base.clone(), **meta)
    if requires_grad:
        a.requires_grad_(), b.requires_grad_()
    return a, b


def _same(res_f, res_g, src_f, src_g):
    "Results of the fast (`_f`) and general (`_g`) paths agree in everything but the class they started from."
    rename = {GeneralImage: TensorImage, GeneralPoint: TensorPoint}
    assert type(res_f) is rename.get(type(res_g), type(res_g))
    torch.testing.assert_close(res_f.as_subclass(Tensor), res_g.as_subclass(Tensor))
    assert res_f.dtype == res_g.dtype and res_f.shape == res_g.shape and res_f.stride() == res_g.stride()
    assert (res_f is src_f) == (res_g is src_g)
    assert (res_f.data_ptr() == src_f.data_ptr()) == (res_g.data_ptr() == src_g.data_ptr())
    assert res_f.__dict__ == res_g.__dict__
    if res_f is not src_f:
        assert res_f.__dict__ is not src_f.__dict__ or not res_f.__dict__  # a copy of the metadata, never shared
    assert res_f.requires_grad == res_g.requires_grad
    assert type(res_f.grad_fn) is type(res_g.grad_fn)


def test_every_fast_method_is_exercised():
    assert {n for n in _FAST_METHODS if n != "cuda"} <= {k.removesuffix("_kw").removesuffix("_noop") for k in _CALLS}
    for n in _FAST_METHODS:
        assert getattr(GeneralImage, n) is getattr(Tensor, n), f"{n}: the reference class must use torch's method"


@pytest.mark.parametrize("name", sorted(_CALLS))
@pytest.mark.parametrize("meta", [{}, {"tag": "m", "img_size": (4, 4)}], ids=["no-meta", "meta"])
def test_fast_method_equals_general_path(name, meta):
    src_f, src_g = _pair(TensorImage, GeneralImage, **meta)
    f = _CALLS[name]
    res_f, res_g = f(src_f), f(src_g)
    _same(res_f, res_g, src_f, src_g)
    if meta and res_f is not src_f:
        res_f.tag = "changed"
        assert src_f.tag == "m"


@pytest.mark.parametrize("name", ["flip", "float", "permute", "clone", "__mul__", "__sub__", "expand", "to"])
def test_fast_method_equals_general_path_under_autograd(name):
    src_f, src_g = _pair(TensorImage, GeneralImage, requires_grad=True, tag=1)
    res_f, res_g = _CALLS[name](src_f), _CALLS[name](src_g)
    _same(res_f, res_g, src_f, src_g)
    res_f.sum().backward(), res_g.sum().backward()
    torch.testing.assert_close(src_f.grad, src_g.grad)
    assert type(src_f.grad) is type(src_g.grad) is Tensor


def test_metadata_of_points_and_pickling_agree():
    src_f, src_g = _pair(TensorPoint, GeneralPoint, img_size=(4, 4))
    res_f, res_g = src_f.flip(0) * 2, src_g.flip(0) * 2
    _same(res_f, res_g, src_f, src_g)
    back = pickle.loads(pickle.dumps(res_f))
    assert type(back) is TensorPoint and back.img_size == (4, 4)
    torch.testing.assert_close(back.as_subclass(Tensor), res_f.as_subclass(Tensor))


def test_unbound_calls_keep_identity_and_plain_types():
    # as `__torch_function__` does: a result that is the (plain) first argument comes back as is, never re-typed
    src = TensorImage(torch.rand(2, 2), tag="t")
    other = torch.rand(2, 2, dtype=torch.float64)
    res = TensorImage.to(src, other)  # a fresh result: no one else holds it
    assert type(res) is TensorImage and res.tag == "t" and type(other) is Tensor
    plain = torch.rand(3)
    out = TensorBase.contiguous(plain)  # unbound, on a plain tensor: returns that tensor, untouched
    assert out is plain and type(plain) is Tensor and not hasattr(plain, "tag")


def test_calls_on_plain_tensors_and_bad_calls_match_torch():
    plain = torch.rand(2, 3)
    for name in ("flip", "permute", "mul"):
        args = {"flip": (0,), "permute": (1, 0), "mul": (2,)}[name]
        r = getattr(TensorBase, name)(plain, *args)
        assert type(r) is Tensor
        torch.testing.assert_close(r, getattr(Tensor, name)(plain, *args))
    with pytest.raises(TypeError):
        TensorImage.flip()
    with pytest.raises(TypeError):
        TensorImage.flip(dims=(0,))
    x = TensorImage(torch.rand(2, 3))
    for t in (x, GeneralImage(torch.rand(2, 3))):
        with pytest.raises((TypeError, RuntimeError)):
            t.flip("a")
        with pytest.raises(RuntimeError):
            t.view(7)
