"""AUDIT3 E28 for tabular learners: `plot_top_losses` shows the decoded rows of the worst items (category names,
continuous values un-normalised) with the prediction, probability and loss, as a table (not blank image panels)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tiers.tabular import Categorify, Normalize, TabularDataLoaders, tabular_learner  # noqa: E402
from tiers.train import ClassificationInterpretation, Interpretation  # noqa: E402


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.choice(["x", "y"], 120), "b": rng.normal(size=120).round(3),
                         "y": rng.choice(["p", "q"], 120), "r": rng.normal(size=120)})


def _learn(frame, **kw):
    dls = TabularDataLoaders.from_df(frame, cat_names=["a"], cont_names=["b"], procs=[Categorify, Normalize], bs=16,
                                     valid_idx=list(range(90, 120)), **kw)
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=[8])
    with learn.no_bar():
        learn.fit(1, 1e-2)
    return learn


def test_classifier_top_losses_table(frame, capsys):
    learn = _learn(frame, y_names="y")
    with learn.no_bar():
        interp = ClassificationInterpretation.from_learner(learn)
    vals, idx = interp.top_losses(3)
    capsys.readouterr()
    assert interp.plot_top_losses(3) is None  # shown once, nothing returned to echo
    printed = capsys.readouterr().out
    df = interp.plot_top_losses(3, return_fig=True)
    assert list(df.columns) == ["a", "b", "y", "y_pred", "probability", "loss"]
    valid = frame.iloc[90:].reset_index(drop=True)
    rows = valid.iloc[idx.tolist()]
    assert df["a"].tolist() == rows["a"].tolist() and df["y"].tolist() == rows["y"].tolist()
    assert np.allclose(df["b"].astype(float), rows["b"], atol=1e-3)  # Normalize undone
    assert df["y_pred"].tolist() == [interp.vocab[int(interp.decoded[i])] for i in idx]
    assert df["loss"].tolist() == pytest.approx(vals.tolist())
    assert df["probability"].tolist() == [f"{float(interp.preds[i].max()):.2f}" for i in idx]
    assert "y_pred" in printed and "probability" in printed and f"{float(vals[0]):.6f}"[:5] in printed


def test_regression_top_losses_have_no_probability(frame):
    learn = _learn(frame, y_names="r")
    with learn.no_bar():
        interp = Interpretation.from_learner(learn)
    vals, idx = interp.top_losses(2)
    df = interp.plot_top_losses(2, return_fig=True)
    assert list(df.columns) == ["a", "b", "r", "r_pred", "probability", "loss"]
    assert df["probability"].tolist() == ["", ""] and df["loss"].tolist() == pytest.approx(vals.tolist())
    assert np.allclose(df["r"].astype(float), frame.r.iloc[90:].to_numpy()[idx.numpy()], atol=1e-4)
