"""Each layer's tests in fresh venvs built from wheels, against the versions of the layers below it that its
specifiers allow: the working tree, the MINIMUM (each floor) and the LATEST released (highest tag in range).

    python tools/compat.py [LAYER...] [--modes tree,min,latest] [--out dist] [-- PYTEST ARGS]

For each layer and mode, the set of tiers wheels is resolved:
  tree    every layer from the working tree (what the next release of all of them would ship);
  min     the layer from the working tree, each tiers layer it requires at the FLOOR of its specifier
          (built from the tag `tiers-<dep>-v<floor>`; from the working tree when that version is not
          released yet, i.e. the working tree is still at it);
  latest  the layer from the working tree, each tiers layer below at its highest tagged version inside
          the specifier (the working tree when none is tagged yet).
A set equal to one already run (with no tags yet, all three are the same) runs once. Each run: a fresh venv
WITHOUT system site-packages (torch through the shared folder, and only if the layer needs it), the wheels
installed with no index; on the tree set, first the layer's wheel ALONE, checking that the installed
third-party set is exactly the closure of what it declares (check-wheels); then its optional extras and
the test tools, then `pytest tests/<layer>`. tiers-pipeline also runs without its `tensors` extra (no torch
at all). Wheels built from tags are cached in .tiers-envs/tag-wheels.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envs  # noqa: E402
import versioning as vv  # noqa: E402
from layers import LAYERS, ROOT, TEST_REQUIREMENTS  # noqa: E402
from release import DISTS, build, tags, vv_deps  # noqa: E402

# Layers whose tests also run with none of their optional extras installed.
BARE_RUN = {"pipeline"}


def _merged_specs(layer: str, chain: list[str], root: Path = ROOT) -> dict[str, tuple[vv.Version, vv.Version]]:
    """dep -> (highest floor, lowest cap) over every specifier in `layer`'s chain."""
    out: dict[str, tuple[vv.Version, vv.Version]] = {}
    for name in [layer, *chain]:
        for s in vv.tiers_specs(name, root):
            if s["name"] not in chain:
                continue
            floor, cap = vv.parse(s["floor"]), vv.cap_version(s["cap"])
            old = out.get(s["name"])
            out[s["name"]] = (max(floor, old[0]), min(cap, old[1])) if old else (floor, cap)
    return out


def _tag_same_as_tree(tag: str, name: str, root: Path = ROOT) -> bool:
    r = subprocess.run(["git", "diff", "--quiet", tag, "--", f"packages/{name}"], cwd=root)
    return r.returncode == 0


def resolve(layer: str, mode: str, extras: bool = True, root: Path = ROOT) -> dict[str, str]:
    """name -> "tree" or a tag, for `layer` and every tiers layer it (with its extras if `extras`) requires."""
    chain = sorted(vv_deps(layer, root, extras=extras), key=LAYERS.index)
    pick = {layer: "tree"}
    for dep, (floor, cap) in _merged_specs(layer, chain, root).items():
        tree_v = vv.parse(vv.read_version(dep, root))
        released = {v: t for v, t in tags(dep, root)}
        if mode == "tree":
            if not floor <= tree_v < cap:
                raise SystemExit(f"tiers-{layer}: the working tree's tiers-{dep} {vv.fmt(tree_v)} is outside "
                                 f">={vv.fmt(floor)},<{vv.fmt(cap)}: raise the specifier (tools/release.py does)")
            pick[dep] = "tree"
        elif mode == "min":
            if floor in released:
                pick[dep] = released[floor]
            elif floor == tree_v:
                pick[dep] = "tree"
            else:
                raise SystemExit(f"tiers-{layer} requires tiers-{dep}>={vv.fmt(floor)}, which is neither tagged nor "
                                 f"the working tree's version ({vv.fmt(tree_v)})")
        else:
            inside = [v for v in released if floor <= v < cap]
            pick[dep] = released[max(inside)] if inside else "tree"
        if pick[dep] != "tree" and _tag_same_as_tree(pick[dep], dep, root):
            pick[dep] = "tree"  # the tag's files are the working tree's: the same wheel
    return pick


def tag_wheel(tag: str, name: str, cache: Path, root: Path = ROOT) -> Path:
    """The wheel of distribution `name` as it was at `tag`, built once (cached by tag AND commit: a tag name can be
    made again elsewhere, e.g. in a release simulation sharing the cache)."""
    commit = subprocess.run(["git", "rev-parse", f"{tag}^{{commit}}"], cwd=root, capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = cache / f"{tag}-{commit[:12]}"
    found = sorted(dest.glob("*.whl"))
    if found:
        return found[-1]
    with tempfile.TemporaryDirectory(prefix=f"{tag}-") as tmp:
        archive = subprocess.run(["git", "archive", "--format=tar", tag, f"packages/{name}"], cwd=root,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dest)],
                       cwd=Path(tmp) / "packages" / name, check=True, capture_output=True)
    return sorted(dest.glob("*.whl"))[-1]


