"""DynamicUnet and its pieces."""

import copy
import pickle

import pytest
import torch
from torch import nn

from tiers.vision.models.unet import DynamicUnet, PixelShuffle_ICNR, icnr_init
from tiers.vision.models.xresnet import xresnet18


def _encoder():
    return xresnet18(widen=0.25)[:-4]


def test_unet_output_matches_any_input_size():
    m = DynamicUnet(_encoder(), n_out=4, img_size=(32, 32))
    for h, w in [(32, 32), (40, 52), (33, 47)]:
        assert m(torch.randn(2, 3, h, w)).shape == (2, 4, h, w)
    # hooked activations are released after each call
    assert all(h.stored is None for h in m._hooks)


@pytest.mark.slow
def test_unet_learns_a_trivial_mask():
    torch.manual_seed(0)
    m = DynamicUnet(_encoder(), n_out=2, img_size=(16, 16))
    x = torch.rand(8, 3, 16, 16)
    y = (x[:, 0] > 0.5).long()
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    losses = []
    for _ in range(20):
        loss = nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.75


def test_unet_pickles_and_copies_with_its_hooks():
    m = DynamicUnet(_encoder(), n_out=3, img_size=(32, 32), y_range=(0, 1))
    m.eval()
    x = torch.randn(2, 3, 32, 32)
    ref = m(x)
    assert ref.min() >= 0 and ref.max() <= 1
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        torch.testing.assert_close(clone(x), ref)
        assert clone._hooks[0] is clone[4].hook


def test_unet_rejects_bad_encoders():
    with pytest.raises(TypeError, match="create_body"):
        DynamicUnet(nn.Conv2d(3, 3, 3), 2, (32, 32))
    with pytest.raises(ValueError, match="never changes resolution"):
        DynamicUnet(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), 2, (16, 16))


def test_vision_reexports_the_blocks_moved_to_train():
    # icnr_init and PixelShuffle_ICNR live in tiers.train (tested in tests/train/test_blocks.py); vision keeps the names.
    import tiers.train
    import tiers.vision

    for name in ("icnr_init", "PixelShuffle_ICNR", "SEBlock", "SEResNeXtBlock", "SeparableBlock"):
        assert getattr(tiers.vision, name) is getattr(tiers.train, name)
    assert PixelShuffle_ICNR is tiers.train.PixelShuffle_ICNR and icnr_init is tiers.train.icnr_init
