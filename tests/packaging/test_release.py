"""The release tool on a temporary clone: one step bumps a layer, re-floors the layers that depend on it when the
release is breaking, re-pins the meta distribution, writes the changelogs from the commits, commits and tags; the
API gate refuses a breaking change without a breaking version; and what pip can resolve afterwards is only a set
of versions released (and tested) together. After every release command the packaging checks still pass."""

import json
import os
import re
import subprocess
import sys
import zipfile

import pytest
import tomllib
from layers import LAYERS, ROOT

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}


def _clone(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    return repo


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=GIT_ENV, check=True).stdout


def _tool(repo, *args, ok=True):
    r = subprocess.run([sys.executable, "tools/release.py", *args], cwd=repo, capture_output=True, text=True,
                       env=GIT_ENV)
    if ok:
        assert r.returncode == 0, f"release.py {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def _version(repo, layer):
    if layer == "tiers":
        return tomllib.loads((repo / "packages/tiers/pyproject.toml").read_text())["project"]["version"]
    text = (repo / f"packages/{layer}/src/tiers/{layer}/__init__.py").read_text()
    return re.search(r'__version__ = "([\d.]+)"', text).group(1)


def _requires(repo, layer):
    deps = tomllib.loads((repo / f"packages/{layer}/pyproject.toml").read_text())["project"]["dependencies"]
    return {d.split(">=")[0]: d.split(">=")[1] for d in deps if d.startswith("tiers-")}


def _packaging_suite_passes(repo):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/packaging/test_layout.py",
                        "tests/packaging/test_dependencies.py"], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


def test_release_of_a_layer_rewrites_dependents_meta_pins_changelog_and_tags(tmp_path):
    repo = _clone(tmp_path)
    assert _tool(repo, "tag-initial").stdout.count("tiers-") == len(LAYERS) + 1
    # a commit touching pipeline after its tag: it must be listed in the changelog entry
    readme = repo / "packages/pipeline/README.md"
    readme.write_text(readme.read_text() + "\nA line for the release test.\n")
    _git(repo, "commit", "-q", "-am", "pipeline: a documented change for the release test")
    assert json.loads(_tool(repo, "changed", "--json").stdout) == {
        n: [("1 file(s) changed since tiers-pipeline-v0.1.0" if n == "pipeline" else "depends on changed pipeline")]
        for n in ["pipeline", "data", "train", "vision", "text", "tabular", "collab"]}

    out = tmp_path / "dist"
    _tool(repo, "release", "pipeline", "minor", "--out", str(out))  # 0.x: a new minor is the breaking kind
    changed = sorted(_git(repo, "show", "--name-only", "--format=", "HEAD").split())
    dependents = ["data", "train", "vision", "text", "tabular", "collab"]
    expected = ["packages/pipeline/CHANGELOG.md", "packages/pipeline/src/tiers/pipeline/__init__.py",
                "packages/tiers/CHANGELOG.md", "packages/tiers/pyproject.toml"]
    for d in dependents:
        expected += [f"packages/{d}/CHANGELOG.md", f"packages/{d}/pyproject.toml", f"packages/{d}/src/tiers/{d}/__init__.py"]
    assert changed == sorted(expected)
    assert not _git(repo, "status", "--porcelain", "--", "packages").strip(), "the release commit holds every edit"

    assert _version(repo, "pipeline") == "0.2.0"
    for d in dependents:
        assert _version(repo, d) == "0.1.1"
        assert _requires(repo, d)["tiers-pipeline"] == "0.2.0,<0.3"
    # layers above the re-released ones are re-floored to their new patch versions: only tested sets resolve
    assert _requires(repo, "train")["tiers-data"] == "0.1.1,<0.2"
    assert _requires(repo, "collab")["tiers-tabular"] == "0.1.1,<0.2"
    assert _requires(repo, "train")["tiers-optim"] == "0.1.0,<0.2", "optim was not re-released"
    assert _version(repo, "optim") == "0.1.0" and _version(repo, "dispatch") == "0.1.0"
    assert _version(repo, "tiers") == "0.2.0"
    pins = tomllib.loads((repo / "packages/tiers/pyproject.toml").read_text())["project"]["dependencies"]
    assert "tiers-pipeline==0.2.0" in pins and "tiers-train[plots,sklearn,pandas,tensorboard,onnx,cloudpickle]==0.1.1" in pins

    tag_list = set(_git(repo, "tag", "--list").split())
    assert {"tiers-pipeline-v0.2.0", "tiers-v0.2.0", *(f"tiers-{d}-v0.1.1" for d in dependents)} <= tag_list
    log = (repo / "packages/pipeline/CHANGELOG.md").read_text()
    entry = log.split("## 0.2.0 (")[1].split("\n## ")[0]
    assert "pipeline: a documented change for the release test" in entry and "(describe" not in entry
    assert "First release." not in entry, "tag-initial dated 0.1.0's notes: they stay under 0.1.0"
    assert re.search(r"^## 0\.1\.0 \(\d{4}-\d\d-\d\d\)$", log, re.M) and "unreleased" not in log.lower()
    data_entry = (repo / "packages/data/CHANGELOG.md").read_text().split("## 0.1.1 (")[1].split("\n## ")[0]
    assert "Requires tiers-pipeline>=0.2.0,<0.3" in data_entry
    notes = _tool(repo, "notes", "pipeline", "0.2.0").stdout
    assert "a documented change for the release test" in notes

    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert "tiers_pipeline-0.2.0-py3-none-any.whl" in wheels and "tiers-0.2.0-py3-none-any.whl" in wheels
    with zipfile.ZipFile(out / "tiers_pipeline-0.2.0-py3-none-any.whl") as whl:
        names = whl.namelist()
        meta = whl.read("tiers_pipeline-0.2.0.dist-info/METADATA").decode()
    assert "tiers/__init__.py" not in names and "tiers/pipeline/py.typed" in names
    assert "Requires-Dist: tiers-dispatch<0.2,>=0.1.0" in meta
    _packaging_suite_passes(repo)

    # the meta distribution on its own: re-pinned at the same versions, tagged
    _tool(repo, "release", "tiers", "patch", "--no-build")
    assert _version(repo, "tiers") == "0.2.1" and "tiers-v0.2.1" in _git(repo, "tag", "--list")
    _packaging_suite_passes(repo)
    # nothing to commit when nothing changed is still a clean tree
    assert not _git(repo, "status", "--porcelain", "--", "packages").strip()


