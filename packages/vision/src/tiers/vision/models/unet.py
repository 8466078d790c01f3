"""The dynamic U-Net: a decoder grown onto any CNN encoder, with skip connections found by a dry run.

`DynamicUnet(encoder, n_out, img_size)` runs the encoder once on a dummy image, hooks the last layer before each
change of resolution, and builds one `UnetBlock` (upsample with `PixelShuffle_ICNR`, concatenate the hooked
activation, two convs) per hook. Sizes are checked again at every forward pass, so the model also works on inputs
whose sides are not multiples of the encoder's stride (the upsampled map is resized to the skip's size, and the
output to the input's size).

>>> import torch
>>> from tiers.vision.models.xresnet import xresnet18
>>> enc = xresnet18(widen=0.25)[:-4]
>>> DynamicUnet(enc, n_out=3, img_size=(32, 32))(torch.randn(2, 3, 40, 52)).shape
torch.Size([2, 3, 40, 52])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tiers.train.nn.layers import (
    BatchNorm,
    ConvLayer,
    MergeLayer,
    Module,
    NormType,
    SequentialEx,
    SigmoidRange,
)
from tiers.train.nn.model_blocks import PixelShuffle_ICNR, ResBlock, SelfAttention, icnr_init
from tiers.train.nn.model_utils import apply_init, dummy_eval, in_channels, model_sizes

__all__ = ["icnr_init", "PixelShuffle_ICNR", "UnetBlock", "ResizeToOrig", "DynamicUnet"]


class _Hook:
    """Forward hook keeping the module's last output in `.stored` (dropped when pickled)."""

    def __init__(self) -> None:
        self.stored: Tensor | None = None

    def __call__(self, module: nn.Module, inp: Any, out: Tensor) -> None:
        self.stored = out

    def __getstate__(self) -> dict:
        return {"stored": None}


