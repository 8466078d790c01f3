"""Texts that are already tokens (`tokenize_df`'s output, a column of lists, those lists printed by a CSV round
trip) are used as they are wherever text enters: never `str()`'d and tokenized again. Also the paper's spellings
(`from_df(vocab=...)`, `TextBlock(vocab)`, `databunch(..., seq_len=)`), missing texts, CSV encodings and a single
tokenization rule."""

from operator import attrgetter

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.data import DataBlock, RandomSplitter
from tiers.dispatch import L
from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config
from tiers.text.block import TextBlock, TextDataLoaders
from tiers.text.learner import text_classifier_learner
from tiers.text.parallel import MissingTextError, tokenize_df, tokenize_texts
from tiers.text.samples import make_imdb_df
from tiers.text.tokenizers import BaseTokenizer, SentencePieceTokenizer, TokenizeWithRules
from tiers.text.transforms import Tokenizer, make_vocab
from tiers.train import accuracy

TINY = dict(awd_lstm_clas_config, emb_sz=32, n_hid=64, n_layers=1)
# What tokenizing a printed token list produces: the vocabulary of the silent bug.
PRINTED = {"[", "]", "'", "'xxbos", "xxbos'", "',", "['xxbos',"}


@pytest.fixture(scope="module")
def df():
    return make_imdb_df(300, seed=3)


@pytest.fixture(scope="module")
def tok(df):
    return tokenize_df(df, "text", n_workers=1)  # a column name as a string, as in the paper's DataBlock listing


def _words(vocab) -> set:
    return set(vocab[0] if not isinstance(vocab[0], str) else vocab)


def test_tokenize_df_takes_a_string_column_name_and_keeps_token_lists(df, tok):
    df_tok, count = tok
    assert df_tok["text"].map(type).eq(list).all() and df_tok["text"].iloc[0][0] == "xxbos"
    assert list(df_tok.columns) == ["label", "is_valid", "text", "text_length"]
    again, count2 = tokenize_df(df_tok, ["text"], n_workers=1)  # its own output: the same tokens
    assert again["text"].tolist() == df_tok["text"].tolist() and count2 == count
    assert not PRINTED & set(count2)


def test_tokenize_df_pre_tokenized_forms(tok):
    df_tok, count = tok
    as_tuples = df_tok.assign(text=df_tok["text"].map(tuple))
    as_arrays = df_tok.assign(text=df_tok["text"].map(np.array))
    as_L = df_tok.assign(text=df_tok["text"].map(L))
    for d in (as_tuples, as_arrays, as_L):
        assert tokenize_df(d, "text")[0]["text"].tolist() == df_tok["text"].tolist()
    # Two pre-tokenized columns are joined with the field markers, like two text columns.
    two = pd.DataFrame({"a": [["x", "y"]], "b": [["z"]]})
    assert tokenize_df(two, ["a", "b"])[0]["text"][0] == ["xxfld", "1", "x", "y", "xxfld", "2", "z"]


def test_tokenize_df_refuses_mixed_and_non_string_tokens():
    mixed = pd.DataFrame({"text": [["xxbos", "hi"], "Hello there", ["xxbos"]]})
    with pytest.raises(TypeError, match=r"'text' mixes token lists \(rows 0, 2\) and texts \(rows 1\)"):
        tokenize_df(mixed, "text")
    ids = pd.DataFrame({"text": [["a"], [3, 4]]})
    with pytest.raises(TypeError, match="row 1 of the text column 'text' is a token list holding int 3"):
        tokenize_df(ids, "text")
    both = pd.DataFrame({"a": [["x"]], "b": ["raw text"]})
    with pytest.raises(TypeError, match=r"\['a'\] hold token lists but \['b'\] hold texts"):
        tokenize_df(both, ["a", "b"])


def test_printed_token_lists_from_a_csv_round_trip_are_parsed(tok, tmp_path):
    df_tok, count = tok
    df_tok.to_csv(tmp_path / "tok.csv", index=False)
    back = pd.read_csv(tmp_path / "tok.csv")
    assert back["text"][0].startswith("['xxbos'")  # what the CSV holds: printed lists
    res, count2 = tokenize_df(back, "text")
    assert res["text"].tolist() == df_tok["text"].tolist() and count2 == count
    dls = TextDataLoaders.from_csv(tmp_path, "tok.csv", text_col="text", label_col="label", valid_col="is_valid",
                                   bs=16)
    assert not PRINTED & _words(dls.vocab) and "wonderful" in _words(dls.vocab)
    # A text that merely looks like a list stays a text.
    odd = pd.DataFrame({"text": ["[Spoiler] great", "['a', 'b'] and more"]})
    assert "spoiler" in tokenize_df(odd, "text", n_workers=1)[0]["text"][0]


