"""The package surface: every public name of every tiers.train module is reachable from `tiers.train.all`."""

import importlib
import pkgutil

import tiers.train


def _modules():
    # Every module, subpackages' modules included (callbacks/, metrics/, nn/, io/).
    for info in pkgutil.walk_packages(tiers.train.__path__, prefix="tiers.train."):
        if not any(part.startswith("_") for part in info.name.split(".")) and info.name != "tiers.train.all":
            yield importlib.import_module(info.name)


def test_every_module_name_is_in_the_star_surface():
    ns: dict = {}
    exec("from tiers.train.all import *", ns)
    missing = {f"{m.__name__}.{n}" for m in _modules() for n in getattr(m, "__all__", ()) if n not in ns}
    assert not missing, f"not exported by tiers.train: {sorted(missing)}"


def test_star_surface_names_are_documented():
    undocumented = [n for n in tiers.train.__all__
                    if callable(obj := getattr(tiers.train, n)) and not (getattr(obj, "__doc__", None) or "").strip()]
    assert not undocumented, undocumented