def run_set(layer: str, pick: dict[str, str], out: Path, extras: bool, check: bool, pytest_args: list[str],
            cache: Path) -> tuple[int, str]:
    """One fresh venv with the wheels of `pick`; the wheel check if `check`; then the layer's tests."""
    wheels = {n: (envs.wheel_of(n, out) if src == "tree" else tag_wheel(src, n, cache)) for n, src in pick.items()}
    torch = envs.needs_torch(layer) or (extras and any(envs.needs_torch(n) for n in pick))
    with tempfile.TemporaryDirectory(prefix=f"compat-{layer}-", dir=envs.ENVS) as tmp:
        env = Path(tmp) / "venv"
        py = envs.new_venv(env, envs.needs_torch(layer))
        if check:
            # the layer's wheel and the tiers wheels it requires, no extras: exactly what `pip install` brings
            required = {n: w for n, w in wheels.items() if n == layer or n in vv_deps(layer)}
            envs.install_local(py, [str(w) for w in required.values()], [out])
            dists = envs.installed(py)
            reach, missing = envs.closure([f"tiers-{layer}"], dists)
            extra = sorted(set(dists) - reach - {"pip"})
            if missing or extra:
                return 1, f"wheel check: unsatisfied {missing}, installed but never required {extra}"
            if not envs.needs_torch(layer) and "torch" in dists:
                return 1, "wheel check: torch installed though nothing requires it"
            from release import _submodules_of

            probe = f"import importlib\nfor m in {_submodules_of(layer)!r}: importlib.import_module(m)\n"
            r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp)
            if r.returncode:
                return 1, f"wheel check: a module does not import with only the declared dependencies:\n{r.stderr[-2000:]}"
            print(f"wheel check ok: {', '.join(sorted(n for n in reach if n.startswith('tiers')))}; "
                  f"{envs._size([envs.site_packages(env)]) / 1e6:.1f} MB beyond torch", flush=True)
        if torch and not envs.needs_torch(layer):  # an extra brings torch (pipeline[tensors]): reach the shared one
            (envs.site_packages(env) / envs.TORCH_PTH).write_text(str(envs.torch_base().resolve()) + "\n")
        specs = []
        for w in wheels.values():
            ex = envs.wheel_extras(w) if extras else []
            specs.append(f"{w}[{','.join(ex)}]" if ex else str(w))
        envs.install_local(py, [*specs, *TEST_REQUIREMENTS["*"], *(TEST_REQUIREMENTS.get(layer, []) if extras else [])],
                           [out])
        if not any((ROOT / "tests" / layer).glob("test_*.py")):
            return 0, "no tests"
        r = subprocess.run([str(py), "-m", "pytest", f"tests/{layer}", *pytest_args], cwd=ROOT)
        return r.returncode, ""


def main(argv: list[str]) -> int:
    if "--" in argv:
        i = argv.index("--")
        argv, pytest_args = argv[:i], argv[i + 1:]
    else:
        pytest_args = ["-q", "-p", "no:cacheprovider"]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layers", nargs="*")
    ap.add_argument("--modes", default="tree,min,latest")
    ap.add_argument("--out", default=str(ROOT / "dist"), help="where the working tree's wheels are (built if absent)")
    ap.add_argument("--rebuild", action="store_true", help="build the working tree's wheels again first")
    a = ap.parse_args(argv)
    layers = a.layers or LAYERS
    unknown = [n for n in layers if n not in LAYERS]
    if unknown:
        print(f"unknown layer(s) {unknown}; choose from {LAYERS}", file=sys.stderr)
        return 2
    out = Path(a.out)
    if a.rebuild or not any(out.glob("*.whl")):
        if out.exists():
            shutil.rmtree(out)
        build(DISTS, out)
    envs.ENVS.mkdir(parents=True, exist_ok=True)
    cache = envs.ENVS / "tag-wheels"
    modes = [m for m in a.modes.split(",") if m]
    if not any(tags(n) for n in LAYERS):
        print("no release tags yet: min and latest resolve to the working tree, so each layer runs once "
              "(tools/release.py tag-initial makes the first tags)")
    results = []
    for layer in layers:
        done: dict[tuple, str] = {}
        variants = [(True, m) for m in modes] + ([(False, modes[0])] if layer in BARE_RUN and modes else [])
        for extras, mode in variants:
            pick = resolve(layer, mode, extras)
            key = (extras, tuple(sorted(pick.items())))
            label = f"{mode}{'' if extras else ', no extras'}"
            if key in done:
                print(f"--- tiers-{layer} [{label}]: same wheels as [{done[key]}], not run again")
                continue
            done[key] = label
            below = ", ".join(f"{n}@{s}" for n, s in pick.items() if n != layer) or "none"
            print(f"\n=== tiers-{layer} [{label}] with {below} ===", flush=True)
            start = time.perf_counter()
            rc, note = run_set(layer, pick, out, extras, check=(mode == "tree" and extras), pytest_args=pytest_args,
                               cache=cache)
            if note:
                print(note)
            results.append((layer, label, rc, time.perf_counter() - start))
    print("\ncompatibility summary:")
    for layer, label, rc, secs in results:
        print(f"  {layer:<9} {label:<18} {'ok' if rc == 0 else 'FAILED'}  {secs:6.1f} s")
    return max((rc for *_, rc, _s in results), default=0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
