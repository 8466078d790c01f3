"""The `Tokenizer` and `Numericalize` transforms: text to tokens to ids, and back, with `make_vocab`.

>>> tok = Tokenizer(BaseTokenizer())
>>> num = Numericalize(min_freq=1)
>>> num.setup([tok("Hello world")])
>>> ids = num(tok("Hello there"))
>>> tok.decode(num.decode(ids))
'xxbos xxmaj hello xxunk'
"""

import math
import os
import pickle
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from types import NoneType
from typing import Any, cast

import numpy as np
import pandas as pd
import torch

from tiers.dispatch import L
from tiers.pipeline import TitledStr, Transform
from tiers.tensors import TensorText
from tiers.text.parallel import (
    MissingTextError,
    _read_text,
    fn_counter_pkl,
    fn_lengths_pkl,
    tokenize_df,
    tokenize_folder,
)
from tiers.text.rules import defaults
from tiers.text.tokenizers import BaseTokenizer, SpacyTokenizer, TokenizeWithRules, as_rules

__all__ = ["Tokenizer", "Numericalize", "make_vocab", "LMTensorText", "reverse_text", "BaseTokenizer"]


_is_str = str.__instancecheck__  # about twice as fast as isinstance in a generator, for every token of every item


class LMTensorText(TensorText):
    """Token ids that are the input of a language model (the target is the same stream shifted by one)."""


def _df_of(items: Any) -> pd.DataFrame | None:
    """The DataFrame behind `items` (a DataFrame, or an `L` that stores one), else None."""
    if isinstance(items, pd.DataFrame):
        return items
    inner = getattr(items, "items", None)
    return inner if isinstance(inner, pd.DataFrame) else None


