"""Fixtures of the optim tests: a tiny seeded model, a fixed regression batch and a training loop."""

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors gain nothing from intra-op threads, and on a shared 2-core machine the hand-offs dominate.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


@pytest.fixture
def make_model():
    """`make_model(seed=0)`: the same small MLP (five-ish hundred parameters) every time for a given seed."""
    return _make_model


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 6, generator=g), torch.randn(64, 3, generator=g)


@pytest.fixture
def train(batch):
    """`train(model, opt, n)`: `n` full-batch MSE steps; returns the model's parameters as one flat vector."""
    x, y = batch

    def _train(model: nn.Module, opt, n: int = 50) -> torch.Tensor:
        for _ in range(n):
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    return _train
