"""The paper's tabular (adult census) and collaborative filtering (MovieLens sample) listings, end to end on
generated local data with the same column names."""

import pandas as pd
import pytest
import torch

from tiers.collab import CollabDataLoaders, collab_learner, make_ratings_sample
from tiers.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from tiers.tabular.samples import make_adult_sample
from tiers.train import accuracy


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared 2-core CI machine: torch's spinning threads would slow tiny ops
    yield
    torch.set_num_threads(n)


def test_tabular_listing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # a wide terminal: the tables print unwrapped, one row per line
    path = tmp_path
    make_adult_sample(path, n=2000)
    df = pd.read_csv(path / "adult.csv")
    dls = TabularDataLoaders.from_df(df, path, procs=[Categorify, FillMissing, Normalize],
                                     cat_names=["workclass", "education", "marital-status", "occupation",
                                                "relationship", "race"],
                                     cont_names=["age", "fnlwgt", "education-num"],
                                     y_names="salary", valid_idx=list(range(1024, 1260)), bs=64)
    learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)
    learn.fit_one_cycle(3)
    assert float(learn.final_record[-1]) > 0.7
    capsys.readouterr()
    dls.show_batch()
    learn.show_results()
    out = capsys.readouterr().out
    assert "education-num_na" in out and "salary_pred" in out and ">=50k" in out


def test_collab_listing(tmp_path, capsys):
    path = tmp_path
    floor = make_ratings_sample(path, n_users=100, n_items=150, n_ratings=4000)
    dls = CollabDataLoaders.from_csv(path / "ratings.csv")
    learn = collab_learner(dls, y_range=(0, 5.5))
    learn.fine_tune(10)
    valid_rmse = float(learn.validate()[0]) ** 0.5
    spread = float(dls.valid_ds.items["rating"].std())
    assert floor < valid_rmse < 0.9 * spread
    capsys.readouterr()
    dls.show_batch()
    learn.show_results()
    assert "rating_pred" in capsys.readouterr().out
