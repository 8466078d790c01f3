"""Build, check and release tiers distributions (the versioning model is in tools/versioning.py).

    python tools/release.py build-all [--out dist]       wheel + sdist of every distribution
    python tools/release.py build NAME... [--out dist]   wheel + sdist of the named distributions
    python tools/release.py check-wheels [--out dist]    each wheel into a fresh venv WITHOUT system
                                                         site-packages (torch from the shared base only
                                                         where the layer needs it): installed set ==
                                                         declared set, every module imports
    python tools/release.py changed [--json]             the layers changed since their last tag, plus
                                                         every layer that depends on them
    python tools/release.py release LAYER major|minor|patch [--out dist] [--no-build]
    python tools/release.py release tiers [major|minor|patch]
    python tools/release.py tag-initial                  tag every layer at its current version (once)

`release LAYER PART`, in one step:
  1. refuses if the layer's public API lost or changed a name since its last tag and PART is not breaking
     (a new major; below 1.0 a new minor), see tools/api_gate.py;
  2. bumps the layer's `__version__`;
  3. if the new version is breaking, every layer that requires it gets `tiers-LAYER>=NEW,<NEXT-BREAKING`
     and a patch release of its own (same step), and every layer requiring one of those gets its floor
     raised to their new versions too, so `pip install tiers-<anything>` can only resolve the set that CI
     tested together;
  4. pins the meta distribution `tiers` at every layer's new version and bumps it;
  5. writes each released distribution's CHANGELOG entry: the "Unreleased" notes, then the commits that
     touched the layer since its last tag;
  6. commits exactly those files and tags `tiers-<layer>-v<version>` (and `tiers-v<version>` for the meta).
`release tiers` re-pins the meta distribution at the layers' current versions (refused if that set is not
consistent) and tags it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import versioning as vv  # noqa: E402
from layers import LAYERS, ROOT, dependents_closure  # noqa: E402
from versioning import read_version  # noqa: E402,F401  (tests and tools import it from here)

DISTS = [*LAYERS, "tiers"]  # "tiers" is the code-free meta-distribution


def package_dir(name: str, root: Path = ROOT) -> Path:
    """The folder of distribution `name` (a layer name, or "tiers" for the meta-distribution)."""
    if name not in DISTS:
        raise SystemExit(f"unknown distribution {name!r}; choose one of: {', '.join(DISTS)}")
    return root / "packages" / name


def tag_name(name: str, version: str) -> str:
    """`tiers-<layer>-v<version>`; the meta distribution's tags are `tiers-v<version>`."""
    return f"tiers-v{version}" if name == "tiers" else f"tiers-{name}-v{version}"


