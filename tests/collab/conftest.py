import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The test machine is shared by many processes: torch's intra-op threads spin and slow tiny ops by 100x.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
