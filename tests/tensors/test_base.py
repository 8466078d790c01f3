"""TensorBase: type and metadata survive torch ops, indexing, cat/stack, copies, pickling and serialization."""

import copy
import io
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from tiers.tensors import (
    TensorBase,
    TensorBBox,
    TensorCategory,
    TensorImage,
    TensorMask,
    TensorPoint,
    safe_tensor_types,
)


@pytest.fixture
def img():
    return TensorImage(torch.rand(2, 3, 4, 4) + 0.1, tag="m", img_size=(4, 4))


def assert_typed(x, typ=TensorImage, **meta):
    assert type(x) is typ, f"got {type(x).__name__}, expected {typ.__name__}"
    for k, v in meta.items():
        assert getattr(x, k) == v


# op name -> function of a (2, 3, 4, 4) TensorImage; every one must give TensorImage(s) with the metadata
OPS = {
    "abs": lambda x: x.abs(),
    "neg": lambda x: -x,
    "exp": torch.exp,
    "log": lambda x: x.log(),
    "sqrt": torch.sqrt,
    "sigmoid": torch.sigmoid,
    "tanh": lambda x: x.tanh(),
    "relu": F.relu,
    "clamp": lambda x: x.clamp(0.2, 0.8),
    "round": torch.round,
    "add": lambda x: x + 1,
    "radd": lambda x: 1 + x,
    "sub_tensor": lambda x: x - torch.ones(4),
    "rsub": lambda x: 1 - x,
    "mul": lambda x: x * 2,
    "div": lambda x: x / 2,
    "pow": lambda x: x**2,
    "maximum": lambda x: torch.maximum(x, torch.full_like(x, 0.5)),
    "sum_dim": lambda x: x.sum(dim=1),
    "mean_keepdim": lambda x: x.mean(dim=(2, 3), keepdim=True),
    "amax": lambda x: x.amax(1),
    "cumsum": lambda x: x.cumsum(-1),
    "softmax": lambda x: F.softmax(x, dim=1),
    "view": lambda x: x.view(2, 3, 16),
    "reshape": lambda x: x.reshape(6, 16),
    "permute": lambda x: x.permute(0, 2, 3, 1),
    "transpose": lambda x: x.transpose(2, 3),
    "flatten": lambda x: x.flatten(1),
    "unsqueeze": lambda x: x.unsqueeze(0),
    "squeeze": lambda x: x[:, :1].squeeze(1),
    "flip": lambda x: x.flip(-1),
    "roll": lambda x: torch.roll(x, 1, -1),
    "repeat": lambda x: x.repeat(1, 1, 2, 1),
    "expand": lambda x: x[:1].expand(3, 3, 4, 4),
    "contiguous": lambda x: x.permute(0, 2, 3, 1).contiguous(),
    "clone": lambda x: x.clone(),
    "detach": lambda x: x.detach(),
    "to_dtype": lambda x: x.to(torch.float64),
    "double": lambda x: x.double(),
    "narrow": lambda x: x.narrow(2, 1, 2),
    "index_select": lambda x: x.index_select(0, torch.tensor([1])),
    "gather": lambda x: x.gather(1, torch.zeros(2, 1, 4, 4, dtype=torch.long)),
    "masked_fill": lambda x: x.masked_fill(x > 0.5, 0.0),
    "where": lambda x: torch.where(x > 0.5, x, torch.zeros_like(x)),
    "matmul": lambda x: x @ torch.eye(4),
    "einsum": lambda x: torch.einsum("bchw->bhwc", x),
    "interpolate": lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
    "pad": lambda x: F.pad(x, (1, 1, 1, 1)),
    "conv2d": lambda x: F.conv2d(x, torch.ones(5, 3, 3, 3)),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 2),
    "grid_sample": lambda x: F.grid_sample(x, torch.zeros(2, 4, 4, 2), align_corners=False),
    "zeros_like": torch.zeros_like,
    "new_zeros": lambda x: x.new_zeros(3),
    "new_ones": lambda x: x.new_ones(2, 2),
    "new_full": lambda x: x.new_full((2,), 7.0),
    "new_tensor": lambda x: x.new_tensor([1.0, 2.0]),
    "new_empty": lambda x: x.new_empty(2),
    "to_cpu": lambda x: x.to("cpu"),
    "cpu": lambda x: x.clone().cpu(),
    "minimum": lambda x: torch.minimum(torch.full((4,), 0.5), x),
}
TUPLE_OPS = {
    "chunk": lambda x: x.chunk(2, dim=1),
    "split": lambda x: torch.split(x, 1),
    "unbind": lambda x: x.unbind(0),
    "max_dim": lambda x: x.max(dim=1),
    "sort": lambda x: x.sort(dim=-1),
    "topk": lambda x: x.flatten(1).topk(3),
}


