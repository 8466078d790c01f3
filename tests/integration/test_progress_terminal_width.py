"""The metrics table on a terminal too narrow for it (40 columns): its columns are split into groups, each led by
the epoch, so every line fits and no name or number is wrapped mid-word; a wide terminal and a log file keep the
one-line rows. What the screen holds is what a terminal emulator (pyte) shows after the bytes the fit wrote."""

import io
import os
import re
import sys

import pytest

from tiers.train import accuracy

pyte = pytest.importorskip("pyte")

NAMES = ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
CELL = re.compile(r"\d+|\d+\.\d{6}|\d\d:\d\d")  # an epoch, a loss or metric, a time


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _screen(data: bytes, cols: int, rows: int = 40) -> list[str]:
    screen = pyte.HistoryScreen(cols, rows, history=10000)
    pyte.ByteStream(screen).feed(data)
    lines = ["".join(line[i].data for i in range(cols)).rstrip() for line in screen.history.top]
    lines += [ln.rstrip() for ln in screen.display]
    return [ln for ln in lines if ln]


def _check_table(lines: list[str], cols: int, epochs: int) -> None:
    """Every line is a whole header group or a whole row group: known names, or cells that parse, in order."""
    assert all(len(ln) < cols for ln in lines), lines
    header = [ln.split() for ln in lines if ln.startswith("epoch")]
    assert len(header) >= 2, f"a 40-column terminal splits the table: {lines}"
    assert all(h[0] == "epoch" for h in header) and [n for h in header for n in h[1:]] == NAMES[1:], lines
    rows = [ln.split() for ln in lines if not ln.startswith("epoch")]
    assert all(CELL.fullmatch(c) for r in rows for c in r), lines
    # each epoch's row: one line per header group, the epoch first, the cells under their names
    assert len(rows) == epochs * len(header), lines
    for k, r in enumerate(rows):
        assert r[0] == str(k // len(header)) and len(r) == len(header[k % len(header)]), lines


def test_a_narrow_terminal_gets_the_table_in_column_groups(monkeypatch, progress_learner):
    monkeypatch.setenv("COLUMNS", "40")
    out = _TTY()
    progress_learner(out, metrics=accuracy).fit(2, 1e-2)
    lines = _screen(out.getvalue().replace("\n", "\r\n").encode(), 40)
    _check_table(lines, 40, 2)


def test_a_wide_terminal_and_a_log_file_keep_one_line_rows(monkeypatch, progress_learner):
    monkeypatch.setenv("COLUMNS", "120")
    out = _TTY()
    progress_learner(out, metrics=accuracy).fit(2, 1e-2)
    lines = _screen(out.getvalue().replace("\n", "\r\n").encode(), 120)
    assert [ln.split()[0] for ln in lines] == ["epoch", "0", "1"] and lines[0].split() == NAMES, lines
    monkeypatch.setenv("COLUMNS", "40")
    log = io.StringIO()  # not a terminal: no width to fit
    progress_learner(log, metrics=accuracy).fit(2, 1e-2)
    assert [ln.split() for ln in log.getvalue().splitlines()][0] == NAMES


SCRIPT = r'''
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tiers.data import DataLoaders
from tiers.train import Learner, accuracy

torch.manual_seed(0)
x = torch.randn(320, 8)
y = (x[:, 0] > 0).long()
dls = DataLoaders(DataLoader(TensorDataset(x[:256], y[:256]), batch_size=16),
                  DataLoader(TensorDataset(x[256:], y[256:]), batch_size=16))
learn = Learner(dls, nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), loss_func=F.cross_entropy,
                metrics=accuracy)
learn.fit(3, 1e-2)
'''


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")
def test_on_a_real_40_column_terminal(tmp_path, run_on_pty):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    out, status, _ = run_on_pty([str(script)], 40, 24)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out.decode(errors="replace")[-2000:]
    _check_table(_screen(out, 40), 40, 3)
