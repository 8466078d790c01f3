"""AUDIT3 E29/E28 for text learners: a language model's per-item losses line up with its prediction rows (one per
stream: `get_preds` joins the batches along the sequence), so `Interpretation.top_losses`/`plot_top_losses` work;
`plot_top_losses` of text learners shows a table of the decoded texts (not blank image panels)."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config, awd_lstm_lm_config  # noqa: E402
from tiers.text.block import TextDataLoaders  # noqa: E402
from tiers.text.learner import language_model_learner, text_classifier_learner  # noqa: E402
from tiers.text.samples import make_imdb_df  # noqa: E402
from tiers.train import ClassificationInterpretation, Interpretation  # noqa: E402

SMALL = dict(emb_sz=16, n_hid=24, n_layers=2)


@pytest.fixture(scope="module")
def df():
    return make_imdb_df(80, seed=3)


@pytest.fixture(scope="module")
def lm(df, tmp_path_factory):
    dls = TextDataLoaders.from_df(df, path=tmp_path_factory.mktemp("lmi"), text_col="text", is_lm=True,
                                  valid_col="is_valid", bs=8, seq_len=20, n_workers=1)
    torch.manual_seed(0)
    learn = language_model_learner(dls, AWD_LSTM, config=dict(awd_lstm_lm_config, **SMALL), pretrained=False)
    with learn.no_bar():
        learn.fit(1, 1e-2)
    return learn


def test_lm_losses_one_per_stream(lm):
    with lm.no_bar():
        preds, targs, losses = lm.get_preds(with_loss=True)
    assert len(lm.dls.valid) > 1  # several batches: the per-batch rows used to give n_batches * bs losses
    assert preds.shape[:2] == targs.shape and losses.shape == (preds.shape[0],)
    # the loss of stream r is the mean cross entropy over all its tokens (the rows of every batch joined)
    expect = F.cross_entropy(torch.log(preds).transpose(1, 2), targs, reduction="none").mean(1)
    assert torch.allclose(losses, expect, atol=1e-4)


def test_lm_interpretation(lm, capsys):
    with lm.no_bar():
        interp = Interpretation.from_learner(lm)
    assert len(interp.losses) == len(interp.preds)
    vals, idx = interp.top_losses(3)
    assert int(idx.max()) < len(interp.preds) and torch.equal(vals, interp.losses[idx])
    df = interp.plot_top_losses(3, return_fig=True)
    out = capsys.readouterr().out
    assert "loss" in out and "predicted" in out  # a table of streams (its layout follows the terminal's width)
    assert df["loss"].tolist() == pytest.approx([float(v) for v in vals])  # worst first


@pytest.fixture(scope="module")
def clas(df, tmp_path_factory):
    dls = TextDataLoaders.from_df(df, path=tmp_path_factory.mktemp("cli"), text_col="text", label_col="label",
                                  valid_col="is_valid", bs=8, n_workers=1)
    torch.manual_seed(0)
    learn = text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL), pretrained=False)
    with learn.no_bar():
        learn.fit(1, 1e-2)
    return learn


def test_classifier_plot_top_losses_is_a_table_of_texts(clas, df):
    with clas.no_bar():
        interp = ClassificationInterpretation.from_learner(clas)
    vals, idx = interp.top_losses(2)
    res = interp.plot_top_losses(2, return_fig=True)
    assert list(res.columns)[-4:] == ["target", "predicted", "probability", "loss"]
    assert res["loss"].tolist() == pytest.approx(vals.tolist(), abs=1e-6)
    assert set(res["target"]) <= {"negative", "positive"} and set(res["predicted"]) <= {"negative", "positive"}
    vdf = df[df.is_valid].reset_index(drop=True)
    for text, i in zip(res["text"], idx.tolist()):  # the decoded (tokenized) review of that validation item
        toks = set(text.split(" "))
        words = [w.lower() for w in vdf.text[i].replace(".", " ").replace(",", " ").split()[:20] if w.isalpha()]
        assert text.startswith("xxbos") and sum(w in toks for w in words) >= 0.7 * len(words)
    assert res["target"].tolist() == [interp.vocab[int(interp.targs[i])] for i in idx]
    assert res["predicted"].tolist() == [interp.vocab[int(interp.decoded[i])] for i in idx]
    assert all(0.5 <= float(p) <= 1 for p in res["probability"])  # of the predicted class (of 2)
