import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["core", "procs", "utils", "data", "model", "learner"])
def test_docstring_examples_run(name):
    mod = importlib.import_module(f"tiers.tabular.{name}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0


def test_import_is_cheap_and_changes_nothing_global():
    import subprocess
    import sys
    code = ("import sys, warnings, torch, pandas, tiers.train; f = list(warnings.filters); import tiers.tabular; "
            "assert warnings.filters == f; assert 'sklearn' not in sys.modules and 'matplotlib' not in sys.modules, "
            "[m for m in ('sklearn', 'matplotlib') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)
