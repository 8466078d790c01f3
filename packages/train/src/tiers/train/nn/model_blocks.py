"""Composite blocks built from `tiers.train.nn.layers`: attention, squeeze-excitation, the XResNet `ResBlock` and
its SE/ResNeXt/separable variants, and the ICNR-initialised pixel-shuffle upsampler.

>>> blk = ResBlock(1, 16, 32, stride=2, reduction=4, sa=True)
>>> blk(torch.randn(2, 16, 8, 8)).shape
torch.Size([2, 32, 4, 4])
"""

import math
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tiers.train.nn.layers import (
    AvgPool,
    ConvLayer,
    LinBnDrop,
    Module,
    NormType,
    ProdLayer,
    SequentialEx,
)

__all__ = [
    "SelfAttention",
    "PooledSelfAttention2d",
    "SimpleSelfAttention",
    "SEModule",
    "ResBlock",
    "SEBlock",
    "SEResNeXtBlock",
    "SeparableBlock",
    "icnr_init",
    "PixelShuffle_ICNR",
    "PoolingLinear",
    "make_divisible",
]


def _conv1d_spect(ni: int, no: int, ks: int = 1, stride: int = 1, padding: int = 0, bias: bool = False) -> nn.Module:
    # SAGAN-style attention projections: Kaiming init, then spectral normalisation for stability.
    conv = nn.Conv1d(ni, no, ks, stride=stride, padding=padding, bias=bias)
    nn.init.kaiming_normal_(conv.weight)
    if conv.bias is not None:  # there is one exactly when `bias`
        nn.init.zeros_(conv.bias)
    return nn.utils.parametrizations.spectral_norm(conv)


def _check_channels(n_channels: int, div: int, where: str) -> None:
    if n_channels < div or n_channels % div:
        raise ValueError(f"{where}: n_channels={n_channels} must be a positive multiple of {div}")


