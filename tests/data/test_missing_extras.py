"""Without the optional extra `tiers-data[plots]` (matplotlib, pandas), tiers.data imports and loads batches; the
grids, tables and CSV reading raise `ModuleNotFoundError` naming the library, the feature and `pip install
"tiers-data[plots]"`. Both libraries are blocked (`sys.modules[name] = None`) in a fresh interpreter."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import json, sys
for name in BLOCKED:
    sys.modules[name] = None
out = {}

def attempt(key, f):
    try:
        f()
        out[key] = None
    except ModuleNotFoundError as e:
        out[key] = [type(e).__name__, e.name, str(e)]
"""
EPILOGUE = """
out["loaded"] = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
print("RESULT", json.dumps(out))
"""


def _run(blocked: tuple[str, ...], code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter where the modules `blocked` cannot be imported; its `out` dict back."""
    src = f"BLOCKED = {blocked!r}\n" + PRELUDE + textwrap.dedent(code) + EPILOGUE
    r = subprocess.run([sys.executable, "-c", src, *args], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("RESULT", 1)[1])


def _check(err, lib: str, feature: str, dist: str, extra: str) -> None:
    """`err` is the MissingExtraError of `feature` for `lib`, naming `dist[extra]` and the command."""
    assert err is not None, f"{feature} ran without {lib}"
    kind, name, msg = err
    assert kind == "MissingExtraError" and name == lib, err
    assert feature in msg and f"needs {lib}" in msg and f"{dist}[{extra}]" in msg, msg
    assert msg.endswith(f'pip install "{dist}[{extra}]"'), msg

CODE = """
from tiers.data import DataLoader, get_empty_df, get_grid, read_csv
from tiers.data.all import pd, plt

out["batches"] = len(list(DataLoader(list(range(10)), bs=4)))  # loading needs neither library
csv = sys.argv[1]
attempt("get_grid", lambda: get_grid(4))
attempt("read_csv", lambda: read_csv(csv))
attempt("get_empty_df", lambda: get_empty_df(2))
attempt("pd", lambda: pd.DataFrame)
attempt("plt", lambda: plt.figure)
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    csv = tmp_path_factory.mktemp("csv") / "t.csv"
    csv.write_text("a,b\n1,2\n")
    return _run(("matplotlib", "pandas"), CODE, str(csv))


@pytest.mark.slow
def test_data_loads_without_matplotlib_and_pandas(result):
    assert result["batches"] == 3 and result["loaded"] == []


@pytest.mark.slow
@pytest.mark.parametrize("key, lib, feature", [
    ("get_grid", "matplotlib", "get_grid"), ("read_csv", "pandas", "read_csv"),
    ("get_empty_df", "pandas", "get_empty_df"), ("pd", "pandas", "tiers.data.all"),
    ("plt", "matplotlib", "tiers.data.all")])
def test_each_feature_names_the_plots_extra(result, key, lib, feature):
    _check(result[key], lib, feature, "tiers-data", "plots")
