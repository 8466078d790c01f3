"""AUDIT3 E15: column names are only keys, as in fastai: a frame with integer column names (`pd.DataFrame(array)`,
`pd.read_csv(path, header=None)`: the original UCI adult.data has no header row) goes through show_batch,
show_results, test_dl/get_preds, predict (its `TabularRow` and `show()`) and export/load_learner, for a class target
and for regression targets. Real training on small frames; the CSV is a real file read back."""

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.tabular.all import *  # noqa: F403  (the user's import line)


def _array_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    # 0: a category, 1 and 2: continuous (1 with missing values), 3: a class, 4 and 5: regression targets.
    rng = np.random.default_rng(seed)
    cat = rng.choice(["a", "b", "c"], n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    cls = np.where((cat == "a") + x1 > 0.5, ">50K", "<=50K")
    df = pd.DataFrame(np.c_[cat, x1, x2, cls].astype(object))
    df[1], df[2] = df[1].astype(float), df[2].astype(float)
    df[4], df[5] = 2 * x1 - x2, x1 + (cat == "b")
    df.loc[rng.random(n) < 0.1, 1] = np.nan
    assert list(df.columns) == [0, 1, 2, 3, 4, 5]
    return df


def _learn(df: pd.DataFrame, y_names, **kw):
    torch.manual_seed(0)
    dls = TabularDataLoaders.from_df(df, cat_names=[0], cont_names=[1, 2], y_names=y_names,  # noqa: F405
                                     procs=[Categorify, FillMissing, Normalize], bs=32, **kw)  # noqa: F405
    learn = tabular_learner(dls)  # noqa: F405
    with learn.no_logging():
        learn.fit_one_cycle(3, 1e-2)
    return learn


@pytest.fixture(scope="module")
def from_csv_without_header(tmp_path_factory):
    path = tmp_path_factory.mktemp("uci") / "adult.data"
    _array_frame().to_csv(path, header=False, index=False)
    df = pd.read_csv(path, header=None)
    assert list(df.columns) == [0, 1, 2, 3, 4, 5] and df[1].isna().any()
    return df


def _check_row(learn, df, i, row, preds, targets):
    assert isinstance(row, TabularRow) and isinstance(row, pd.Series)  # noqa: F405
    # the decoded inputs under their integer names, the prediction in place of each target, nothing renamed to str
    assert list(row.index) == [0, "1_na", 1, 2, *targets]
    src = df.iloc[i]
    assert row[0] == src[0] and bool(row["1_na"]) == bool(pd.isna(src[1]))
    assert row[2] == pytest.approx(src[2], rel=1e-5)
    frame = row.show(show=False)
    assert list(frame.columns) == list(row.index) and frame.shape == (1, len(row))
    assert "_pred" not in " ".join(map(str, row.index))
    # the same prediction as get_preds on a test_dl of the same row
    p2, _ = learn.get_preds(dl=learn.dls.test_dl(df.iloc[i:i + 1]))
    assert torch.allclose(p2[0], preds, atol=1e-6)


def test_classification_with_integer_column_names(from_csv_without_header, tmp_path, capsys):
    df = from_csv_without_header[[0, 1, 2, 3]]
    learn = _learn(df, 3)
    assert learn.dls.vocab is not None and set(learn.dls.vocab) == {"<=50K", ">50K"}
    shown = learn.dls.show_batch(show=False)
    assert list(shown.columns) == [0, "1_na", 1, 2, 3]
    b = learn.dls.valid.one_batch()
    _, _, dec = learn.get_preds(dl=learn.dls.valid, with_decoded=True)
    res = learn.dls.valid.show_results(b, dec, max_n=5, show=False)
    assert list(res.columns) == [0, "1_na", 1, 2, 3, "3_pred"] and set(res["3_pred"]) <= {"<=50K", ">50K"}
    learn.show_results(max_n=3)  # prints the table
    assert "3_pred" in capsys.readouterr().out
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(df.iloc[:10]))
    assert preds.shape == (10, 2)

    row, clas, probs = learn.predict(df.iloc[0])
    _check_row(learn, df, 0, row, probs, [3])
    assert row[3] == learn.dls.vocab[int(clas)] and int(clas) == int(probs.argmax())
    # the learner is good enough that its answer is the row's class most of the time: the prediction is real
    hits = [learn.predict(df.iloc[i])[0][3] == df.iloc[i][3] for i in range(20)]
    assert sum(hits) >= 14

    learn.export(tmp_path / "clf.pkl")
    loaded = load_learner(tmp_path / "clf.pkl")  # noqa: F405
    row2, clas2, probs2 = loaded.predict(df.iloc[0])
    assert row2.equals(row) and int(clas2) == int(clas) and torch.allclose(probs2, probs)


def test_regression_with_integer_column_names(tmp_path):
    df = _array_frame()[[0, 1, 2, 4, 5]]  # pd.DataFrame(array): integer names, here two regression targets
    learn = _learn(df, [4, 5])
    res = learn.dls.valid.show_results(learn.dls.valid.one_batch(), learn.get_preds(dl=learn.dls.valid)[0],
                                       max_n=4, show=False)
    assert list(res.columns) == [0, "1_na", 1, 2, 4, 5, "4_pred", "5_pred"]
    row, _, preds = learn.predict(df.iloc[3])
    _check_row(learn, df, 3, row, preds, [4, 5])
    assert [row[4], row[5]] == pytest.approx(preds.tolist(), rel=1e-5)
    assert row[4] != pytest.approx(df.iloc[3][4], abs=1e-9)  # the prediction, not the row's own target

    learn.export(tmp_path / "reg.pkl")
    row2, _, preds2 = load_learner(tmp_path / "reg.pkl").predict(df.iloc[3])  # noqa: F405
    assert row2.equals(row) and torch.allclose(preds2, preds)


def test_single_regression_target_with_an_integer_name():
    df = _array_frame()[[0, 1, 2, 4]]
    learn = _learn(df, 4)
    row, dec, preds = learn.predict({0: "a", 1: 0.3, 2: -1.0})  # a {column: value} dict keyed by integers
    assert list(row.index) == [0, "1_na", 1, 2, 4]
    assert row[4] == pytest.approx(float(preds[0]), rel=1e-5) and row[1] == pytest.approx(0.3)


def test_an_input_column_ending_in_pred_is_kept_as_an_input():
    # Named by suffix, "score_pred" (an input) was taken for a prediction: renamed to "score" and dropped from the row.
    df = _array_frame().rename(columns={0: "kind", 1: "score_pred", 2: "x", 4: "y"})[["kind", "score_pred", "x", "y"]]
    torch.manual_seed(0)
    dls = TabularDataLoaders.from_df(df, cat_names=["kind"], cont_names=["score_pred", "x"], y_names="y",  # noqa: F405
                                     procs=[Categorify, FillMissing, Normalize], bs=32)  # noqa: F405
    learn = tabular_learner(dls)  # noqa: F405
    with learn.no_logging():
        learn.fit(1)
    row, _, preds = learn.predict(df.iloc[2])
    assert list(row.index) == ["kind", "score_pred_na", "score_pred", "x", "y"]
    assert row["score_pred"] == pytest.approx(df.iloc[2]["score_pred"], rel=1e-5)
    assert row["y"] == pytest.approx(float(preds[0]), rel=1e-5)
