"""Learners, RNN callbacks, encoder transfer, pretrained weights and text generation."""

import pickle

import pytest
import torch

from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config, awd_lstm_lm_config
from tiers.text.block import TextDataLoaders
from tiers.text.callbacks import ModelResetter, RNNCallback, RNNRegularizer, rnn_cbs
from tiers.text.learner import (
    LMLearner,
    TextLearner,
    _load_vocab,
    clean_raw_keys,
    decode_spec_tokens,
    language_model_learner,
    load_ignore_keys,
    match_embeds,
    text_classifier_learner,
)
from tiers.text.models import get_language_model
from tiers.text.samples import make_imdb_df
from tiers.train import Perplexity, accuracy

SMALL = dict(emb_sz=16, n_hid=24, n_layers=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm")
    df = make_imdb_df(100, seed=3)
    lm = TextDataLoaders.from_df(df, path=path, text_col="text", is_lm=True, valid_col="is_valid", bs=8,
                                 seq_len=20, n_workers=1)
    clas = TextDataLoaders.from_df(df, path=path, text_col="text", label_col="label", valid_col="is_valid",
                                   text_vocab=lm.vocab, bs=8, n_workers=1)
    return lm, clas


@pytest.fixture(scope="module")
def lm_learn(data):
    torch.manual_seed(0)
    learn = language_model_learner(data[0], AWD_LSTM, config=dict(awd_lstm_lm_config, **SMALL), pretrained=False,
                                   metrics=[accuracy, Perplexity()])
    learn.fit_one_cycle(1, 1e-2)
    return learn


def test_decode_spec_tokens():
    toks = ["xxmaj", "hello", "xxup", "you", "xxrep", "4", "!", "xxwrep", "3", "so", "xxrep", "x", "ok"]
    assert decode_spec_tokens(toks) == ["Hello", "YOU", "!!!!", "so", "so", "so", "x", "ok"]
    assert decode_spec_tokens([]) == []


def test_match_embeds_maps_rows_and_fills_mean():
    old = {"0.encoder.weight": torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]),
           "0.encoder_dp.emb.weight": torch.zeros(3, 2), "1.decoder.weight": torch.zeros(3, 2),
           "1.decoder.bias": torch.tensor([0.1, 0.2, 0.3])}
    new = match_embeds(old, ["a", "b", "c"], ["c", "zz", "a"])
    assert new["0.encoder.weight"].tolist() == [[3.0, 3.0], [2.0, 2.0], [1.0, 1.0]]
    assert torch.equal(new["1.decoder.weight"], new["0.encoder.weight"])
    assert torch.allclose(new["1.decoder.bias"], torch.tensor([0.3, 0.2, 0.1]))
    with pytest.raises(KeyError, match="encoder.weight"):
        match_embeds({"x": torch.zeros(1)}, [], [])


def test_clean_raw_keys_and_load_ignore_keys():
    w = {"0.rnns.0.weight_hh_l0_raw": torch.zeros(1), "0.rnns.0.module.weight_hh_l0": torch.zeros(1),
         "0.rnns.0.module.weight_ih_l0": torch.zeros(1)}
    assert list(clean_raw_keys(w)) == ["0.rnns.0.weight_hh_l0_raw", "0.rnns.0.module.weight_ih_l0"]
    lm = get_language_model(AWD_LSTM, 20, config=dict(awd_lstm_lm_config, **SMALL))
    other = get_language_model(AWD_LSTM, 20, config=dict(awd_lstm_lm_config, **SMALL))
    load_ignore_keys(other, {f"renamed.{k}": v for k, v in lm.state_dict().items()})
    assert torch.equal(other[0].encoder.weight, lm[0].encoder.weight)
    wrong = get_language_model(AWD_LSTM, 21, config=dict(awd_lstm_lm_config, **SMALL))
    with pytest.raises(ValueError, match="shape"):
        load_ignore_keys(wrong, lm.state_dict())


