"""One distribution can be bumped and built without touching any other distribution's files."""

import shutil
import subprocess
import sys
import zipfile

from layers import ROOT


def test_release_one_layer_touches_only_that_layer(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", "dist", "__pycache__", ".venv*", ".hatch",
                                                              "*.pyc", "quickstart-out"), symlinks=True)
    before = {p: p.read_bytes() for p in (repo / "packages").rglob("*") if p.is_file()}
    out = tmp_path / "dist"
    r = subprocess.run([sys.executable, "tools/release.py", "release", "pipeline", "minor", "--out", str(out)],
                       cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    after = {p: p.read_bytes() for p in (repo / "packages").rglob("*") if p.is_file()}
    changed = sorted(str(p.relative_to(repo)) for p in after if before.get(p) != after[p])
    assert changed == ["packages/pipeline/CHANGELOG.md", "packages/pipeline/src/tiers/pipeline/__init__.py"]
    old = (ROOT / "packages/pipeline/src/tiers/pipeline/__init__.py").read_text()
    major, minor, _ = old.split('__version__ = "')[1].split('"')[0].split(".")
    new_version = f"{major}.{int(minor) + 1}.0"
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert wheels == [f"tiers_pipeline-{new_version}-py3-none-any.whl"]
    with zipfile.ZipFile(out / wheels[0]) as whl:
        names = whl.namelist()
    assert "tiers/__init__.py" not in names and "tiers/pipeline/__init__.py" in names
    assert f"## {new_version}" in (repo / "packages/pipeline/CHANGELOG.md").read_text()