def test_at_least_30_distinct_ops():
    assert len(OPS) + len(TUPLE_OPS) >= 30


@pytest.mark.parametrize("name", list(OPS))
def test_op_keeps_type_and_meta(img, name):
    res = OPS[name](img)
    assert_typed(res, tag="m", img_size=(4, 4))
    expected = OPS[name](img.as_subclass(Tensor))
    assert type(expected) is Tensor
    if name not in ("new_empty",):
        torch.testing.assert_close(res.as_subclass(Tensor), expected)


@pytest.mark.parametrize("name", list(TUPLE_OPS))
def test_tuple_op_keeps_type_and_meta_per_element(img, name):
    res = TUPLE_OPS[name](img)
    plain = TUPLE_OPS[name](img.as_subclass(Tensor))
    assert type(res) is type(plain) and len(res) == len(plain)
    for r, p in zip(res, plain):
        assert_typed(r, tag="m")
        torch.testing.assert_close(r.as_subclass(Tensor), p)
    if hasattr(plain, "values"):  # named tuples of results keep their field names
        assert_typed(res.values, tag="m")


def test_indexing(img):
    for idx in (
        0,
        (0, 1),
        slice(0, 1),
        (Ellipsis, 0),
        img > 0.5,
        [1, 0],
        torch.tensor([1]),
        TensorCategory([0]),
    ):
        r = img[idx]
        assert_typed(r, tag="m")
        torch.testing.assert_close(r.as_subclass(Tensor), img.as_subclass(Tensor)[idx])


def test_setitem_keeps_identity_and_type(img):
    x = img.clone()
    x[0] = 0.0
    assert_typed(x, tag="m")
    assert float(x[0].sum()) == 0.0


def test_cat_and_stack():
    a = TensorBBox.create([[0, 0, 1, 1]], img_size=(10, 10))
    b = TensorBBox.create([[1, 1, 2, 2]], img_size=(10, 10))
    assert_typed(torch.cat([a, b]), TensorBBox, img_size=(10, 10))
    assert_typed(torch.stack((a, b)), TensorBBox, img_size=(10, 10))
    assert torch.cat([a, b]).shape == (2, 4)
    # a plain tensor first: the first *typed* argument decides
    assert_typed(torch.cat([torch.zeros(1, 4), a]), TensorBBox, img_size=(10, 10))
    assert_typed(torch.cat(tensors=[torch.zeros(1, 4), a]), TensorBBox, img_size=(10, 10))


def test_first_typed_argument_wins():
    im = TensorImage(torch.rand(1, 4, 4), tag="im")
    mask = TensorMask(torch.ones(1, 4, 4), codes=["a", "b"])
    assert_typed(im + mask, TensorImage, tag="im")
    assert not hasattr(im + mask, "codes")
    assert_typed(mask * im, TensorMask, codes=["a", "b"])
    assert_typed(torch.ones(1, 4, 4) + mask, TensorMask)
    assert_typed(F.grid_sample(im[None], torch.zeros(1, 2, 2, 2), align_corners=False), TensorImage, tag="im")


def test_set_meta(img):
    x = TensorPoint(torch.zeros(2))
    assert x.set_meta(img) is x and x.tag == "m"
    x.tag = "x"
    assert img.tag == "x"  # shared dict without as_copy
    y = TensorPoint(torch.zeros(2)).set_meta(img, as_copy=True)
    y.tag = "y"
    assert img.tag == "x"


def test_metadata_is_a_copy_not_shared(img):
    r = img * 2
    r.tag = "changed"
    assert img.tag == "m"


def test_inplace_ops_keep_identity(img):
    x = img.clone()
    assert x.add_(1) is x
    assert x.mul_(2).clamp_(0, 10) is x
    assert x.requires_grad_() is x
    p = torch.zeros(2, 3, 4, 4)
    assert p.add_(img) is p and type(p) is Tensor  # in place on a plain tensor stays plain
    out = torch.empty(2, 3, 4, 4)
    assert torch.add(img, 1, out=out) is out


