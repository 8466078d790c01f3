"""fastai's smaller layer helpers: module builders, TimeDistributed, pooling choices, SimpleCNN, activations, NoneReduce."""

import inspect
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tiers.tensors import TensorBase
from tiers.train import (
    AdaptiveConcatPool2d,
    CrossEntropyLossFlat,
    Debugger,
    Lambda,
    Mish,
    NoneReduce,
    ParameterModule,
    PoolFlatten,
    PoolType,
    SimpleCNN,
    Swish,
    TimeDistributed,
    ToTensorBase,
    adaptive_pool,
    inplace_relu,
    mish,
    module,
    sequential,
    sigmoid,
    sigmoid_,
    swish,
    vleaky_relu,
)


# ---- module builders ---------------------------------------------------------------------------------------
def test_module_decorator_builds_a_module_class_with_fields_and_defaults():
    @module("a", b=1)
    def Affine(self, x):
        "x * a + b"
        return x * self.a + self.b

    assert issubclass(Affine, nn.Module) and Affine.__name__ == "Affine" and Affine.__doc__ == "x * a + b"
    assert list(inspect.signature(Affine).parameters) == ["a", "b"]
    m = Affine(3)
    assert (m.a, m.b) == (3, 1)
    assert torch.equal(m(torch.tensor([1.0, 2.0])), torch.tensor([4.0, 7.0]))
    assert Affine(a=2, b=0).b == 0 and "Affine(a=2, b=0)" == repr(Affine(2, 0))
    with pytest.raises(TypeError, match="Affine"):
        Affine()


def test_module_decorator_registers_submodules_given_as_fields():
    @module("inner")
    def Twice(self, x):
        return self.inner(self.inner(x))

    m = Twice(nn.Linear(2, 2))
    assert len(list(m.parameters())) == 2


def test_sequential_wraps_callables_in_lambda():
    s = sequential(nn.Linear(2, 3), lambda x: x * 0 + 1, nn.Identity())
    assert isinstance(s, nn.Sequential) and isinstance(s[1], Lambda)
    assert torch.equal(s(torch.randn(4, 2)), torch.ones(4, 3))
    od = sequential(OrderedDict(lin=nn.Linear(2, 2)))
    assert isinstance(od.lin, nn.Linear)
    with pytest.raises(TypeError, match="item 0"):
        sequential(3)


def test_parameter_module_registers_its_parameter():
    p = nn.Parameter(torch.ones(3))
    holder = nn.Sequential(nn.Linear(2, 2), ParameterModule(p))
    assert any(q is p for q in holder.parameters())
    x = torch.randn(2, 3)
    assert ParameterModule(p)(x) is x


def test_to_tensor_base_and_debugger(monkeypatch):
    assert type(ToTensorBase()(torch.ones(2))) is TensorBase
    calls = []
    monkeypatch.setattr(sys, "breakpointhook", lambda *a, **k: calls.append(1))
    x = torch.ones(2)
    assert Debugger()(x) is x and calls == [1]


# ---- TimeDistributed -----------------------------------------------------------------------------------------
def _loop(module, x, tdim=1):
    return torch.stack([module(x.select(tdim, t)) for t in range(x.shape[tdim])], dim=tdim)


@pytest.mark.parametrize("low_mem", [False, True])
def test_time_distributed_equals_a_loop_over_time_steps(low_mem):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 5, 3, 6, 6)
    out = TimeDistributed(conv, low_mem=low_mem)(x)
    assert out.shape == (2, 5, 4, 6, 6)
    torch.testing.assert_close(out, _loop(conv, x))


def test_time_distributed_other_tdim_and_several_inputs_and_tuple_outputs():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 2, 3)  # time on axis 0
    torch.testing.assert_close(TimeDistributed(lin, tdim=0)(x), _loop(lin, x, tdim=0))

    class AddBoth(nn.Module):
        def forward(self, a, b):
            return a + b, a - b

    a, b = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    for low_mem in (False, True):
        s, d = TimeDistributed(AddBoth(), low_mem=low_mem)(a, b)
        torch.testing.assert_close(s, a + b)
        torch.testing.assert_close(d, a - b)
    assert "TimeDistributed(Linear" in repr(TimeDistributed(lin))


