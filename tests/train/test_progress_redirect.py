"""While the bar is drawn on a terminal, a `print` or a warning from a callback gets its own line above the bar (the
bar is wiped, the text written, the bar redrawn) instead of being glued to a bar frame that stays in the scrollback;
`sys.stdout`/`sys.stderr` are the user's own again after the fit, an error or a Ctrl-C; a plain stream is left alone.

The screen is what a terminal emulator (pyte) shows after the bytes the fit wrote; the last test runs a script on a
real pseudo-terminal."""

import io
import os
import re
import signal
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, Learner, ProgressCallback

pyte = pytest.importorskip("pyte")

COLS, ROWS = 200, 40  # wide: a warning line (with its file path) fits on one row


class _TTY(io.StringIO):
    """A terminal's stream: both sys.stdout and sys.stderr, as on a real terminal."""

    def isatty(self) -> bool:
        return True


def _learner(metrics=()) -> Learner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=8),
                      DataLoader(TensorDataset(x[64:], y[64:]), batch_size=8))
    torch.manual_seed(0)
    learn = Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy,
                    metrics=list(metrics))
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(throttle=0))  # default streams: sys.stdout/stderr
    return learn


class Chatty(Callback):
    """Prints in the middle of the first epoch and warns in the middle of the second, as a user's callback does."""

    def __init__(self) -> None:
        self.streams: list = []

    def after_batch(self) -> None:
        self.streams.append((sys.stdout, sys.stderr))
        if self.training and self.iter == 3:
            if self.epoch == 0:
                print("custom message at epoch", self.epoch)
            else:
                warnings.warn(f"a warning at epoch {self.epoch}", UserWarning, stacklevel=1)


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` as Python's own: the formatted warning written to sys.stderr, looked up when shown."""
    (sys.stderr if file is None else file).write(warnings.formatwarning(message, category, filename, lineno, line))


def _screen(text: str) -> list[str]:
    """Every line a terminal shows (or has scrolled off) after `text` (the pty turns "\\n" into "\\r\\n")."""
    screen = pyte.HistoryScreen(COLS, ROWS, history=10000)
    pyte.Stream(screen).feed(text.replace("\n", "\r\n"))
    history = ["".join(line[i].data for i in range(COLS)).rstrip() for line in screen.history.top]
    lines = history + [ln.rstrip() for ln in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _is_bar(line: str) -> bool:
    return bool(re.search(r"it/s|s/it|\u2588|\||epoch \d+/\d+|\d+/\d+ ", line))


@pytest.fixture
def tty(monkeypatch):
    """The terminal's stream, made sys.stdout and sys.stderr when the test calls it (pytest's output capture puts
    its own streams back after the fixtures are set up)."""
    t = _TTY()
    monkeypatch.setenv("COLUMNS", str(COLS))

    def install() -> _TTY:
        monkeypatch.setattr(sys, "stdout", t)
        monkeypatch.setattr(sys, "stderr", t)
        return t

    return install


def test_print_and_warning_mid_epoch_get_their_own_lines(tty):
    tty = tty()
    learn, cb = _learner(), Chatty()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show  # pytest records warnings; this is Python's own way of showing one
        learn.fit(2, 1e-2, cbs=cb)
    assert "\r" in tty.getvalue() and "it/s" in tty.getvalue(), "the bar was drawn"
    lines = _screen(tty.getvalue())
    # the message is a line of its own (before: "epoch 1/2 train |██   | 4/8 ... fit 00:00<00:00custom message...")
    assert "custom message at epoch 0" in lines, lines
    warn = [ln for ln in lines if "UserWarning: a warning at epoch 1" in ln]
    assert len(warn) == 1 and not _is_bar(warn[0].split("UserWarning")[0]), lines
    # no bar frame is left anywhere: the screen is the table, the message and the warning (and its source line)
    assert not any(_is_bar(ln) for ln in lines), lines
    # printed when they happened: the message before the table's first row, the warning between the rows
    assert lines[0] == "custom message at epoch 0", lines
    assert lines[1].split() == ["epoch", "train_loss", "valid_loss", "time"] and lines[2].startswith("0 "), lines
    assert lines.index(warn[0]) == 3 and lines[-1].startswith("1 "), lines
    # while the bar was drawn the terminal's streams went through the bar; after the fit they are the user's own
    assert all(o is not tty and e is not tty for o, e in cb.streams)
    assert sys.stdout is tty and sys.stderr is tty


def test_a_line_written_in_pieces_is_not_overdrawn(tty):
    tty = tty()
    class Pieces(Callback):
        def after_batch(self) -> None:
            if self.training and self.epoch == 0 and self.iter == 2:
                print("part one,", end="")
                sys.stdout.flush()
            if self.training and self.epoch == 0 and self.iter == 5:
                print(" part two")

    _learner().fit(1, 1e-2, cbs=Pieces())
    lines = _screen(tty.getvalue())
    assert "part one, part two" in lines and not any(_is_bar(ln) for ln in lines), lines


def test_streams_are_put_back_after_an_error_and_a_ctrl_c(tty):
    tty = tty()
    learn = _learner()

    class Broken(Callback):
        def after_batch(self) -> None:
            if self.iter == 2:
                raise ValueError("a bug in a callback")

    with pytest.raises(ValueError):
        learn.fit(1, 1e-2, cbs=Broken())
    # no after_fit ran: the first write after the fit puts the real streams back, and is written as is
    print("after the error")
    assert sys.stdout is tty and sys.stderr is tty
    assert tty.getvalue().endswith("after the error\n")
    # the next fit draws its bar and puts the streams back at its end
    learn.fit(1, 1e-2)
    assert sys.stdout is tty and sys.stderr is tty

    class CtrlC(Callback):
        def after_batch(self) -> None:
            if self.iter == 2:
                os.kill(os.getpid(), signal.SIGINT)

    if hasattr(signal, "SIGINT") and sys.platform != "win32":
        with pytest.raises(KeyboardInterrupt):
            learn.fit(2, 1e-2, cbs=CtrlC())
        assert sys.stdout is tty and sys.stderr is tty
    lines = _screen(tty.getvalue())
    assert "after the error" in lines and not any(_is_bar(ln) for ln in lines), lines


def test_a_user_replacement_of_sys_stdout_made_during_the_fit_is_kept(tty):
    tty = tty()
    mine = io.StringIO()

    class Replace(Callback):
        def after_epoch(self) -> None:
            sys.stdout = mine

    _learner().fit(1, 1e-2, cbs=Replace())
    assert sys.stdout is mine and sys.stderr is tty


def test_plain_streams_are_left_alone(monkeypatch):
    """A log file or a pipe: no bar, so nothing is routed (stdout to a file while stderr is a terminal: only stderr,
    the bar's stream, is)."""
    out, err = io.StringIO(), _TTY()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    cb = Chatty()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _learner().fit(2, 1e-2, cbs=cb)
    assert all(o is out and e is not err for o, e in cb.streams)
    assert "custom message at epoch 0\n" in out.getvalue() and "\r" not in out.getvalue()
    assert sys.stdout is out and sys.stderr is err

    err2 = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err2)
    cb = Chatty()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _learner().fit(1, 1e-2, cbs=cb)
    assert all(o is out and e is err2 for o, e in cb.streams)


SCRIPT = r'''
import time, warnings
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tiers.data import DataLoaders
from tiers.train import Callback, Learner

torch.manual_seed(0)
x = torch.randn(640, 8)
y = (x[:, 0] > 0).long()
dls = DataLoaders(DataLoader(TensorDataset(x[:512], y[:512]), batch_size=16),
                  DataLoader(TensorDataset(x[512:], y[512:]), batch_size=16))

class Chatty(Callback):
    def after_batch(self):
        time.sleep(0.004)  # a real fit's pace: the bar is redrawn many times
        if self.training and self.iter == 10:
            if self.epoch == 1:
                print("custom message at epoch", self.epoch)
            if self.epoch == 2:
                warnings.warn("a warning at epoch 2")

learn = Learner(dls, nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), loss_func=F.cross_entropy,
                cbs=Chatty())
print("START", flush=True)
learn.fit(3, 1e-2)
print("DONE", flush=True)
'''


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")
def test_on_a_real_terminal(tmp_path, run_on_pty):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    out, status, _ = run_on_pty([str(script)], COLS, ROWS)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out.decode(errors="replace")[-2000:]
    screen = pyte.HistoryScreen(COLS, ROWS, history=10000)
    pyte.ByteStream(screen).feed(out)
    lines = ["".join(line[i].data for i in range(COLS)).rstrip() for line in screen.history.top]
    lines += [ln.rstrip() for ln in screen.display]
    lines = [ln for ln in lines if ln]
    assert b"it/s" in out, "the bar was drawn"
    assert lines[0] == "START" and lines[-1] == "DONE", lines
    assert "custom message at epoch 1" in lines, lines
    assert any(ln.startswith(str(script)) and "UserWarning: a warning at epoch 2" in ln for ln in lines), lines
    assert not any(_is_bar(ln) for ln in lines), lines


NB_SETUP = """\
import time
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tiers.data import DataLoaders
from tiers.train import Callback, Learner
torch.manual_seed(0)
x = torch.randn(640, 8)
y = (x[:, 0] > 0).long()
dls = DataLoaders(DataLoader(TensorDataset(x[:512], y[:512]), batch_size=16, shuffle=True),
                  DataLoader(TensorDataset(x[512:], y[512:]), batch_size=16))
class Slow(Callback):
    "A real search's pace: long enough for its bar to be shown."
    def after_batch(self):
        time.sleep(0.012)
learn = Learner(dls, nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), loss_func=F.cross_entropy,
                cbs=Slow())"""


@pytest.mark.slow
def test_lr_find_in_a_notebook_leaves_no_empty_output(tmp_path):
    """AUDIT2 D8: the search's bar was updated to an empty output that stayed in the saved notebook. It is removed
    when it is the cell's only output; a cell with other output keeps that output (an empty bar output then stays:
    Jupyter can only clear a whole cell)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        NB_SETUP,
        "learn.lr_find(num_it=100, show_plot=False)",
        "print('before the search')\nlearn.lr_find(num_it=100, show_plot=False)",
    )]
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TIERS_DEBUG")}
    env["OMP_NUM_THREADS"] = "1"
    nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    alone, after_print = nb.cells[1].outputs, nb.cells[2].outputs
    # the search's suggestion, and nothing else: no blank display left by its bar (it was shown: > 0.5 s)
    assert [o.output_type for o in alone] == ["execute_result"], alone
    assert "valley" in alone[0].data["text/plain"]
    # the user's own output is never cleared with it
    assert alone is not after_print and after_print[0].output_type == "stream", after_print
    assert after_print[0].text == "before the search\n" and after_print[-1].output_type == "execute_result"