def _second(a, b):
    "A torch-function-aware op that hands back its second argument as is."
    if torch.overrides.has_torch_function((a, b)):
        return torch.overrides.handle_torch_function(_second, (a, b), a, b)
    return b


def test_existing_plain_tensor_returned_is_never_retyped(img):
    # results are re-typed in place only when nothing else refers to them; a plain tensor the caller holds must
    # come back as a typed alias and stay plain itself
    p = torch.ones(2, 3, 4, 4)
    r = _second(img, p)
    assert type(p) is Tensor and p.__dict__ == {}
    assert_typed(r, tag="m")
    assert r is not p and r.data_ptr() == p.data_ptr()
    assert type(p.type_as(img)) is Tensor


def test_fresh_results_are_new_objects_with_their_own_meta(img):
    a, b = img.flip(-1), img.flip(-1)
    assert a is not b and a is not img
    a.tag = "a"
    assert b.tag == "m" and img.tag == "m"


def test_subclass_with_slots_keeps_its_type():
    class Slotted(TensorBase):
        __slots__ = ("extra",)

    s = Slotted(torch.ones(2), tag="s")
    r = s + 1
    assert type(r) is Slotted and r.tag == "s"
    torch.testing.assert_close(r.as_subclass(Tensor), torch.full((2,), 2.0))


_FAST_CALLS = {  # each method of the fast path, called the ways transforms call it (positional and keyword)
    "flip": lambda x: x.flip(-1), "flip_kw": lambda x: x.flip(dims=(-1,)), "fliplr": lambda x: x[0, 0].fliplr(),
    "flipud": lambda x: x[0, 0].flipud(), "rot90": lambda x: x.rot90(1, (2, 3)), "roll": lambda x: x.roll(1, -1),
    "float": lambda x: x.double().float(), "half": lambda x: x.half(), "double": lambda x: x.double(),
    "long": lambda x: x.long(), "int": lambda x: x.int(), "byte": lambda x: x.byte(), "bool": lambda x: x.bool(),
    "to_dtype": lambda x: x.to(torch.float64), "to_kw": lambda x: x.to(dtype=torch.float16, copy=True),
    "cpu": lambda x: x.clone().cpu(), "permute": lambda x: x.permute(0, 2, 3, 1), "transpose": lambda x: x.transpose(2, 3),
    "view": lambda x: x.view(2, -1), "reshape": lambda x: x.reshape(-1), "contiguous": lambda x: x.mT.contiguous(),
    "clone": lambda x: x.clone(), "detach": lambda x: x.detach(), "squeeze": lambda x: x[:1].squeeze(0),
    "unsqueeze": lambda x: x.unsqueeze(0), "expand": lambda x: x[:1].expand(3, -1, -1, -1),
    "flatten": lambda x: x.flatten(1), "narrow": lambda x: x.narrow(1, 0, 2), "clamp": lambda x: x.clamp(min=0.5),
    "mul": lambda x: x.mul(2), "add": lambda x: x.add(torch.ones(4), alpha=2), "sub": lambda x: x.sub(1),
    "div": lambda x: x.div(2, rounding_mode="floor"), "neg": lambda x: x.neg(), "abs": lambda x: x.abs(),
    "mul_": lambda x: x.clone().mul_(2), "add_": lambda x: x.clone().add_(torch.ones(4), alpha=2),
    "sub_": lambda x: x.clone().sub_(1), "div_": lambda x: x.clone().div_(255.0),
    "clamp_": lambda x: x.clone().clamp_(0.2, 0.6), "__add__": lambda x: x + torch.ones(4),
    "__sub__": lambda x: x - torch.full((1, 3, 1, 1), 0.5), "__mul__": lambda x: x * 2,
    "__truediv__": lambda x: x / torch.full((1, 3, 1, 1), 0.25),
}


@pytest.mark.parametrize("name", sorted(_FAST_CALLS))
def test_fast_path_methods_match_torch_and_keep_type(img, name):
    f = _FAST_CALLS[name]
    res, ref = f(img), f(img.as_subclass(Tensor))
    assert_typed(res, tag="m")
    assert res is not img and type(img) is TensorImage
    torch.testing.assert_close(res.as_subclass(Tensor), ref)


def test_fast_path_covers_its_whole_list():
    from tiers.tensors.base import _FAST_METHODS

    called = {n if n.startswith("__") or n.endswith("_") else n.split("_")[0] for n in _FAST_CALLS}
    assert set(_FAST_METHODS) - {"cuda"} <= called


