"""Benchmarks of tiers.tabular and tiers.collab.

    hatch run bench:python bench/bench_tabular.py      (fastai 2.8.12 installed: its column is filled)
    .venv-dev/bin/python bench/bench_tabular.py         (without fastai: "fastai not installed")

1. TabularPandas setup + processing of a 1,000,000-row frame (10 categorical, 10 continuous columns, 5% missing):
   seconds (best of N) and peak traced memory (tracemalloc), tiers vs fastai on the same frame in this process.
2. Training throughput (rows/s) of tabular_learner on CPU against a hand-written PyTorch loop over the same model.
3. Quality: tabular_learner accuracy vs scikit-learn's HistGradientBoostingClassifier on the same split (a generated
   set with categorical and continuous signal, and the bundled breast-cancer data).
4. Quality: collab_learner validation RMSE against the known noise floor of a generated low-rank ratings matrix.
"""

from __future__ import annotations

import contextlib
import gc
import io
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import pandas as pd
import torch
from _shared import print_table  # noqa: E402

from tiers.collab import CollabDataLoaders, collab_learner, make_ratings_sample
from tiers.tabular import (
    Categorify,
    FillMissing,
    Normalize,
    TabularDataLoaders,
    TabularPandas,
    tabular_learner,
)
from tiers.train import accuracy

CATS = [f"c{i}" for i in range(10)]
CONTS = [f"x{i}" for i in range(10)]


def _big_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for i, c in enumerate(CATS):
        levels = np.array([f"v{j}" for j in range(5 * (i + 1))], dtype=object)
        v = levels[rng.integers(0, len(levels), n)]
        v[rng.random(n) < 0.05] = None
        cols[c] = v
    for c in CONTS:
        v = rng.normal(size=n)
        v[rng.random(n) < 0.05] = np.nan
        cols[c] = v
    cols["y"] = rng.integers(0, 2, n)
    return pd.DataFrame(cols)


def _measure(fn, reps: int) -> tuple[float, float]:
    "Best wall time of `reps` calls, and the peak traced memory (MB) of one more call."
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return best, peak


def _bench_processing(n: int, reps: int) -> list[dict]:
    df = _big_frame(n)
    splits = (np.arange(int(0.8 * n)), np.arange(int(0.8 * n), n))
    ours = _measure(lambda: TabularPandas(df, [Categorify, FillMissing, Normalize], CATS, CONTS, "y",
                                          splits=splits), reps)
    try:
        from fastai.tabular.core import Categorify as FC
        from fastai.tabular.core import FillMissing as FF
        from fastai.tabular.core import Normalize as FN
        from fastai.tabular.core import TabularPandas as FT

        fa = _measure(lambda: FT(df, [FC, FF, FN], CATS, CONTS, y_names="y", splits=[list(splits[0]),
                                                                                      list(splits[1])]), reps)
        fa_t, fa_m = f"{fa[0]:.2f} s", f"{fa[1]:.0f} MB"
        rt, rm = ours[0] / fa[0], ours[1] / fa[1]
    except ImportError:
        fa = None
        fa_t = fa_m = "fastai not installed"
        rt = rm = float("nan")
    base = f"fastai {fa[0]:.2f} s" if fa else "fastai (not installed)"
    basem = f"fastai {fa[1]:.0f} MB" if fa else "fastai (not installed)"
    return [
        dict(benchmark=f"TabularPandas setup+process {n:,} rows x 20 cols (time)", ours=f"{ours[0]:.2f} s",
             baseline=base, ratio=rt, fastai=fa_t, goal="faster than fastai (ratio < 1)", met=bool(rt < 1)),
        dict(benchmark=f"TabularPandas setup+process {n:,} rows x 20 cols (peak memory)", ours=f"{ours[1]:.0f} MB",
             baseline=basem, ratio=rm, fastai=fa_m, goal="leaner than fastai (ratio < 1)", met=bool(rm < 1)),
    ]


def _bench_throughput(n: int) -> dict:
    df = _big_frame(n, seed=1)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=CATS,
                                     cont_names=CONTS, y_names="y", valid_idx=np.arange(n - 1024, n), bs=1024)
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=[200, 100])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        learn.fit(1, 1e-3)  # warm-up
        t = time.perf_counter()
        learn.fit(1, 1e-3)
        ours = time.perf_counter() - t
    model, cats, conts, ys = learn.model, *dls.train.tensors
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    lf = torch.nn.CrossEntropyLoss()
    t = time.perf_counter()
    model.train()
    for idx in torch.randperm(len(ys)).split(1024):
        loss = lf(model(cats[idx], conts[idx]), ys[idx])
        loss.backward()
        opt.step()
        opt.zero_grad()
    plain = time.perf_counter() - t
    rows = len(dls.train_ds)
    return dict(benchmark="tabular_learner training throughput (CPU, bs=1024, [200,100])",
                ours=f"{rows / ours:,.0f} rows/s", baseline=f"plain PyTorch loop {rows / plain:,.0f} rows/s",
                ratio=(rows / ours) / (rows / plain), fastai="n/a", goal="within 25% of the plain loop (>= 0.75)",
                met=bool(plain / ours >= 0.75), higher_is_better=True)


