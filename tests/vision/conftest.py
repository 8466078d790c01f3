"""Shared fixtures: the offline sample datasets, written once per test session."""

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("vision_samples")


@pytest.fixture(scope="session")
def mnist_path(samples_dir):
    from tiers.vision.data_samples import make_mnist_tiny

    return make_mnist_tiny(samples_dir / "mnist_tiny")


@pytest.fixture(scope="session")
def pets_path(samples_dir):
    from tiers.vision.data_samples import make_pets_tiny

    return make_pets_tiny(samples_dir / "pets_tiny", n_per_class=8)


@pytest.fixture(scope="session")
def camvid_path(samples_dir):
    from tiers.vision.data_samples import make_camvid_tiny

    return make_camvid_tiny(samples_dir / "camvid_tiny", n_images=12)


@pytest.fixture(scope="session")
def coco_path(samples_dir):
    from tiers.vision.data_samples import make_coco_tiny

    return make_coco_tiny(samples_dir / "coco_tiny", n_images=12)


@pytest.fixture(autouse=True)
def _one_thread_and_close_figures():
    # Tiny models on a shared 2-core machine: a second intra-op thread only spins against other processes
    # (measured 20-50x slower under load), so these tests run single-threaded and restore the setting after.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
    import matplotlib.pyplot as plt

    plt.close("all")
