"""Loaders for `TabularPandas`: `TabDataLoader` builds each batch by indexing whole tensors (no per-row Python
work), and `TabularDataLoaders` makes them from a DataFrame or CSV and shows batches and results as DataFrames."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import torch

from tiers.data.dataloaders import DataLoaders
from tiers.data.load import DataLoader
from tiers.data.show import show_table
from tiers.tabular.core import TabularPandas, _listify, _positions, need_frame, read_csv
from tiers.tensors.semantic import TensorCategory

if TYPE_CHECKING:
    from tiers.data.block import TransformBlock
    from tiers.pipeline import Transform
    from tiers.tabular.core import TabularProc

__all__ = ["TabDataLoader", "TabWeightedDL", "TabPartialDL", "TabularDataLoaders"]


def _no_bs(where: str) -> ValueError:
    # bs=None means "no batching" to a DataLoader; these loaders build every batch by indexing rows, so they need one.
    return ValueError(f"{where}: bs=None is not supported: a tabular loader builds each batch by indexing rows; "
                      "pass bs=<rows per batch>, e.g. bs=64.")


def _pred_columns(to: TabularPandas, n_out: int = 1) -> dict[Any, str]:
    """`{target column: its prediction's column}` as `show_results` names them (`'<target>_pred'`; `'y<i>_pred'` for
    the `n_out` outputs of a frame without targets). Column names are only keys: any hashable works (the integer
    names of `pd.DataFrame(array)` or `read_csv(header=None)` included), so look them up here, not by suffix."""
    if to.y_kind == "category" and to.y_names:
        return {to.y_names[0]: f"{to.y_names[0]}_pred"}
    names = list(to.y_names) or [f"y{i}" for i in range(n_out)]
    return {c: f"{c}_pred" for c in names}


def _show(df: pd.DataFrame, show: bool) -> pd.DataFrame | None:
    if not show:
        return df
    show_table(df)  # an HTML DataFrame in a notebook, width-aware text in a terminal
    return None


class TabDataLoader(DataLoader):
    """A `DataLoader` over a processed `TabularPandas`: batches are `(cats, conts, ys)` (`(cats, ys)` when the
    `TabularPandas` has `with_cont=False`, as for collaborative filtering; no `ys` for unlabelled data). The rows are
    turned into tensors once; each batch is a single tensor index, so an epoch costs a few tensor ops per batch.
    Classification targets are `TensorCategory` (so the Learner picks cross entropy), regression targets float.

    >>> df = pd.DataFrame({"a": list("xyxy"), "b": [1.0, 2.0, 3.0, 4.0], "t": [0, 1, 0, 1]})
    >>> dl = TabDataLoader(TabularPandas(df, None, [], ["b"], "t"), bs=2)
    >>> [t.shape for t in dl.one_batch()]
    [torch.Size([2, 0]), torch.Size([2, 1]), torch.Size([2])]
    """

    def __init__(self, dataset: TabularPandas, bs: int = 64, shuffle: bool = False, drop_last: bool = False,
                 **kwargs: Any) -> None:
        if not isinstance(dataset, TabularPandas):
            raise TypeError(f"TabDataLoader needs a TabularPandas dataset, got {type(dataset).__name__}; build one "
                            "with TabularPandas(df, procs, cat_names, cont_names, y_names).")
        kwargs.pop("indexed", None)
        super().__init__(dataset, bs=bs, shuffle=shuffle, drop_last=drop_last, indexed=True, **kwargs)
        if self.bs is None:
            raise _no_bs(type(self).__name__)
        self._tensors: tuple | None = None

    @property
    def _bs(self) -> int:
        bs = self.bs
        assert bs is not None  # refused in __init__
        return bs

    @property
    def tensors(self) -> tuple:
        "The whole dataset as `(cats, conts, ys)` tensors, built on first use."
        if self._tensors is None:
            self._tensors = self.dataset.tensors()
        return self._tensors

    @property
    def n_inp(self) -> int:
        return 2 if self.dataset.with_cont else 1

    def _rows(self) -> int:
        n = self.n
        assert n is not None  # a TabularPandas always has a length (`n` is `len(dataset)` unless given)
        return n

    def sample(self) -> list[torch.Tensor]:
        "This epoch's batches as tensors of row positions (a random permutation when `shuffle`)."
        n = self._rows()
        if self.shuffle:
            g = torch.Generator().manual_seed(self.rng.getrandbits(63))
            idxs = torch.randperm(n, generator=g)
        else:
            idxs = torch.arange(n)
        chunks = list(idxs.split(self._bs))
        if self.drop_last and chunks and len(chunks[-1]) < self._bs:
            chunks = chunks[:-1]
        return chunks

    def create_batches(self, samps: Iterable[torch.Tensor]) -> Iterator[tuple[torch.Tensor, ...]]:
        "Yield one batch per chunk of row positions."
        for idx in samps:
            yield self.do_batch(idx)

    def do_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        "The batch of rows `idx`: each tensor indexed once."
        cats, conts, ys = self.tensors
        xs = (cats[idx], conts[idx]) if self.dataset.with_cont else (cats[idx],)
        if ys is None:
            return xs
        y = ys[idx]
        if self.dataset.y_kind == "category":
            y = y.as_subclass(TensorCategory)
        return (*xs, y)

    def new(self, dataset: TabularPandas | None = None, cls: type | None = None, **kwargs: Any) -> TabDataLoader:
        res = cast(TabDataLoader, super().new(dataset, cls, **kwargs))
        if dataset is None or dataset is self.dataset:
            res._tensors = self._tensors
        return res

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_tensors"] = None  # rebuilt from the frame: keeps exports small
        return state

    # ---- display ---------------------------------------------------------------------------------------------
    def decode_rows(self, b: Sequence[torch.Tensor], max_n: int = 9) -> pd.DataFrame:
        "The first `max_n` rows of batch `b` as a readable DataFrame (procs undone, classes named)."
        to = self.dataset
        n_in = self.n_inp
        cats = b[0][:max_n].cpu().numpy()
        data = {c: cats[:, i] for i, c in enumerate(to.cat_names)}
        if to.with_cont:
            conts = b[1][:max_n].cpu().numpy()
            data.update({c: conts[:, i] for i, c in enumerate(to.cont_names)})
        if len(b) > n_in and to.y_names:
            y = b[n_in][:max_n].cpu().numpy()
            if y.ndim == 1:
                data[to.y_names[0]] = y
            else:
                data.update({c: y[:, i] for i, c in enumerate(to.y_names)})
        return to.decode(pd.DataFrame(data))

    def show_batch(self, b: Sequence[torch.Tensor] | None = None, max_n: int = 10, ctxs: Any = None, show: bool = True,
                   unique: bool = False, **kwargs: Any) -> pd.DataFrame | None:
        "Print the first `max_n` rows of batch `b` (default: one batch) decoded; `show=False` returns the frame."
        b = self.one_batch() if b is None else b
        return _show(self.decode_rows(b, max_n), show)

    def show_results(self, b: Sequence[torch.Tensor], out: Any, max_n: int = 10, ctxs: Any = None, show: bool = True,
                     **kwargs: Any) -> pd.DataFrame | None:
        """Print the rows of batch `b` with the decoded predictions `out` (a tensor, or a tuple whose first item is
        one) in `<target>_pred` columns (class names for classification); `show=False` returns the frame. `ctxs` is
        the `DataLoader.show_results` signature's and unused: a table has no plot contexts."""
        df = self.decode_rows(b, max_n)
        to = self.dataset
        out = out[0] if isinstance(out, (tuple, list)) else out
        out = out[:max_n].detach().cpu().numpy()
        if to.y_kind == "category":
            (col,) = _pred_columns(to).values()
            df[col] = np.asarray(list(to.vocab), dtype=object)[out.astype(np.int64)]
        else:
            out = out.reshape(len(out), -1)
            for i, col in enumerate(_pred_columns(to, out.shape[1]).values()):
                df[col] = out[:, i]
        return _show(df, show)