def test_from_df_on_tokenize_df_output_learns(tok):
    # The silent bug: each list was str()'d and tokenized again, the vocabulary filled with `[`, `'`, `,`, and the
    # classifier trained on noise at chance accuracy without a word.
    df_tok, count = tok
    dls = TextDataLoaders.from_df(df_tok, vocab=make_vocab(count), text_col="text", label_col="label",
                                  valid_col="is_valid", bs=16)
    assert list(dls.vocab[0]) == make_vocab(count) and not PRINTED & _words(dls.vocab)
    x, _ = dls.one_batch()
    docs = {tuple(d) for d in df_tok["text"]}
    assert all(tuple(dls.vocab[0][i] for i in r.tolist() if i != 1) in docs for r in x)
    torch.manual_seed(0)
    learn = text_classifier_learner(dls, AWD_LSTM, config=TINY, metrics=accuracy, pretrained=False)
    learn.fit_one_cycle(5, 1e-2)
    assert learn.recorder.values[-1][-1] >= 0.8  # chance is 0.5

    # predict and test_dl: a text, a token list (list or tuple), a DataFrame raw or tokenized: the same answer.
    text, toks = make_imdb_df(300, seed=3)["text"][0], df_tok["text"].iloc[0]
    ref = learn.predict(text)
    for item in (toks, tuple(toks), L(toks)):
        got = learn.predict(item)
        assert got[0] == ref[0] and torch.allclose(got[2], ref[2])
    raw = make_imdb_df(300, seed=3).iloc[:6]
    preds = [learn.get_preds(dl=dls.test_dl(items))[0] for items in
             (raw, df_tok.iloc[:6], list(raw["text"]), list(df_tok["text"].iloc[:6]))]
    assert all(torch.allclose(p, preds[0], atol=1e-5) for p in preds[1:])


def test_language_model_from_df_vocab_and_paper_datablock(tok):
    df_tok, count = tok
    dls = TextDataLoaders.from_df(df_tok, vocab=make_vocab(count), text_col="text", is_lm=True, bs=8, seq_len=20)
    assert list(dls.vocab) == make_vocab(count)
    # The paper's DataBlock: the vocabulary as TextBlock's first argument, rows read with attrgetter, and bs and
    # seq_len given to databunch.
    imdb_lm = DataBlock(blocks=TextBlock(make_vocab(count), is_lm=True), get_x=attrgetter("text"),
                        splitter=RandomSplitter(seed=0))
    dls = imdb_lm.databunch(df_tok, bs=8, seq_len=24)
    x, y = dls.one_batch()
    assert x.shape == (8, 24) and (x[:, 1:] == y[:, :-1]).all()
    assert list(dls.vocab) == make_vocab(count)
    stream = [t for d in df_tok["text"] for t in d]
    assert {dls.vocab[i] for i in x.view(-1).tolist()} <= set(stream) | {"xxunk"}
    with pytest.raises(TypeError, match="vocabulary both as the first argument and as vocab="):
        TextBlock(make_vocab(count), vocab=make_vocab(count))
    with pytest.raises(TypeError, match="vocab= and text_vocab= both"):
        TextDataLoaders.from_df(df_tok, vocab=["a"], text_vocab=["a"], text_col="text", is_lm=True)


def test_textblock_wraps_a_plain_tokenizer_and_tokenizes_raw_text(df):
    block = TextBlock(BaseTokenizer(), is_lm=True, min_freq=1)
    assert isinstance(block.type_tfms[0], Tokenizer)
    dls = DataBlock(blocks=block, get_x=attrgetter("text"), splitter=RandomSplitter(seed=0)).databunch(
        df, bs=8, seq_len=16)
    assert "wonderful" in dls.vocab or "awful" in dls.vocab


def test_tokenizer_transform_passes_tokens_and_refuses_missing_and_bad_tokens():
    t = Tokenizer(BaseTokenizer())
    assert t(["xxbos", "hi"]) == ["xxbos", "hi"]
    assert list(t(("xxbos", "hi"))) == ["xxbos", "hi"]  # a tuple of strings is one token list, not two texts
    assert list(t(np.array(["a", "b"]))) == ["a", "b"]
    assert list(t("Hi")) == ["xxbos", "xxmaj", "hi"]
    for bad in (None, float("nan")):
        with pytest.raises(MissingTextError, match="dropna"):
            t(bad)
    with pytest.raises(TypeError, match="token list holds int 5"):
        t(["a", 5])


