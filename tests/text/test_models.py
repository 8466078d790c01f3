"""AWD-LSTM and the language-model / classifier builders, in plain torch."""

import copy
import pickle

import pytest
import torch
from torch import nn

from tiers.text.awdlstm import (
    AWD_LSTM,
    EmbeddingDropout,
    RNNDropout,
    WeightDropout,
    awd_lstm_clas_config,
    awd_lstm_clas_split,
    awd_lstm_lm_config,
    awd_lstm_lm_split,
    dropout_mask,
)
from tiers.text.models import (
    LinearDecoder,
    PoolingLinearClassifier,
    SentenceEncoder,
    SequentialRNN,
    get_language_model,
    get_text_classifier,
    masked_concat_pool,
)

SMALL = dict(emb_sz=8, n_hid=16, n_layers=2)


def test_dropout_mask_and_rnn_dropout():
    torch.manual_seed(0)
    m = dropout_mask(torch.ones(1), (1000,), 0.5)
    assert set(m.unique().tolist()) == {0.0, 2.0}
    dp = RNNDropout(0.5)
    x = torch.ones(3, 7, 5)
    y = dp(x)
    # One mask per sequence, shared over time.
    assert torch.equal(y, y[:, :1].expand_as(y))
    dp.eval()
    assert dp(x) is x


def test_weight_dropout_changes_weights_in_training_only():
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 6, batch_first=True)
    wd = WeightDropout(lstm, 0.5)
    assert "weight_hh_l0_raw" in dict(wd.named_parameters())
    assert "module.weight_hh_l0" not in wd.state_dict()
    x = torch.randn(2, 3, 4)
    wd.train()
    a, b = wd(x)[0], wd(x)[0]
    assert not torch.allclose(a, b)
    wd.eval()
    assert torch.allclose(wd(x)[0], wd(x)[0])
    # Gradients reach the raw weight through the dropout.
    wd.train()
    wd(x)[0].sum().backward()
    assert wd.weight_hh_l0_raw.grad is not None


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(1)
    enc = nn.Embedding(50, 6, padding_idx=1)
    ed = EmbeddingDropout(enc, 0.5)
    words = torch.arange(50)[None]
    out = ed(words)
    zero_rows = (out[0] == 0).all(dim=1)
    assert 5 < int(zero_rows.sum()) < 45
    nz = ~zero_rows
    assert torch.allclose(out[0][nz], enc.weight[nz] * 2)
    ed.eval()
    assert torch.allclose(ed(words)[0], enc.weight)
    assert torch.allclose(ed(words, scale=2.0)[0], enc.weight * 2)


def test_awd_lstm_shapes_state_and_reset():
    torch.manual_seed(0)
    m = AWD_LSTM(30, **SMALL).eval()
    x = torch.randint(0, 30, (3, 5))
    out = m(x)
    assert out.shape == (3, 5, 8)
    assert [h.shape for h, _ in m.hidden] == [(1, 3, 16), (1, 3, 8)]
    # The state carries over: same input, different output, until reset.
    assert not torch.allclose(m(x), out)
    m.reset()
    assert torch.allclose(m(x), out, atol=1e-6)
    m(torch.randint(0, 30, (5, 2)))
    assert m.hidden[0][0].shape == (1, 5, 16)
    m(x[:2])
    assert m.hidden[1][0].shape == (1, 2, 8)
    assert m.hidden[0][0].grad_fn is None


def test_awd_lstm_bidir_and_bad_args():
    m = AWD_LSTM(30, emb_sz=8, n_hid=16, n_layers=2, bidir=True)
    assert m(torch.randint(0, 30, (2, 4))).shape == (2, 4, 8)
    with pytest.raises(ValueError, match="n_layers=0"):
        AWD_LSTM(30, 8, 16, 0)
    with pytest.raises(ValueError, match="even"):
        AWD_LSTM(30, 7, 16, 2, bidir=True)