def _git(*args: str, root: Path = ROOT, check: bool = True) -> str:
    r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and r.returncode:
        raise SystemExit(f"git {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def tags(name: str, root: Path = ROOT) -> list[tuple[vv.Version, str]]:
    """The release tags of one distribution, oldest first: [(version, tag)]."""
    prefix = tag_name(name, "")
    out = []
    for t in _git("tag", "--list", f"{prefix}*", root=root).split():
        try:
            out.append((vv.parse(t[len(prefix):]), t))
        except ValueError:
            continue
    return sorted(out)


def last_tag(name: str, root: Path = ROOT) -> str | None:
    found = tags(name, root)
    return found[-1][1] if found else None


def _paths(name: str) -> list[str]:
    return [f"packages/{name}"]


def commits_since(name: str, tag: str | None, root: Path = ROOT) -> list[str]:
    """`<short hash> <subject>` of each commit touching the distribution since `tag` (all, without one)."""
    rng = [f"{tag}..HEAD"] if tag else ["HEAD"]
    out = _git("log", "--no-merges", "--format=%h %s", *rng, "--", *_paths(name), root=root)
    return [line for line in out.splitlines() if line.strip()]


def changed(root: Path = ROOT) -> dict[str, list[str]]:
    """Layer -> why it needs a release: files changed since its last tag (or never tagged), or a layer below
    it that changed. Untagged layers count as changed."""
    direct: dict[str, str] = {}
    for layer in LAYERS:
        tag = last_tag(layer, root)
        if tag is None:
            direct[layer] = "never released (no tag)"
            continue
        files = _git("diff", "--name-only", tag, "--", *_paths(layer), root=root).split()
        files += _git("ls-files", "--others", "--exclude-standard", "--", *_paths(layer), root=root).split()
        if files:
            direct[layer] = f"{len(files)} file(s) changed since {tag}"
    result = {}
    for layer in dependents_closure(set(direct)):
        if layer in direct:
            result[layer] = [direct[layer]]
        else:
            below = [d for d in direct if d in vv_deps(layer, root, extras=True)]
            result[layer] = [f"depends on changed {', '.join(below) or 'layers'}"]
    return result


def vv_deps(layer: str, root: Path = ROOT, extras: bool = False) -> set[str]:
    """The tiers layers `layer` requires, directly or through them (with `extras`: optional ones too)."""
    seen: set[str] = set()
    todo = [s["name"] for s in vv.tiers_specs(layer, root, required_only=not extras)]
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += [s["name"] for s in vv.tiers_specs(dep, root, required_only=not extras)]
    return seen


# -- changelog -----------------------------------------------------------------------------------------------

_UNRELEASED_RE = re.compile(r"^## (?:unreleased|[^\n]*\(unreleased\))[^\n]*\n(?P<body>.*?)(?=^## |\Z)", re.M | re.S | re.I)


def write_changelog(name: str, new: str, notes: list[str], root: Path = ROOT) -> None:
    """Open `## NEW (date)` with the Unreleased section's text (moved, not copied) and `notes`."""
    log = package_dir(name, root) / "CHANGELOG.md"
    text = log.read_text() if log.exists() else f"# Changelog: {'tiers' if name == 'tiers' else 'tiers-' + name}\n"
    m = _UNRELEASED_RE.search(text)
    hand = m.group("body").strip() if m else ""
    if m:
        text = text[:m.start()] + text[m.end():]
    body = "\n".join(part for part in (hand, "\n".join(notes)) if part).strip()
    entry = f"## {new} ({_dt.date.today().isoformat()})\n\n{body}\n\n"
    head, sep, rest = text.partition("\n## ")
    log.write_text(head.rstrip("\n") + "\n\n" + entry + (("## " + rest) if sep else "").rstrip("\n") + "\n")


def release_notes(name: str, version: str, root: Path = ROOT) -> str:
    """The CHANGELOG entry of one released version (what the CI release publishes as the release's notes)."""
    text = (package_dir(name, root) / "CHANGELOG.md").read_text()
    m = re.search(rf"^## {re.escape(version)} .*?\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        raise SystemExit(f"packages/{name}/CHANGELOG.md has no entry for {version}")
    return m.group(1).strip() + "\n"


def _commit_notes(name: str, root: Path) -> list[str]:
    tag = last_tag(name, root)
    commits = commits_since(name, tag, root)
    since = f"since {tag}" if tag else "so far"
    return [f"Commits {since}:", "", *(f"- {c}" for c in commits)] if commits else []


# -- release -------------------------------------------------------------------------------------------------


def _require_clean(root: Path) -> None:
    dirty = _git("status", "--porcelain", "--", "packages", root=root).strip()
    if dirty:
        raise SystemExit(f"release needs committed packages/ (the release commit holds only its own edits):\n{dirty}")


def plan_release(layer: str, part: str, root: Path = ROOT) -> dict[str, tuple[str, str]]:
    """Which distributions a release of `layer` changes: name -> (old, new). Refused on an API break that
    `part` does not allow. Also rewrites the specifiers (step 3 of the docstring)."""
    old = vv.parse(read_version(layer, root))
    new = vv.bumped(old, part)
    tag = last_tag(layer, root)
    if tag is not None and not vv.is_breaking(old, new):
        from api_gate import check

        found = check(layer, tag, root)
        if found:
            need = "major" if old[0] >= 1 else "minor"
            raise SystemExit(f"tiers-{layer} {vv.fmt(old)} -> {vv.fmt(new)} refused: the public API changed since "
                             f"{tag}, which needs a breaking release ({need}):\n  " + "\n  ".join(found))
    plan = {layer: (vv.fmt(old), vv.fmt(new))}
    if not vv.is_breaking(old, new):
        return plan
    # A breaking release: every layer requiring one in the plan is re-floored to the new version and released
    # as a patch, bottom first, so its own dependents are re-floored to that patch in turn.
    for name in LAYERS:
        requires = {s["name"] for s in vv.tiers_specs(name, root)}
        if name in plan or not requires & set(plan):
            continue
        v = vv.parse(read_version(name, root))
        own_tag = last_tag(name, root)
        if own_tag is not None:
            from api_gate import check

            found = check(name, own_tag, root)
            if found:
                raise SystemExit(f"tiers-{layer} {vv.fmt(new)} would re-release tiers-{name} as a patch, but its public "
                                 f"API changed since {own_tag}; release it as breaking first:\n  " + "\n  ".join(found))
        plan[name] = (vv.fmt(v), vv.fmt(vv.bumped(v, "patch")))
    for name in plan:
        for dep, (_, dep_new) in plan.items():
            vv.rewrite_spec(name, dep, vv.parse(dep_new), root)
    return plan


def _release_files(root: Path) -> list[Path]:
    return [p for name in DISTS for p in (package_dir(name, root) / "pyproject.toml",
                                          package_dir(name, root) / "CHANGELOG.md",
                                          *([vv.version_file(name, root)] if name != "tiers" else []))]


def release(layer: str, part: str, root: Path = ROOT, commit: bool = True) -> dict[str, str]:
    """Release `layer` (or the meta distribution "tiers"); return {distribution: new version}. On a refusal
    every file it had edited is put back as it was."""
    if commit:
        _require_clean(root)
    before = {p: p.read_bytes() for p in _release_files(root) if p.exists()}
    try:
        return _release(layer, part, root, commit)
    except BaseException:
        for p, data in before.items():
            p.write_bytes(data)
        raise


def _release(layer: str, part: str, root: Path, commit: bool) -> dict[str, str]:
    if layer == "tiers":
        plan: dict[str, tuple[str, str]] = {}
    else:
        plan = plan_release(layer, part, root)
        for name, (_old, new) in plan.items():
            vv.write_version(name, new, root)
            notes = []
            if name != layer:
                deps = [d for d in plan if d != name and d in {s["name"] for s in vv.tiers_specs(name, root)}]
                notes.append("- Requires " + ", ".join(
                    f"tiers-{d}{vv.spec(vv.parse(plan[d][1]))}" for d in deps) + " (released together).")
            write_changelog(name, new, notes + _commit_notes(name, root), root)
    versions = {name: read_version(name, root) for name in LAYERS}
    problems = vv.inconsistencies(versions, root)
    if problems:
        raise SystemExit("the layers' current versions do not satisfy each other's specifiers; release the "
                         "layers below first:\n  " + "\n  ".join(problems))
    old_pins = vv.meta_pins(root)
    vv.write_meta_pins(versions, root)
    meta_old = vv.parse(read_version("tiers", root))
    if layer == "tiers":
        meta_part = part
    else:
        breaking = any(vv.is_breaking(vv.parse(o), vv.parse(n)) for o, n in plan.values())
        meta_part = "breaking" if breaking else ("patch" if part == "patch" else part)
    meta_new = vv.fmt(vv.bumped(meta_old, meta_part))
    vv.write_version("tiers", meta_new, root)
    pins = [f"- tiers-{n} {old_pins.get(n)} -> {v}" for n, v in versions.items() if old_pins.get(n) != v]
    write_changelog("tiers", meta_new, (["Pins:", "", *pins] if pins else ["- Same pins, re-released."]), root)
    released = {name: new for name, (_, new) in plan.items()} | {"tiers": meta_new}
    print("released: " + ", ".join(f"tiers-{n} {v}" if n != "tiers" else f"tiers {v}" for n, v in released.items()))
    if commit:
        files = _git("status", "--porcelain", "--", "packages", root=root)
        paths = [line[3:] for line in files.splitlines()]
        _git("add", "--", *paths, root=root)
        msg = "release: " + ", ".join(f"{'tiers' if n == 'tiers' else 'tiers-' + n} {v}" for n, v in released.items())
        _git("commit", "-q", "-m", msg, "--", *paths, root=root)
        for name, v in released.items():
            _git("tag", "-a", tag_name(name, v), "-m", f"{name} {v}", root=root)
    return released


def tag_initial(root: Path = ROOT) -> list[str]:
    """Tag every distribution at its current version (the first release of a repository with no tags). A
    CHANGELOG heading `## <that version> (unreleased)` is dated first (in a commit of its own), so the next release
    does not take those notes for its own."""
    untagged = [name for name in DISTS if not tags(name, root)]
    if untagged:
        _require_clean(root)
    dated = []
    for name in untagged:
        log = package_dir(name, root) / "CHANGELOG.md"
        version = read_version(name, root)
        heading = re.compile(rf"^## {re.escape(version)} \(unreleased\)$", re.M | re.I)
        if log.exists() and heading.search(log.read_text()):
            log.write_text(heading.sub(f"## {version} ({_dt.date.today().isoformat()})", log.read_text(), count=1))
            dated.append(str(log.relative_to(root)))
    if dated:
        _git("commit", "-q", "-m", "release: date the first release's CHANGELOG entries", "--", *dated, root=root)
    made = []
    for name in untagged:
        t = tag_name(name, read_version(name, root))
        _git("tag", "-a", t, "-m", f"{name} {read_version(name, root)}", root=root)
        made.append(t)
    return made


# -- build and check -------------------------------------------------------------------------------------------


def build(names: list[str], out: Path, root: Path = ROOT) -> None:
    """Build a wheel and an sdist of each named distribution into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        cmd = [sys.executable, "-m", "hatchling", "build", "-d", str(out.resolve())]
        r = subprocess.run(cmd, cwd=package_dir(name, root), capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"building {name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def _submodules_of(layer: str, root: Path = ROOT) -> list[str]:
    """Every module of a layer, by dotted name (what check-wheels imports)."""
    src = package_dir(layer, root) / "src"
    mods = []
    for py in sorted((src / "tiers" / layer).rglob("*.py")):
        parts = list(py.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build-all", "build", "check-wheels", "changed", "release", "bump",
                                        "tag-initial", "notes"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--out", default=str(ROOT / "dist"))
    ap.add_argument("--no-build", action="store_true", help="release: do not build the released distributions")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if a.command == "build-all":
        if out.exists():
            shutil.rmtree(out)
        build(DISTS, out)
    elif a.command == "build":
        build(a.args or DISTS, out)
    elif a.command == "check-wheels":
        from envs import check_wheels

        if not any(out.glob("*.whl")):
            build(DISTS, out)
        check_wheels(out, a.args or None)
    elif a.command == "changed":
        found = changed()
        if a.json:
            print(json.dumps(found))
        else:
            for name, why in found.items():
                print(f"{name}: {'; '.join(why)}")
    elif a.command == "tag-initial":
        print("\n".join(tag_initial()) or "every distribution already has a tag")
    elif a.command == "notes":
        name, version = a.args
        sys.stdout.write(release_notes(name, version))
    else:  # release (bump is its old name)
        if not a.args:
            ap.error(f"release needs a LAYER, one of: {', '.join(DISTS)}")
        name = a.args[0]
        package_dir(name)
        part = a.args[1] if len(a.args) > 1 else "patch"
        if part not in ("major", "minor", "patch"):
            ap.error(f"the part to bump must be major, minor or patch, not {part!r}")
        released = release(name, part)
        if not a.no_build:
            build(list(released), out)


if __name__ == "__main__":
    main()
