"""ULMFiT (the paper's section 2.2) on a generated IMDB-like corpus: a language model on the reviews, then
a classifier on its encoder.

    python examples/text_ulmfit.py
"""

import tempfile

import pandas as pd

from tiers.text.all import (
    AWD_LSTM,
    TextDataLoaders,
    accuracy,
    language_model_learner,
    make_imdb_sample,
    set_seed,
    text_classifier_learner,
)

set_seed(0)  # python, numpy and torch: the same run every time
path = make_imdb_sample(tempfile.mkdtemp(), n=400)  # texts.csv: label, text, is_valid
df = pd.read_csv(path / "texts.csv")
small = dict(emb_sz=48, n_hid=96, n_layers=2)
dls_lm = TextDataLoaders.from_df(df, path=path, text_col="text", is_lm=True, valid_col="is_valid", bs=32, seq_len=40)
lm = language_model_learner(dls_lm, AWD_LSTM, config=small, pretrained=False, metrics=accuracy)
lm.fit_one_cycle(4, 2e-2)
lm.save_encoder("encoder")

dls = TextDataLoaders.from_df(df, path=path, text_col="text", label_col="label", valid_col="is_valid",
                              text_vocab=dls_lm.vocab, bs=16)
learn = text_classifier_learner(dls, AWD_LSTM, config=small, pretrained=False, metrics=accuracy)
learn.load_encoder("encoder")
learn.fit_one_cycle(1, 1e-2)  # gradual unfreezing: the head, the last LSTM layer, then everything
learn.freeze_to(-2)
learn.fit_one_cycle(1, 1e-2)
learn.unfreeze()
learn.fit_one_cycle(6, 1e-2)
print(learn.predict("What a wonderful film, the acting was superb."))
