"""The generic Optimizer: parameter groups, hypers, freezing, state dicts, and torch's tooling around it."""

import copy
import io
import pickle
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

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
    ranger,
    sgd_step,
    weight_decay,
)


def _groups(model):
    return [list(model[0].parameters()), list(model[2].parameters()), list(model[4].parameters())]


# --- parameters and groups ----------------------------------------------------------------------------------


def test_params_forms(make_model):
    m = make_model()
    flat = Optimizer(m.parameters(), sgd_step, lr=0.1)
    assert len(flat.param_groups) == 1 and len(flat.param_lists[0]) == 6
    assert [len(pl) for pl in Optimizer(_groups(m), [sgd_step], lr=0.1).param_lists] == [2, 2, 2]
    gen = Optimizer((list(layer.parameters()) for layer in m if list(layer.parameters())), [sgd_step], lr=0.1)
    assert len(gen.param_groups) == 3
    dicts = [{"params": m[0].parameters(), "lr": 1e-3}, {"params": list(m[2].parameters())}]
    opt = Optimizer(dicts, [sgd_step], lr=0.1)
    assert [h["lr"] for h in opt.hypers] == [1e-3, 0.1]
    named = Optimizer(m.named_parameters(), [sgd_step], lr=0.1)
    assert named.param_groups[0]["param_names"][0] == "0.weight"
    assert "param_names" not in named.hypers[0]


