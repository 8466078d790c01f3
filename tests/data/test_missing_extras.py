"""Without the optional extra `tiers-data[plots]` (matplotlib, pandas), tiers.data imports and loads batches; the
grids, tables and CSV reading raise `ModuleNotFoundError` naming the library, the feature and `pip install
"tiers-data[plots]"`. Both libraries are blocked (`sys.modules[name] = None`) in a fresh interpreter."""

import pytest

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
def result(tmp_path_factory, run_without):
    csv = tmp_path_factory.mktemp("csv") / "t.csv"
    csv.write_text("a,b\n1,2\n")
    return run_without(("matplotlib", "pandas"), CODE, str(csv))


@pytest.mark.slow
def test_data_loads_without_matplotlib_and_pandas(result):
    assert result["batches"] == 3 and result["loaded"] == []


@pytest.mark.slow
@pytest.mark.parametrize("key, lib, feature", [
    ("get_grid", "matplotlib", "get_grid"), ("read_csv", "pandas", "read_csv"),
    ("get_empty_df", "pandas", "get_empty_df"), ("pd", "pandas", "tiers.data.all"),
    ("plt", "matplotlib", "tiers.data.all")])
def test_each_feature_names_the_plots_extra(result, key, lib, feature, check_extra):
    check_extra(result[key], lib, feature, "tiers-data", "plots")
