"""AUDIT3 E11: `save_encoder` keeps the language model's vocabulary with the weights, and `load_encoder` into a
classifier whose vocabulary differs matches the embedding rows by token (it loaded them by position: every row on
the wrong word at equal size, a raw size-mismatch error otherwise)."""

import random
import warnings

import pytest
import torch

from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config, awd_lstm_lm_config
from tiers.text.block import TextDataLoaders
from tiers.text.learner import language_model_learner, text_classifier_learner
from tiers.text.samples import make_imdb_df
from tiers.train.io.persist import StateMismatchError

SMALL = dict(emb_sz=16, n_hid=24, n_layers=2)
N_SPECIAL = 9  # xxunk, xxpad, xxbos, ... keep their ids: the models read xxpad as id 1


@pytest.fixture(scope="module")
def df():
    return make_imdb_df(120, seed=5)


@pytest.fixture(scope="module")
def lm(df, tmp_path_factory):
    "A language model trained one epoch, its encoder saved as 'enc'."
    dls = TextDataLoaders.from_df(df, path=tmp_path_factory.mktemp("encv"), text_col="text", is_lm=True,
                                  valid_col="is_valid", bs=8, seq_len=20, n_workers=1)
    torch.manual_seed(0)
    learn = language_model_learner(dls, AWD_LSTM, config=dict(awd_lstm_lm_config, **SMALL), pretrained=False)
    learn.fit(1, 1e-2)
    learn.save_encoder("enc")
    return learn


def _clas(lm, df, **kw):
    dls = TextDataLoaders.from_df(df, path=lm.path, text_col="text", label_col="label", valid_col="is_valid", bs=8,
                                  n_workers=1, **kw)
    torch.manual_seed(1)
    return text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL), pretrained=False)


def _emb(learn):
    return learn._encoder().encoder.weight.detach()


def _load_quietly(clas, file="enc"):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        clas.load_encoder(file)
    return [str(w.message) for w in got if "load_encoder" in str(w.message)]


def test_same_vocab_round_trip_is_bitwise(lm, df):
    clas = _clas(lm, df, text_vocab=lm.dls.vocab)
    assert _load_quietly(clas) == []
    want, got = lm._encoder().state_dict(), clas._encoder().state_dict()
    assert list(want) == list(got) and all(torch.equal(want[k], got[k]) for k in want)
    # the file is still a plain state dict: torch (and fastai's load_encoder) load it strictly
    file = lm.path / lm.model_dir / "enc.pth"
    assert lm._encoder().load_state_dict(torch.load(file, weights_only=True)).missing_keys == []


def test_permuted_vocab_rows_follow_their_words(lm, df):
    lm_vocab = list(lm.dls.vocab)
    words = [w for w in lm_vocab[N_SPECIAL:] if w != "xxfake"]
    random.Random(0).shuffle(words)
    vocab = lm_vocab[:N_SPECIAL] + words + ["xxfake"] * (len(lm_vocab) - N_SPECIAL - len(words))
    assert vocab != lm_vocab and sorted(vocab) == sorted(lm_vocab)  # same size, same words, other rows
    clas = _clas(lm, df, text_vocab=vocab)
    assert _load_quietly(clas) == []  # nothing was lost: no warning
    old, new = _emb(lm), _emb(clas)
    at = {w: i for i, w in enumerate(lm_vocab)}
    for i, w in enumerate(vocab):
        if w != "xxfake":
            assert torch.equal(new[i], old[at[w]]), w
    assert torch.equal(clas._encoder().encoder_dp.emb.weight, new)


def test_other_vocab_warns_and_new_tokens_start_from_the_mean(lm, df):
    lm_vocab = list(lm.dls.vocab)
    fresh = [f"zznew{i}" for i in range(5)]
    vocab = lm_vocab[:N_SPECIAL] + fresh + lm_vocab[N_SPECIAL + 10:]  # 10 LM words dropped: another size
    clas = _clas(lm, df, text_vocab=vocab)
    with pytest.warns(UserWarning, match=r"load_encoder: this learner's vocabulary \(\d+ tokens\) is not the one .*"
                                         r"enc\.pth was saved with \(\d+ tokens\); .* 5 of this learner's tokens were "
                                         r"not in the language model's vocabulary, so they start from the mean "
                                         r"embedding \(e\.g\. \['zznew0'.*text_vocab=dls_lm\.vocab"):
        clas.load_encoder("enc")
    old, new = _emb(lm), _emb(clas)
    at = {w: i for i, w in enumerate(lm_vocab)}
    for i, w in enumerate(vocab):
        want = old.mean(0) if w in fresh else old[at[w]]
        assert torch.equal(new[i], want), w


def test_audit_case_classifier_built_without_text_vocab(lm, df):
    # the audit's slip: the classifier's loaders made their own vocabulary from other rows
    clas = _clas(lm, df.iloc[::-1].reset_index(drop=True).iloc[:90])
    vocab, lm_vocab = list(clas.dls.vocab[0]), list(lm.dls.vocab)
    assert vocab != lm_vocab
    _load_quietly(clas)
    old, new = _emb(lm), _emb(clas)
    at = {w: i for i, w in enumerate(lm_vocab)}
    moved = [w for i, w in enumerate(vocab) if w in at and w != "xxfake" and at[w] != i]
    assert moved  # the case that was silently wrong (or refused) before
    assert all(torch.equal(new[i], old[at[w]]) for i, w in enumerate(vocab) if w in at and w != "xxfake")


def test_encoder_saved_without_a_vocab_still_loads(lm, df):
    # what save_encoder wrote before (and fastai writes): a bare state dict
    file = lm.path / lm.model_dir / "old_enc.pth"
    torch.save(lm._encoder().state_dict(), file)
    clas = _clas(lm, df, text_vocab=lm.dls.vocab)
    assert _load_quietly(clas, "old_enc") == []
    assert torch.equal(_emb(clas), _emb(lm))


def test_encoder_without_a_vocab_into_another_size_names_the_fix(lm, df):
    file = lm.path / lm.model_dir / "old_enc2.pth"
    torch.save(lm._encoder().state_dict(), file)
    lm_vocab = list(lm.dls.vocab)
    clas = _clas(lm, df, text_vocab=lm_vocab[:-8])
    before = {k: v.clone() for k, v in clas._encoder().state_dict().items()}
    with pytest.raises(StateMismatchError, match=r"encoder\.weight .* Nothing was loaded") as exc:
        clas.load_encoder("old_enc2")
    note = " ".join(getattr(exc.value, "__notes__", []))
    assert f"has {len(lm_vocab)} rows but this learner's vocabulary has {len(lm_vocab) - 8} tokens" in note
    assert "text_vocab=dls_lm.vocab" in note
    after = clas._encoder().state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # all or nothing
