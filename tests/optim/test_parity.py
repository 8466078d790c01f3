"""After 50 steps on a small model, our optimizers land where `torch.optim`'s do (relative error < 1e-6)."""

import pytest
import torch

from tiers.optim import SGD, Adam, OptimWrapper, RAdam, RMSProp

# (name, ours, torch's), with fastai hypers mapped onto torch's: mom -> momentum/beta1, sqr_mom -> beta2/alpha.
CASES = [
    ("sgd", lambda p: SGD(p, 0.1), lambda p: torch.optim.SGD(p, 0.1)),
    (
        "sgd-momentum-l2",
        lambda p: SGD(p, 0.05, mom=0.9, wd=0.01, decouple_wd=False),
        lambda p: torch.optim.SGD(p, 0.05, momentum=0.9, weight_decay=0.01),
    ),
    (
        "adam",
        lambda p: Adam(p, 1e-2, mom=0.9, sqr_mom=0.999, eps=1e-8, wd=0.0),
        lambda p: torch.optim.Adam(p, 1e-2, betas=(0.9, 0.999), eps=1e-8),
    ),
    (
        "adam-l2",
        lambda p: Adam(p, 1e-2, eps=1e-8, wd=0.05, decouple_wd=False),
        lambda p: torch.optim.Adam(p, 1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05),
    ),
    (
        "adamw",
        lambda p: Adam(p, 1e-2, eps=1e-5, wd=0.1),
        lambda p: torch.optim.AdamW(p, 1e-2, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.1),
    ),
    (
        "rmsprop",
        lambda p: RMSProp(p, 1e-2, sqr_mom=0.9, eps=1e-8),
        lambda p: torch.optim.RMSprop(p, 1e-2, alpha=0.9, eps=1e-8),
    ),
    (
        "rmsprop-l2",
        lambda p: RMSProp(p, 1e-2, wd=0.01, decouple_wd=False),
        lambda p: torch.optim.RMSprop(p, 1e-2, alpha=0.99, eps=1e-8, weight_decay=0.01),
    ),
    (
        "radam",
        lambda p: RAdam(p, 1e-2, mom=0.9, sqr_mom=0.999, eps=1e-8),
        lambda p: torch.optim.RAdam(p, 1e-2, betas=(0.9, 0.999), eps=1e-8),
    ),
    (
        "radam-decoupled-wd",
        lambda p: RAdam(p, 1e-2, eps=1e-8, wd=0.1),
        lambda p: torch.optim.RAdam(
            p, 1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, decoupled_weight_decay=True
        ),
    ),
]


# Same kernels in the same order as torch's single-tensor and foreach paths: equal to the bit, not just close.
BITWISE = {"sgd", "sgd-momentum-l2", "adam", "adam-l2", "adamw", "rmsprop", "rmsprop-l2"}


def _rel_err(ours: torch.nn.Module, theirs: torch.nn.Module) -> float:
    # Per tensor, |a - b| / |b| in the 2-norm: elementwise ratios blow up on entries that happen to be near 0.
    return max(
        ((a - b).norm() / b.norm()).item()
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True)
    )


@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "per-param"])
@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_after_50_steps(name, ours, theirs, foreach, make_model, train):
    m1, m2 = make_model(), make_model()
    opt = ours(m1.parameters())
    opt.foreach = foreach
    start = torch.cat([p.detach().flatten() for p in m1.parameters()])
    moved = train(m1, opt, 50)
    train(m2, theirs(m2.parameters()), 50)
    assert (moved - start).abs().max() > 1e-3  # the comparison means something: training moved the weights
    assert _rel_err(m1, m2) < 1e-6
    if name in BITWISE:
        assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))


def test_optim_wrapper_is_torch(make_model, train):
    m1, m2 = make_model(), make_model()
    a = train(
        m1, OptimWrapper(m1.parameters(), opt=torch.optim.AdamW, lr=1e-2, mom=0.8, sqr_mom=0.95, wd=0.1)
    )
    b = train(m2, torch.optim.AdamW(m2.parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1))
    assert torch.equal(a, b)
