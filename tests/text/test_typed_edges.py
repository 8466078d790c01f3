"""Inputs the type checker showed could reach the text layer unchecked (issue 19), and what they do now: a clear
error naming the value and the fix, or the work done, instead of a bare TypeError/AttributeError from deep inside."""

import numpy as np
import pytest
import torch
from torch import nn

from tiers.tensors import TensorText
from tiers.text.block import TextDataLoaders
from tiers.text.learner import LMLearner, TextLearner, language_model_learner
from tiers.text.loaders import LMDataLoader
from tiers.text.models import LinearDecoder
from tiers.text.samples import make_imdb_df
from tiers.text.tokenizers import BaseTokenizer, SpacyTokenizer
from tiers.text.transforms import Numericalize


@pytest.fixture(scope="module")
def lm_dls(tmp_path_factory):
    return TextDataLoaders.from_df(make_imdb_df(40, seed=1), path=tmp_path_factory.mktemp("lm"), text_col="text",
                                   is_lm=True, valid_col="is_valid", bs=4, seq_len=10, n_workers=1,
                                   tok_tfm=BaseTokenizer())


def docs(n: int = 6, length: int = 7) -> list[TensorText]:
    return [TensorText(torch.arange(i * length, (i + 1) * length)) for i in range(n)]


@pytest.mark.parametrize("bs", [None, 0, -2, 2.5])
def test_lm_loader_refuses_a_batch_size_that_is_not_a_positive_int(bs):
    # Was a TypeError on None (`int // None`), a ZeroDivisionError on 0, and "too few tokens" on a negative bs.
    with pytest.raises(ValueError, match=rf"^LMDataLoader: bs={bs!r} must be a positive int: the token stream is "
                                         r"cut into bs rows \(bs=None, no batching, has no meaning"):
        LMDataLoader(docs(), bs=bs, seq_len=3)


def test_lm_loader_takes_a_numpy_batch_size():
    dl = LMDataLoader(docs(), bs=np.int64(2), seq_len=3)
    x, y = next(iter(dl))
    assert x.shape == y.shape == (2, 3)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_spacy_tokenizer_that_would_split_the_special_tokens_says_so():
    # spaCy's Chinese tokenizer (characters) has no special cases: 'xxbos' would become x, x, b, o, s. Was an
    # AttributeError ('ChineseTokenizer' object has no attribute 'add_special_case').
    with pytest.raises(ValueError, match=r"^SpacyTokenizer: spaCy's 'zh' tokenizer \(ChineseTokenizer\) splits the "
                                         r"special token 'xxunk' .* use SentencePieceTokenizer\(lang=\.\.\.\) for "
                                         r"this language, or pass special_toks= that it keeps whole\.$"):
        SpacyTokenizer("zh")
    # Special tokens it keeps whole need no special case: the tokenizer works.
    assert list(SpacyTokenizer("zh", special_toks=["x"])(["你好 x"])) == [["你", "好", "x"]]


def test_numericalize_decode_without_a_vocabulary_says_so():
    # Was TypeError: 'NoneType' object is not subscriptable.
    with pytest.raises(RuntimeError, match="^Numericalize has no vocabulary to decode with: pass vocab=... or set "
                                           "it up"):
        Numericalize().decode(TensorText([2, 3]))
    assert Numericalize(vocab=["xxunk", "xxpad", "a"]).decode(TensorText([2, 0])) == ["a", "xxunk"]


@pytest.mark.parametrize("fnames", [["lm_wgts"], "ab", ("w", "v", "extra")])
def test_pretrained_fnames_must_be_a_pair(lm_dls, fnames):
    # Was a TypeError from load_pretrained (one name), or files named after the first two letters of a string.
    with pytest.raises(ValueError, match=r"^language_model_learner: pretrained_fnames=.* must name two files, the "
                                         r"weights and the vocabulary, without extension, in path/model_dir"):
        language_model_learner(lm_dls, pretrained_fnames=fnames)


def test_encoder_methods_on_a_model_without_parts_say_what_they_need(lm_dls, tmp_path):
    learn = TextLearner(lm_dls, nn.Linear(3, 3), path=tmp_path)
    # Was TypeError: 'Linear' object is not subscriptable.
    with pytest.raises(TypeError, match=r"^TextLearner: the model is a Linear, which has no parts to take the "
                                        r"encoder from; .* get_language_model and get_text_classifier build"):
        learn.save_encoder("enc")
    assert not (tmp_path / "models" / "enc.pth").exists()


class _Bigram(nn.Module):
    """A language model without hidden state (so without `reset`): next-token logits from the current token."""

    def __init__(self, vocab_sz: int):
        super().__init__()
        self.emb, self.out = nn.Embedding(vocab_sz, 8), nn.Linear(8, vocab_sz)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(x))


def test_lm_predict_with_a_model_that_has_no_hidden_state(lm_dls, tmp_path):
    # Was AttributeError ('_Bigram' object has no attribute 'reset'), raised again in the cleanup, which then left the
    # model in eval mode.
    torch.manual_seed(0)
    model = _Bigram(len(lm_dls.vocab))
    learn = LMLearner(lm_dls, model, path=tmp_path)
    model.train()
    text = learn.predict("this movie", n_words=4, temperature=0.5)
    words = text.split()
    assert words[0] == "this" and len(words) == 2 + 4  # the prompt, then 4 new tokens
    assert model.training


def test_linear_decoder_tied_to_a_module_without_a_weight_parameter():
    enc = nn.Module()
    enc.register_buffer("weight", torch.zeros(10, 8))  # a tensor, not a parameter: nothing to tie to
    with pytest.raises(TypeError, match=r"^LinearDecoder: tie_encoder \(Module\) has no weight parameter to tie "
                                        r"the decoder to; pass the embedding"):
        LinearDecoder(10, 8, tie_encoder=enc)
    emb = nn.Embedding(10, 8)
    assert LinearDecoder(10, 8, tie_encoder=emb).decoder.weight is emb.weight
