"""Random seeds for Python, NumPy and torch (CPU and every CUDA device): set them, save and restore them."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["get_random_states", "no_random", "set_random_states", "set_seed"]


def set_seed(s: int, reproducible: bool = False) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (CPU and all CUDA devices) with `s`. With
    `reproducible=True`, also make cuDNN deterministic (no benchmark autotuning) and turn on
    `torch.use_deterministic_algorithms(True, warn_only=True)`: ops without a deterministic implementation warn
    instead of failing; `CUBLAS_WORKSPACE_CONFIG` is set (needed by deterministic CUDA matmuls) when it is unset.

    >>> set_seed(42); a = torch.rand(1); set_seed(42); bool(a == torch.rand(1))
    True
    """
    if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
        raise TypeError(f"set_seed: the seed must be an int, got {type(s).__name__} {s!r}")
    s = int(s)
    random.seed(s)
    np.random.seed(s % 2**32)  # NumPy only accepts seeds in [0, 2**32)
    torch.manual_seed(s)  # also seeds every CUDA device
    if reproducible:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def get_random_states() -> dict:
    """The current states of Python's, NumPy's and torch's random generators and of cuDNN's determinism flags, as a
    dict to pass to `set_random_states(**states)`."""
    return {
        "random_state": random.getstate(),
        "numpy_state": np.random.get_state(),
        "torch_state": torch.get_rng_state(),
        "torch_cuda_state": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "torch_deterministic": torch.backends.cudnn.deterministic,
        "torch_benchmark": torch.backends.cudnn.benchmark,
    }


def set_random_states(
    random_state: tuple,
    numpy_state: tuple,
    torch_state: torch.Tensor,
    torch_cuda_state: list | None = None,
    torch_deterministic: bool | None = None,
    torch_benchmark: bool | None = None,
) -> None:
    """Restore generator states saved by `get_random_states`."""
    random.setstate(random_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)
    if torch_cuda_state is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(torch_cuda_state)
    if torch_deterministic is not None:
        torch.backends.cudnn.deterministic = torch_deterministic
    if torch_benchmark is not None:
        torch.backends.cudnn.benchmark = torch_benchmark


@contextmanager
def no_random(seed: int = 42, reproducible: bool = True) -> Iterator[None]:
    """Run a block with every generator seeded with `seed` (see `set_seed`), then restore the generator states and
    determinism settings it had, so the block neither depends on nor disturbs the surrounding randomness.

    >>> with no_random(): a = torch.rand(1)
    >>> with no_random(): bool(a == torch.rand(1))
    True
    """
    states = get_random_states()
    algos = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    set_seed(seed, reproducible=reproducible)
    try:
        yield
    finally:
        set_random_states(**states)
        torch.use_deterministic_algorithms(algos[0], warn_only=algos[1])
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
