"""`untar_data(URLs.X)` against a local team mirror, and the paper's listings on what it downloads.

`tools/build_sample_mirror.py` packs the generated sample datasets under their classic names, with their
`checks.json` next to them; here they are served by `http.server` on 127.0.0.1 and `TIERS_DATA_URL` points at that
server, exactly what a team would do (the mirror's `checks.json` is found there, nothing else to configure). The listings below are the paper's (and fastai's docs'),
word for word except for the import line, with tiny training budgets (one epoch, small models, no pretrained
weights since nothing can be downloaded).
"""

import http.server
import importlib.util
import json
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_sample_mirror", ROOT / "tools" / "build_sample_mirror.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the test output should not list every request
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirror")
    registry = _load_builder().build_mirror(out)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"dir": out, "url": f"http://127.0.0.1:{server.server_address[1]}/", "registry": registry}
    server.shutdown()
    server.server_close()
    thread.join(5)


def _home(tmp: Path, checks: Path | None = None) -> Path:
    home = tmp / "tiers_home"
    home.mkdir()
    if checks is not None:
        (home / "config.ini").write_text(f"[tiers]\nchecks_files = {checks}\n")
    return home


@pytest.fixture()
def home(mirror, tmp_path, monkeypatch):
    h = _home(tmp_path)
    monkeypatch.delenv("TIERS_CHECKS", raising=False)
    monkeypatch.delenv("TIERS_MODEL_URL", raising=False)
    monkeypatch.setenv("TIERS_HOME", str(h))
    monkeypatch.setenv("TIERS_DATA_URL", mirror["url"])
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # shared 2-core machine: small models run faster on one thread
    yield h
    torch.set_num_threads(n)


def test_mirror_is_complete_and_consistent(mirror):
    from tiers.data import URLs
    from tiers.data.download import file_sha256

    names = ["MNIST_TINY", "CAMVID_TINY", "COCO_TINY", "IMDB_SAMPLE", "ADULT_SAMPLE", "ML_SAMPLE"]
    on_disk = json.loads((mirror["dir"] / "checks.json").read_text())
    assert on_disk == mirror["registry"]
    assert sorted(on_disk) == sorted(getattr(URLs, n) for n in names)
    for url, entry in on_disk.items():
        f = mirror["dir"] / url[len(URLs.S3):]
        assert f.stat().st_size == entry["size"] and file_sha256(f) == entry["sha256"]


def test_pack_folder_is_deterministic(tmp_path):
    pack = _load_builder().pack_folder
    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "b" / "x.txt").write_text("x")
    (src / "a.csv").write_text("a,b\n1,2\n")
    first = pack(src, tmp_path / "one.tgz", "demo").read_bytes()
    (src / "a.csv").touch()  # a new timestamp must not change the archive
    assert pack(src, tmp_path / "two.tgz", "demo").read_bytes() == first
    (src / "a.csv").write_text("a,b\n1,3\n")
    assert pack(src, tmp_path / "three.tgz", "demo").read_bytes() != first


def test_layouts_after_untar(home, mirror):
    from tiers.data import URLs, untar_data

    camvid = untar_data(URLs.CAMVID_TINY)
    assert camvid == home / "data" / "camvid_tiny"
    codes = np.loadtxt(camvid / "codes.txt", dtype=str)
    assert list(codes) == ["Background", "Circle", "Square", "Triangle"]
    stems = sorted(p.stem for p in (camvid / "images").iterdir())
    assert stems and sorted(p.stem for p in (camvid / "labels").iterdir()) == [f"{s}_P" for s in stems]
    coco = untar_data(URLs.COCO_TINY)
    doc = json.loads((coco / "train.json").read_text())
    assert {im["file_name"] for im in doc["images"]} == {p.name for p in (coco / "train").iterdir()}
    assert not (camvid / ".complete").exists()  # the generators' bookkeeping stays out of the archives
    # Downloads are verified against the registry the mirror serves, so nothing new is recorded in the own one.
    assert not (home / "checks.json").exists()
    copies = [json.loads(p.read_text()) for p in (home / "registries").iterdir()]
    assert copies == [mirror["registry"]]


