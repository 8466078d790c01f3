"""Audit 2: training output where no notebook is: a log file (stdout piped, `python train.py > log`) and a narrow
(40-column) pseudo-terminal where the user presses Ctrl-C mid-fit, catches it and goes on with the same Learner."""

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = r'''
import sys, time
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tiers.data import DataLoaders
from tiers.train import Callback, Learner, accuracy

torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(640, 8)
y = (x[:, 0] > 0).long()
dls = DataLoaders(DataLoader(TensorDataset(x[:512], y[:512]), batch_size=16, shuffle=True),
                  DataLoader(TensorDataset(x[512:], y[512:]), batch_size=16))

class Slow(Callback):
    def after_batch(self):
        time.sleep(float(sys.argv[1]))

learn = Learner(dls, nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), loss_func=F.cross_entropy,
                metrics=accuracy, cbs=Slow())
print("START", flush=True)
try:
    learn.fit_one_cycle(int(sys.argv[2]), 1e-2)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
finite = all(bool(torch.isfinite(p).all()) for p in learn.model.parameters())
learn.remove_cb(Slow)
print("SUGGESTED", learn.lr_find(num_it=20, show_plot=False).valley > 0, flush=True)
learn.fit(1, 1e-3)
print("AFTER", finite, len(learn.recorder.values), round(learn.validate()[1], 2) > 0.5, flush=True)
'''


def _script(tmp_path):
    f = tmp_path / "train.py"
    f.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TIERS_DEBUG", None)
    return f, env


def test_a_log_file_holds_plain_lines_only(tmp_path):
    script, env = _script(tmp_path)
    log = tmp_path / "train.log"
    with open(log, "wb") as out:
        proc = subprocess.run([sys.executable, str(script), "0", "2"], stdout=out, stderr=subprocess.STDOUT, env=env,
                              timeout=240)
    data = log.read_bytes()
    assert proc.returncode == 0, data.decode(errors="replace")
    assert b"\r" not in data and b"\x1b" not in data and b"\x08" not in data  # no bar frames, no escape codes
    text = data.decode()
    lines = text.splitlines()
    assert lines[0] == "START" and lines[-1] == "AFTER True 1 True", lines
    assert "SUGGESTED True" in lines and "INTERRUPTED" not in text
    headers = [ln for ln in lines if ln.startswith("epoch")]
    assert len(headers) == 2 and all(h.split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
                                     for h in headers)
    rows = [ln for ln in lines if re.match(r"^\d+\s+\d", ln)]
    assert len(rows) == 3, lines  # 2 epochs, then the 1-epoch fit; lr_find prints nothing
    assert "Traceback" not in text and "Warning" not in text


def test_ctrl_c_on_a_40_column_terminal_leaves_a_usable_learner(tmp_path, run_on_pty):
    pyte = pytest.importorskip("pyte")
    script, env = _script(tmp_path)
    # the first epoch's row has been printed: the ^C lands in the second of 5 epochs
    out, status, sent = run_on_pty([str(script), "0.01", "5"], 40, env=env, interrupt_when=b"train_loss", timeout=180.0)
    assert sent and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out.decode(errors="replace")[-2000:]
    screen = pyte.HistoryScreen(40, 24, history=10000)
    pyte.ByteStream(screen).feed(out)
    lines = ["".join(line[i].data for i in range(40)).rstrip() for line in screen.history.top]
    lines += [ln.rstrip() for ln in screen.display]
    text = "\n".join(lines)
    assert "INTERRUPTED" in text and "Traceback" not in text, text
    assert "SUGGESTED True" in text
    after = [ln for ln in lines if ln.startswith("AFTER")]
    # weights finite after the interrupted batch; the next fit recorded its one epoch and learned
    assert after == ["AFTER True 1 True"], text
