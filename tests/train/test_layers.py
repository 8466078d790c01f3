"""Layers, blocks and model helpers: shapes, initialisation and the skip-connection machinery."""

import copy
import pickle

import pytest
import torch
from torch import nn

from tiers.train import (
    AdaptiveConcatPool2d,
    BatchNorm,
    ConvLayer,
    Embedding,
    Flatten,
    InstanceNorm,
    Lambda,
    LinBnDrop,
    MergeLayer,
    Mish,
    Module,
    NormType,
    PartialLambda,
    PooledSelfAttention2d,
    PoolingLinear,
    ResBlock,
    ResizeBatch,
    SelfAttention,
    SEModule,
    SequentialEx,
    SigmoidRange,
    SimpleSelfAttention,
    Swish,
    View,
    apply_init,
    bn_bias_params,
    dummy_eval,
    flatten_model,
    in_channels,
    init_default,
    model_sizes,
    norm_bias_params,
    num_features_model,
    params,
    requires_grad,
    trainable_params,
    trunc_normal_,
)


class Scale(Module):
    def __init__(self, k):  # no super().__init__(): Module does it
        self.k = k
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x) * self.k


def test_module_needs_no_super_init_and_copies():
    m = Scale(3)
    assert len(params(m)) == 2 and m(torch.zeros(1, 2)).shape == (1, 2)
    m2 = copy.deepcopy(m)
    assert m2.k == 3 and torch.equal(m2.lin.weight, m.lin.weight)
    m3 = pickle.loads(pickle.dumps(m))
    assert torch.equal(m3.lin.weight, m.lin.weight)


def test_simple_reshaping_layers():
    x = torch.randn(4, 3, 2, 2)
    assert Flatten()(x).shape == (4, 12)
    assert Flatten(full=True)(x).shape == (48,)
    assert View(-1, 6)(x).shape == (8, 6)
    assert ResizeBatch(12)(x).shape == (4, 12)
    assert torch.equal(Lambda(lambda t: t * 2)(x), x * 2)
    assert torch.allclose(PartialLambda(torch.softmax, dim=1)(x).sum(1), torch.ones(4, 2, 2))


def test_sequential_ex_and_merge_layer_make_skip_connections():
    lin = nn.Linear(4, 4)
    x = torch.randn(3, 4)
    torch.testing.assert_close(SequentialEx(lin, MergeLayer())(x), lin(x) + x)
    dense = SequentialEx(lin, MergeLayer(dense=True))
    assert dense(x).shape == (3, 8)
    blk = SequentialEx(lin)
    blk.append(MergeLayer())
    assert len(blk) == 2 and blk[0] is lin


def test_adaptive_concat_pool_doubles_channels():
    x = torch.randn(2, 5, 7, 7)
    out = AdaptiveConcatPool2d()(x)
    assert out.shape == (2, 10, 1, 1)
    torch.testing.assert_close(out[:, :5, 0, 0], x.amax(dim=(2, 3)))
    torch.testing.assert_close(out[:, 5:, 0, 0], x.mean(dim=(2, 3)))


def test_batchnorm_init_and_zero_variant():
    bn = BatchNorm(8)
    assert torch.all(bn.weight == 1) and torch.allclose(bn.bias, torch.full((8,), 1e-3))
    assert torch.all(BatchNorm(8, norm_type=NormType.BatchZero).weight == 0)
    assert isinstance(BatchNorm(4, ndim=1), nn.BatchNorm1d)
    assert torch.all(InstanceNorm(4, norm_type=NormType.InstanceZero).weight == 0)
    with pytest.raises(ValueError, match="ndim=4"):
        BatchNorm(4, ndim=4)


def test_conv_layer_order_bias_and_padding():
    layer = ConvLayer(3, 8, ks=3, stride=2)
    assert [type(m) for m in layer] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert layer[0].bias is None  # the batch norm's shift replaces it
    assert layer(torch.randn(1, 3, 16, 16)).shape == (1, 8, 8, 8)
    no_norm = ConvLayer(3, 8, norm_type=None, act_cls=None)
    assert len(no_norm) == 1 and no_norm[0].bias is not None
    act_first = ConvLayer(3, 8, bn_1st=False)
    assert [type(m) for m in act_first][1:] == [nn.ReLU, nn.BatchNorm2d]
    assert ConvLayer(2, 4, ndim=1)(torch.randn(1, 2, 10)).shape == (1, 4, 10)
    assert ConvLayer(4, 2, ks=2, stride=2, transpose=True)(torch.randn(1, 4, 5, 5)).shape == (1, 2, 10, 10)
    wn = ConvLayer(3, 4, norm_type=NormType.Weight)
    assert hasattr(wn[0], "parametrizations")


def test_lin_bn_drop_layers():
    m = LinBnDrop(10, 4, p=0.5, act=nn.ReLU())
    assert [type(x) for x in m] == [nn.BatchNorm1d, nn.Dropout, nn.Linear, nn.ReLU]
    assert m[2].bias is None
    m2 = LinBnDrop(10, 4, bn=False, lin_first=True)
    assert [type(x) for x in m2] == [nn.Linear] and m2[0].bias is not None
    assert m(torch.randn(3, 10)).shape == (3, 4)


