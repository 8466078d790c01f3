"""fastai's documented behaviour of `Optimizer` (fastai.optimizer): what params it accepts, where `lr` comes from,
which parameters `step` updates, and how `zero_grad` clears gradients."""

import pytest
import torch
from torch import nn

from tiers.optim import SGD, Lookahead, Optimizer, OptimWrapper, sgd_step, weight_decay


def _stepper_with_lr(p, lr=0, **kwargs):
    p.data.add_(-lr)


_stepper_with_lr.defaults = {"lr": 1e-2}


def test_a_single_tensor_is_one_group_of_one_parameter():
    t = torch.zeros(3, requires_grad=True)
    opt = Optimizer(t, sgd_step, lr=0.5)
    assert len(opt.param_lists) == 1 and opt.param_lists[0][0] is t
    t.grad = torch.ones(3)
    opt.step()
    assert t.tolist() == [-0.5, -0.5, -0.5]


def test_a_generator_of_parameters_is_accepted():
    m = nn.Linear(2, 1)
    opt = Optimizer((p for p in m.parameters()), sgd_step, lr=0.1)
    assert [p for p, *_ in opt.all_params()] == list(m.parameters())


def test_lr_comes_from_the_steppers_defaults_when_not_given():
    opt = Optimizer([torch.zeros(2)], _stepper_with_lr)
    assert opt.hypers[0]["lr"] == 1e-2
    assert Optimizer([torch.zeros(2)], _stepper_with_lr, lr=0.3).hypers[0]["lr"] == 0.3  # given wins


def test_step_updates_every_tensor_that_has_a_grad_even_without_requires_grad():
    # fastai's docs build their params as plain tensors and set `.grad` by hand.
    params = [torch.arange(3.0), torch.arange(3.0), torch.arange(3.0)]
    opt = Optimizer(params, [weight_decay, sgd_step], lr=0.1, wd=0.0)
    params[0].grad = torch.ones(3)
    params[1].grad = torch.full((3,), 2.0)  # params[2] has no gradient: left alone
    opt.step()
    torch.testing.assert_close(params[0], torch.tensor([-0.1, 0.9, 1.9]))
    torch.testing.assert_close(params[1], torch.tensor([-0.2, 0.8, 1.8]))
    assert params[2].tolist() == [0.0, 1.0, 2.0]


def test_parameters_frozen_by_freeze_to_are_not_stepped_by_a_stale_grad():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = SGD([[a], [b]], 0.1)
    opt.freeze()
    a.grad, b.grad = torch.ones(2), torch.ones(2)
    opt.step()
    assert a.tolist() == [1.0, 1.0]
    torch.testing.assert_close(b, torch.full((2,), 0.9))
    opt.unfreeze()
    opt.step()
    torch.testing.assert_close(a, torch.full((2,), 0.9))


def test_zero_grad_zeroes_in_place_like_fastai():
    p = torch.ones(3, requires_grad=True)
    (p * 2).sum().backward()
    g = p.grad
    opt = SGD([p], 0.1)
    opt.zero_grad()
    assert p.grad is g and g.tolist() == [0.0, 0.0, 0.0]


def test_wrappers_document_their_zero_grad_defaults():
    # OptimWrapper follows torch (None); Lookahead follows the optimizer it wraps.
    p = torch.ones(2, requires_grad=True)
    (p * 2).sum().backward()
    OptimWrapper([p], torch.optim.SGD, lr=0.1).zero_grad()
    assert p.grad is None
    q = torch.ones(2, requires_grad=True)
    (q * 2).sum().backward()
    Lookahead(SGD([q], 0.1)).zero_grad()
    assert q.grad is not None and not q.grad.any()


def test_lr_is_only_required_by_steppers_that_take_one():
    def count_steps(p, **kwargs):
        return {"n": kwargs.get("n", 0) + 1}

    opt = Optimizer([torch.zeros(2)], count_steps)
    assert opt.hypers == [{}]  # as fastai: no lr is invented
    with pytest.raises(TypeError, match="learning rate for sgd_step"):
        Optimizer([torch.zeros(2)], [count_steps, sgd_step])
