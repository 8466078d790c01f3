"""The README's "Integrations" examples (examples/integrations_*.py), run as a user runs them: scripts in fresh
processes, each with its optional extra installed (skipped without it)."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _has(*mods: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in mods)


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, f"examples/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, f"{script} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_readme_points_at_each_integration_example():
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## Integrations", 1)[1].split("\n## ", 1)[0]
    for name in ("tensorboard", "timm", "onnx"):
        assert f"examples/integrations_{name}.py" in section, name
        assert os.path.exists(os.path.join(ROOT, "examples", f"integrations_{name}.py"))


@pytest.mark.slow
@pytest.mark.skipif(not _has("tensorboard"), reason="extra tiers-train[tensorboard]")
def test_tensorboard_example(tmp_path):
    out = _run("integrations_tensorboard.py", "--out", str(tmp_path))
    assert re.search(r"batches logged: \d+ \| graph: True \| prediction images: 2", out), out
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "runs").iterdir())


@pytest.mark.slow
@pytest.mark.skipif(not _has("timm"), reason="extra tiers-vision[timm]")
def test_timm_example():
    out = _run("integrations_timm.py")
    assert "resnet10t: 3 parameter groups" in out and "vit_tiny: 3 parameter groups" in out, out


@pytest.mark.slow
@pytest.mark.skipif(not _has("onnx", "onnxruntime", "onnxscript"), reason="extra tiers-train[onnx]")
def test_onnx_example(tmp_path):
    out = _run("integrations_onnx.py", "--out", str(tmp_path))
    assert "agree: True" in out, out
    assert (tmp_path / "digits.onnx").stat().st_size > 0
