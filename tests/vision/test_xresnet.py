"""XResNet family: shapes, the bag-of-tricks structure, options."""

import pytest
import torch
from torch import nn

from tiers.vision.models.xresnet import (
    SeparableBlock,
    SEResNeXtBlock,
    XResNet,
    init_cnn,
    xresnet18,
    xresnet34_deep,
    xresnet50,
    xse_resnext18,
)


def test_xresnet18_shapes_and_layout():
    m = xresnet18(n_out=7, c_in=1)
    assert m(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    # stem of three 3x3 convs, a max-pool, four stages, then pool/flatten/dropout/linear
    assert [type(c).__name__ for c in m[:3]] == ["ConvLayer"] * 3
    assert isinstance(m[3], nn.MaxPool2d)
    assert len(m) == 3 + 1 + 4 + 4
    assert isinstance(m[-1], nn.Linear) and m[-1].in_features == 512


def test_residual_branches_start_as_identity():
    # the last BatchNorm of every block's conv path starts at zero (bag of tricks)
    m = xresnet18(n_out=2)
    blocks = [b for stage in m[4:8] for b in stage]
    for b in blocks:
        last_bn = [mod for mod in b.convpath.modules() if isinstance(mod, nn.BatchNorm2d)][-1]
        assert (last_bn.weight == 0).all()


def test_bottleneck_and_resnext_and_se():
    assert xresnet50(n_out=3)[-1].in_features == 2048
    m = xse_resnext18(n_out=3)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d) and mod.groups == 32]
    assert convs, "ResNeXt blocks use grouped convs"
    assert any(isinstance(mod, nn.Sigmoid) for mod in m.modules()), "SE gates end in a sigmoid"
    m.eval()
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_options_widen_sa_act_depthwise_ndim():
    m = xresnet18(n_out=4, widen=0.5, sa=True, act_cls=nn.Mish)
    assert m[-1].in_features == 256
    assert any(type(mod).__name__ == "SimpleSelfAttention" for mod in m.modules())
    assert any(isinstance(mod, nn.Mish) for mod in m.modules())
    dw = XResNet(SeparableBlock, 1, [1, 1, 1, 1], n_out=2)
    assert any(isinstance(mod, nn.Conv2d) and mod.groups == mod.in_channels > 1 for mod in dw.modules())
    assert xresnet18(ndim=1, n_out=2)(torch.randn(2, 3, 40)).shape == (2, 2)
    assert xresnet34_deep(n_out=2)[-1].in_features == 256


def test_bad_arguments():
    with pytest.raises(ValueError, match="ks=4"):
        XResNet(SEResNeXtBlock, 1, [1, 1, 1, 1], ks=4)
    with pytest.raises(ValueError, match="pretrained"):
        xresnet18(pretrained=True)


def test_init_cnn_zeroes_biases():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 2))
    nn.init.constant_(m[0].bias, 5.0)
    init_cnn(m)
    assert (m[0].bias == 0).all() and (m[1].bias == 0).all()
