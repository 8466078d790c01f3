"""The text listings in fastai 2.x's documented form (raw texts straight into `TextDataLoaders.from_df`,
`TextBlock.from_df`, `from_folder`), end to end, on a generated corpus shaped like IMDB_SAMPLE (`texts.csv` with
`label`, `text`, `is_valid`) and like the IMDB folder. The paper's own listings, exactly as printed (`tokenize_df`,
`from_df(vocab=make_vocab(count))`, `TextBlock(make_vocab(count), is_lm=True)`), are run by
`test_paper_printed_text.py`.

The ULMFiT recipe in full: a language model is first pretrained on a separate "WikiText" corpus and published as an
archive that `language_model_learner` downloads through tiers.data's `untar_data` (from a `file://` URL: nothing is
fetched from the internet); it is fine-tuned on the reviews, its encoder saved, loaded into a classifier, and the
classifier trained with gradual unfreezing. Models are tiny (embeddings of 48, hidden 96) so this runs in seconds.
"""

import pickle
import random
import tarfile

import pandas as pd
import pytest
import torch

from tiers.data import CategoryBlock, ColReader, ColSplitter, DataBlock
from tiers.text.all import (
    AWD_LSTM,
    Perplexity,
    TextBlock,
    TextDataLoaders,
    accuracy,
    awd_lstm_clas_config,
    awd_lstm_lm_config,
    language_model_learner,
    make_imdb_folder,
    make_imdb_sample,
    make_texts,
    text_classifier_learner,
)
from tiers.text.models import model_meta

pytestmark = pytest.mark.slow

LM_CFG = dict(awd_lstm_lm_config, emb_sz=48, n_hid=96, n_layers=2)
CLAS_CFG = dict(awd_lstm_clas_config, emb_sz=48, n_hid=96, n_layers=2)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # small LSTMs on a busy 2-core machine: 1 thread is several times faster
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def pretrained_url(tmp_path_factory):
    """Pretrain a small AWD-LSTM on a "WikiText" corpus and publish it as `wt-tiny.tgz` (weights + vocabulary)."""
    torch.manual_seed(0)
    random.seed(0)
    tmp = tmp_path_factory.mktemp("wikitext")
    texts, _ = make_texts(600, seed=100)
    wiki = pd.DataFrame({"text": texts, "is_valid": [i % 10 == 0 for i in range(len(texts))]})
    dls = TextDataLoaders.from_df(wiki, path=tmp, text_col="text", is_lm=True, valid_col="is_valid", bs=32,
                                  seq_len=40, n_workers=1)
    learn = language_model_learner(dls, AWD_LSTM, config=LM_CFG, pretrained=False, metrics=[accuracy, Perplexity()])
    learn.fit_one_cycle(4, 2e-2)
    src = tmp / "wt-tiny"
    src.mkdir()
    torch.save(learn.model.state_dict(), src / "lm.pth")
    (src / "itos.pkl").write_bytes(pickle.dumps(list(dls.vocab)))
    with tarfile.open(tmp / "wt-tiny.tgz", "w:gz") as tf:
        tf.add(src, arcname="wt-tiny")
    return (tmp / "wt-tiny.tgz").as_uri()


