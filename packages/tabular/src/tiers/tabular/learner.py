"""`tabular_learner`: a `Learner` with a `TabularModel` sized from the loaders, its loss chosen from the target,
and a `predict` that takes a DataFrame row."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tiers.dispatch import is_listy
from tiers.tabular.data import _pred_columns, _show
from tiers.tabular.model import TabularModel, get_emb_sz
from tiers.tabular.procs import _user_stacklevel
from tiers.train.learner import Learner
from tiers.train.nn.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

if TYPE_CHECKING:
    from tiers.tabular.core import TabularPandas
    from tiers.tabular.data import TabularDataLoaders

__all__ = ["TabularLearner", "TabularRow", "check_y_range", "tabular_learner"]


class TabularRow(pd.Series):
    """One decoded row, as `TabularLearner.predict` returns it: a `pandas.Series` (indexing, `row['salary']`,
    equality, `to_dict()`, pickling all as usual) that also has `show()`, as fastai's decoded row has
    (`row, clas, probs = learn.predict(df.iloc[0]); row.show()`).

    >>> row = TabularRow({"workclass": "Private", "age": 39.0, "salary": ">=50k"}, name=0)
    >>> row.show()  # doctest: +NORMALIZE_WHITESPACE
      workclass   age salary
    0   Private  39.0  >=50k
    """

    @property
    def _constructor(self) -> Callable[..., TabularRow]:
        # pandas builds the results of slicing/arithmetic with this: `row[cols]` is still a row that can show itself
        return TabularRow

    def show(self, show: bool = True) -> pd.DataFrame | None:
        """Display this row as a one-row table (the decoded inputs and the prediction in the target columns) the way
        `show_batch`/`show_results` do: an HTML table in a notebook, text at a terminal; `show=False` returns the
        one-row DataFrame instead."""
        df = pd.DataFrame([list(self.to_numpy())], columns=self.index,
                          index=pd.Index([self.name if self.name is not None else 0]))
        return _show(df.infer_objects(), show)


def _one_row(row: object, to: TabularPandas) -> pd.DataFrame:
    "`row` (a Series, a `{column: value}` dict or a one-row DataFrame) as a one-row DataFrame, or a clear error."
    inputs = to.input_cat_names + to.cont_names
    if isinstance(row, dict):
        many = [k for k, v in row.items() if is_listy(v) or isinstance(v, np.ndarray | pd.Series | pd.Index)]
        if many:
            raise ValueError(f"predict: the dict holds several values for {many[:5]}, so it is not one row; pass "
                             "{column: value} for one row, or pd.DataFrame(d) to learn.dls.test_dl and get_preds for "
                             "many rows.")
        row = pd.Series(row)  # one row, exactly as df.iloc[i] gives it
    if isinstance(row, pd.Series):
        return row.to_frame().T
    if isinstance(row, pd.DataFrame):
        if len(row) == 1:
            return row
        raise ValueError(f"predict: got a DataFrame with {len(row)} rows; pass one row (df.iloc[i]), or use "
                         "learn.dls.test_dl(df) and get_preds for many rows.")
    if isinstance(row, np.ndarray):
        raise TypeError(f"predict: got a numpy ndarray of shape {row.shape}, which has no column names; pass "
                        f"pd.Series(arr, index=[...]) naming its values (the model reads {inputs[:20]}).")
    raise TypeError(f"predict: got a {type(row).__name__}; pass one row: a pandas Series, a {{column: value}} dict "
                    "or a one-row DataFrame.")


class TabularLearner(Learner):
    """A `Learner` for tabular data whose `predict` takes one row (a `pandas.Series`, a `{column: value}` dict or a
    one-row DataFrame)."""

    def predict(self, row: pd.Series | pd.DataFrame | dict, rm_type_tfms: Any = None,
                with_input: bool = False) -> tuple:
        """Predict `row` (a Series, a `{column: value}` dict or a one-row DataFrame): `(the row processed and decoded
        with the prediction in the target columns (a `TabularRow`: a Series with `show()`), the decoded prediction
        (class index or values), the raw prediction (probabilities or values))`. A regression prediction is the model's
        row, a 1-d tensor (`tensor([2.83])`, one value per target column)."""
        df = _one_row(row, self.dls.train_ds)
        dl = self.dls.test_dl(df.infer_objects())
        _, preds, _, dec = self.get_preds(dl=dl, with_input=True, with_decoded=True)
        to = dl.dataset
        b = dl.one_batch()
        full = dl.show_results(b, dec, max_n=1, show=False)
        # The prediction takes its target's place: found by the names show_results gave them, not by a "_pred"
        # suffix (integer column names have none; an input column may end in "_pred").
        n_out = int(np.prod(dec.shape[1:])) if dec.ndim > 1 else 1
        back = {p: t for t, p in _pred_columns(to, n_out).items() if p in full.columns}
        full = full.drop(columns=[t for t in back.values() if t in full.columns]).rename(columns=back)
        cols = [c for c in to.cat_names + to.cont_names + to.y_names if c in full.columns]
        if preds.ndim == 1:
            # one output per row (a dot-product collab model): the model's row as a 1-element tensor, the same shape
            # as a one-target regression model's `[n, 1]` row (`tensor([2.83])`), not a 0-d tensor
            return TabularRow(full.iloc[0][cols]), dec[0:1], preds[0:1]
        return TabularRow(full.iloc[0][cols]), dec[0], preds[0]


def _n_out(dls: TabularDataLoaders) -> int:
    to = dls.train_ds
    if to.y_kind == "category":
        return len(to.vocab)
    return len(to.y_names)


def check_y_range(dls: TabularDataLoaders, y_range: Sequence[float] | None, where: str) -> None:
    """Warn when `y_range` does not cover the training targets of `dls` (regression): outputs are squashed into
    `y_range` by a sigmoid, so a target outside it can never be predicted (the book's `(0, 5.5)` copied to a 1-10
    dataset trains to a capped model without a word)."""
    to = getattr(dls, "train_ds", None)
    if y_range is None or to is None or getattr(to, "y_kind", None) != "regression" or not to.y_names:
        return
    if not all(c in to.items.columns for c in to.y_names) or not len(to.items):
        return
    lo, hi = (float(v) for v in y_range)
    ys = to.items[to.y_names].to_numpy(np.float64)
    ymin, ymax = float(np.nanmin(ys)), float(np.nanmax(ys))
    if ymin >= lo and ymax <= hi:
        return
    out = int(((ys < lo) | (ys > hi)).sum())
    span = max(ymax - ymin, 1e-12)
    lo2 = lo if ymin >= lo else float(f"{ymin - 0.1 * span:.3g}")
    hi2 = hi if ymax <= hi else float(f"{ymax + 0.1 * span:.3g}")
    warnings.warn(f"{where}: the training targets span {ymin:g} .. {ymax:g} but y_range is {tuple(y_range)}: "
                  f"outputs are squashed into y_range, so {out} of {ys.size} targets ({100 * out / ys.size:.0f}%) can "
                  f"never be predicted; widen it (e.g. y_range=({lo2:g}, {hi2:g}), a little beyond the targets) or "
                  "leave y_range out.", UserWarning, stacklevel=_user_stacklevel())


def tabular_learner(dls: TabularDataLoaders, layers: Sequence[int] | None = None, emb_szs: dict | None = None,
                    config: dict | None = None, n_out: int | None = None, y_range: tuple[float, float] | None = None,
                    loss_func: Callable | None = None, **kwargs: Any) -> TabularLearner:
    """A `Learner` with a `TabularModel` for the `TabularDataLoaders` `dls`: hidden `layers` (default `[200, 100]`),
    embedding widths from `emb_szs` (column -> width) or the rule, `config` (`tabular_config(...)`) for the model,
    `n_out` outputs (default: the number of classes, or of target columns), outputs squashed into `y_range`. The loss
    is cross entropy for a class target and MSE for regression targets (one or many) unless `loss_func` is given;
    `kwargs` (`metrics`, `opt_func`, `cbs`, `wd`...) go to `Learner`.

    >>> learn = tabular_learner(dls, metrics=accuracy)  # doctest: +SKIP
    >>> learn.fit_one_cycle(3, 1e-2)                    # doctest: +SKIP
    """
    if not hasattr(dls, "train_ds") or not hasattr(dls.train_ds, "cat_names"):
        raise TypeError(f"tabular_learner needs TabularDataLoaders (from TabularDataLoaders.from_df or "
                        f"TabularPandas.dataloaders), got {type(dls).__name__}.")
    layers = [200, 100] if layers is None else list(layers)
    config = dict(config or {})
    to = dls.train_ds
    if n_out is None:
        n_out = _n_out(dls)
    if not n_out:
        raise ValueError("tabular_learner: the loaders have no target, so the number of outputs is unknown; "
                         "pass n_out=... or give y_names.")
    if y_range is None and "y_range" in config:
        y_range = config.pop("y_range")
    config.pop("y_range", None)
    check_y_range(dls, y_range, "tabular_learner")
    model = TabularModel(get_emb_sz(to, emb_szs), len(to.cont_names), n_out, layers, y_range=y_range, **config)
    if loss_func is None:
        loss_func = (CrossEntropyLossFlat() if to.y_kind == "category" else
                     BCEWithLogitsLossFlat() if to.y_kind == "multi" else MSELossFlat())
    return TabularLearner(dls, model, loss_func=loss_func, **kwargs)
