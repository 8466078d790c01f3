"""Project-local environments: one shared torch install, fresh venvs that reach it, and the wheel check.

    python tools/envs.py torch-base            install torch (the version requirements/base.txt pins) once
                                               into .tiers-envs/torch, a plain folder, not a venv
    python tools/envs.py sizes [--out dist]    the README table: what `pip install tiers-<layer>` brings,
                                               measured in fresh venvs from the built wheels

torch (about 5.5 GB with its CUDA libraries) is installed ONCE. Every environment that needs it, the
development venv `.venv` included, is a venv WITHOUT system site-packages whose site-packages holds a
`_tiers_torch.pth` naming that folder: Python puts it on sys.path and pip counts the distributions in it as
installed, so nothing downloads or copies torch again. A venv for a layer that needs no torch (dispatch,
pipeline) gets no such file, so torch is not importable there at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layers import LAYERS, ROOT  # noqa: E402

ENVS = Path(os.environ.get("TIERS_ENVS", ROOT / ".tiers-envs"))
BASE_TXT = ROOT / "requirements" / "base.txt"
TORCH_PTH = "_tiers_torch.pth"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def base_requirements(path: Path = BASE_TXT) -> dict[str, str]:
    """requirements/base.txt as {normalized name: requirement line}."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out[_norm(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0])] = line
    return out


def _pip(py: Path | str) -> list[str]:
    return [sys.executable, "-m", "pip", "--python", str(py), "--disable-pip-version-check"]


