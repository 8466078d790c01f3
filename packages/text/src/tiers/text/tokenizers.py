"""Word and subword tokenizers, and `TokenizeWithRules`, which wraps any of them with pre- and post-rules.

A tokenizer is any object called with a list of strings that returns an iterable of token lists (one per string),
with an optional `setup(items, rules) -> dict` to learn from the corpus first (SentencePiece trains there) and an
optional `decode(tokens) -> str`. Anything with that interface gets the parallel and caching machinery for free.

>>> tok = TokenizeWithRules(BaseTokenizer())
>>> next(iter(tok(["Hello  WORLD"])))
['xxbos', 'xxmaj', 'hello', 'xxup', 'world']
"""

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from tiers.dispatch.extras import require
from tiers.text.rules import (
    _caps_maj_lower,
    _caps_then_maj,
    defaults,
    lowercase,
    replace_all_caps,
    replace_maj,
)

__all__ = [
    "BaseTokenizer", "SpacyTokenizer", "WordTokenizer", "SentencePieceTokenizer", "SubwordTokenizer",
    "TokenizeWithRules", "tokenize1", "eu_langs", "as_rules",
]

# Languages with a SentencePiece character coverage of 0.99999 (fastai's list); others get 0.9998.
eu_langs = ["bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "it", "lt", "lv", "mt", "nl",
            "pl", "pt", "ro", "sk", "sl", "sv"]


class BaseTokenizer:
    """The simplest tokenizer: split each string on `split_char`.

    >>> list(BaseTokenizer()(["a b", "c"]))
    [['a', 'b'], ['c']]
    """

    def __init__(self, split_char: str = " ", **kwargs: Any):
        self.split_char = split_char

    def __call__(self, items: Iterable[str]) -> Iterator[list[str]]:
        return (t.split(self.split_char) for t in items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split_char={self.split_char!r})"


class _SpacyTok(Protocol):
    # What this module uses of a spaCy pipeline's tokenizer (every one `spacy.blank` builds has it).
    def __call__(self, text: str) -> Any: ...
    def pipe(self, texts: Iterable[str], batch_size: int = ...) -> Iterator[Any]: ...


class SpacyTokenizer:
    """Tokenize with a blank spaCy pipeline for `lang` (rules only, no model download), `buf_sz` texts at a time.

    Special tokens always stay whole (registered as spaCy special cases where the language's rules would split them).

    >>> list(SpacyTokenizer()(["Don't panic."]))
    [['Do', "n't", 'panic', '.']]
    """

    def __init__(self, lang: str = "en", special_toks: Sequence[str] | None = None, buf_sz: int = 5000):
        self.lang, self.buf_sz = lang, buf_sz
        self.special_toks = list(defaults.text_spec_tok if special_toks is None else special_toks)
        self._build()

    def _build(self) -> None:
        import spacy
        from spacy.symbols import ORTH

        try:
            nlp = spacy.blank(self.lang)
        except (ImportError, KeyError) as e:
            raise ValueError(f"SpacyTokenizer: spaCy has no language {self.lang!r} ({e}); "
                             "pass an ISO code spaCy supports, such as 'en', 'fr' or 'xx'.") from e
        # Every tokenizer spacy.blank builds has `pipe`: the rule-based one, and the DummyTokenizer subclasses of the
        # languages that segment with another library (zh, ja, ko, th, vi).
        tokenizer = cast(_SpacyTok, nlp.tokenizer)
        # Special cases switch off part of spaCy's tokenizer cache (about 4x slower), so register only the special
        # tokens this language's rules would split.
        for w in self.special_toks:
            if [t.text for t in tokenizer(w)] != [w]:
                add_special_case = getattr(tokenizer, "add_special_case", None)
                if add_special_case is None:
                    raise ValueError(
                        f"SpacyTokenizer: spaCy's {self.lang!r} tokenizer ({type(tokenizer).__name__}) splits the "
                        f"special token {w!r} and cannot be told to keep it whole (it has no rule-based special "
                        "cases), so the special tokens would be lost; use SentencePieceTokenizer(lang=...) for this "
                        "language, or pass special_toks= that it keeps whole.")
                add_special_case(w, [{ORTH: w}])
        # The tokenizer alone: a blank pipeline has no components, so nlp.pipe would only add overhead.
        self._tokenizer, self._strings, self._orth = tokenizer, nlp.vocab.strings, ORTH
        self._texts: dict[int, str] = {}

    def _words(self, doc) -> list[str]:
        # Token texts through their ORTH hashes and a hash -> str cache: about 2x faster than `[t.text for t in doc]`,
        # which builds a Token object per token.
        hs = doc.to_array(self._orth).tolist()
        toks = list(map(self._texts.get, hs))
        if None in toks:
            for i, t in enumerate(toks):
                if t is None:
                    toks[i] = self._texts[hs[i]] = self._strings[hs[i]]
        return cast(list[str], toks)  # every None was filled above

    def __call__(self, items: Iterable[str]) -> Iterator[list[str]]:
        return (self._words(doc) for doc in self._tokenizer.pipe(map(str, items), batch_size=self.buf_sz))

    # Rebuild the spaCy objects on unpickling rather than shipping them to worker processes.
    def __getstate__(self) -> dict:
        return {"lang": self.lang, "buf_sz": self.buf_sz, "special_toks": self.special_toks}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build()

    def __repr__(self) -> str:
        return f"SpacyTokenizer(lang={self.lang!r})"


