"""TextBlock, TextDataLoaders and show_batch for text."""

import pandas as pd
import pytest

from tiers.data import CategoryBlock, ColReader, ColSplitter, DataBlock
from tiers.tensors import TensorCategory, TensorText
from tiers.text.block import TextBlock, TextDataLoaders
from tiers.text.loaders import LMDataLoader, SortedDL
from tiers.text.samples import make_imdb_df, make_imdb_folder, make_imdb_sample
from tiers.text.tokenizers import BaseTokenizer
from tiers.text.transforms import LMTensorText


@pytest.fixture(scope="module")
def df():
    return make_imdb_df(120, seed=5)


def test_from_df_classifier(df, capsys):
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8, n_workers=1)
    assert isinstance(dls, TextDataLoaders) and isinstance(dls.train, SortedDL)
    text_vocab, labels = dls.vocab
    assert text_vocab[:2] == ["xxunk", "xxpad"] and list(labels) == ["negative", "positive"]
    assert len(dls.train_ds) == 96 and len(dls.valid_ds) == 24
    x, y = dls.one_batch()
    assert isinstance(x, TensorText) and isinstance(y, TensorCategory) and x.shape[0] == 8
    assert (x[:, -1] != 1).any()  # the longest row has no trailing padding
    # The vocabulary comes from the training texts only.
    train_words = {w for t in df[~df["is_valid"]]["text"] for w in t.lower().split()}
    only_valid = {w for t in df[df["is_valid"]]["text"] for w in t.lower().split()} - train_words
    assert not (only_valid & set(text_vocab))
    dls.show_batch(max_n=2)
    out = capsys.readouterr().out
    assert "xxbos" in out and "category" in out


def test_from_df_language_model_and_show(df, capsys):
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_col="is_valid", bs=4, seq_len=15,
                                  n_workers=1)
    assert isinstance(dls.train, LMDataLoader) and dls.train.seq_len == 15
    x, y = dls.one_batch()
    assert isinstance(x, LMTensorText) and x.shape == (4, 15)
    assert (x[:, 1:] == y[:, :-1]).all()
    dls.show_batch(max_n=2)
    out = capsys.readouterr().out
    assert "text_" in out


def test_from_csv(tmp_path):
    path = make_imdb_sample(tmp_path, n=60, seed=1)
    dls = TextDataLoaders.from_csv(path, "texts.csv", text_col="text", label_col="label", valid_col="is_valid",
                                   bs=8, n_workers=1, tok_tfm=BaseTokenizer())
    assert dls.path == path and len(dls.valid_ds) == 12
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        TextDataLoaders.from_csv(path, "nope.csv")
    with pytest.raises(TypeError, match="DataFrame"):
        TextDataLoaders.from_df(str(path / "texts.csv"))


def test_from_folder_classifier_and_lm(tmp_path):
    path = make_imdb_folder(tmp_path / "imdb", n=60, seed=2)
    dls = TextDataLoaders.from_folder(path, valid="test", bs=8, n_workers=1)
    assert list(dls.vocab[1]) == ["neg", "pos"] and len(dls.train_ds) == 48 and len(dls.valid_ds) == 12
    assert (tmp_path / "imdb_tok" / "counter.pkl").is_file()
    x, y = dls.one_batch()
    assert x.shape[0] == 8 and y.shape == (8,)
    lm = TextDataLoaders.from_folder(path, is_lm=True, valid_pct=0.2, seed=0, bs=4, seq_len=10, n_workers=1)
    assert isinstance(lm.train, LMDataLoader) and lm.one_batch()[0].shape == (4, 10)
    # The LM used every text file (unsup included), so its lengths came from the tokenizer's lengths.pkl.
    assert len(lm.train_ds) + len(lm.valid_ds) == 75


def test_datablock_listing_form(df):
    lm_block = DataBlock(blocks=TextBlock.from_df("text", is_lm=True, n_workers=1), get_x=ColReader("text"),
                         splitter=ColSplitter())
    dls = lm_block.dataloaders(df, bs=4, seq_len=12)
    assert dls.one_batch()[0].shape == (4, 12)
    clas_block = DataBlock(blocks=(TextBlock.from_df("text", seq_len=12, vocab=dls.vocab, n_workers=1), CategoryBlock),
                           get_x=ColReader("text"), get_y=ColReader("label"), splitter=ColSplitter())
    dls_clas = clas_block.dataloaders(df, bs=8)
    assert dls_clas.vocab[0] == dls.vocab
    x, _ = dls_clas.one_batch()
    assert x.shape[0] == 8 and int(x.max()) < len(dls.vocab)


def test_multi_label_and_bad_columns():
    df = pd.DataFrame({"text": ["good fun", "bad sad", "good sad", "fun"] * 5,
                       "tags": ["pos;fun", "neg", "pos;neg", "fun"] * 5})
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="tags", label_delim=";", bs=4, seed=0,
                                  n_workers=1, tok_tfm=BaseTokenizer())
    _, y = dls.one_batch()
    assert y.shape == (4, 3)
    with pytest.raises(KeyError, match="missing"):
        TextDataLoaders.from_df(df, text_col="missing", label_col="tags", n_workers=1)


def test_backwards_language_model_reverses_each_text(df):
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, backwards=True, valid_col="is_valid", bs=4,
                                  seq_len=8, n_workers=1)
    toks = [dls.vocab[i] for i in dls.train_ds[0][0].tolist()]
    assert toks[-1] == "xxbos" and toks[0] != "xxbos"
