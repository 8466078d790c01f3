"""AUDIT A3: an export whose learner has scikit-learn-backed metrics loads with the safe `load_learner` (in this
process and in a fresh one) and the metrics compute the same values after the load."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter
from tiers.train import (
    APScoreBinary,
    BalancedAccuracy,
    BrierScore,
    CohenKappa,
    F1Score,
    FBeta,
    Jaccard,
    Learner,
    MatthewsCorrCoef,
    Precision,
    Recall,
    RocAuc,
    RocAucBinary,
    load_learner,
)

pytest.importorskip("sklearn")
torch.set_num_threads(1)

_BINARY = [F1Score, Precision, Recall, RocAucBinary, MatthewsCorrCoef, BalancedAccuracy, CohenKappa,
           lambda: FBeta(beta=2), Jaccard, APScoreBinary, BrierScore]


def _items(n_classes: int) -> list:
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(90, 3, generator=g)
    score = xs[:, 0] + 0.3 * xs[:, 1]
    if n_classes == 2:
        return [[x, "pos" if s > 0 else "neg"] for x, s in zip(xs, score)]
    return [[x, "abc"[int(s > -0.4) + int(s > 0.4)]] for x, s in zip(xs, score)]


def _learner(tmp_path, n_classes: int, metrics: list) -> tuple[Learner, list]:
    items = _items(n_classes)
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=IndexSplitter(range(60, 90))(items))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, n_classes))
    return Learner(dsets.dataloaders(bs=8), model, metrics=metrics, path=tmp_path), items


_FRESH = textwrap.dedent("""
    import json, sys, torch
    from tiers.train import load_learner
    from tests.integration.test_export_metrics import _items
    learn = load_learner(sys.argv[1])   # the safe default
    items = _items(int(sys.argv[2]))
    print(json.dumps(learn.validate(dl=learn.dls.test_dl(items[60:], with_labels=True))))
""")


@pytest.mark.parametrize("n_classes,factories", [(2, _BINARY), (3, [RocAuc, lambda: F1Score(average="macro")])])
def test_sklearn_metrics_survive_safe_export_and_load(tmp_path, n_classes, factories):
    learn, items = _learner(tmp_path, n_classes, [f() for f in factories])
    learn.fit(3, 3e-2)
    before = learn.validate()
    assert len(before) == 1 + len(factories) and all(v is not None for v in before)
    fname = learn.export("export.pkl")

    loaded = load_learner(fname)  # safe: refused before the fix (tiers' own `_skm.<locals>.call` stored by value)
    after = loaded.validate(dl=loaded.dls.test_dl(items[60:], with_labels=True))
    assert [m.name for m in loaded.metrics] == [m.name for m in learn.metrics]
    assert after == pytest.approx(before, rel=1e-5, abs=1e-6)

    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    res = subprocess.run([sys.executable, "-c", _FRESH, str(fname), str(n_classes)], capture_output=True, text=True,
                         timeout=180, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == pytest.approx(before, rel=1e-5, abs=1e-6)


def test_sklearn_metric_function_pickles_by_reference():
    import pickle

    from tiers.train.metrics.common import SkMetricFunc

    f = F1Score().func
    assert isinstance(f, SkMetricFunc) and f.__name__ == "f1_score"
    data = pickle.dumps(f)
    assert b"<locals>" not in data and b"SkMetricFunc" in data
    g = pickle.loads(data)
    assert g == f and g([0, 1, 1, 0], [0, 1, 0, 0]) == pytest.approx(2 / 3)
