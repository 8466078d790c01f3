"""A new user's mistakes with the text layer, and the messages that tell them what to do."""

import hashlib
import json
import socket

import pytest

from tiers.data import DownloadError, URLs
from tiers.text.awdlstm import AWD_LSTM, awd_lstm_lm_config
from tiers.text.block import TextBlock, TextDataLoaders
from tiers.text.learner import language_model_learner, text_classifier_learner
from tiers.text.samples import make_imdb_df, make_imdb_sample
from tiers.text.tokenizers import BaseTokenizer

SMALL = dict(awd_lstm_lm_config, emb_sz=16, n_hid=24, n_layers=2)
COLS = r"\(columns: \['label', 'text', 'is_valid'\]\); pass one of them"


@pytest.fixture(scope="module")
def df():
    return make_imdb_df(40, seed=1)


@pytest.mark.parametrize("kwargs, bad", [
    (dict(text_col="txt"), "text_col='txt'"),
    (dict(text_col=["text", "title"]), r"text_col=\['text', 'title'\]: 'title'"),
    (dict(text_col="text", label_col="lbl"), "label_col='lbl'"),
    (dict(text_col="text", label_col="label", valid_col="valid"), "valid_col='valid'"),
    (dict(text_col="text", is_lm=True, valid_col=7), "valid_col=7"),
])
def test_from_df_names_the_missing_column_up_front(df, kwargs, bad):
    with pytest.raises(KeyError, match=f"^TextDataLoaders.from_df: {bad} is not a column of the DataFrame {COLS}") \
            as e:
        TextDataLoaders.from_df(df, bs=4, n_workers=1, **kwargs)
    assert "tokenize_df" not in str(e.value) and "\\'" not in str(e.value)


def test_from_df_language_model_ignores_label_col_and_positions_are_columns(df):
    # is_lm reads no label; an int that is not a column name is a position, as ColReader reads it.
    dls = TextDataLoaders.from_df(df, text_col=1, label_col="nope", is_lm=True, valid_col=2, bs=4, seq_len=10,
                                  n_workers=1, tok_tfm=BaseTokenizer())
    assert len(dls.valid_ds) > 0


def test_from_csv_names_the_missing_column_and_the_file(tmp_path):
    path = make_imdb_sample(tmp_path, n=20, seed=1)
    with pytest.raises(KeyError, match=r"^TextDataLoaders.from_csv: text_col='review' is not a column of "
                                       r"'.*texts.csv' \(columns: .*\); pass one of them"):
        TextDataLoaders.from_csv(path, "texts.csv", text_col="review", label_col="label", n_workers=1)


def test_textblock_from_df_given_the_dataframe(df):
    with pytest.raises(TypeError, match=r"TextBlock.from_df: text_cols=a DataFrame is not a column name; .*"
                                        r"TextBlock.from_df\('text'\)"):
        TextBlock.from_df(df)


# --- pretrained weights while offline --------------------------------------------------------------------------------

@pytest.fixture
def lm_dls(df, tmp_path):
    return TextDataLoaders.from_df(df, path=tmp_path, text_col="text", is_lm=True, valid_col="is_valid", bs=4,
                                   seq_len=10, n_workers=1, tok_tfm=BaseTokenizer())


@pytest.fixture
def no_backoff(monkeypatch):
    # download_url pauses between its retries; a refused connection needs none of them here.
    monkeypatch.setattr("tiers.data.download.time.sleep", lambda s: None)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("make", ["lm", "clas"])
def test_offline_pretrained_download_says_pretrained_false_first(lm_dls, df, tmp_path, home, monkeypatch, no_backoff,
                                                                  make):
    url = f"http://127.0.0.1:{_closed_port()}/models/"
    monkeypatch.setenv("TIERS_MODEL_URL", url)
    with pytest.raises(DownloadError, match=rf"^Could not download the pretrained AWD_LSTM weights from "
                                            rf"{url}wt103-fwd.tgz \((.*)\); pass pretrained=False to train from "
                                            r"scratch, or set TIERS_MODEL_URL to a server that has them\.$") as e:
        if make == "lm":
            language_model_learner(lm_dls, AWD_LSTM, config=SMALL)
        else:
            dls = TextDataLoaders.from_df(df, path=tmp_path, text_col="text", label_col="label",
                                          valid_col="is_valid", bs=4, n_workers=1, tok_tfm=BaseTokenizer(),
                                          text_vocab=lm_dls.vocab)
            text_classifier_learner(dls, AWD_LSTM)
    msg = str(e.value)
    assert "refused" in msg.lower() and "attempts" not in msg and "registry" not in msg
    assert isinstance(e.value.__cause__, DownloadError)  # the full story stays chained