class Tokenizer(Transform):
    """Turn a text (`str`) or a text file (`Path`) into a list of tokens with `tok` and the pre-/post-rules (default
    `defaults.text_proc_rules` / `text_postproc_rules`); `decode` joins tokens back into a `TitledStr` (with `sep`, or
    with the tokenizer's own `decode` for subword tokenizers). Token lists pass through unchanged.

    Build it with `from_df` (tokenizes the whole DataFrame in parallel when set up) or `from_folder` (tokenizes the
    folder to disk once, then reads the token files).
    """

    # (NoneType stays out: these types are pickled with the loaders, and an export must load safely)
    input_types = (str, list, L, tuple, Path, np.ndarray, float)
    # Set by `from_df` only:
    text_cols: Any
    tok_text_col: str
    kwargs: dict[str, Any]
    # Set by `from_folder` only:
    path: Path
    output_dir: Path
    encoding: str

    def __init__(self, tok: Any, rules: Sequence[Callable] | None = None, counter: Counter | None = None,
                 lengths: dict | None = None, mode: str | None = None, sep: str = " ",
                 post_rules: Sequence[Callable] | None = None):
        super().__init__()
        if isinstance(tok, type):
            tok = tok()
        self.tok, self.counter, self.lengths, self.mode, self.sep = tok, counter, lengths, mode, sep
        self.rules = as_rules(defaults.text_proc_rules if rules is None else rules, "rules")
        self.post_rules = as_rules(defaults.text_postproc_rules if post_rules is None else post_rules, "post_rules")
        self._twr: TokenizeWithRules | None = None

    @classmethod
    def from_df(cls, text_cols: Any, tok: Any = None, rules: Sequence[Callable] | None = None, sep: str = " ",
                **kwargs: Any) -> "Tokenizer":
        """A Tokenizer that, when set up on a DataFrame, tokenizes its `text_cols` with `tokenize_df(**kwargs)` (in
        parallel, `n_workers`) into the column `tok_text_col` (default `text`) that the getter then reads."""
        if "drop_missing" in kwargs:
            # The DataBlock splits the rows before the tokenizer sees them: dropping rows here would shift the splits.
            raise TypeError("Tokenizer.from_df / TextBlock.from_df: drop_missing is not available in a DataBlock (the "
                            "rows are split before tokenization); drop the rows first, df.dropna(subset=[text "
                            "column]), or use TextDataLoaders.from_df(..., drop_missing=True).")
        res = cls(SpacyTokenizer() if tok is None else tok, rules=rules, mode="df", sep=sep,
                  post_rules=kwargs.pop("post_rules", None))
        res.kwargs, res.train_setup = kwargs, False  # the whole DataFrame is tokenized, not only the training rows
        res.text_cols, res.tok_text_col = text_cols, kwargs.get("tok_text_col", "text")
        return res

    @classmethod
    def from_folder(cls, path: str | os.PathLike, tok: Any = None, rules: Sequence[Callable] | None = None,
                    **kwargs: Any) -> "Tokenizer":
        """A Tokenizer for the text files under `path`: they are tokenized now (or the cache is reused) into
        `<path>_tok` by `tokenize_folder(**kwargs)`, and calls read those token files."""
        path = Path(path)
        tok = SpacyTokenizer() if tok is None else tok
        output_dir = tokenize_folder(path, tok=tok, rules=rules, **kwargs)
        res = cls(tok, rules=rules, mode="folder", post_rules=kwargs.get("post_rules"),
                  counter=pickle.loads((output_dir / fn_counter_pkl).read_bytes()),
                  lengths=pickle.loads((output_dir / fn_lengths_pkl).read_bytes()))
        res.path, res.output_dir = path, output_dir
        res.encoding = kwargs.get("encoding") or "utf8"  # new files (test_dl) are read as the folder's were
        return res

    def setups(self, dsets):
        if self.mode != "df" or dsets is None:
            return None
        df = _df_of(getattr(dsets, "items", None))
        if df is None:
            return None
        res, count = tokenize_df(df, self.text_cols, rules=self.rules, post_rules=self.post_rules,
                                 **{"tok": self.tok, **self.kwargs})
        dsets.items = L(res, use_list=None)
        if self.counter is None:
            self.counter = count
        return dsets

    def _tokenize1(self, text: str) -> L:
        if self._twr is None:
            self._twr = TokenizeWithRules(self.tok, self.rules, self.post_rules)
        return L(next(iter(self._twr([text]))))

    def _apply(self, m, x, kwargs):
        # A plain tuple of strings is a token list here, not several inputs to tokenize one by one.
        if m is self._encm and type(x) is tuple and x and all(map(_is_str, x)):
            return L(list(x))
        return super()._apply(m, x, kwargs)

    def encodes(self, o: str):
        return self._tokenize1(o)

    def encodes(self, o: list | L):  # type: ignore[no-redef]  # noqa: F811 (pre-tokenized: kept as it is, never tokenized again)
        if not all(map(_is_str, o)):
            bad = next(t for t in o if not isinstance(t, str))
            raise TypeError(f"Tokenizer: a token list holds {type(bad).__name__} {bad!r}; tokens must be strings "
                            "(a text to tokenize is a str; a pre-tokenized text is a list of str).")
        return o

    def encodes(self, o: np.ndarray):  # type: ignore[no-redef]  # noqa: F811
        # encodes is dispatched on the type at runtime: the `list | L` method takes this (mypy sees the first only).
        return self.encodes(L(o.tolist()) if o.ndim == 1 else o.tolist())  # type: ignore[arg-type]

    def encodes(self, o: float):  # type: ignore[no-redef]  # noqa: F811
        if math.isnan(o):
            raise MissingTextError("Tokenizer: the text is missing (NaN); it would be tokenized as the word 'nan'. "
                                   "Remove or fill missing texts (df.dropna(subset=[text column])) first.")
        return self._tokenize1(str(o))

    def encodes(self, o: NoneType):  # type: ignore[no-redef,nonetype-type]  # noqa: F811
        raise MissingTextError("Tokenizer: the text is None; it would be tokenized as the word 'None'. Remove or fill "
                               "missing texts (df.dropna(subset=[text column])) first.")

    def encodes(self, o: Path):  # type: ignore[no-redef]  # noqa: F811 (one dispatched method per input type)
        if self.mode == "folder" and o.is_relative_to(self.path):
            tok_file = self.output_dir / o.relative_to(self.path)
            if tok_file.is_file():
                text = tok_file.read_text(encoding="utf-8")
                return L(text.split(" ") if text else [])
        return self._tokenize1(_read_text(o, getattr(self, "encoding", "utf8")))

    def decodes(self, o):
        if self.sep == " " and callable(getattr(self.tok, "decode", None)):
            return TitledStr(self.tok.decode(list(o)))
        return TitledStr(self.sep.join(o))

    def get_lengths(self, items: Any) -> list[int] | None:
        """Token counts of `items` known without tokenizing again (from the tokenized DataFrame's `text_length`
        column, or the folder's `lengths.pkl`), or None."""
        if self.mode == "df":
            df = _df_of(items)
            col = f"{getattr(self, 'tok_text_col', 'text')}_length"
            if df is not None and col in df.columns:
                return df[col].tolist()
        if self.mode == "folder" and self.lengths is not None:
            try:
                return [self.lengths[Path(i).relative_to(self.path).as_posix()] for i in items]
            except (KeyError, ValueError, TypeError):
                return None
        return None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_twr"] = None
        return state


