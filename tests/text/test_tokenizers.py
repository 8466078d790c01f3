"""Tokenizers: the small interface (call on a batch, optional setup and decode), spaCy and SentencePiece."""

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.text.rules import text_spec_tok
from tiers.text.samples import make_texts
from tiers.text.tokenizers import (
    BaseTokenizer,
    SentencePieceTokenizer,
    SpacyTokenizer,
    SubwordTokenizer,
    TokenizeWithRules,
    WordTokenizer,
    tokenize1,
)


@pytest.fixture(scope="module")
def spacy_tok():
    return SpacyTokenizer()


def test_base_tokenizer():
    assert list(BaseTokenizer()(["a b  c", ""])) == [["a", "b", "", "c"], [""]]
    assert list(BaseTokenizer(split_char=",")(["a,b"])) == [["a", "b"]]


def test_spacy_tokenizer(spacy_tok):
    assert WordTokenizer is SpacyTokenizer
    toks = list(spacy_tok(["The U.S. isn't 😀 big.", "", "xxbos xxmaj hello"]))
    assert toks[0] == ["The", "U.S.", "is", "n't", "😀", "big", "."]
    assert toks[1] == []
    assert toks[2] == ["xxbos", "xxmaj", "hello"]


def test_spacy_keeps_special_tokens_whole():
    tok = SpacyTokenizer(special_toks=["xx-odd", "xxbos"])
    assert list(tok(["a xx-odd b"])) == [["a", "xx-odd", "b"]]


def test_spacy_pickles_as_config(spacy_tok):
    data = pickle.dumps(spacy_tok)
    assert len(data) < 500
    assert list(pickle.loads(data)(["Hi there"])) == [["Hi", "there"]]


def test_spacy_bad_language():
    with pytest.raises(ValueError, match="zz-not-a-lang"):
        SpacyTokenizer(lang="zz-not-a-lang")


def test_tokenize_with_rules(spacy_tok):
    twr = TokenizeWithRules(spacy_tok)
    out = list(twr(["This is a TEST!!!! of <br /> the the the the Fastai   library."]))
    assert out == [["xxbos", "xxmaj", "this", "is", "a", "xxup", "test", "xxrep", "4", "!", "of", "\n▁", "xxwrep",
                    "4", "the", "xxmaj", "fastai", "library", "."]]
    assert tokenize1("", spacy_tok) == ["xxbos"]
    assert list(TokenizeWithRules(BaseTokenizer(), rules=[], post_rules=[])(["A B"])) == [["A", "B"]]
    assert pickle.loads(pickle.dumps(twr)).rules == twr.rules


def test_user_tokenizer_interface():
    class CharTok:
        def __call__(self, items):
            return (list(t) for t in items)

    assert tokenize1("Ab", CharTok(), rules=[str.lower], post_rules=[]) == ["a", "b"]


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_trains_caches_and_decodes(tmp_path, model_type):
    texts, _ = make_texts(200, seed=0)
    tok = SentencePieceTokenizer(vocab_sz=200, model_type=model_type, cache_dir=tmp_path)
    res = tok.setup(texts)
    model = res["sp_model"]
    assert model.endswith(".model") and SubwordTokenizer is SentencePieceTokenizer
    toks = next(iter(tok(["xxbos xxmaj the acting was great"])))
    assert toks[:2] == ["▁xxbos", "▁xxmaj"] or "xxbos" in toks
    assert tok.decode(toks) == "xxbos xxmaj the acting was great"
    # Same corpus and settings: the cached model is reused, not retrained.
    mtime = (tmp_path / model.split("/")[-1]).stat().st_mtime_ns
    tok2 = SentencePieceTokenizer(vocab_sz=200, model_type=model_type, cache_dir=tmp_path)
    assert tok2.setup(texts)["sp_model"] == model
    assert (tmp_path / model.split("/")[-1]).stat().st_mtime_ns == mtime
    # A pickled tokenizer reloads its model (what worker processes get).
    assert next(iter(pickle.loads(pickle.dumps(tok))(["the plot"]))) == next(iter(tok(["the plot"])))
    assert not list(tmp_path.glob(".tmp*"))


def test_sentencepiece_errors(tmp_path):
    with pytest.raises(ValueError, match="model_type"):
        SentencePieceTokenizer(model_type="nope")
    with pytest.raises(FileNotFoundError, match="missing.model"):
        SentencePieceTokenizer(sp_model=tmp_path / "missing.model")
    with pytest.raises(RuntimeError, match="setup"):
        list(SentencePieceTokenizer(cache_dir=tmp_path)(["x"]))
    with pytest.raises(ValueError, match="empty"):
        SentencePieceTokenizer(cache_dir=tmp_path).train(["  "])


def test_special_tokens_default_list():
    assert SpacyTokenizer().special_toks == text_spec_tok


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(list("ab AB.,'!?\n\t-😀é") + ["xxbos ", "don't "]), max_size=30).map("".join),
                min_size=1, max_size=4))
def test_spacy_fast_extraction_equals_token_texts(spacy_tok, texts):
    nlp = spacy_tok._tokenizer  # the same spaCy tokenizer, read the slow way (one Token object per token)
    assert list(spacy_tok(texts)) == [[t.text for t in nlp(x)] for x in texts]
