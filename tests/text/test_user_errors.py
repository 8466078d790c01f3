"""A new user's mistakes with the text layer, and the messages that tell them what to do."""

import pytest

from tiers.text.block import TextBlock, TextDataLoaders
from tiers.text.samples import make_imdb_df, make_imdb_sample
from tiers.text.tokenizers import BaseTokenizer

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

