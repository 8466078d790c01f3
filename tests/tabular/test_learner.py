import numpy as np
import pandas as pd
import pytest
import torch

from tiers.tabular import (
    Categorify,
    FillMissing,
    Normalize,
    TabularDataLoaders,
    tabular_config,
    tabular_learner,
)
from tiers.train import CrossEntropyLossFlat, MSELossFlat, accuracy, rmse

PROCS = [Categorify, FillMissing, Normalize]


def _dls(df, y="y", **kw):
    return TabularDataLoaders.from_df(df, procs=PROCS, cat_names=["c1", "c2"], cont_names=["x1", "x2"],
                                      y_names=y, valid_idx=list(range(300, 400)), bs=32, **kw)


def test_classification_learns_and_predicts(frame, capsys):
    torch.manual_seed(0)
    learn = tabular_learner(_dls(frame), layers=[32, 16], metrics=accuracy)
    assert isinstance(learn.loss_func, CrossEntropyLossFlat)
    learn.fit_one_cycle(8, 3e-2)
    assert float(learn.final_record[-1]) > 0.85
    row, cls, probs = learn.predict(frame.iloc[310])
    assert row["y"] in {"hi", "lo"} and probs.shape == (2,) and float(probs.sum()) == pytest.approx(1.0)
    assert row["y"] == ["hi", "lo"][int(cls)]
    capsys.readouterr()
    learn.show_results(max_n=4)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-2:] == ["y", "y_pred"] and len(out) == 5


def test_regression_and_multi_target_pick_mse(frame):
    frame = frame.assign(t=frame.x2 * 2.0 + 1.0, u=-frame.x2)
    learn = tabular_learner(_dls(frame, y="t"), layers=[16], y_range=(-30, 30), metrics=rmse)
    assert isinstance(learn.loss_func, MSELossFlat)
    assert learn.model.layers[-1].high == 30
    learn.fit(1, 1e-2)
    multi = tabular_learner(_dls(frame, y=["t", "u"]), config=tabular_config(ps=0.1))
    assert multi.model.layers[-1][0].out_features == 2 if hasattr(multi.model.layers[-1], "__getitem__") else True
    xb = multi.dls.one_batch()
    assert multi.model(*xb[:2]).shape == (32, 2)
    with pytest.raises(TypeError, match="unknown options"):
        tabular_config(bogus=1)


def test_tabular_learner_rejects_other_loaders():
    with pytest.raises(TypeError, match="TabularDataLoaders"):
        tabular_learner(object())


def test_export_round_trip(frame, tmp_path):
    import tiers.train
    if not hasattr(tiers.train, "load_learner"):
        pytest.skip("tiers.train has no load_learner yet")
    load_learner = tiers.train.load_learner
    learn = tabular_learner(_dls(frame), layers=[8], path=tmp_path)
    learn.fit(1, 1e-2)
    learn.export(tmp_path / "m.pkl")
    new = load_learner(tmp_path / "m.pkl")
    p1 = learn.predict(frame.iloc[0])[2]
    p2 = new.predict(frame.iloc[0])[2]
    assert torch.allclose(p1, p2)
    assert np.isclose(float(p1.sum()), 1.0)
    assert isinstance(frame, pd.DataFrame)
