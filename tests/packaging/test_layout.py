"""The monorepo's shape: one distribution per layer, PEP 420 namespace, tools that agree on the layer map."""

import re

import pytest
import tomllib
from layers import LAYERS, ORDER, ROOT, TIERS_DEPS, chain
from versioning import tiers_specs


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_distribution_is_complete(layer):
    pkg = ROOT / "packages" / layer
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    assert meta["project"]["name"] == f"tiers-{layer}"
    assert meta["build-system"]["build-backend"] == "hatchling.build"
    for name in ("README.md", "CHANGELOG.md"):
        assert (pkg / name).is_file(), f"packages/{layer}/{name} is missing"
    src = pkg / "src" / "tiers" / layer
    init = (src / "__init__.py").read_text()
    assert re.search(r'^__version__ = "\d+\.\d+\.\d+"', init, re.M), f"{src}/__init__.py needs __version__"
    assert init.lstrip().startswith('"""'), f"{src}/__init__.py needs a module docstring"
    assert (src / "all.py").is_file()


def test_tiers_is_a_namespace_everywhere():
    offenders = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("packages/*/src/tiers/__init__.py"))
    assert not offenders, f"tiers is a PEP 420 namespace; delete {offenders}"


def test_all_py_star_imports_the_lower_layers_first():
    for layer in LAYERS:
        text = (ROOT / "packages" / layer / "src" / "tiers" / layer / "all.py").read_text()
        found = re.findall(r"^\s*from tiers\.(\w+)(?:\.all)? import \*", text, re.M)
        # an optional tiers layer (pipeline's `tensors` extra) is star-imported too, in layer order, when installed
        optional = {s["name"] for s in tiers_specs(layer)} - set(TIERS_DEPS[layer])
        expected = [name for name in LAYERS if name in TIERS_DEPS[layer] or name in optional] + [layer]
        assert found == expected, f"{layer}/all.py star-imports {found}"


def test_meta_distribution_pins_every_layer_at_its_version():
    meta = tomllib.loads((ROOT / "packages" / "tiers" / "pyproject.toml").read_text())
    pins = {re.sub(r"\[.*\]", "", name): version for name, version in
            (dep.split("==") for dep in meta["project"]["dependencies"])}
    assert sorted(pins) == sorted(f"tiers-{layer}" for layer in LAYERS)
    from release import read_version

    for layer in LAYERS:
        assert pins[f"tiers-{layer}"] == read_version(layer), f"packages/tiers pins an untested tiers-{layer}"
    assert not list((ROOT / "packages" / "tiers").rglob("*.py")), "the meta-distribution ships no modules"


def test_meta_pins_satisfy_every_layers_specifiers():
    """The pinned set installs together: each layer's `tiers-X>=floor,<cap` admits the pinned X."""
    from versioning import inconsistencies, meta_pins

    assert not inconsistencies(meta_pins()), inconsistencies(meta_pins())


@pytest.mark.parametrize("layer", [name for name in LAYERS if name != "dispatch"])
def test_every_tiers_requirement_has_a_floor_and_a_cap_at_the_next_breaking_version(layer):
    from versioning import SPEC_RE, cap, parse

    text = (ROOT / "packages" / layer / "pyproject.toml").read_text()
    meta = tomllib.loads(text)["project"]
    reqs = [d for d in [*meta["dependencies"], *sum(meta.get("optional-dependencies", {}).values(), [])]
            if d.startswith("tiers-")]
    assert reqs, f"tiers-{layer} requires no tiers layer"
    for req in reqs:
        m = SPEC_RE.fullmatch(f'"{req}"')
        assert m, f"packages/{layer}: {req!r} must read tiers-X>=FLOOR,<NEXT-BREAKING (see tools/versioning.py)"
        assert m["cap"] == cap(parse(m["floor"])), f"packages/{layer}: {req!r} caps at {m['cap']}, not the next breaking"


def test_import_linter_contract_names_every_layer_in_order():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert sorted(conf["root_packages"]) == sorted(f"tiers.{layer}" for layer in LAYERS)
    (contract,) = conf["contracts"]
    assert contract["type"] == "layers"
    expected = [" | ".join(f"tiers.{name}" for name in group) for group in reversed(ORDER)]
    assert contract["layers"] == expected


def test_hatch_has_an_isolated_environment_per_layer():
    conf = tomllib.loads((ROOT / "hatch.toml").read_text())["envs"]
    for layer in LAYERS:
        env = conf[f"layer-{layer}"]
        assert env["workspace"]["members"] == [f"packages/{name}" for name in chain(layer)]
        assert env["system-packages"] is True, "torch is shared from the base interpreter, never re-downloaded"