def test_vision_listing(home):
    from tiers.vision.all import (URLs, ImageDataLoaders, error_rate, untar_data, vision_learner,  # noqa: I001
                                  xresnet18)

    torch.manual_seed(0)
    path = untar_data(URLs.MNIST_TINY)
    dls = ImageDataLoaders.from_folder(path)
    learn = vision_learner(dls, xresnet18, pretrained=False, metrics=error_rate)
    learn.fit_one_cycle(1)
    assert sorted(p.name for p in (path / "train").iterdir()) == ["3", "7"]
    assert list(dls.vocab) == ["3", "7"]
    valid_loss, err = learn.recorder.values[-1][1:]
    assert np.isfinite(valid_loss) and 0 <= err <= 1


def test_tabular_listing(home):
    from tiers.tabular.all import (URLs, Categorify, FillMissing, Normalize, TabularDataLoaders,  # noqa: I001
                                   accuracy, tabular_learner, untar_data)

    torch.manual_seed(0)
    path = untar_data(URLs.ADULT_SAMPLE)
    dls = TabularDataLoaders.from_csv(path / "adult.csv", path=path, y_names="salary",
                                      cat_names=["workclass", "education", "marital-status", "occupation",
                                                 "relationship", "race"],
                                      cont_names=["age", "fnlwgt", "education-num"],
                                      procs=[Categorify, FillMissing, Normalize])
    assert dls.path == path
    learn = tabular_learner(dls, metrics=accuracy)
    learn.fit_one_cycle(1)
    assert learn.recorder.values[-1][-1] > 0.6  # a learnable signal: the majority class alone is ~0.55


def test_collab_listing(home):
    from tiers.collab.all import URLs, CollabDataLoaders, collab_learner, untar_data  # noqa: I001

    torch.manual_seed(0)
    path = untar_data(URLs.ML_SAMPLE)
    dls = CollabDataLoaders.from_csv(path / "ratings.csv")
    learn = collab_learner(dls, y_range=(0, 5.5))
    learn.fine_tune(1)
    ratings = pd.read_csv(path / "ratings.csv")
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    # One epoch only gets near the predict-the-mean error (the spread); it must not be far above it.
    assert float(learn.validate()[0]) ** 0.5 < 1.1 * ratings["rating"].std()


def test_text_listing(home):
    from tiers.text.all import (URLs, AWD_LSTM, TextDataLoaders, accuracy, awd_lstm_clas_config,  # noqa: I001
                                text_classifier_learner, untar_data)

    torch.manual_seed(0)
    path = untar_data(URLs.IMDB_SAMPLE)
    dls = TextDataLoaders.from_csv(path=path, csv_fname="texts.csv", text_col="text", label_col="label",
                                   valid_col="is_valid", n_workers=1)
    tiny = dict(awd_lstm_clas_config, emb_sz=32, n_hid=64, n_layers=1)
    learn = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, metrics=accuracy, pretrained=False, config=tiny)
    learn.fit_one_cycle(1)
    assert list(dls.vocab[1]) == ["negative", "positive"]
    assert np.isfinite(learn.recorder.values[-1][1])


def test_a_registry_with_a_wrong_checksum_is_refused_and_extracts_nothing(mirror, tmp_path, monkeypatch):
    # A team registry (checks_files) with a wrong sha256 contradicts the mirror's own: nothing is downloaded.
    from tiers.data import DownloadError, URLs, untar_data

    bad = json.loads((mirror["dir"] / "checks.json").read_text())
    good = bad[URLs.MNIST_TINY]["sha256"]
    bad[URLs.MNIST_TINY]["sha256"] = "0" * 64
    (tmp_path / "bad_checks.json").write_text(json.dumps(bad))
    home = _home(tmp_path, tmp_path / "bad_checks.json")
    monkeypatch.setenv("TIERS_HOME", str(home))
    monkeypatch.setenv("TIERS_DATA_URL", mirror["url"])
    monkeypatch.delenv("TIERS_CHECKS", raising=False)
    with pytest.raises(DownloadError, match="disagree") as e:
        untar_data(URLs.MNIST_TINY, retries=1)
    msg = str(e.value)
    assert "mnist_tiny.tgz" in msg and good in msg and "0" * 64 in msg and "registry" in msg
    data = home / "data"
    assert not (data / "mnist_tiny").exists()
    assert not data.exists() or not any(data.iterdir())  # no half-extracted temporary folder either
    assert not (home / "archive" / "mnist_tiny.tgz").exists()
