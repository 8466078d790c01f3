"""AUDIT2 D2b: a float label column (a regression target) given to `TextDataLoaders.from_df` without a `y_block`
is refused at build time, naming the column and `y_block=RegressionBlock()`; with that block the texts train as a
regression (one output, MSE loss)."""

import numpy as np
import pytest
import torch

from tiers.data import CategoryBlock, RegressionBlock
from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config
from tiers.text.block import TextDataLoaders
from tiers.text.learner import text_classifier_learner
from tiers.text.samples import make_imdb_df

SMALL = dict(awd_lstm_clas_config, emb_sz=16, n_hid=24, n_layers=2)


@pytest.fixture(scope="module")
def df():
    d = make_imdb_df(60, seed=3)
    rng = np.random.default_rng(0)
    # a score that follows the sentiment, with noise: 60 distinct floats
    d["score"] = np.round(rng.uniform(1, 3, len(d)) + (d.label == "positive") * 2, 5)
    return d


@pytest.mark.parametrize("label_col", ["score", 3])  # by name and by position
def test_float_scores_are_refused_naming_the_column_and_the_fix(df, label_col):
    with pytest.raises(ValueError, match=r"label_col=('score'|3) holds 60 distinct float values .*"
                                         r"y_block=RegressionBlock\(\)"):
        TextDataLoaders.from_df(df, text_col="text", label_col=label_col, valid_col="is_valid", bs=8, n_workers=1)


def test_float_scores_are_refused_from_csv_too(df, tmp_path):
    df.to_csv(tmp_path / "texts.csv", index=False)
    with pytest.raises(ValueError, match=r"label_col='score'.*RegressionBlock"):
        TextDataLoaders.from_csv(tmp_path, "texts.csv", text_col="text", label_col="score", valid_col="is_valid",
                                 n_workers=1)


@pytest.mark.filterwarnings("ignore:Categorize")  # the data layer may note fractional labels
def test_few_or_whole_float_labels_stay_classes(df):
    # 1.0/0.0 (an int column with a NaN somewhere becomes float) and a few half-star ratings are classes
    d = df.assign(stars=np.where(df.label == "positive", 1.0, 0.0))
    dls = TextDataLoaders.from_df(d, text_col="text", label_col="stars", valid_col="is_valid", bs=8, n_workers=1)
    assert list(dls.vocab[1]) == [0.0, 1.0]
    d = df.assign(stars=[1.5, 2.5] * 30)
    dls = TextDataLoaders.from_df(d, text_col="text", label_col="stars", valid_col="is_valid", bs=8, n_workers=1)
    assert list(dls.vocab[1]) == [1.5, 2.5]


@pytest.mark.filterwarnings("ignore:Categorize")  # the data layer may note fractional labels
def test_explicit_category_block_keeps_one_class_per_value(df):
    d = df.assign(score=np.round(df.score, 1))
    train_vals = set(d.score[~d.is_valid])
    d = d[~d.is_valid | d.score.isin(train_vals)]  # every validation value seen in training
    dls = TextDataLoaders.from_df(d, text_col="text", label_col="score", valid_col="is_valid", bs=8, n_workers=1,
                                  y_block=CategoryBlock())
    assert len(dls.vocab[1]) == len(train_vals) > 10


def test_regression_block_trains_one_epoch_with_mse_and_one_output(df):
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="score", valid_col="is_valid", bs=8, n_workers=1,
                                  y_block=RegressionBlock())
    x, y = dls.one_batch()
    assert y.dtype == torch.float32 and y.shape == (8,)
    learn = text_classifier_learner(dls, AWD_LSTM, config=SMALL, pretrained=False)
    assert "MSELoss" in repr(learn.loss_func)
    assert learn.model[1].layers[-1][-1].out_features == 1
    learn.fit(1, 1e-2)
    train_loss, valid_loss = learn.recorder.values[-1][:2]
    assert np.isfinite(train_loss) and np.isfinite(valid_loss)
    preds, targs = learn.get_preds()
    assert preds.shape == (int(df.is_valid.sum()), 1)
    # the validation loss is the MSE of the predictions against the scores
    assert abs(float(((preds.view(-1) - targs) ** 2).mean()) - valid_loss) < 1e-3 * max(1.0, valid_loss)
    assert sorted(targs.tolist()) == pytest.approx(sorted(df.score[df.is_valid].astype("float32").tolist()))


def test_regression_predict_gives_a_float(df):
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="score", valid_col="is_valid", bs=8, n_workers=1,
                                  y_block=RegressionBlock())
    learn = text_classifier_learner(dls, AWD_LSTM, config=SMALL, pretrained=False)
    decoded, raw, _ = learn.predict(df.text[0])
    assert raw.shape == (1,)
    assert float(decoded[0]) == pytest.approx(float(raw[0]))