def test_missing_texts_are_refused_with_their_rows_or_dropped_on_request(df, tmp_path):
    bad = df.copy()
    bad.loc[[4, 17], "text"] = [None, float("nan")]
    msg = r"the text column 'text' has no text \(None/NaN\) in 2 of 300 rows \(index 4, 17\).*drop_missing=True"
    with pytest.raises(MissingTextError, match="^TextDataLoaders.from_df: " + msg):
        TextDataLoaders.from_df(bad, text_col="text", label_col="label", bs=8)
    with pytest.raises(MissingTextError, match="^tokenize_df: " + msg):
        tokenize_df(bad, "text")
    with pytest.raises(MissingTextError, match=msg):  # in a DataBlock, when the tokenizer is set up
        DataBlock(blocks=TextBlock.from_df("text", is_lm=True), get_x=attrgetter("text")).databunch(bad, bs=8)
    with pytest.raises(TypeError, match="drop_missing is not available in a DataBlock"):
        TextBlock.from_df("text", drop_missing=True)
    res, count = tokenize_df(bad, "text", drop_missing=True, n_workers=1)
    assert len(res) == 298 and 4 not in res.index and "nan" not in count and "none" not in count
    dls = TextDataLoaders.from_df(bad, text_col="text", label_col="label", valid_col="is_valid", bs=8,
                                  drop_missing=True, n_workers=1)
    assert len(dls.train_ds) + len(dls.valid_ds) == 298 and "nan" not in dls.vocab[0]
    many = df.copy()
    many.loc[:14, "text"] = None
    with pytest.raises(MissingTextError, match=r"in 15 of 300 rows \(index 0, 1, .*, 9 and 5 more\)"):
        tokenize_df(many, "text")
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(MissingTextError, match=r"^TextDataLoaders.from_csv\('.*bad\.csv'\): .*index 4, 17"):
        TextDataLoaders.from_csv(tmp_path, "bad.csv", text_col="text", label_col="label")
    dls = TextDataLoaders.from_csv(tmp_path, "bad.csv", text_col="text", label_col="label", drop_missing=True,
                                   n_workers=1)
    assert len(dls.train_ds) + len(dls.valid_ds) == 298
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", bs=8, n_workers=1)
    with pytest.raises(MissingTextError, match=r"items 1 of 2 have no text"):
        dls.test_dl(["fine", None])


def test_from_csv_honours_the_encoding_and_names_the_file_on_a_decode_error(df, tmp_path):
    latin = df.assign(text=df["text"] + " Très émouvant, à voir.")
    latin.to_csv(tmp_path / "latin.csv", index=False, encoding="latin-1")
    with pytest.raises(UnicodeDecodeError, match=r"latin\.csv.*encoding='latin-1'"):
        TextDataLoaders.from_csv(tmp_path, "latin.csv", text_col="text", label_col="label")
    dls = TextDataLoaders.from_csv(tmp_path, "latin.csv", text_col="text", label_col="label", valid_col="is_valid",
                                   encoding="latin-1", bs=8, n_workers=1)
    assert {"très", "émouvant"} <= set(dls.vocab[0])


def test_a_single_rule_is_wrapped_in_a_list(tmp_path):
    def shout(t: str) -> str:
        return t.upper()

    assert list(TokenizeWithRules(BaseTokenizer(), rules=shout, post_rules=[])(["a b"])) == [["A", "B"]]
    assert list(TokenizeWithRules(BaseTokenizer(), rules=[], post_rules=list.copy)(["a"])) == [["a"]]
    assert tokenize_texts(["a b"], n_workers=1, rules=shout, tok=BaseTokenizer(), post_rules=[]) == [["A", "B"]]
    assert Tokenizer(BaseTokenizer(), rules=shout, post_rules=[])("a") == ["A"]
    sp = SentencePieceTokenizer(vocab_sz=40, cache_dir=tmp_path)
    sp.setup(["the cat sat on the mat"] * 20, rules=str.lower)  # the rules the corpus is read with
    with pytest.raises(TypeError, match="rules='lower' is neither a function nor a list of functions"):
        TokenizeWithRules(BaseTokenizer(), rules="lower")
    with pytest.raises(TypeError, match="post_rules: 3 is not callable"):
        TokenizeWithRules(BaseTokenizer(), post_rules=[3])