class SelfAttention(Module):
    """Self-attention over all positions of a feature map (SAGAN), added to the input through `gamma` (starts at 0).

    Works for any number of spatial axes: `(bs, C, *spatial)` in, same shape out.
    """

    def __init__(self, n_channels: int) -> None:
        _check_channels(n_channels, 8, "SelfAttention")
        self.query = _conv1d_spect(n_channels, n_channels // 8)
        self.key = _conv1d_spect(n_channels, n_channels // 8)
        self.value = _conv1d_spect(n_channels, n_channels)
        self.gamma = nn.Parameter(torch.tensor([0.0]))

    def forward(self, x: Tensor) -> Tensor:
        size = x.size()
        x = x.view(*size[:2], -1)  # (bs, C, N)
        f, g, h = self.query(x), self.key(x), self.value(x)
        beta = F.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)  # (bs, N, N)
        o = self.gamma * torch.bmm(h, beta) + x
        return o.view(*size).contiguous()


class PooledSelfAttention2d(Module):
    """BigGAN's cheaper 2d self-attention: keys and values are max-pooled 2x before attending."""

    def __init__(self, n_channels: int) -> None:
        _check_channels(n_channels, 8, "PooledSelfAttention2d")
        self.n_channels = n_channels
        self.query, self.key, self.value, self.out = (
            nn.utils.parametrizations.spectral_norm(nn.Conv2d(ni, no, 1, bias=False))
            for ni, no in (
                (n_channels, n_channels // 8),
                (n_channels, n_channels // 8),
                (n_channels, n_channels // 2),
                (n_channels // 2, n_channels),
            )
        )
        self.gamma = nn.Parameter(torch.tensor([0.0]))

    def forward(self, x: Tensor) -> Tensor:
        bs, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"PooledSelfAttention2d: spatial size {(h, w)} must be even (keys are pooled 2x)")
        q = self.query(x).view(bs, c // 8, -1)  # (bs, C/8, hw)
        k = F.max_pool2d(self.key(x), 2).view(bs, c // 8, -1)  # (bs, C/8, hw/4)
        v = F.max_pool2d(self.value(x), 2).view(bs, c // 2, -1)  # (bs, C/2, hw/4)
        beta = F.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (bs, hw, hw/4)
        o = self.out(torch.bmm(v, beta.transpose(1, 2)).view(bs, c // 2, h, w))
        return self.gamma * o + x


class SimpleSelfAttention(Module):
    """Cheap self-attention `x + gamma * (x xᵀ) conv(x)` (no softmax); `sym` makes the 1x1 conv symmetric."""

    def __init__(self, n_in: int, ks: int = 1, sym: bool = False) -> None:
        if sym and ks != 1:
            raise ValueError(f"SimpleSelfAttention: sym=True needs ks=1, got ks={ks}")
        self.sym, self.n_in = sym, n_in
        self.conv = nn.Conv1d(n_in, n_in, ks, padding=ks // 2, bias=False)
        nn.init.kaiming_normal_(self.conv.weight)
        self.gamma = nn.Parameter(torch.tensor([0.0]))

    def forward(self, x: Tensor) -> Tensor:
        size = x.size()
        x = x.view(*size[:2], -1)  # (bs, C, N)
        weight = self.conv.weight
        if self.sym:
            w2 = weight.view(self.n_in, self.n_in)
            weight = ((w2 + w2.t()) / 2).view_as(weight)
        convx = F.conv1d(x, weight, padding=self.conv.padding)
        xxT = torch.bmm(x, x.transpose(1, 2).contiguous())  # (bs, C, C)
        o = self.gamma * torch.bmm(xxT, convx) + x
        return o.view(*size).contiguous()


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `v` to the nearest multiple of `divisor` (at least `min_value`), never going below 90% of `v`."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def SEModule(ch: int, reduction: int, act_cls: Callable[[], nn.Module] = nn.ReLU) -> SequentialEx:
    """Squeeze-and-excitation gate: pool, bottleneck to `ch//reduction`, sigmoid, multiply the input."""
    nf = make_divisible(ch // reduction, 8)
    return SequentialEx(
        nn.AdaptiveAvgPool2d(1),
        ConvLayer(ch, nf, ks=1, norm_type=None, act_cls=act_cls),
        ConvLayer(nf, ch, ks=1, norm_type=None, act_cls=nn.Sigmoid),
        ProdLayer(),
    )


class ResBlock(Module):
    """Residual block of XResNet (and its SE/attention/depthwise variants): `act(convpath(x) + idpath(x))`.

    `expansion=1` gives two 3x3 convs, otherwise the 1x1-3x3-1x1 bottleneck; `ni`/`nf` are multiplied by
    `expansion`. The last norm of the conv path starts at zero (`BatchZero`), so each block begins as
    the identity. The identity path pools (`pool`, when `stride>1`) and uses a 1x1 conv when the
    channel count changes. `reduction` adds an SE gate, `sa` a `SimpleSelfAttention`, `dw` depthwise
    convs, `groups`/`g2` grouped convs, `nh1`/`nh2` the hidden widths.
    """

    def __init__(
        self,
        expansion: int,
        ni: int,
        nf: int,
        stride: int = 1,
        groups: int = 1,
        reduction: int | None = None,
        nh1: int | None = None,
        nh2: int | None = None,
        dw: bool = False,
        g2: int = 1,
        sa: bool = False,
        sym: bool = False,
        norm_type: NormType | None = NormType.Batch,
        act_cls: Callable[..., nn.Module] = nn.ReLU,
        ndim: int = 2,
        ks: int = 3,
        pool: Callable[..., nn.Module] = AvgPool,
        pool_first: bool = True,
        **kwargs: Any,
    ) -> None:
        zeroed: dict[NormType | None, NormType | None] = {NormType.Batch: NormType.BatchZero,
                                                          NormType.Instance: NormType.InstanceZero}
        norm2 = zeroed.get(norm_type, norm_type)
        nh2 = nh2 or nf
        nh1 = nh1 or nh2
        nf, ni = nf * expansion, ni * expansion
        k0 = dict(norm_type=norm_type, act_cls=act_cls, ndim=ndim, **kwargs)
        k1 = dict(norm_type=norm2, act_cls=None, ndim=ndim, **kwargs)
        convpath: list[nn.Module]
        if expansion == 1:
            convpath = [
                ConvLayer(ni, nh2, ks, stride=stride, groups=ni if dw else groups, **k0),
                ConvLayer(nh2, nf, ks, groups=g2, **k1),
            ]
        else:
            convpath = [
                ConvLayer(ni, nh1, 1, **k0),
                ConvLayer(nh1, nh2, ks, stride=stride, groups=nh1 if dw else groups, **k0),
                ConvLayer(nh2, nf, 1, groups=g2, **k1),
            ]
        if reduction:
            convpath.append(SEModule(nf, reduction=reduction, act_cls=act_cls))
        if sa:
            convpath.append(SimpleSelfAttention(nf, ks=1, sym=sym))
        self.convpath = nn.Sequential(*convpath)
        idpath: list[nn.Module] = []
        if ni != nf:
            idpath.append(ConvLayer(ni, nf, 1, act_cls=None, ndim=ndim, **kwargs))
        if stride != 1:
            idpath.insert(0 if pool_first else 1, pool(stride, ndim=ndim, ceil_mode=True))
        self.idpath = nn.Sequential(*idpath)
        self.act = act_cls(inplace=True) if act_cls is nn.ReLU else act_cls()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.convpath(x) + self.idpath(x))


def SEBlock(expansion: int, ni: int, nf: int, groups: int = 1, reduction: int = 16, stride: int = 1,
            **kwargs: Any) -> ResBlock:
    """A `ResBlock` with a squeeze-excitation gate; the bottleneck's inner width is `2*nf`.

    >>> SEBlock(1, 16, 32, stride=2)(torch.randn(2, 16, 8, 8)).shape
    torch.Size([2, 32, 4, 4])
    """
    return ResBlock(expansion, ni, nf, stride=stride, groups=groups, reduction=reduction, nh1=nf * 2,
                    nh2=nf * expansion, **kwargs)


def SEResNeXtBlock(expansion: int, ni: int, nf: int, groups: int = 32, reduction: int | None = 16,
                   stride: int = 1, base_width: int = 4, **kwargs: Any) -> ResBlock:
    """A ResNeXt block (`groups` grouped 3x3 convs of `base_width` channels per 64), with SE when `reduction`."""
    width = math.floor(nf * (base_width / 64)) * groups
    return ResBlock(expansion, ni, nf, stride=stride, groups=groups, reduction=reduction or None, nh2=width,
                    **kwargs)


def SeparableBlock(expansion: int, ni: int, nf: int, reduction: int = 16, stride: int = 1, **kwargs: Any) -> ResBlock:
    """A `ResBlock` with depth-wise 3x3 convs and a squeeze-excitation gate."""
    return ResBlock(expansion, ni, nf, stride=stride, reduction=reduction, nh2=nf * 2, dw=True, **kwargs)


def icnr_init(x: Tensor, scale: int = 2, init: Callable[[Tensor], Any] = nn.init.kaiming_normal_) -> Tensor:
    """ICNR weights (Aitken et al. 2017) shaped like `x`, for a conv feeding `PixelShuffle(scale)`: each group of
    `scale**2` output channels starts identical, so the upsampled map starts free of checkerboard artefacts."""
    ni, nf, h, w = x.shape
    if ni % (scale**2):
        raise ValueError(f"icnr_init: {ni} output channels are not a multiple of scale**2={scale**2}; "
                         "give the conv nf*scale**2 outputs")
    k = x.new_zeros([ni // scale**2, nf, h, w])
    out = init(k)
    # torch.nn.init functions fill in place and return the tensor; accept an init that returns nothing too.
    k = out if isinstance(out, Tensor) else k
    return k.transpose(0, 1).reshape(nf, ni // scale**2, -1).repeat(1, 1, scale**2).reshape(nf, ni, h, w).transpose(0, 1)


class PixelShuffle_ICNR(nn.Sequential):
    """Upsample by `scale`: a 1x1 conv to `nf*scale**2` channels (ICNR init), `PixelShuffle`, optional blur.

    `blur=True` adds a replication pad and 2x2 average pool, which removes the remaining checkerboard.

    >>> PixelShuffle_ICNR(8, 4)(torch.randn(1, 8, 5, 5)).shape
    torch.Size([1, 4, 10, 10])
    """

    def __init__(self, ni: int, nf: int | None = None, scale: int = 2, blur: bool = False,
                 norm_type: NormType | None = NormType.Weight, act_cls: Callable[..., nn.Module] | None = nn.ReLU) -> None:
        nf = nf or ni
        layers: list[nn.Module] = [ConvLayer(ni, nf * scale**2, ks=1, norm_type=norm_type, act_cls=act_cls, bn_1st=False)]
        # The ConvLayer's conv; torch builds its `parametrizations` at run time, beyond what its stubs can type.
        conv: Any = cast(nn.Sequential, layers[0])[0]
        weight = conv.parametrizations.weight.original1 if norm_type == NormType.Weight else conv.weight
        with torch.no_grad():
            weight.copy_(icnr_init(weight.detach().clone(), scale))
            if conv.bias is not None:
                conv.bias.zero_()  # a random bias per channel would undo ICNR's equal sub-pixels
            if norm_type == NormType.Weight:
                # weight_norm splits w into g * v/|v|: g must be |v| for the effective weight to be the ICNR one.
                conv.parametrizations.weight.original0.copy_(
                    torch.linalg.vector_norm(weight, dim=tuple(range(1, weight.ndim)), keepdim=True))
        layers.append(nn.PixelShuffle(scale))
        if blur:
            layers += [nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1)]
        super().__init__(*layers)


class PoolingLinear(Module):
    """Pool a sequence `(bs, seq, n_in)` into `[last, max, mean]` (3*n_in) and feed `LinBnDrop` layers.

    `dims` are the layer widths after pooling (e.g. `[50, 2]`), `ps` their dropouts. An optional
    boolean `mask` (True = padding) passed to `forward` excludes padded positions from the pools.
    """

    def __init__(self, n_in: int, dims: list[int], ps: list[float] | None = None, act_cls: Callable[[], nn.Module] = nn.ReLU) -> None:
        if not dims:
            raise ValueError("PoolingLinear: dims is empty; give at least the number of outputs, e.g. [2]")
        ps = [0.0] * len(dims) if ps is None else list(ps)
        if len(ps) != len(dims):
            raise ValueError(f"PoolingLinear: {len(ps)} dropouts given for {len(dims)} layers (dims={dims})")
        sizes = [3 * n_in, *dims]
        acts = [act_cls() for _ in dims[:-1]] + [None]
        self.layers = nn.Sequential(
            *[LinBnDrop(i, o, p=p, act=a) for i, o, p, a in zip(sizes[:-1], sizes[1:], ps, acts)]
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            pooled = torch.cat([x[:, -1], x.max(dim=1).values, x.mean(dim=1)], dim=1)
        else:
            keep = (~mask).unsqueeze(-1)  # (bs, seq, 1)
            lengths = keep.sum(dim=1).clamp(min=1)  # (bs, 1)
            last_idx = keep.squeeze(-1).long().cumsum(1).argmax(dim=1)  # first index of the max = last kept position
            last = x[torch.arange(x.size(0), device=x.device), last_idx]
            mx = x.masked_fill(~keep, float("-inf")).max(dim=1).values
            avg = (x * keep).sum(dim=1) / lengths
            pooled = torch.cat([last, mx, avg], dim=1)
        return self.layers(pooled)
