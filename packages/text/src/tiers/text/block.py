"""`TextBlock` for the DataBlock API, the `TextDataLoaders` factories, and `show_batch` for text (a table).

>>> from tiers.text.samples import make_imdb_df
>>> dls = TextDataLoaders.from_df(make_imdb_df(60), text_col="text", label_col="label", valid_col="is_valid",
...                               bs=8, n_workers=1)
>>> dls.vocab[1][:2]
['negative', 'positive']
"""

import math
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from tiers.data import (
    CategoryBlock,
    ColReader,
    ColSplitter,
    DataBlock,
    DataLoaders,
    GrandparentSplitter,
    MissingColumnError,
    MultiCategoryBlock,
    RandomSplitter,
    TransformBlock,
    get_text_files,
    parent_label,
)
from tiers.dispatch import L, is_listy, typedispatch
from tiers.pipeline import TitledStr, Transform
from tiers.tensors import TensorText
from tiers.text.loaders import LMDataLoader, Pad_Chunk, SortedDL, _find_tokenizer
from tiers.text.parallel import MissingTextError, _rows, _text_cols, missing_texts, tokenize_df
from tiers.text.tokenizers import SpacyTokenizer
from tiers.text.transforms import LMTensorText, Numericalize, Tokenizer, reverse_text

__all__ = ["TextBlock", "TextDataLoaders", "show_batch", "show_results"]


class TextBlock(TransformBlock):
    """A block of text: `tok_tfm` (a `Tokenizer`) then `Numericalize(vocab, min_freq, max_vocab)`. For a language
    model (`is_lm`) the loaders are `LMDataLoader`s reading `seq_len` tokens at a time; otherwise `SortedDL`s padding
    with `Pad_Chunk(seq_len)`. `backwards` reverses the texts (for a backwards model).

    As in the paper, the first argument may be the vocabulary itself, `TextBlock(make_vocab(count), is_lm=True)`, for
    texts tokenized beforehand (`tokenize_df`): the tokenizer is then the default spaCy one, and token lists pass
    through it untouched. A plain tokenizer (`SpacyTokenizer()`, `SentencePieceTokenizer()`...) is wrapped in a
    `Tokenizer`.
    """

    def __init__(self, tok_tfm: Any = None, vocab: Sequence[str] | None = None, is_lm: bool = False,
                 seq_len: int = 72, backwards: bool = False, min_freq: int = 3, max_vocab: int = 60000,
                 special_toks: Sequence[str] | None = None):
        if _is_vocab(tok_tfm):
            if vocab is not None:
                raise TypeError("TextBlock: got a vocabulary both as the first argument and as vocab=; pass it once, "
                                "TextBlock(vocab=...) or TextBlock(make_vocab(count)).")
            tok_tfm, vocab = None, list(tok_tfm)
        if tok_tfm is None:
            tok_tfm = Tokenizer(SpacyTokenizer())
        elif not isinstance(tok_tfm, Transform):
            if not callable(tok_tfm) and not isinstance(tok_tfm, type):
                raise TypeError(f"TextBlock: tok_tfm={tok_tfm!r} is neither a Tokenizer, a tokenizer nor a vocabulary "
                                "(a list of str); pass Tokenizer(...), TextBlock.from_df(...) or a vocabulary.")
            tok_tfm = Tokenizer(tok_tfm)
        type_tfms = [tok_tfm, Numericalize(vocab, min_freq=min_freq, max_vocab=max_vocab, special_toks=special_toks)]
        if backwards:
            type_tfms.append(reverse_text)
        super().__init__(type_tfms=type_tfms, dl_type=LMDataLoader if is_lm else SortedDL,
                         dls_kwargs={"seq_len": seq_len} if is_lm else {"before_batch": Pad_Chunk(seq_len=seq_len)})
        self.is_lm, self.seq_len = is_lm, seq_len

    @classmethod
    def from_df(cls, text_cols: Any, vocab: Sequence[str] | None = None, is_lm: bool = False, seq_len: int = 72,
                backwards: bool = False, min_freq: int = 3, max_vocab: int = 60000, **kwargs: Any) -> "TextBlock":
        """A TextBlock whose texts are the `text_cols` of a DataFrame, tokenized all at once when the data is set up
        (`kwargs` go to `Tokenizer.from_df`: `tok`, `rules`, `n_workers`, `mark_fields`, `tok_text_col`...).
        Read the tokens with `get_x=ColReader('text')`."""
        cols = list(text_cols) if isinstance(text_cols, list | tuple) else [text_cols]
        if not cols or not all(isinstance(c, str | int) for c in cols):
            # The DataFrame itself comes later, through DataBlock.dataloaders(df): here only the column names.
            raise TypeError(f"TextBlock.from_df: text_cols={_short(text_cols)} is not a column name; pass the name (or "
                            "names) of the text column(s), e.g. TextBlock.from_df('text'), and give the DataFrame to "
                            "DataBlock.dataloaders(df).")
        return cls(Tokenizer.from_df(text_cols, **kwargs), vocab=vocab, is_lm=is_lm, seq_len=seq_len,
                   backwards=backwards, min_freq=min_freq, max_vocab=max_vocab)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, vocab: Sequence[str] | None = None, is_lm: bool = False,
                    seq_len: int = 72, backwards: bool = False, min_freq: int = 3, max_vocab: int = 60000,
                    **kwargs: Any) -> "TextBlock":
        """A TextBlock whose items are the text files under `path`, tokenized to disk now (`kwargs` go to
        `Tokenizer.from_folder`: `tok`, `rules`, `n_workers`, `folders`...)."""
        return cls(Tokenizer.from_folder(path, **kwargs), vocab=vocab, is_lm=is_lm, seq_len=seq_len,
                   backwards=backwards, min_freq=min_freq, max_vocab=max_vocab)


