"""`learn.export_onnx` for an AWD-LSTM text classifier (extra tiers-train[onnx]): the graph takes padded int64 token
ids with a dynamic batch AND sequence length, and onnxruntime matches PyTorch (`learn.predict`, the model itself) on
batches of other sizes and lengths than the one exported, including texts longer than one `bptt` chunk; a language
model and a bidirectional encoder are refused with the reason; the stateless twin equals the model."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from tiers.data import RegressionBlock
from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config, awd_lstm_lm_config
from tiers.text.block import TextDataLoaders
from tiers.text.learner import language_model_learner, text_classifier_learner
from tiers.text.models import get_text_classifier
from tiers.text.onnx_export import OnnxTextClassifier, check_twin
from tiers.text.samples import make_imdb_df

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime", "onnxscript")),
    reason="ONNX export is the optional extra tiers-train[onnx]")

SMALL = dict(awd_lstm_clas_config, emb_sz=16, n_hid=24, n_layers=2)
SEQ = 8  # bptt: most texts span several chunks, so the chunked encoder's state handling is exercised


def _df():
    df = make_imdb_df(60, seed=2)
    df["text"] = [t + " and then more" * (i % 9) for i, t in enumerate(df.text)]  # lengths 10..60 tokens
    return df


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    df = _df()
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8, n_workers=1,
                                  seq_len=SEQ)
    learn = text_classifier_learner(dls, AWD_LSTM, config=SMALL, pretrained=False, seq_len=SEQ,
                                    path=tmp_path_factory.mktemp("onnx_text"))
    learn.fit(1, 1e-2)
    return learn, df


def _plain(x):
    return x.as_subclass(torch.Tensor)


@pytest.mark.parametrize("texts", [slice(0, 5), slice(10, 13), slice(0, 60)])  # 5, 3 and 60 rows
def test_stateless_twin_equals_the_model(trained, texts):
    learn, df = trained
    x = _plain(learn.dls.test_dl(list(df.text[texts])).one_batch()[0])
    assert x.shape[1] > 2 * SEQ  # several chunks
    check_twin(OnnxTextClassifier(learn.model), learn.model, x, atol=1e-6)


def test_twin_keeps_the_last_max_len_tokens_like_sentence_encoder():
    torch.manual_seed(0)
    model = get_text_classifier(AWD_LSTM, 50, 2, seq_len=4, config=SMALL, max_len=8).eval()
    x = torch.randint(2, 50, (3, 21))
    x[1, :8] = 1   # two chunks of padding before a shorter text
    x[2, :12] = 1
    x[2, 20:] = 1  # and padding after it
    check_twin(OnnxTextClassifier(model), model, x, atol=1e-6)


@needs_onnx
@pytest.mark.slow
def test_export_runs_in_onnxruntime_on_any_batch_and_length(trained):
    import onnx
    import onnxruntime

    learn, df = trained
    fname = learn.export_onnx("clas")
    assert fname == learn.path / learn.model_dir / "clas.onnx" and fname.is_file()
    assert type(learn.model).__name__ == "SequentialRNN"  # the learner's model is back
    proto = onnx.load(str(fname))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["tiers.inputs"])["x"]["shape"] == ["batch", "seq_len"]
    vocab = json.loads(meta["tiers.vocab"])
    assert vocab[0][:2] == ["xxunk", "xxpad"] and vocab[1] == ["negative", "positive"]
    sess = onnxruntime.InferenceSession(str(fname), providers=["CPUExecutionProvider"])
    shapes = set()
    for rows in [slice(0, 5), slice(20, 23), slice(30, 60), slice(7, 8)]:
        texts = list(df.text[rows])
        tdl = learn.dls.test_dl(texts)
        x = _plain(tdl.one_batch()[0])
        shapes.add(tuple(x.shape))
        got = sess.run(None, {"x": x.numpy()})[0]
        learn.model.eval()
        with torch.no_grad():
            want = torch.softmax(learn.model(x)[0], dim=1).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)
    # one text at a time (no padding), as learn.predict sees it
    for text in df.text[:3]:
        x = _plain(learn.dls.test_dl([text]).one_batch()[0])
        got = sess.run(None, {"x": x.numpy()})[0][0]
        np.testing.assert_allclose(got, learn.predict(text)[2].numpy(), atol=1e-5)
    assert len({s[0] for s in shapes}) > 2 and len({s[1] for s in shapes}) > 2  # other batch sizes and lengths


def test_twin_refuses_padding_the_encoder_reads_otherwise():
    # 3 pads then text inside the first 4-token chunk: SentenceEncoder skips that row's first chunk (text included)
    torch.manual_seed(0)
    model = get_text_classifier(AWD_LSTM, 50, 2, seq_len=4, config=SMALL)
    x = torch.randint(2, 50, (2, 12))
    x[1, :3] = 1
    with pytest.raises(RuntimeError, match=r"differs from the model by .*batch of shape \(2, 12\).*pad_input_chunk"):
        check_twin(OnnxTextClassifier(model), model, x)
    assert model.training  # left as it was


@needs_onnx
def test_regression_text_model_exports_its_raw_values(tmp_path):
    df = _df()
    df["score"] = np.linspace(0.5, 4.5, len(df)) + (df.label == "positive")
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="score", valid_col="is_valid", bs=8, n_workers=1,
                                  seq_len=SEQ, y_block=RegressionBlock())
    learn = text_classifier_learner(dls, AWD_LSTM, config=SMALL, pretrained=False, seq_len=SEQ, path=tmp_path)
    learn.fit(1, 1e-2)
    import onnxruntime

    sess = onnxruntime.InferenceSession(str(learn.export_onnx("reg")), providers=["CPUExecutionProvider"])
    x = _plain(learn.dls.test_dl(list(df.text[:6])).one_batch()[0])
    learn.model.eval()
    with torch.no_grad():
        want = learn.model(x)[0].numpy()
    got = sess.run(None, {"x": x.numpy()})[0]
    assert got.shape == (6, 1)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_language_model_is_refused_with_the_reason(tmp_path):
    df = _df()
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_col="is_valid", bs=4, seq_len=SEQ,
                                  n_workers=1)
    lm = language_model_learner(dls, AWD_LSTM, config=dict(awd_lstm_lm_config, emb_sz=16, n_hid=24, n_layers=2),
                                pretrained=False, path=tmp_path)
    with pytest.raises(TypeError, match="language model .*not exported to ONNX.*text_classifier_learner"):
        lm.export_onnx("lm")
    assert not (tmp_path / "models" / "lm.onnx").exists()


def test_bidirectional_encoder_is_refused_with_the_reason():
    model = get_text_classifier(AWD_LSTM, 50, 2, config=dict(SMALL, bidir=True))
    with pytest.raises(ValueError, match=r"bidirectional AWD_LSTM \(bidir=True\) is not exported"):
        OnnxTextClassifier(model)
