"""Build, check and release tiers distributions, one at a time or all together.

    python tools/release.py build-all [--out dist]      wheel + sdist of every distribution
    python tools/release.py check-wheels [--out dist]   install each wheel ALONE from dist/ (no index)
                                                        into a fresh venv and import every submodule
    python tools/release.py bump LAYER [major|minor|patch]
    python tools/release.py release LAYER [major|minor|patch] [--out dist]
                                                        bump then build only that distribution

A release touches only `packages/<layer>/` (its `__version__` and CHANGELOG), so one
distribution ships without the others changing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layers import LAYERS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DISTS = [*LAYERS, "tiers"]  # "tiers" is the code-free meta-distribution
_VERSION_RE = re.compile(r'^__version__\s*=\s*"(\d+)\.(\d+)\.(\d+)"', re.M)


def package_dir(name: str, root: Path = ROOT) -> Path:
    """The folder of distribution `name` (a layer name, or "tiers" for the meta-distribution)."""
    if name not in DISTS:
        raise SystemExit(f"unknown distribution {name!r}; choose one of: {', '.join(DISTS)}")
    return root / "packages" / name


def version_file(layer: str, root: Path = ROOT) -> Path:
    return package_dir(layer, root) / "src" / "tiers" / layer / "__init__.py"


def read_version(layer: str, root: Path = ROOT) -> str:
    """The version a layer's `__init__.py` declares."""
    m = _VERSION_RE.search(version_file(layer, root).read_text())
    if not m:
        raise SystemExit(f"no __version__ = \"X.Y.Z\" line in {version_file(layer, root)}")
    return ".".join(m.groups())


def bump(layer: str, part: str = "patch", root: Path = ROOT) -> str:
    """Increase one layer's version (`part` is major, minor or patch) and open a CHANGELOG entry."""
    if layer == "tiers":
        raise SystemExit("the meta-distribution 'tiers' is versioned by editing packages/tiers/pyproject.toml pins")
    parts = [int(p) for p in read_version(layer, root).split(".")]
    idx = {"major": 0, "minor": 1, "patch": 2}.get(part)
    if idx is None:
        raise SystemExit(f"bump part must be major, minor or patch, not {part!r}")
    parts[idx] += 1
    parts[idx + 1:] = [0] * (2 - idx)
    new = ".".join(map(str, parts))
    vf = version_file(layer, root)
    vf.write_text(_VERSION_RE.sub(f'__version__ = "{new}"', vf.read_text(), count=1))
    log = package_dir(layer, root) / "CHANGELOG.md"
    text = log.read_text() if log.exists() else f"# Changelog: tiers-{layer}\n"
    head, _, rest = text.partition("\n")
    entry = f"\n## {new} ({_dt.date.today().isoformat()})\n\n- (describe the change)\n"
    log.write_text(head + "\n" + entry + rest)
    print(f"tiers-{layer}: {'.'.join(map(str, [p for p in parts]))}")
    return new


def build(names: list[str], out: Path, root: Path = ROOT) -> None:
    """Build a wheel and an sdist of each named distribution into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        cmd = [sys.executable, "-m", "hatchling", "build", "-d", str(out.resolve())]
        subprocess.run(cmd, cwd=package_dir(name, root), check=True)


def _submodules(layer: str, root: Path = ROOT) -> list[str]:
    src = package_dir(layer, root) / "src"
    mods = []
    for py in sorted((src / "tiers" / layer).rglob("*.py")):
        rel = py.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


def check_wheels(out: Path, names: list[str] | None = None) -> None:
    """Install each layer's wheel ALONE from `out` (no index) into a fresh venv; import every submodule.

    The venv sees the interpreter's site-packages (torch and the other third-party libraries are
    installed once there), but no tiers distribution other than the one installed and what it
    declares, resolved from `out` only.
    """
    failures = []
    for layer in names or LAYERS:
        with tempfile.TemporaryDirectory(prefix=f"wheel-{layer}-") as tmp:
            env_dir = Path(tmp) / "venv"
            venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
            py = env_dir / "bin" / "python"
            pip = [sys.executable, "-m", "pip", "--python", str(py)] if _pip_has_python_flag() else [str(py), "-m", "pip"]
            env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
            r = subprocess.run([*pip, "install", "-q", "--no-index", "--find-links", str(out.resolve()),
                                f"tiers-{layer}"], env=env, capture_output=True, text=True)
            if r.returncode:
                failures.append(f"tiers-{layer}: install failed:\n{r.stderr[-2000:]}")
                continue
            probe = (
                "import importlib, importlib.metadata as md, sys\n"
                f"mods = {_submodules(layer)!r}\n"
                "for m in mods: importlib.import_module(m)\n"
                "names = sorted(d.metadata['Name'] for d in md.distributions(path=[p for p in sys.path if p.startswith(sys.prefix)]) if d.metadata['Name'].startswith('tiers'))\n"
                "print(' '.join(names))\n"
            )
            r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp)
            if r.returncode:
                failures.append(f"tiers-{layer}: import failed:\n{r.stderr[-2000:]}")
            else:
                print(f"tiers-{layer}: ok ({len(_submodules(layer))} modules; installed: {r.stdout.strip()})")
    if failures:
        raise SystemExit("\n".join(failures))


def _pip_has_python_flag() -> bool:
    # pip >= 22.3 can install into another interpreter, which saves seeding pip into every venv.
    from importlib.metadata import version
    major, minor = (int(x) for x in version("pip").split(".")[:2])
    return (major, minor) >= (22, 3)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build-all", "check-wheels", "bump", "release"])
    ap.add_argument("layer", nargs="?")
    ap.add_argument("part", nargs="?", default="patch")
    ap.add_argument("--out", default=str(ROOT / "dist"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    if a.command == "build-all":
        if out.exists():
            shutil.rmtree(out)
        build(DISTS, out)
    elif a.command == "check-wheels":
        if not any(out.glob("*.whl")):
            build(DISTS, out)
        check_wheels(out, [a.layer] if a.layer else None)
    elif a.command in ("bump", "release"):
        if not a.layer:
            ap.error(f"{a.command} needs a LAYER, one of: {', '.join(LAYERS)}")
        bump(a.layer, a.part)
        if a.command == "release":
            build([a.layer], out)


if __name__ == "__main__":
    main()