def test_checksum_mismatch_still_explains_the_registry(lm_dls, server, home, monkeypatch, no_backoff):
    archive = b"not the archive the registry describes"
    server.files["/models/wt103-fwd.tgz"] = archive
    server.files["/models/checks.json"] = json.dumps(
        {URLs.WT103_FWD: {"size": len(archive), "sha256": hashlib.sha256(b"other").hexdigest()}}).encode()
    monkeypatch.setenv("TIERS_MODEL_URL", server.url + "/models/")
    with pytest.raises(DownloadError) as e:
        language_model_learner(lm_dls, AWD_LSTM, config=SMALL)
    msg = str(e.value)
    assert msg.startswith(f"The pretrained model {URLs.WT103_FWD} could not be downloaded from "
                          f"{server.url}/models/wt103-fwd.tgz: Downloading")
    assert f"the sha256 of the file is {hashlib.sha256(archive).hexdigest()} but the checks registry expects" in msg
    assert "update its entry in the checks registry" in msg and "pretrained=False" in msg


def test_textblock_from_df_with_a_mistyped_column_says_what_to_pass(df):
    from tiers.data import CategoryBlock, ColReader, ColSplitter, DataBlock

    dblock = DataBlock(blocks=(TextBlock.from_df("txt", seq_len=8), CategoryBlock), get_x=ColReader("text"),
                       get_y=ColReader("label"), splitter=ColSplitter())
    with pytest.raises(KeyError) as e:
        dblock.dataloaders(df, bs=4)
    msg = str(e.value)
    assert "text column(s) ['txt'] not in the DataFrame's columns" in msg and "pass text_cols=" in msg
    assert "\\'" not in msg  # reads as written


def test_from_df_with_valid_idx_names_valid_col(df):
    # (it reached the loaders: "SortedDL got unexpected keyword arguments ['valid_idx']")
    with pytest.raises(TypeError, match=r"takes no valid_idx .*np\.isin\(np\.arange\(len\(df\)\), valid_idx\).*"
                                        r"valid_col='is_valid'"):
        TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_idx=[0, 1], n_workers=1)


@pytest.mark.parametrize("n_workers", [1, 2])
def test_from_folder_with_a_latin1_file_names_it_and_encoding(tmp_path, n_workers):
    # AUDIT2 D2a: a raw UnicodeDecodeError from a tokenizer worker, without the file or the fix
    from tiers.text.samples import make_imdb_folder

    path = make_imdb_folder(tmp_path / "imdb", n=20)
    bad = path / "train" / "neg" / "latin.txt"
    bad.write_bytes("caf\xe9 tr\xe8s bien".encode("latin-1"))
    with pytest.raises(UnicodeDecodeError) as e:
        TextDataLoaders.from_folder(path, valid="test", bs=4, n_workers=n_workers)
    note = "\n".join(getattr(e.value, "__notes__", []))
    assert f"while reading the text file {str(bad)!r} as utf8" in note and "encoding='latin-1'" in note
    assert not (tmp_path / "imdb_tok").exists()  # nothing half-written
    # the fix it names works, for the folder and for a new file given to test_dl
    dls = TextDataLoaders.from_folder(path, valid="test", bs=4, n_workers=n_workers, encoding="latin-1")
    assert "café très bien" in (tmp_path / "imdb_tok" / "train" / "neg" / "latin.txt").read_text(encoding="utf-8")
    new = tmp_path / "new.txt"
    new.write_bytes("Tr\xe8s bien".encode("latin-1"))
    x = dls.test_dl([new]).one_batch()[0]
    assert [dls.vocab[0][int(i)] for i in x[0]][:3] == ["xxbos", "xxmaj", "très" if "très" in dls.vocab[0] else "xxunk"]