def test_vocab_unpickler_refuses_objects(tmp_path):
    good = tmp_path / "v.pkl"
    good.write_bytes(pickle.dumps(["a", "b"]))
    assert _load_vocab(good) == ["a", "b"]
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(torch.nn.Linear(1, 1)))
    with pytest.raises(pickle.UnpicklingError):
        _load_vocab(bad)


def test_language_model_learner_trains_and_generates(lm_learn):
    learn = lm_learn
    assert isinstance(learn, LMLearner)
    assert [type(cb) for cb in learn.cbs if isinstance(cb, (ModelResetter, RNNCallback, RNNRegularizer))] == \
        [ModelResetter, RNNCallback, RNNRegularizer]
    losses = learn.recorder.values[-1]
    assert len(losses) == 4 and losses[3] == pytest.approx(float(torch.tensor(losses[1]).exp()), rel=1e-4)
    torch.manual_seed(1)
    out = learn.predict("The acting was", n_words=6, temperature=0.8)
    assert out.startswith("The acting was") and len(out.split()) >= 8
    assert "xxunk" not in out and "xxbos" not in out
    assert all((h == 0).all() for h, _ in learn.model[0].hidden)  # reset after generating
    with pytest.raises(ValueError, match="temperature"):
        learn.predict("x", temperature=0)


def test_rnn_regularizer_adds_penalties(data):
    torch.manual_seed(0)
    learn = language_model_learner(data[0], AWD_LSTM, config=dict(awd_lstm_lm_config, **SMALL), pretrained=False,
                                   alpha=5.0, beta=5.0)
    b = data[0].one_batch()
    learn.model.train()
    learn.training = True
    learn.xb, learn.yb = (b[0],), (b[1],)
    learn.pred = learn.model(*learn.xb)
    learn("after_pred")
    rnn = next(cb for cb in learn.cbs if isinstance(cb, RNNCallback))
    assert learn.pred.shape[-1] == len(data[0].vocab) and rnn.raw_out.shape == (8, 20, 16)
    base = learn.loss_func(learn.pred, *learn.yb)
    learn.loss_grad = base
    learn("after_loss")
    ar = 5.0 * rnn.out.pow(2).mean()
    tar = 5.0 * (rnn.raw_out[:, 1:] - rnn.raw_out[:, :-1]).pow(2).mean()
    assert torch.allclose(learn.loss_grad, base + ar + tar)
    assert len(rnn_cbs()) == 3


def test_encoder_transfer_and_gradual_unfreezing(lm_learn, data):
    path = lm_learn.save_encoder("enc")
    assert path.is_file()
    clas = text_classifier_learner(data[1], AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL), pretrained=False,
                                   metrics=accuracy)
    assert isinstance(clas, TextLearner)
    clas.load_encoder("enc")
    assert torch.equal(clas.model[0].module.encoder.weight, lm_learn.model[0].encoder.weight)

    def trainable_groups():
        return [any(p.requires_grad for p in g["params"] if p.dim() > 1) for g in clas.opt.param_groups]

    assert trainable_groups() == [False, False, False, True]  # embedding, 2 LSTM layers, head
    clas.freeze_to(-2)
    assert trainable_groups() == [False, False, True, True]
    clas.unfreeze()
    assert all(trainable_groups())
    clas.fit_one_cycle(1, 1e-2)
    assert len(clas.recorder.values) == 1
    with pytest.raises(FileNotFoundError, match="nope"):
        clas.load_encoder("nope")


