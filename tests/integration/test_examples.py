"""The README's main job and the examples, run as a user runs them: as scripts, in fresh processes."""

import os
import re
import subprocess
import sys

import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{args[0]} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.mark.slow
def test_quickstart_trains_every_application_and_saves_figures(tmp_path):
    out = _run("examples/quickstart.py", "--out", str(tmp_path))
    summary = out.split("=== summary ===")[1]
    scores = {name: float(v) for name, v in re.findall(r"(vision|text|tabular)\s+accuracy ([\d.]+)", summary)}
    assert scores["vision"] >= 0.9 and scores["text"] >= 0.8 and scores["tabular"] >= 0.75, summary
    rmse, floor = map(float, re.search(r"collab\s+valid RMSE ([\d.]+) \(noise floor ([\d.]+)\)", summary).groups())
    assert rmse <= 1.15 * floor, summary
    assert "epoch" in out and "train_loss" in out  # the metrics table of every fit
    for name in ("vision_show_batch", "vision_lr_find", "vision_loss", "vision_show_results", "text_lr_find",
                 "text_loss", "tabular_loss", "collab_lr_find", "collab_loss"):
        png = tmp_path / f"{name}.png"
        with Image.open(png) as im:  # a real picture, not an empty canvas
            assert im.size[0] > 200 and len(im.convert("L").getcolors(256)) > 10, name


def test_pipeline_alone_in_a_torch_dataset():
    out = _run("examples/pipeline_in_torch_dataset.py")
    assert "label 'zero', pixels restored: True" in out


@pytest.mark.slow
def test_learner_in_a_plain_pytorch_project():
    out = _run("examples/learner_in_plain_pytorch.py")
    acc = float(re.search(r"validation: loss [\d.]+, accuracy ([\d.]+)", out).group(1))
    assert acc > 0.7, out
