"""Collaborative filtering: `CollabDataLoaders` over (user, item, rating) rows, the `EmbeddingDotBias` and
`EmbeddingNN` models, `collab_learner`, and the bias/weight analysis helpers.

Unknown users or items (not in the training rows) map to the class `'#na#'` (index 0), whose embedding and bias
are never trained: they keep their small initial values, so a prediction for an unknown user is close to what the
model gives an "average" user (the item bias plus a tiny dot product, squashed into `y_range`). `predict` and
`test_dl` (hence `get_preds` on it) warn once per call, naming the unknown ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from tiers.data import MissingColumnError
from tiers.tabular.core import TabularPandas, _check_numeric, need_frame, read_csv
from tiers.tabular.data import TabularDataLoaders
from tiers.tabular.learner import TabularLearner, check_y_range
from tiers.tabular.model import TabularModel, get_emb_sz
from tiers.tabular.procs import Categorify
from tiers.train.nn.layers import Embedding, sigmoid_range
from tiers.train.nn.losses import MSELossFlat

if TYPE_CHECKING:
    from tiers.data.block import TransformBlock
    from tiers.pipeline import Transform
    from tiers.tabular.core import TabularProc
    from tiers.tabular.data import TabDataLoader

__all__ = ["CollabDataLoaders", "CollabLearner", "EmbeddingDotBias", "EmbeddingNN", "TabularCollab", "collab_learner"]


class TabularCollab(TabularPandas):
    """A `TabularPandas` for collaborative filtering: no continuous inputs (`with_cont=False`), so batches are
    `(user-item codes, ratings)`. `CollabDataLoaders.from_df` builds one."""

    # what `Categorify`'s warning about ids not in the training rows says they mean here
    unseen_note = "predicted from the untrained '#na#' embedding, close to an average user/item"

    def __init__(self, df: pd.DataFrame,
                 procs: TabularProc | Transform | type | Iterable[TabularProc | Transform | type] | None = None,
                 cat_names: str | Sequence[str] | None = None, cont_names: str | Sequence[str] | None = None,
                 y_names: str | Sequence[str] | None = None,
                 y_block: TransformBlock | Callable[[], TransformBlock] | None = None,
                 splits: Sequence[Sequence[int] | np.ndarray] | None = None, do_setup: bool = True,
                 reduce_memory: bool = True, inplace: bool = False, with_cont: bool = False) -> None:
        super().__init__(df, procs, cat_names, cont_names, y_names, y_block=y_block, splits=splits,
                         do_setup=do_setup, reduce_memory=reduce_memory, inplace=inplace, with_cont=with_cont)


def _role(name: object) -> str | None:
    "'rating' or 'id' when a column's name says what it holds (`rating`, `Ratings`, `userId`, `movie_id`...)."
    n = str(name).lower().replace("_", "").replace("-", "").replace(" ", "")
    if n in ("rating", "ratings", "score", "stars"):
        return "rating"
    if n in ("user", "users", "userid", "item", "items", "itemid", "movie", "movies", "movieid"):
        return "id"
    return None


def _check_roles(cols: list, chosen: dict[str, Any], given: dict[str, bool]) -> None:
    """Refuse a column picked by position (the first three are user, item, rating, as fastai) whose name says it
    holds something else: a frame ordered (item, rating, user) would train on ratings as item ids without a word."""
    wrong = [(arg, c) for arg, c in chosen.items() if not given[arg] and
             _role(c) == ("id" if arg == "rating_name" else "rating")]
    if wrong:
        said = ", ".join(f"{arg}={c!r}" for arg, c in wrong)
        raise ValueError(f"CollabDataLoaders.from_df: by position (the first three columns are user, item, rating) "
                         f"{said} was chosen, but its name says it holds {'ids' if wrong[0][0] == 'rating_name' else 'ratings'} "
                         f"(columns: {cols}); name the columns: user_name=..., item_name=..., rating_name=..., or put "
                         "them first in that order (ratings[[user, item, rating]]).")


class CollabDataLoaders(TabularDataLoaders):
    """Loaders for collaborative filtering: batches are `(user-item codes [bs, 2], ratings [bs, 1])`."""

    @classmethod
    def from_df(cls, ratings: pd.DataFrame, valid_pct: float = 0.2, user_name: str | None = None,  # type: ignore[override]  # fastai's collab signature, not tabular's
                item_name: str | None = None, rating_name: str | None = None, seed: int | None = None,
                bs: int = 64, path: str | Path = ".", **kwargs: Any) -> CollabDataLoaders:
        """Loaders from the `ratings` frame (default columns: the first three, user, item, rating), with a random
        `valid_pct` of the rows (drawn with `seed`) for validation.

        >>> df = pd.DataFrame({"u": [1, 2, 3, 1] * 10, "i": [5, 6, 5, 7] * 10, "r": [4.0, 3.0, 5.0, 1.0] * 10})
        >>> dls = CollabDataLoaders.from_df(df, bs=8, seed=0)
        >>> list(dls.classes["u"])
        ['#na#', 1, 2, 3]
        """
        need_frame(ratings, "CollabDataLoaders.from_df", "ratings", columns=["user", "item", "rating"])
        if ratings.shape[1] < 3:
            raise ValueError(f"CollabDataLoaders.from_df: ratings has {ratings.shape[1]} column(s) "
                             f"{list(ratings.columns)}; it needs at least 3: user, item and rating.")
        if not 0 <= valid_pct < 1:
            raise ValueError(f"CollabDataLoaders.from_df: valid_pct={valid_pct} must be in [0, 1).")
        cols = list(ratings.columns)
        given_u, given_i, given_r = user_name is not None, item_name is not None, rating_name is not None
        user_name = cols[0] if user_name is None else user_name
        item_name = cols[1] if item_name is None else item_name
        rating_name = cols[2] if rating_name is None else rating_name
        for kind, c in (("user_name", user_name), ("item_name", item_name), ("rating_name", rating_name)):
            if c not in ratings.columns:
                raise MissingColumnError(f"CollabDataLoaders.from_df: {kind}={c!r} is not a column of ratings "
                                         f"(columns: {cols}); pass one of them.")
        _check_roles(cols, {"user_name": user_name, "item_name": item_name, "rating_name": rating_name},
                     given={"user_name": given_u, "item_name": given_i, "rating_name": given_r})
        for kind, c in (("user", user_name), ("item", item_name)):
            miss = ratings[c].isna().to_numpy()
            if miss.any():  # they would all share the untrained '#na#' embedding and train it on unrelated ratings
                rows = list(ratings.index[miss][:10])
                raise ValueError(f"CollabDataLoaders.from_df: {kind} column {c!r} is missing (NaN/None) in "
                                 f"{int(miss.sum())} rows {rows}{' ...' if miss.sum() > 10 else ''}; drop those rows "
                                 f"(ratings.dropna(subset=[{c!r}])) or fill in the ids.")
        perm = np.random.default_rng(seed).permutation(len(ratings))
        n_valid = int(valid_pct * len(ratings))
        splits = (np.sort(perm[n_valid:]), np.sort(perm[:n_valid]))
        df = ratings[[user_name, item_name, rating_name]].copy()
        # ratings written as text ('4.5') are read as numbers; a word is refused naming the column and the rows
        _check_numeric(df, [rating_name], "rating", "CollabDataLoaders.from_df")
        df[rating_name] = df[rating_name].astype(np.float32)
        to = TabularCollab(df, [Categorify], [user_name, item_name], [], rating_name, splits=splits,
                           reduce_memory=False)
        dls = to.dataloaders(bs=bs, path=path, **kwargs)
        dls.__class__ = cls
        return cast(CollabDataLoaders, dls)  # its class is now `cls`

    @classmethod
    def from_csv(cls, csv: str | Path, encoding: str | None = None, **kwargs: Any) -> CollabDataLoaders:  # type: ignore[override]  # fastai's collab signature, not tabular's
        "Loaders from the CSV file `csv` (text in `encoding`, default UTF-8); `kwargs` go to `from_df`."
        csv = Path(csv)
        kwargs.setdefault("path", csv.parent)
        return cls.from_df(read_csv(csv, "CollabDataLoaders.from_csv", encoding=encoding), **kwargs)

    def test_dl(self, test_items: pd.DataFrame, rm_type_tfms: int | Sequence[int] | None = None,  # type: ignore[override]  # fastai's collab signature, not tabular's
                with_labels: bool = False, **kwargs: Any) -> TabDataLoader:
        """A loader over new (user, item) rows. Users or items absent from the training rows have no learned
        embedding (they get the untrained `'#na#'` one): a `UserWarning` names them, once per call (`Categorify`
        says it, with `TabularCollab.unseen_note`); ids of another dtype (`'42'` for 42) are matched."""
        return super().test_dl(test_items, rm_type_tfms=rm_type_tfms, with_labels=with_labels, **kwargs)


def _check_x(x: Tensor, where: str) -> None:
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{where}: expected a [batch, 2] tensor of (user, item) codes, got shape {tuple(x.shape)}.")


class _Analysis:
    "Bias and factor lookup by user or item name, through the loaders' vocabularies (`classes`)."

    classes: dict | None = None
    if TYPE_CHECKING:  # supplied by the nn.Module this is mixed into
        def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def _get_idx(self, arr, is_item: bool = True) -> Tensor:
        if self.classes is None:
            raise ValueError("Build the model with from_classes (or through collab_learner) to look items up by name.")
        u, i = list(self.classes)[:2]
        vocab = self.classes[i if is_item else u]
        o2i = vocab.o2i if hasattr(vocab, "o2i") else {v: k for k, v in enumerate(vocab)}
        missing = [o for o in arr if o not in o2i]
        if missing:
            raise KeyError(f"{'items' if is_item else 'users'} {missing[:10]} are not in the training vocabulary.")
        return torch.tensor([o2i[o] for o in arr], device=next(self.parameters()).device)


class EmbeddingDotBias(_Analysis, nn.Module):
    """The dot-product model: `rating = user_factors . item_factors + user_bias + item_bias`, squashed into
    `y_range` with a scaled sigmoid when given. Input: `[bs, 2]` (user, item) codes.

    >>> m = EmbeddingDotBias(5, n_users=10, n_items=20, y_range=(0, 5.5))
    >>> m(torch.tensor([[1, 2], [3, 4]])).shape
    torch.Size([2])
    """

    def __init__(self, n_factors: int, n_users: int, n_items: int, y_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.y_range = y_range
        self.u_weight, self.i_weight = Embedding(n_users, n_factors), Embedding(n_items, n_factors)
        self.u_bias, self.i_bias = Embedding(n_users, 1), Embedding(n_items, 1)

    def forward(self, x: Tensor) -> Tensor:
        _check_x(x, "EmbeddingDotBias")
        users, items = x[:, 0], x[:, 1]
        dot = (self.u_weight(users) * self.i_weight(items)).sum(1)
        res = dot + self.u_bias(users).squeeze(-1) + self.i_bias(items).squeeze(-1)
        return res if self.y_range is None else sigmoid_range(res, *self.y_range)

    @classmethod
    def from_classes(cls, n_factors: int, classes: dict, user: str | None = None, item: str | None = None,
                     y_range: tuple[float, float] | None = None) -> EmbeddingDotBias:
        "A model sized from `classes` (column -> vocabulary, users first) that can look users and items up by name."
        user = list(classes)[0] if user is None else user
        item = list(classes)[1] if item is None else item
        res = cls(n_factors, len(classes[user]), len(classes[item]), y_range=y_range)
        res.classes = {user: classes[user], item: classes[item]}
        return res

    def bias(self, arr: Sequence, is_item: bool = True) -> Tensor:
        "The learned biases of the items (or users) named in `arr`."
        idx = self._get_idx(arr, is_item)
        layer = (self.i_bias if is_item else self.u_bias).eval().cpu()
        return layer(idx.cpu()).squeeze(-1).detach()

    def weight(self, arr: Sequence, is_item: bool = True) -> Tensor:
        "The learned factors of the items (or users) named in `arr` (`[len(arr), n_factors]`)."
        idx = self._get_idx(arr, is_item)
        layer = (self.i_weight if is_item else self.u_weight).eval().cpu()
        return layer(idx.cpu()).detach()


class EmbeddingNN(_Analysis, TabularModel):
    """A `TabularModel` over the two embeddings (users, items) and no continuous input: `emb_szs` are their
    `(n_classes, width)` pairs; `layers` and `kwargs` go to `TabularModel`. Input: `[bs, 2]` codes.

    >>> m = EmbeddingNN([(10, 4), (20, 5)], layers=[8], y_range=(0, 5.5))
    >>> m(torch.tensor([[1, 2], [3, 4]])).shape
    torch.Size([2, 1])
    """

    def __init__(self, emb_szs: Sequence[tuple[int, int]], layers: Sequence[int], **kwargs: Any) -> None:
        super().__init__(emb_szs=emb_szs, n_cont=0, out_sz=1, layers=layers, **kwargs)

    def forward(self, x_cat: Tensor, x_cont: Tensor | None = None) -> Tensor:
        _check_x(x_cat, "EmbeddingNN")
        return super().forward(x_cat, x_cont)

    def _layer(self, is_item: bool) -> nn.Module:
        return self.embeds[1 if is_item else 0]

    def weight(self, arr: Sequence, is_item: bool = True) -> Tensor:
        "The learned embeddings of the items (or users) named in `arr`."
        idx = self._get_idx(arr, is_item)
        return self._layer(is_item).cpu()(idx.cpu()).detach()


class CollabLearner(TabularLearner):
    """A `Learner` for collaborative filtering, with the analysis helpers of its model and `pca_items`."""

    def predict(self, row: pd.Series | pd.DataFrame | dict, rm_type_tfms: Any = None,
                with_input: bool = False) -> tuple:
        "Predict one (user, item) row (a Series or one-row DataFrame): `(row with the rating, rating, rating)`."
        return super().predict(row, rm_type_tfms, with_input)

    def pca_items(self, items: Sequence, n_components: int = 3) -> Tensor:
        """The item factors of `items` projected on their first `n_components` principal components
        (`[len(items), n_components]`), for plotting items by what the model learned about them."""
        w = cast("EmbeddingDotBias | EmbeddingNN", self.model).weight(list(items), is_item=True).float()
        w = w - w.mean(0, keepdim=True)
        k = min(n_components, *w.shape)
        _, _, v = torch.linalg.svd(w, full_matrices=False)
        return w @ v[:k].T


def collab_learner(dls: CollabDataLoaders, n_factors: int = 50, use_nn: bool = False, emb_szs: dict | None = None,
                   layers: Sequence[int] | None = None, config: dict | None = None,
                   y_range: tuple[float, float] | None = None, loss_func: Callable | None = None,
                   **kwargs: Any) -> CollabLearner:
    """A `Learner` for the `CollabDataLoaders` `dls`: an `EmbeddingDotBias` with `n_factors` factors, or with
    `use_nn` an `EmbeddingNN` (embedding widths from `emb_szs` or the rule, hidden `layers` - default
    `[n_factors]`, as fastai - and `config` for the `TabularModel`). Predictions are squashed into `y_range` (e.g. `(0, 5.5)` for 0-5 stars) when given. The loss
    is MSE unless `loss_func` is given; `kwargs` go to `Learner`.

    >>> learn = collab_learner(dls, n_factors=50, y_range=(0, 5.5))  # doctest: +SKIP
    >>> learn.fit_one_cycle(5, 5e-3, wd=0.1)                         # doctest: +SKIP
    """
    to = getattr(dls, "train_ds", None)
    if not isinstance(to, TabularPandas) or len(to.cat_names) != 2:
        raise TypeError(f"collab_learner needs CollabDataLoaders (user and item columns), got {type(dls).__name__}.")
    check_y_range(dls, y_range, "collab_learner")
    classes = {c: to.classes[c] for c in to.cat_names}
    model: EmbeddingNN | EmbeddingDotBias
    if use_nn:
        config = dict(config or {})
        model = EmbeddingNN(get_emb_sz(to, emb_szs), layers=[n_factors] if layers is None else list(layers),
                            y_range=y_range, **config)
        model.classes = classes
    else:
        model = EmbeddingDotBias.from_classes(n_factors, classes, y_range=y_range)
    return CollabLearner(dls, model, loss_func=MSELossFlat() if loss_func is None else loss_func, **kwargs)