def test_pretrained_fnames_map_vocabularies(lm_learn, data):
    # Save the fine-tuned LM as a "pretrained" model with a shuffled vocabulary, then load it by name.
    vocab = list(data[0].vocab)
    perm = list(range(len(vocab)))
    perm[9], perm[10] = perm[10], perm[9]
    old_vocab = [vocab[i] for i in perm]
    sd = {k: v.clone() for k, v in lm_learn.model.state_dict().items()}
    for k in ("0.encoder.weight", "0.encoder_dp.emb.weight", "1.decoder.weight"):
        sd[k] = sd[k][perm]
    sd["1.decoder.bias"] = sd["1.decoder.bias"][perm]
    mdir = lm_learn.path / lm_learn.model_dir
    torch.save(sd, mdir / "pre.pth")
    (mdir / "pre_vocab.pkl").write_bytes(pickle.dumps(old_vocab))
    learn = language_model_learner(data[0], AWD_LSTM, config=dict(awd_lstm_lm_config, **SMALL),
                                   pretrained_fnames=["pre", "pre_vocab"])
    real = torch.tensor([w != "xxfake" for w in vocab])  # padding entries share one row: only real tokens map back
    assert torch.allclose(learn.model[0].encoder.weight[real], lm_learn.model[0].encoder.weight[real])
    assert learn.model[1].decoder.weight is learn.model[0].encoder.weight  # still tied after loading
    clas = text_classifier_learner(data[1], AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL), pretrained=False)
    clas.load_pretrained(mdir / "pre.pth", mdir / "pre_vocab.pkl", model=clas.model[0])
    assert torch.allclose(clas.model[0].module.encoder.weight[real], lm_learn.model[0].encoder.weight[real])


def test_pretrained_download_path_with_a_local_url(lm_learn, data, tmp_path, monkeypatch):
    """The real download path: untar_data fetches an archive (here from a file:// URL), extracts it into the model
    cache, and the learners load weights and vocabulary from it."""
    import tarfile

    from tiers.text.models import model_meta

    src = tmp_path / "tiny-lm"
    src.mkdir()
    torch.save(lm_learn.model.state_dict(), src / "lm.pth")
    (src / "itos.pkl").write_bytes(pickle.dumps(list(data[0].vocab)))
    archive = tmp_path / "tiny-lm.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="tiny-lm")
    monkeypatch.setenv("TIERS_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(model_meta[AWD_LSTM], "url", archive.as_uri())
    learn = language_model_learner(data[0], AWD_LSTM, config=dict(awd_lstm_lm_config, **SMALL))
    assert any((tmp_path / "home" / "models").rglob("lm.pth"))  # extracted into the model cache
    real = torch.tensor([w != "xxfake" for w in data[0].vocab])
    assert torch.allclose(learn.model[0].encoder.weight[real], lm_learn.model[0].encoder.weight[real])
    clas = text_classifier_learner(data[1], AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL))
    assert torch.allclose(clas.model[0].module.encoder.weight[real], lm_learn.model[0].encoder.weight[real])
    assert not any(p.requires_grad for p in clas.model[0].module.rnns[0].parameters())  # frozen after loading
    monkeypatch.setitem(model_meta[AWD_LSTM], "url", (tmp_path / "missing.tgz").as_uri())
    with pytest.raises(Exception, match="missing.tgz"):
        language_model_learner(data[0], AWD_LSTM, config=dict(awd_lstm_lm_config, **SMALL))


def test_export_and_load_learner_predict(lm_learn, data, tmp_path):
    from tiers.train import load_learner

    torch.manual_seed(0)
    clas = text_classifier_learner(data[1], AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL), pretrained=False)
    ref = clas.predict("What a wonderful film")
    loaded = load_learner(clas.export(tmp_path / "clas.pkl"))
    label, idx, probs = loaded.predict("What a wonderful film")
    assert label == ref[0] and torch.allclose(probs, ref[2])
    lm = load_learner(lm_learn.export(tmp_path / "lm.pkl"))
    assert lm.predict("The film", n_words=3).startswith("The film")


def test_lm_get_preds_joins_along_the_stream_and_show_results(lm_learn, data, capsys):
    preds, targs = lm_learn.get_preds()
    valid = data[0].valid
    assert preds.shape == (valid.bs, valid.bl, len(data[0].vocab)) and targs.shape == (valid.bs, valid.bl)
    clas = text_classifier_learner(data[1], AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL), pretrained=False)
    clas.show_results(max_n=2)
    out = capsys.readouterr().out
    assert "xxbos" in out and "prediction" in out
