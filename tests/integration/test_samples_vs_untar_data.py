"""The offline look-alikes (`make_mnist_tiny`...) and `untar_data`'s real datasets never share a folder (AUDIT3 E5).

Both orders: samples first, then `untar_data` against a local mirror (a real HTTP server on 127.0.0.1) must
download the dataset, not return the look-alike; a real extraction first, then `make_*`, must leave the extraction
alone. Plus the look-alikes an older tiers left in the data folder, and the all-or-nothing write.
"""

import io
import tarfile
import warnings

import pytest
from PIL import Image

from tiers.data import URLs, untar_data
from tiers.data.download import DownloadError
from tiers.data.external import tiers_path
from tiers.vision.data_samples import make_camvid_tiny, make_mnist_tiny, sample_data_path


def _real_mnist_tiny_tgz() -> bytes:
    "A stand-in for the real mnist_tiny.tgz: one image under `mnist_tiny/train/3/`, laid out as fastai's archive."
    png = io.BytesIO()
    Image.new("L", (28, 28), 200).save(png, format="PNG")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in [("mnist_tiny/train/3/real_7463.png", png.getvalue()), ("mnist_tiny/labels.csv",
                                                                                    b"name,label\ntrain/3/real_7463.png,3\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def mirror(server, home, monkeypatch):
    "`TIERS_DATA_URL` at a local server holding mnist_tiny.tgz where `untar_data(URLs.MNIST_TINY)` asks for it."
    server.files["/sample/mnist_tiny.tgz"] = _real_mnist_tiny_tgz()
    monkeypatch.setenv("TIERS_DATA_URL", server.url + "/")
    return server


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_samples_first_then_untar_data_downloads_the_real_dataset(mirror, home):
    sample = make_mnist_tiny(max_per_class=3)
    camvid = make_camvid_tiny(n_images=2)
    assert sample == sample_data_path("mnist_tiny") == home / "samples" / "mnist_tiny"
    assert camvid == home / "samples" / "camvid_tiny"
    before = _files(sample)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: the data folder holds no look-alike
        path = untar_data(URLs.MNIST_TINY)
    assert path == tiers_path("data") / "mnist_tiny" != sample
    assert _files(path) == ["labels.csv", "train/3/real_7463.png"]
    assert "/sample/mnist_tiny.tgz" in mirror.log
    assert _files(sample) == before  # the look-alike is left as it was


def test_real_extraction_first_then_make_leaves_it_alone(mirror, home):
    real = untar_data(URLs.MNIST_TINY)
    sample = make_mnist_tiny(max_per_class=3)
    assert sample != real and len(list((sample / "train" / "3").iterdir())) >= 2
    # asked to write into the extraction itself: refused, naming the folder and the fix, nothing written
    with pytest.raises(FileExistsError, match=r"mnist_tiny is a folder with other files.*nothing was written.*"
                                              r"make_mnist_tiny\(\) without dest.*or pass dest="):
        make_mnist_tiny(real, max_per_class=3)
    assert _files(real) == ["labels.csv", "train/3/real_7463.png"]
    assert untar_data(URLs.MNIST_TINY) == real and mirror.log.count("/sample/mnist_tiny.tgz") == 1


def test_a_sample_is_not_overwritten_by_another_maker(home):
    sample = make_mnist_tiny(max_per_class=2)
    with pytest.raises(FileExistsError, match="already holds the sample dataset written by make_mnist_tiny"):
        make_camvid_tiny(sample, n_images=2)
    assert make_mnist_tiny(sample) == sample  # the same maker again: returned at once


def test_a_look_alike_an_older_tiers_left_in_the_data_folder_is_replaced_by_the_download(mirror, home):
    old = tiers_path("data") / "mnist_tiny"
    (old / "train" / "3").mkdir(parents=True)
    (old / "train" / "3" / "0001.png").write_bytes(b"synthetic")
    (old / ".complete").write_text("ok\n")  # the marker the makers wrote before it named them
    with pytest.warns(UserWarning, match="holds the synthetic look-alike make_mnist_tiny wrote there"):
        path = untar_data(URLs.MNIST_TINY)
    assert path == old and _files(path) == ["labels.csv", "train/3/real_7463.png"]


def test_offline_the_old_look_alike_is_not_returned_in_place_of_the_dataset(mirror, home):
    old = tiers_path("data") / "mnist_tiny"
    old.mkdir(parents=True)
    (old / ".complete").write_text("make_mnist_tiny\n")
    mirror.status["/sample/mnist_tiny.tgz"] = 404
    with pytest.warns(UserWarning), pytest.raises(DownloadError) as info:
        untar_data(URLs.MNIST_TINY, retries=0)
    note = "\n".join(getattr(info.value, "__notes__", []))
    assert "holds only the synthetic look-alike written by make_mnist_tiny" in note
    assert "call make_mnist_tiny() itself" in note and str(home / "samples") in note


def test_a_failed_write_leaves_nothing_behind(home, tmp_path):
    dest = tmp_path / "out" / "mnist"
    with pytest.raises(ValueError):
        make_mnist_tiny(dest, size=0, max_per_class=1)  # PIL refuses a 0x0 image half-way through
    assert not dest.exists() and list((tmp_path / "out").iterdir()) == []
    dest.mkdir()  # an empty folder is fine to write into
    assert (make_mnist_tiny(dest, max_per_class=1) / "labels.csv").is_file()


def test_samples_and_data_must_be_different_folders(home):
    home.mkdir(parents=True)
    (home / "config.ini").write_text("[tiers]\nsamples = data\n")
    with pytest.raises(ValueError, match="samples folder and the data folder are both"):
        make_mnist_tiny(max_per_class=1)