def _weights(wgts: Sequence[float] | np.ndarray | None, n: int) -> np.ndarray:
    w = np.ones(n) if wgts is None else np.asarray(list(wgts) if not hasattr(wgts, "__array__") else wgts, float)
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"TabWeightedDL: {w.size} weights for {n} rows; give one weight per training row.")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        raise ValueError(f"TabWeightedDL: weights must be finite and >= 0; rows {bad[:10].tolist()} have "
                         f"{w[bad[:10]].tolist()}.")
    if n and w.sum() == 0:
        raise ValueError("TabWeightedDL: every weight is 0, so no row can be drawn; give some rows a weight > 0.")
    return w / w.sum() if n else w


class TabWeightedDL(TabDataLoader):
    """A `TabDataLoader` that, when shuffling (training), draws each epoch's rows with replacement, row `i` with
    probability `wgts[i] / sum(wgts)` (to oversample rare classes); without shuffling it reads rows in order."""

    def __init__(self, dataset: TabularPandas, bs: int = 64, wgts: Sequence[float] | np.ndarray | None = None,
                 shuffle: bool = False, **kwargs: Any) -> None:
        self.wgts = _weights(wgts, len(dataset))
        super().__init__(dataset, bs=bs, shuffle=shuffle, **kwargs)

    def _new_kwargs(self) -> dict:
        kw = super()._new_kwargs()
        kw["wgts"] = self.wgts  # same rows: same weights (`new(other_dataset)` must pass its own, or uniform)
        return kw

    def new(self, dataset: TabularPandas | None = None, cls: type | None = None, **kwargs: Any) -> TabDataLoader:
        if dataset is not None and dataset is not self.dataset and "wgts" not in kwargs:
            kwargs["wgts"] = None  # other rows (test data, an empty export copy): uniform
        return super().new(dataset, cls, **kwargs)

    def sample(self) -> list[torch.Tensor]:
        n = self._rows()
        if not self.shuffle or not n:
            return super().sample()
        g = torch.Generator().manual_seed(self.rng.getrandbits(63))
        idxs = torch.multinomial(torch.as_tensor(self.wgts), n, replacement=True, generator=g)
        chunks = list(idxs.split(self._bs))
        if self.drop_last and chunks and len(chunks[-1]) < self._bs:
            chunks = chunks[:-1]
        return chunks