def test_language_model_ties_weights_and_splits():
    lm = get_language_model(AWD_LSTM, 40, config=dict(awd_lstm_lm_config, **SMALL), drop_mult=0.5)
    assert isinstance(lm, SequentialRNN) and isinstance(lm[1], LinearDecoder)
    assert lm[1].decoder.weight is lm[0].encoder.weight
    assert lm[0].input_dp.p == pytest.approx(awd_lstm_lm_config["input_p"] * 0.5)
    logits, raw, dropped = lm(torch.randint(0, 40, (2, 6)))
    assert logits.shape == (2, 6, 40) and raw.shape == dropped.shape == (2, 6, 8)
    groups = awd_lstm_lm_split(lm)
    assert len(groups) == 3
    n_params = len({id(p) for p in lm.parameters()})
    assert sum(len(g) for g in groups) == n_params
    lm.reset()
    assert all((h == 0).all() for h, _ in lm[0].hidden)
    untied = get_language_model(AWD_LSTM, 40, config=dict(awd_lstm_lm_config, tie_weights=False, **SMALL))
    assert untied[1].decoder.weight is not untied[0].encoder.weight


def test_models_pickle_and_deepcopy():
    lm = get_language_model(AWD_LSTM, 20, config=dict(awd_lstm_lm_config, **SMALL))
    x = torch.randint(0, 20, (2, 3))
    lm.eval()
    ref = lm(x)[0]
    for clone in (pickle.loads(pickle.dumps(lm)), copy.deepcopy(lm)):
        clone.reset()
        lm.reset()
        assert torch.allclose(clone(x)[0], lm(x)[0])
    assert ref.shape == (2, 3, 20)


def test_state_dict_keys_follow_fastai_names():
    lm = get_language_model(AWD_LSTM, 20, config=dict(awd_lstm_lm_config, **SMALL))
    keys = set(lm.state_dict())
    assert {"0.encoder.weight", "0.encoder_dp.emb.weight", "0.rnns.0.weight_hh_l0_raw",
            "0.rnns.0.module.weight_ih_l0", "1.decoder.weight", "1.decoder.bias"} <= keys
    clas = get_text_classifier(AWD_LSTM, 20, 3, config=dict(awd_lstm_clas_config, **SMALL))
    assert "0.module.encoder.weight" in clas.state_dict()
    # The LM encoder loads into the classifier's encoder.
    clas[0].module.load_state_dict(lm[0].state_dict())


def test_masked_concat_pool_ignores_padding():
    out = torch.arange(12.0).view(1, 4, 3).repeat(2, 1, 1)
    mask = torch.tensor([[True, False, False, False], [False, False, True, True]])
    res = masked_concat_pool(out, mask)
    assert res.shape == (2, 9)
    assert res[0].tolist() == [9, 10, 11, 9, 10, 11, 6, 7, 8]
    assert res[1].tolist() == [3, 4, 5, 3, 4, 5, 1.5, 2.5, 3.5]


def test_sentence_encoder_padding_and_order_do_not_matter():
    torch.manual_seed(0)
    enc = AWD_LSTM(30, **SMALL).eval()
    se = SentenceEncoder(5, enc, pad_idx=1)
    x = torch.randint(2, 30, (4, 12))
    x[2, :5] = 1
    x[3, :10] = 1
    out, mask = se(x)
    assert out.shape == (4, 12, 8) and torch.equal(mask, x == 1)
    for r in range(4):
        alone, _ = se(x[r:r + 1, x[r] != 1])
        assert torch.allclose(alone[0], out[r, x[r] != 1], atol=1e-6)
    perm = torch.tensor([3, 0, 2, 1])
    out2, mask2 = se(x[perm])
    assert torch.allclose(out2[~mask2], out[perm][~mask2], atol=1e-6)
    se_short = SentenceEncoder(5, enc, pad_idx=1, max_len=5)
    assert se_short(x)[0].shape == (4, 2, 8)  # only chunks starting within the last max_len tokens


def test_text_classifier():
    torch.manual_seed(0)
    clas = get_text_classifier(AWD_LSTM, 30, 3, seq_len=5, config=dict(awd_lstm_clas_config, **SMALL),
                               lin_ftrs=[10], ps=[0.2], y_range=(0, 5))
    assert isinstance(clas[1], PoolingLinearClassifier)
    x = torch.randint(2, 30, (4, 12))
    x[3, :5] = 1
    logits, raw, _ = clas(x)
    assert logits.shape == (4, 3) and ((logits >= 0) & (logits <= 5)).all()
    assert len(awd_lstm_clas_split(clas)) == 4
    with pytest.raises(ValueError, match="ps="):
        PoolingLinearClassifier([24, 10, 3], [0.1], bptt=5)
    with pytest.raises(KeyError, match="model_meta"):
        get_text_classifier(nn.LSTM, 30, 3)