def _fit_tabular(df, cats, conts, y, valid_idx, epochs, lr):
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=cats,
                                     cont_names=conts, y_names=y, valid_idx=valid_idx, bs=64)
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        learn.fit_one_cycle(epochs, lr)
    return float(learn.final_record[-1])


def _hgb(df, cats, conts, y, valid_idx) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier

    mask = np.ones(len(df), bool)
    mask[valid_idx] = False
    x = df[cats + conts].copy()
    for c in cats:
        x[c] = x[c].astype("category")
    clf = HistGradientBoostingClassifier(random_state=0, categorical_features="from_dtype")
    clf.fit(x[mask], df[y][mask])
    return float((clf.predict(x[~mask]) == df[y][~mask]).mean())


def _quality_rows() -> list[dict]:
    from sklearn.datasets import load_breast_cancer

    rng = np.random.default_rng(0)
    n = 6000
    gen = pd.DataFrame({"a": rng.choice(list("abcdefgh"), n), "b": rng.choice(list("xyz"), n),
                        "u": rng.normal(size=n), "v": rng.normal(size=n), "w": rng.normal(size=n)})
    eff = dict(zip("abcdefgh", rng.normal(0, 1.2, 8), strict=True))
    logit = gen.a.map(eff).to_numpy() + np.where(gen.b == "x", 1.0, -0.5) + 1.5 * gen.u - gen.v * gen.w * 0.5
    gen["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "pos", "neg")
    gen.loc[rng.random(n) < 0.05, "u"] = np.nan
    valid = rng.permutation(n)[:1500]
    rows = []
    for name, df, cats, conts, y, valid_idx, ep, lr in [
        ("generated (cat + cont signal, 6000 rows)", gen, ["a", "b"], ["u", "v", "w"], "y", valid, 5, 1e-2),
    ]:
        ours, ref = _fit_tabular(df, cats, conts, y, valid_idx, ep, lr), _hgb(df, cats, conts, y, valid_idx)
        rows.append((name, ours, ref))
    bc = load_breast_cancer(as_frame=True).frame
    bc.columns = [c.replace(" ", "_") for c in bc.columns]
    conts = [c for c in bc.columns if c != "target"]
    valid = np.random.default_rng(1).permutation(len(bc))[:140]
    rows.append(("breast cancer (sklearn bundled)", _fit_tabular(bc, [], conts, "target", valid, 10, 1e-2),
                 _hgb(bc, [], conts, "target", valid)))
    return [dict(benchmark=f"tabular_learner accuracy: {name}", ours=f"{ours:.4f}",
                 baseline=f"HistGradientBoosting {ref:.4f}", ratio=ours / ref, fastai="n/a",
                 goal="within 1 point of HGB (ours >= ref - 0.01)", met=bool(ours >= ref - 0.01),
                 higher_is_better=True) for name, ours, ref in rows]


def _collab_row() -> dict:
    d = tempfile.mkdtemp()
    floor = make_ratings_sample(d, n_users=300, n_items=400, n_ratings=60000, noise=0.3)
    dls = CollabDataLoaders.from_csv(f"{d}/ratings.csv", bs=256, seed=0)
    torch.manual_seed(0)
    learn = collab_learner(dls, n_factors=20, y_range=(0, 5.5))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        learn.fit_one_cycle(8, 1e-2, wd=0.3)
    rmse = float(learn.validate()[0]) ** 0.5
    return dict(benchmark="collab_learner validation RMSE on a rank-3 ratings matrix (noise 0.3)",
                ours=f"{rmse:.4f}", baseline=f"noise floor {floor:.4f}", ratio=rmse / floor, fastai="n/a",
                goal="within 10% of the noise floor (ratio <= 1.10)", met=bool(rmse / floor <= 1.10))


def run(quick: bool = False) -> list[dict]:
    "Run every benchmark (`quick`: a 200,000-row frame and one repeat) and return their rows."
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = _bench_processing(200_000 if quick else 1_000_000, 1 if quick else 2)
        rows.append(_bench_throughput(50_000 if quick else 200_000))
        rows += _quality_rows()
        rows.append(_collab_row())
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    print_table(run(quick="--quick" in sys.argv))
