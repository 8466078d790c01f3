"""Small public helpers fastai documents for vision: `affine_grid`, `apply_perspective`, `mask_tensor`,
`create_cnn_model`."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from tiers.vision import (
    affine_grid,
    apply_perspective,
    create_cnn_model,
    create_vision_model,
    find_coeffs,
    mask_tensor,
    xresnet18,
)


def test_affine_grid_is_torchs():
    theta = torch.tensor([[[1.0, 0, 0.5], [0, 1, 0]]])
    got = affine_grid(theta, (1, 3, 4, 5), align_corners=True)
    assert torch.equal(got, F.affine_grid(theta, [1, 3, 4, 5], align_corners=True)) and got.shape == (1, 4, 5, 2)


def test_apply_perspective_maps_the_corners_find_coeffs_was_given():
    src = torch.tensor([[[-1.0, -1], [-1, 1], [1, -1], [1, 1]]])
    dst = torch.tensor([[[-0.9, -1.1], [-1.2, 0.8], [1.0, -0.7], [0.9, 1.1]]])
    h = find_coeffs(src, dst)
    assert torch.allclose(apply_perspective(src, h), dst, atol=1e-5)
    eight = h.reshape(1, 9)[:, :8]  # fastai's 8 coefficients give the same points
    assert torch.allclose(apply_perspective(src, eight), dst, atol=1e-5)
    assert torch.allclose(apply_perspective(src, torch.eye(3)[None]), src)


def test_mask_tensor_keeps_with_probability_p():
    torch.manual_seed(0)
    x = torch.ones(10_000)
    kept = mask_tensor(x.clone(), p=0.3)
    assert set(kept.unique().tolist()) == {0.0, 1.0} and 0.27 < float(kept.mean()) < 0.33
    shifted = mask_tensor(torch.full((10_000,), 5.0), p=0.5, neutral=2.0)
    assert set(shifted.unique().tolist()) == {2.0, 5.0}
    assert torch.equal(mask_tensor(x.clone(), p=1.0), x)
    whole = [float(mask_tensor(torch.ones(3), p=0.5, batch=True).sum()) for _ in range(200)]
    assert set(whole) == {0.0, 3.0}


def test_create_cnn_model_is_the_deprecated_name():
    arch = partial(xresnet18, widen=0.25)
    with pytest.warns(DeprecationWarning, match="create_vision_model"):
        m = create_cnn_model(arch, 3, pretrained=False)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert type(m) is type(create_vision_model(arch, 3, pretrained=False))