@pytest.mark.slow
def test_api_gate_and_a_breaking_release_leave_pip_only_tested_combinations(tmp_path):
    repo = _clone(tmp_path)
    _tool(repo, "tag-initial")
    _tool(repo, "release", "dispatch", "major", "--no-build")  # 1.0.0: now a minor may not break
    assert _version(repo, "dispatch") == "1.0.0" and _version(repo, "train") == "0.1.1"
    assert _requires(repo, "train")["tiers-dispatch"] == "1.0.0,<2"

    # a breaking rename in dispatch
    for py in (repo / "packages/dispatch/src").rglob("*.py"):
        py.write_text(py.read_text().replace("round_multiple", "round_to_multiple"))
    _git(repo, "commit", "-q", "-am", "dispatch: round_multiple renamed round_to_multiple")
    before = _git(repo, "rev-parse", "HEAD")
    r = _tool(repo, "release", "dispatch", "minor", "--no-build", ok=False)
    assert r.returncode != 0
    assert "refused" in r.stderr and "round_multiple: name removed" in r.stderr and "major" in r.stderr
    assert _git(repo, "rev-parse", "HEAD") == before and not _git(repo, "status", "--porcelain").strip()
    assert _version(repo, "dispatch") == "1.0.0", "a refused release leaves no file changed"
    r = subprocess.run([sys.executable, "tools/api_gate.py", "dispatch"], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 1 and "round_multiple" in r.stdout

    _tool(repo, "release", "dispatch", "major", "--no-build")
    assert _version(repo, "dispatch") == "2.0.0"
    for layer in LAYERS[1:]:
        assert _requires(repo, layer)["tiers-dispatch"] == "2.0.0,<3", layer
    _packaging_suite_passes(repo)

    # every released version, built from its tag, on one local index: pip can only pick tested sets
    sys.path.insert(0, str(ROOT / "tools"))
    import compat
    import envs

    found = tmp_path / "released"
    found.mkdir()
    for tag in _git(repo, "tag", "--list", "tiers-*-v*").split():
        layer = tag[len("tiers-"):].rsplit("-v", 1)[0]
        if layer in LAYERS:
            w = compat.tag_wheel(tag, layer, tmp_path / "tag-wheels", root=repo)
            (found / w.name).write_bytes(w.read_bytes())
    py = envs.new_venv(tmp_path / "venv", torch=True)

    def resolve(*reqs):
        report = tmp_path / "report.json"
        r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--dry-run", "-q",
                            "--no-index", "--find-links", str(envs.wheelhouse()), "--find-links", str(found),
                            "--report", str(report), *reqs], capture_output=True, text=True)
        if r.returncode:
            return None
        items = json.loads(report.read_text())["install"]
        return {i["metadata"]["name"]: i["metadata"]["version"] for i in items if i["metadata"]["name"].startswith("tiers")}

    newest = resolve("tiers-train")
    assert newest == {"tiers-dispatch": "2.0.0", "tiers-tensors": "0.1.2", "tiers-pipeline": "0.1.2",
                      "tiers-data": "0.1.2", "tiers-optim": "0.1.2", "tiers-train": "0.1.2"}
    # an older train only ever gets the dispatch it was released with
    assert resolve("tiers-train==0.1.1")["tiers-dispatch"] == "1.0.0"
    assert resolve("tiers-train==0.1.0")["tiers-dispatch"] == "0.1.0"
    # and no untested mix resolves at all
    assert resolve("tiers-train==0.1.1", "tiers-dispatch==2.0.0") is None
    assert resolve("tiers-pipeline==0.1.2", "tiers-dispatch==1.0.0") is None


@pytest.mark.slow
def test_compat_runs_a_layer_against_the_floor_built_from_its_tag(tmp_path):
    """The minimum-version job for real: after a release, a lower layer whose working tree moved on is installed
    from the wheel built from its tag, and the layer's tests run against it in a fresh venv."""
    import envs

    repo = _clone(tmp_path)
    _tool(repo, "tag-initial")
    readme = repo / "packages/dispatch/README.md"
    readme.write_text(readme.read_text() + "\nUnreleased work after the tag.\n")
    _git(repo, "commit", "-q", "-am", "dispatch: unreleased work")
    env = {**os.environ, "TIERS_ENVS": str(envs.ENVS)}  # the shared torch folder and wheelhouse
    r = subprocess.run([sys.executable, "tools/compat.py", "pipeline", "--modes", "min,latest",
                        "--out", str(tmp_path / "dist"), "--", "-q", "-p", "no:cacheprovider"],
                       cwd=repo, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "tiers-pipeline [min] with dispatch@tiers-dispatch-v0.1.0, tensors@tree" in r.stdout
    assert "tiers-pipeline [latest]: same wheels as [min]" in r.stdout
    assert r.stdout.count(" passed") == 2, r.stdout  # with the extras (tensors), and without