class UnetBlock(Module):
    """One decoder step: upsample the incoming map, concatenate the hooked encoder activation, two convs.

    When the upsampled map and the skip differ in size (odd input sides), the upsampled map is resized to the
    skip's size first.
    """

    def __init__(self, up_in_c: int, x_in_c: int, hook: _Hook, final_div: bool = True, blur: bool = False,
                 act_cls: Callable[..., nn.Module] = nn.ReLU, self_attention: bool = False,
                 init: Callable = nn.init.kaiming_normal_, norm_type: NormType | None = None, **kwargs: Any) -> None:
        self.hook = hook
        self.shuf = PixelShuffle_ICNR(up_in_c, up_in_c // 2, blur=blur, act_cls=act_cls, norm_type=norm_type)
        self.bn = BatchNorm(x_in_c)
        ni = up_in_c // 2 + x_in_c
        nf = ni if final_div else ni // 2
        self.conv1 = ConvLayer(ni, nf, act_cls=act_cls, norm_type=norm_type, **kwargs)
        self.conv2 = ConvLayer(nf, nf, act_cls=act_cls, norm_type=norm_type,
                               xtra=SelfAttention(nf) if self_attention else None, **kwargs)
        self.relu = act_cls()
        apply_init(nn.Sequential(self.conv1, self.conv2), init)

    def forward(self, up_in: Tensor) -> Tensor:
        skip = self.hook.stored
        if skip is None:
            raise RuntimeError("UnetBlock: the encoder has not run; call the whole DynamicUnet, not a block alone")
        up = self.shuf(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        return self.conv2(self.conv1(self.relu(torch.cat([up, self.bn(skip)], dim=1))))


class ResizeToOrig(Module):
    """Inside a `SequentialEx`: resize to the spatial size of the model's input (`x.orig`) when they differ."""

    def __init__(self, mode: str = "nearest") -> None:
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if x.orig.shape[-2:] != x.shape[-2:]:  # type: ignore[attr-defined]  # the block input rides on the tensor (fastai SequentialEx)
            x = F.interpolate(x, x.orig.shape[-2:], mode=self.mode)  # type: ignore[attr-defined]  # the block input rides on the tensor (fastai SequentialEx)
        return x


def _size_change_idxs(sizes: Sequence[torch.Size]) -> list[int]:
    # The last layer at each resolution: its output is what the decoder concatenates back at that resolution.
    return [i for i in range(len(sizes) - 1) if sizes[i][-2:] != sizes[i + 1][-2:]]


class DynamicUnet(SequentialEx):
    """U-Net decoder built on `encoder` (an `nn.Sequential`, e.g. `create_body(resnet34())`) for `n_out` classes.

    `img_size` (h, w) is only used for the dry run that finds the skip connections; any input size works later.
    `blur`/`blur_final` blur after upsampling, `self_attention` adds attention to the third-to-last block,
    `y_range` squashes the output, `last_cross` concatenates the input image before a final `ResBlock`
    (`bottle` halves its width).
    """

    def __init__(self, encoder: nn.Module, n_out: int, img_size: tuple[int, int], blur: bool = False,
                 blur_final: bool = True, self_attention: bool = False, y_range: tuple[float, float] | None = None,
                 last_cross: bool = True, bottle: bool = False, act_cls: Callable[..., nn.Module] = nn.ReLU,
                 init: Callable = nn.init.kaiming_normal_, norm_type: NormType | None = None, **kwargs: Any) -> None:
        if not isinstance(encoder, nn.Sequential):
            raise TypeError(f"DynamicUnet: encoder must be an nn.Sequential of layers, got {type(encoder).__name__}; "
                            "build one with create_body(model)")
        img_size = cast("tuple[int, int]", tuple(img_size))  # a list or torch.Size pair becomes the tuple compared below
        sizes = model_sizes(encoder, size=img_size)
        idxs = list(reversed(_size_change_idxs(sizes)))
        if not idxs:
            raise ValueError(f"DynamicUnet: the encoder never changes resolution on a {img_size} input, so there "
                             "is nothing to connect; use a larger img_size or a downsampling encoder")
        self._hooks = [_Hook() for _ in idxs]
        self._handles = [encoder[i].register_forward_hook(h) for i, h in zip(idxs, self._hooks)]
        x = dummy_eval(encoder, img_size).detach()
        ni = sizes[-1][1]
        middle = nn.Sequential(ConvLayer(ni, ni * 2, act_cls=act_cls, norm_type=norm_type, **kwargs),
                               ConvLayer(ni * 2, ni, act_cls=act_cls, norm_type=norm_type, **kwargs)).eval()
        with torch.no_grad():
            x = middle(x)
        layers: list[nn.Module] = [encoder, BatchNorm(ni), nn.ReLU(), middle]
        for i, idx in enumerate(idxs):
            not_final = i != len(idxs) - 1
            block = UnetBlock(int(x.shape[1]), int(sizes[idx][1]), self._hooks[i], final_div=not_final,
                              blur=blur and (not_final or blur_final), self_attention=self_attention and i == len(idxs) - 3,
                              act_cls=act_cls, init=init, norm_type=norm_type, **kwargs).eval()
            layers.append(block)
            with torch.no_grad():
                x = block(x)
        ni = int(x.shape[1])
        if tuple(x.shape[-2:]) != img_size:
            layers.append(PixelShuffle_ICNR(ni, act_cls=act_cls, norm_type=norm_type))
        layers.append(ResizeToOrig())
        if last_cross:
            layers.append(MergeLayer(dense=True))
            ni += in_channels(encoder)
            layers.append(ResBlock(1, ni, ni // 2 if bottle else ni, act_cls=act_cls, norm_type=norm_type, **kwargs))
        layers.append(ConvLayer(ni, n_out, ks=1, act_cls=None, norm_type=norm_type, **kwargs))
        apply_init(nn.Sequential(layers[3], layers[-2]), init)
        if y_range is not None:
            layers.append(SigmoidRange(*y_range))
        super().__init__(*layers)
        for h in self._hooks:
            h.stored = None
        self.train()

    def forward(self, x: Tensor) -> Tensor:
        try:
            return super().forward(x)
        finally:
            # Drop the skip activations so they do not outlive the batch (and its autograd graph).
            for h in self._hooks:
                h.stored = None
