"""A short fit under a real pseudo-terminal 60 columns wide, its output replayed through a terminal emulator (pyte):
what the user's screen and scrollback hold afterwards, and what one Ctrl-C (a real ^C typed on the terminal) prints."""

import os
import re
import signal

import pytest

pyte = pytest.importorskip("pyte")
fcntl, pty, termios = (pytest.importorskip(m) for m in ("fcntl", "pty", "termios"))  # POSIX pseudo-terminals

pytestmark = pytest.mark.slow

COLS, ROWS = 60, 24

SCRIPT = r'''
import sys, time
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tiers.data import DataLoaders
from tiers.train import Callback, Learner, accuracy

torch.manual_seed(0)
x = torch.randn(640, 8)
y = (x[:, 0] > 0).long()
dls = DataLoaders(DataLoader(TensorDataset(x[:512], y[:512]), batch_size=16, shuffle=True),
                  DataLoader(TensorDataset(x[512:], y[512:]), batch_size=16))

class Slow(Callback):
    "Slows each batch down so the bar is redrawn many times, as in a real fit."
    def after_batch(self):
        time.sleep(0.004)

learn = Learner(dls, nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), loss_func=F.cross_entropy,
                metrics=accuracy, cbs=Slow())
print("START", flush=True)
learn.fit_one_cycle(int(sys.argv[1]), 1e-2)
print("DONE", flush=True)
'''


def _run_in_pty(tmp_path, run_on_pty, epochs: int, interrupt_when: bytes | None = None, timeout: float = 120.0):
    """Run the script on a new pseudo-terminal (COLS x ROWS): returns (output bytes, wait status)."""
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    out, status, _ = run_on_pty([str(script), str(epochs)], COLS, ROWS, interrupt_when=interrupt_when, timeout=timeout)
    return out, status


def _screen(out: bytes) -> list[str]:
    """Every line the terminal shows or has scrolled off, after the whole output, trailing blanks removed."""
    screen = pyte.HistoryScreen(COLS, ROWS, history=10000)
    stream = pyte.ByteStream(screen)
    stream.feed(out)
    history = ["".join(ch.data for ch in (line[i] for i in range(COLS))).rstrip() for line in screen.history.top]
    lines = history + [ln.rstrip() for ln in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _is_bar(line: str) -> bool:
    "A whole or partial bar frame: a rate, block characters, the bar's edges or its 'epoch e/n' head."
    return bool(re.search(r"it/s|s/it|\u2588|\||epoch \d+/\d+|\d+/\d+ ", line))


def test_fit_leaves_only_the_table_on_a_60_column_terminal(tmp_path, run_on_pty):
    out, status = _run_in_pty(tmp_path, run_on_pty, epochs=3)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out.decode(errors="replace")[-2000:]
    assert b"\r" in out and b"it/s" in out, "the bar was drawn while the fit ran"
    lines = _screen(out)
    assert lines[0] == "START" and lines[-1] == "DONE", lines
    table = lines[1:-1]
    # header and one row per epoch, one after the other: no stale bar line, no bar wrapped onto a second line
    assert table[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"], lines
    assert [r.split()[0] for r in table[1:]] == ["0", "1", "2"], lines
    assert not any(_is_bar(ln) for ln in table[1:]), lines
    # every bar frame fit in the 59 usable columns (the carriage return redraw never wrapped)
    frames = [f for chunk in out.decode().split("\n") for f in chunk.split("\r") if "it/s" in f]
    assert frames and max(len(f.rstrip()) for f in frames) <= COLS - 1


def test_ctrl_c_prints_one_line_and_no_traceback(tmp_path, run_on_pty):
    out, status = _run_in_pty(tmp_path, run_on_pty, epochs=6, interrupt_when=b"epoch 2/6")
    text = out.decode(errors="replace")
    # KeyboardInterrupt semantics kept: the process ends as killed by SIGINT (exit status 130 in a shell)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, text[-2000:]
    lines = _screen(out)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, lines
    # the message, as written (the screen wraps it: it is longer than 60 columns)
    written = [seg for ln in text.split("\n") for seg in ln.split("\r") if "interrupted" in seg]
    assert len(written) == 1, text[-3000:]
    m = re.fullmatch(r"interrupted at epoch (\d+), batch (\d+): the model holds the weights of the last completed "
                     r"step( \(the interrupt came during the validation pass\))?", written[0].strip())
    assert m and m.group(1) == "2", written
    # on screen: START, the table's header and first row(s), the message, and nothing of the bar
    start = lines.index("START")
    msg_at = next(i for i, ln in enumerate(lines) if ln.startswith("interrupted at epoch"))
    rows = lines[start + 2:msg_at]
    assert lines[start + 1].split()[:2] == ["epoch", "train_loss"] and rows, lines
    assert [r.split()[0] for r in rows] == [str(i) for i in range(len(rows))] and len(rows) <= 2, lines
    assert not any(_is_bar(ln) for ln in lines), lines
    assert "DONE" not in lines
