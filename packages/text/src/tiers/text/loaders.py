"""Loaders for text: `LMDataLoader` (a continuous stream of tokens for language models) and `SortedDL` (documents
of similar lengths batched together, padded by `Pad_Chunk`), with the padding functions.
"""

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import torch

from tiers.data import TfmdDL
from tiers.dispatch import retain_type
from tiers.pipeline import Transform
from tiers.tensors import TensorText
from tiers.text.transforms import LMTensorText, Tokenizer

__all__ = ["pad_input", "pad_chunk", "pad_input_chunk", "Pad_Input", "Pad_Chunk", "LMDataLoader", "SortedDL"]


def _maybe_first(o: Any) -> Any:
    return o[0] if isinstance(o, tuple) else o


def _find_tokenizer(ds: Any) -> tuple[Tokenizer | None, Any]:
    """The `Tokenizer` among the transforms of `ds` (a Datasets or a TfmdLists) and the TfmdLists holding it."""
    tls = getattr(ds, "tls", None)
    for tl in (list(tls) if tls is not None else [ds]):
        for f in getattr(getattr(tl, "tfms", None), "fs", None) or []:
            if isinstance(f, Tokenizer):
                return f, tl
    return None, None


def _get_lengths(ds: Any) -> list[int] | None:
    """Token counts of the documents of `ds` known from tokenization (no pass over the data), or None."""
    tok, tl = _find_tokenizer(ds)
    if tok is None:
        return None
    lens = tok.get_lengths(tl.items)
    return None if lens is None or len(lens) != len(ds) else list(lens)


# ---------------------------------------------------------------------------------------------------- padding
def pad_input(samples: Sequence[tuple], pad_idx: int = 1, pad_fields: int | Sequence[int] = 0,
              pad_first: bool = False, backwards: bool = False) -> list[tuple]:
    """Pad the fields `pad_fields` of each sample (tuples of tensors) with `pad_idx` to the longest in `samples`
    (at the start if `pad_first`); `backwards` flips the padded sequences (and the side padding goes on).

    >>> pad_input([(TensorText([1, 2, 3]), 0), (TensorText([4]), 1)], pad_idx=0)
    [(TensorText([1, 2, 3]), 0), (TensorText([4, 0, 0]), 1)]
    """
    fields = [pad_fields] if isinstance(pad_fields, int) else list(pad_fields)
    max_len = {f: max(len(s[f]) for s in samples) for f in fields}
    if backwards:
        pad_first = not pad_first

    def one(i: int, x: Any) -> Any:
        if i not in max_len:
            return x
        pad = x.new_full((max_len[i] - x.shape[0],), pad_idx)
        x1 = torch.cat([pad, x] if pad_first else [x, pad])
        if backwards:
            x1 = x1.flip(0)
        return retain_type(x1, x)

    return [tuple(one(i, x) for i, x in enumerate(s)) for s in samples]


