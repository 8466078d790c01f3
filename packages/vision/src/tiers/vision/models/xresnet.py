"""XResNet: ResNet with the "bag of tricks" tweaks (He et al. 2019) on by default, and its SE/ResNeXt variants.

The tweaks: a stem of three 3x3 convs instead of one 7x7; downsampling in the 3x3 conv of a bottleneck, not the
1x1; an average-pool before the 1x1 conv of the identity path; the last BatchNorm of every residual branch
initialised to zero so each block starts as the identity. Options add squeeze-excitation (`reduction`),
grouped convs (`groups`, ResNeXt), depth-wise convs (`dw`), widening (`widen`), self-attention (`sa`) and the
activation (`act_cls`).

>>> import torch
>>> m = xresnet18(n_out=10, c_in=1)
>>> m(torch.randn(2, 1, 32, 32)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from tiers.train.nn.layers import AdaptiveAvgPool, ConvLayer, Flatten, MaxPool
from tiers.train.nn.model_blocks import ResBlock, SEBlock, SeparableBlock, SEResNeXtBlock

__all__ = [
    "init_cnn", "XResNet", "SEBlock", "SEResNeXtBlock", "SeparableBlock",
    "se_kwargs1", "se_kwargs2", "se_kwargs3", "g0", "g1", "g2", "g3",
    "xresnet18", "xresnet34", "xresnet50", "xresnet101", "xresnet152",
    "xresnet18_deep", "xresnet34_deep", "xresnet50_deep", "xresnet18_deeper", "xresnet34_deeper", "xresnet50_deeper",
    "xse_resnet18", "xse_resnext18", "xresnext18", "xse_resnet34", "xse_resnext34", "xresnext34",
    "xse_resnet50", "xse_resnext50", "xresnext50", "xse_resnet101", "xse_resnext101", "xresnext101",
    "xse_resnet152", "xsenet154",
    "xse_resnext18_deep", "xse_resnext34_deep", "xse_resnext50_deep",
    "xse_resnext18_deeper", "xse_resnext34_deeper", "xse_resnext50_deeper",
]


def init_cnn(m: nn.Module) -> nn.Module:
    """Kaiming-normal weights and zero biases for every conv and linear layer of `m` (norm layers untouched)."""
    for mod in m.modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return m


class XResNet(nn.Sequential):
    """XResNet: stem (three convs), max-pool, residual stages, then pool, flatten, dropout `p`, linear `n_out`.

    `block` builds one residual block (`ResBlock`, `SEBlock`, `SEResNeXtBlock`...), `expansion` is 1 for basic
    blocks and 4 for bottlenecks, `layers` the number of blocks per stage (stages after the fourth keep 256
    channels). `widen` multiplies the stage widths, `sa` adds self-attention to the last block of the fourth-to-
    last stage, `ndim` 1/2/3 gives 1d/2d/3d convs; remaining kwargs (`groups`, `reduction`, `dw`, `norm_type`...)
    go to every block. Its children index like fastai's: `m[:-4]` is the body, `m[-4:]` the classifier.
    """

    def __init__(self, block: Callable[..., nn.Module], expansion: int, layers: Sequence[int], p: float = 0.0,
                 c_in: int = 3, n_out: int = 1000, stem_szs: Sequence[int] = (32, 32, 64), widen: float = 1.0,
                 sa: bool = False, act_cls: Callable[..., nn.Module] = nn.ReLU, ndim: int = 2, ks: int = 3,
                 stride: int = 2, **kwargs: Any) -> None:
        if ks % 2 == 0:
            raise ValueError(f"XResNet: kernel size ks={ks} must be odd so 'same' padding keeps sizes")
        if not layers:
            raise ValueError("XResNet: layers is empty; give the number of blocks per stage, e.g. [2, 2, 2, 2]")
        self.block, self.expansion, self.act_cls, self.ndim, self.ks = block, expansion, act_cls, ndim, ks
        chans = [c_in, *stem_szs]
        stem = [ConvLayer(chans[i], chans[i + 1], ks=ks, stride=stride if i == 0 else 1, act_cls=act_cls, ndim=ndim)
                for i in range(len(stem_szs))]
        widths = [int(o * widen) for o in [64, 128, 256, 512] + [256] * (len(layers) - 4)]
        widths = [64 // expansion, *widths]
        sa_stage = len(layers) - 4
        stages = [self._stage(widths[i], widths[i + 1], n, 1 if i == 0 else stride, sa and i == sa_stage, **kwargs)
                  for i, n in enumerate(layers)]
        super().__init__(
            *stem, MaxPool(ks=ks, stride=stride, padding=ks // 2, ndim=ndim), *stages,
            AdaptiveAvgPool(sz=1, ndim=ndim), Flatten(), nn.Dropout(p),
            nn.Linear(widths[len(layers)] * expansion, n_out),
        )
        init_cnn(self)

    def __getitem__(self, idx):
        # nn.Sequential slices by calling type(self)(...), which XResNet's signature cannot take: give a plain one.
        if isinstance(idx, slice):
            return nn.Sequential(*list(self.children())[idx])
        return super().__getitem__(idx)

    def _stage(self, ni: int, nf: int, n_blocks: int, stride: int, sa: bool, **kwargs: Any) -> nn.Sequential:
        return nn.Sequential(*[
            self.block(self.expansion, ni if i == 0 else nf, nf, stride=stride if i == 0 else 1,
                       sa=sa and i == n_blocks - 1, act_cls=self.act_cls, ndim=self.ndim, ks=self.ks, **kwargs)
            for i in range(n_blocks)
        ])


se_kwargs1 = dict(groups=1, reduction=16)
se_kwargs2 = dict(groups=32, reduction=16)
se_kwargs3 = dict(groups=32, reduction=0)
g0, g1, g2, g3 = [2, 2, 2, 2], [3, 4, 6, 3], [3, 4, 23, 3], [3, 8, 36, 3]


def _maker(name: str, block, expansion: int, layers: Sequence[int], doc: str, **fixed: Any):
    def make(pretrained: bool = False, n_out: int = 1000, **kwargs: Any) -> XResNet:
        if pretrained:
            raise ValueError(f"{name}: there are no pretrained weights for XResNet models; pass pretrained=False "
                             "(vision_learner does so for you when the architecture has no weights)")
        return XResNet(block, expansion, list(layers), n_out=n_out, **{**fixed, **kwargs})
    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"{doc} (`{name}(n_out=1000, **XResNet kwargs)`)."
    return make


xresnet18 = _maker("xresnet18", ResBlock, 1, [2, 2, 2, 2], "XResNet-18")
xresnet34 = _maker("xresnet34", ResBlock, 1, [3, 4, 6, 3], "XResNet-34")
xresnet50 = _maker("xresnet50", ResBlock, 4, [3, 4, 6, 3], "XResNet-50, bottleneck blocks")
xresnet101 = _maker("xresnet101", ResBlock, 4, [3, 4, 23, 3], "XResNet-101, bottleneck blocks")
xresnet152 = _maker("xresnet152", ResBlock, 4, [3, 8, 36, 3], "XResNet-152, bottleneck blocks")
xresnet18_deep = _maker("xresnet18_deep", ResBlock, 1, [2, 2, 2, 2, 1, 1], "XResNet-18 with two extra stages")
xresnet34_deep = _maker("xresnet34_deep", ResBlock, 1, [3, 4, 6, 3, 1, 1], "XResNet-34 with two extra stages")
xresnet50_deep = _maker("xresnet50_deep", ResBlock, 4, [3, 4, 6, 3, 1, 1], "XResNet-50 with two extra stages")
xresnet18_deeper = _maker("xresnet18_deeper", ResBlock, 1, [2, 2, 1, 1, 1, 1, 1, 1], "XResNet-18, eight stages")
xresnet34_deeper = _maker("xresnet34_deeper", ResBlock, 1, [3, 4, 6, 3, 1, 1, 1, 1], "XResNet-34, eight stages")
xresnet50_deeper = _maker("xresnet50_deeper", ResBlock, 4, [3, 4, 6, 3, 1, 1, 1, 1], "XResNet-50, eight stages")
xse_resnet18 = _maker("xse_resnet18", SEBlock, 1, g0, "SE-XResNet-18", **se_kwargs1)
xse_resnext18 = _maker("xse_resnext18", SEResNeXtBlock, 1, g0, "SE-XResNeXt-18", **se_kwargs2)
xresnext18 = _maker("xresnext18", SEResNeXtBlock, 1, g0, "XResNeXt-18", **se_kwargs3)
xse_resnet34 = _maker("xse_resnet34", SEBlock, 1, g1, "SE-XResNet-34", **se_kwargs1)
xse_resnext34 = _maker("xse_resnext34", SEResNeXtBlock, 1, g1, "SE-XResNeXt-34", **se_kwargs2)
xresnext34 = _maker("xresnext34", SEResNeXtBlock, 1, g1, "XResNeXt-34", **se_kwargs3)
xse_resnet50 = _maker("xse_resnet50", SEBlock, 4, g1, "SE-XResNet-50", **se_kwargs1)
xse_resnext50 = _maker("xse_resnext50", SEResNeXtBlock, 4, g1, "SE-XResNeXt-50", **se_kwargs2)
xresnext50 = _maker("xresnext50", SEResNeXtBlock, 4, g1, "XResNeXt-50", **se_kwargs3)
xse_resnet101 = _maker("xse_resnet101", SEBlock, 4, g2, "SE-XResNet-101", **se_kwargs1)
xse_resnext101 = _maker("xse_resnext101", SEResNeXtBlock, 4, g2, "SE-XResNeXt-101", **se_kwargs2)
xresnext101 = _maker("xresnext101", SEResNeXtBlock, 4, g2, "XResNeXt-101", **se_kwargs3)
xse_resnet152 = _maker("xse_resnet152", SEBlock, 4, g3, "SE-XResNet-152", **se_kwargs1)
xsenet154 = _maker("xsenet154", SEBlock, 4, g3, "SENet-154 layout", groups=64, reduction=16, p=0.2)
xse_resnext18_deep = _maker("xse_resnext18_deep", SEResNeXtBlock, 1, g0 + [1, 1], "SE-XResNeXt-18, deep", **se_kwargs2)
xse_resnext34_deep = _maker("xse_resnext34_deep", SEResNeXtBlock, 1, g1 + [1, 1], "SE-XResNeXt-34, deep", **se_kwargs2)
xse_resnext50_deep = _maker("xse_resnext50_deep", SEResNeXtBlock, 4, g1 + [1, 1], "SE-XResNeXt-50, deep", **se_kwargs2)
xse_resnext18_deeper = _maker("xse_resnext18_deeper", SEResNeXtBlock, 1, [2, 2, 1, 1, 1, 1, 1, 1],
                              "SE-XResNeXt-18, deeper", **se_kwargs2)
xse_resnext34_deeper = _maker("xse_resnext34_deeper", SEResNeXtBlock, 1, [3, 4, 6, 3, 1, 1, 1, 1],
                              "SE-XResNeXt-34, deeper", **se_kwargs2)
xse_resnext50_deeper = _maker("xse_resnext50_deeper", SEResNeXtBlock, 4, [3, 4, 6, 3, 1, 1, 1, 1],
                              "SE-XResNeXt-50, deeper", **se_kwargs2)
