"""import-linter's layers contract really catches an upward import (proved on a temporary copy)."""

import os
import shutil
import subprocess
import sys

from layers import LAYERS, ROOT


def _lint(tmp_path, extra_module: tuple[str, str] | None):
    for layer in LAYERS:
        shutil.copytree(ROOT / "packages" / layer / "src", tmp_path / layer / "src",
                        ignore=shutil.ignore_patterns("__pycache__"))
    if extra_module:
        layer, code = extra_module
        (tmp_path / layer / "src" / "tiers" / layer / "_contract_probe.py").write_text(code)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # The copies come first on sys.path, so `tiers.data` resolves to the copy, not the editable install.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tmp_path / layer / "src") for layer in LAYERS)}
    return subprocess.run([sys.executable, str(ROOT / "tools" / "lint_imports.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True)


def test_contract_kept_on_the_real_tree(tmp_path):
    r = _lint(tmp_path, None)
    assert r.returncode == 0, r.stdout + r.stderr


def test_data_importing_train_breaks_the_contract(tmp_path):
    r = _lint(tmp_path, ("data", "import tiers.train\n"))
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "tiers.data._contract_probe -> tiers.train" in r.stdout, r.stdout


def test_siblings_may_not_import_each_other(tmp_path):
    r = _lint(tmp_path, ("optim", "from tiers.data import DataLoaders\n"))
    assert r.returncode != 0
    assert "tiers.optim._contract_probe -> tiers.data" in r.stdout, r.stdout
