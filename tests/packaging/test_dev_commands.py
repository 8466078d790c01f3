"""`./dev`'s command table: the commands it routes to tools/release.py, run for real against a stand-in project.

The dev script is copied into a temporary folder holding a ready-looking `.venv` whose `python` only prints its
arguments, so each command runs the script's own routing (bootstrap check included) without building anything.
"""

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from layers import ROOT


@pytest.fixture
def dev_copy(tmp_path: Path) -> Path:
    shutil.copy2(ROOT / "dev", tmp_path / "dev")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.txt").write_text("numpy\n")
    (tmp_path / "packages" / "dispatch").mkdir(parents=True)
    (tmp_path / "packages" / "dispatch" / "pyproject.toml").write_text("[project]\nname = 'tiers-dispatch'\n")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    echo = venv_bin / "python"
    echo.write_text('#!/bin/sh\necho "venv-python $*"\n')
    echo.chmod(echo.stat().st_mode | stat.S_IXUSR)
    # The stamp bootstrap() compares with: sha256 of base.txt + every pyproject, then the interpreter's version.
    digest = hashlib.sha256(b"numpy\n[project]\nname = 'tiers-dispatch'\n").hexdigest()
    (tmp_path / ".venv" / ".tiers-bootstrap").write_text(f"{digest} {sys.version.splitlines()[0]}\n")
    return tmp_path


def _dev(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(folder / "dev"), *args], capture_output=True, text=True, timeout=60, env=env)


def test_wheels_is_build_all(dev_copy):
    # AUDIT3 E6: `./dev wheels` was "unknown command wheels" (exit 2)
    r = _dev(dev_copy, "wheels", "--out", "elsewhere")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines() == ["venv-python tools/release.py build-all --out elsewhere"]
    assert _dev(dev_copy, "build-all").stdout.strip() == "venv-python tools/release.py build-all"


def test_help_lists_wheels_and_unknown_commands_still_fail(dev_copy):
    assert "build-all (alias: wheels)" in _dev(dev_copy, "help").stdout
    r = _dev(dev_copy, "wheelz")
    assert r.returncode == 2 and "unknown command wheelz" in r.stdout


def test_the_root_readme_names_the_wheels_command():
    readme = (ROOT / "README.md").read_text()
    assert "./dev wheels" in readme and "--find-links dist" in readme
