"""Without its optional extras (`tiers-train[plots]`, `[sklearn]`, `[pandas]`), tiers.train imports and trains;
each feature that needs one raises `ModuleNotFoundError` naming the library, the feature and the exact
`pip install "tiers-train[...]"`. The libraries are blocked (`sys.modules[name] = None`) in a fresh interpreter,
as if not installed."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

CODE = """
import json, sys
for name in ("matplotlib", "sklearn", "pandas"):
    sys.modules[name] = None
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tiers.data import DataLoaders
from tiers.train import CSVLogger, F1Score, Learner, ShowGraphCallback

x = torch.randn(64, 4)
y = (x[:, 0] > 0).long()
dls = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x, y), batch_size=16))
learn = Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy,
                path=sys.argv[1])
out = {}

def attempt(key, f):
    try:
        f()
        out[key] = None
    except ModuleNotFoundError as e:
        out[key] = [type(e).__name__, e.name, str(e)]

csv = CSVLogger()
learn.fit(1, 1e-2, cbs=csv)  # training itself needs none of the extras
out["trained_epochs"] = len(learn.recorder.values)
attempt("plot_loss", learn.recorder.plot_loss)
attempt("plot_sched", learn.recorder.plot_sched)
attempt("read_log", csv.read_log)
learn.metrics = [F1Score()]
attempt("f1", learn.validate)
learn.metrics = []
n = len(learn.recorder.values)
attempt("show_graph", lambda: learn.fit(1, 1e-2, cbs=ShowGraphCallback()))
out["epochs_after_show_graph"] = len(learn.recorder.values) if out["show_graph"] is None else n
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        res = learn.lr_find(num_it=12)  # show_plot=True by default, as fastai code calls it
        out["lr_find"] = [list(res._fields), res.valley > 0, [str(w.message) for w in caught]]
    except ModuleNotFoundError as e:
        out["lr_find"] = [type(e).__name__, str(e)]
out["loaded"] = sorted(m for m in ("matplotlib", "sklearn", "pandas") if sys.modules.get(m) is not None)
print("RESULT", json.dumps(out))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE), str(tmp_path_factory.mktemp("learn"))],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("RESULT", 1)[1])


def _check(err, lib, feature, extra):
    assert err is not None, f"{feature} ran without {lib}"
    kind, name, msg = err
    assert kind == "MissingExtraError" and name == lib, err
    assert feature in msg and f"needs {lib}" in msg and f"tiers-train[{extra}]" in msg, msg
    assert msg.endswith(f'pip install "tiers-train[{extra}]"'), msg


@pytest.mark.slow
def test_the_core_trains_without_any_extra(result):
    assert result["trained_epochs"] == 1 and result["loaded"] == []


@pytest.mark.slow
def test_recorder_plots_name_the_plots_extra(result):
    _check(result["plot_loss"], "matplotlib", "Recorder.plot_loss", "plots")
    _check(result["plot_sched"], "matplotlib", "Recorder.plot_sched", "plots")


@pytest.mark.slow
def test_show_graph_callback_fails_before_training_not_after(result):
    _check(result["show_graph"], "matplotlib", "ShowGraphCallback", "plots")
    assert result["epochs_after_show_graph"] == 1  # no epoch was spent before the error


@pytest.mark.slow
def test_sklearn_metric_names_the_sklearn_extra(result):
    _check(result["f1"], "sklearn", "the scikit-learn metric f1_score", "sklearn")


@pytest.mark.slow
def test_csv_log_as_dataframe_names_the_pandas_extra(result):
    _check(result["read_log"], "pandas", "CSVLogger.read_log", "pandas")


@pytest.mark.slow
def test_lr_find_without_matplotlib_returns_its_suggestions_and_warns(result):
    fields, positive, warned = result["lr_find"]
    assert fields == ["valley"] and positive is True, result["lr_find"]
    assert len(warned) == 1 and warned[0].startswith("lr_find: the suggestions are returned without the plot")
    assert 'pip install "tiers-train[plots]"' in warned[0]
