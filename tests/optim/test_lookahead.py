"""Lookahead: k fast steps, then slow weights move alpha of the way; state, forwarding and ranger."""

import copy
import pickle

import pytest
import torch

from tiers.optim import SGD, Adam, Lookahead, RAdam, ranger


def _drive(opt, p, grads):
    out = []
    for g in grads:
        p.grad = torch.tensor([g])
        opt.step()
        out.append(p.item())
    return out


def test_slow_weights_by_hand():
    p = torch.zeros(1, requires_grad=True)
    opt = Lookahead(SGD([p], lr=0.1), k=2, alpha=0.5)
    # Fast: -0.1, -0.2 -> slow 0 + 0.5*(-0.2 - 0) = -0.1; fast -0.2, -0.3 -> slow -0.1 + 0.5*(-0.3 + 0.1) = -0.2
    assert _drive(opt, p, [1.0] * 4) == pytest.approx([-0.1, -0.1, -0.2, -0.2])


def test_wraps_a_plain_torch_optimizer():
    p = torch.zeros(1, requires_grad=True)
    opt = Lookahead(
        torch.optim.SGD([p], lr=0.1), k=3, alpha=1.0
    )  # alpha=1: slow weights follow the fast ones
    assert _drive(opt, p, [1.0] * 3) == pytest.approx([-0.1, -0.2, -0.3])
    opt.clear_state()
    assert opt.count == 0 and len(opt.opt.state) == 0


def test_forwards_the_optimizer_interface(make_model, train):
    m = make_model()
    opt = Lookahead(Adam([list(m[0].parameters()), list(m[4].parameters())], 1e-2))
    assert opt.param_groups is opt.opt.param_groups
    opt.set_hyper("lr", slice(1e-3, 1e-2))
    assert [h["lr"] for h in opt.hypers] == pytest.approx([1e-3, 1e-2])
    opt.freeze()
    assert not m[0].weight.requires_grad
    opt.unfreeze()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train(m, opt, 1)
    sched.step()
    assert [h["lr"] for h in opt.hypers] == pytest.approx([5e-4, 5e-3])
    assert "Lookahead(k=6, alpha=0.5" in repr(opt)


def test_load_without_lookahead_state_restarts_slow_weights():
    p = torch.zeros(1, requires_grad=True)
    opt = Lookahead(SGD([p], lr=0.1), k=2)
    _drive(opt, p, [1.0])
    sd = opt.state_dict()
    assert sd["lookahead"]["count"] == 1 and sd["lookahead"]["slow_weights"][0].item() == 0.0
    del sd["lookahead"]
    opt.load_state_dict(sd)
    assert opt.count == 0
    with pytest.raises(ValueError, match="2 slow weights"):
        opt.load_state_dict({**sd, "lookahead": {"count": 1, "slow_weights": [None, None]}})


def test_param_lists_and_new_groups_get_slow_weights():
    p, q = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = Lookahead(SGD([p], lr=0.1), k=2, alpha=0.5)
    opt.add_param_group({"params": [q]})
    p.grad, q.grad = torch.ones(1), torch.ones(1)
    opt.step()
    opt.step()
    assert p.item() == pytest.approx(-0.1) and q.item() == pytest.approx(-0.1)
    opt.param_lists = [[q], [p]]
    assert opt.param_lists == [[q], [p]] and opt._slow == {}


def test_bad_arguments():
    p = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="k=0"):
        Lookahead(SGD([p], lr=0.1), k=0)
    with pytest.raises(ValueError, match="alpha=1.5"):
        Lookahead(SGD([p], lr=0.1), alpha=1.5)
    with pytest.raises(TypeError, match="wraps an optimizer"):
        Lookahead([p])


def test_ranger_is_lookahead_over_radam(make_model, train):
    m1, m2 = make_model(), make_model()
    a = train(m1, ranger(m1.parameters(), 1e-2, k=3), 7)
    b = train(m2, Lookahead(RAdam(m2.parameters(), 1e-2, mom=0.95, wd=0.01, eps=1e-6), k=3, alpha=0.5), 7)
    assert torch.equal(a, b)


def test_pickle_and_copy(make_model, train):
    m = make_model()
    opt = ranger(m.parameters(), 1e-2, k=2)
    train(m, opt, 3)
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert clone.count == 3 and clone.k == 2 and len(clone._slow) == 6
