"""Every stat and stepper against its formula, and the group (`foreach`) path against the per-parameter one."""

import copy
import math
from functools import partial

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.optim import (
    SGD,
    Adam,
    Lamb,
    Larc,
    Optimizer,
    QHAdam,
    RAdam,
    RMSProp,
    adam_step,
    average_grad,
    average_sqr_grad,
    debias,
    l2_reg,
    momentum_step,
    qhadam_step,
    radam_step,
    ranger,
    rms_prop_step,
    sgd_step,
    step_stat,
    weight_decay,
)


def _param(values, grad):
    p = torch.tensor(values, requires_grad=True)
    p.grad = torch.tensor(grad)
    return p


def _step(cbs, p, **hypers):
    """One optimizer step of `cbs` on the single parameter `p`, through the per-parameter path."""
    opt = Optimizer([p], cbs, foreach=False, **hypers)
    opt.step()
    return opt


def test_sgd_step():
    p = _param([1.0, -2.0], [0.5, 1.0])
    _step([sgd_step], p, lr=0.1)
    assert torch.allclose(p, torch.tensor([1.0 - 0.05, -2.0 - 0.1]))


def test_weight_decay_is_decoupled_and_honours_do_wd():
    p = _param([1.0, -2.0], [0.5, 1.0])
    _step([weight_decay], p, lr=0.1, wd=0.5)
    assert torch.allclose(p, torch.tensor([1.0, -2.0]) * (1 - 0.05))
    assert torch.equal(p.grad, torch.tensor([0.5, 1.0]))  # the gradient is untouched
    q = _param([1.0, -2.0], [0.5, 1.0])
    opt = Optimizer([q], [weight_decay], lr=0.1, wd=0.5)
    opt.state[q]["do_wd"] = False
    opt.step()
    assert torch.equal(q, torch.tensor([1.0, -2.0]))


def test_l2_reg_adds_to_the_gradient():
    p = _param([1.0, -2.0], [0.5, 1.0])
    _step([l2_reg], p, lr=0.1, wd=0.5)
    assert torch.allclose(p.grad, torch.tensor([0.5 + 0.5, 1.0 - 1.0]))
    assert torch.equal(p.detach(), torch.tensor([1.0, -2.0]))


@pytest.mark.parametrize("dampening", [False, True])
def test_average_grad(dampening):
    p = _param([0.0, 0.0], [1.0, 2.0])
    opt = Optimizer([p], [partial(average_grad, dampening=dampening)], lr=0.1, mom=0.8, foreach=False)
    opt.step()
    p.grad = torch.tensor([3.0, -1.0])
    opt.step()
    damp = 0.2 if dampening else 1.0
    expected = torch.tensor([0.8 * damp * 1.0 + damp * 3.0, 0.8 * damp * 2.0 - damp * 1.0])
    assert torch.allclose(opt.state[p]["grad_avg"], expected)


@pytest.mark.parametrize("dampening", [True, False])
def test_average_sqr_grad(dampening):
    p = _param([0.0], [2.0])
    opt = Optimizer([p], [partial(average_sqr_grad, dampening=dampening)], lr=0.1, sqr_mom=0.9, foreach=False)
    opt.step()
    p.grad = torch.tensor([3.0])
    opt.step()
    damp = 0.1 if dampening else 1.0
    assert torch.allclose(opt.state[p]["sqr_avg"], torch.tensor([0.9 * damp * 4.0 + damp * 9.0]))


def test_step_stat_counts_per_parameter():
    p, q = _param([0.0], [1.0]), _param([0.0], [1.0])
    opt = Optimizer([p, q], [step_stat], lr=0.1)
    opt.step()
    q.grad = None
    opt.step()
    assert (opt.state[p]["step"], opt.state[q]["step"]) == (2, 1)


def test_debias():
    assert debias(0.9, 0.1, 3) == pytest.approx(1 - 0.9**3)
    assert debias(0.9, 1.0, 2) == pytest.approx(1 + 0.9)


def test_momentum_step():
    p = _param([1.0], [2.0])
    _step([average_grad, momentum_step], p, lr=0.1, mom=0.9)
    assert torch.allclose(p, torch.tensor([1.0 - 0.2]))


