"""Tokenizer and Numericalize transforms, and make_vocab."""

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.dispatch import L
from tiers.pipeline import TitledStr
from tiers.tensors import TensorText
from tiers.text.rules import text_spec_tok
from tiers.text.tokenizers import BaseTokenizer, SentencePieceTokenizer
from tiers.text.transforms import LMTensorText, Numericalize, Tokenizer, make_vocab, reverse_text


def test_make_vocab_special_first_min_freq_and_multiple_of_8():
    count = Counter({"a": 5, "b": 3, "c": 2, "xxbos": 10})
    v = make_vocab(count, min_freq=3)
    assert v[:9] == text_spec_tok and v[9:11] == ["a", "b"] and "c" not in v
    assert len(v) == 16 and v[11:] == ["xxfake"] * 5
    assert len(make_vocab(Counter({f"w{i}": 5 for i in range(7)}), min_freq=1)) == 16  # 16 stays 16 (no 8 extra)
    assert make_vocab(count, min_freq=1, max_vocab=10)[:10] == text_spec_tok + ["a"]
    with pytest.raises(ValueError, match="max_vocab=0"):
        make_vocab(count, max_vocab=0)


def test_numericalize_setup_unknowns_and_decode():
    num = Numericalize(min_freq=2)
    num.setup([["a", "a", "b"], ["a", "c", "c"]])
    assert num.vocab[9:11] == ["a", "c"]
    ids = num(["a", "zzz", "c"])
    assert isinstance(ids, TensorText) and ids.tolist() == [9, 0, 10]
    assert "zzz" not in num.o2i  # unknown tokens are not inserted into the mapping
    assert list(num.decode(ids)) == ["a", "xxunk", "c"]
    assert num(L(["a"])).tolist() == [9]
    fixed = Numericalize(vocab=["xxunk", "xxpad", "x"])
    assert fixed(["x", "y"]).tolist() == [2, 0]
    with pytest.raises(RuntimeError, match="vocabulary"):
        Numericalize()(["a"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["the", "cat", "sat", "ÉCOLE", "😀", "a b"]), max_size=12), min_size=1,
                max_size=5))
def test_numericalize_round_trip(docs):
    num = Numericalize(min_freq=1)
    num.setup(docs)
    for d in docs:
        assert list(num.decode(num(d))) == d


def test_tokenizer_transform_encodes_and_decodes():
    tok = Tokenizer(BaseTokenizer())
    toks = tok("Hello  WORLD")
    assert isinstance(toks, L) and list(toks) == ["xxbos", "xxmaj", "hello", "xxup", "world"]
    assert tok(["already", "tokens"]) == ["already", "tokens"]
    dec = tok.decode(toks)
    assert isinstance(dec, TitledStr) and dec == "xxbos xxmaj hello xxup world"
    assert Tokenizer(BaseTokenizer, rules=[])("A b") == ["A", "b"]


def test_tokenizer_from_df_tokenizes_whole_frame_in_setup():
    df = pd.DataFrame({"text": ["One two", "Three"], "label": ["a", "b"]})
    tok = Tokenizer.from_df("text", tok=BaseTokenizer(), n_workers=1)
    assert tok.train_setup is False

    class Holder:  # anything with a settable `items`, like a TfmdLists
        items = L(df, use_list=None)

    h = Holder()
    tok.setup(h)
    res = h.items.items
    assert res["text"].tolist() == [["xxbos", "xxmaj", "one", "two"], ["xxbos", "xxmaj", "three"]]
    assert tok.get_lengths(res) == [4, 3] and tok.counter["xxbos"] == 2


def test_tokenizer_from_folder_reads_token_files(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Good MOVIE")
    tok = Tokenizer.from_folder(tmp_path / "docs", tok=BaseTokenizer(), n_workers=1)
    assert (tmp_path / "docs_tok" / "a.txt").is_file()
    f = tmp_path / "docs" / "a.txt"
    assert list(tok(f)) == ["xxbos", "xxmaj", "good", "xxup", "movie"]
    assert tok.get_lengths([f]) == [5] and tok.counter["movie"] == 1
    other = tmp_path / "other.txt"
    other.write_text("new")
    assert list(tok(Path(other))) == ["xxbos", "new"]


def test_tokenizer_uses_subword_decode(tmp_path):
    sp = SentencePieceTokenizer(vocab_sz=60, cache_dir=tmp_path)
    sp.setup(["the cat sat on the mat"] * 30)
    tok = Tokenizer(sp)
    assert tok.decode(tok("The cat")) == "xxbos xxmaj the cat"


def test_lm_tensor_text_and_reverse():
    x = LMTensorText(torch.tensor([1, 2, 3]))
    assert isinstance(x, TensorText)
    r = reverse_text(TensorText(torch.tensor([1, 2, 3])))
    assert r.tolist() == [3, 2, 1] and isinstance(r, TensorText)