WordTokenizer = SpacyTokenizer


class SentencePieceTokenizer:
    """Subword tokenizer: trains a SentencePiece model (`unigram` or `bpe`) on the corpus in `setup`, and caches it.

    The model file is named after a hash of the corpus and the settings, in `cache_dir`, so the same corpus with the
    same settings reuses the trained model. Pass `sp_model` to use an existing model file instead.

    >>> tok = SentencePieceTokenizer(vocab_sz=60, cache_dir="/tmp/spm")
    >>> _ = tok.setup(["the cat sat on the mat"] * 50)
    >>> "".join(next(iter(tok(["the cat"])))).replace("▁", " ").strip()
    'the cat'
    """

    def __init__(self, lang: str = "en", special_toks: Sequence[str] | None = None,
                 sp_model: str | os.PathLike | None = None, vocab_sz: int | None = None, max_vocab_sz: int = 30000,
                 model_type: str = "unigram", char_coverage: float | None = None,
                 cache_dir: str | os.PathLike = "tmp"):
        if model_type not in ("unigram", "bpe", "char", "word"):
            raise ValueError(f"SentencePieceTokenizer: model_type={model_type!r} is not one of "
                             "'unigram', 'bpe', 'char', 'word'.")
        # fail at construction, not after the corpus is read and the DataLoaders half built
        require("sentencepiece", dist="tiers-text", extra="sentencepiece", what="SentencePieceTokenizer")
        self.lang, self.vocab_sz, self.max_vocab_sz, self.model_type = lang, vocab_sz, max_vocab_sz, model_type
        self.special_toks = list(defaults.text_spec_tok if special_toks is None else special_toks)
        self.char_coverage = char_coverage if char_coverage is not None else (0.99999 if lang in eu_langs else 0.9998)
        self.cache_dir = Path(cache_dir)
        self.sp_model = None if sp_model is None else str(sp_model)
        self.tok: Any = None  # a sentencepiece.SentencePieceProcessor once loaded
        if self.sp_model is not None:
            self._load(self.sp_model)

    def _load(self, sp_model: str) -> None:
        spm = require("sentencepiece", dist="tiers-text", extra="sentencepiece", what="SentencePieceTokenizer")

        if not Path(sp_model).is_file():
            raise FileNotFoundError(f"SentencePieceTokenizer: sp_model {sp_model!r} does not exist; "
                                    "train one with setup(texts) or pass the path of a .model file.")
        self.tok = spm.SentencePieceProcessor(model_file=sp_model)

    def _get_vocab_sz(self, texts: Sequence[str]) -> int:
        # A vocabulary that grows with the corpus (a quarter of its distinct words), large enough to hold every
        # character and special token, rounded up to a multiple of 8 and capped at max_vocab_sz.
        n_chars = len(set().union(*map(set, texts))) if texts else 0
        n_words = len(set(w for t in texts for w in t.split()))
        res = max(n_words // 4, n_chars + len(self.special_toks) + 8, 29)
        res = (res + 7) // 8 * 8
        return min(res, self.max_vocab_sz)

    def train(self, texts: Sequence[str]) -> str:
        """Train (or reuse from the cache) a model on `texts`; return the path of the `.model` file."""
        spm = require("sentencepiece", dist="tiers-text", extra="sentencepiece", what="SentencePieceTokenizer")

        texts = [t for t in texts if t.strip()]
        if not texts:
            raise ValueError("SentencePieceTokenizer.train: the corpus is empty; pass at least one non-blank text.")
        vocab_sz = self.vocab_sz if self.vocab_sz is not None else self._get_vocab_sz(texts)
        h = hashlib.sha1()
        for t in texts:
            h.update(t.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        h.update(repr((vocab_sz, self.model_type, self.char_coverage, self.special_toks)).encode())
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        prefix = self.cache_dir / f"spm_{h.hexdigest()[:16]}"
        model = prefix.with_suffix(".model")
        if not model.is_file():
            # Train under a private prefix and rename, so a concurrent reader never sees a half-written model.
            tmp_prefix = self.cache_dir / f".tmp_{prefix.name}_{os.getpid()}"
            raw = tmp_prefix.with_suffix(".txt")
            raw.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
            user_symbols = [t for t in self.special_toks if t != self.special_toks[0]]
            try:
                spm.SentencePieceTrainer.train(
                    input=str(raw), model_prefix=str(tmp_prefix), vocab_size=vocab_sz, model_type=self.model_type,
                    character_coverage=self.char_coverage, unk_id=0, unk_piece=self.special_toks[0],
                    pad_id=-1, bos_id=-1, eos_id=-1, user_defined_symbols=user_symbols, minloglevel=2,
                    hard_vocab_limit=False, num_threads=1)
            finally:
                raw.unlink(missing_ok=True)
            os.replace(tmp_prefix.with_suffix(".vocab"), prefix.with_suffix(".vocab"))
            os.replace(tmp_prefix.with_suffix(".model"), model)
        return str(model)

    def setup(self, items: Sequence[str], rules: Sequence[Callable] | None = None) -> dict:
        """Train on `items` (after the pre-`rules`) unless a model is already loaded; return `{'sp_model': path}`."""
        if self.tok is None:
            f = _compose(as_rules(defaults.text_proc_rules if rules is None else rules))
            self.sp_model = self.train([f(str(t)) for t in items])
            self._load(self.sp_model)
        return {"sp_model": self.sp_model}

    def __call__(self, items: Iterable[str]) -> Iterator[list[str]]:
        if self.tok is None:
            raise RuntimeError("SentencePieceTokenizer: no model yet; call setup(texts) first or pass sp_model.")
        buf: list[str] = []
        for t in items:
            buf.append(str(t))
            if len(buf) == 1000:
                yield from self.tok.encode(buf, out_type=str)
                buf = []
        if buf:
            yield from self.tok.encode(buf, out_type=str)

    def decode(self, toks: Sequence[str]) -> str:
        """Join subword pieces back into text (`▁` marks the start of a word)."""
        return "".join(toks).replace("▁", " ").strip()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "tok"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.tok = None
        if self.sp_model is not None:
            self._load(self.sp_model)

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(model_type={self.model_type!r}, vocab_sz={self.vocab_sz}, sp_model={self.sp_model!r})"


SubwordTokenizer = SentencePieceTokenizer


def _compose(fs: Sequence[Callable]) -> Callable[[Any], Any]:
    """One function applying `fs` in order; adjacent `replace_all_caps, replace_maj(, lowercase)` run fused."""
    fs = list(fs)
    fused: list[Callable] = []
    i = 0
    while i < len(fs):
        if fs[i:i + 3] == [replace_all_caps, replace_maj, lowercase]:
            fused.append(_caps_maj_lower)
            i += 3
        elif fs[i] is replace_all_caps and i + 1 < len(fs) and fs[i + 1] is replace_maj:
            fused.append(_caps_then_maj)
            i += 2
        else:
            fused.append(fs[i])
            i += 1

    def apply(x: Any) -> Any:
        for f in fused:
            x = f(x)
        return x

    return apply


def as_rules(rules: Callable | Iterable[Callable], name: str = "rules") -> list[Callable]:
    """`rules` as a list: a single rule (a function) is wrapped in one, as fastai does.

    >>> as_rules(str.lower)
    [<method 'lower' of 'str' objects>]
    """
    if callable(rules) and not isinstance(rules, (list, tuple)):
        return [rules]
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Iterable):
        raise TypeError(f"{name}={rules!r} is neither a function nor a list of functions; pass a rule (a function "
                        "of a text, or of a token list for post_rules) or a list of them.")
    out = list(rules)
    bad = [r for r in out if not callable(r)]
    if bad:
        raise TypeError(f"{name}: {bad[0]!r} is not callable; each rule must be a function.")
    return out


class TokenizeWithRules:
    """Apply pre-`rules` to each string, tokenize the batch with `tok`, then apply `post_rules` to each token list.

    >>> list(TokenizeWithRules(BaseTokenizer(), rules=[str.lower], post_rules=[])(["A B"]))
    [['a', 'b']]
    """

    def __init__(self, tok: Any, rules: Sequence[Callable] | None = None,
                 post_rules: Sequence[Callable] | None = None):
        self.tok = tok
        self.rules = as_rules(defaults.text_proc_rules if rules is None else rules, "rules")
        self.post_rules = as_rules(defaults.text_postproc_rules if post_rules is None else post_rules, "post_rules")
        self._pre, self._post = _compose(self.rules), _compose(self.post_rules)

    def __call__(self, batch: Iterable[str]) -> Iterator[list[str]]:
        pre, post = self._pre, self._post
        toks = self.tok(pre(t) if isinstance(t, str) else pre(str(t)) for t in batch)
        if not self.post_rules:
            return (list(t) for t in toks)
        return (post(list(t)) for t in toks)

    def __getstate__(self) -> dict:
        return {"tok": self.tok, "rules": self.rules, "post_rules": self.post_rules}

    def __setstate__(self, state: dict) -> None:
        type(self).__init__(self, **state)


def tokenize1(text: str, tok: Any, rules: Sequence[Callable] | None = None,
              post_rules: Sequence[Callable] | None = None) -> list[str]:
    """Tokenize one `text` with `tok` and the rules.

    >>> tokenize1("Hi THERE", BaseTokenizer())
    ['xxbos', 'xxmaj', 'hi', 'xxup', 'there']
    """
    return next(iter(TokenizeWithRules(tok, rules, post_rules)([text])))