def test_fast_path_returns_self_untouched(img):
    assert img.float() is img and img.contiguous() is img and img.to(torch.float32) is img
    assert img.detach().__dict__ is not img.__dict__


def test_subclass_with_its_own_torch_function_sees_method_calls():
    seen = []

    class Logged(TensorBase):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            seen.append(getattr(func, "__name__", str(func)))
            return super().__torch_function__(func, types, args, kwargs)

    x = Logged(torch.ones(2, 3))
    r = x.flip(-1).float()
    assert type(r) is Logged and seen[:2] == ["flip", "float"]


def test_non_tensor_results_untouched(img):
    assert type(img.shape) is torch.Size and img.shape == (2, 3, 4, 4)
    assert type(img.size()) is torch.Size
    assert type(img.dim()) is int and img.dim() == 4
    assert type(img.tolist()) is list
    assert type(img[0, 0, 0, 0].item()) is float
    assert type(bool(img.sum() > 0)) is bool
    assert torch.equal(img, img.clone()) is True
    assert img.is_floating_point() is True
    assert img.dtype is torch.float32
    assert isinstance(img.numpy(), np.ndarray)
    assert repr(img).startswith("TensorImage(")


def test_grad_getter_stays_plain_and_autograd_works():
    x = TensorImage(torch.rand(3), tag="g").requires_grad_()
    loss = (x * 2).sum()
    assert_typed(loss, tag="g")
    loss.backward()
    assert type(x.grad) is Tensor
    torch.testing.assert_close(x.grad, torch.full((3,), 2.0))


def test_as_subclass_is_plain_and_metadata_free(img):
    p = img.as_subclass(Tensor)
    assert type(p) is Tensor and p.__dict__ == {}
    assert p.data_ptr() == img.data_ptr()


def test_constructor_inputs():
    base = torch.arange(6.0).reshape(2, 3)
    t = TensorImage(base, tag=1)
    assert_typed(t, tag=1)
    assert t.data_ptr() == base.data_ptr()  # tensors are shared, not copied
    arr = np.arange(6, dtype=np.float64).reshape(2, 3)
    a = TensorImage(arr)
    assert a.dtype == torch.float32 and a.tolist() == arr.tolist()
    assert TensorCategory([1, 2]).tolist() == [1, 2]
    assert TensorCategory(3).ndim == 0
    assert_typed(TensorMask(t), TensorMask, tag=1)  # re-typing keeps metadata
    again = TensorImage(t, tag=2, extra=3)  # a new alias: the metadata does not land on `t`
    assert again is not t and again.data_ptr() == t.data_ptr()
    assert again.tag == 2 and again.extra == 3 and t.tag == 1 and not hasattr(t, "extra")
    with pytest.raises(TypeError, match="tensor"):
        TensorImage(object())
    with pytest.raises(ValueError, match="size"):
        TensorImage([1.0], size=(1, 1))  # would hide Tensor.size


def test_pickle_roundtrip(img):
    for proto in (2, pickle.HIGHEST_PROTOCOL):
        r = pickle.loads(pickle.dumps(img, protocol=proto))
        assert_typed(r, tag="m", img_size=(4, 4))
        torch.testing.assert_close(r.as_subclass(Tensor), img.as_subclass(Tensor))


def test_torch_save_load(img):
    pts = TensorPoint.create([[1, 2]], img_size=(28, 28))
    buf = io.BytesIO()
    torch.save({"img": img, "pts": pts}, buf)
    buf.seek(0)
    r = torch.load(buf, weights_only=False)
    assert_typed(r["img"], tag="m", img_size=(4, 4))
    assert_typed(r["pts"], TensorPoint, img_size=(28, 28))
    buf.seek(0)
    with torch.serialization.safe_globals(safe_tensor_types()):
        r = torch.load(buf)
    assert_typed(r["pts"], TensorPoint, img_size=(28, 28))
    torch.testing.assert_close(r["img"].as_subclass(Tensor), img.as_subclass(Tensor))


def test_deepcopy(img):
    c = copy.deepcopy(img)
    assert_typed(c, tag="m", img_size=(4, 4))
    assert c.data_ptr() != img.data_ptr()
    torch.testing.assert_close(c.as_subclass(Tensor), img.as_subclass(Tensor))
    # metadata is deep-copied too
    m = TensorMask(torch.zeros(2), codes=["a"])
    mc = copy.deepcopy(m)
    mc.codes.append("b")
    assert m.codes == ["a"]


