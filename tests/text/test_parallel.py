"""Parallel tokenization and its on-disk cache."""

import multiprocessing as mp
import os
import pickle
import time
from collections import Counter

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiers.text.parallel import (
    fn_counter_pkl,
    fn_lengths_pkl,
    load_tokenized_csv,
    parallel_tokenize,
    tokenize_csv,
    tokenize_df,
    tokenize_files,
    tokenize_folder,
    tokenize_texts,
)
from tiers.text.rules import FLD, text_proc_rules
from tiers.text.samples import make_imdb_folder, make_texts
from tiers.text.tokenizers import BaseTokenizer, SpacyTokenizer, TokenizeWithRules


@pytest.fixture(scope="module")
def tok():
    return SpacyTokenizer()


@pytest.fixture(scope="module")
def texts():
    return make_texts(60, seed=2)[0]


def test_two_workers_equal_one_and_keep_order(tok, texts):
    ref = list(TokenizeWithRules(tok)(texts))
    one = tokenize_texts(texts, n_workers=1, tok=tok)
    two = tokenize_texts(texts, n_workers=2, tok=tok)
    assert one == ref and two == ref
    assert [i for i, _ in parallel_tokenize(texts, tok, n_workers=2)] == list(range(len(texts)))


def test_parallel_with_lambda_rule_and_generator_input(tok):
    # fork workers inherit the rules, so even a lambda works; a generator is materialised.
    out = tokenize_texts((t for t in ["A b", "C d"] * 4), n_workers=2, rules=[lambda s: s.upper()], tok=BaseTokenizer())
    assert out[0] == ["A", "B"] and len(out) == 8


def test_bad_n_workers(texts):
    with pytest.raises(ValueError, match="n_workers=-1"):
        tokenize_texts(texts, n_workers=-1)


def test_tokenize_df(tok):
    df = pd.DataFrame({"title": ["Good", "Bad"], "body": ["Nice FILM", "meh"], "label": [1, 0]})
    res, count = tokenize_df(df, ["title", "body"], n_workers=1, tok=tok)
    assert list(res.columns) == ["label", "text", "text_length"]
    assert res["text"][0] == ["xxbos", FLD, "1", "xxmaj", "good", FLD, "2", "xxmaj", "nice", "xxup", "film"]
    assert res["text_length"].tolist() == [11, 8]
    assert count[FLD] == 4 and count["xxbos"] == 2
    assert sum(count.values()) == res["text_length"].sum()
    res1, _ = tokenize_df(df, "body", n_workers=1, tok=tok)
    assert res1["text"][1] == ["xxbos", "meh"] and "title" in res1.columns
    res2, _ = tokenize_df(df, [1], n_workers=1, tok=tok, tok_text_col="toks")
    assert res2["toks"][1] == ["xxbos", "meh"]
    with pytest.raises(KeyError, match="nope"):
        tokenize_df(df, "nope", n_workers=1)


def test_tokenize_csv_caches_and_invalidates(tmp_path, tok):
    df = pd.DataFrame({"label": ["a", "b", "a"], "text": ["Hello World", "bye", "The the the end."]})
    df.to_csv(tmp_path / "t.csv", index=False)
    out = tokenize_csv(tmp_path / "t.csv", "text", n_workers=1, tok=tok, chunksize=2)
    assert out == tmp_path / "t_tok.csv"
    res, count = load_tokenized_csv(out)
    assert res["text"][0] == ["xxbos", "xxmaj", "hello", "xxmaj", "world"]
    assert res["label"].tolist() == ["a", "b", "a"]
    assert count["xxbos"] == 3
    mtime = out.stat().st_mtime_ns
    tokenize_csv(tmp_path / "t.csv", "text", n_workers=1, tok=tok, chunksize=2)
    assert out.stat().st_mtime_ns == mtime  # reused
    tokenize_csv(tmp_path / "t.csv", "text", n_workers=1, tok=tok, rules=text_proc_rules[:-1])
    res, _ = load_tokenized_csv(out)
    assert res["text"][0] == ["xxmaj", "hello", "xxmaj", "world"]  # new rules: re-tokenized (no lowercase rule)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        tokenize_csv(tmp_path / "missing.csv", "text")
    with pytest.raises(FileNotFoundError, match="counter"):
        load_tokenized_csv(tmp_path / "t.csv")