@pytest.fixture()
def pretrained_cache(pretrained_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERS_HOME", str(tmp_path / "tiers_home"))
    monkeypatch.setitem(model_meta[AWD_LSTM], "url", pretrained_url)
    return tmp_path / "tiers_home"


def test_language_model_then_classifier(tmp_path, pretrained_cache):
    torch.manual_seed(1)
    random.seed(1)
    path = make_imdb_sample(tmp_path / "imdb_sample", n=400, seed=0)  # stands in for untar_data(URLs.IMDB_SAMPLE)
    df = pd.read_csv(path / "texts.csv")

    # Listing: fine-tune the pretrained language model on the reviews.
    dls_lm = TextDataLoaders.from_df(df, path=path, text_col="text", is_lm=True, valid_col="is_valid", bs=32,
                                     seq_len=40, n_workers=1)
    learn = language_model_learner(dls_lm, AWD_LSTM, config=LM_CFG, metrics=[accuracy, Perplexity()])
    assert any(pretrained_cache.rglob("lm.pth"))  # downloaded and extracted by untar_data
    learn.fine_tune(2, 2e-2)
    valid_loss, lm_acc, ppl = learn.recorder.values[-1][1:]
    assert ppl == pytest.approx(float(torch.tensor(valid_loss).exp()), rel=1e-4)
    assert lm_acc > 0.4 and ppl < 10  # well below the vocabulary size: the model has learned the language
    generated = learn.predict("The plot was", n_words=8, temperature=0.75)
    assert generated.startswith("The plot was") and len(generated.split()) >= 10
    learn.save_encoder("finetuned")

    # Listing: the classifier, from the same texts with the language model's vocabulary.
    dls_clas = TextDataLoaders.from_df(df, path=path, text_col="text", label_col="label", valid_col="is_valid",
                                       text_vocab=dls_lm.vocab, bs=16, n_workers=1)
    learn = text_classifier_learner(dls_clas, AWD_LSTM, config=CLAS_CFG, metrics=accuracy, pretrained=False)
    learn.load_encoder("finetuned")
    # Gradual unfreezing: the head, then the last LSTM layer too, then everything.
    learn.fit_one_cycle(1, 1e-2)
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, 1e-2)
    learn.unfreeze()
    learn.fit_one_cycle(6, 1e-2)
    assert learn.recorder.values[-1][-1] >= 0.8  # chance is 0.5
    label, _, probs = learn.predict("What a wonderful film, I loved it. The acting was superb. 10/10")
    assert label == "positive" and float(probs.max()) > 0.5


def test_datablock_form(tmp_path):
    torch.manual_seed(2)
    random.seed(2)
    path = make_imdb_sample(tmp_path / "imdb_sample", n=200, seed=3)
    df = pd.read_csv(path / "texts.csv")
    imdb_lm = DataBlock(blocks=TextBlock.from_df("text", is_lm=True, n_workers=1), get_x=ColReader("text"),
                        splitter=ColSplitter())
    dls = imdb_lm.dataloaders(df, bs=16, seq_len=36)
    x, y = dls.one_batch()
    assert x.shape == (16, 36) and (x[:, 1:] == y[:, :-1]).all()
    imdb_clas = DataBlock(blocks=(TextBlock.from_df("text", seq_len=36, vocab=dls.vocab, n_workers=1), CategoryBlock),
                          get_x=ColReader("text"), get_y=ColReader("label"), splitter=ColSplitter())
    dls_clas = imdb_clas.dataloaders(df, bs=16)
    learn = text_classifier_learner(dls_clas, AWD_LSTM, config=CLAS_CFG, seq_len=36, metrics=accuracy,
                                    pretrained=False)
    learn.fit_one_cycle(1, 1e-2)
    assert torch.isfinite(torch.tensor(learn.recorder.values[-1][:2])).all()


def test_from_folder_listing(tmp_path, pretrained_cache):
    torch.manual_seed(3)
    random.seed(3)
    path = make_imdb_folder(tmp_path / "imdb", n=800, seed=4)  # stands in for untar_data(URLs.IMDB)
    dls = TextDataLoaders.from_folder(path, valid="test", bs=16, n_workers=2)
    # The classifier starts from the downloaded pretrained language model (frozen), then fine-tunes.
    learn = text_classifier_learner(dls, AWD_LSTM, config=CLAS_CFG, drop_mult=0.5, metrics=accuracy)
    # The paper's `fine_tune`; with a toy encoder the lower layers must move as fast as the head (lr_mult=1).
    learn.fine_tune(6, 2e-2, lr_mult=1)
    assert learn.recorder.values[-1][-1] >= 0.75