# ---- pooling and SimpleCNN -----------------------------------------------------------------------------------
def test_adaptive_pool_and_pool_flatten():
    assert adaptive_pool(PoolType.Avg) is nn.AdaptiveAvgPool2d
    assert adaptive_pool(PoolType.Max) is nn.AdaptiveMaxPool2d
    assert adaptive_pool(PoolType.Cat) is AdaptiveConcatPool2d
    with pytest.raises(ValueError, match="'Mean'"):
        adaptive_pool("Mean")
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float).view(2, 3, 4, 4)
    torch.testing.assert_close(PoolFlatten()(x), x.mean((2, 3)))
    torch.testing.assert_close(PoolFlatten(PoolType.Max)(x), x.amax((2, 3)))
    assert PoolFlatten(PoolType.Cat)(x).shape == (2, 6)


def test_simple_cnn_structure_and_one_training_step():
    torch.manual_seed(0)
    m = SimpleCNN([3, 8, 16, 5])
    assert sum(isinstance(c, nn.BatchNorm2d) for c in m.modules()) == 2  # none after the last conv
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * 3 and [c.kernel_size for c in convs] == [(3, 3)] * 3
    assert isinstance(m[-1], PoolFlatten)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    out = m(x)
    assert out.shape == (4, 5)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    before = [p.detach().clone() for p in m.parameters()]
    loss = F.cross_entropy(out, y)
    loss.backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, m.parameters()))
    assert SimpleCNN([1, 4], kernel_szs=[5], strides=[1], bn=False)(torch.randn(1, 1, 8, 8)).shape == (1, 4)
    with pytest.raises(ValueError, match="kernel_szs"):
        SimpleCNN([3, 8, 16], kernel_szs=[3])
    with pytest.raises(ValueError, match="at least two"):
        SimpleCNN([3])


# ---- activations ---------------------------------------------------------------------------------------------
def test_sigmoid_clamps_and_sigmoid_inplace():
    x = torch.tensor([-100.0, 0.0, 100.0])
    eps = 1e-7
    assert torch.equal(sigmoid(x), torch.tensor([eps, 0.5, 1 - eps]))
    assert torch.equal(sigmoid(x, eps=0.1), torch.tensor([0.1, 0.5, 0.9]))
    y = x.clone()
    assert sigmoid_(y) is y and torch.equal(y, torch.tensor([eps, 0.5, 1 - eps]))


def test_vleaky_relu_inplace_relu_mish_swish_by_hand():
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.allclose(vleaky_relu(x, inplace=False), torch.tensor([-0.6, 0.0, 3.0]))
    y = x.clone()
    vleaky_relu(y)
    assert torch.allclose(y, torch.tensor([-0.6, 0.0, 3.0]))
    r = inplace_relu()
    assert isinstance(r, nn.ReLU) and r.inplace
    by_hand_mish = x * torch.tanh(torch.log1p(torch.exp(x)))
    torch.testing.assert_close(mish(x), by_hand_mish)
    torch.testing.assert_close(Mish()(x), by_hand_mish)
    by_hand_swish = x / (1 + torch.exp(-x))
    torch.testing.assert_close(swish(x), by_hand_swish)
    torch.testing.assert_close(Swish()(x), by_hand_swish)


# ---- NoneReduce ----------------------------------------------------------------------------------------------
def test_none_reduce_on_a_module_restores_the_reduction():
    lf = nn.MSELoss(reduction="sum")
    with NoneReduce(lf) as f:
        assert f is lf and lf.reduction == "none"
        assert torch.equal(f(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])), torch.tensor([1.0, 4.0, 9.0]))
    assert lf.reduction == "sum"


def test_none_reduce_restores_even_when_the_body_raises():
    lf = CrossEntropyLossFlat()
    with pytest.raises(RuntimeError, match="boom"), NoneReduce(lf) as f:
        assert f(torch.randn(4, 3), torch.tensor([0, 1, 2, 0])).shape == (4,)
        raise RuntimeError("boom")
    assert lf.reduction == "mean"


def test_none_reduce_on_a_function():
    with NoneReduce(F.l1_loss) as f:
        torch.testing.assert_close(f(torch.zeros(2), torch.tensor([-1.0, 2.0])), torch.tensor([1.0, 2.0]))

    def no_reduction(a, b):
        return (a - b).mean()

    with pytest.raises(TypeError, match="no_reduction"), NoneReduce(no_reduction):
        pass
