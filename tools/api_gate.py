"""API-break gate: a layer's public names compared with its last release tag, from the source (AST) alone.

    python tools/api_gate.py LAYER [--against REF]      print what changed; exit 1 on a break

The public API of a layer is every public module under `src/tiers/<layer>/` (no path part starting with `_`)
and, in each, the names it exports: its literal `__all__` when it has one, else every top-level def, class,
assignment and `from ... import` without a leading underscore. Each name carries a fingerprint: for a function
(or a class's `__init__`), its parameters. A break is a name or module that disappears, a name that changes
kind (function <-> class <-> value), or a signature that drops or renames a parameter, moves a positional one,
or gains a required one. A break needs a breaking version (new major; below 1.0 a new minor); adding names
or optional parameters does not.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layers import ROOT  # noqa: E402

Reader = Callable[[], dict[str, str]]  # module path (relative to src/) -> source


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef, skip_self: bool) -> list[tuple[str, str, bool]]:
    a = fn.args
    pos = [*a.posonlyargs, *a.args]
    defaults = [False] * (len(pos) - len(a.defaults)) + [True] * len(a.defaults)
    out = [(p.arg, "pos", d) for p, d in zip(pos, defaults)]
    if skip_self and out:
        out = out[1:]
    if a.vararg:
        out.append((a.vararg.arg, "*", True))
    out += [(p.arg, "kw", d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        out.append((a.kwarg.arg, "**", True))
    return out


def _fingerprint(node: ast.AST) -> tuple:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return ("function", tuple(_params(node, skip_self=False)))
    if isinstance(node, ast.ClassDef):
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                return ("class", tuple(_params(item, skip_self=True)))
        return ("class", None)
    return ("value", None)


def module_api(source: str) -> dict[str, tuple]:
    """Public name -> fingerprint for one module's source."""
    tree = ast.parse(source)
    defined: dict[str, tuple] = {}
    explicit: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined[node.name] = _fingerprint(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    if t.id == "__all__":
                        try:
                            explicit = [str(n) for n in ast.literal_eval(node.value)]
                        except ValueError:  # built at import time: fall back to the public top-level names
                            explicit = None
                    else:
                        defined.setdefault(t.id, ("value", None))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tiers."):
            for alias in node.names:
                if alias.name != "*":
                    defined.setdefault(alias.asname or alias.name, ("imported", None))
    names = explicit if explicit is not None else [n for n in defined if not n.startswith("_")]
    return {n: defined.get(n, ("value", None)) for n in names if n != "__version__"}


def layer_api(sources: dict[str, str]) -> dict[str, tuple]:
    """`module:name` -> fingerprint for every public module of a layer (`sources`: path -> text)."""
    api: dict[str, tuple] = {}
    for path, text in sorted(sources.items()):
        parts = Path(path).with_suffix("").parts
        if any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        mod = ".".join(p for p in parts if p != "__init__")
        api[f"{mod}:"] = ("module", None)
        for name, fp in module_api(text).items():
            api[f"{mod}:{name}"] = fp
    return api


def worktree_sources(layer: str, root: Path = ROOT) -> dict[str, str]:
    src = root / "packages" / layer / "src"
    return {str(p.relative_to(src)): p.read_text() for p in sorted((src / "tiers" / layer).rglob("*.py"))}


def ref_sources(layer: str, ref: str, root: Path = ROOT) -> dict[str, str]:
    """The layer's modules as they were at git `ref`."""
    prefix = f"packages/{layer}/src/"
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref, "--", f"{prefix}tiers/{layer}"], cwd=root,
                           check=True, capture_output=True, text=True).stdout.split()
    out = {}
    for f in files:
        if f.endswith(".py"):
            out[f[len(prefix):]] = subprocess.run(["git", "show", f"{ref}:{f}"], cwd=root, check=True,
                                                  capture_output=True, text=True).stdout
    return out


def _signature_break(old: tuple, new: tuple) -> str | None:
    old_params, new_params = list(old), list(new)
    new_by_name = {p[0]: p for p in new_params}
    has_kwargs = any(p[1] == "**" for p in new_params)
    for i, (name, kind, _) in enumerate(old_params):
        if name not in new_by_name:
            if kind == "kw" and has_kwargs:
                continue
            return f"parameter {name!r} removed or renamed"
        if kind == "pos":
            j = next(k for k, p in enumerate(new_params) if p[0] == name)
            if j != i:
                return f"positional parameter {name!r} moved from position {i} to {j}"
    old_names = {p[0] for p in old_params}
    for name, kind, has_default in new_params:
        if name not in old_names and not has_default and kind in ("pos", "kw"):
            return f"new required parameter {name!r}"
    return None


def breaks(old: dict[str, tuple], new: dict[str, tuple]) -> list[str]:
    """What users of the `old` API would find broken in the `new` one."""
    found = []
    for key, fp in sorted(old.items()):
        where = key.rstrip(":")
        if key not in new:
            found.append(f"{where}: {'module' if fp[0] == 'module' else 'name'} removed")
            continue
        nfp = new[key]
        if fp[0] != nfp[0] and "imported" not in (fp[0], nfp[0]) and "value" not in (fp[0], nfp[0]):
            found.append(f"{where}: was a {fp[0]}, now a {nfp[0]}")
        elif fp[0] == nfp[0] and fp[1] is not None and nfp[1] is not None:
            why = _signature_break(fp[1], nfp[1])
            if why:
                found.append(f"{where}: {why}")
    return found


def added(old: dict[str, tuple], new: dict[str, tuple]) -> list[str]:
    return sorted(k.rstrip(":") for k in new if k not in old)


def check(layer: str, ref: str, root: Path = ROOT) -> list[str]:
    """The breaks between the layer at git `ref` and the working tree."""
    return breaks(layer_api(ref_sources(layer, ref, root)), layer_api(worktree_sources(layer, root)))


def main(argv: list[str] | None = None) -> int:
    from release import last_tag

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layer")
    ap.add_argument("--against", help="git ref to compare with (default: the layer's last release tag)")
    a = ap.parse_args(argv)
    ref = a.against or last_tag(a.layer)
    if ref is None:
        print(f"tiers-{a.layer}: no release tag yet, nothing to compare with")
        return 0
    found = check(a.layer, ref)
    for line in found:
        print(f"BREAK {line}")
    print(f"tiers-{a.layer}: {len(found)} break(s) since {ref}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