def test_tokenize_folder_cache(tmp_path, tok):
    path = make_imdb_folder(tmp_path / "imdb", n=40, seed=1)
    out = tokenize_folder(path, folders=["train", "test"], n_workers=2, tok=tok)
    assert out == tmp_path / "imdb_tok"
    files = sorted(p.relative_to(path).as_posix() for p in path.glob("[tt]*/*/*.txt"))
    lengths = pickle.loads((out / fn_lengths_pkl).read_bytes())
    count = pickle.loads((out / fn_counter_pkl).read_bytes())
    assert sorted(lengths) == files and len(files) == 40
    one = files[0]
    toks = (out / one).read_text().split(" ")
    assert toks[0] == "xxbos" and len(toks) == lengths[one]
    assert toks == next(iter(TokenizeWithRules(tok)([(path / one).read_text()])))
    assert sum(count.values()) == sum(lengths.values()) and isinstance(count, Counter)
    assert not (out / "unsup").exists()
    # Second run: reused as is.
    stamp = (out / fn_counter_pkl).stat().st_mtime_ns
    assert tokenize_folder(path, folders=["train", "test"], n_workers=2, tok=tok) == out
    assert (out / fn_counter_pkl).stat().st_mtime_ns == stamp
    # A changed rule set re-tokenizes.
    tokenize_folder(path, folders=["train", "test"], n_workers=1, tok=tok, rules=[str.upper])
    assert (out / one).read_text().split(" ")[0] != "xxbos"
    # A changed tokenizer re-tokenizes.
    tokenize_folder(path, folders=["train", "test"], n_workers=1, tok=BaseTokenizer(split_char="E"), rules=[str.upper])
    expected = [w.replace(" ", "▁") for w in (path / one).read_text().upper().split("E")]
    assert (out / one).read_text().split(" ") == expected and len(expected) > 1
    # A changed input file re-tokenizes too.
    (path / one).write_text("Completely new text")
    tokenize_folder(path, folders=["train", "test"], n_workers=1, tok=tok, rules=[str.upper])
    assert (out / one).read_text() == "COMPLETELY NEW TEXT"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_tokenize_folder_errors(tmp_path):
    with pytest.raises(NotADirectoryError):
        tokenize_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no files"):
        tokenize_folder(tmp_path / "empty")


def test_tokenize_files_names(tmp_path, tok):
    (tmp_path / "a.txt").write_text("One two")
    (tmp_path / "b.txt").write_text("Three")
    out = tokenize_files([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path, tmp_path / "out",
                         output_names=["x.txt", "y.txt"], n_workers=1, tok=tok)
    assert pickle.loads((out / fn_lengths_pkl).read_bytes()) == {"x.txt": 4, "y.txt": 3}
    with pytest.raises(ValueError, match="output_names"):
        tokenize_files([tmp_path / "a.txt"], tmp_path, tmp_path / "o2", output_names=["1", "2"], tok=tok)


_words = st.text(st.sampled_from("aAbZé😀'.,!? \n\t<>&#xXy"), max_size=40)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_words, min_size=0, max_size=40), n_workers=st.sampled_from([2, 3]))
def test_property_workers_equal_one(tok, texts, n_workers):
    # Whatever the split into slices (and however the processes race for them), the output is the one-process output.
    one = list(parallel_tokenize(texts, tok, n_workers=1))
    assert list(parallel_tokenize(texts, tok, n_workers=n_workers)) == one
    assert [i for i, _ in one] == list(range(len(texts)))


