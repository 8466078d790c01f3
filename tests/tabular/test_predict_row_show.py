"""AUDIT3 E3: the row `TabularLearner.predict` returns shows itself, as in fastai's tabular tutorial
(`row, clas, probs = learn.predict(df.iloc[0]); row.show()`), and stays a pandas Series for everything else."""

import pickle

import pandas as pd
import pytest
import torch

import tiers.data.show
from tiers.tabular.all import *  # noqa: F403  (the tutorial's import line)

CATS = ["workclass", "education", "marital-status", "occupation", "relationship", "race"]
CONTS = ["age", "fnlwgt", "education-num"]


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    "The tabular tutorial's lines up to `learn.predict(df.iloc[0])` (a smaller sample, one epoch)."
    torch.manual_seed(0)
    path = make_adult_sample(tmp_path_factory.mktemp("adult") / "adult", n=400).parent  # noqa: F405
    df = pd.read_csv(path / "adult.csv")
    dls = TabularDataLoaders.from_csv(path / "adult.csv", path=path, y_names="salary",  # noqa: F405
                                      cat_names=CATS, cont_names=CONTS,
                                      procs=[Categorify, FillMissing, Normalize])  # noqa: F405
    learn = tabular_learner(dls, metrics=accuracy)  # noqa: F405
    learn.fit_one_cycle(1)
    row, clas, probs = learn.predict(df.iloc[0])
    return learn, df, row, clas, probs


def test_tutorial_row_show_prints_the_decoded_row_with_the_prediction(tutorial, capsys, monkeypatch):
    learn, df, row, clas, _ = tutorial
    monkeypatch.setenv("COLUMNS", "400")  # one line per table row, whatever terminal runs the tests
    capsys.readouterr()
    assert row.show() is None  # nothing for a notebook to echo after the table
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == CATS + ["education-num_na"] + CONTS + ["salary"]
    predicted = learn.dls.vocab[int(clas)]
    src = df.iloc[0]
    # decoded: the categories by name (not their codes), the continuous values un-normalized, the predicted target
    assert line.split() == ["0"] + [str(src[c]) for c in CATS] + ["False", str(src.age), str(src.fnlwgt),
                                                                  str(float(src["education-num"])), predicted]


def test_row_show_false_returns_the_one_row_frame(tutorial):
    _, df, row, clas, _ = tutorial
    frame = row.show(show=False)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (1, len(row)) and list(frame.columns) == list(row.index)
    num = pd.api.types.is_numeric_dtype
    assert num(frame["age"]) and not num(frame["workclass"])  # typed columns (formatted as numbers), not all object
    assert frame.iloc[0]["education"] == df.iloc[0]["education"] and frame.iloc[0]["age"] == df.iloc[0]["age"]


def test_row_show_in_a_notebook_is_an_html_table(tutorial, capsys, monkeypatch):
    pytest.importorskip("IPython")  # the notebook display needs IPython, which the layer's own venv may not have
    row = tutorial[2]
    # the notebook test of show_table: a Jupyter kernel is detected; without a live kernel IPython's display prints
    # the mime bundle it was given, so the HTML table is what a notebook would render
    monkeypatch.setattr(tiers.data.show, "in_notebook", lambda: True)
    capsys.readouterr()
    row.show()
    out = capsys.readouterr().out
    assert "<table" in out and "<th>marital-status</th>" in out and f"<td>{row['education']}</td>" in out


def test_row_is_still_a_series(tutorial):
    learn, df, row, clas, probs = tutorial
    assert isinstance(row, pd.Series) and row.name == 0
    assert row["salary"] == learn.dls.vocab[int(clas)] and probs.shape == (2,)
    assert row["workclass"] == df.iloc[0]["workclass"] and row.age == df.iloc[0]["age"]
    plain = pd.Series(row.to_dict(), name=0)
    assert (row == plain).all() and row.equals(plain) and plain.equals(row)
    back = pickle.loads(pickle.dumps(row))
    assert type(back) is type(row) and back.equals(row)
    sub = row[["age", "salary"]]
    assert list(sub.index) == ["age", "salary"] and sub.show(show=False).shape == (1, 2)  # a slice shows itself too
    assert row.to_dict()["salary"] == row["salary"]