def test_sigmoid_range_bounds():
    out = SigmoidRange(1.0, 5.0)(torch.linspace(-50, 50, 101))
    assert out.min() >= 1.0 and out.max() <= 5.0 and out[50] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="high=1"):
        SigmoidRange(2, 1)


def test_embedding_is_truncated_normal():
    emb = Embedding(1000, 16, std=0.01)
    w = emb.weight.detach()
    assert w.abs().max() <= 0.02 + 1e-6 and 0.005 < w.std() < 0.012
    t = trunc_normal_(torch.empty(10000), std=2.0)
    assert t.abs().max() <= 4.0


def test_activations():
    x = torch.randn(10)
    torch.testing.assert_close(Mish()(x), x * torch.tanh(nn.functional.softplus(x)))
    torch.testing.assert_close(Swish()(x), x * torch.sigmoid(x))


def test_attention_layers_start_as_identity_and_keep_shape():
    x = torch.randn(2, 16, 4, 4)
    for layer in (SelfAttention(16), PooledSelfAttention2d(16), SimpleSelfAttention(16), SimpleSelfAttention(16, sym=True)):
        torch.testing.assert_close(layer(x), x)  # gamma starts at 0
        with torch.no_grad():
            layer.gamma.fill_(1.0)
        out = layer(x)
        assert out.shape == x.shape and not torch.allclose(out, x)
    with pytest.raises(ValueError, match="n_channels=12"):
        SelfAttention(12)
    with pytest.raises(ValueError, match="sym=True needs ks=1"):
        SimpleSelfAttention(8, ks=3, sym=True)


def test_se_module_gates_channels():
    se = SEModule(16, reduction=4)
    x = torch.randn(2, 16, 5, 5)
    out = se(x)
    gate = out / x
    # one gate value per (item, channel), in (0, 1)
    assert torch.allclose(gate, gate[..., :1, :1].expand_as(gate), atol=1e-5)
    assert gate.min() > 0 and gate.max() < 1


@pytest.mark.parametrize("expansion", [1, 4])
def test_resblock_shapes_and_identity_start(expansion):
    blk = ResBlock(expansion, 8, 8)
    x = torch.randn(2, 8 * expansion, 6, 6).abs()
    blk.eval()
    # the last norm of the conv path starts at weight 0 (bias 1e-3): the block is ~relu(x) at init
    torch.testing.assert_close(blk(x), torch.relu(x), atol=2e-3, rtol=0)
    down = ResBlock(expansion, 8, 16, stride=2, reduction=4, sa=True)
    assert down(torch.randn(2, 8 * expansion, 6, 6)).shape == (2, 16 * expansion, 3, 3)
    dw = ResBlock(expansion, 8, 8, dw=True, groups=2, act_cls=nn.SiLU, norm_type=NormType.Instance)
    assert dw(torch.randn(1, 8 * expansion, 4, 4)).shape == (1, 8 * expansion, 4, 4)


def test_resblock_1d():
    assert ResBlock(1, 4, 8, stride=2, ndim=1)(torch.randn(2, 4, 10)).shape == (2, 8, 5)


def test_pooling_linear_with_and_without_mask():
    m = PoolingLinear(6, [5, 2], ps=[0.1, 0.0])
    x = torch.randn(3, 7, 6)
    assert m(x).shape == (3, 2)
    m.eval()
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[:, 5:] = True  # last two positions are padding
    torch.testing.assert_close(m(x, mask), m(x[:, :5]))
    with pytest.raises(ValueError, match="2 dropouts given for 1 layers"):
        PoolingLinear(6, [2], ps=[0.1, 0.2])


def test_param_helpers():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    assert len(params(m)) == 6
    assert len(norm_bias_params(m)) == 4  # bn weight+bias, conv bias, linear bias
    assert len(norm_bias_params(m, with_bias=False)) == 2
    assert bn_bias_params is norm_bias_params
    m[0].weight.requires_grad_(False)
    assert len(trainable_params(m)) == 5
    assert requires_grad(m) is False and requires_grad(nn.ReLU()) is None
    assert [type(x) for x in flatten_model(m)] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Flatten, nn.Linear]


def test_init_helpers_leave_norm_layers_alone():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with torch.no_grad():
        m[1].weight.fill_(0.5)
        m[0].bias.fill_(1.0)
    apply_init(m, nn.init.ones_)
    assert torch.all(m[0].weight == 1) and torch.all(m[0].bias == 0)
    assert torch.all(m[1].weight == 0.5)
    lin = init_default(nn.Linear(3, 3), nn.init.zeros_)
    assert torch.all(lin.weight == 0)


def test_shape_probes():
    body = nn.Sequential(ConvLayer(3, 8, stride=2), ConvLayer(8, 16, stride=2))
    assert in_channels(body) == 3
    assert [tuple(s) for s in model_sizes(body, (32, 32))] == [(1, 8, 16, 16), (1, 16, 8, 8)]
    assert num_features_model(body) == 16
    body.train()
    assert dummy_eval(body, (8, 8)).shape == (1, 16, 2, 2) and body.training  # mode restored
    with pytest.raises(ValueError, match="no convolution"):
        in_channels(nn.Linear(2, 2))
