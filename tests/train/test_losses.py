"""Flattened losses against torch's own, their activation/decodes, and the default loss by target type."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.tensors import TensorCategory, TensorMask, TensorMultiCategory
from tiers.train import (
    BaseLoss,
    BCELossFlat,
    BCEWithLogitsLossFlat,
    CrossEntropyLossFlat,
    DiceLoss,
    FocalLoss,
    FocalLossFlat,
    L1LossFlat,
    LabelSmoothingCrossEntropy,
    LabelSmoothingCrossEntropyFlat,
    MSELossFlat,
    default_loss,
)


def test_cross_entropy_flat_matches_torch_on_sequences():
    out, targ = torch.randn(4, 5, 3), torch.randint(0, 3, (4, 5))
    torch.testing.assert_close(CrossEntropyLossFlat()(out, targ), F.cross_entropy(out.view(-1, 3), targ.view(-1)))


def test_cross_entropy_flat_axis1_lines_up_pixels_with_targets():
    # (bs, C, h, w) scores with (bs, h, w) targets: identical to torch's native N-d cross entropy.
    out, targ = torch.randn(2, 4, 3, 5), torch.randint(0, 4, (2, 3, 5))
    loss = CrossEntropyLossFlat(axis=1)
    torch.testing.assert_close(loss(out, targ), F.cross_entropy(out, targ))
    assert loss.activation(out).sum(1).allclose(torch.ones(2, 3, 5))
    assert torch.equal(loss.decodes(out), out.argmax(1))


def test_cross_entropy_small_int_targets_become_long():
    out, targ = torch.randn(6, 3), torch.tensor([0, 1, 2, 1, 0, 2], dtype=torch.int32)
    torch.testing.assert_close(CrossEntropyLossFlat()(out, targ), F.cross_entropy(out, targ.long()))


def test_reduction_is_settable_and_checked():
    loss = CrossEntropyLossFlat()
    loss.reduction = "none"
    assert loss(torch.randn(5, 3), torch.randint(0, 3, (5,))).shape == (5,)
    with pytest.raises(ValueError, match="reduction='avg'"):
        loss.reduction = "avg"


def test_bce_with_logits_flat_and_decodes():
    out, targ = torch.randn(4, 6), torch.randint(0, 2, (4, 6))
    loss = BCEWithLogitsLossFlat(thresh=0.3)
    torch.testing.assert_close(loss(out, targ), F.binary_cross_entropy_with_logits(out, targ.float()))
    assert torch.equal(loss.decodes(loss.activation(out)), torch.sigmoid(out) > 0.3)


def test_bce_with_pos_weight_keeps_shape():
    out, targ = torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float()
    pw = torch.tensor([1.0, 2.0, 3.0])
    got = BCEWithLogitsLossFlat(pos_weight=pw)(out, targ)
    torch.testing.assert_close(got, F.binary_cross_entropy_with_logits(out, targ, pos_weight=pw))


def test_bce_flat():
    p, targ = torch.rand(10), torch.randint(0, 2, (10,))
    torch.testing.assert_close(BCELossFlat()(p, targ), F.binary_cross_entropy(p, targ.float()))


def test_mse_and_l1_flat_flatten_column_outputs():
    out, targ = torch.randn(8, 1), torch.randn(8)
    torch.testing.assert_close(MSELossFlat()(out, targ), F.mse_loss(out.view(-1), targ))
    torch.testing.assert_close(L1LossFlat()(out, targ), F.l1_loss(out.view(-1), targ))


def test_mse_flat_rejects_mismatched_sizes_instead_of_broadcasting():
    with pytest.raises(ValueError, match="prediction has 16 values but target has 8"):
        MSELossFlat()(torch.randn(8, 2), torch.randn(8))


def test_focal_loss_gamma0_is_cross_entropy_and_down_weights_easy_items():
    out, targ = torch.randn(20, 4), torch.randint(0, 4, (20,))
    torch.testing.assert_close(FocalLoss(gamma=0)(out, targ), F.cross_entropy(out, targ))
    assert FocalLossFlat(gamma=2.0)(out, targ) < F.cross_entropy(out, targ)
    per_item = FocalLoss(gamma=2.0, reduction="none")(out, targ)
    ce = F.cross_entropy(out, targ, reduction="none")
    torch.testing.assert_close(per_item, (1 - torch.exp(-ce)) ** 2 * ce)


def test_label_smoothing_matches_torch():
    out, targ = torch.randn(10, 5), torch.randint(0, 5, (10,))
    torch.testing.assert_close(
        LabelSmoothingCrossEntropy(eps=0.1)(out, targ), F.cross_entropy(out, targ, label_smoothing=0.1)
    )
    torch.testing.assert_close(LabelSmoothingCrossEntropy(eps=0.0)(out, targ), F.cross_entropy(out, targ))
    flat = LabelSmoothingCrossEntropyFlat(eps=0.2)
    seq_out, seq_targ = torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    torch.testing.assert_close(
        flat(seq_out, seq_targ), F.cross_entropy(seq_out.view(-1, 5), seq_targ.view(-1), label_smoothing=0.2)
    )
    assert torch.equal(flat.decodes(seq_out), seq_out.argmax(-1))
    with pytest.raises(ValueError, match="eps=1.5"):
        LabelSmoothingCrossEntropy(eps=1.5)


def test_dice_loss_is_zero_for_perfect_prediction():
    targ = torch.randint(0, 3, (2, 4, 4))
    perfect = F.one_hot(targ, 3).permute(0, 3, 1, 2).float() * 100
    assert DiceLoss(reduction="mean")(perfect, targ) < 1e-4
    assert DiceLoss(reduction="mean")(-perfect, targ) > 0.5


def test_base_loss_wraps_any_torch_loss():
    loss = BaseLoss(torch.nn.SmoothL1Loss, floatify=True, is_2d=False)
    out, targ = torch.randn(6, 1), torch.randn(6)
    torch.testing.assert_close(loss(out, targ), F.smooth_l1_loss(out.view(-1), targ))
    assert "SmoothL1Loss" in repr(loss)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(2, 6))
def test_flat_ce_equals_mean_of_per_item_losses(bs, seq, c):
    out, targ = torch.randn(bs, seq, c), torch.randint(0, c, (bs, seq))
    loss = CrossEntropyLossFlat()
    mean = loss(out, targ)
    loss.reduction = "none"
    torch.testing.assert_close(loss(out, targ).mean(), mean)


def test_default_loss_by_target_type():
    assert isinstance(default_loss(TensorCategory(torch.tensor([1, 2]))), CrossEntropyLossFlat)
    assert isinstance(default_loss(TensorMultiCategory(torch.zeros(2, 3))), BCEWithLogitsLossFlat)
    mask_loss = default_loss(TensorMask(torch.zeros(2, 4, 4).long()))
    assert isinstance(mask_loss, CrossEntropyLossFlat) and mask_loss.axis == 1
    assert isinstance(default_loss(torch.tensor([0.5])), MSELossFlat)
    assert isinstance(default_loss(torch.tensor([3])), CrossEntropyLossFlat)
    assert isinstance(default_loss(torch.tensor([True])), BCEWithLogitsLossFlat)
    assert isinstance(default_loss(2), CrossEntropyLossFlat)
    assert isinstance(default_loss(2.5), MSELossFlat)
    assert isinstance(default_loss(np.int64(1)), CrossEntropyLossFlat)
    assert isinstance(default_loss(np.float32(1)), MSELossFlat)
