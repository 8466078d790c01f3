"""The offline IMDB-like corpus generators."""

import pandas as pd
import pytest

from tiers.text.samples import make_imdb_df, make_imdb_folder, make_imdb_sample, make_texts


def test_make_texts_reproducible_balanced_and_labelled():
    a, la = make_texts(50, seed=3)
    b, lb = make_texts(50, seed=3)
    assert a == b and la == lb
    assert la.count("positive") == la.count("negative") == 25
    assert make_texts(50, seed=4)[0] != a
    assert make_texts(0) == ([], [])


def test_signal_is_learnable_from_words():
    texts, labels = make_texts(400, seed=0)
    pos = {"great", "wonderful", "brilliant", "superb", "excellent", "amazing", "loved", "enjoyed"}
    neg = {"awful", "terrible", "boring", "dull", "horrible", "bad", "hated", "disliked"}
    correct = 0
    for t, lbl in zip(texts, labels):
        words = set(t.lower().replace(".", " ").replace("!", " ").replace(",", " ").split())
        guess = "positive" if len(words & pos) >= len(words & neg) else "negative"
        correct += guess == lbl
    assert correct / len(texts) > 0.8


def test_imdb_df_and_csv(tmp_path):
    df = make_imdb_df(100, seed=1, valid_pct=0.25)
    assert list(df.columns) == ["label", "text", "is_valid"] and df["is_valid"].sum() == 25
    path = make_imdb_sample(tmp_path / "imdb_sample", n=20)
    back = pd.read_csv(path / "texts.csv")
    assert len(back) == 20 and back["is_valid"].dtype == bool
    assert "<br />" in " ".join(make_texts(100)[0])
    with pytest.raises(ValueError, match="valid_pct"):
        make_imdb_df(10, valid_pct=1.5)
    with pytest.raises(ValueError, match="noise"):
        make_texts(10, noise=0.9)


def test_imdb_folder(tmp_path):
    path = make_imdb_folder(tmp_path / "imdb", n=40)
    assert len(list((path / "train").glob("*/*.txt"))) == 32
    assert {p.name for p in (path / "test").iterdir()} == {"neg", "pos"}
    assert len(list((path / "unsup").glob("*.txt"))) == 10


def test_sample_paths_have_ls_like_untar_data(tmp_path):
    # AUDIT2 D16: `path.ls()` right after the offline stand-ins for untar_data(URLs.IMDB_SAMPLE / URLs.IMDB)
    path = make_imdb_sample(tmp_path / "imdb_sample", n=20)
    assert [p.name for p in path.ls()] == ["texts.csv"]
    path = make_imdb_folder(tmp_path / "imdb", n=40)
    assert sorted(p.name for p in path.ls()) == ["test", "train", "unsup"]
    assert sorted(p.name for p in (path / "train").ls()) == ["neg", "pos"]