def _is_vocab(o: Any) -> bool:
    """Whether `o` is a vocabulary (a non-empty sequence of strings) rather than a tokenizer."""
    return isinstance(o, (list, tuple, L)) and len(o) > 0 and all(isinstance(t, str) for t in o)


def _short(o: Any) -> str:
    return f"a {type(o).__name__}" if isinstance(o, pd.DataFrame | pd.Series) else repr(o)


def _is_col(df: pd.DataFrame, c: Any) -> bool:
    # An int that is not a column name is a position, as ColReader and ColSplitter read it.
    if isinstance(c, int) and not isinstance(c, bool) and c not in df.columns:
        return -df.shape[1] <= c < df.shape[1]
    try:
        return c in df.columns
    except TypeError:  # an unhashable value
        return False


def _check_cols(df: pd.DataFrame, where: str, source: str, text_col: Any = 0, label_col: Any = 1,
                valid_col: Any = None, is_lm: bool = False, **_: Any) -> None:
    "Raise a MissingColumnError naming the first of the column arguments that `df` lacks (defaults: `from_df`'s)."
    named = [("text_col", text_col)] + ([] if is_lm else [("label_col", label_col)]) + \
        ([] if valid_col is None else [("valid_col", valid_col)])
    for name, value in named:
        many = is_listy(value)
        bad = [c for c in (value if many else [value]) if not _is_col(df, c)]
        if bad:
            what = f"{name}={value!r}: {bad[0]!r} is not" if many else f"{name}={value!r} is not"
            raise MissingColumnError(f"{where}: {what} a column of {source} (columns: {list(df.columns)}); pass "
                                     "one of them.")


# More distinct non-integer floats than this in a label column reads as a regression target, not classes.
_MAX_FLOAT_CLASSES = 10