def make_vocab(count: Counter, min_freq: int = 3, max_vocab: int = 60000,
               special_toks: Sequence[str] | None = None) -> list[str]:
    """The vocabulary of `count`: the special tokens first (so `xxunk` is 0 and `xxpad` 1), then the tokens seen at
    least `min_freq` times, most common first, at most `max_vocab` in all, padded with `xxfake` to a multiple of 8
    (GPU-friendly embedding sizes).

    >>> make_vocab(Counter(["a", "a", "b"]), min_freq=2)[:10]
    ['xxunk', 'xxpad', 'xxbos', 'xxeos', 'xxfld', 'xxrep', 'xxwrep', 'xxup', 'xxmaj', 'a']
    """
    if min_freq < 0 or max_vocab < 1:
        raise ValueError(f"make_vocab: min_freq={min_freq} must be >= 0 and max_vocab={max_vocab} >= 1.")
    special = list(defaults.text_spec_tok if special_toks is None else special_toks)
    spec = set(special)
    vocab = special + [o for o, c in count.most_common() if c >= min_freq and o not in spec]
    vocab = vocab[:max_vocab]
    return vocab + ["xxfake"] * (-len(vocab) % 8)


class Numericalize(Transform):
    """Map tokens to ids with a vocabulary (given, or made by `make_vocab` from the tokens of the training set when
    set up); unknown tokens map to 0 (`xxunk`). Encodes to `TensorText`; decodes to an `L` of tokens."""

    input_types = (list, L)

    def __init__(self, vocab: Sequence[str] | None = None, min_freq: int = 3, max_vocab: int = 60000,
                 special_toks: Sequence[str] | None = None):
        super().__init__()
        self.min_freq, self.max_vocab, self.special_toks = min_freq, max_vocab, special_toks
        self.vocab: list[str] | None = None
        if vocab is not None:
            self._set_vocab(vocab)

    def _set_vocab(self, vocab: Sequence[str]) -> None:
        self.vocab = list(vocab)
        # A defaultdict like fastai's, but read with .get so unknown tokens are never inserted into it.
        self.o2i = defaultdict(int, {v: k for k, v in enumerate(self.vocab) if v != "xxfake"})

    def setups(self, dsets):
        if dsets is None or self.vocab is not None:
            return
        # Counted on the items given (the training set), so the validation set never shapes the vocabulary.
        count: Counter = Counter()
        for o in dsets:
            count.update(o[0] if isinstance(o, tuple) else o)
        self._set_vocab(make_vocab(count, self.min_freq, self.max_vocab, self.special_toks))

    def encodes(self, o: list | L):
        if self.vocab is None:
            raise RuntimeError("Numericalize has no vocabulary: pass vocab=... or set it up on tokenized texts first.")
        get = self.o2i.get
        return TensorText(torch.tensor([get(t, 0) for t in o], dtype=torch.long))

    def decodes(self, o: TensorText):
        vocab = self.vocab
        if vocab is None:
            raise RuntimeError("Numericalize has no vocabulary to decode with: pass vocab=... or set it up on "
                               "tokenized texts first.")
        return L([vocab[i] for i in o.view(-1).tolist()])

    def __repr__(self) -> str:
        return f"Numericalize(vocab={'None' if self.vocab is None else len(self.vocab)})"


def reverse_text(x: TensorText) -> TensorText:
    """Reverse a sequence of token ids (for backwards language models)."""
    return cast(TensorText, x.flip(0))  # flip keeps the tensor's subclass
