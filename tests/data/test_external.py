"""untar_data / download_data against a real HTTP server on 127.0.0.1 serving archives built here."""

import hashlib
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from tiers.data.download import Progress, archive_stem, extract_archive
from tiers.data.external import (
    DownloadError,
    URLs,
    download_data,
    load_checks,
    resolve_url,
    tiers_cfg,
    tiers_path,
    untar_data,
)


def make_tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


TINY = make_tgz({f"tiny/train/{i}.txt": random.Random(i).randbytes(20_000) for i in range(5)})  # ~100 KB


def test_untar_extracts_records_checks_and_caches(server, home):
    server.files["/d/tiny.tgz"] = TINY
    url = server.url + "/d/tiny.tgz"
    path = untar_data(url, progress=False)
    assert path == home / "data" / "tiny" and sorted(p.name for p in (path / "train").iterdir())[0] == "0.txt"
    assert (home / "archive" / "tiny.tgz").stat().st_size == len(TINY)
    entry = load_checks()[url]
    assert entry == {"size": len(TINY), "sha256": hashlib.sha256(TINY).hexdigest()}
    n = len(server.log)
    assert untar_data(url) == path and len(server.log) == n  # cached: no request


def test_mirror_base_url_serves_the_classic_names(server, home, monkeypatch):
    server.files["/mirror/sample/mnist_tiny.tgz"] = TINY
    monkeypatch.setenv("TIERS_DATA_URL", server.url + "/mirror/")
    assert resolve_url(URLs.MNIST_TINY) == server.url + "/mirror/sample/mnist_tiny.tgz"
    path = untar_data(URLs.MNIST_TINY, progress=False)
    assert path.name == "mnist_tiny" and (path / "train" / "3.txt").exists()
    assert URLs.path(URLs.MNIST_TINY) == home / "archive" / "mnist_tiny.tgz"


def test_dropped_connection_resumes_with_range(server, home):
    server.files["/d/tiny.tgz"] = TINY
    server.drop_once.add("/d/tiny.tgz")
    path = untar_data(server.url + "/d/tiny.tgz", progress=False)
    assert (path / "train" / "4.txt").exists()
    ranges = [r for _, r in server.requests if r]
    assert len(ranges) == 1 and int(ranges[0][6:].rstrip("-")) > 0  # the second request resumed mid-file


def test_server_without_range_support_restarts(server, home):
    server.files["/d/tiny.tgz"] = TINY
    server.drop_once.add("/d/tiny.tgz")
    server.ranges = False
    f = download_data(server.url + "/d/tiny.tgz", progress=False)
    assert f.read_bytes() == TINY


def test_wrong_checksum_leaves_nothing(server, home):
    server.files["/d/tiny.tgz"] = TINY
    url = server.url + "/d/tiny.tgz"
    bad = {"size": len(TINY), "sha256": "0" * 64}
    with pytest.raises(DownloadError, match="sha256 of the file is"):
        untar_data(url, progress=False, retries=1, checks=bad)
    assert not (home / "archive" / "tiny.tgz").exists() and not (home / "data" / "tiny").exists()
    assert not (home / "archive" / "tiny.tgz.part").exists()
    with pytest.raises(DownloadError, match="expects 12"):
        download_data(url, progress=False, retries=0, checks={"size": 12})


def test_registry_file_entry_is_enforced(server, home):
    server.files["/d/tiny.tgz"] = TINY
    url = server.url + "/d/tiny.tgz"
    home.mkdir(parents=True)
    (home / "checks.json").write_text(json.dumps({url: {"size": 5}}))
    with pytest.raises(DownloadError, match="expects 5"):
        download_data(url, progress=False, retries=0)


def test_truncated_archive_is_reported_and_removed(server, home):
    server.files["/d/broken.tgz"] = TINY[: len(TINY) // 2]
    url = server.url + "/d/broken.tgz"
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        untar_data(url, progress=False)
    data = home / "data"
    assert not (data / "broken").exists() and list(data.iterdir()) == []  # no half-extracted or temp folder
    assert not (home / "archive" / "broken.tgz").exists()  # deleted so the next call downloads it again
    server.files["/d/broken.tgz"] = TINY
    assert (untar_data(url, progress=False, force_download=True) / "train").is_dir()


def test_missing_file_fails_fast(server, home):
    with pytest.raises(DownloadError, match="404"):
        download_data(server.url + "/nope.tgz", progress=False)
    assert len(server.log) == 1  # a 404 is not retried


def test_config_file_sets_folders(server, home, tmp_path):
    home.mkdir(parents=True)
    (home / "config.ini").write_text(f"[tiers]\ndata = {tmp_path / 'datasets'}\narchive = dl\n")
    assert tiers_cfg()["archive"] == str(home / "dl") and tiers_path("data") == tmp_path / "datasets"
    server.files["/d/tiny.tgz"] = TINY
    assert untar_data(server.url + "/d/tiny.tgz", progress=False) == tmp_path / "datasets" / "tiny"
    with pytest.raises(ValueError, match="unknown folder"):
        tiers_path("nowhere")


def test_force_download_replaces(server, home):
    server.files["/d/tiny.tgz"] = TINY
    url = server.url + "/d/tiny.tgz"
    path = untar_data(url, progress=False)
    (path / "stale.txt").write_text("old")
    new = make_tgz({"tiny/fresh.txt": b"new"})
    server.files["/d/tiny.tgz"] = new
    path = untar_data(url, progress=False, force_download=True, checks={"size": len(new)})
    assert (path / "fresh.txt").exists() and not (path / "stale.txt").exists()


def test_extract_zip_flat_archive_and_stale_temp(tmp_path):
    z = tmp_path / "flat.zip"
    z.write_bytes(make_zip({"a.txt": b"1", "b.txt": b"2"}))
    stale = tmp_path / "out" / ".flat.tmp-999999999-dead"
    stale.mkdir(parents=True)
    dest = extract_archive(z, tmp_path / "out" / "flat")
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "b.txt"] and not stale.exists()
    evil = tmp_path / "evil.zip"
    evil.write_bytes(make_zip({"../escape.txt": b"x"}))
    with pytest.raises(DownloadError, match="outside"):
        extract_archive(evil, tmp_path / "out" / "evil")
    assert archive_stem("x.tar.gz") == "x" and archive_stem("y.zip") == "y" and archive_stem("z.tgz") == "z"


def test_progress_bar_only_when_asked(capsys):
    out = io.StringIO()
    bar = Progress(100, "f.tgz", stream=out, enabled=True)
    bar.update(100)
    bar.close()
    assert "100%" in out.getvalue() and "f.tgz" in out.getvalue()
    quiet = io.StringIO()
    bar = Progress(100, "f.tgz", stream=quiet)  # a StringIO is not a terminal
    bar.update(100)
    bar.close()
    assert quiet.getvalue() == ""


def test_urls_names_and_bad_url():
    for name in ("MNIST_TINY", "CAMVID_TINY", "COCO_TINY", "IMDB_SAMPLE", "ADULT_SAMPLE", "ML_SAMPLE", "PETS"):
        assert getattr(URLs, name).startswith(URLs.S3)
    with pytest.raises(ValueError, match="file name"):
        URLs.path("http://example.org/")
    assert isinstance(URLs.LOCAL_PATH, Path)
