from pathlib import Path

import pytest

from tiers.data.files import (
    FileGetter,
    ImageGetter,
    RegexLabeller,
    get_files,
    get_image_files,
    get_text_files,
    parent_label,
)


@pytest.fixture
def tree(tmp_path):
    for rel in ["train/cat/b.JPG", "train/cat/a.png", "train/dog/c.jpg", "valid/dog/d.jpeg", "valid/notes.txt",
                "valid/.hidden.png", ".git/x.png", "top.txt", "readme.md"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    return tmp_path


def rel(files, root):
    return [str(Path(f).relative_to(root)) for f in files]


def test_get_files_sorted_skips_hidden(tree):
    assert rel(get_files(tree, [".png", "jpg"]), tree) == ["train/cat/a.png", "train/cat/b.JPG", "train/dog/c.jpg"]
    assert rel(get_files(tree, recurse=False), tree) == ["readme.md", "top.txt"]
    assert rel(get_files(tree, ".txt", folders=["valid"]), tree) == ["valid/notes.txt"]


def test_image_and_text_getters(tree):
    imgs = rel(get_image_files(tree), tree)
    assert imgs == ["train/cat/a.png", "train/cat/b.JPG", "train/dog/c.jpg", "valid/dog/d.jpeg"]
    assert rel(get_text_files(tree), tree) == ["top.txt", "valid/notes.txt"]
    assert rel(ImageGetter("valid")(tree), tree) == ["valid/dog/d.jpeg"]
    assert rel(FileGetter("train", extensions=".png")(tree), tree) == ["train/cat/a.png"]
    assert rel(get_image_files(tree, folders="valid"), tree) == ["valid/dog/d.jpeg"]


def test_get_files_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_files(tmp_path / "nope")


def test_labellers():
    assert parent_label("pets/cat/1.jpg") == "cat"
    lab = RegexLabeller(r"/([a-z_]+)_\d+\.jpg$")
    assert lab(Path("images/great_pyrenees_12.jpg")) == "great_pyrenees"
    with pytest.raises(ValueError, match="was not found in 'images/x.png'"):
        lab("images/x.png")
    assert RegexLabeller(r"(\w+)-", match=True)("cat-1") == "cat"
    with pytest.raises(ValueError, match="no group"):
        RegexLabeller(r"\d+")("a1")
