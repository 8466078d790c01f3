"""apply, as_plain, device/dtype/NumPy conversion, detach, batch size, concatenation, and the plain-model loop."""

from collections import OrderedDict, namedtuple

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

import tiers.tensors.convert as convert
from tiers.dispatch import L
from tiers.tensors import (
    TensorBase,
    TensorCategory,
    TensorImage,
    TensorPoint,
    apply,
    as_plain,
    default_device,
    find_bs,
    maybe_gather,
    num_distrib,
    prefer_device,
    rank_distrib,
    to_concat,
    to_cpu,
    to_detach,
    to_device,
    to_float,
    to_half,
    to_np,
)

Pair = namedtuple("Pair", "x y")


class MyTuple(tuple):
    pass


def test_apply_recurses_and_keeps_container_types():
    b = {"a": [1, (2, 3)], "b": Pair(4, 5), "c": MyTuple([6]), "d": OrderedDict(e=7), "n": None}
    r = apply(lambda o: None if o is None else o * 10, b)
    assert r == {"a": [10, (20, 30)], "b": Pair(40, 50), "c": (60,), "d": {"e": 70}, "n": None}
    assert type(r["b"]) is Pair and type(r["c"]) is MyTuple and type(r["d"]) is OrderedDict
    assert apply(lambda o, k, m=1: o + k * m, [1, 2], 3, m=2) == [7, 8]
    r = apply(lambda o: o + 1, L([1, (2, 3)]))
    assert type(r) is L and list(r) == [2, (3, 4)]


nested = st.recursive(
    st.integers(),
    lambda kids: (
        st.lists(kids, max_size=3) | st.tuples(kids, kids) | st.dictionaries(st.text(max_size=2), kids)
    ),
    max_leaves=10,
)


@given(nested)
def test_property_apply_identity_preserves_structure(x):
    assert apply(lambda o: o, x) == x
    r = apply(lambda o: o + 1, x)
    assert apply(lambda o: o - 1, r) == x


def test_as_plain_strips_types_cheaply():
    im = TensorImage(torch.rand(2, 3), tag=1).requires_grad_()
    plain = torch.zeros(2)
    b = (im, [TensorCategory([1, 0])], {"k": im}, plain, "s")
    r = as_plain(b)
    assert type(r[0]) is Tensor and type(r[1][0]) is Tensor and type(r[2]["k"]) is Tensor
    assert r[3] is plain and r[4] == "s"  # plain tensors and other leaves are returned as is
    assert r[0].data_ptr() == im.data_ptr() and r[0].__dict__ == {}
    r[0].sum().backward()  # still on the autograd graph
    assert im.grad is not None
    assert type(as_plain(im)) is Tensor
    assert type(as_plain(L([im]))[0]) is Tensor