def pip_install(py: Path | str, args: list[str], quiet: bool = True) -> None:
    """`pip install ARGS` into the environment of interpreter `py` (pip runs from this interpreter)."""
    cmd = [*_pip(py), "install", *(["-q"] if quiet else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"pip install {' '.join(args)} failed for {py}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def torch_base(envs: Path = ENVS) -> Path:
    """The shared torch folder, installed on first use (torch only: torchvision goes where it is declared)."""
    pin = base_requirements()["torch"]
    dest = envs / "torch"
    marker = dest / ".tiers-complete"
    if marker.is_file() and marker.read_text() == pin:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    print(f"== installing {pin} once into {dest} (shared by every environment that needs torch) ==", flush=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--target", str(dest), pin], capture_output=True, text=True)
    if r.returncode:
        shutil.rmtree(dest)
        raise SystemExit(f"installing {pin} into {dest} failed:\n{r.stderr[-3000:]}")
    marker.write_text(pin)
    return dest


def wheelhouse(envs: Path = ENVS, source: Path | str | None = None) -> Path:
    """A folder of wheels for everything requirements/base.txt resolves to, torch's own closure left out (it is
    shared through the torch folder). Made once (again when base.txt changes) by downloading, with --no-deps,
    exactly the versions installed in the development environment `source` (default: this interpreter); the
    fresh venvs install from it with --no-index, so no tiers-* can come from an index and every install is the
    same, in seconds."""
    import hashlib

    dest = envs / "wheelhouse"
    key = hashlib.sha256(BASE_TXT.read_bytes()).hexdigest()
    marker = dest / ".tiers-complete"
    if marker.is_file() and marker.read_text() == key:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    dists = installed(Path(source or sys.executable))
    torch_dists = {_norm(p.name.split("-")[0]) for p in torch_base(envs).glob("*.dist-info")}
    reqs = [line for name, line in base_requirements().items() if name != "torch"]
    reach, missing = closure([*reqs, "pip", "setuptools"], dists)
    if missing:
        raise SystemExit(f"the development environment lacks {missing}: run ./dev (it installs requirements/base.txt)")
    pins = sorted(f"{dists[n]['name']}=={dists[n]['version']}" for n in reach - torch_dists)
    print(f"== downloading {len(pins)} wheels (requirements/base.txt resolved, torch left out) into {dest} ==",
          flush=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        "--only-binary", ":all:", "-d", str(dest), *pins], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"pip download failed:\n{r.stderr[-3000:]}")
    marker.write_text(key)
    return dest


def install_local(py: Path | str, args: list[str], find_links: list[Path], envs: Path = ENVS) -> None:
    """pip install with no index: from the wheelhouse and the folders `find_links` (built tiers wheels)."""
    links = [x for p in [wheelhouse(envs), *find_links] for x in ("--find-links", str(Path(p).resolve()))]
    pip_install(py, ["--no-index", "--no-compile", *links, *args])


def site_packages(env: Path) -> Path:
    (sp,) = (env / "lib").glob("python3*/site-packages")
    return sp


def new_venv(env: Path, torch: bool, envs: Path = ENVS) -> Path:
    """A fresh venv at `env` (replacing one there) without system site-packages or pip; with the shared torch
    reachable when `torch`. Returns its interpreter."""
    if env.exists():
        shutil.rmtree(env)
    venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True).create(env)
    if torch:
        (site_packages(env) / TORCH_PTH).write_text(str(torch_base(envs).resolve()) + "\n")
    return env / "bin" / "python"


def needs_torch(layer: str) -> bool:
    """Whether `layer` or a tiers layer it requires declares torch."""
    from release import vv_deps
    from versioning import pyproject

    return any('"torch>=' in pyproject(name).read_text() or '"torch=' in pyproject(name).read_text()
               for name in [layer, *vv_deps(layer)])


# -- what a venv holds -------------------------------------------------------------------------------------------

_PROBE = r"""
import importlib.metadata as md, json, sys
seen = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if name and name.lower() not in seen:
        seen[name.lower()] = {"name": name, "version": d.version, "requires": d.requires or [],
                              "path": str(d._path.parent) if hasattr(d, "_path") else ""}
print(json.dumps(list(seen.values())))
"""


def installed(py: Path) -> dict[str, dict]:
    """Distributions visible to interpreter `py` (its venv and the torch folder): normalized name -> info."""
    r = subprocess.run([str(py), "-c", _PROBE], capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return {_norm(d["name"]): d for d in json.loads(r.stdout)}


def closure(roots: list[str], dists: dict[str, dict]) -> tuple[set[str], list[str]]:
    """Names reachable from the requirement strings `roots` through the installed metadata (markers evaluated,
    extras followed), and the requirements that nothing installed satisfies."""
    from packaging.requirements import Requirement

    found: set[str] = set()
    missing = []
    todo = [(r, ()) for r in roots]
    while todo:
        text, extras = todo.pop()
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or ("",))):
            continue
        name = _norm(req.name)
        if name not in dists:
            missing.append(text)
            continue
        if not req.specifier.contains(dists[name]["version"], prereleases=True):
            missing.append(f"{text} (installed {dists[name]['version']})")
        key = f"{name}{sorted(req.extras)}"
        if key in found:
            continue
        found.add(key)
        todo += [(r, tuple(req.extras)) for r in dists[name]["requires"]]
    return {k.split("[")[0] for k in found}, missing


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())
    return total


def wheel_of(name: str, out: Path) -> Path:
    dist = "tiers" if name == "tiers" else f"tiers_{name}"
    found = sorted(out.glob(f"{dist}-*.whl"))
    if not found:
        raise SystemExit(f"no wheel of tiers-{name} in {out}; build it first (tools/release.py build)")
    return found[-1]


def wheel_requires(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    import email
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(meta)).get_all("Requires-Dist") or []


def wheel_extras(wheel: Path) -> list[str]:
    """The optional extras a wheel offers (Provides-Extra)."""
    import email
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(meta)).get_all("Provides-Extra") or []


def wheel_chain(layer: str, out: Path) -> list[Path]:
    """The wheel of `layer` in `out` and those of the tiers-* it requires (no extras), by its metadata."""
    from packaging.requirements import Requirement

    found: dict[str, Path] = {}
    todo = [layer]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = wheel_of(name, out)
        for text in wheel_requires(found[name]):
            req = Requirement(text)
            if req.name.startswith("tiers-") and not (req.marker and not req.marker.evaluate({"extra": ""})):
                todo.append(req.name[len("tiers-"):])
    return list(found.values())


