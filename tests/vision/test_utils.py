"""fastai's vision.utils: `resize_to`, `resize_image(s)`, `download_images` (from a real HTTP server)."""

import io

import numpy as np
import pytest
from PIL import Image

from tiers.vision import download_images, resize_image, resize_images, resize_to, verify_images


def _png(w, h, mode="RGB"):
    buf = io.BytesIO()
    Image.new(mode, (w, h), 128).save(buf, format="png")
    return buf.getvalue()


def test_resize_to_keeps_the_aspect_ratio():
    img = Image.new("RGB", (400, 300))
    assert resize_to(img, 100) == (100, 75)
    assert resize_to(img, 100, use_min=True) == (133, 100)


def test_resize_images_shrinks_converts_and_copies(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "sub").mkdir(parents=True)
    (src / "big.png").write_bytes(_png(400, 200))
    (src / "grey.png").write_bytes(_png(50, 40, "L"))
    (src / "small.png").write_bytes(_png(60, 30))
    (src / "sub" / "deep.png").write_bytes(_png(300, 300))
    out = resize_images(src, max_size=100, dest=dest, recurse=True, max_workers=2)
    assert sorted(p.relative_to(dest).as_posix() for p in out) == ["big.png", "grey.png", "small.png", "sub/deep.png"]
    assert Image.open(dest / "big.png").size == (100, 50)
    assert Image.open(dest / "sub" / "deep.png").size == (100, 100)
    assert Image.open(dest / "grey.png").mode == "RGB"  # n_channels=3
    assert (dest / "small.png").read_bytes() == (src / "small.png").read_bytes()  # already fine: copied
    (dest / "big.png").write_bytes(b"kept")
    resize_image("big.png", dest, src=src, max_size=100, resume=True)  # resume: existing files are left alone
    assert (dest / "big.png").read_bytes() == b"kept"
    assert resize_image("big.png", dest, src=src, max_size=100, ext=".jpg").suffix == ".jpg"


def test_resize_image_skips_an_unreadable_file_with_its_name(tmp_path):
    (tmp_path / "bad.png").write_bytes(_png(64, 64)[:40])
    with pytest.warns(UserWarning, match="bad.png"):
        assert resize_image("bad.png", tmp_path / "out", src=tmp_path, max_size=10) is None


def test_download_images_from_a_server(server, tmp_path):
    server.files["/a.png"] = _png(8, 8)
    server.files["/photos/b.jpg?size=large"] = _png(9, 9)
    urls = [f"{server.url}/a.png", f"{server.url}/photos/b.jpg?size=large", f"{server.url}/missing.jpg"]
    with pytest.warns(UserWarning, match="1 of 3 downloads failed: .*missing.jpg"):
        got = download_images(tmp_path / "dl", urls=urls, n_workers=2)
    assert sorted(p.name for p in got) == ["00000000.png", "00000001.jpg"]
    assert list(verify_images(got)) == [] and not list((tmp_path / "dl").glob("*.part"))
    (tmp_path / "urls.txt").write_text(f"{server.url}/a.png\n\n{server.url}/a.png\n")
    got = download_images(tmp_path / "dl2", url_file=tmp_path / "urls.txt", max_pics=1, preserve_filename=True)
    assert [p.name for p in got] == ["a.png"]
    assert np.asarray(Image.open(got[0])).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="urls="):
        download_images(tmp_path / "x")