class TabPartialDL(TabDataLoader):
    """A `TabDataLoader` whose training epochs use `partial_n` random rows (without replacement): quick experiments
    on a large table."""

    def __init__(self, dataset: TabularPandas, bs: int = 64, partial_n: int | None = None, **kwargs: Any) -> None:
        if partial_n is not None and (not isinstance(partial_n, int | np.integer) or partial_n < 1):
            raise ValueError(f"TabPartialDL: partial_n must be a positive int or None, got {partial_n!r}.")
        self.partial_n = partial_n
        super().__init__(dataset, bs=bs, **kwargs)

    def _new_kwargs(self) -> dict:
        kw = super()._new_kwargs()
        kw["partial_n"] = self.partial_n
        return kw

    def sample(self) -> list[torch.Tensor]:
        if self.partial_n is None or not self.shuffle:
            return super().sample()
        n = self._rows()
        g = torch.Generator().manual_seed(self.rng.getrandbits(63))
        idxs = torch.randperm(n, generator=g)[: min(self.partial_n, n)]
        chunks = list(idxs.split(self._bs))
        if self.drop_last and chunks and len(chunks[-1]) < self._bs:
            chunks = chunks[:-1]
        return chunks

    def __len__(self) -> int:
        if self.partial_n is None or not self.shuffle:
            return super().__len__()
        k = min(self.partial_n, self._rows())
        return k // self._bs if self.drop_last else -(-k // self._bs)


def _warn_if_labels(df: pd.DataFrame, given: Any, pos: np.ndarray) -> None:
    """Warn when the positions `pos` (read from the user's `valid_idx`) are also all index labels of `df` and select
    other rows as labels: the ids of a shuffled or filtered frame (`list(df[df.year == 2021].index)`) read as
    positions are a random validation set."""
    if isinstance(df.index, pd.RangeIndex) and df.index.equals(pd.RangeIndex(len(df))):
        return  # labels are positions
    if isinstance(given, np.ndarray | pd.Series | pd.Index | list) and np.asarray(given).dtype.kind == "b":
        return  # a mask has no labels
    if not len(pos) or not df.index.is_unique or not pd.Index(pos).isin(df.index).all():
        return
    as_labels = np.flatnonzero(df.index.isin(pos))
    if np.array_equal(np.sort(pos), as_labels):
        return  # both readings select the same rows
    warnings.warn(f"TabularDataLoaders.from_df: valid_idx are read as row positions (0-based, like iloc), but every "
                  f"one of them is also among the index labels of df, whose index is not 0..{len(df) - 1} in order (a "
                  f"shuffled or filtered frame?): as positions they select rows labelled {df.index[pos[:5]].tolist()}"
                  f"..., as labels rows at positions {as_labels[:5].tolist()}... If you meant labels, pass "
                  "valid_idx=np.flatnonzero(df.index.isin(valid_idx)); if you meant positions, call "
                  "df = df.reset_index(drop=True) first to silence this.", UserWarning, stacklevel=3)


