"""Every built wheel installs ALONE from dist/ (no index) into a fresh venv, and all its modules import."""

import subprocess
import sys

import pytest
from layers import ROOT


@pytest.mark.slow
def test_each_wheel_installs_alone_and_imports(tmp_path):
    out = tmp_path / "dist"
    for command in ("build-all", "check-wheels"):
        r = subprocess.run([sys.executable, "tools/release.py", command, "--out", str(out)], cwd=ROOT,
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{command} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert r.stdout.count(": ok (") == 10, r.stdout