def check_wheels(out: Path, names: list[str] | None = None, envs: Path = ENVS) -> dict[str, dict]:
    """Install each layer's wheel into a fresh venv WITHOUT system site-packages (torch from the shared folder
    only where the layer needs it), with the tiers wheels of `out` and third-party libraries from the index.
    Then: every module imports, the installed set is exactly the closure of what the layer declares, and a
    layer without torch in its requirements can not import it. Returns the measurements per layer."""
    from release import _submodules_of

    failures, report = [], {}
    for layer in names or LAYERS:
        torch = needs_torch(layer)
        with tempfile.TemporaryDirectory(prefix=f"wheel-{layer}-", dir=envs if envs.exists() else None) as tmp:
            py = new_venv(Path(tmp) / "venv", torch, envs)
            chain = wheel_chain(layer, out)
            try:
                # the chain's wheels by path, so pip can take no tiers-* from an index
                install_local(py, list(map(str, chain)), [out], envs)
            except SystemExit as e:
                failures.append(f"tiers-{layer}: install failed: {e}")
                continue
            dists = installed(py)
            tiers_reqs = [f"tiers-{layer}"]
            reach, missing = closure(tiers_reqs, dists)
            extra = sorted(set(dists) - reach - {"pip"})
            problems = []
            if missing:
                problems.append(f"requirements not satisfied: {missing}")
            if extra:
                problems.append(f"installed but never required: {extra}")
            if not torch and "torch" in dists:
                problems.append(f"torch is installed, but nothing tiers-{layer} requires needs it")
            mods = _submodules_of(layer)
            probe = ("import importlib, sys\n"
                     f"for m in {mods!r}: importlib.import_module(m)\n"
                     "import importlib.util\n"
                     "print('torch importable' if importlib.util.find_spec('torch') else 'no torch')\n")
            r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp)
            if r.returncode:
                problems.append(f"import failed:\n{r.stderr[-2000:]}")
            elif not torch and "no torch" not in r.stdout:
                problems.append("torch is importable in a venv that should not have it")
            sp = site_packages(Path(tmp) / "venv")
            third = sorted(n for n in reach if not n.startswith("tiers"))
            size = _size([sp])
            report[layer] = {"torch": torch, "third_party": third, "bytes_beyond_torch": size,
                             "tiers": sorted(n for n in reach if n.startswith("tiers"))}
            if problems:
                failures.append(f"tiers-{layer}: " + "; ".join(problems))
            else:
                print(f"tiers-{layer}: ok ({len(mods)} modules; {'torch from the shared base, ' if torch else 'no torch, '}"
                      f"{size / 1e6:.1f} MB beyond torch; third-party: {', '.join(third) or 'none'})", flush=True)
    if failures:
        raise SystemExit("\n".join(failures))
    return report


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["torch-base", "sizes"])
    ap.add_argument("--out", default=str(ROOT / "dist"))
    a = ap.parse_args(argv)
    if a.command == "torch-base":
        print(torch_base())
    else:
        out = Path(a.out)
        if not any(out.glob("*.whl")):
            from release import DISTS, build

            build(DISTS, out)
        report = check_wheels(out)
        torch_mb = _size([torch_base()]) / 1e6
        print("\n| layer | `pip install` brings (beyond the tiers layers below) | size beyond torch |\n|---|---|---|")
        for layer, r in report.items():
            libs = ", ".join(n for n in r["third_party"] if n in _direct(layer)) or "nothing (standard library)"
            torch_note = "torch + " if r["torch"] else ""
            print(f"| tiers-{layer} | {torch_note}{libs} | {r['bytes_beyond_torch'] / 1e6:.0f} MB |")
        print(f"\n(torch {base_requirements()['torch'].split('==')[-1]} itself: {torch_mb:,.0f} MB, shared)")
    return 0


def _direct(layer: str) -> set[str]:
    import tomllib
    from release import vv_deps
    from versioning import pyproject

    names = set()
    for name in [layer, *vv_deps(layer)]:
        for dep in tomllib.loads(pyproject(name).read_text())["project"]["dependencies"]:
            n = _norm(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0])
            if not n.startswith("tiers") and n != "torch":
                names.add(n)
    return names


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
