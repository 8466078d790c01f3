"""Each distribution declares exactly what its code imports, within what tools/layers.py allows."""

import ast
import re
import sys

import pytest
import tomllib
from layers import HOST_PROVIDED, LAYERS, ROOT, THIRD_PARTY, TIERS_DEPS


def _require_calls(tree: ast.AST) -> list[ast.Call]:
    """The `require("module", dist=..., extra=..., what=...)` calls (tiers.dispatch.extras) in `tree`."""
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "require"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


def _imported_top_modules(layer: str, top_level_only: bool = False) -> dict[str, str]:
    """Top-level module name -> first file importing it (absolute imports, lazy ones included unless
    `top_level_only`: then only the unconditional imports at module level, run by importing the module). A lazy
    `require("matplotlib.pyplot", ...)` counts as an import of matplotlib."""
    found: dict[str, str] = {}
    for py in sorted((ROOT / "packages" / layer / "src").rglob("*.py")):
        tree = ast.parse(py.read_text(), filename=str(py))
        required = set() if top_level_only else set(map(id, _require_calls(tree)))
        for node in (tree.body if top_level_only else ast.walk(tree)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif id(node) in required:
                names = [node.args[0].value]
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


def _extra_only(layer: str) -> dict[str, set[str]]:
    """Import name -> the extras of `layer` that bring it, for the third-party libraries only its optional extras
    declare (those the layer's core does not require)."""
    meta = tomllib.loads((ROOT / "packages" / layer / "pyproject.toml").read_text())["project"]
    required = _names(meta["dependencies"])
    dist_to_mod = {d.lower(): m for d, m in THIRD_PARTY[layer].items()}
    out: dict[str, set[str]] = {}
    for extra, deps in meta.get("optional-dependencies", {}).items():
        for dist in _names(deps) - required:
            if dist in dist_to_mod:  # tiers-* extras (pipeline[tensors]) are optional re-exports, not errors
                out.setdefault(dist_to_mod[dist], set()).add(extra)
    return out


def _under_type_checking(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside `if TYPE_CHECKING:` blocks (never run)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


@pytest.mark.parametrize("layer", LAYERS)
def test_extra_only_libraries_are_imported_through_require(layer):
    """Every import of a library that only an optional extra brings goes through `tiers.dispatch.extras.require`
    naming this layer's distribution and an extra that declares the library, so a user without it gets
    `pip install "tiers-<layer>[<extra>]"` instead of a bare `No module named ...`."""
    extra_of = _extra_only(layer)
    problems = []
    for py in sorted((ROOT / "packages" / layer / "src").rglob("*.py")):
        tree = ast.parse(py.read_text(), filename=str(py))
        where = py.relative_to(ROOT)
        skip = _under_type_checking(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                mods = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                if mod.split(".")[0] in extra_of:
                    problems.append(f"{where}:{node.lineno} `{ast.unparse(node)}`: {mod.split('.')[0]} comes only "
                                    f"with the extra(s) {sorted(extra_of[mod.split('.')[0]])}; use "
                                    f"require({mod!r}, dist='tiers-{layer}', extra=..., what=...)")
        for call in _require_calls(tree):
            kw = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
            lib = call.args[0].value.split(".")[0]
            if kw.get("dist") != f"tiers-{layer}":
                problems.append(f"{where}:{call.lineno} require({call.args[0].value!r}) names dist={kw.get('dist')!r}, "
                                f"not tiers-{layer}: the user installs the extra of the layer they use")
            elif lib not in extra_of:
                problems.append(f"{where}:{call.lineno} require({call.args[0].value!r}): {lib} is not in an optional "
                                f"extra of packages/{layer}/pyproject.toml (a required library is imported directly)")
            elif kw.get("extra") not in extra_of[lib]:
                problems.append(f"{where}:{call.lineno} require({call.args[0].value!r}) names extra={kw.get('extra')!r}; "
                                f"{lib} comes with {sorted(extra_of[lib])}")
    assert not problems, "\n".join(problems)