class TabularDataLoaders(DataLoaders):
    """Training and validation `TabDataLoader`s over a `TabularPandas`, made with `from_df` or `from_csv`.

    >>> from tiers.tabular import Categorify, Normalize
    >>> df = pd.DataFrame({"a": list("xyzx") * 25, "b": np.arange(100.0), "t": [0, 1] * 50})
    >>> dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names="a", cont_names="b",
    ...                                  y_names="t", valid_idx=list(range(80, 100)), bs=16)
    >>> len(dls.train), len(dls.valid)
    (5, 2)
    """

    @classmethod
    def from_df(cls, df: pd.DataFrame, path: str | Path = ".",
                procs: TabularProc | Transform | type | Iterable[TabularProc | Transform | type] | None = None,
                cat_names: str | Sequence[str] | None = None, cont_names: str | Sequence[str] | None = None,
                y_names: str | Sequence[str] | None = None,
                y_block: TransformBlock | Callable[[], TransformBlock] | None = None,
                valid_idx: Sequence[int] | np.ndarray | None = None, bs: int = 64, shuffle_train: bool = True,
                val_bs: int | None = None, device: str | torch.device | None = None, reduce_memory: bool = True,
                **kwargs: Any) -> TabularDataLoaders:
        """Loaders from `df`: `valid_idx` are the validation row positions (0-based, like iloc), or a boolean mask
        of one value per row (`df.is_valid`); default: a random 20%, seed 42 - as in fastai - when none is given.
        Repeated positions are refused, and positions that are also the index labels of a shuffled frame are warned
        about. `procs`, the column lists and `y_block` go to `TabularPandas`. Without
        `cont_names`, every column not in `cat_names` or `y_names` is continuous (as fastai)."""
        need_frame(df, "TabularDataLoaders.from_df", then=", and list those names in cat_names, cont_names and y_names")
        where = "TabularDataLoaders.from_df"
        if bs is None:  # said before the frame is processed, not after
            raise _no_bs(where)
        if valid_idx is None:
            rng = np.random.default_rng(42)
            valid_idx = rng.permutation(len(df))[: int(0.2 * len(df))]
        else:
            given = valid_idx
            valid_idx = _positions(_listify(valid_idx) if not hasattr(valid_idx, "__array__") else valid_idx,
                                   len(df), where, "valid_idx", df)
            _warn_if_labels(df, given, valid_idx)
        mask = np.ones(len(df), dtype=bool)
        mask[valid_idx] = False
        splits = (np.flatnonzero(mask), np.sort(valid_idx))
        cat_names = _listify(cat_names)
        if cont_names is None:  # fastai: every column that is neither categorical nor a target
            ys = set(_listify(y_names))
            cont_names = [c for c in df.columns if c not in set(cat_names) and c not in ys]
        cont_names = _listify(cont_names)
        to = TabularPandas(df, procs, cat_names, cont_names, y_names, y_block=y_block, splits=splits,
                           reduce_memory=reduce_memory)
        return to.dataloaders(bs=bs, val_bs=val_bs, shuffle_train=shuffle_train, device=device, path=path, **kwargs)

    @classmethod
    def from_csv(cls, csv: str | Path, skipinitialspace: bool = True, encoding: str | None = None,
                 sep: str | None = None, **kwargs: Any) -> TabularDataLoaders:
        """Loaders from the CSV file `csv` (read with `pandas.read_csv` in `encoding`, default UTF-8, with the
        delimiter `sep`, default ','); `kwargs` go to `from_df`."""
        csv = Path(csv)
        kwargs.setdefault("path", csv.parent)  # the paper's listing passes path=path explicitly
        # `sep` is taken here (fastai passes it on to the loaders, which refuse it): a ';' file otherwise reads as one
        # column named 'a;b;y'
        extra = {} if sep is None else {"sep": sep}
        df = read_csv(csv, "TabularDataLoaders.from_csv", encoding=encoding, skipinitialspace=skipinitialspace, **extra)
        return cls.from_df(df, **kwargs)

    def test_dl(self, test_items: pd.DataFrame, rm_type_tfms: int | Sequence[int] | None = None,
                with_labels: bool = False, process: bool = True, inplace: bool = False,
                **kwargs: Any) -> TabDataLoader:
        """A loader over the new rows `test_items`, processed with the training state of the procs (targets are
        encoded when present and `with_labels`; otherwise batches hold inputs only). `process=False` takes rows
        that are already processed; `inplace` processes `test_items` itself instead of a copy (as fastai)."""
        src = self.train_ds
        need_frame(test_items, "test_dl", "test_items",
                   columns=src.input_cat_names + src.cont_names + (src.y_names if with_labels else []))
        drop = [] if with_labels else [c for c in src.y_names if c in test_items.columns]
        df = test_items.drop(columns=drop) if drop and not inplace else test_items
        if drop and inplace:
            df.drop(columns=drop, inplace=True)
        to = src.new(df, inplace=inplace)
        if process:
            to.process()
        kwargs.setdefault("shuffle", False)
        kwargs.setdefault("drop_last", False)
        return self.valid.new(to, **kwargs)