def test_params_errors(make_model):
    m = make_model()
    with pytest.raises(ValueError, match="params is empty"):
        Optimizer([], [sgd_step], lr=0.1)
    with pytest.raises(TypeError, match="mixes"):
        Optimizer([m[0].weight, [m[0].bias]], [sgd_step], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        Optimizer([[m[0].weight], [m[0].weight]], [sgd_step], lr=0.1)
    with pytest.raises(TypeError, match="learning rate"):
        Optimizer(m.parameters(), [sgd_step])
    with pytest.raises(TypeError, match="stepper functions"):
        Optimizer(m.parameters(), [sgd_step, 3], lr=0.1)
    with pytest.raises(ValueError, match="mom=1.5"):
        SGD(m.parameters(), 0.1, mom=1.5)


def test_defaults_come_from_steppers_then_keywords(make_model):
    opt = Optimizer(make_model().parameters(), [weight_decay, sgd_step], lr=0.1)
    assert dict(opt.hypers[0]) == {"wd": 0.0, "lr": 0.1}
    assert Adam(make_model().parameters(), 1e-3).hypers[0] == {
        "wd": 0.01,
        "mom": 0.9,
        "sqr_mom": 0.99,
        "eps": 1e-5,
        "lr": 1e-3,
    }


def test_train_bn_is_ignored_with_a_warning(make_model):
    with pytest.warns(UserWarning, match="train_bn"):
        opt = Optimizer(make_model().parameters(), [sgd_step], lr=0.1, train_bn=False)
    assert "train_bn" not in opt.hypers[0]


# --- hypers -------------------------------------------------------------------------------------------------


def test_set_hyper_rules(make_model):
    opt = Adam(_groups(make_model()), 1e-3)
    opt.set_hyper("lr", 0.5)
    assert [h["lr"] for h in opt.hypers] == [0.5] * 3
    opt.set_hyper("lr", [1e-4, 1e-3, 1e-2])
    assert [h["lr"] for h in opt.hypers] == [1e-4, 1e-3, 1e-2]
    opt.set_hyper("lr", slice(1e-4, 1e-2))
    assert [h["lr"] for h in opt.hypers] == pytest.approx([1e-4, 1e-3, 1e-2])
    opt.set_hyper("lr", slice(1e-2))
    assert [h["lr"] for h in opt.hypers] == pytest.approx([1e-3, 1e-3, 1e-2])
    opt.set_hypers(mom=0.8, sqr_mom=[0.9, 0.95, 0.99])
    assert [(h["mom"], h["sqr_mom"]) for h in opt.hypers] == [(0.8, 0.9), (0.8, 0.95), (0.8, 0.99)]
    with pytest.raises(ValueError, match="2 values for 3 parameter groups"):
        opt.set_hyper("lr", [1e-3, 1e-2])


def test_hypers_are_live_views_of_param_groups(make_model):
    opt = SGD(_groups(make_model()), 0.1, mom=0.9)
    opt.param_groups[1]["lr"] = 0.25  # what a torch scheduler does
    assert opt.hypers[1]["lr"] == 0.25
    opt.hypers[2]["lr"] = 0.125
    assert opt.param_groups[2]["lr"] == 0.125
    with pytest.raises(KeyError, match="param_lists"):
        opt.hypers[0]["params"] = []


def test_a_list_or_slice_hyper_is_spread_at_creation(make_model):
    m = make_model()
    opt = Adam(_groups(m)[:2], lr=slice(1e-5, 1e-3))
    assert [h["lr"] for h in opt.hypers] == pytest.approx([1e-5, 1e-3])
    opt.add_param_group({"params": m[4].parameters()})
    assert opt.hypers[2]["lr"] == pytest.approx(1e-3) and opt.hypers[2]["wd"] == 0.01


def test_each_group_steps_with_its_own_lr():
    p, q = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = Optimizer([[p], [q]], [sgd_step], lr=[0.1, 0.2])
    p.grad, q.grad = torch.ones(2), torch.ones(2)
    opt.step()
    assert torch.allclose(p, torch.full((2,), 0.9)) and torch.allclose(q, torch.full((2,), 0.8))


# --- freezing -----------------------------------------------------------------------------------------------


def test_freeze_semantics(make_model):
    m = make_model()
    opt = Adam(_groups(m), 1e-3)
    rg = lambda: [all(p.requires_grad for p in pl) for pl in opt.param_lists]  # noqa: E731
    opt.freeze()
    assert rg() == [False, False, True]
    opt.freeze_to(1)
    assert rg() == [False, True, True]
    opt.freeze_to(-2)
    assert rg() == [False, True, True]
    opt.unfreeze()
    assert rg() == [True, True, True]
    opt.state[m[0].bias]["force_train"] = True  # e.g. a batchnorm layer the Learner keeps training
    opt.freeze()
    assert m[0].bias.requires_grad and not m[0].weight.requires_grad
    with pytest.warns(UserWarning, match="freezes all 3"):
        opt.freeze_to(3)
    assert not any(p.requires_grad for p in m[4].parameters())


def test_freeze_needs_two_groups(make_model):
    with pytest.raises(ValueError, match="at least two parameter groups"):
        Adam(make_model().parameters(), 1e-3).freeze()
    with pytest.raises(TypeError, match="int group index"):
        Adam(_groups(make_model()), 1e-3).freeze_to(1.5)


def test_frozen_parameters_never_move_even_with_a_stale_gradient(make_model, batch):
    m = make_model()
    x, y = batch
    opt = SGD(_groups(m), 0.1, mom=0.9, wd=0.1)
    nn.functional.mse_loss(m(x), y).backward()
    opt.step()
    opt.zero_grad(set_to_none=False)  # gradients stay as zero tensors
    opt.freeze()
    frozen = [p.detach().clone() for p in m[0].parameters()]
    for _ in range(3):
        nn.functional.mse_loss(m(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
    assert all(torch.equal(a, b) for a, b in zip(frozen, m[0].parameters()))


def test_all_params_and_param_lists(make_model):
    m = make_model()
    opt = SGD(_groups(m), 0.1)
    assert len(opt.all_params()) == 6
    assert [p for p, *_ in opt.all_params(1)] == list(m[2].parameters())
    assert opt.all_params(with_grad=True) == []
    p, pl, state, hyper = opt.all_params(slice(2, None))[0]
    assert p is m[4].weight and pl == list(m[4].parameters()) and state == {} and hyper["lr"] == 0.1
    new = [list(m[4].parameters()), list(m[2].parameters()), list(m[0].parameters())]
    opt.param_lists = new
    assert opt.param_lists == new
    with pytest.raises(ValueError, match="2 groups"):
        opt.param_lists = new[:2]


# --- state --------------------------------------------------------------------------------------------------

RESUMABLE = {
    "sgd": lambda ps: SGD(ps, 0.1, mom=0.9, wd=0.01),
    "rmsprop": lambda ps: RMSProp(ps, 1e-2, mom=0.9),
    "adam": lambda ps: Adam(ps, 1e-2),
    "radam": lambda ps: RAdam(ps, 1e-2),
    "qhadam": lambda ps: QHAdam(ps, 1e-2),
    "larc": lambda ps: Larc(ps, 0.1),
    "lamb": lambda ps: Lamb(ps, 1e-2, level="model"),
    "ranger": lambda ps: ranger(ps, 1e-2, k=2),
}


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_state_dict_round_trip_mid_training_resumes_identically(name, make_model, train):
    m = make_model()
    opt = RESUMABLE[name](_groups(m))
    opt.set_hyper("lr", slice(opt.hypers[-1]["lr"] / 10, opt.hypers[-1]["lr"]))
    train(m, opt, 5)
    buf = io.BytesIO()
    torch.save({"model": m.state_dict(), "opt": opt.state_dict()}, buf)
    expected = train(m, opt, 3)

    buf.seek(0)
    ckpt = torch.load(buf)
    m2 = make_model(seed=1)  # different weights, overwritten by the checkpoint
    m2.load_state_dict(ckpt["model"])
    opt2 = RESUMABLE[name](_groups(m2))  # fresh hypers, overwritten too
    opt2.load_state_dict(ckpt["opt"])
    assert [dict(h) for h in opt2.hypers] == [dict(h) for h in opt.hypers]
    assert torch.equal(train(m2, opt2, 3), expected)


def test_load_state_dict_errors(make_model):
    opt = Adam(_groups(make_model()), 1e-3)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": [], "hypers": []})
    other = Adam(make_model().parameters(), 1e-3).state_dict()
    with pytest.raises(ValueError, match=r"sizes \[6\] but this optimizer has \[2, 2, 2\]"):
        opt.load_state_dict(other)


def test_clear_state_keeps_only_flags(make_model, train):
    m = make_model()
    opt = Adam(m.parameters(), 1e-3)
    opt.state[m[0].weight]["do_wd"] = False
    train(m, opt, 2)
    assert set(opt.state[m[0].bias]) == {"grad_avg", "sqr_avg", "step"}
    opt.clear_state()
    assert dict(opt.state) == {m[0].weight: {"do_wd": False}}


def test_zero_grad(make_model, batch):
    m = make_model()
    x, y = batch
    opt = SGD(m.parameters(), 0.1)
    nn.functional.mse_loss(m(x), y).backward()
    grads = [p.grad for p in m.parameters()]
    opt.zero_grad()  # fastai's default: zeroed in place, the same tensors
    assert all(p.grad is g and not g.any() and not g.requires_grad for p, g in zip(m.parameters(), grads))
    opt.zero_grad(set_to_none=True)  # torch's default, on request
    assert all(p.grad is None for p in m.parameters())


def test_step_with_closure_returns_the_loss(make_model, batch):
    m = make_model()
    x, y = batch
    opt = SGD(m.parameters(), 0.1)

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(m(x), y)
        loss.backward()
        return loss

    first = opt.step(closure)
    assert first.item() > opt.step(closure).item()


def test_custom_fastai_style_stepper(make_model):
    calls = []

    def count_steps(p, lr, n_seen=0, **kwargs):
        calls.append(lr)
        return {"n_seen": n_seen + 1}

    p = torch.zeros(2, requires_grad=True)
    opt = Optimizer([p], [count_steps, sgd_step], lr=0.5)
    p.grad = torch.ones(2)
    opt.step()
    opt.step()
    assert calls == [0.5, 0.5] and opt.state[p]["n_seen"] == 2
    assert torch.allclose(p, torch.full((2,), -1.0))


def test_missing_hyper_or_state_is_named():
    def needs_beta(p, lr, beta, **kwargs):
        p.sub_(beta)

    p = torch.zeros(1, requires_grad=True)
    p.grad = torch.ones(1)
    with pytest.raises(TypeError, match=r"needs_beta needs \['beta'\]"):
        Optimizer([p], [needs_beta], lr=0.1).step()
    with pytest.raises(KeyError, match="put step_stat before it"):
        Optimizer([p], [average_grad, average_sqr_grad, adam_step], lr=0.1, eps=1e-8).step()


def test_sparse_gradients_are_refused():
    emb = nn.Embedding(10, 3, sparse=True)
    opt = Adam(emb.parameters(), 1e-3)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="SparseAdam"):
        opt.step()


def test_repr_names_steppers_and_groups(make_model):
    r = repr(Adam(_groups(make_model()), 1e-3))
    assert "average_grad(dampening=True)" in r and "group 2: 2 tensors" in r


# --- torch's tooling ----------------------------------------------------------------------------------------


def test_is_a_torch_optimizer_for_schedulers(make_model, train):
    m = make_model()
    opt = SGD(_groups(m), 0.1, mom=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train(m, opt, 1)
    sched.step()
    assert [h["lr"] for h in opt.hypers] == [0.05] * 3
    cyc = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, cycle_momentum=False)
    train(m, opt, 1)
    cyc.step()
    assert opt.hypers[0]["lr"] == pytest.approx(cyc.get_last_lr()[0])


def test_works_with_grad_scaler(make_model, batch):
    m = make_model()
    x, y = batch
    opt = Adam(m.parameters(), 1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    before = [p.detach().clone() for p in m.parameters()]
    scaler.scale(nn.functional.mse_loss(m(x), y)).backward()
    scaler.unscale_(opt)
    grads = [p.grad.clone() for p in m.parameters()]
    scaler.step(opt)
    scaler.update()
    ref = make_model()
    ref_opt = Adam(ref.parameters(), 1e-2)
    for p, g in zip(ref.parameters(), grads):
        p.grad = g
    ref_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), ref.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_pickle_and_deepcopy_keep_the_steppers(make_model, train):
    m = make_model()
    opt = Adam(m.parameters(), 1e-3)
    train(m, opt, 2)
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert [getattr(cb, "func", cb) for cb in clone.cbs] == [getattr(cb, "func", cb) for cb in opt.cbs]
        assert clone.hypers[0] == opt.hypers[0]
        assert len(clone.state) == 6


def test_works_with_a_compiled_model(make_model, train):
    m1 = make_model()
    m2 = copy.deepcopy(m1)
    compiled = torch.compile(m2, backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = train(compiled, Adam(compiled.parameters(), 1e-2), 5)
    a = train(m1, Adam(m1.parameters(), 1e-2), 5)
    torch.testing.assert_close(a, b)


def test_creating_and_stepping_does_not_import_dynamo():
    # torch's add_param_group and zero_grad import torch._dynamo on first use: seconds on a small CPU.
    code = (
        "import sys, torch\n"
        "from tiers.optim import Adam\n"
        "m = torch.nn.Linear(3, 2)\n"
        "opt = Adam(m.parameters(), 1e-3)\n"
        "m(torch.randn(4, 3)).sum().backward()\n"
        "opt.step(); opt.zero_grad(); opt.set_hyper('lr', 1e-2); opt.state_dict()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_foreach_is_keyword_only():
    p = torch.zeros(1, requires_grad=True)
    with pytest.raises(TypeError):
        Optimizer([p], [sgd_step], 0.1)
    assert Optimizer([p], [sgd_step], lr=0.1, foreach=False).foreach is False
