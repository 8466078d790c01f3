"""LARS/LARC and LAMB follow their papers' update rules: expected numbers worked out by hand, in plain Python."""

import math

import pytest
import torch

from tiers.optim import Lamb, Larc, Optimizer, larc_layer_lr, larc_step


def _norm(v):
    return math.sqrt(sum(x * x for x in v))


def _lars_by_hand(w, grads, lr, eta, wd, mom, eps=0.0):
    """You et al. 2017, Algorithm 1: lambda = eta*|w|/(|g|+wd*|w|); v = m*v + lr*lambda*(g + wd*w); w -= v."""
    v = [0.0] * len(w)
    for g in grads:
        local = lr * eta * _norm(w) / (_norm(g) + wd * _norm(w) + eps)
        v = [mom * vi + local * (gi + wd * wi) for vi, gi, wi in zip(v, g, w)]
        w = [wi - vi for wi, vi in zip(w, v)]
    return w


def _lamb_by_hand(w, grads, lr, b1, b2, eps, wd):
    """You et al. 2019, Algorithm 2 with phi = identity: r = m_hat/(sqrt(v_hat)+eps); w -= lr*|w|/|r+wd*w|*(r+wd*w)."""
    m, v = [0.0] * len(w), [0.0] * len(w)
    for t, g in enumerate(grads, start=1):
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        r = [(mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps) for mi, vi in zip(m, v)]
        u = [ri + wd * wi for ri, wi in zip(r, w)]
        trust = _norm(w) / _norm(u)
        w = [wi - lr * trust * ui for wi, ui in zip(w, u)]
    return w


GRADS = [[0.3, -0.4], [0.1, 0.2], [-0.5, 0.05]]


def _drive(opt, params, grads_per_param):
    for step_grads in zip(*grads_per_param):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()


