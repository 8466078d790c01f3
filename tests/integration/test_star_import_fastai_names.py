"""Names a fastai star import gives that a notebook uses unimported (AUDIT3 E8): every application's `all` carries
them, as the same objects (`copy` is the standard module, not something of tiers' that shadows it).

They live here, not in tests/<layer>, because each layer's own environment holds no sibling layers. Each star import
runs into a fresh namespace with `exec`, as a notebook's first cell would.
"""

import importlib
import sys

import pytest
import torch

STDLIB = ["sys", "glob", "copy", "io", "csv", "tempfile", "types", "hashlib", "gzip", "zipfile", "tarfile",
          "mimetypes", "bz2", "string", "multiprocessing", "threading", "urllib", "concurrent"]


def _star(app: str) -> dict:
    ns: dict = {}
    exec(f"from tiers.{app}.all import *", ns)
    return ns


@pytest.mark.parametrize("app", ["data", "train", "vision", "text", "tabular", "collab"])
def test_every_app_star_import_carries_fastais_everyday_names(app):
    from tiers.data.download import download_url
    from tiers.data.external import Config

    ns = _star(app)
    missing = [m for m in STDLIB if ns.get(m) is not importlib.import_module(m)]
    missing += [n for n, o in [("as_tensor", torch.as_tensor), ("download_url", download_url), ("Config", Config)]
                if ns.get(n) is not o]
    assert not missing, f"tiers.{app}.all lacks (or shadows) {missing}"
    assert ns["urllib"].request.urlopen and ns["concurrent"].futures.ThreadPoolExecutor  # the submodules come too


def test_the_everyday_lines_run(tmp_path):
    # `sys.path.append`, `glob.glob`, `copy.deepcopy(learn.model)`, `as_tensor`: notebook lines that hit NameError
    ns = _star("vision")
    ns["folder"] = str(tmp_path)
    exec("sys.path.append(folder)", ns)
    try:
        assert sys.path[-1] == str(tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
    exec("""
(Path(folder) / "a.txt").write_text("x")
assert [Path(p).name for p in glob.glob(folder + "/*.txt")] == ["a.txt"]
m = nn.Linear(2, 1); m2 = copy.deepcopy(m)
assert m2 is not m and torch.equal(m2.weight, m.weight)
assert as_tensor([1, 2]).tolist() == [1, 2] and isinstance(io.BytesIO(), io.BytesIO)
with concurrent.futures.ThreadPoolExecutor(1) as ex:
    assert ex.submit(len, "ab").result() == 2
""", ns)


def test_awd_qrnn_is_refused_at_use_naming_awd_lstm():
    ns = _star("text")
    with pytest.raises(NotImplementedError, match=r"AWD_QRNN is not available in tiers.*Use AWD_LSTM"):
        ns["AWD_QRNN"](100, 8)
    dls = ns["TextDataLoaders"].from_df(ns["make_imdb_df"](24, seed=0), text_col="text", label_col="label",
                                        valid_col="is_valid", is_lm=True, bs=4, seq_len=8)
    with pytest.raises(KeyError, match=r"AWD_QRNN \(not available in tiers.*Use AWD_LSTM"):
        ns["language_model_learner"](dls, ns["AWD_QRNN"], pretrained=False)


def test_config_reads_the_tiers_settings(tmp_path, monkeypatch):
    from tiers.dispatch import Path

    monkeypatch.delenv("TIERS_DATA_URL", raising=False)
    (tmp_path / "config.ini").write_text("[tiers]\ndata = /big/datasets\n")
    c = _star("collab")["Config"](tmp_path)
    assert c.data == Path("/big/datasets") and isinstance(c.data, Path) and c["archive"] == tmp_path / "archive"
    assert c.path("samples") == tmp_path / "samples" and c.base_url == "" and "model" in c
    assert c.get("nope", 3) == 3 and c.config_file == tmp_path / "config.ini"
    with pytest.raises(AttributeError, match="no setting 'nope'"):
        c.nope  # noqa: B018
    with pytest.raises(KeyError, match="not a folder setting"):
        c.path("base_url")
