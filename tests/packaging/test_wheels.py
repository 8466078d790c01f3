"""The wheel check (tools/envs.py, run on every layer by tools/compat.py in CI): a wheel installed into a fresh venv
WITHOUT system site-packages brings exactly what it declares, and every module imports with only that."""

import shutil

import pytest
from envs import check_wheels
from layers import ROOT
from release import build


def test_pipeline_wheel_brings_dispatch_and_no_torch(tmp_path):
    out = tmp_path / "dist"
    build(["dispatch", "pipeline"], out)
    report = check_wheels(out, ["pipeline"])["pipeline"]
    assert report["torch"] is False
    assert report["tiers"] == ["tiers-dispatch", "tiers-pipeline"] and report["third_party"] == []
    assert report["bytes_beyond_torch"] < 5_000_000


def test_a_wheel_missing_a_dependency_it_imports_is_refused(tmp_path):
    root = tmp_path / "repo"
    for name in ("dispatch", "pipeline"):
        shutil.copytree(ROOT / "packages" / name, root / "packages" / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    meta = root / "packages/pipeline/pyproject.toml"
    text = meta.read_text()
    assert '"tiers-dispatch>=' in text
    meta.write_text("\n".join(line for line in text.splitlines() if '"tiers-dispatch>=' not in line) + "\n")
    out = tmp_path / "dist"
    build(["dispatch", "pipeline"], out, root=root)
    with pytest.raises(SystemExit, match=r"(?s)tiers-pipeline: .*import failed.*No module named 'tiers.dispatch'"):
        check_wheels(out, ["pipeline"])