@pytest.mark.parametrize("with_mom", [False, True])
def test_rms_prop_step(with_mom):
    p = _param([1.0], [2.0])
    cbs = ([average_grad] if with_mom else []) + [average_sqr_grad, rms_prop_step]
    _step(cbs, p, lr=0.1, mom=0.5, sqr_mom=0.9, eps=1e-3)
    # sqr_avg = 0.1 * 4; the numerator is the gradient, or the momentum average (0 * 0.5 + 2)
    assert torch.allclose(p, torch.tensor([1.0 - 0.1 * 2.0 / (math.sqrt(0.4) + 1e-3)]))


def _adam_chain(stepper):
    return [partial(average_grad, dampening=True), average_sqr_grad, step_stat, stepper]


def test_adam_step_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-8
    p = _param([1.0], [2.0])
    opt = Optimizer([p], _adam_chain(adam_step), lr=lr, mom=b1, sqr_mom=b2, eps=eps, foreach=False)
    w, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate([2.0, -1.0], start=1):
        p.grad = torch.tensor([g])
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w -= lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
    assert p.item() == pytest.approx(w, rel=1e-6)


def test_radam_step_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-8
    p = _param([1.0], [0.0])
    opt = Optimizer([p], _adam_chain(radam_step), lr=lr, mom=b1, sqr_mom=b2, eps=eps, beta=0.0, foreach=False)
    w, m, v, r_inf = 1.0, 0.0, 0.0, 2 / (1 - b2) - 1
    rectified = 0
    for t in range(1, 9):
        g = math.sin(t)
        p.grad = torch.tensor([g])
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        r = r_inf - 2 * t * b2**t / (1 - b2**t)
        if r > 5:
            rectified += 1
            rect = math.sqrt((r - 4) * (r - 2) * r_inf / ((r_inf - 4) * (r_inf - 2) * r))
            w -= lr * rect * (m / (1 - b1**t)) * math.sqrt(1 - b2**t) / (math.sqrt(v) + eps)
        else:
            w -= lr * m / (1 - b1**t)
    assert 0 < rectified < 8  # both branches ran
    assert p.item() == pytest.approx(w, rel=1e-6)


def test_qhadam_step_by_hand():
    lr, b1, b2, nu1, nu2, eps = 0.1, 0.9, 0.99, 0.7, 0.8, 1e-8
    p = _param([1.0], [0.0])
    cbs = [
        partial(average_grad, dampening=True),
        partial(average_sqr_grad, dampening=True),
        step_stat,
        qhadam_step,
    ]
    opt = Optimizer([p], cbs, lr=lr, mom=b1, sqr_mom=b2, nu_1=nu1, nu_2=nu2, eps=eps)
    w, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate([2.0, -1.0, 0.5], start=1):
        p.grad = torch.tensor([g])
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        num = (1 - nu1) * g + nu1 * m / (1 - b1**t)
        den = math.sqrt((1 - nu2) * g * g + nu2 * v / (1 - b2**t)) + eps
        w -= lr * num / den
    assert p.item() == pytest.approx(w, rel=1e-6)


def test_radam_beta_gives_softplus_denominator():
    p = _param([1.0], [0.0])
    opt = RAdam([p], lr=0.1, beta=5.0)
    steps = 0
    while steps < 7:  # r > 5 from step 6 with sqr_mom=0.99
        p.grad = torch.tensor([0.5])
        opt.step()
        steps += 1
    assert torch.isfinite(p).all() and p.item() < 1.0


# --- the group path gives the same bits as the per-parameter path ------------------------------------------

FACTORIES = {
    "sgd": lambda ps: SGD(ps, 0.1),
    "sgd-mom": lambda ps: SGD(ps, 0.1, mom=0.9, wd=0.01),
    "sgd-l2": lambda ps: SGD(ps, 0.1, mom=0.9, wd=0.01, decouple_wd=False),
    "rmsprop-mom": lambda ps: RMSProp(ps, 1e-2, mom=0.9, wd=0.01),
    "adam": lambda ps: Adam(ps, 1e-2),
    "adam-l2": lambda ps: Adam(ps, 1e-2, decouple_wd=False),
    "radam": lambda ps: RAdam(ps, 1e-2, wd=0.01),
    "radam-sadam": lambda ps: RAdam(ps, 1e-2, beta=2.0),
    "qhadam": lambda ps: QHAdam(ps, 1e-2, wd=0.01),
    "larc": lambda ps: Larc(ps, 0.1, wd=0.01),
    "lars-activation": lambda ps: Larc(ps, 0.1, clip=False, decouple_wd=False, wd=0.01, level="activation"),
    "lamb": lambda ps: Lamb(ps, 1e-2, wd=0.01),
    "lamb-l2-activation": lambda ps: Lamb(ps, 1e-2, wd=0.01, decouple_wd=False, level="activation"),
    "ranger": lambda ps: ranger(ps, 1e-2),
}


