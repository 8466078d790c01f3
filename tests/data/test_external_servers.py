"""Servers and checks registries of tiers.data.external: `$TIERS_CHECKS`, a mirror's own `checks.json`, models kept
off the data mirror (`model_url` / `$TIERS_MODEL_URL`), and the errors for bad settings. Everything is served by a
real HTTP server on 127.0.0.1."""

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tiers.data.external import DownloadError, URLs, download_data, load_checks, resolve_url, untar_data


def make_tgz(top: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def entry(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


MNIST = make_tgz("mnist_tiny", {"train/3/a.txt": b"three" * 100, "valid/7/b.txt": b"seven" * 100})
WT103 = make_tgz("wt103-fwd", {"lstm_fwd.pth": b"weights" * 100, "itos_wt103.pkl": b"vocab" * 50})


def test_mirror_registry_is_found_from_the_data_url_alone(server, home, monkeypatch):
    server.files["/mirror/sample/mnist_tiny.tgz"] = MNIST
    server.files["/mirror/checks.json"] = json.dumps({URLs.MNIST_TINY: entry(MNIST)}).encode()
    monkeypatch.setenv("TIERS_DATA_URL", server.url + "/mirror")  # no trailing slash: still the mirror's root
    path = untar_data(URLs.MNIST_TINY, progress=False)
    assert (path / "train" / "3" / "a.txt").read_bytes() == b"three" * 100
    assert server.log == ["/mirror/checks.json", "/mirror/sample/mnist_tiny.tgz"]
    assert not (home / "checks.json").exists()  # known to the mirror's registry, so nothing recorded
    assert load_checks()[URLs.MNIST_TINY] == entry(MNIST)
    # A registry that says otherwise stops the download, and the file is not kept.
    server.files["/mirror/checks.json"] = json.dumps({URLs.MNIST_TINY: {"sha256": "0" * 64}}).encode()
    with pytest.raises(DownloadError, match="0" * 64):
        untar_data(URLs.MNIST_TINY, progress=False, retries=0, archive=home / "a2", data=home / "d2")
    assert not (home / "d2" / "mnist_tiny").exists() and list((home / "a2").iterdir()) == []


def test_mirror_without_a_registry_records_the_first_download(server, home, monkeypatch):
    server.files["/m/sample/mnist_tiny.tgz"] = MNIST
    monkeypatch.setenv("TIERS_DATA_URL", server.url + "/m/")
    untar_data(URLs.MNIST_TINY, progress=False)
    assert server.log[0] == "/m/checks.json"  # asked, got a 404: this mirror has no registry
    assert json.loads((home / "checks.json").read_text()) == {URLs.MNIST_TINY: entry(MNIST)}


def test_mirror_registry_that_fails_stops_the_download(server, home, monkeypatch):
    server.files["/m/sample/mnist_tiny.tgz"] = MNIST
    server.status["/m/checks.json"] = 503
    monkeypatch.setenv("TIERS_DATA_URL", server.url + "/m/")
    with pytest.raises(DownloadError, match=r"checks.json.*503.*unverified"):
        untar_data(URLs.MNIST_TINY, progress=False, retries=0)
    assert "/m/sample/mnist_tiny.tgz" not in server.log and not (home / "archive" / "mnist_tiny.tgz").exists()


def test_tiers_checks_reads_paths_and_urls_in_addition_to_the_own(server, home, tmp_path, monkeypatch):
    a, b, c = (make_tgz(n, {"x.txt": n.encode() * 99}) for n in ("a", "b", "c"))
    server.files.update({"/d/a.tgz": a, "/d/b.tgz": b, "/d/c.tgz": c})
    ua, ub, uc = (f"{server.url}/d/{n}.tgz" for n in "abc")
    server.files["/team/checks.json"] = json.dumps({ua: entry(a)}).encode()
    local = tmp_path / "local checks.json"
    local.write_text(json.dumps({ub: {"size": len(b)}}))
    home.mkdir()
    (home / "checks.json").write_text(json.dumps({uc: entry(c)}))
    monkeypatch.setenv("TIERS_CHECKS", f" {server.url}/team/checks.json , {local.as_uri()},")
    assert load_checks() == {ua: entry(a), ub: {"size": len(b)}, uc: entry(c)}
    for u in (ua, ub, uc):
        download_data(u, progress=False)
    assert sorted(json.loads((home / "checks.json").read_text())) == [uc]  # nothing new recorded
    copies = list((home / "registries").iterdir())
    assert [json.loads(p.read_text()) for p in copies] == [{ua: entry(a)}]  # the fetched copy, no temp files left
    # Fetched afresh for every download: the team's update is seen at once.
    server.files["/team/checks.json"] = json.dumps({ua: {"size": 3}}).encode()
    with pytest.raises(DownloadError, match="expects 3"):
        download_data(ua, progress=False, force_download=True, retries=0)
    monkeypatch.setenv("TIERS_CHECKS", str(local))  # a plain path works too
    assert load_checks()[ub] == {"size": len(b)}


def test_checks_files_relative_to_home_and_registries_that_disagree(server, home, monkeypatch):
    server.files["/d/a.tgz"] = data = make_tgz("a", {"x.txt": b"x"})
    url = server.url + "/d/a.tgz"
    home.mkdir()
    (home / "config.ini").write_text("[tiers]\nchecks_files = team.json\n")
    (home / "team.json").write_text(json.dumps({url: {"size": len(data) + 1}}))
    (home / "checks.json").write_text(json.dumps({url: {"size": len(data)}}))
    with pytest.raises(DownloadError, match="disagree") as e:
        download_data(url, progress=False)
    assert str(home / "team.json") in str(e.value) and str(home / "checks.json") in str(e.value)
    assert server.log == []  # refused before anything was fetched
    (home / "team.json").write_text(json.dumps({url: {"sha256": entry(data)["sha256"].upper()}}))
    assert load_checks()[url] == entry(data)  # agreeing registries complete each other
    assert download_data(url, progress=False).read_bytes() == data


def test_models_never_go_to_the_data_mirror(server, home, monkeypatch):
    monkeypatch.setenv("TIERS_DATA_URL", server.url + "/mirror/")
    assert resolve_url(URLs.MNIST_TINY) == server.url + "/mirror/sample/mnist_tiny.tgz"
    assert resolve_url(URLs.WT103_FWD) == URLs.WT103_FWD and resolve_url(URLs.WT103_BWD) == URLs.WT103_BWD
    assert resolve_url("https://example.org/x.tgz") == "https://example.org/x.tgz"
    server.files["/models/wt103-fwd.tgz"] = WT103
    server.files["/models/checks.json"] = json.dumps({URLs.WT103_FWD: entry(WT103)}).encode()
    monkeypatch.setenv("TIERS_MODEL_URL", server.url + "/models/")
    assert resolve_url(URLs.WT103_FWD) == server.url + "/models/wt103-fwd.tgz"
    path = untar_data(URLs.WT103_FWD, c_key="model", progress=False)
    assert path == home / "models" / "wt103-fwd" and (path / "lstm_fwd.pth").exists()
    assert server.log == ["/models/checks.json", "/models/wt103-fwd.tgz"]  # the data mirror was never asked
    assert not (home / "checks.json").exists()
    monkeypatch.delenv("TIERS_MODEL_URL")
    home.mkdir(exist_ok=True)
    (home / "config.ini").write_text(f"[tiers]\nmodel_url = {server.url}/models\n")
    assert resolve_url(URLs.WT103_BWD) == server.url + "/models/wt103-bwd.tgz"


@pytest.mark.parametrize("var,value", [("TIERS_DATA_URL", "mirror.example.org/fastai"),
                                       ("TIERS_DATA_URL", "ftp://mirror/"), ("TIERS_MODEL_URL", "http://"),
                                       ("TIERS_MODEL_URL", "http://host:port/"), ("TIERS_DATA_URL", "http://a b/")])
def test_invalid_server_urls_are_named(home, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    url = URLs.MNIST_TINY if var == "TIERS_DATA_URL" else URLs.WT103_FWD
    with pytest.raises(ValueError, match=rf"{value!r} \(from \${var}\) is not a valid") as e:
        download_data(url, progress=False)
    assert "unset it" in str(e.value) and not (home / "archive").exists()


def test_invalid_base_url_in_config_names_the_file(home):
    home.mkdir()
    (home / "config.ini").write_text("[tiers]\nbase_url = file:\n")
    with pytest.raises(ValueError, match=r"base_url in .*config.ini"):
        resolve_url(URLs.MNIST_TINY)


def test_bad_registries_are_named_with_the_fix(server, home, tmp_path, monkeypatch):
    url = server.url + "/d/a.tgz"

    def fails(value, exc, pattern):
        monkeypatch.setenv("TIERS_CHECKS", value)
        with pytest.raises(exc, match=pattern):
            download_data(url, progress=False, retries=0)

    missing = tmp_path / "missing.json"
    fails(str(missing), FileNotFoundError, rf"{missing} \(named by \$TIERS_CHECKS\) does not exist.*remove it")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    fails(str(bad), ValueError, rf"{bad} .*not valid JSON")
    bad.write_text("[1, 2]")
    fails(str(bad), ValueError, "holds a list, not an object")
    bad.write_text(json.dumps({url: {"md5": "abc"}}))
    fails(str(bad), ValueError, "neither 'size' nor 'sha256'")
    bad.write_text(json.dumps({url: {"size": "12"}}))
    fails(str(bad), ValueError, "'size' is '12'")
    bad.write_text(json.dumps({url: {"sha256": "xyz"}}))
    fails(str(bad), ValueError, "not 64 hex digits")
    fails(str(tmp_path), OSError, "cannot be read")  # a folder
    fails("gopher://host/checks.json", ValueError, r"'gopher://host/checks.json' \(from \$TIERS_CHECKS\)")
    fails(server.url + "/none.json", DownloadError, r"none.json \(named by \$TIERS_CHECKS\).*404")  # named: required
    monkeypatch.delenv("TIERS_CHECKS")
    home.mkdir(exist_ok=True)
    (home / "config.ini").write_text(f"[tiers]\nchecks_files = {missing}\n")
    with pytest.raises(FileNotFoundError, match=r"checks_files in .*config.ini"):
        load_checks()
    assert server.log == ["/none.json"]  # no archive was requested on any of these
    with pytest.raises(ValueError, match="checks="):
        download_data(url, checks={"sha256": "short"})


def test_force_download_keeps_the_old_copy_when_the_registry_is_broken(server, home, tmp_path, monkeypatch):
    server.files["/d/a.tgz"] = data = make_tgz("a", {"x.txt": b"x"})
    url = server.url + "/d/a.tgz"
    path = download_data(url, progress=False)
    (home / "checks.json").write_text("{broken")
    with pytest.raises(ValueError, match="own registry"):
        download_data(url, progress=False, force_download=True)
    assert path.read_bytes() == data and Path(path).exists()