def pad_chunk(x: torch.Tensor, pad_idx: int = 1, pad_first: bool = True, seq_len: int = 72,
              pad_len: int = 10) -> torch.Tensor:
    """Pad `x` to `pad_len` with `pad_idx`: whole chunks of `seq_len` pads on one side (the start if `pad_first`)
    and the remainder at the end, so the text starts on a `seq_len` boundary (what `SentenceEncoder` needs).

    >>> pad_chunk(TensorText([5, 6, 7]), pad_idx=0, seq_len=2, pad_len=8)
    TensorText([0, 0, 0, 0, 5, 6, 7, 0])
    """
    n = pad_len - x.shape[0]
    if n < 0:
        raise ValueError(f"pad_chunk: pad_len={pad_len} is shorter than the sequence ({x.shape[0]} tokens).")
    chunks = x.new_full(((n // seq_len) * seq_len,), pad_idx)
    rest = x.new_full((n % seq_len,), pad_idx)
    return retain_type(torch.cat([chunks, x, rest] if pad_first else [x, chunks, rest]), x)


def pad_input_chunk(samples: Sequence[tuple], n_inp: int = 1, pad_idx: int = 1, pad_first: bool = True,
                    seq_len: int = 72) -> list[tuple]:
    """Pad the first `n_inp` fields of each sample to the longest of them with `pad_chunk`."""
    max_len = max(len(s[i]) for s in samples for i in range(n_inp))
    return [tuple(pad_chunk(s[i], pad_idx, pad_first, seq_len, max_len) for i in range(n_inp)) + tuple(s[n_inp:])
            for s in samples]


class Pad_Chunk(Transform):
    """`before_batch` transform: pad the text of a list of samples with `pad_input_chunk`; decoding a `TensorText`
    strips the padding (unless `decode=False`)."""

    def __init__(self, pad_idx: int = 1, pad_first: bool = True, seq_len: int = 72, decode: bool = True,
                 n_inp: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.pad_idx, self.pad_first, self.seq_len, self.strip, self.n_inp = pad_idx, pad_first, seq_len, decode, n_inp

    def __call__(self, x: Any, split_idx: int | None = None, **kwargs: Any) -> Any:
        if isinstance(x, list) and x and isinstance(x[0], tuple):
            return pad_input_chunk(x, self.n_inp, self.pad_idx, self.pad_first, self.seq_len)
        if isinstance(x, TensorText):
            return x
        return super().__call__(x, split_idx=split_idx, **kwargs)

    def decodes(self, o: TensorText):
        return o[o != self.pad_idx] if self.strip else o

    def __repr__(self) -> str:
        return f"Pad_Chunk(pad_idx={self.pad_idx}, pad_first={self.pad_first}, seq_len={self.seq_len})"


class Pad_Input(Transform):
    """`before_batch` transform padding a list of samples with `pad_input`; decoding strips the padding."""

    def __init__(self, pad_idx: int = 1, pad_fields: int | Sequence[int] = 0, pad_first: bool = False,
                 backwards: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.pad_idx, self.pad_fields, self.pad_first, self.backwards = pad_idx, pad_fields, pad_first, backwards

    def __call__(self, x: Any, split_idx: int | None = None, **kwargs: Any) -> Any:
        if isinstance(x, list) and x and isinstance(x[0], tuple):
            return pad_input(x, self.pad_idx, self.pad_fields, self.pad_first, self.backwards)
        return super().__call__(x, split_idx=split_idx, **kwargs)

    def decodes(self, o: TensorText):
        return o[o != self.pad_idx]


# ---------------------------------------------------------------------------------------------------- LM loader
class LMDataLoader(TfmdDL):
    """Language-model batches: the documents of `dataset` (token-id tensors) are concatenated into one stream, split
    into `bs` contiguous rows, and read `seq_len` tokens at a time; the target is the input shifted by one token,
    so row `r` of batch `k+1` continues row `r` of batch `k` (the model's hidden state carries over). With
    `shuffle`, the documents are put in a new random order each epoch. The last batch may be shorter.

    `lens` (token counts) lets the loader know its size without reading the data; it defaults to the counts the
    `Tokenizer` recorded. The numericalized documents are read once and kept (`cache` is accepted for fastai
    compatibility).
    """

    bs: int  # checked in __init__: the stream is cut into bs rows (bs=None, no batching, has no meaning here)

    def __init__(self, dataset: Any, lens: Sequence[int] | None = None, cache: int = 2, bs: int = 64,
                 seq_len: int = 72, num_workers: int = 0, **kwargs: Any):
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"LMDataLoader: seq_len={seq_len!r} must be a positive int.")
        try:
            rows = operator.index(bs)  # numpy integers are fine
        except TypeError:
            rows = 0
        if rows < 1:
            raise ValueError(f"LMDataLoader: bs={bs!r} must be a positive int: the token stream is cut into bs rows "
                             "(bs=None, no batching, has no meaning for a language model).")
        kwargs.pop("n", None)  # the number of items follows from the size of the corpus
        self.seq_len, self.cache = seq_len, cache
        self._docs: tuple[torch.Tensor, torch.Tensor] | None = kwargs.pop("_docs", None)
        known = list(lens) if lens is not None else _get_lengths(dataset)
        if known is None:
            self._docs = self._read_docs(dataset)
            known = (self._docs[1][1:] - self._docs[1][:-1]).tolist()
        self.lens: list[int] = known
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self.doc_order: list[int] | None = None
        self._set_sizes(rows)
        super().__init__(dataset, bs=bs, num_workers=num_workers, **kwargs)
        self.n = self.n_batches * bs

    def _set_sizes(self, bs: int) -> None:
        total = sum(self.lens)
        # One token is kept for the last target; the tail that does not fill all bs rows is dropped.
        self.bl = (total - 1) // bs if total > 0 else 0
        if not self.lens:  # no documents at all (the empty loaders `export` keeps): no batches
            self.n_batches, self.last_len = 0, 0
            return
        if self.bl < 1:
            raise ValueError(f"LMDataLoader: the corpus has {total} tokens, too few for bs={bs} rows; use a smaller "
                             "bs or more text.")
        self.n_batches = math.ceil(self.bl / self.seq_len)
        self.last_len = self.bl - (self.n_batches - 1) * self.seq_len

    @staticmethod
    def _read_docs(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """All documents as one flat tensor and the offsets where each starts (plus the total at the end)."""
        docs = [torch.as_tensor(_maybe_first(dataset[i])).view(-1) for i in range(len(dataset))]
        lens = torch.tensor([0] + [len(d) for d in docs])
        flat = torch.cat(docs) if docs else torch.zeros(0, dtype=torch.long)
        return flat.as_subclass(torch.Tensor), torch.cumsum(lens, 0)

    def _make_rows(self) -> None:
        if self._docs is None:
            self._docs = self._read_docs(self.dataset)
            lens = (self._docs[1][1:] - self._docs[1][:-1]).tolist()
            if lens != self.lens:  # a transform changed the lengths the tokenizer recorded
                self.lens = lens
                self._set_sizes(self.bs)
                self.n = self.n_batches * self.bs
        flat, offs = self._docs
        if self.doc_order is None:
            stream = flat
        else:
            o = offs.tolist()
            stream = torch.cat([flat[o[i]:o[i + 1]] for i in self.doc_order])
        n = self.bs * self.bl
        self._x = stream[:n].view(self.bs, self.bl)  # (bs, bl): row r is the r-th contiguous part of the stream
        self._y = stream[1:n + 1].view(self.bs, self.bl)

    def shuffle_fn(self, idxs: Sequence[int]) -> list[int]:
        """Put the documents in a new random order (the stream is rebuilt); the items keep their order."""
        # Shuffling re-orders the documents (then the stream is rebuilt), not the items: items must stay in order
        # for the rows to be contiguous from one batch to the next.
        g = torch.Generator().manual_seed(self.rng.getrandbits(63))
        self.doc_order = torch.randperm(len(self.lens), generator=g).tolist()
        self._make_rows()  # here, in the main process, so worker processes start with the epoch's stream
        return idxs if isinstance(idxs, list) else list(idxs)  # a list already when called by get_idxs

    def before_iter(self) -> None:
        """Build the token stream (once) before an epoch, in the main process."""
        super().before_iter()
        if self._x is None and self.n:
            self._make_rows()

    def create_item(self, seq: int | None) -> tuple[LMTensorText, TensorText]:
        """Item `seq`: row `seq % bs` of batch `seq // bs`, as `(input, target shifted by one)`."""
        if seq is None:
            seq = 0
        n = self.n
        assert n is not None  # set from the corpus in __init__ (and _make_rows), never None here
        if seq >= n:
            raise IndexError(f"LMDataLoader: item {seq} is past the {n} items of this loader.")
        if self._x is None:
            self._make_rows()
        x, y = self._x, self._y
        assert x is not None and y is not None  # _make_rows built them
        k, r = divmod(seq, self.bs)
        sl = self.last_len if k == self.n_batches - 1 else self.seq_len
        st = k * self.seq_len
        return LMTensorText(x[r, st:st + sl]), TensorText(y[r, st:st + sl])

    # fastai's signature: the second parameter is seq_len (DataLoader.new's `cls` is still accepted by keyword).
    def new(self, dataset: Any = None, seq_len: int | None = None,  # type: ignore[override]
            **kwargs: Any) -> "LMDataLoader":
        """A loader like this one (over `dataset`, default the same, sharing its cached documents)."""
        same = dataset is None
        kwargs.setdefault("lens", self.lens if same else None)
        if same and self._docs is not None:
            kwargs["_docs"] = self._docs
        res = super().new(dataset=dataset, seq_len=self.seq_len if seq_len is None else seq_len, **kwargs)
        return cast(LMDataLoader, res)  # of this class unless `cls` says otherwise

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_x"] = state["_y"] = None
        return state


# ---------------------------------------------------------------------------------------------------- sorted loader
def _default_sort(x: Any) -> int:
    return len(x[0])


class SortedDL(TfmdDL):
    """Batches of documents of similar lengths (less padding). Unshuffled (validation), items come longest first.
    Shuffled (training), the items are shuffled, sorted by length within chunks of 50 batches, cut into batches, and
    the batches shuffled, except that the batch holding the longest item comes first (an out-of-memory error shows at
    once). `res` holds each item's sort key (default: its token count, from the `Tokenizer` when it recorded them).
    """

    def __init__(self, dataset: Any, sort_func: Callable | None = None, res: Sequence | None = None,
                 seq_len: int | None = None, **kwargs: Any):
        super().__init__(dataset, **kwargs)
        self.sort_func, self.seq_len = sort_func, seq_len
        if res is None and sort_func is None:
            res = _get_lengths(dataset)
        if res is None:
            f = sort_func or _default_sort
            res = [f(self.do_item(i)) for i in range(len(dataset))]
        self.res = list(res)
        self.idx_max = max(range(len(self.res)), key=self.res.__getitem__) if self.res else 0

    def get_idxs(self) -> Iterable[int]:
        """The epoch's item order: bucketed at random when shuffling, else longest first."""
        idxs = super().get_idxs()
        if self.shuffle:
            return idxs
        return sorted(idxs, key=lambda i: self.res[i], reverse=True)

    def shuffle_fn(self, idxs: Sequence[int]) -> list[int]:
        """Shuffle, sort within chunks of 50 batches, batch, shuffle the batches (longest batch first)."""
        idxs = list(idxs)
        g = torch.Generator().manual_seed(self.rng.getrandbits(63))
        idxs = [idxs[i] for i in torch.randperm(len(idxs), generator=g).tolist()]
        if self.idx_max in idxs:
            j = idxs.index(self.idx_max)
            idxs[0], idxs[j] = idxs[j], idxs[0]
        res, bs = self.res, self.bs or 1
        sz = bs * 50
        srt = [i for k in range(0, len(idxs), sz) for i in sorted(idxs[k:k + sz], key=res.__getitem__, reverse=True)]
        batches = [srt[k:k + bs] for k in range(0, len(srt), bs)]
        if len(batches) <= 2:
            return [i for b in batches for i in b]
        middle = batches[1:-1]
        order = torch.randperm(len(middle), generator=g).tolist()
        # The first batch holds the longest item; the last (maybe partial, dropped with drop_last) stays last.
        return batches[0] + [i for k in order for i in middle[k]] + batches[-1]

    def new(self, dataset: Any = None, cls: type | None = None, **kwargs: Any) -> "SortedDL":
        """A loader like this one (over `dataset`, default the same; `val_res` gives the sort keys of a new one)."""
        res = kwargs.pop("val_res", None)
        if res is None and dataset is None:
            res = self.res
        kwargs.setdefault("sort_func", self.sort_func)
        kwargs.setdefault("seq_len", self.seq_len)
        return cast(SortedDL, super().new(dataset=dataset, cls=cls, res=res, **kwargs))  # this class unless `cls`
