"""Fixtures of the text tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # On a small shared machine, torch's intra-op threads spin against each other: small LSTMs run 10-50x slower
    # with 2 threads than with 1 when the cores are busy. Restored after each module.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