# Texts where a wrong split, a lost or a re-encoded character would show: non-BMP emoji and combining marks, empty
# and blank texts, whitespace runs that spaCy keeps as tokens, HTML entities, repeated characters and words, caps.
_TRICKY = ["", " ", "\n\n", "\t a  b \u00a0 c", "Ça va? Très BIEN!!!! 😀😀😀😀 👩‍👩‍👧 ",
           "e\u0301 cafe\u0301 ﬁ ＡＢＣ", "&amp; &lt;br /&gt; <br /> #39; quot;", "sooooo  goooood   ",
           "the the the the end", "ALL CAPS HERE and Mixed Case", "日本語のテキスト。中文，한국어!", "x" * 3000,
           "a\u200bb \u2028 c\r\nd", "tab\tsep\tvalues", "'quoted' \"double\" (paren) [bracket]"]


@pytest.mark.parametrize("n_workers", [2, 3])
def test_tricky_texts_equal_one_worker(tok, n_workers):
    texts = _TRICKY * 7  # enough texts that every process gets slices
    one = tokenize_texts(texts, n_workers=1, tok=tok)
    assert tokenize_texts(texts, n_workers=n_workers, tok=tok) == one
    assert one[0] == ["xxbos"] and any(t.strip() == "" and t for toks in one for t in toks)
    # A tokenizer that yields empty-string tokens, and no rules at all.
    base = tokenize_texts(texts, n_workers=1, tok=BaseTokenizer(), rules=[], post_rules=[])
    assert tokenize_texts(texts, n_workers=n_workers, tok=BaseTokenizer(), rules=[], post_rules=[]) == base
    assert base[1] == ["", ""] and base[4][-1] == ""


def test_tokenize_files_two_workers_equal_one(tmp_path, tok):
    for i, t in enumerate(_TRICKY * 3):
        (tmp_path / "in" / f"{i:03d}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / "in" / f"{i:03d}.txt").write_text(t, encoding="utf8")
    files = sorted((tmp_path / "in").iterdir())
    outs = [tokenize_files(files, tmp_path / "in", tmp_path / f"out{n}", n_workers=n, tok=tok) for n in (1, 2)]
    for name in (fn_counter_pkl, fn_lengths_pkl):
        assert pickle.loads((outs[0] / name).read_bytes()) == pickle.loads((outs[1] / name).read_bytes())
    for f in files:
        assert (outs[0] / f.name).read_bytes() == (outs[1] / f.name).read_bytes()


def _fail_in_worker(main_pid, fail):
    # This process sleeps a little per text so that the worker surely gets slices to fail on.
    def rule(s):
        if os.getpid() != main_pid:
            fail(s)
        time.sleep(0.002)
        return s
    return rule


def _raise(s):
    raise ValueError(f"bad text {s[:5]!r}")


def test_worker_error_is_reraised_with_its_traceback():
    texts = [f"text {i}" for i in range(100)]
    with pytest.raises(ValueError, match="bad text") as e:
        tokenize_texts(texts, n_workers=2, rules=[_fail_in_worker(os.getpid(), _raise)], tok=BaseTokenizer())
    assert "In the worker process" in str(e.value.__cause__) and "_raise" in str(e.value.__cause__)


def test_worker_death_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="exit code 3"):
        tokenize_texts([f"t {i}" for i in range(100)], n_workers=2,
                       rules=[_fail_in_worker(os.getpid(), lambda s: os._exit(3))], tok=BaseTokenizer())


def test_early_stop_leaves_no_worker_behind():
    gen = parallel_tokenize([f"t {i}" for i in range(2000)], BaseTokenizer(), rules=[], n_workers=2)
    assert next(gen) == (0, ["t", "0"])
    gen.close()
    assert not [p for p in mp.active_children() if p.is_alive()]


class _Unrebuildable(Exception):
    def __init__(self, a, b):
        super().__init__(f"needs {a} and {b}")


def _raise_unrebuildable(s):
    raise _Unrebuildable(1, 2)


def test_worker_error_that_cannot_be_unpickled_still_reaches_the_caller():
    with pytest.raises(RuntimeError, match="_Unrebuildable: needs 1 and 2"):
        tokenize_texts([f"t {i}" for i in range(100)], n_workers=2,
                       rules=[_fail_in_worker(os.getpid(), _raise_unrebuildable)], tok=BaseTokenizer())