def _run(model, opt, x, y, n, skip_every=3):
    for i in range(n):
        torch.nn.functional.mse_loss(model(x), y).backward()
        if i % skip_every == 1:
            model[0].bias.grad = None  # a parameter without a gradient: its step count falls behind
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("chunk", [None, 40], ids=["whole-groups", "chunks-of-40"])
@pytest.mark.parametrize("name", list(FACTORIES))
def test_foreach_is_bit_identical_to_per_param(name, chunk, make_model, batch):
    x, y = batch
    m1 = make_model()
    m2 = copy.deepcopy(m1)
    groups = lambda m: [list(m[0].parameters()), list(m[2].parameters()) + list(m[4].parameters())]  # noqa: E731
    o1, o2 = FACTORIES[name](groups(m1)), FACTORIES[name](groups(m2))
    o1.set_hyper("lr", [o1.hypers[0]["lr"] / 3, o1.hypers[1]["lr"]])  # groups with different hypers
    o2.set_hyper("lr", [o2.hypers[0]["lr"] / 3, o2.hypers[1]["lr"]])
    o1.state[m1[2].bias]["do_wd"] = False
    o2.state[m2[2].bias]["do_wd"] = False
    o1.cpu_chunk_numel = chunk  # runs of about 40 values: groups split, small tensors share a run
    o2.foreach, o2.cpu_chunk_numel = False, None
    assert getattr(o2, "opt", o2).foreach is False  # Lookahead hands the setting to the optimizer it wraps
    _run(m1, o1, x, y, 12)
    _run(m2, o2, x, y, 12)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b), name


@settings(max_examples=20, deadline=None)
@given(
    shapes=st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3), min_size=1, max_size=4),
    lr=st.floats(1e-4, 1e-1),
    mom=st.floats(0.0, 0.99),
    wd=st.floats(0.0, 0.1),
    seed=st.integers(0, 2**16),
)
def test_adam_foreach_identity_holds_for_any_shapes(shapes, lr, mom, wd, seed):
    g = torch.Generator().manual_seed(seed)
    ps1 = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
    ps2 = [p.detach().clone().requires_grad_() for p in ps1]
    o1, o2 = Adam(ps1, lr, mom=mom, wd=wd), Adam(ps2, lr, mom=mom, wd=wd)
    o2.foreach = False
    for _ in range(3):
        for p1, p2 in zip(ps1, ps2):
            grad = torch.randn(p1.shape, generator=g)
            p1.grad, p2.grad = grad.clone(), grad.clone()
        o1.step()
        o2.step()
    for p1, p2 in zip(ps1, ps2):
        assert torch.equal(p1, p2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["sgd-mom", "adam", "radam", "rmsprop-mom"])
def test_foreach_identity_on_cuda(name, make_model, batch):
    x, y = (t.cuda() for t in batch)
    m1 = make_model().cuda()
    m2 = copy.deepcopy(m1)
    o1, o2 = FACTORIES[name](m1.parameters()), FACTORIES[name](m2.parameters())
    o2.foreach = False
    _run(m1, o1, x, y, 10)
    _run(m2, o2, x, y, 10)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_cpu_chunks_split_and_merge_groups():
    a, b, c, d = (torch.zeros(n, requires_grad=True) for n in (30, 30, 50, 5))
    opt = SGD([[a, b], [c, d]], 0.1)
    for p in (a, b, c, d):
        p.grad = torch.ones_like(p)
    opt.cpu_chunk_numel = 40
    chunks = opt._chunks(opt._batches())
    # a+b reach 60 >= 40; c alone reaches 50; d is left over: 3 runs, each a list of per-group batches
    assert [[len(bt.params) for bt in ch] for ch in chunks] == [[2], [1], [1]]
    opt.cpu_chunk_numel = 1000
    assert [[len(bt.params) for bt in ch] for ch in opt._chunks(opt._batches())] == [[2, 2]]


def test_model_level_steppers_are_never_chunked():
    ps = [torch.randn(20, requires_grad=True) for _ in range(4)]
    opt = Lamb(ps, 1e-2, level="model")
    opt.cpu_chunk_numel = 10
    for p in ps:
        p.grad = torch.randn(20)
    assert len(opt._chunks(opt._batches())) == 1
    opt.set_hyper("level", "layer")
    assert len(opt._chunks(opt._batches())) == 4