def _p(values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("foreach", [True, False])
def test_lars_matches_paper(foreach):
    p = _p([3.0, 4.0])
    opt = Larc([p], lr=0.1, mom=0.9, clip=False, trust_coeff=0.5, eps=0.0, wd=0.01, decouple_wd=False)
    opt.foreach = foreach
    _drive(opt, [p], [GRADS])
    assert p.tolist() == pytest.approx(_lars_by_hand([3.0, 4.0], GRADS, 0.1, 0.5, 0.01, 0.9), rel=1e-12)


def test_larc_clips_the_layer_rate_at_lr():
    p = _p([3.0, 4.0])
    # trust_coeff * |w| / |g| = 2 * 5 / 0.5 = 20: the layer rate would be 20 * lr, LARC keeps lr.
    opt = Larc([p], lr=0.1, mom=0.0, clip=True, trust_coeff=2.0, eps=0.0)
    p.grad = torch.tensor([0.3, 0.4], dtype=torch.float64)
    opt.step()
    assert opt.state[p]["local_lr"].item() == pytest.approx(0.1)
    assert p.tolist() == pytest.approx([3.0 - 0.03, 4.0 - 0.04])


def test_lars_zero_norm_falls_back_to_lr():
    p = _p([0.0, 0.0])
    opt = Larc([p], lr=0.1, mom=0.0, clip=False)
    p.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    opt.step()
    assert p.tolist() == pytest.approx([-0.1, 0.1])


def test_lars_activation_level_gives_one_rate_per_row():
    w = [[3.0, 4.0], [1.0, 0.0]]
    g = [[0.5, 0.0], [0.0, 2.0]]
    p = _p(w)
    opt = Larc([p], lr=0.1, mom=0.0, clip=False, trust_coeff=0.5, eps=0.0, level="activation")
    p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
    expected = [
        [wi - 0.1 * 0.5 * _norm(wr) / _norm(gr) * gi for wi, gi in zip(wr, gr)] for wr, gr in zip(w, g)
    ]
    assert opt.state[p]["local_lr"].shape == (2, 1)
    assert torch.allclose(p, torch.tensor(expected, dtype=torch.float64))


def test_lars_model_level_pools_all_parameters():
    w1, w2, g1, g2 = [3.0, 4.0], [12.0], [0.5, 0.0], [1.0]
    p1, p2 = _p(w1), _p(w2)
    opt = Larc([[p1], [p2]], lr=0.1, mom=0.0, clip=False, trust_coeff=0.5, eps=0.0, level="model")
    p1.grad, p2.grad = torch.tensor(g1, dtype=torch.float64), torch.tensor(g2, dtype=torch.float64)
    opt.step()
    local = 0.1 * 0.5 * _norm(w1 + w2) / _norm(g1 + g2)  # |w| = 13, |g| = sqrt(1.25)
    assert p1.tolist() == pytest.approx([w - local * g for w, g in zip(w1, g1)])
    assert p2.tolist() == pytest.approx([w2[0] - local * g2[0]])


@pytest.mark.parametrize("foreach", [True, False])
def test_lamb_matches_paper(foreach):
    p = _p([1.0, -2.0])
    opt = Lamb([p], lr=0.01, mom=0.9, sqr_mom=0.999, eps=1e-6, wd=0.1)
    opt.foreach = foreach
    _drive(opt, [p], [GRADS])
    expected = _lamb_by_hand([1.0, -2.0], GRADS, 0.01, 0.9, 0.999, 1e-6, 0.1)
    assert p.tolist() == pytest.approx(expected, rel=1e-12)


def test_lamb_model_level_pools_all_parameters():
    p1, p2 = _p([1.0, -2.0]), _p([0.5])
    opt = Lamb([p1, p2], lr=0.01, mom=0.9, sqr_mom=0.999, eps=1e-6, wd=0.1, level="model")
    g1, g2 = [0.3, -0.4], [2.0]
    p1.grad, p2.grad = torch.tensor(g1, dtype=torch.float64), torch.tensor(g2, dtype=torch.float64)
    opt.step()
    # After one step m_hat = g and v_hat = g**2, so r = g / (|g| + eps).
    w = [1.0, -2.0, 0.5]
    u = [g / (abs(g) + 1e-6) + 0.1 * wi for g, wi in zip(g1 + g2, w)]
    trust = _norm(w) / _norm(u)
    expected = [wi - 0.01 * trust * ui for wi, ui in zip(w, u)]
    assert p1.tolist() + p2.tolist() == pytest.approx(expected, rel=1e-12)


def test_lamb_trust_ratio_is_clipped_and_zero_safe():
    big, zero = _p([1000.0]), _p([0.0])
    opt = Lamb([big, zero], lr=0.01, eps=0.0)
    big.grad, zero.grad = torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    opt.step()
    assert big.item() == pytest.approx(1000.0 - 0.01 * 10.0)  # |w|/|u| = 1000, clipped at 10
    assert zero.item() == pytest.approx(-0.01)  # |w| = 0: ratio 1


def test_lamb_l2_variant_leaves_decay_to_the_gradient():
    p = _p([1.0, -2.0])
    opt = Lamb([p], lr=0.01, wd=0.1, decouple_wd=False)
    p.grad = torch.tensor([0.3, -0.4], dtype=torch.float64)
    opt.step()
    g = [0.3 + 0.1, -0.4 - 0.2]  # l2_reg first; lamb_step itself adds no decay
    u = [gi / (abs(gi) + 1e-5) for gi in g]
    trust = _norm([1.0, -2.0]) / _norm(u)
    assert p.tolist() == pytest.approx([1.0 - 0.01 * trust * u[0], -2.0 - 0.01 * trust * u[1]], rel=1e-12)


def test_model_level_needs_the_group_path():
    p = _p([1.0])
    p.grad = torch.ones(1, dtype=torch.float64)
    opt = Optimizer([p], [larc_layer_lr, larc_step], lr=0.1, level="model", foreach=False)
    with pytest.raises(ValueError, match="foreach=True"):
        opt.step()


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError, match="'neuron'"):
        Lamb([_p([1.0])], lr=0.1, level="neuron")
    opt = Larc([_p([1.0])], lr=0.1)
    opt.set_hyper("level", "neuron")
    opt.param_groups[0]["params"][0].grad = torch.ones(1, dtype=torch.float64)
    with pytest.raises(ValueError, match="not one of"):
        opt.step()