def test_deepcopy_keeps_grad_state_and_shared_storage():
    x = TensorImage(torch.rand(4)).requires_grad_()
    (x * 3).sum().backward()
    c = copy.deepcopy(x)
    assert c.requires_grad and c.is_leaf and type(c) is TensorImage
    torch.testing.assert_close(c.grad, x.grad)
    base = TensorImage(torch.zeros(4))
    view = base[1:3]
    cb, cv = copy.deepcopy([base, view])
    cv.fill_(5.0)  # the copies still share one storage, like the originals
    assert cb.tolist() == [0.0, 5.0, 5.0, 0.0] and base.sum() == 0
    with pytest.raises(RuntimeError, match="detach"):
        copy.deepcopy(x * 2)


def test_to_device_and_dtype(img):
    r = img.to("cpu", torch.float16)
    assert_typed(r, tag="m") and r.dtype == torch.float16
    assert img.to("cpu") is img  # already there: no copy, same object
    if torch.cuda.is_available():
        assert_typed(img.cuda(), tag="m")


def test_dataloader_collate_and_workers():
    from torch.utils.data import DataLoader, default_collate

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return TensorImage(torch.full((3, 2, 2), float(i)), src="ds"), TensorCategory(i)

    b = default_collate([DS()[0], DS()[1]])
    assert_typed(b[0], src="ds") and type(b[1]) is TensorCategory
    for workers in (0, 1):
        xs, ys = next(iter(DataLoader(DS(), batch_size=3, num_workers=workers)))
        assert_typed(xs, src="ds")
        assert type(ys) is TensorCategory and ys.tolist() == [0, 1, 2]


def test_subclass_of_tensorbase_defined_by_user():
    class TensorDepth(TensorImage):
        pass

    d = TensorDepth(torch.rand(1, 2, 2), unit="m")
    assert_typed(d.sqrt(), TensorDepth, unit="m")
    assert TensorDepth in safe_tensor_types()


@pytest.mark.slow  # a fresh interpreter importing torch takes seconds
def test_import_changes_nothing_global():
    code = """
import sys, warnings, random, torch
before = dict(torch.Tensor.__dict__)
filters = list(warnings.filters)
rng = torch.get_rng_state(); state = random.getstate()
dtype = torch.get_default_dtype()
import tiers.tensors, tiers.tensors.all
after = dict(torch.Tensor.__dict__)
assert before.keys() == after.keys(), set(before) ^ set(after)
assert all(before[k] is after[k] for k in before), [k for k in before if before[k] is not after[k]]
assert list(warnings.filters) == filters
assert torch.equal(torch.get_rng_state(), rng) and random.getstate() == state
assert torch.get_default_dtype() == dtype
assert 'matplotlib' not in sys.modules, 'matplotlib must be imported lazily'
print('ok')
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


# property: any chain of typed-preserving ops gives the same values as on plain tensors, with type and metadata
CHAIN = [
    lambda x: x + 1,
    lambda x: x * 0.5,
    lambda x: x.flip(-1),
    lambda x: x.transpose(-1, -2),
    lambda x: x.clamp(min=0.1),
    lambda x: x[..., :2],
    lambda x: torch.cat([x, x], dim=0),
    lambda x: x.unsqueeze(0).squeeze(0),
    lambda x: x.sqrt(),
    lambda x: x.to(torch.float64),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(CHAIN) - 1), max_size=8), st.integers(1, 3), st.text(max_size=5))
def test_property_op_chains_keep_type_meta_and_values(idxs, n, tag):
    plain = torch.rand(n, 3, 3) + 0.1
    typed = TensorPoint(plain.clone(), tag=tag)
    for i in idxs:
        plain, typed = CHAIN[i](plain), CHAIN[i](typed)
    assert type(typed) is TensorPoint and typed.tag == tag
    torch.testing.assert_close(typed.as_subclass(Tensor), plain)


@given(st.sampled_from([TensorImage, TensorMask, TensorCategory, TensorPoint, TensorBase]))
def test_property_pickle_any_type(typ):
    x = typ(torch.arange(4), info={"k": 1})
    r = pickle.loads(pickle.dumps(x))
    assert type(r) is typ and r.info == {"k": 1} and r.tolist() == [0, 1, 2, 3]
