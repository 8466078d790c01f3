"""Blocks moved down from vision: SE/ResNeXt/separable residual blocks, ICNR init and the pixel-shuffle upsampler."""

import pytest
import torch
from torch import nn

from tiers.train import (
    NormType,
    PixelShuffle_ICNR,
    ResBlock,
    SEBlock,
    SeparableBlock,
    SEResNeXtBlock,
    icnr_init,
)


def _convs(m):
    return [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]


def test_se_block_is_a_resblock_with_a_gate_and_wide_bottleneck():
    blk = SEBlock(4, 8, 16, stride=2)
    assert isinstance(blk, ResBlock)
    assert blk(torch.randn(2, 32, 8, 8)).shape == (2, 64, 4, 4)
    assert any(isinstance(mod, nn.Sigmoid) for mod in blk.modules()), "squeeze-excitation ends in a sigmoid"
    assert blk.convpath[0][0].out_channels == 32  # nh1 = 2*nf
    plain = SEBlock(1, 8, 16, reduction=0)
    assert not any(isinstance(mod, nn.Sigmoid) for mod in plain.modules())


def test_se_resnext_block_groups_and_width():
    blk = SEResNeXtBlock(4, 16, 64, groups=32, base_width=4)
    grouped = [c for c in _convs(blk) if c.groups == 32]
    assert len(grouped) == 1 and grouped[0].out_channels == 4 * 32  # floor(64 * 4/64) * groups
    assert any(isinstance(mod, nn.Sigmoid) for mod in blk.modules())
    no_se = SEResNeXtBlock(1, 8, 8, groups=4, reduction=None)
    assert not any(isinstance(mod, nn.Sigmoid) for mod in no_se.modules())
    assert no_se(torch.randn(1, 8, 6, 6)).shape == (1, 8, 6, 6)


def test_separable_block_uses_depthwise_convs():
    blk = SeparableBlock(1, 8, 8, reduction=4)
    assert any(c.groups == c.in_channels == 8 for c in _convs(blk))
    assert blk(torch.randn(1, 8, 5, 5)).shape == (1, 8, 5, 5)


def test_icnr_repeats_each_kernel_scale_squared_times():
    w = icnr_init(torch.empty(16, 3, 1, 1), scale=2)
    assert w.shape == (16, 3, 1, 1)
    # each group of scale**2 consecutive output channels of the shuffle sees the same kernel
    torch.testing.assert_close(w[0::4], w[1::4])
    torch.testing.assert_close(w[0::4], w[3::4])
    assert not torch.equal(w[0], w[4])
    # an init that fills in place and returns nothing is still used
    ones = icnr_init(torch.empty(8, 2, 1, 1), init=lambda t: (t.fill_(1.0), None)[1])
    assert torch.equal(ones, torch.ones(8, 2, 1, 1))
    with pytest.raises(ValueError, match="6 output channels are not a multiple of scale"):
        icnr_init(torch.empty(6, 3, 1, 1), scale=2)


@pytest.mark.parametrize("norm_type", [None, NormType.Weight])
def test_pixel_shuffle_icnr_starts_without_checkerboard(norm_type):
    ps = PixelShuffle_ICNR(4, 2, norm_type=norm_type, act_cls=None)
    out = ps(torch.randn(1, 4, 5, 5))
    assert out.shape == (1, 2, 10, 10)
    # every 2x2 block of the output is constant: the effective weight (also through weight norm) is ICNR
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        torch.testing.assert_close(out[..., 0::2, 0::2], out[..., dy::2, dx::2])


def test_pixel_shuffle_icnr_blur_and_default_width():
    ps = PixelShuffle_ICNR(6, scale=2, blur=True)
    assert isinstance(ps[-1], nn.AvgPool2d)
    assert ps(torch.randn(2, 6, 4, 4)).shape == (2, 6, 8, 8)  # nf defaults to ni; blur keeps the size
