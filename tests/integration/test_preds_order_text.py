"""AUDIT S1 end to end with text: SortedDL yields the validation texts longest first, yet get_preds, test_dl
predictions, Interpretation.top_losses and tta come back in dataset order (as fastai's `reorder=True`), while
`reorder=False` keeps the loader's longest-first order."""

import pytest
import torch
import torch.nn.functional as F

from tiers.text.all import AWD_LSTM, ClassificationInterpretation, TextDataLoaders, text_classifier_learner
from tiers.text.awdlstm import awd_lstm_clas_config
from tiers.text.samples import make_imdb_df

SMALL = dict(awd_lstm_clas_config, emb_sz=16, n_hid=24, n_layers=1)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    df = make_imdb_df(48, seed=11)
    df["text"] = [t + " and then some" * ((i * 5) % 9) for i, t in enumerate(df.text)]
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=4, n_workers=1)
    learn = text_classifier_learner(dls, AWD_LSTM, config=SMALL, pretrained=False)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-2)
    valid = df[df.is_valid].reset_index(drop=True)
    assert list(learn.dls.valid.get_idxs()) != list(range(len(valid)))  # SortedDL really reorders
    return learn, valid


def test_preds_targets_and_losses_in_dataset_order(trained):
    learn, valid = trained
    probs, targs, losses = learn.get_preds(with_loss=True)
    o2i = learn.dls.vocab[1].o2i
    assert targs.tolist() == [o2i[lbl] for lbl in valid.label]
    each = torch.stack([learn.predict(t)[2] for t in valid.text])
    torch.testing.assert_close(probs, each, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(losses, F.nll_loss(torch.log(probs), targs, reduction="none"), atol=1e-4, rtol=1e-4)


def test_reorder_false_is_the_loaders_longest_first_order(trained):
    learn, valid = trained
    order = list(learn.dls.valid.get_idxs())
    _, targs = learn.get_preds(reorder=False)
    o2i = learn.dls.vocab[1].o2i
    assert targs.tolist() == [o2i[valid.label[i]] for i in order]


def test_submission_rows_follow_the_test_frame(trained):
    learn, valid = trained
    texts = list(valid.text)[::-1]
    probs, _ = learn.get_preds(dl=learn.dls.test_dl(texts))
    each = torch.stack([learn.predict(t)[2] for t in texts])
    torch.testing.assert_close(probs, each, atol=1e-5, rtol=1e-4)


def test_top_losses_point_at_the_right_texts(trained):
    learn, valid = trained
    interp = ClassificationInterpretation.from_learner(learn)
    vals, idx = interp.top_losses(3)
    o2i = learn.dls.vocab[1].o2i
    for v, i in zip(vals, idx):
        p = learn.predict(valid.text[int(i)])[2]
        assert float(v) == pytest.approx(-float(torch.log(p[o2i[valid.label[int(i)]]])), abs=1e-4)


def test_ragged_text_inputs_come_back_in_dataset_order(trained):
    learn, valid = trained
    inp, _, _ = learn.get_preds(with_input=True)
    ds = learn.dls.valid_ds
    assert isinstance(inp, list) and len(inp) == len(valid)  # padded per batch to other lengths: one tensor per text
    for i in range(len(valid)):
        assert torch.equal(inp[i][inp[i] != 1], ds[i][0][ds[i][0] != 1])  # same tokens, padding (id 1) aside
