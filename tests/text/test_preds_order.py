"""AUDIT S1: `learn.get_preds()` on a text classifier returns its rows in the validation set's order, and predictions
on `dls.test_dl(texts)` in the order of `texts` -- although `SortedDL` batches the texts longest first. Each row is
checked against `learn.predict` on the same text and against the targets in dataset order; `top_losses` indices
against the loss of `predict` on the text they point at. (All fail with the predict.py of commit b9bbbdb: the rows
came back longest text first.)"""

import pytest
import torch

from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config
from tiers.text.block import TextDataLoaders
from tiers.text.learner import text_classifier_learner
from tiers.text.samples import make_imdb_df

SMALL = dict(awd_lstm_clas_config, emb_sz=16, n_hid=24, n_layers=2)


@pytest.fixture(scope="module")
def trained():
    df = make_imdb_df(60, seed=5)
    # texts of clearly different lengths, so that length order and dataset order differ
    df["text"] = [t + " and more" * (i % 7) for i, t in enumerate(df.text)]
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=4, n_workers=1)
    learn = text_classifier_learner(dls, AWD_LSTM, config=SMALL, pretrained=False)
    learn.fit(1, 1e-2)
    valid = df[df.is_valid].reset_index(drop=True)
    lens = [len(t) for t in valid.text]
    assert sorted(lens, reverse=True) != lens  # the sort moves rows
    return learn, valid


def test_get_preds_targets_follow_the_validation_set(trained):
    learn, valid = trained
    _, targs = learn.get_preds()
    o2i = learn.dls.vocab[1].o2i
    assert targs.tolist() == [o2i[lbl] for lbl in valid.label]


def test_get_preds_rows_match_predict_on_each_text(trained):
    learn, valid = trained
    probs, _ = learn.get_preds()
    each = torch.stack([learn.predict(t)[2] for t in valid.text])
    torch.testing.assert_close(probs, each, atol=1e-5, rtol=1e-4)


def test_test_dl_preds_follow_the_given_order(trained):
    learn, valid = trained
    texts = list(valid.text)[::-1]  # any order the user has: a submission file's
    probs, _ = learn.get_preds(dl=learn.dls.test_dl(texts))
    each = torch.stack([learn.predict(t)[2] for t in texts])
    torch.testing.assert_close(probs, each, atol=1e-5, rtol=1e-4)


def test_top_losses_indices_point_at_their_texts(trained):
    # plot_top_losses fetches the texts by these indices
    from tiers.train import ClassificationInterpretation

    learn, valid = trained
    losses, idxs = ClassificationInterpretation.from_learner(learn).top_losses()
    o2i = learn.dls.vocab[1].o2i
    for loss, i in zip(losses[:5].tolist(), idxs[:5].tolist()):
        probs = learn.predict(valid.text[i])[2]
        assert loss == pytest.approx(-float(torch.log(probs[o2i[valid.label[i]]])), rel=1e-4, abs=1e-5)