def test_default_device_and_prefer_device(monkeypatch):
    auto = default_device()
    expected = (
        "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert auto.type == expected
    assert default_device(False) == torch.device("cpu")
    assert default_device("cpu") == torch.device("cpu")
    if auto.type == "cpu":
        with pytest.raises(RuntimeError, match="no CUDA or MPS"):
            default_device(True)
    with pytest.raises(ValueError, match="not a device"):
        default_device("nonsense")
    old = prefer_device("cpu")
    try:
        assert old is None
        assert default_device() == torch.device("cpu")
        assert to_device(torch.zeros(1)).device.type == "cpu"
        with pytest.raises(ValueError, match="not a device"):
            prefer_device("nonsense")
        assert default_device() == torch.device("cpu")  # a rejected setting changes nothing
    finally:
        prefer_device(old)
    assert default_device() == auto
    # with an accelerator reported, it is preferred and use=True returns it
    monkeypatch.setattr(convert, "_accelerator", lambda: torch.device("meta"))
    assert default_device() == torch.device("meta") and default_device(True) == torch.device("meta")
    assert to_device(TensorImage([1.0], tag=2)).device.type == "meta"


def test_to_device_keeps_types_and_other_leaves():
    b = (TensorImage(torch.rand(2), tag="t"), {"y": TensorCategory([1])}, 3, "s")
    r = to_device(b, "cpu")
    assert type(r[0]) is TensorImage and r[0].tag == "t" and r[0] is b[0]  # already there: same object
    assert type(r[1]["y"]) is TensorCategory and r[2:] == (3, "s")
    r = to_device(b, torch.device("meta"))
    assert r[0].device.type == "meta" and type(r[0]) is TensorImage and r[0].tag == "t"
    c = to_cpu(b)
    assert c[0] is b[0] and c[2:] == (3, "s")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_device_cuda_non_blocking():
    x = TensorImage(torch.rand(4).pin_memory(), tag=1)
    r = to_device([x], "cuda", non_blocking=True)[0]
    assert r.is_cuda and type(r) is TensorImage and r.tag == 1


def test_to_np():
    b = {"a": TensorImage(torch.ones(2)).requires_grad_(), "b": torch.ones(1, dtype=torch.bfloat16), "c": 1}
    r = to_np(b)
    assert isinstance(r["a"], np.ndarray) and r["a"].tolist() == [1.0, 1.0]
    assert r["b"].dtype == np.float32 and r["c"] == 1


def test_to_half_and_to_float():
    b = (TensorImage(torch.rand(2), tag=1), torch.arange(3), "s")
    h = to_half(b)
    assert h[0].dtype == torch.float16 and type(h[0]) is TensorImage and h[0].tag == 1
    assert h[1].dtype == torch.int64 and h[2] == "s"
    f = to_float(h)
    assert f[0].dtype == torch.float32 and f[1].dtype == torch.int64 and type(f[0]) is TensorImage


def test_to_detach():
    x = TensorImage(torch.rand(3), tag=1).requires_grad_()
    y = (x * 2,)
    r = to_detach(y)
    assert not r[0].requires_grad and r[0].grad_fn is None and type(r[0]) is TensorImage and r[0].tag == 1
    assert to_detach([x], cpu=False, gather=False)[0].device == x.device


def test_distributed_helpers_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert num_distrib() == 0 and rank_distrib() == 0
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert num_distrib() == 4 and rank_distrib() == 2
    x = torch.arange(3)
    assert maybe_gather(x) is x  # no process group: nothing to gather


def test_maybe_gather_with_a_process_group(tmp_path):
    import torch.distributed as dist

    if not dist.is_available() or dist.is_initialized():
        pytest.skip("torch.distributed unavailable or already in use")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        x = TensorImage(torch.arange(3.0), tag=1)
        assert num_distrib() == 1 and rank_distrib() == 0
        assert maybe_gather(x) is x
        assert to_detach([x])[0].tolist() == [0.0, 1.0, 2.0]
    finally:
        dist.destroy_process_group()


def test_find_bs():
    assert find_bs(torch.zeros(5, 2)) == 5
    assert find_bs(([TensorImage(torch.zeros(3, 1))], torch.zeros(9))) == 3
    assert find_bs({"x": np.zeros((7, 2))}) == 7
    assert find_bs(L([torch.zeros(6)])) == 6
    with pytest.raises(TypeError, match="batch dimension"):
        find_bs(("a", torch.zeros(2)))
    with pytest.raises(TypeError, match="batch dimension"):
        find_bs(torch.tensor(1.0))
    with pytest.raises(ValueError, match="empty"):
        find_bs([[], torch.zeros(2)])


def test_to_concat():
    batches = [
        (TensorImage(torch.zeros(2, 3), tag=1), {"y": torch.ones(2)}),
        (torch.ones(1, 3), {"y": torch.ones(1)}),
    ]
    x, d = to_concat(batches)
    assert x.shape == (3, 3) and type(x) is TensorImage and x.tag == 1
    assert d["y"].shape == (3,)
    # different shapes off the concatenation dim: a flat list of items
    r = to_concat([torch.zeros(2, 3), torch.zeros(1, 4)])
    assert isinstance(r, list) and [o.shape for o in r] == [(3,), (3,), (4,)]
    assert to_concat([np.zeros(2), np.ones(3)]).shape == (5,)
    assert to_concat([]) == []
    with pytest.raises(TypeError, match="cannot concatenate"):
        to_concat(["a", "b"])


class CountingImage(TensorImage):
    "Counts the torch functions that run on it: the cost type retention would add inside a model."

    calls = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        CountingImage.calls += 1
        return super().__torch_function__(func, types, args, kwargs)


def test_training_loop_hands_plain_tensors_to_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    seen = []
    for m in model.modules():
        m.register_forward_pre_hook(lambda m, inp: seen.append(type(inp[0])))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = (CountingImage(torch.rand(8, 3, 6, 6), src="ds"), TensorCategory(torch.randint(0, 2, (8,))))

    # the loop: typed batch on the device -> plain inputs to the model -> loss may use the typed target
    xb, yb = to_device(batch, "cpu")
    CountingImage.calls = 0
    pred = model(*as_plain((xb,)))
    assert CountingImage.calls == 0, "no per-op type retention inside the model"
    assert set(seen) == {Tensor} and type(pred) is Tensor
    loss = F.cross_entropy(pred, yb)
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in model.parameters())

    # without as_plain every op inside the model pays for type retention, and the activations are typed
    seen.clear()
    out = model(xb)
    assert CountingImage.calls >= len(model)  # at least one retained op per layer
    assert type(out) is CountingImage and CountingImage in set(seen)
    torch.testing.assert_close(out.as_subclass(Tensor), model(as_plain(xb)))


def test_typed_targets_flow_through_losses():
    pred = torch.randn(4, 3, requires_grad=True)
    targ = TensorCategory([0, 1, 2, 1])
    loss = F.cross_entropy(pred, targ)
    loss.backward()
    torch.testing.assert_close(as_plain(loss), F.cross_entropy(pred, as_plain(targ)))
    pts = TensorPoint(torch.rand(4, 2), img_size=(8, 8))
    assert isinstance(F.mse_loss(pts, torch.rand(4, 2)), TensorBase)
