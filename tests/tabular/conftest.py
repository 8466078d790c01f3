import numpy as np
import pandas as pd
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The test machine is shared by many processes: torch's intra-op threads spin and slow tiny ops by 100x.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    "Two categorical and two continuous columns with a learnable binary target and some missing values."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"c1": rng.choice(list("abcde"), n), "c2": rng.choice(["u", "v"], n),
                       "x1": rng.normal(size=n), "x2": rng.normal(2.0, 3.0, size=n)})
    logit = np.where(df.c1.isin(["a", "b"]), 1.5, -1.5) + 1.5 * df.x1.to_numpy() + (df.x2.to_numpy() - 2) / 3
    df["y"] = np.where(logit + rng.normal(scale=0.3, size=n) > 0, "hi", "lo")
    df.loc[rng.random(n) < 0.1, "x1"] = np.nan
    df.loc[rng.random(n) < 0.05, "c1"] = None
    return df


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()
