"""Package-level checks: docstring examples run, every public name is documented, the import is lean and has
no global side effects."""

import doctest
import importlib
import subprocess
import sys

import pytest

import tiers.dispatch

MODULES = ["attrs", "basics", "foundation", "meta", "retain", "typedispatch", "xtras"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    mod = importlib.import_module(f"tiers.dispatch.{name}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0


def test_every_public_name_is_exported_and_documented():
    exported = set(tiers.dispatch.__all__)
    for name in MODULES:
        mod = importlib.import_module(f"tiers.dispatch.{name}")
        assert set(mod.__all__) <= exported, set(mod.__all__) - exported
    for name in exported:
        obj = getattr(tiers.dispatch, name)
        if name in ("NoneType", "typedispatch"):
            continue
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
    assert tiers.dispatch.__version__ == "0.1.0"


def test_import_is_lean_and_side_effect_free():
    code = (
        "import sys, warnings, random\n"
        "before = set(sys.modules); filters = list(warnings.filters); state = random.getstate()\n"
        "import tiers.dispatch, tiers.dispatch.all\n"
        "new = set(sys.modules) - before\n"
        "heavy = {'inspect', 'torch', 'numpy', 'pandas', 'typing_extensions', 'ast', 'dis'} & new\n"
        "assert not heavy, heavy\n"
        "assert warnings.filters == filters and random.getstate() == state\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_all_star_import():
    ns = {}
    exec("from tiers.dispatch.all import *", ns)
    assert {"L", "typedispatch", "patch", "delegates", "retain_type"} <= set(ns)
