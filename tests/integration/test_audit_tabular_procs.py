"""Audit: TabularPandas with Categorify, FillMissing and Normalize processes a frame exactly as fastai 2.8.12 does
(codes, the `_na` column, training-set medians, means and population stds, column order, target codes): values
recorded by running the same frame through fastai in the bench environment."""

import numpy as np
import pandas as pd
import pytest

from tiers.tabular.all import Categorify, FillMissing, Normalize, TabularPandas

FASTAI = {'classes': {'a_na': ['#na#', 'False', 'True'], 'c': ['#na#', 'x', 'y', 'z'], 'd': ['#na#', 'u', 'v']},
 'col_sums': [103.0, 92.0, 72.0, 3.8006, -3.0456],
 'cols': ['c', 'd', 'a_na', 'a', 'b'],
 'first_rows': [[0.0, 2.0, 2.0, -0.0118, 0.0475], [3.0, 1.0, 1.0, -0.2757, -0.5386],
                [3.0, 1.0, 1.0, 0.7177, 1.4956], [3.0, 1.0, 1.0, 0.0291, -1.2627],
                [3.0, 2.0, 1.0, -0.7946, 1.3232], [1.0, 2.0, 2.0, -0.0118, -1.6075]],
 'means': {'a': 5.1646, 'b': 55.6222},
 'na': {'a': 5.146225929260254},
 'stds': {'a': 1.5553, 'b': 29.0037},
 'ys': [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0,
        1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1]}


def test_procs_give_fastais_numbers():
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"a": rng.normal(5, 2, n), "b": rng.integers(0, 100, n).astype(float),
                       "c": rng.choice(["x", "y", "z"], n), "d": rng.choice(["u", "v"], n), "y": rng.choice(["p", "q"], n)})
    df.loc[::5, "a"] = np.nan
    df.loc[::7, "c"] = np.nan
    to = TabularPandas(df, procs=[Categorify, FillMissing, Normalize], cat_names=["c", "d"], cont_names=["a", "b"],
                       y_names="y", splits=(list(range(45)), list(range(45, 60))))
    xs = to.xs.astype(float).values
    assert list(to.xs.columns) == FASTAI["cols"]
    assert xs[:6].tolist() == [pytest.approx(r, abs=1e-4) for r in FASTAI["first_rows"]]
    assert xs.sum(0).tolist() == pytest.approx(FASTAI["col_sums"], abs=1e-3)
    assert {k: float(v) for k, v in to.normalize.means.items()} == pytest.approx(FASTAI["means"], abs=1e-4)
    assert {k: float(v) for k, v in to.normalize.stds.items()} == pytest.approx(FASTAI["stds"], abs=1e-4)
    assert {k: float(v) for k, v in to.fill_missing.na_dict.items()} == pytest.approx(FASTAI["na"])
    assert {k: [str(c) for c in v] for k, v in to.classes.items()} == FASTAI["classes"]
    assert to.ys.values.ravel().tolist() == FASTAI["ys"]
