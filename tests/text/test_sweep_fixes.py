"""Found by the bad-input sweep (tests/integration/test_bad_input_sweep.py): labels of one class only built a
one-output classifier whose cross-entropy is always 0, so it "trained" and learned nothing, without a word."""

import pandas as pd
import pytest

from tiers.text import AWD_LSTM, TextDataLoaders, text_classifier_learner

CFG = dict(emb_sz=8, n_hid=8, n_layers=1, pad_token=1, bidir=False, output_p=0.0, hidden_p=0.0, input_p=0.0,
           embed_p=0.0, weight_p=0.0)


def test_a_label_column_with_one_class_is_refused():
    df = pd.DataFrame({"text": ["good film", "bad film", "fine plot", "dull plot"] * 6, "label": "pos"})
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", bs=8, seed=0, n_workers=0)
    with pytest.raises(ValueError, match=r"one class only \('pos'\).*label column"):
        text_classifier_learner(dls, AWD_LSTM, config=CFG, pretrained=False)
    df["label"] = ["pos", "neg"] * 12
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", bs=8, seed=0, n_workers=0)
    learn = text_classifier_learner(dls, AWD_LSTM, config=CFG, pretrained=False)
    out = learn.model.eval()(dls.one_batch()[0])
    assert (out[0] if isinstance(out, tuple) else out).shape[-1] == 2
