"""Exact resume: a run SIGKILLed at a random batch and resumed from its checkpoint ends with the same weights."""

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("_resume_script.py")
N_EPOCH, N_BATCH = 3, 12


def _run(out, ckpt, resume):
    return subprocess.run([sys.executable, str(SCRIPT), str(out), str(ckpt), "1" if resume else "0", str(N_EPOCH)],
                          capture_output=True, text=True, timeout=120, check=True)


def _run_and_kill(out, ckpt, kill_at):
    p = subprocess.Popen([sys.executable, str(SCRIPT), str(out), str(ckpt), "0", str(N_EPOCH)],
                         stdout=subprocess.PIPE, text=True)
    n = 0
    for line in p.stdout:
        if line.startswith("B"):
            n += 1
            if n == kill_at:
                os.kill(p.pid, signal.SIGKILL)
                break
    p.wait(timeout=60)
    p.stdout.close()
    return p.returncode


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights(tmp_path):
    _run(tmp_path / "straight.pt", tmp_path / "straight_ckpt.pth", resume=False)
    ref = torch.load(tmp_path / "straight.pt", weights_only=True)
    rng = random.Random(1234)
    kill_points = rng.sample(range(2, N_EPOCH * N_BATCH - 1), 3)
    for kp in kill_points:
        ckpt, out = tmp_path / f"ck{kp}.pth", tmp_path / f"out{kp}.pt"
        assert _run_and_kill(out, ckpt, kp) == -signal.SIGKILL
        assert ckpt.exists() and not out.exists()
        _run(out, ckpt, resume=True)
        got = torch.load(out, weights_only=True)
        for k in ref:
            assert torch.equal(ref[k], got[k]), f"kill at batch {kp}: {k} differs after resume"
