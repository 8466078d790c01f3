"""What the release workflow (.github/workflows/release.yml) runs for one tag, short of publishing.

    python tools/ci_release.py build TAG|NAME [--out dist] [--notes notes/NOTES.md]
    python tools/ci_release.py test  TAG|NAME [--out dist] [--local] [--torch-index URL]

TAG is `tiers-<layer>-v<version>` (or `tiers-v<version>` for the meta distribution); a bare NAME rehearses the
working tree's version with no tag (what `.ci/run` does, so the workflow's steps are exercised on every CI run).

build   checks that the tag's version is the distribution's version, builds THAT distribution only (wheel +
        sdist) into --out, and writes its CHANGELOG entry as the release notes.
test    installs the built wheel ALONE into a fresh venv without system site-packages (with its optional extras
        and the test tools) and runs its layer's tests. The tiers layers it requires come from the index, except
        those tagged on the same commit (released together), which are built from here and offered first.
        --local installs with no index at all, from the wheelhouse and dist/ (CI here); --torch-index installs
        torch from that index first where the layer needs it (the CPU wheels, on a hosted runner).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envs  # noqa: E402
from layers import LAYERS, ROOT, TEST_REQUIREMENTS  # noqa: E402
from release import DISTS, _git, build, read_version, release_notes  # noqa: E402

_TAG_RE = re.compile(r"^tiers(?:-(?P<name>[a-z]+))?-v(?P<version>\d+\.\d+\.\d+)$")


def parse_target(target: str, root: Path = ROOT) -> tuple[str, str, bool]:
    """(distribution, version, tagged) for a tag or a bare distribution name."""
    if target in DISTS:
        return target, read_version(target, root), False
    m = _TAG_RE.match(target)
    if not m or (m["name"] or "tiers") not in DISTS:
        raise SystemExit(f"{target!r} is neither a release tag (tiers-<layer>-v<X.Y.Z>, tiers-v<X.Y.Z>) nor one of "
                         f"{', '.join(DISTS)}")
    name = m["name"] or "tiers"
    have = read_version(name, root)
    if have != m["version"]:
        raise SystemExit(f"tag {target} says {m['version']}, but packages/{name} is at {have}: tag the release commit "
                         "that tools/release.py made")
    return name, have, True


def cmd_build(target: str, out: Path, notes: Path | None) -> None:
    name, version, _ = parse_target(target)
    build([name], out)
    stem = "tiers" if name == "tiers" else f"tiers_{name}"
    made = sorted(p.name for p in out.iterdir() if p.name.startswith(f"{stem}-{version}"))
    print(f"built {', '.join(made)}")
    if notes:
        notes.parent.mkdir(parents=True, exist_ok=True)
        try:
            notes.write_text(release_notes(name, version))
        except SystemExit:
            notes.write_text(f"{'tiers' if name == 'tiers' else 'tiers-' + name} {version} (no CHANGELOG entry)\n")
        print(f"release notes: {notes}")


def _siblings(tagged: bool, out: Path) -> Path | None:
    """Wheels of the other distributions tagged on this commit (a release step that released several)."""
    if not tagged:
        return None
    extra = out.parent / (out.name + "-siblings")
    others = [m for t in _git("tag", "--points-at", "HEAD").split() if (m := _TAG_RE.match(t))]
    names = [(m["name"] or "tiers") for m in others]
    build([n for n in names if n in LAYERS], extra)
    return extra


def cmd_test(target: str, out: Path, local: bool, torch_index: str | None) -> int:
    name, version, tagged = parse_target(target)
    wheel = envs.wheel_of(name, out)
    if version not in wheel.name:
        raise SystemExit(f"{wheel} is not version {version}: run `build` first")
    layer = name
    with tempfile.TemporaryDirectory(prefix=f"release-{name}-") as tmp:
        from release import vv_deps

        needs_torch = name == "tiers" or any(envs.needs_torch(n) for n in [name, *vv_deps(name, extras=True)])
        if local:
            py = envs.new_venv(Path(tmp) / "venv", torch=needs_torch)
        else:
            import venv

            venv.EnvBuilder(with_pip=False, symlinks=True).create(Path(tmp) / "venv")
            py = Path(tmp) / "venv" / "bin" / "python"
            if needs_torch and torch_index:
                envs.pip_install(py, ["--index-url", torch_index, "torch"])
        extras = envs.wheel_extras(wheel) if name != "tiers" else []
        spec = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
        tools = [*TEST_REQUIREMENTS["*"], *TEST_REQUIREMENTS.get(layer, [])]
        links = [out] + ([s] if (s := _siblings(tagged, out)) else [])
        if local:
            envs.install_local(py, [spec, *tools], links)
        else:
            envs.pip_install(py, [*(x for p in links for x in ("--find-links", str(p.resolve()))), spec, *tools])
        print(f"installed {wheel.name} alone into a fresh venv: "
              + ", ".join(sorted(n for n in envs.installed(py) if n.startswith("tiers"))))
        if name == "tiers":
            probe = f"import importlib\nfor m in {LAYERS!r}: importlib.import_module('tiers.' + m + '.all')\n"
            return subprocess.run([str(py), "-c", probe], cwd=tmp).returncode
        if not any((ROOT / "tests" / layer).glob("test_*.py")):
            return 0
        return subprocess.run([str(py), "-m", "pytest", f"tests/{layer}", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["build", "test"])
    ap.add_argument("target", help="a release tag, or a distribution name to rehearse the working tree")
    ap.add_argument("--out", default=str(ROOT / "dist"))
    ap.add_argument("--notes", help="build: where to write the release notes")
    ap.add_argument("--local", action="store_true", help="test: no index (wheelhouse + dist), torch shared")
    ap.add_argument("--torch-index", help="test: index to install torch from first (e.g. the CPU wheels)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if a.command == "build":
        cmd_build(a.target, out, Path(a.notes) if a.notes else None)
        return 0
    return cmd_test(a.target, out, a.local, a.torch_index)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