def _refuse_regression_labels(df: pd.DataFrame, label_col: Any) -> None:
    """Refuse a float label column with many distinct non-integer values as class labels: each value would become
    a class (a regression target read as classes), and the first unseen validation value fails at fit."""
    col = df[label_col] if label_col in df.columns else df.iloc[:, label_col]
    if not pd.api.types.is_float_dtype(col.dtype):
        return
    vals = col.dropna().unique()
    if len(vals) <= _MAX_FLOAT_CLASSES or all(float(v).is_integer() for v in vals):
        return
    shown = ", ".join(f"{v:g}" for v in sorted(vals)[:5])
    raise ValueError(f"TextDataLoaders.from_df: label_col={label_col!r} holds {len(vals)} distinct float values "
                     f"({shown}, ...): a regression target, which would become one class per value. Pass "
                     "y_block=RegressionBlock() (from tiers.data) to predict a number per text (text_classifier_learner "
                     "then has one output and an MSE loss), or y_block=CategoryBlock() if each value really is a "
                     "class.")


_DLs = TypeVar("_DLs", bound=DataLoaders)


def _as(cls: type[_DLs], dls: DataLoaders) -> _DLs:
    return cls(*dls.loaders, path=dls.path, device=dls.device)


class TextDataLoaders(DataLoaders):
    """`DataLoaders` for NLP: a language model (`is_lm=True`, the texts alone) or a text classifier, from a DataFrame,
    a CSV file or a folder of text files."""

    def test_dl(self, test_items: Any, rm_type_tfms: Any = None, with_labels: bool = False,
                **kwargs: Any) -> Any:
        """A loader over `test_items` with the validation settings: texts (str), token lists, text files, or a
        DataFrame like the training one (its text columns tokenized as the training ones were, in parallel; token
        lists kept as they are; missing texts refused with their rows)."""
        if isinstance(test_items, pd.DataFrame):
            tok, _ = _find_tokenizer(self.valid_ds)
            if tok is not None and tok.mode == "df":
                test_items, _ = tokenize_df(test_items, tok.text_cols, rules=tok.rules, post_rules=tok.post_rules,
                                            **{"tok": tok.tok, **tok.kwargs})
            test_items = [row for _, row in test_items.iterrows()]  # the rows, as the getters read them
        elif isinstance(test_items, list | tuple | L):
            gone = [i for i, o in enumerate(test_items) if o is None or (isinstance(o, float) and math.isnan(o))]
            if gone:
                raise MissingTextError(f"test_dl: items {_rows(gone)} of {len(test_items)} have no text (None/NaN); "
                                       "they would be tokenized as a word. Remove or fill them first.")
        return super().test_dl(test_items, rm_type_tfms=rm_type_tfms, with_labels=with_labels, **kwargs)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, train: str = "train", valid: str = "valid",
                    valid_pct: float | None = None, seed: int | None = None, vocab: Sequence | None = None,
                    text_vocab: Sequence[str] | None = None, is_lm: bool = False, tok_tfm: Any = None,
                    seq_len: int = 72, splitter: Any = None, backwards: bool = False, n_workers: int | None = None,
                    encoding: str | None = None, **kwargs: Any) -> "TextDataLoaders":
        """Loaders from the `.txt` files under `path`: labelled by their folder (`train/pos/1.txt` is `pos`), split by
        the `train`/`valid` folders (or at random, `valid_pct`). `text_vocab` reuses a vocabulary (the language
        model's); `tok_tfm` is the tokenizer (default spaCy); the files are read with `encoding` (default UTF-8; e.g.
        `'latin-1'`). `kwargs` go to `dataloaders` (`bs`, `device`...)."""
        path = Path(path)
        if splitter is None:
            splitter = GrandparentSplitter(train_name=train, valid_name=valid) if valid_pct is None else \
                RandomSplitter(valid_pct, seed=seed)
        folders = [train, valid] if valid_pct is None else None
        enc: dict[str, Any] = {} if encoding is None else {"encoding": encoding}  # (tokenize_folder's default)
        blocks: list[TransformBlock] = [TextBlock.from_folder(path, text_vocab, is_lm, seq_len, backwards, tok=tok_tfm,
                                                              folders=folders, n_workers=n_workers, **enc)]
        if not is_lm:
            blocks.append(CategoryBlock(vocab=vocab))
        get_items = partial(get_text_files, folders=folders) if folders is not None else get_text_files
        dblock = DataBlock(blocks=blocks, get_items=get_items, splitter=splitter,
                           get_y=None if is_lm else parent_label)
        if is_lm:
            kwargs["seq_len"] = seq_len
        return _as(cls, dblock.dataloaders(path, path=path, **kwargs))

    @classmethod
    def from_df(cls, df: pd.DataFrame, path: str | os.PathLike = ".", valid_pct: float = 0.2, seed: int | None = None,
                text_col: Any = 0, label_col: Any = 1, label_delim: str | None = None, y_block: Any = None,
                text_vocab: Sequence[str] | None = None, is_lm: bool = False, valid_col: Any = None,
                tok_tfm: Any = None, tok_text_col: str = "text", seq_len: int = 72, backwards: bool = False,
                n_workers: int | None = None, vocab: Sequence[str] | None = None, drop_missing: bool = False,
                **kwargs: Any) -> "TextDataLoaders":
        """Loaders from the DataFrame `df`: texts in `text_col` (one or several columns), labels in `label_col`
        (several columns, or `label_delim`, mean multi-label), split by the boolean column `valid_col` or at random
        (`valid_pct`, `seed`). `kwargs` go to `dataloaders` (`bs`, `device`...).

        The texts may be raw strings or token lists already (`tokenize_df`'s output): those are used as they are.
        `vocab` (the paper's name) or `text_vocab` gives the text vocabulary (`make_vocab(count)`, or a language
        model's). Rows without a text (None/NaN) raise a `MissingTextError` naming them, unless `drop_missing=True`
        leaves them out."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"TextDataLoaders.from_df: df is a {type(df).__name__}, not a pandas DataFrame; "
                            "use from_csv for a file.")
        if "valid_idx" in kwargs:
            # (it would reach the loaders and fail there, naming SortedDL)
            raise TypeError("TextDataLoaders.from_df takes no valid_idx (as in fastai): mark the validation rows in a "
                            "boolean column and pass valid_col=, e.g. df['is_valid'] = np.isin(np.arange(len(df)), "
                            "valid_idx) for row positions, then from_df(df, ..., valid_col='is_valid').")
        if vocab is not None:
            if text_vocab is not None:
                raise TypeError("TextDataLoaders.from_df: vocab= and text_vocab= both give the text vocabulary; pass "
                                "one of them.")
            text_vocab = vocab
        _check_cols(df, "TextDataLoaders.from_df", "the DataFrame", text_col, label_col, valid_col, is_lm)
        text_names = _text_cols(df, text_col if is_listy(text_col) else [text_col], "TextDataLoaders.from_df")
        df = missing_texts(df, text_names, "TextDataLoaders.from_df", drop=drop_missing)
        # (blocks, or functions making one: DataBlock calls those)
        blocks: list[TransformBlock | Callable[..., TransformBlock]] = [
            TextBlock.from_df(text_col, text_vocab, is_lm, seq_len, backwards, tok=tok_tfm, tok_text_col=tok_text_col,
                              n_workers=n_workers)]
        if not is_lm:
            if y_block is None:
                multi = (is_listy(label_col) and len(label_col) > 1) or label_delim is not None
                if not multi:
                    _refuse_regression_labels(df, label_col[0] if is_listy(label_col) else label_col)
                blocks.append(MultiCategoryBlock if multi else CategoryBlock)
            else:
                blocks += list(y_block) if is_listy(y_block) else [y_block]
        splitter = RandomSplitter(valid_pct, seed=seed) if valid_col is None else ColSplitter(valid_col)
        dblock = DataBlock(blocks=blocks, get_x=ColReader(tok_text_col),
                           get_y=None if is_lm else ColReader(label_col, label_delim=label_delim), splitter=splitter)
        if is_lm:
            kwargs["seq_len"] = seq_len
        return _as(cls, dblock.dataloaders(df, path=path, **kwargs))

    @classmethod
    def from_csv(cls, path: str | os.PathLike, csv_fname: str = "labels.csv", header: Any = "infer",
                 delimiter: str | None = None, encoding: str | None = None, **kwargs: Any) -> "TextDataLoaders":
        """Loaders from the CSV file `path/csv_fname`, read with `encoding` (default UTF-8; e.g. `'latin-1'`) (see
        `from_df` for the other arguments)."""
        fname = Path(path) / csv_fname
        if not fname.is_file():
            raise FileNotFoundError(f"TextDataLoaders.from_csv: no file {str(fname)!r}; check path and csv_fname.")
        read_kw = {"delimiter": delimiter} if delimiter is not None else {}
        try:
            df = pd.read_csv(fname, header=header, encoding=encoding, **read_kw)
        except UnicodeDecodeError as e:
            # Same type (callers catching UnicodeDecodeError still do), with the file and the fix in the message.
            raise UnicodeDecodeError(
                e.encoding, e.object, e.start, e.end,
                f"{e.reason}: TextDataLoaders.from_csv could not read {str(fname)!r} as {encoding or 'utf-8'}; pass "
                "the file's encoding, e.g. from_csv(..., encoding='latin-1')") from e
        _check_cols(df, "TextDataLoaders.from_csv", repr(str(fname)), **kwargs)
        text_col = kwargs.get("text_col", 0)
        # Checked here too, so that the error names the file the rows are in.
        df = missing_texts(df, text_col if is_listy(text_col) else [text_col],
                           f"TextDataLoaders.from_csv({str(fname)!r})", drop=kwargs.get("drop_missing", False))
        return cls.from_df(df, path=path, **kwargs)


def _truncate(o: Any, n: int) -> Any:
    return o.truncate(n) if isinstance(o, TitledStr) else o


@typedispatch
def show_batch(x: TensorText, y, samples, ctxs=None, max_n: int = 10, trunc_at: int = 150, **kwargs):  # noqa: F811
    """Show text samples as a table: the decoded text (cut at `trunc_at` tokens) and the other columns."""
    samples = L((_truncate(s[0], trunc_at), *s[1:]) for s in samples)
    return show_batch[object](x, y, samples, ctxs=ctxs, max_n=max_n, **kwargs)


@typedispatch  # type: ignore[no-redef]  # one function per type (dispatched)
def show_batch(x: LMTensorText, y, samples, ctxs=None, max_n: int = 10, trunc_at: int = 150, **kwargs):  # noqa: F811
    """Show language-model samples as a table: the text and the (shifted) target text."""
    samples = L(tuple(_truncate(o, trunc_at) for o in s) for s in samples)
    return show_batch[object](x, y, samples, ctxs=ctxs, max_n=max_n, **kwargs)


@typedispatch
def show_results(x: TensorText, y, samples, outs, ctxs=None, max_n: int = 10, trunc_at: int = 150, **kwargs):
    """Show text samples with their targets and predictions as a table, the text cut at `trunc_at` tokens."""
    samples = L((_truncate(s[0], trunc_at), *s[1:]) for s in samples)
    return show_results[object](x, y, samples, outs, ctxs=ctxs, max_n=max_n, **kwargs)


@typedispatch
def plot_top_losses(x: TensorText, y, samples, outs, probs, losses, trunc_at: int = 150, **kwargs):
    """`Interpretation.plot_top_losses` for texts: a table of the decoded texts (cut at `trunc_at` tokens) with their
    target, prediction (a language model's: the predicted next tokens), probability and loss; returns the frame."""
    from tiers.train.interpret import plot_top_losses as generic  # registers the generic version

    samples = [tuple(_truncate(o, trunc_at) for o in s) for s in samples]
    outs = [tuple(_truncate(o, trunc_at) for o in (s if isinstance(s, tuple) else (s,))) for s in outs]
    return generic[object](x, y, samples, outs, probs, losses, **kwargs)
