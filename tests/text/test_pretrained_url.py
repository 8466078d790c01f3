"""The pretrained AWD-LSTM download follows tiers.data's model server (`TIERS_MODEL_URL`), never the data mirror
(`TIERS_DATA_URL`): a tiny language model packed as `wt103-fwd.tgz` is served by a real HTTP server on 127.0.0.1."""

import hashlib
import io
import json
import pickle
import tarfile

import pytest
import torch

from tiers.data import DownloadError, URLs
from tiers.text.awdlstm import AWD_LSTM, awd_lstm_lm_config
from tiers.text.block import TextDataLoaders
from tiers.text.learner import language_model_learner
from tiers.text.models import get_language_model, model_meta
from tiers.text.samples import make_imdb_df

SMALL = dict(awd_lstm_lm_config, emb_sz=16, n_hid=24, n_layers=2)


def _pack(files: dict[str, bytes], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_pretrained_weights_come_from_the_model_server(server, tmp_path, monkeypatch):
    dls = TextDataLoaders.from_df(make_imdb_df(40, seed=1), path=tmp_path, text_col="text", is_lm=True,
                                  valid_col="is_valid", bs=4, seq_len=10, n_workers=1)
    vocab = list(dls.vocab)
    torch.manual_seed(1)
    pre = get_language_model(AWD_LSTM, len(vocab), config=SMALL)
    wgts = io.BytesIO()
    torch.save(pre.state_dict(), wgts)
    archive = _pack({"lstm_fwd.pth": wgts.getvalue(), "itos_wt103.pkl": pickle.dumps(vocab)}, "wt103-fwd")
    server.files["/models/wt103-fwd.tgz"] = archive
    server.files["/models/checks.json"] = json.dumps(
        {URLs.WT103_FWD: {"size": len(archive), "sha256": hashlib.sha256(archive).hexdigest()}}).encode()
    server.files["/mirror/modelzoo/wt103-fwd.tgz"] = b"not the weights"  # what a data mirror must never give
    monkeypatch.setenv("TIERS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TIERS_DATA_URL", server.url + "/mirror/")
    monkeypatch.setenv("TIERS_MODEL_URL", server.url + "/models/")
    monkeypatch.delenv("TIERS_CHECKS", raising=False)
    assert model_meta[AWD_LSTM]["url"] == URLs.WT103_FWD and model_meta[AWD_LSTM]["url_bwd"] == URLs.WT103_BWD

    learn = language_model_learner(dls, AWD_LSTM, config=SMALL)  # pretrained=True: the real download path
    assert server.log == ["/models/checks.json", "/models/wt103-fwd.tgz"]
    assert (tmp_path / "home" / "models" / "wt103-fwd" / "lstm_fwd.pth").exists()
    real = torch.tensor([w != "xxfake" for w in vocab])
    assert torch.allclose(learn.model[0].encoder.weight[real], pre[0].encoder.weight[real])

    with pytest.raises(DownloadError, match="wt103-bwd.tgz") as e:  # the backward model is not on the server
        language_model_learner(dls, AWD_LSTM, config=SMALL, backwards=True)
    msg = str(e.value)
    assert f"{server.url}/models/wt103-bwd.tgz" in msg and "TIERS_MODEL_URL" in msg and "pretrained=False" in msg
    assert not any(p.startswith("/mirror/") for p in server.log)
