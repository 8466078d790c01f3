"""Each distribution declares exactly what its code imports, within what tools/layers.py allows."""

import ast
import re
import sys

import pytest
import tomllib
from layers import HOST_PROVIDED, LAYERS, ROOT, THIRD_PARTY, TIERS_DEPS


def _imported_top_modules(layer: str, top_level_only: bool = False) -> dict[str, str]:
    """Top-level module name -> first file importing it (absolute imports, lazy ones included unless
    `top_level_only`: then only the unconditional imports at module level, run by importing the module)."""
    found: dict[str, str] = {}
    for py in sorted((ROOT / "packages" / layer / "src").rglob("*.py")):
        tree = ast.parse(py.read_text(), filename=str(py))
        for node in (tree.body if top_level_only else ast.walk(tree)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                parts = name.split(".")
                key = ".".join(parts[:2]) if parts[0] == "tiers" else parts[0]
                found.setdefault(key, str(py.relative_to(ROOT)))
    return found


def _names(deps: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower() for dep in deps}


def _declared(layer: str, extras: bool = True) -> set[str]:
    """The distributions a layer declares: required ones, plus those of its optional extras if `extras`."""
    meta = tomllib.loads((ROOT / "packages" / layer / "pyproject.toml").read_text())["project"]
    names = _names(meta["dependencies"])
    if extras:
        for deps in meta.get("optional-dependencies", {}).values():
            names |= _names(deps)
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_declared_dependencies_match_imports(layer):
    allowed = THIRD_PARTY[layer]
    import_to_dist = {mod: dist for dist, mod in allowed.items()}
    used: set[str] = set()
    problems = []
    for mod, where in _imported_top_modules(layer).items():
        if mod.startswith("tiers."):
            dep = mod.split(".")[1]
            if dep != layer:
                used.add(f"tiers-{dep}")
                if dep not in TIERS_DEPS[layer] and f"tiers-{dep}" not in _declared(layer):
                    problems.append(f"{where} imports {mod}, which is not below {layer} (see tools/layers.py)")
        elif mod in sys.stdlib_module_names or mod == "__future__" or mod in HOST_PROVIDED:
            continue
        elif mod in import_to_dist:
            used.add(import_to_dist[mod])
        else:
            problems.append(f"{where} imports {mod!r}, which tools/layers.py does not allow for {layer} "
                            f"(allowed: {sorted(allowed) or 'stdlib only'})")
    declared = _declared(layer)
    if used - declared:
        problems.append(f"packages/{layer}/pyproject.toml must declare {sorted(used - declared)}")
    if declared - used:
        problems.append(f"packages/{layer}/pyproject.toml declares {sorted(declared - used)}, which the code never imports")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("layer", LAYERS)
def test_optional_libraries_are_never_imported_at_module_level(layer):
    """A library of an optional extra is imported inside the functions (or the guarded block) that need it, so the
    layer imports without it."""
    required = _declared(layer, extras=False)
    allowed = THIRD_PARTY[layer]
    problems = []
    for mod, where in _imported_top_modules(layer, top_level_only=True).items():
        dist = f"tiers-{mod.split('.')[1]}" if mod.startswith("tiers.") else {m: d for d, m in allowed.items()}.get(mod)
        if dist and dist != f"tiers-{layer}" and dist not in required:
            problems.append(f"{where} imports {mod} at module level, but packages/{layer}/pyproject.toml has {dist} "
                            "only in an optional extra: import it inside the function that needs it")
    assert not problems, "\n".join(problems)
