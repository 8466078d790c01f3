"""Each distribution declares exactly what its code imports, within what tools/layers.py allows."""

import ast
import re
import sys

import pytest
import tomllib
from layers import HOST_PROVIDED, LAYERS, ROOT, THIRD_PARTY, TIERS_DEPS


def _imported_top_modules(layer: str) -> dict[str, str]:
    """Top-level module name -> first file importing it (absolute imports, lazy ones included)."""
    found: dict[str, str] = {}
    for py in sorted((ROOT / "packages" / layer / "src").rglob("*.py")):
        tree = ast.parse(py.read_text(), filename=str(py))
        for node in ast.walk(tree):
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


def _declared(layer: str) -> set[str]:
    meta = tomllib.loads((ROOT / "packages" / layer / "pyproject.toml").read_text())
    # an optional extra (e.g. tiers-train[cloudpickle]) declares a library imported lazily where it is used
    extras = [d for deps in meta["project"].get("optional-dependencies", {}).values() for d in deps]
    return {re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower() for dep in [*meta["project"]["dependencies"], *extras]}


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
                if dep not in TIERS_DEPS[layer]:
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
