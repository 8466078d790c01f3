"""`download_url` as fastbook calls it (AUDIT3 E8): `download_url(ims[0], dest, show_progress=False)`, `dest` a file,
a folder or left out; against a real HTTP server on 127.0.0.1 (tests/conftest.py)."""

import io

import pytest

from tiers.data.download import download_url

BODY = b"\xff\xd8 not really a jpeg " * 100


def test_fastbook_call_with_show_progress_false(server, tmp_path, capsys):
    server.files["/img/bear.jpg"] = BODY
    dest = tmp_path / "images" / "grizzly.jpg"
    assert download_url(server.url + "/img/bear.jpg", str(dest), show_progress=False) == dest
    assert dest.read_bytes() == BODY and capsys.readouterr().err == ""


def test_show_progress_true_draws_the_bar_even_off_a_terminal(server, tmp_path, monkeypatch):
    server.files["/img/bear.jpg"] = BODY
    err = io.StringIO()  # not a terminal: the default (None) would stay silent
    monkeypatch.setattr("sys.stderr", err)
    download_url(server.url + "/img/bear.jpg", tmp_path / "b.jpg", show_progress=True)
    assert "b.jpg: 100%" in err.getvalue()


def test_dest_left_out_or_a_folder_takes_the_urls_file_name(server, tmp_path, monkeypatch):
    server.files["/img/bear.jpg"] = server.files["/img/bear.jpg?size=large"] = BODY
    monkeypatch.chdir(tmp_path)
    assert download_url(server.url + "/img/bear.jpg?size=large", show_progress=False).resolve() == tmp_path / "bear.jpg"
    (tmp_path / "imgs").mkdir()
    assert download_url(server.url + "/img/bear.jpg", tmp_path / "imgs", progress=False) == tmp_path / "imgs" / "bear.jpg"
    assert (tmp_path / "imgs" / "bear.jpg").read_bytes() == BODY


def test_bad_calls_are_refused_naming_the_fix(server, tmp_path):
    with pytest.raises(ValueError, match="progress=True and show_progress=False disagree"):
        download_url(server.url + "/x.jpg", tmp_path / "x.jpg", progress=True, show_progress=False)
    with pytest.raises(ValueError, match=r"does not end with a file name.*pass dest="):
        download_url(server.url + "/", tmp_path)
    assert server.log == []  # refused before any request
