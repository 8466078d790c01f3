"""OptimWrapper: torch optimizers under fastai's hyper names, with the same freezing and state handling."""

import io

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from tiers.optim import Lookahead, OptimWrapper, pytorch_hp_map


def _groups(model):
    return [list(model[0].parameters()), list(model[2].parameters()), list(model[4].parameters())]


def test_hypers_use_fastai_names(make_model):
    m = make_model()
    adam = OptimWrapper(m.parameters(), opt=torch.optim.AdamW, lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1)
    h = adam.hypers[0]
    assert (h["lr"], h["mom"], h["sqr_mom"], h["wd"]) == (1e-3, 0.8, 0.95, 0.1)
    assert "betas" not in h and "weight_decay" not in h
    sgd = OptimWrapper(m.parameters(), opt=torch.optim.SGD, lr=0.1, momentum=0.9)
    assert sgd.hypers[0]["mom"] == 0.9
    rms = OptimWrapper(m.parameters(), opt=torch.optim.RMSprop, lr=0.1, alpha=0.9)
    assert rms.hypers[0]["sqr_mom"] == 0.9
    asgd = OptimWrapper(m.parameters(), opt=torch.optim.ASGD, lr=0.1)
    assert "alpha" in asgd.hypers[0] and "sqr_mom" not in asgd.hypers[0]  # ASGD's alpha is a decay power


def test_set_hyper_writes_torch_names(make_model):
    opt = OptimWrapper(_groups(make_model()), opt=torch.optim.Adam, lr=1e-3)
    opt.set_hyper("mom", [0.7, 0.8, 0.9])
    opt.set_hyper("lr", slice(1e-5, 1e-3))
    assert [g["betas"] for g in opt.param_groups] == [(0.7, 0.999), (0.8, 0.999), (0.9, 0.999)]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5, 1e-4, 1e-3])
    opt.hypers[0]["sqr_mom"] = 0.99
    assert opt.param_groups[0]["betas"] == (0.7, 0.99)


def test_fastai_names_at_construction_reach_the_constructor(make_model):
    # nesterov=True is checked by SGD's constructor, so `mom` must be translated before it runs.
    opt = OptimWrapper(
        make_model().parameters(), opt=torch.optim.SGD, lr=0.1, mom=0.9, wd=1e-4, nesterov=True
    )
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["weight_decay"] == 1e-4
    adam = OptimWrapper(make_model().parameters(), opt=torch.optim.Adam, lr=1e-3, sqr_mom=0.99)
    assert adam.param_groups[0]["betas"] == (0.9, 0.99)


def test_errors(make_model):
    m = make_model()
    with pytest.raises(TypeError, match="has no hyper-parameter 'mom'"):
        OptimWrapper(m.parameters(), opt=torch.optim.Adagrad, lr=0.1, mom=0.9)
    with pytest.raises(TypeError, match="needs opt"):
        OptimWrapper(m.parameters())
    with pytest.raises(TypeError, match="needs params"):
        OptimWrapper(opt=torch.optim.SGD, lr=0.1)
    with pytest.raises(TypeError, match="not a torch.optim.Optimizer"):
        OptimWrapper(m.parameters(), opt=lambda ps, **kw: object())


def test_wraps_a_built_optimizer(make_model):
    m = make_model()
    inner = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.5)
    opt = OptimWrapper(opt=inner, mom=0.9)
    assert opt.opt is inner and inner.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups is inner.param_groups


def test_custom_hp_map(make_model):
    opt = OptimWrapper(
        make_model().parameters(), opt=torch.optim.Adadelta, hp_map={"rho": "sqr_mom", "weight_decay": "wd"}
    )
    opt.set_hyper("sqr_mom", 0.5)
    assert opt.param_groups[0]["rho"] == 0.5
    assert pytorch_hp_map["betas__0"] == "mom"


def test_freezing_and_flags_do_not_touch_torch_state(make_model, train):
    m = make_model()
    opt = OptimWrapper(_groups(m), opt=torch.optim.Adam, lr=1e-2)
    opt.state[m[0].bias]["force_train"] = True
    opt.freeze()
    assert [p.requires_grad for p in m[0].parameters()] == [False, True]
    frozen = m[2].weight.detach().clone()
    train(m, opt, 3)  # torch's Adam would fail on a state holding only our flags
    assert torch.equal(frozen, m[2].weight)
    assert set(opt.opt.state[m[4].weight]) == {"step", "exp_avg", "exp_avg_sq"}
    opt.clear_state()
    assert len(opt.opt.state) == 0 and opt.state[m[0].bias] == {"force_train": True}


def test_state_dict_round_trip(make_model, train):
    m = make_model()
    opt = OptimWrapper(_groups(m), opt=torch.optim.AdamW, lr=1e-2)
    train(m, opt, 4)
    buf = io.BytesIO()
    torch.save({"m": m.state_dict(), "o": opt.state_dict()}, buf)
    expected = train(m, opt, 2)
    buf.seek(0)
    ckpt = torch.load(buf)
    m2 = make_model(seed=3)
    m2.load_state_dict(ckpt["m"])
    opt2 = OptimWrapper(_groups(m2), opt=torch.optim.AdamW, lr=1e-3)
    opt2.load_state_dict(ckpt["o"])
    assert opt2.hypers[0]["lr"] == 1e-2
    assert torch.equal(train(m2, opt2, 2), expected)


def test_schedulers_and_lookahead_work_on_the_wrapper(make_model, train):
    m = make_model()
    opt = OptimWrapper(m.parameters(), opt=torch.optim.SGD, lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    train(m, opt, 1)
    sched.step()
    assert opt.hypers[0]["lr"] == pytest.approx(0.01)
    la = Lookahead(OptimWrapper(m.parameters(), opt=torch.optim.SGD, lr=0.1, mom=0.9), k=2)
    train(m, la, 4)
    assert la.count == 4 and la.hypers[0]["mom"] == 0.9


def test_repr_and_forwarding(make_model):
    opt = OptimWrapper(make_model().parameters(), opt=torch.optim.SGD, lr=0.1)
    assert repr(opt).startswith("OptimWrapper(SGD")
    assert opt.defaults is opt.opt.defaults
    with pytest.raises(AttributeError):
        opt.no_such_attribute  # noqa: B018


def test_step_hooks_fire_once_each(make_model, train):
    m = make_model()
    opt = OptimWrapper(m.parameters(), opt=torch.optim.SGD, lr=0.1)
    calls = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append(("global", type(o)))),
        opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o, a[0]))),
        opt.register_step_post_hook(lambda o, a, k: calls.append(("post", o))),
        opt.opt.register_step_pre_hook(lambda o, a, k: calls.append(("inner", o))),
    ]
    try:
        train(m, opt, 1)
    finally:
        for h in handles:
            h.remove()
    # torch's own hook layer runs once, around the wrapped optimizer's step (never a second one on the wrapper)
    assert calls == [("pre", opt, opt), ("global", torch.optim.SGD), ("inner", opt.opt), ("post", opt)]


def test_step_pre_hook_can_replace_the_closure(make_model, batch):
    m = make_model()
    x, y = batch
    opt = OptimWrapper(m.parameters(), opt=torch.optim.SGD, lr=0.1)
    seen = []

    def closure():
        seen.append(1)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), y)
        loss.backward()
        return loss

    opt.register_step_pre_hook(lambda o, a, k: ((o, closure), k))
    assert opt.step() is not None and seen == [1]
    opt.register_step_pre_hook(lambda o, a, k: "bad")
    with pytest.raises(RuntimeError, match="'bad'"):
        opt.step()
